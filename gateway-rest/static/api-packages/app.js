// IAFactory landing page: live LAUNCH30 counter, packages, signup dialog.
// Talks only to same-origin routes of gateway-rest; no external resource of any kind.
// Every sentence it writes comes from i18n.js (French or Arabic), and every figure from the API.
'use strict';

(() => {
  const CODE = 'LAUNCH30';
  const POLL_MS = 30000; // polling period when the event stream is unavailable
  // When the server refused the stream (the browser does not retry by itself then): first retry
  // after about 2 s, doubling up to a minute, each delay spread ±50 % so that a crowd refused
  // together does not come back together. (A stream that merely ends is reopened by the browser
  // after the `retry:` delay the server announced, already spread per viewer.)
  const STREAM_RETRY_BASE_MS = 2000;
  const STREAM_RETRY_MAX_MS = 60000;
  const HIDDEN_PAUSE_MS = 60000; // a tab hidden this long lets go of its stream (and polling)
  const VALIDATE_DEBOUNCE_MS = 350;
  const EXAMPLE_MODEL = 'llama-3.3-70b';

  // The seeded packages (PRODUCT.md), shown only until /api/promo/packages answers (or when
  // promo-service is down, so the page still offers its packages). The launch code's terms —
  // places, discount per package, duration — have no default: the operator may change them, so
  // they are shown only once the API has said what they are.
  const DEFAULT_PACKAGES = [
    { id: 'starter', name: 'Starter', monthly_price_dzd: 10000, tokens_per_month: 1000000, requests_per_minute: 30 },
    { id: 'dev', name: 'Dev', monthly_price_dzd: 15000, tokens_per_month: 5000000, requests_per_minute: 60 },
    { id: 'business', name: 'Business', monthly_price_dzd: 100000, tokens_per_month: 30000000, requests_per_minute: 300 },
    { id: 'premium', name: 'Premium', monthly_price_dzd: 200000, tokens_per_month: 100000000, requests_per_minute: 1000 },
  ];
  const I18N = window.IAF_I18N;
  const t = I18N.t;
  const plural = I18N.plural;
  const months = (n) => plural('months', n);

  const state = {
    packages: DEFAULT_PACKAGES.slice(),
    discounts: {}, // per package, from /api/promo/validate
    durationMonths: null, // from /api/promo/validate
    remaining: null, // null: not known yet
    total: null, // from /api/promo/{code}/remaining
    unlimited: false,
    closedReason: null, // the code was refused for a reason other than exhaustion (inactive, expired…)
    platform: null, // /api/platform/status
    site: null, // /api/site (site.js)
  };

  const $ = (id) => document.getElementById(id);
  const fmt = (n) => I18N.number(n);
  const dzd = (n) => `${fmt(n)}\u00a0${t('currency')}`;

  /** Price after `percent` off, rounded half up to the dinar (the server's rule). */
  const discounted = (base, percent) => Math.floor((base * (100 - percent) + 50) / 100);

  function promoActive() {
    if (state.closedReason) return false;
    if (state.unlimited) return true;
    return state.remaining !== 0;
  }

  function discountFor(id) {
    if (!promoActive()) return 0;
    const d = state.discounts[id];
    return Number.isInteger(d) && d > 0 && d <= 100 ? d : 0;
  }

  function maxDiscount() {
    return state.packages.reduce((m, p) => Math.max(m, Number(state.discounts[p.id]) || 0), 0);
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') node.className = v;
      else if (k === 'text') node.textContent = v;
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  async function getJson(path) {
    const r = await fetch(path, { headers: { Accept: 'application/json' }, cache: 'no-store' });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    return r.json();
  }

  async function postJson(path, body, extraHeaders) {
    const r = await fetch(path, {
      method: 'POST',
      headers: Object.assign({ 'Content-Type': 'application/json', Accept: 'application/json' }, extraHeaders || {}),
      body: JSON.stringify(body),
      cache: 'no-store',
    });
    let data = null;
    try { data = await r.json(); } catch (_) { data = null; }
    return { status: r.status, ok: r.ok, data, retryAfter: r.headers.get('Retry-After') };
  }

  // First-party, cookie-less counting of the launch funnel: only the event's name is sent (to
  // this site); a refused or failed count is ignored, the page never waits for it.
  function countEvent(event) {
    try {
      fetch('/api/evenements', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ event }),
        keepalive: true,
        credentials: 'omit',
      }).catch(() => {});
    } catch (_) { /* counting is best effort */ }
  }

  // ------------------------------------------------------------------------------------------
  // Promo banner and live counter

  function renderPromo() {
    const banner = $('promo');
    const headline = $('promo-headline');
    const counter = $('promo-counter');
    const filled = $('promo-filled');
    const bar = $('promo-progress');
    const fill = $('promo-progress-fill');
    const total = state.total;
    const m = state.durationMonths;

    if (state.closedReason) {
      banner.dataset.state = 'over';
      headline.textContent = t('promo.closed');
      counter.textContent = t('promo.normalPrice');
      filled.textContent = '';
      return;
    }
    if (state.unlimited) {
      banner.dataset.state = 'unlimited';
      headline.textContent = maxDiscount() && m
        ? t('promo.upTo', { pct: maxDiscount(), months: months(m) })
        : t('promo.generic');
      counter.textContent = t('promo.enterCode', { code: CODE });
      return;
    }
    if (state.remaining === null) {
      headline.textContent = t('promo.generic');
      if (counter.dataset.unavailable !== 'true') counter.textContent = t('promo.loading');
      else counter.textContent = t('promo.unavailable');
      return;
    }

    const remaining = Math.max(0, Math.min(state.remaining, total));
    const used = total - remaining;
    bar.setAttribute('aria-valuemax', String(total));
    bar.setAttribute('aria-valuenow', String(used));
    bar.setAttribute('aria-valuetext', plural('promo.taken', used, { total: fmt(total) }));
    fill.style.width = `${total > 0 ? (used / total) * 100 : 100}%`;

    if (remaining === 0) {
      banner.dataset.state = 'over';
      headline.textContent = total ? plural('promo.over', total) : t('promo.overAll');
      counter.textContent = t('promo.normalPrice');
      filled.textContent = total ? plural('promo.full', total) : t('promo.fullShort');
      return;
    }
    banner.dataset.state = 'open';
    const clients = plural('clients', total);
    headline.textContent = maxDiscount() && m
      ? t('promo.openUpTo', { pct: maxDiscount(), months: months(m), clients })
      : t('promo.openGeneric', { clients });
    const strong = el('strong', { id: 'promo-remaining', text: plural('promo.strong', remaining) });
    counter.replaceChildren(...I18N.nodes(plural('promo.remaining', remaining, { total: fmt(total) }), { strong }));
    filled.textContent = used === 0 ? t('promo.none') : plural('promo.filled', used);
  }

  function applyRemaining(r) {
    if (!r || typeof r.remaining !== 'number' || typeof r.total !== 'number') return;
    const wasActive = promoActive();
    state.remaining = r.remaining;
    state.total = r.total;
    state.unlimited = Boolean(r.unlimited);
    renderPromo();
    if (wasActive !== promoActive()) renderPrices();
    else renderFaq(promoActive());
  }

  let stream = null;
  let pollTimer = null;
  let retryTimer = null;

  async function pollOnce() {
    try {
      applyRemaining(await getJson(`/api/promo/${CODE}/remaining`));
    } catch (_) {
      // Keep the last value; say so when there is none yet.
      if (state.remaining === null && !state.unlimited && !state.closedReason) {
        $('promo-counter').dataset.unavailable = 'true';
        $('promo-counter').textContent = t('promo.unavailable');
      }
    }
  }

  function startPolling() {
    if (pollTimer !== null) return;
    pollOnce();
    pollTimer = setInterval(pollOnce, POLL_MS);
  }

  function stopPolling() {
    if (pollTimer === null) return;
    clearInterval(pollTimer);
    pollTimer = null;
  }

  let streamFailures = 0;

  function jittered(ms) { return Math.round(ms * (0.5 + Math.random())); }

  function streamFailed(es) {
    // Keep the figure fresh meanwhile (polling starts at once; it is idempotent).
    startPolling();
    if (es.readyState !== EventSource.CLOSED) return; // the browser reconnects by itself
    if (stream === es) stream = null;
    clearTimeout(retryTimer);
    const delay = Math.min(STREAM_RETRY_MAX_MS, STREAM_RETRY_BASE_MS * 2 ** streamFailures);
    streamFailures += 1;
    retryTimer = setTimeout(startStream, jittered(delay));
  }

  function startStream() {
    if (!('EventSource' in window)) { startPolling(); return; }
    clearTimeout(retryTimer);
    if (stream) stream.close();
    const es = new EventSource(`/api/promo/${CODE}/remaining/stream`);
    stream = es;
    es.addEventListener('remaining', (ev) => {
      if (stream !== es) return;
      streamFailures = 0;
      stopPolling();
      try { applyRemaining(JSON.parse(ev.data)); } catch (_) { /* ignore a malformed event */ }
    });
    // A dropped connection, a refusal and the server's own `error` event all end up here.
    es.addEventListener('error', () => { if (stream === es) streamFailed(es); });
  }

  // A tab left in the background stops listening after a while (browsers allow few connections
  // per host over HTTP/1.1, and the server need not feed tabs nobody looks at); it reads the count
  // again and reopens the stream when it is shown.
  let hiddenTimer = null;
  let paused = false;

  function onVisibility() {
    clearTimeout(hiddenTimer);
    if (document.visibilityState === 'hidden') {
      hiddenTimer = setTimeout(() => {
        paused = true;
        if (stream) { stream.close(); stream = null; }
        clearTimeout(retryTimer);
        stopPolling();
      }, HIDDEN_PAUSE_MS);
    } else if (paused) {
      paused = false;
      pollOnce();
      startStream();
    }
  }

  // ------------------------------------------------------------------------------------------
  // Packages

  function cardFor(p) {
    const card = el('article', { class: 'package', 'data-package': p.id, 'aria-labelledby': `pkg-${p.id}-title` },
      el('span', { class: 'package-flag', hidden: true }),
      el('h3', { id: `pkg-${p.id}-title`, text: p.name }),
      el('p', { class: 'package-tagline', text: TAGLINE_IDS.includes(p.id) ? t(`tagline.${p.id}`) : '' }),
      el('p', { class: 'price' },
        el('span', { class: 'price-was' }),
        el('span', { class: 'price-now' }),
        ' ',
        el('span', { class: 'price-unit', text: t('pkg.perMonth') })),
      el('p', { class: 'price-note' }),
      el('ul', { class: 'quota' },
        el('li', { text: t('pkg.tokens', { n: fmt(p.tokens_per_month) }) }),
        el('li', { text: t('pkg.rpm', { n: fmt(p.requests_per_minute) }) })),
      el('button', { type: 'button', class: 'btn btn-primary', 'data-signup': p.id }));
    return card;
  }

  const TAGLINE_IDS = ['starter', 'dev', 'business', 'premium'];

  function buildCards() {
    const list = $('packages');
    list.replaceChildren(...state.packages.map(cardFor));
    const select = $('signup-package');
    const chosen = select.value;
    select.replaceChildren(...state.packages.map((p) => el('option', { value: p.id, text: p.name })));
    if (chosen && state.packages.some((p) => p.id === chosen)) select.value = chosen;
    renderPrices();
  }

  function renderPrices() {
    const active = promoActive();
    const best = maxDiscount();
    for (const p of state.packages) {
      const card = document.querySelector(`.package[data-package="${CSS.escape(p.id)}"]`);
      if (!card) continue;
      const d = discountFor(p.id);
      const now = d ? discounted(p.monthly_price_dzd, d) : p.monthly_price_dzd;
      card.dataset.discounted = d ? 'true' : 'false';
      card.classList.toggle('featured', Boolean(d) && d === best);
      const flag = card.querySelector('.package-flag');
      flag.hidden = !(d && d === best);
      flag.textContent = t('pkg.best', { pct: d });
      const was = card.querySelector('.price-was');
      if (d) {
        was.replaceChildren(el('span', { class: 'visually-hidden', text: t('pkg.wasLabel') }), dzd(p.monthly_price_dzd));
      } else {
        was.replaceChildren();
      }
      card.querySelector('.price-now').replaceChildren(
        el('span', { class: 'price-amount', text: fmt(now) }), ' ', el('span', { class: 'price-currency', text: t('currency') }));
      card.querySelector('.price-note').textContent = d
        ? t('pkg.note', { pct: d, months: months(state.durationMonths), code: CODE })
        : (active || state.remaining === null ? t('pkg.normal') : t('pkg.over', { code: CODE }));
      const cta = card.querySelector('[data-signup]');
      cta.textContent = t('pkg.choose', { name: p.name, price: dzd(now) });
    }
    for (const opt of $('signup-package').options) {
      const p = state.packages.find((x) => x.id === opt.value);
      if (!p) continue;
      // The list price: the summary under the code field tells what the code changes.
      opt.textContent = t('pkg.option', { name: p.name, price: dzd(p.monthly_price_dzd) });
    }
    renderFaq(active);
    $('forfaits-lead').textContent = active && state.durationMonths
      ? t('pkg.leadCode', { code: CODE, months: months(state.durationMonths) })
      : t('pkg.lead');
    renderPromo();
    if ($('signup-dialog').open) renderSummary();
  }

  // The FAQ's answer about the launch code, with the code's own terms once they are known (the
  // page's HTML holds no number the operator can change).
  function renderFaq(active) {
    const discounts = state.packages.map((p) => Number(state.discounts[p.id]) || 0).filter((d) => d > 0);
    if (!active || !discounts.length || state.unlimited || state.remaining === null) return;
    const lo = Math.min(...discounts);
    const hi = Math.max(...discounts);
    const range = lo === hi ? t('faq.range1', { pct: hi }) : t('faq.range', { lo, hi });
    $('faq-launch').textContent = t('faq.launch', {
      clientsTo: plural('clientsTo', state.total), range, months: months(state.durationMonths),
    });
  }

  function cleanPackage(p) {
    if (!p || typeof p.id !== 'string' || !p.id) return null;
    const n = (v) => (Number.isFinite(Number(v)) && Number(v) >= 0 ? Number(v) : 0);
    return {
      id: p.id,
      name: typeof p.name === 'string' && p.name ? p.name : p.id,
      monthly_price_dzd: n(p.monthly_price_dzd),
      tokens_per_month: n(p.tokens_per_month),
      requests_per_minute: n(p.requests_per_minute),
    };
  }

  async function loadPackages() {
    try {
      const d = await getJson('/api/promo/packages');
      const list = Array.isArray(d.packages) ? d.packages.map(cleanPackage).filter(Boolean) : [];
      if (list.length) state.packages = list;
    } catch (_) { /* keep the seeded defaults */ }
    buildCards();
    // The discount of each package comes from the code itself (the operator may change it).
    const answers = await Promise.all(state.packages.map((p) =>
      postJson('/api/promo/validate', { code: CODE, package: p.id }).catch(() => null)));
    answers.forEach((a, i) => {
      if (!a || !a.ok || !a.data) return;
      const id = state.packages[i].id;
      const v = a.data;
      if (v.valid) {
        state.discounts[id] = v.discount_percent;
        if (Number.isInteger(v.duration_months)) state.durationMonths = v.duration_months;
      } else if (v.reason === 'not_for_package') {
        state.discounts[id] = 0;
      } else if (v.reason === 'exhausted') {
        if (state.remaining === null) state.remaining = 0;
      } else if (v.reason) {
        state.closedReason = v.reason;
      }
    });
    renderPrices();
  }

  // ------------------------------------------------------------------------------------------
  // Platform figures (hidden until the gateway reports them)

  // Makers as /v1/models names them (`owned_by`), as people know them.
  const MAKERS = {
    meta: 'Meta (Llama)', openai: 'OpenAI', anthropic: 'Anthropic (Claude)', google: 'Google (Gemini)',
    mistralai: 'Mistral AI', cohere: 'Cohere', deepseek: 'DeepSeek', baai: 'BAAI',
  };
  const POLICIES = ['fallback', 'lowest_latency', 'lowest_cost'];

  function code(text) { return el('code', { text }); }

  async function loadPlatformStatus() {
    let s;
    try { s = await getJson('/api/platform/status'); } catch (_) { return; }
    if (!s || typeof s !== 'object') return;
    state.platform = s;
    renderPlatform();
  }

  function renderPlatform() {
    const s = state.platform;
    if (!s) return;
    let shown = false;
    const providers = s.providers_configured;
    if (Number.isInteger(providers) && providers > 0) {
      $('stat-providers-value').textContent = fmt(providers);
      $('stat-providers-label').textContent = plural('stat.providers', providers);
      $('stat-providers').hidden = false;
      shown = true;
    }
    const latency = s.median_latency_ms;
    if (typeof latency === 'number' && Number.isFinite(latency) && latency >= 0) {
      const ms = latency < 10 ? Math.round(latency * 10) / 10 : Math.round(latency);
      $('stat-latency-value').textContent = `${fmt(ms)}\u00a0ms`;
      $('stat-latency').hidden = false;
      shown = true;
    }
    $('hero-stats').hidden = !shown;
    // Falling back needs a second provider to fall back to.
    $('feature-failover').hidden = !(Number.isInteger(providers) && providers >= 2);
    // The routing card says the default the catalogue really uses (the generic text otherwise).
    const policy = s.routing_policy;
    if (POLICIES.includes(policy)) {
      $('feature-routing-title').textContent = t(`routing.title.${policy}`);
      $('feature-routing-text').replaceChildren(...I18N.nodes(t(`routing.text.${policy}`), {
        routing: code('routing'), fallback: code('fallback'), latency: code('lowest_latency'), cost: code('lowest_cost'),
      }));
    }
    const makers = Array.isArray(s.model_makers)
      ? s.model_makers.filter((m) => typeof m === 'string' && m).map((m) => MAKERS[m] || m)
      : [];
    if (makers.length) {
      let list = makers.join(', ');
      try { list = new Intl.ListFormat(I18N.locale, { type: 'conjunction' }).format(makers); } catch (_) { /* joined by commas */ }
      $('faq-models').replaceChildren(...I18N.nodes(t('faq.models', { makers: list }), { endpoint: code('GET /v1/models') }));
    }
  }

  // The billing answer of the FAQ, from the terms the operator configured (/api/site).
  function renderBilling() {
    const terms = state.site && state.site.terms;
    if (!terms) return;
    const methods = [];
    if (terms.card_payment) methods.push(t('pay.card'));
    if (terms.bank_transfer) methods.push(t('pay.bank'));
    if (terms.ccp_transfer) methods.push(t('pay.ccp'));
    if (terms.baridimob_transfer) methods.push(t('pay.baridimob'));
    let list = methods.join(', ');
    try { list = new Intl.ListFormat(I18N.locale, { type: 'disjunction' }).format(methods); } catch (_) { /* joined by commas */ }
    const rate = Number(terms.tax_rate_bp) / 100;
    const tax = !rate ? t('tax.none')
      : t(terms.prices_include_tax ? 'tax.incl' : 'tax.excl', { rate: fmt(rate) });
    const account = el('a', { href: '/compte/', text: t('account') });
    if (I18N.lang !== 'fr') account.setAttribute('hreflang', 'fr');
    $('faq-billing').replaceChildren(...I18N.nodes(t('faq.billing', {
      due: plural('days', terms.invoice_due_days),
      methods: methods.length ? t('faq.methods', { list }) : '',
      tax,
      key: t(terms.first_invoice_prepaid ? 'key.prepaid' : 'key.postpaid'),
      grace: plural('days', terms.suspension_grace_days),
    }), { account }));
  }

  // ------------------------------------------------------------------------------------------
  // Signup dialog

  const EMAIL_RE = /^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$/;
  let opener = null;
  let validateSeq = 0;
  let validateTimer = null;
  let lastValidation = null; // {code, package, valid, percent}
  // The pending attempt's {body, key}, kept in the tab's session storage: a retry after a network
  // error — even after a reload — carries the same Idempotency-Key, so the server replays the
  // first answer (API key included) instead of refusing an e-mail its first attempt registered.
  const IDEMPOTENCY_STORE = 'iaf-signup-attempt';
  let idempotency = loadAttempt();

  function loadAttempt() {
    try {
      const v = JSON.parse(sessionStorage.getItem(IDEMPOTENCY_STORE) || 'null');
      return v && typeof v.body === 'string' && typeof v.key === 'string' ? v : null;
    } catch (_) { return null; }
  }

  function saveAttempt(v) {
    try {
      if (v) sessionStorage.setItem(IDEMPOTENCY_STORE, JSON.stringify(v));
      else sessionStorage.removeItem(IDEMPOTENCY_STORE);
    } catch (_) { /* storage disabled: the key lives in memory only */ }
  }

  function newKey() {
    if (window.crypto && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }

  function selectedPackage() {
    return state.packages.find((p) => p.id === $('signup-package').value) || state.packages[0];
  }

  function renderSummary() {
    const p = selectedPackage();
    const summary = $('signup-summary');
    if (!p) { summary.textContent = ''; return; }
    const code = $('signup-code').value.trim().toUpperCase();
    const v = lastValidation;
    if (code && v && v.code === code && v.package === p.id && v.valid) {
      summary.textContent = t('sum.discount', {
        price: dzd(discounted(p.monthly_price_dzd, v.percent)), months: months(v.months), base: dzd(p.monthly_price_dzd),
      });
    } else if (code) {
      summary.textContent = t('sum.noDiscount', { name: p.name, price: dzd(p.monthly_price_dzd) });
    } else {
      summary.textContent = t('sum.plain', { name: p.name, price: dzd(p.monthly_price_dzd) });
    }
  }

  function setCodeStatus(kind, text) {
    const s = $('signup-code-status');
    s.dataset.kind = kind;
    s.textContent = text;
    $('signup-code').setAttribute('aria-invalid', kind === 'error' ? 'true' : 'false');
  }

  async function validateCode() {
    clearTimeout(validateTimer);
    const code = $('signup-code').value.trim();
    const p = selectedPackage();
    const seq = ++validateSeq;
    lastValidation = null;
    if (!code) { setCodeStatus('', ''); renderSummary(); return; }
    countEvent('code_check');
    setCodeStatus('pending', t('code.checking'));
    renderSummary();
    let a;
    try {
      a = await postJson('/api/promo/validate', { code, package: p.id });
    } catch (_) {
      if (seq === validateSeq) setCodeStatus('warn', t('code.later'));
      return;
    }
    if (seq !== validateSeq) return; // a newer check is under way
    if (a.status === 429) {
      setCodeStatus('warn', t('code.tooMany'));
    } else if (!a.ok || !a.data) {
      const msg = a.data && a.data.error && a.data.error.message;
      if (a.status === 400 && msg) setCodeStatus('error', t('code.invalid', { msg }));
      else setCodeStatus('warn', t('code.later'));
    } else if (a.data.valid) {
      lastValidation = {
        code: code.toUpperCase(), package: p.id, valid: true,
        percent: a.data.discount_percent, months: a.data.duration_months,
      };
      // promo-service words its answers in French; other languages say it from the figures.
      setCodeStatus('ok', I18N.lang === 'fr' && a.data.message
        ? a.data.message
        : t('code.ok', { pct: a.data.discount_percent, months: months(a.data.duration_months) }));
    } else {
      setCodeStatus('error', refusal(a.data.reason, a.data.message) || t('code.refused'));
      if (code.toUpperCase() === CODE && a.data.reason === 'exhausted') applyRemaining({ remaining: 0, total: state.total ?? 0 });
    }
    renderSummary();
  }

  function scheduleValidate() {
    clearTimeout(validateTimer);
    validateSeq++; // any answer in flight is stale now
    lastValidation = null;
    renderSummary();
    if (!$('signup-code').value.trim()) { setCodeStatus('', ''); return; }
    setCodeStatus('pending', t('code.checking'));
    validateTimer = setTimeout(validateCode, VALIDATE_DEBOUNCE_MS);
  }

  // A message is a string, or text and links (see `I18N.nodes`).
  function setFormError(message) { $('signup-error').replaceChildren(...[].concat(message || [])); }

  function setEmailError(message) {
    $('signup-email-error').replaceChildren(...[].concat(message || []));
    $('signup-email').setAttribute('aria-invalid', message && message.length ? 'true' : 'false');
  }

  /** Why a code is refused, in the page's language (promo-service's own words are French). */
  function refusal(reason, serverMessage) {
    if (I18N.lang === 'fr') return serverMessage || '';
    const key = `refusal.${reason}`;
    const said = t(key);
    return said === key ? '' : said;
  }

  /** The "contactez-nous" of a message: a mailto: link when a contact is configured. */
  function contactLink() {
    const email = state.site && state.site.seller && state.site.seller.email;
    return email ? el('a', { href: `mailto:${email}`, text: t('contactUs') }) : null;
  }

  function signupErrorMessage(a) {
    const err = (a.data && a.data.error) || {};
    const code = err.code || '';
    const serverMsg = typeof err.message === 'string' ? err.message : '';
    const hint = t('err.hint');
    switch (code) {
      case 'email_taken': {
        const account = el('a', { href: '/compte/', text: t('account') });
        const contact = contactLink();
        return I18N.nodes(t(contact ? 'err.emailTakenContact' : 'err.emailTaken'), { account, contact });
      }
      case 'invalid_email':
        return t('err.emailInvalid');
      case 'promo_exhausted':
        return (state.total
          ? t('err.exhausted', { total: fmt(state.total), code: CODE })
          : t('err.exhaustedAll', { code: CODE })) + hint;
      case 'promo_unknown':
        return t('err.unknownCode');
      case 'promo_inactive':
      case 'promo_expired':
      case 'promo_not_yet_valid':
      case 'promo_not_for_package':
        return `${refusal(code.replace(/^promo_/, ''), serverMsg) || t('err.codeUnusable')}${hint}`;
      case 'unknown_package':
        return t('err.unknownPackage');
      case 'rate_limited': {
        const wait = parseInt(a.retryAfter || '', 10);
        return Number.isFinite(wait) && wait > 0
          ? t('err.rateWait', { secs: plural('seconds', wait) })
          : t('err.rate');
      }
      case 'idempotency_in_progress':
        return t('err.inProgress');
      default:
        if (a.status === 429) return t('err.rate');
        if (a.status === 503 || a.status === 502 || a.status === 504) return t('err.unavailable');
        if (a.status >= 500) return t('err.server');
        return serverMsg ? t('err.withMessage', { msg: serverMsg }) : t('err.generic');
    }
  }

  async function submitSignup(ev) {
    ev.preventDefault();
    setFormError('');
    setEmailError('');
    const email = $('signup-email').value.trim();
    if (!email) {
      setEmailError(t('err.emailRequired'));
      $('signup-email').focus();
      return;
    }
    if (email.length > 254 || !EMAIL_RE.test(email)) {
      setEmailError(t('err.emailInvalid'));
      $('signup-email').focus();
      return;
    }
    const p = selectedPackage();
    const code = $('signup-code').value.trim();
    const body = { email, package: p.id };
    if (code) body.promo_code = code;
    // The confirmation e-mail goes out in the page's language (French adds nothing).
    if (I18N.lang !== 'fr') body.lang = I18N.lang;
    const bodyText = JSON.stringify(body);
    // The same attempt retried (double click, network error) carries the same key: one account.
    if (!idempotency || idempotency.body !== bodyText) {
      idempotency = { body: bodyText, key: newKey() };
      saveAttempt(idempotency);
    }

    const button = $('signup-submit');
    button.disabled = true;
    button.textContent = t('signup.submitting');
    let a;
    try {
      a = await postJson('/api/promo/signup', body, { 'Idempotency-Key': idempotency.key });
    } catch (_) {
      a = null;
    }
    button.disabled = false;
    button.textContent = t('signup.submit');
    if (!a) {
      setFormError(t('err.network'));
      return;
    }
    if (a.status === 201 && a.data && typeof a.data.api_key === 'string') {
      idempotency = null;
      saveAttempt(null);
      showSuccess(a.data);
      pollOnce();
      return;
    }
    const message = signupErrorMessage(a);
    const code2 = a.data && a.data.error && a.data.error.code;
    if (code2 === 'email_taken' || code2 === 'invalid_email') {
      setEmailError(message);
      $('signup-email').focus();
    } else {
      setFormError(message);
    }
    if (code2 === 'promo_exhausted') {
      applyRemaining({ remaining: 0, total: state.total ?? 0 });
      setCodeStatus('error', t('code.noPlaces', { code: CODE }));
    }
  }

  function formatDate(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return null;
    return d.toLocaleDateString(I18N.locale, { day: 'numeric', month: 'long', year: 'numeric' });
  }

  function showSuccess(s) {
    const p = state.packages.find((x) => x.id === s.package) || { name: s.package };
    const ends = s.discount_ends_at ? formatDate(s.discount_ends_at) : null;
    const price = Number(s.price_dzd);
    const base = Number(s.base_price_dzd);
    $('success-plan').textContent = s.discount_percent > 0 && ends
      ? t('success.discount', { name: p.name, price: dzd(price), pct: s.discount_percent, date: ends, base: dzd(base) })
      : t('success.plain', { name: p.name, price: dzd(price) });
    $('api-key').value = s.api_key;
    $('copy-status').textContent = '';
    const origin = window.location.origin;
    $('snippet-curl').textContent = [
      `export IAF_API_KEY="${s.api_key}"`,
      '',
      `curl ${origin}/v1/chat/completions \\`,
      '  -H "Authorization: Bearer $IAF_API_KEY" \\',
      '  -H "Content-Type: application/json" \\',
      `  -d '{"model": "${EXAMPLE_MODEL}", "messages": [{"role": "user", "content": "Bonjour !"}]}'`,
    ].join('\n');
    $('snippet-python').textContent = [
      '# pip install openai',
      'import os',
      'from openai import OpenAI',
      '',
      `client = OpenAI(base_url="${origin}/v1", api_key=os.environ["IAF_API_KEY"])`,
      'reply = client.chat.completions.create(',
      `    model="${EXAMPLE_MODEL}",`,
      '    messages=[{"role": "user", "content": "Bonjour !"}],',
      ')',
      'print(reply.choices[0].message.content)',
    ].join('\n');
    $('signup-form').hidden = true;
    $('signup-success').hidden = false;
    $('signup-title').textContent = t('signup.welcome');
    $('success-title').focus();
  }

  /** Forgets the key: it is shown once, in the dialog that received it. */
  function wipeSuccess() {
    $('api-key').value = '';
    $('snippet-curl').textContent = '';
    $('snippet-python').textContent = '';
    $('success-plan').textContent = '';
    $('copy-status').textContent = '';
  }

  async function copyKey() {
    const input = $('api-key');
    const key = input.value;
    if (!key) return;
    let ok = false;
    try {
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(key);
        ok = true;
      }
    } catch (_) { ok = false; }
    if (!ok) {
      input.focus();
      input.select();
      try { ok = document.execCommand('copy'); } catch (_) { ok = false; }
    }
    $('copy-status').textContent = ok ? t('copy.ok') : t('copy.fail');
  }

  function openSignup(packageId, trigger) {
    const dialog = $('signup-dialog');
    opener = trigger || document.activeElement;
    wipeSuccess();
    $('signup-form').hidden = false;
    $('signup-success').hidden = true;
    $('signup-title').textContent = t('signup.title');
    setFormError('');
    setEmailError('');
    if (packageId && state.packages.some((p) => p.id === packageId)) $('signup-package').value = packageId;
    $('signup-code').value = promoActive() ? CODE : '';
    lastValidation = null;
    if (!dialog.open) dialog.showModal();
    $('signup-email').focus();
    if ($('signup-code').value) validateCode(); else { setCodeStatus('', ''); renderSummary(); }
  }

  function closeSignup() {
    const dialog = $('signup-dialog');
    if (dialog.open) dialog.close();
  }

  function wire() {
    document.addEventListener('click', (ev) => {
      const target = ev.target instanceof Element ? ev.target.closest('[data-signup]') : null;
      if (!target) return;
      ev.preventDefault();
      countEvent('cta_click');
      openSignup(target.getAttribute('data-signup'), target);
    });
    const dialog = $('signup-dialog');
    dialog.addEventListener('close', () => {
      const hadKey = Boolean($('api-key').value);
      wipeSuccess();
      if (hadKey) { $('signup-form').reset(); $('signup-form').hidden = false; $('signup-success').hidden = true; }
      clearTimeout(validateTimer);
      validateSeq++;
      if (opener && typeof opener.focus === 'function' && document.contains(opener)) opener.focus();
      opener = null;
    });
    // A click on the backdrop (outside the dialog box) closes it.
    dialog.addEventListener('click', (ev) => {
      if (ev.target !== dialog) return;
      const r = dialog.getBoundingClientRect();
      const inside = ev.clientX >= r.left && ev.clientX <= r.right && ev.clientY >= r.top && ev.clientY <= r.bottom;
      if (!inside) closeSignup();
    });
    $('signup-close').addEventListener('click', closeSignup);
    $('success-close').addEventListener('click', closeSignup);
    $('copy-key').addEventListener('click', copyKey);
    $('signup-form').addEventListener('submit', submitSignup);
    $('signup-code').addEventListener('input', scheduleValidate);
    $('signup-package').addEventListener('change', () => {
      if ($('signup-code').value.trim()) validateCode(); else renderSummary();
    });
    $('signup-email').addEventListener('input', () => { if ($('signup-email-error').textContent) setEmailError(''); });
  }

  /** Everything this script wrote, again in the language just chosen. */
  function onLanguage() {
    buildCards();
    renderPromo();
    renderPlatform();
    renderBilling();
    const success = !$('signup-success').hidden;
    $('signup-title').textContent = t(success ? 'signup.welcome' : 'signup.title');
    if (!$('signup-submit').disabled) $('signup-submit').textContent = t('signup.submit');
  }

  function start() {
    // The static text first (French as written, or the visitor's language), then the rest.
    I18N.apply();
    $('lang-switch').addEventListener('click', (ev) => {
      I18N.set(ev.currentTarget.dataset.lang);
    });
    document.addEventListener('iaf:lang', onLanguage);
    countEvent('landing_view');
    wire();
    buildCards();
    renderPromo();
    pollOnce();
    startStream();
    document.addEventListener('visibilitychange', onVisibility);
    loadPackages();
    loadPlatformStatus();
    if (window.IAF_SITE) {
      window.IAF_SITE.ready.then((info) => {
        state.site = info;
        renderBilling();
      });
    }
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
