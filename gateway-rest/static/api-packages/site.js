// Shared by the public pages (landing, /compte/, legal pages): the footer's identity and contact,
// and the fields of the legal pages, all read from GET /api/site — the operator's configuration.
// No page writes a name, number or address of its own.
//
// Bindings, filled once /api/site answers (and again after a change of language):
//   data-site="seller.name"          text of the value ("—" when not configured, or data-site-empty)
//   data-site-if="seller.email"      shown only when the value is set (true, non-empty, non-zero)
//   data-site-unless="seller.email"  shown only when it is not
//   data-site-mailto="seller.email"  a mailto: link showing the address
//   data-site-tel="seller.phone"     a tel: link showing the number
//   data-site-bp="terms.tax_rate_bp" basis points as a percentage (1900 → 19)
//   data-contact                     a "contactez-nous" link: mailto: the contact, or plain text
'use strict';

window.IAF_SITE = (() => {
  let info = null;

  function get(path) {
    return path.split('.').reduce((o, k) => (o && typeof o === 'object' ? o[k] : undefined), info);
  }

  function set(v) {
    return v !== null && v !== undefined && v !== false && v !== '' && v !== 0;
  }

  function phoneLink(p) { return `tel:${String(p).replace(/[^\d+]/g, '')}`; }

  /** Fills the bindings under `root` from what /api/site said. */
  function bind(root) {
    if (!info) return;
    const scope = root || document;
    for (const el of scope.querySelectorAll('[data-site]')) {
      const v = get(el.dataset.site);
      el.textContent = set(v) || v === 0 ? String(v) : (el.dataset.siteEmpty || '\u2014');
    }
    for (const el of scope.querySelectorAll('[data-site-bp]')) {
      const v = Number(get(el.dataset.siteBp));
      el.textContent = Number.isFinite(v) ? String(v / 100).replace('.', ',') : '\u2014';
    }
    for (const el of scope.querySelectorAll('[data-site-if]')) el.hidden = !set(get(el.dataset.siteIf));
    for (const el of scope.querySelectorAll('[data-site-unless]')) el.hidden = set(get(el.dataset.siteUnless));
    for (const a of scope.querySelectorAll('[data-site-mailto]')) {
      const v = get(a.dataset.siteMailto);
      if (set(v)) { a.href = `mailto:${v}`; a.textContent = v; }
    }
    for (const a of scope.querySelectorAll('[data-site-tel]')) {
      const v = get(a.dataset.siteTel);
      if (set(v)) { a.href = phoneLink(v); a.textContent = v; }
    }
    for (const a of scope.querySelectorAll('a[data-contact]')) {
      const email = get('seller.email');
      if (set(email)) a.href = `mailto:${email}`; else a.removeAttribute('href');
    }
  }

  /** A configured value, isolated so its own direction (a French address, an RC number with
   *  slashes) is not reordered by the Arabic text around it. */
  function bdi(text) {
    const b = document.createElement('bdi');
    b.textContent = text;
    return b;
  }

  function line(...children) {
    const p = document.createElement('p');
    p.append(...children.filter((c) => c !== null && c !== undefined && c !== '')
      .map((c) => (typeof c === 'string' ? bdi(c) : c)));
    return p;
  }

  function label(key, fr) {
    const span = document.createElement('span');
    span.className = 'footer-label';
    span.textContent = window.IAF_I18N ? window.IAF_I18N.t(key) : fr;
    return span;
  }

  /** The footer's identity and contact blocks (`data-site-footer`), from the configuration. */
  function footer() {
    const s = (info && info.seller) || {};
    for (const box of document.querySelectorAll('[data-site-footer="identity"]')) {
      const name = document.createElement('p');
      name.className = 'footer-name';
      name.textContent = s.name || 'IAFactory';
      const parts = [name];
      if (s.legal_form) parts.push(line(s.legal_form));
      if (s.address) parts.push(line(s.address));
      const ids = [];
      if (s.rc) ids.push([label('footer.rc', 'RC\u00a0'), s.rc]);
      if (s.nif) ids.push([label('footer.nif', 'NIF\u00a0'), s.nif]);
      for (const [l, v] of ids) parts.push(line(l, v));
      box.replaceChildren(...parts);
    }
    for (const box of document.querySelectorAll('[data-site-footer="contact"]')) {
      const parts = [];
      if (s.email) {
        const a = document.createElement('a');
        a.href = `mailto:${s.email}`;
        a.textContent = s.email;
        a.dir = 'ltr';
        parts.push(line(a));
      }
      if (s.phone) {
        const a = document.createElement('a');
        a.href = phoneLink(s.phone);
        a.textContent = s.phone;
        a.dir = 'ltr';
        parts.push(line(label('footer.phone', 'Tél.\u00a0'), a));
      }
      box.replaceChildren(...parts);
      box.hidden = parts.length === 0;
    }
  }

  const ready = fetch('/api/site', { headers: { Accept: 'application/json' }, credentials: 'omit' })
    .then((r) => (r.ok ? r.json() : null))
    .catch(() => null)
    .then((d) => {
      info = d && typeof d === 'object' ? d : null;
      footer();
      bind();
      document.dispatchEvent(new CustomEvent('iaf:site', { detail: info }));
      return info;
    });

  // The language changed the text (and reset the bindings inside translated blocks).
  document.addEventListener('iaf:applied', () => { footer(); bind(); });

  return { ready, bind, get info() { return info; } };
})();
