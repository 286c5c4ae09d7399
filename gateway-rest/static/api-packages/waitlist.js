// IAFactory landing page: the waitlist form, shown once the launch offer has no place left
// (app.js sets the banner's data-state to "over"). Posts to /api/promo/waitlist; the answer is
// the same whatever the address (double opt-in: a confirmation e-mail carries the real step).
// The request carries the page's language: the confirmation e-mail and its pages are written in it.
'use strict';

(() => {
  const banner = document.getElementById('promo');
  const section = document.getElementById('liste-attente');
  const form = document.getElementById('waitlist-form');
  if (!banner || !section || !form) return;
  const email = document.getElementById('waitlist-email');
  const consent = document.getElementById('waitlist-consent');
  const error = document.getElementById('waitlist-error');
  const done = document.getElementById('waitlist-done');
  const button = document.getElementById('waitlist-submit');
  const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
  const I18N = window.IAF_I18N;

  const sync = () => { section.hidden = banner.dataset.state !== 'over'; };
  new MutationObserver(sync).observe(banner, { attributes: true, attributeFilter: ['data-state'] });
  sync();

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    const address = email.value.trim();
    if (!address || address.length > 254 || !EMAIL_RE.test(address)) {
      error.textContent = I18N.t('waitlist.emailInvalid');
      email.focus();
      return;
    }
    if (!consent.checked) {
      error.textContent = I18N.t('waitlist.consentMissing');
      consent.focus();
      return;
    }
    button.disabled = true;
    let r = null;
    let body = null;
    try {
      r = await fetch('/api/promo/waitlist', {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(I18N.lang === 'fr'
          ? { email: address, consent: true }
          : { email: address, consent: true, lang: I18N.lang }),
      });
      body = await r.json().catch(() => null);
    } catch (_) {
      r = null;
    }
    button.disabled = false;
    if (r && r.status === 202 && body && typeof body.message === 'string') {
      form.hidden = true;
      done.textContent = body.message;
      done.hidden = false;
      return;
    }
    if (!r) error.textContent = I18N.t('err.network');
    else if (r.status === 429) error.textContent = I18N.t('err.rate');
    else if (r.status >= 500) error.textContent = I18N.t('err.unavailable');
    else {
      const msg = body && body.error && body.error.message;
      // promo-service's refusals are French sentences: shown as such on the French page only.
      error.textContent = msg && I18N.lang === 'fr' ? I18N.t('waitlist.refused', { msg }) : I18N.t('waitlist.generic');
    }
  });
})();
