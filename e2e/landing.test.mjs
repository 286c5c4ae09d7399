// Browser test of the landing page (/api-packages/) against the real stack.
//
// Started by `cargo test -p gateway-rest --test landing` (gateway-rest/tests/landing), which runs
// promo-service and gateway-rest on random ports and passes:
//   LANDING_BASE_URL     gateway-rest without rate limits, e.g. http://127.0.0.1:41234
//   LANDING_STRICT_URL   gateway-rest allowing 2 signups per minute per IP (429 message)
//   LANDING_DOWN_URL     gateway-rest whose promo-service is unreachable (degraded page)
//   LANDING_ARTIFACTS    folder for screenshots (test-artifacts/landing)
//   LANDING_MAIL_DIR     folder where each e-mail promo-service sends appears as NNN.txt
//   LANDING_SELLER_*     the seller identity promo-service is configured with (footer, legal pages)
//   LANDING_CHROMIUM     Chromium binary (default /usr/bin/chromium, Debian's package)
//
// Drives Debian's Chromium with playwright-core (no browser download). Prints one line per step
// and exits 1 at the first failure, after a screenshot of the page under test.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  api as apiAt, axeCheck, launch, mustEnv, norm, requests, pageErrors, consoleProblems, run, step,
  waitFor, waitText, watch as watchPage,
} from './harness.mjs';

const BASE = mustEnv('LANDING_BASE_URL');
const STRICT = mustEnv('LANDING_STRICT_URL');
const DOWN = mustEnv('LANDING_DOWN_URL');
const ARTIFACTS = process.env.LANDING_ARTIFACTS || path.resolve('..', 'test-artifacts', 'landing');
const PAGE = `${BASE}/api-packages/`;
const MAIL_DIR = mustEnv('LANDING_MAIL_DIR');
const SELLER = {
  name: mustEnv('LANDING_SELLER_NAME'),
  email: mustEnv('LANDING_SELLER_EMAIL'),
  phone: mustEnv('LANDING_SELLER_PHONE'),
  nif: mustEnv('LANDING_SELLER_NIF'),
};

// ---------------------------------------------------------------------------------------------
// Helpers

let emailSeq = 0;
const freshEmail = (tag) => `${tag}.${Date.now().toString(36)}.${++emailSeq}@exemple.dz`;

const api = apiAt;

async function remaining() {
  const r = await api(BASE, 'GET', '/api/promo/LAUNCH30/remaining');
  assert.equal(r.status, 200, r.text);
  return r.json.remaining;
}

async function text(page, selector) {
  return norm(await page.locator(selector).first().textContent());
}

/** The e-mails received so far (To, Subject, Reply-To lines, blank line, text body). */
function mails() {
  return fs.readdirSync(MAIL_DIR).filter((f) => /^\d+\.txt$/.test(f)).sort()
    .map((f) => fs.readFileSync(path.join(MAIL_DIR, f), 'utf8'));
}

async function waitMail(to) {
  for (let i = 0; i < 150; i++) {
    const found = mails().find((m) => m.split('\n')[0].includes(to));
    if (found) return found;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`no e-mail to ${to}; received:\n${mails().map((m) => m.split('\n').slice(0, 2).join(' | ')).join('\n')}`);
}

/** Serves `status` as /api/platform/status and the count as the launch code's, on page `p`. */
async function stub(p, status, remainingNow) {
  await p.unroute('**/api/platform/status').catch(() => {});
  await p.unroute('**/api/promo/LAUNCH30/remaining**').catch(() => {});
  await p.route('**/api/platform/status', (route) => route.fulfill({
    status: 200, contentType: 'application/json', body: JSON.stringify(status),
  }));
  const count = { code: 'LAUNCH30', remaining: remainingNow, total: 30, percent_filled: 0 };
  await p.route('**/api/promo/LAUNCH30/remaining**', (route) => (route.request().url().endsWith('/stream')
    ? route.fulfill({ status: 200, contentType: 'text/event-stream', body: `retry: 60000\nevent: remaining\ndata: ${JSON.stringify(count)}\n\n` })
    : route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(count) })));
}

// An EventSource reconnecting logs an error by design.
const watch = (page, name) => watchPage(page, name, /EventSource/);

// ---------------------------------------------------------------------------------------------

const { context, close } = await launch('landing', ARTIFACTS);
await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE });

const packages = {
  starter: { base: '10 000 DZD', promo: '7 500 DZD', tokens: '1 000 000 jetons / mois', rpm: '30 requêtes / min' },
  dev: { base: '15 000 DZD', promo: '10 050 DZD', tokens: '5 000 000 jetons / mois', rpm: '60 requêtes / min' },
  business: { base: '100 000 DZD', promo: '75 000 DZD', tokens: '30 000 000 jetons / mois', rpm: '300 requêtes / min' },
  premium: { base: '200 000 DZD', promo: '140 000 DZD', tokens: '100 000 000 jetons / mois', rpm: '1 000 requêtes / min' },
};

let exitCode = 0;
try {
  const a = watch(await context.newPage(), 'A');
  run.page = a;
  let apiKey = '';
  const firstEmail = freshEmail('premier');

  await step('the page loads from gateway-rest, in French, and the counter shows 30', async () => {
    const r = await a.goto(PAGE);
    assert.equal(r.status(), 200);
    assert.equal(await a.getAttribute('html', 'lang'), 'fr');
    await waitText(a, '#promo-counter', /^Plus que 30 places sur 30$/);
    assert.equal(await a.getAttribute('#promo', 'data-state'), 'open');
    assert.equal(await a.getAttribute('#promo-progress', 'aria-valuenow'), '0');
    assert.match(await text(a, '#promo-headline'), /LAUNCH30|jusqu’à −33 %/);
  });

  await step('four packages with LAUNCH30 prices, full prices struck through, and quotas', async () => {
    await waitFor(a, () => document.querySelectorAll('.package[data-package]').length === 4, undefined, '4 cards');
    // The discounts come from /api/promo/validate; wait for the page to have them.
    await waitText(a, '.package[data-package="dev"] .price-note', /−33 % pendant 6 mois avec LAUNCH30/);
    for (const [id, p] of Object.entries(packages)) {
      const card = `.package[data-package="${id}"]`;
      assert.equal(await text(a, `${card} .price-now`), p.promo, `${id} price`);
      assert.match(await text(a, `${card} .price-was`), new RegExp(`${p.base}$`), `${id} full price`);
      const quotas = await a.locator(`${card} .quota li`).allTextContents();
      assert.deepEqual(quotas.map(norm), [p.tokens, p.rpm], `${id} quotas`);
      assert.equal(await text(a, `${card} [data-signup]`), `Choisir ${id[0].toUpperCase()}${id.slice(1)} — ${p.promo}/mois`);
    }
  });

  await step('six feature cards, eight FAQ entries, a final CTA', async () => {
    assert.equal(await a.locator('.feature').count(), 6);
    assert.equal(await a.locator('.faq details').count(), 8);
    await a.locator('.faq summary').first().click();
    assert.equal(await a.locator('.faq details').first().getAttribute('open'), '');
    assert.ok(await a.locator('.final-cta [data-signup]').isVisible());
  });

  await step('hero figures come from /api/platform/status, and are hidden when it has none', async () => {
    const s = await api(BASE, 'GET', '/api/platform/status');
    await a.waitForLoadState('networkidle').catch(() => {});
    if (s.status !== 200) {
      assert.equal(await a.locator('#hero-stats').isVisible(), false, 'no figure is known: none is shown');
      console.log(`    (/api/platform/status answers ${s.status}: figures hidden)`);
    } else {
      const { providers_configured: n, median_latency_ms: ms } = s.json;
      const want = { providers: Number.isInteger(n) && n > 0, latency: typeof ms === 'number' };
      console.log(`    (/api/platform/status: ${s.text})`);
      await waitFor(a, (w) => !document.getElementById('stat-providers').hidden === w.providers
        && !document.getElementById('stat-latency').hidden === w.latency, want, 'the hero figures');
      if (want.providers) assert.equal(await text(a, '#stat-providers-value'), String(n));
    }
    // No marketing figure from the prototype (279 ms, 99.9 %, 15+).
    const body = norm(await a.locator('body').textContent());
    for (const made_up of ['279', '99.9', '99,9', '15+']) assert.ok(!body.includes(made_up), `hard-coded ${made_up}`);
  });

  await step('accessibility of the page (axe-core, WCAG 2.1 A/AA) at 1280 and 360 px', async () => {
    await axeCheck(a, 'page, 1280 px');
    await a.setViewportSize({ width: 360, height: 800 });
    await axeCheck(a, 'page, 360 px');
    await a.setViewportSize({ width: 1280, height: 900 });
  });

  await step('the hero shows the figures once the gateway reports them (route stubbed on one page)', async () => {
    const h = watch(await context.newPage(), 'hero');
    run.page = h;
    await h.route('**/api/platform/status', (route) => route.fulfill({
      status: 200,
      contentType: 'application/json',
      body: JSON.stringify({ providers_configured: 7, median_latency_ms: 212.4 }),
    }));
    await h.goto(PAGE);
    await waitFor(h, () => !document.getElementById('hero-stats').hidden, undefined, 'the hero figures');
    assert.equal(await text(h, '#stat-providers-value'), '7');
    assert.equal(await text(h, '#stat-latency-value'), '212 ms');
    await h.unroute('**/api/platform/status');
    await h.route('**/api/platform/status', (route) => route.fulfill({
      status: 200,
      contentType: 'application/json',
      body: JSON.stringify({ providers_configured: 3, median_latency_ms: null }),
    }));
    await h.reload();
    await waitText(h, '#stat-providers-value', /^3$/);
    assert.equal(await h.locator('#stat-latency').isVisible(), false, 'an unknown latency is hidden');
    await h.setViewportSize({ width: 768, height: 900 });
    await h.screenshot({ path: path.join(ARTIFACTS, 'hero-with-figures-768.png'), animations: 'disabled' });
    await h.close();
    run.page = a;
  });

  await step('screenshots at 360, 768 and 1280 px', async () => {
    for (const width of [360, 768, 1280]) {
      await a.setViewportSize({ width, height: 800 });
      await a.evaluate(() => window.scrollTo(0, 0));
      const overflow = await a.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `horizontal overflow of ${overflow} px at ${width} px`);
      await a.screenshot({ path: path.join(ARTIFACTS, `landing-${width}.png`), fullPage: true, animations: 'disabled' });
    }
    await a.setViewportSize({ width: 1280, height: 900 });
  });

  await step('the footer shows the seller from the configuration, never from the HTML', async () => {
    await waitText(a, '.site-footer .footer-name', new RegExp(`^${SELLER.name}$`));
    assert.equal(await a.locator('.site-footer a[href^="mailto:"]').getAttribute('href'), `mailto:${SELLER.email}`);
    assert.equal(await a.locator('.site-footer a[href^="tel:"]').getAttribute('href'), `tel:${SELLER.phone.replace(/[^\d+]/g, '')}`);
    assert.match(await text(a, '.site-footer'), new RegExp(`NIF ${SELLER.nif}`));
    // The contact question of the FAQ appears with the address, as a mailto: link.
    assert.equal(await a.locator('#faq-contact').isVisible(), true, 'the contact question is shown');
    assert.equal(await a.locator('#faq-contact a[href^="mailto:"]').getAttribute('href'), `mailto:${SELLER.email}`);
    // The billing answer quotes the configured terms (default: 15 days, 19 % included, 7 days).
    await waitText(a, '#faq-billing', /sous 15\s*jours.*TVA de 19\s*% comprise.*7\s*jours après l’échéance/);
    const html = (await api(BASE, 'GET', '/api-packages/')).text;
    for (const v of [SELLER.name, SELLER.email, SELLER.nif, SELLER.phone]) assert.ok(!html.includes(v), `${v} written in the HTML`);
  });

  await step('legal pages are reachable from the footer, filled from the configuration, axe-clean', async () => {
    const legal = [
      ['Mentions légales', /Mentions légales/, [SELLER.name, SELLER.nif, 'Nadia Benali', 'Hébergeur Exemple SPA', 'SARL au capital de 1 000 000 DZD', SELLER.email]],
      ['Conditions générales de vente', /Conditions générales de vente/, ['sous 15 jours', 'TVA de 19 % incluse', "7 jours après l'échéance", 'loi n° 18-05']],
      ['Politique de confidentialité', /Politique de confidentialité/, ['Valable 15 minutes', '24 heures', '60 minutes', 'Non conservé', 'au plus 7 jours', '10 ans']],
    ];
    const l = watch(await context.newPage(), 'legal');
    run.page = l;
    for (const [link, title, facts] of legal) {
      await l.goto(PAGE);
      await l.locator('.site-footer nav a', { hasText: link }).click();
      await waitText(l, 'h1', title);
      await waitText(l, '.site-footer .footer-name', new RegExp(`^${SELLER.name}$`));
      const body = norm(await l.locator('main').textContent());
      for (const f of facts) assert.ok(body.includes(f), `${link}: "${f}" missing in: ${body}`);
      assert.ok(!body.includes('…'), `${link}: a field was never filled`);
      await axeCheck(l, `${link}, 1280 px`);
      await l.setViewportSize({ width: 360, height: 800 });
      await axeCheck(l, `${link}, 360 px`);
      const overflow = await l.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `${link}: horizontal overflow of ${overflow} px at 360 px`);
      const slug = new URL(l.url()).pathname.split('/').filter(Boolean).pop();
      await l.screenshot({ path: path.join(ARTIFACTS, `legal-${slug}-360.png`), fullPage: true, animations: 'disabled' });
      await l.setViewportSize({ width: 1280, height: 900 });
    }
    // The privacy page says where the card data stays, and the "no" on names is true: the
    // signup form asks for none.
    assert.equal(await a.locator('#signup-form input').count(), 2, 'the form asks only e-mail and code');
    await l.close();
    run.page = a;
  });

  await step('plurals: one and several providers and places, in French', async () => {
    const h = watch(await context.newPage(), 'plurals');
    run.page = h;
    await stub(h, { providers_configured: 1, median_latency_ms: null, routing_policy: 'fallback', model_makers: ['meta', 'openai'] }, 1);
    await h.goto(PAGE);
    await waitText(h, '#stat-providers-value', /^1$/);
    assert.equal(await text(h, '#stat-providers-label'), 'fournisseur d’IA connecté');
    await waitText(h, '#promo-counter', /^Plus qu’une place sur 30 !$/);
    await waitText(h, '#promo-filled', /^29 places déjà prises$/);
    assert.equal(await h.locator('#feature-failover').isVisible(), false, 'one provider: nothing to fall back to');
    await waitText(h, '#feature-routing-title', /^Ordre de secours$/);
    await waitText(h, '#faq-models', /^Ceux de Meta \(Llama\) et OpenAI, selon votre forfait\./);
    await stub(h, { providers_configured: 3, median_latency_ms: 41, routing_policy: 'lowest_latency', model_makers: ['openai'] }, 2);
    await h.reload();
    await waitText(h, '#stat-providers-value', /^3$/);
    assert.equal(await text(h, '#stat-providers-label'), 'fournisseurs d’IA connectés');
    await waitText(h, '#promo-counter', /^Plus que 2 places sur 30$/);
    await waitText(h, '#promo-filled', /^28 places déjà prises$/);
    assert.equal(await h.locator('#feature-failover').isVisible(), true);
    await waitText(h, '#feature-routing-title', /^Routage au plus rapide$/);
    await stub(h, { providers_configured: 3, median_latency_ms: 41, routing_policy: 'fallback', model_makers: [] }, 29);
    await h.reload();
    await waitText(h, '#promo-filled', /^1 place déjà prise$/);
    await h.close();
    run.page = a;
  });

  await step('plurals in Arabic: one, two, a few, many (providers, places)', async () => {
    const h = watch(await context.newPage(), 'plurals-ar');
    run.page = h;
    // ?lang=ar opens the page in Arabic (a link can share it); it is remembered, so the step
    // ends back in French.
    const cases = [
      [1, 'مزوّد ذكاء اصطناعي متصل', 1, /^بقي مكان واحد فقط من أصل 30!$/],
      [2, 'مزوّدا ذكاء اصطناعي متصلان', 2, /^بقي مكانان فقط من أصل 30$/],
      [3, 'مزوّدي ذكاء اصطناعي متصلين', 3, /^بقي 3 أماكن فقط من أصل 30$/],
      [11, 'مزوّد ذكاء اصطناعي متصلًا', 11, /^بقي 11 مكانًا فقط من أصل 30$/],
    ];
    for (const [n, label, left, counter] of cases) {
      await stub(h, { providers_configured: n, median_latency_ms: null, routing_policy: 'fallback', model_makers: ['meta'] }, left);
      await h.goto(`${PAGE}?lang=ar`);
      await waitText(h, '#stat-providers-value', new RegExp(`^${n}$`));
      assert.equal(await text(h, '#stat-providers-label'), label);
      await waitText(h, '#promo-counter', counter);
    }
    await waitText(h, '#feature-routing-title', /^ترتيب احتياطي$/);
    await h.click('#lang-switch');
    assert.equal(await h.evaluate(() => localStorage.getItem('iaf-lang')), null);
    await h.close();
    run.page = a;
  });

  let arEmail = '';
  await step('Arabic: the switch turns the page right-to-left, in Arabic, and is remembered', async () => {
    const ar = watch(await context.newPage(), 'ar');
    run.page = ar;
    await ar.goto(PAGE);
    await waitText(ar, '#promo-counter', /^Plus que \d+ places sur 30$/);
    assert.equal(await ar.getAttribute('#lang-switch', 'lang'), 'ar');
    await ar.click('#lang-switch');
    assert.equal(await ar.getAttribute('html', 'lang'), 'ar');
    assert.equal(await ar.getAttribute('html', 'dir'), 'rtl');
    await waitText(ar, '#hero-title', /^كل نماذج الذكاء الاصطناعي الكبرى بمفتاح API واحد$/);
    await waitText(ar, '#promo-counter', /^بقي \d+ مكانًا فقط من أصل 30$/);
    await waitText(ar, '.package[data-package="dev"] [data-signup]', /^اختر Dev — 10\.050 دج شهريًا$/);
    await waitText(ar, '.package[data-package="dev"] .price-note', /^تخفيض 33% لمدة 6 أشهر مع LAUNCH30$/);
    assert.equal(await ar.getAttribute('#lang-switch', 'lang'), 'fr');
    assert.equal(await text(ar, '#lang-switch'), 'Français');
    assert.equal(await ar.evaluate(() => localStorage.getItem('iaf-lang')), 'ar');
    // Right-to-left for real: the brand sits on the right, the text starts on the right.
    const box = await ar.locator('.brand').boundingBox();
    assert.ok(box.x > 640, `the brand should be on the right, x = ${box.x}`);
    assert.match(await ar.evaluate(() => getComputedStyle(document.body).fontFamily), /Naskh/);
    // Remembered: a reload and another page of the site open in Arabic.
    await ar.reload();
    await waitText(ar, '#hero-title', /^كل نماذج/);
    assert.equal(await ar.getAttribute('html', 'dir'), 'rtl');
    const other = watch(await context.newPage(), 'ar2');
    await other.goto(PAGE);
    assert.equal(await other.getAttribute('html', 'lang'), 'ar');
    await other.close();
    // Every text of the page is translated: no French sentence left in the main content.
    await waitText(ar, '#faq-billing', /تُسدَّد في أجل 15 يومًا/);
    const main = norm(await ar.locator('main').textContent());
    for (const fr of ['Forfait', 'Questions fréquentes', 'Pourquoi', 'pendant', 'jetons']) assert.ok(!main.includes(fr), `French left: ${fr}`);
    run.page = ar;
    globalThis.arPage = ar;
  });

  await step('Arabic page: 1280 and 360 px screenshots, no overflow, axe-core clean', async () => {
    const ar = globalThis.arPage;
    for (const width of [1280, 360]) {
      await ar.setViewportSize({ width, height: 800 });
      await ar.evaluate(() => window.scrollTo(0, 0));
      const overflow = await ar.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `horizontal overflow of ${overflow} px at ${width} px`);
      await axeCheck(ar, `Arabic page, ${width} px`);
      await ar.screenshot({ path: path.join(ARTIFACTS, `landing-ar-${width}.png`), fullPage: true, animations: 'disabled' });
    }
    // The tall 360 px page, also in parts that can be looked at at full size.
    const height = await ar.evaluate(() => document.documentElement.scrollHeight);
    for (let y = 0, i = 1; y < height; y += 1200, i++) {
      await ar.screenshot({
        path: path.join(ARTIFACTS, `landing-ar-360-part${i}.png`), fullPage: true, animations: 'disabled',
        clip: { x: 0, y, width: 360, height: Math.min(1200, height - y) },
      });
    }
    await ar.setViewportSize({ width: 1280, height: 900 });
  });

  await step('Arabic signup: the dialog in Arabic, and the confirmation e-mail in Arabic with Reply-To', async () => {
    const ar = globalThis.arPage;
    await ar.click('.package[data-package="starter"] [data-signup]');
    await waitText(ar, '#signup-title', /^أنشئ حسابي$/);
    await waitText(ar, '#signup-code-status', /^تخفيض 25% لمدة 6 أشهر!$/);
    await axeCheck(ar, 'Arabic signup form');
    await ar.setViewportSize({ width: 360, height: 780 });
    await ar.screenshot({ path: path.join(ARTIFACTS, 'signup-form-ar-360.png'), animations: 'disabled' });
    await ar.setViewportSize({ width: 1280, height: 900 });
    await ar.fill('#signup-email', 'pas-une-adresse');
    await ar.click('#signup-submit');
    await waitText(ar, '#signup-email-error', /^عنوان البريد الإلكتروني هذا غير صالح/);
    // Full price (no place taken: later steps count the places).
    await ar.fill('#signup-code', '');
    arEmail = freshEmail('arabe');
    await ar.fill('#signup-email', arEmail);
    const answered = ar.waitForResponse((r) => r.url().endsWith('/api/promo/signup'));
    await ar.click('#signup-submit');
    const res = await answered;
    assert.equal(res.status(), 201);
    assert.equal(JSON.parse(res.request().postData()).lang, 'ar');
    await waitText(ar, '#success-title', /^تم إنشاء حسابك!$/);
    await waitText(ar, '#success-plan', /^باقة Starter: 10\.000 دج شهريًا\.$/);
    await axeCheck(ar, 'Arabic key panel');
    await ar.click('#success-close');
    const mail = await waitMail(arEmail);
    const [to, subject, replyTo] = mail.split('\n');
    assert.ok(to.includes(arEmail), to);
    assert.match(subject, /^Subject: أهلًا بك في IAFactory — باقة Starter$/);
    assert.equal(replyTo, `Reply-To: ${SELLER.email}`);
    assert.ok(mail.includes('تم تأكيد اشتراكك في باقة Starter'), mail);
    assert.ok(mail.includes('يكفي أن ترد على هذه الرسالة'), mail);
    assert.ok(mail.includes(SELLER.name), mail);
  });

  await step('back to French: the page is French again and nothing stays stored', async () => {
    const ar = globalThis.arPage;
    await ar.click('#lang-switch');
    assert.equal(await ar.getAttribute('html', 'lang'), 'fr');
    assert.equal(await ar.getAttribute('html', 'dir'), 'ltr');
    await waitText(ar, '#hero-title', /^Tous les grands modèles d'IA derrière une seule clé API$/);
    await waitText(ar, '.package[data-package="dev"] .price-note', /−33 % pendant 6 mois avec LAUNCH30/);
    await waitText(ar, '#promo-counter', /^Plus que \d+ places sur 30$/);
    assert.equal(await ar.evaluate(() => localStorage.getItem('iaf-lang')), null);
    // A French signup e-mail has the French footer and the same Reply-To.
    const fr = mails().find((m) => m.includes('Bienvenue sur IAFactory'));
    if (fr) {
      assert.match(fr.split('\n')[2], new RegExp(`^Reply-To: ${SELLER.email}$`));
      assert.ok(fr.includes('Répondez simplement à ce message'), fr);
    }
    await ar.close();
    run.page = a;
  });

  const b = watch(await context.newPage(), 'B');
  await step('a second page is open at the same time and shows 30', async () => {
    await b.goto(PAGE);
    await waitText(b, '#promo-counter', /^Plus que 30 places sur 30$/);
    // Keyboard from a fresh load: the first Tab shows the skip link, Enter jumps to the content.
    await b.bringToFront();
    await b.keyboard.press('Tab');
    assert.equal(await b.evaluate(() => document.activeElement?.className), 'skip-link', 'first Tab: the skip link');
    assert.ok(await b.evaluate(() => document.activeElement.getBoundingClientRect().top >= 0), 'the focused skip link is visible');
    await b.keyboard.press('Enter');
    await waitFor(b, () => document.activeElement?.id === 'contenu', undefined, 'focus on the main content');
    await b.evaluate(() => { window.__notReloaded = true; });
  });

  await step('keyboard: Tab reaches a package CTA with a visible focus ring, Enter opens the form', async () => {
    await a.bringToFront();
    // Start from the hero's first link; Tab must walk on to a package CTA.
    await a.focus('.hero-actions a');
    let found = null;
    for (let i = 0; i < 40 && !found; i++) {
      await a.keyboard.press('Tab');
      found = await a.evaluate(() => {
        const el = document.activeElement;
        if (!el || !el.matches('.package [data-signup]')) return null;
        const cs = getComputedStyle(el);
        return { id: el.dataset.signup, outline: cs.outlineStyle, width: cs.outlineWidth };
      });
    }
    assert.ok(found, 'no package CTA reached with Tab');
    assert.notEqual(found.outline, 'none', 'focused CTA has no outline');
    assert.notEqual(found.width, '0px', 'focused CTA has no outline');
    await a.keyboard.press('Enter');
    await waitFor(a, () => document.getElementById('signup-dialog').open, undefined, 'the dialog');
    assert.equal(await a.evaluate(() => document.activeElement.id), 'signup-email', 'focus goes to the e-mail field');
    assert.equal(await a.inputValue('#signup-package'), found.id);
    assert.equal(await a.inputValue('#signup-code'), 'LAUNCH30', 'code pre-filled');
    await waitText(a, '#signup-code-status', /^Réduction de 25% pendant 6 mois !$/);
    // Labels: every field has one.
    for (const id of ['signup-email', 'signup-package', 'signup-code']) {
      assert.equal(await a.locator(`label[for="${id}"]`).count(), 1, `label of ${id}`);
    }
    await axeCheck(a, 'signup form');
    await a.waitForTimeout(600); // let the smooth scroll to the focused CTA end
    await a.screenshot({ path: path.join(ARTIFACTS, 'signup-form-1280.png'), animations: 'disabled' });
    await a.keyboard.press('Escape');
    await waitFor(a, () => !document.getElementById('signup-dialog').open, undefined, 'the dialog to close');
    await waitFor(a, (id) => document.activeElement?.dataset?.signup === id, found.id, 'focus back on the CTA');
  });

  await step('a malformed e-mail is refused with a French sentence, nothing is sent', async () => {
    await a.click('.package[data-package="dev"] [data-signup]');
    const before = requests.filter((r) => r.url.endsWith('/api/promo/signup')).length;
    await a.fill('#signup-email', 'pas-une-adresse');
    await a.click('#signup-submit');
    await waitText(a, '#signup-email-error', /Cette adresse e-mail n’est pas valide/);
    assert.equal(await a.getAttribute('#signup-email', 'aria-invalid'), 'true');
    await a.setViewportSize({ width: 360, height: 780 });
    await a.screenshot({ path: path.join(ARTIFACTS, 'signup-error-360.png'), animations: 'disabled' });
    await a.setViewportSize({ width: 1280, height: 900 });
    assert.equal(requests.filter((r) => r.url.endsWith('/api/promo/signup')).length, before);
    // One the page lets through but promo-service refuses (invalid_email, 400): same sentence.
    await a.fill('#signup-email', 'nom..double@exemple.dz');
    const answered = a.waitForResponse((r) => r.url().endsWith('/api/promo/signup'));
    await a.click('#signup-submit');
    assert.equal((await answered).status(), 400);
    await waitText(a, '#signup-email-error', /^Cette adresse e-mail n’est pas valide\. Vérifiez-la, par exemple nom@domaine\.dz\.$/);
    assert.equal(requests.filter((r) => r.url.endsWith('/api/promo/signup')).length, before + 1);
    assert.equal(await remaining(), 30);
  });

  await step('inline validation of the code: unknown code, then lower-case launch30 on dev', async () => {
    await a.fill('#signup-code', 'FAUXCODE');
    await waitText(a, '#signup-code-status', /^Ce code promo n'existe pas\.$/);
    assert.equal(await a.getAttribute('#signup-code-status', 'data-kind'), 'error');
    await a.fill('#signup-code', 'launch30');
    await waitText(a, '#signup-code-status', /^Réduction de 33% pendant 6 mois !$/);
    assert.equal(await a.getAttribute('#signup-code-status', 'data-kind'), 'ok');
    await waitText(a, '#signup-summary', /10 050 DZD par mois pendant 6 mois, puis 15 000 DZD/);
    await a.selectOption('#signup-package', 'premium');
    await waitText(a, '#signup-code-status', /^Réduction de 30% pendant 6 mois !$/);
    await a.selectOption('#signup-package', 'dev');
    await waitText(a, '#signup-code-status', /^Réduction de 33% pendant 6 mois !$/);
  });

  await step('a signup through the form succeeds and shows an iaf_ key once, with a quick start', async () => {
    await a.fill('#signup-email', firstEmail);
    await a.click('#signup-submit');
    await waitFor(a, () => !document.getElementById('signup-success').hidden, undefined, 'the success panel');
    apiKey = await a.inputValue('#api-key');
    assert.match(apiKey, /^iaf_[A-Za-z0-9_-]{16,}$/);
    assert.match(await text(a, '#success-plan'), /^Forfait Dev : 10 050 DZD par mois \(−33 %\) jusqu’au \d{1,2} \S+ \d{4}, puis 15 000 DZD\.$/);
    const curl = await a.textContent('#snippet-curl');
    assert.ok(curl.includes(`curl ${BASE}/v1/chat/completions`), curl);
    assert.ok(curl.includes(apiKey), curl);
    const py = await a.textContent('#snippet-python');
    assert.ok(py.includes(`base_url="${BASE}/v1"`), py);
    assert.ok(py.includes('from openai import OpenAI'), py);
    assert.ok(py.includes('client.chat.completions.create('), py);
    await a.click('#copy-key');
    await waitText(a, '#copy-status', /^Clé copiée dans le presse-papiers\.$/);
    assert.equal(await a.evaluate(() => navigator.clipboard.readText()), apiKey);
    await axeCheck(a, 'key panel');
    // The page's own counter followed too.
    await waitText(a, '#promo-counter', /^Plus que 29 places sur 30$/);
  });

  await step('the second page drops to 29 without reload (server-sent events)', async () => {
    await waitText(b, '#promo-counter', /^Plus que 29 places sur 30$/);
    assert.equal(await b.evaluate(() => window.__notReloaded), true, 'page B was reloaded');
    assert.equal(await b.getAttribute('#promo-progress', 'aria-valuenow'), '1');
    const streamed = requests.filter((r) => r.page === 'B' && r.url.endsWith('/api/promo/LAUNCH30/remaining/stream'));
    assert.ok(streamed.length >= 1, 'page B never opened the event stream');
  });

  await step('screenshot of the key panel at 360 px; closing the dialog forgets the key', async () => {
    await a.setViewportSize({ width: 360, height: 780 });
    await a.screenshot({ path: path.join(ARTIFACTS, 'signup-success-360.png'), animations: 'disabled' });
    await a.setViewportSize({ width: 1280, height: 900 });
    await a.click('#success-close');
    await waitFor(a, () => !document.getElementById('signup-dialog').open, undefined, 'the dialog to close');
    await waitFor(a, () => document.getElementById('api-key').value === '', undefined, 'the key to be wiped');
    assert.equal(await a.evaluate(() => localStorage.length + sessionStorage.length), 0, 'something was stored');
    assert.ok(!(await a.content()).includes(apiKey), 'the key is still in the page');
  });

  await step('an e-mail already used is refused with a French sentence', async () => {
    await a.bringToFront();
    await a.click('.package[data-package="starter"] [data-signup]');
    await a.fill('#signup-email', `  ${firstEmail.toUpperCase()} `);
    await a.click('#signup-submit');
    await waitText(a, '#signup-email-error', /^Cette adresse e-mail est déjà utilisée : un compte existe déjà\./);
    assert.equal(await a.locator('#signup-success').isVisible(), false);
    assert.equal(await remaining(), 29, 'a failed signup took a place');
    await a.keyboard.press('Escape');
  });

  await step('too many attempts (429) is shown as a French sentence', async () => {
    // Use up the strict gateway's burst of 2 signups for 127.0.0.1 (full price: no place taken).
    for (let i = 0; i < 2; i++) {
      const r = await api(STRICT, 'POST', '/api/promo/signup', { email: freshEmail('rafale'), package: 'starter' });
      assert.ok(r.status === 201 || r.status === 429, r.text);
    }
    const s = watch(await context.newPage(), 'strict');
    run.page = s;
    await s.goto(`${STRICT}/api-packages/`);
    await waitText(s, '#promo-counter', /^Plus que 29 places sur 30$/);
    await s.click('.package[data-package="starter"] [data-signup]');
    await s.fill('#signup-email', freshEmail('limite'));
    await s.fill('#signup-code', '');
    await s.click('#signup-submit');
    await waitText(s, '#signup-error', /^Trop de tentatives\. Patientez \d+ secondes? puis réessayez\.$/);
    await s.close();
    run.page = a;
    assert.equal(await remaining(), 29);
  });

  await step('if the event stream fails, the page polls /remaining every 30 s', async () => {
    const p = watch(await context.newPage(), 'polling');
    run.page = p;
    await p.clock.install();
    await p.route('**/remaining/stream', (route) => route.abort());
    let polled = 0;
    p.on('requestfinished', (q) => { if (q.url().endsWith('/api/promo/LAUNCH30/remaining')) polled++; });
    await p.goto(PAGE);
    await waitText(p, '#promo-counter', /^Plus que 29 places sur 30$/);
    // The first read at start, and the one when the stream fails: both answered before the signup.
    for (let i = 0; i < 100 && polled < 2; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(polled, 2, 'expected two reads of /remaining at start (page load, stream failure)');
    const r = await api(BASE, 'POST', '/api/promo/signup', { email: freshEmail('sondage'), package: 'starter', promo_code: 'LAUNCH30' });
    assert.equal(r.status, 201, r.text);
    await p.waitForTimeout(1500);
    assert.equal(await text(p, '#promo-counter'), 'Plus que 29 places sur 30', 'updated without a stream or a poll?');
    await p.clock.fastForward(31000);
    await waitText(p, '#promo-counter', /^Plus que 28 places sur 30$/);
    assert.equal(polled, 3, 'expected one more read of /remaining after 30 s');
    await p.close();
    run.page = a;
  });

  await step('a tab hidden for a minute lets go of its stream, and catches up when shown again', async () => {
    const h = watch(await context.newPage(), 'hidden');
    run.page = h;
    await h.clock.install();
    let streams = 0;
    h.on('request', (q) => { if (q.url().endsWith('/api/promo/LAUNCH30/remaining/stream')) streams++; });
    await h.goto(PAGE);
    const before = await remaining();
    await waitText(h, '#promo-counter', new RegExp(`^Plus que ${before} places sur 30$`));
    assert.equal(streams, 1);
    const setVisibility = (state) => h.evaluate((st) => {
      Object.defineProperty(document, 'visibilityState', { value: st, configurable: true });
      Object.defineProperty(document, 'hidden', { value: st === 'hidden', configurable: true });
      document.dispatchEvent(new Event('visibilitychange'));
    }, state);
    await setVisibility('hidden');
    await h.clock.fastForward(61000);
    const r = await api(BASE, 'POST', '/api/promo/signup', { email: freshEmail('cache'), package: 'starter', promo_code: 'LAUNCH30' });
    assert.equal(r.status, 201, r.text);
    await h.waitForTimeout(1500);
    assert.equal(await text(h, '#promo-counter'), `Plus que ${before} places sur 30`, 'a paused tab was still fed');
    await setVisibility('visible');
    await waitText(h, '#promo-counter', new RegExp(`^Plus que ${before - 1} places sur 30$`));
    assert.equal(streams, 2, 'the stream was not reopened');
    await h.close();
    run.page = a;
  });

  await step('when LAUNCH30 is exhausted, both open pages switch the banner and prices to full price', async () => {
    const takePlace = async () => {
      const r = await api(BASE, 'POST', '/api/promo/signup', { email: freshEmail('remplissage'), package: 'starter', promo_code: 'LAUNCH30' });
      assert.equal(r.status, 201, r.text);
    };
    let left = await remaining();
    while (left > 1) { await takePlace(); left -= 1; }
    await waitText(b, '#promo-counter', /^Plus qu’une place sur 30 !$/);
    await takePlace();
    assert.equal(await remaining(), 0);
    for (const pg of [a, b]) {
      run.page = pg;
      await waitFor(pg, () => document.getElementById('promo').dataset.state === 'over', undefined, 'the banner to say the offer is over');
      await waitText(pg, '#promo-headline', /^L’offre de lancement est terminée : les 30 places ont été prises\.$/);
      await waitText(pg, '#promo-counter', /^Les forfaits restent disponibles au tarif normal\.$/);
      assert.equal(await pg.getAttribute('#promo-progress', 'aria-valuenow'), '30');
      for (const [id, p] of Object.entries(packages)) {
        const card = `.package[data-package="${id}"]`;
        await waitText(pg, `${card} .price-now`, new RegExp(`^${p.base}$`));
        assert.equal(await text(pg, `${card} .price-was`), '', `${id} still shows a struck price`);
        assert.match(await text(pg, `${card} [data-signup]`), new RegExp(`— ${p.base}/mois$`));
        assert.match(await text(pg, `${card} .price-note`), /tarif normal/);
      }
    }
    assert.equal(await b.evaluate(() => window.__notReloaded), true, 'page B was reloaded');
    run.page = a;
    await a.screenshot({ path: path.join(ARTIFACTS, 'exhausted-1280.png'), fullPage: true, animations: 'disabled' });
    await axeCheck(a, 'offer over');
  });

  await step('after exhaustion: no code pre-filled, LAUNCH30 refused in French, full-price signup works', async () => {
    // A background tab runs its timers and animation frames slowly: work in the foreground one.
    await a.bringToFront();
    await a.click('.package[data-package="business"] [data-signup]');
    assert.equal(await a.inputValue('#signup-code'), '');
    await a.fill('#signup-email', freshEmail('tardif'));
    await a.fill('#signup-code', 'LAUNCH30');
    await waitText(a, '#signup-code-status', /^Désolé, toutes les places de ce code promo ont été prises\.$/);
    await a.click('#signup-submit');
    await waitText(a, '#signup-error', /^Il n’y a plus de places : les 30 places de l’offre LAUNCH30 ont toutes été prises\./);
    await a.fill('#signup-code', '');
    await a.click('#signup-submit');
    await waitFor(a, () => !document.getElementById('signup-success').hidden, undefined, 'the success panel');
    assert.match(await a.inputValue('#api-key'), /^iaf_/);
    assert.equal(await text(a, '#success-plan'), 'Forfait Business : 100 000 DZD par mois.');
    await a.keyboard.press('Escape');
  });

  await step('a page opened after exhaustion shows full prices from the start', async () => {
    const c = watch(await context.newPage(), 'C');
    run.page = c;
    await c.setViewportSize({ width: 360, height: 800 });
    await c.goto(PAGE);
    await waitFor(c, () => document.getElementById('promo').dataset.state === 'over', undefined, 'the over banner');
    await waitText(c, '.package[data-package="dev"] .price-now', /^15 000 DZD$/);
    await c.screenshot({ path: path.join(ARTIFACTS, 'exhausted-360.png'), fullPage: true, animations: 'disabled' });
    await c.close();
    run.page = a;
  });

  await step('with promo-service down, the page still shows the packages and says what fails', async () => {
    const d = watch(await context.newPage(), 'down');
    run.page = d;
    await d.goto(`${DOWN}/api-packages/`);
    await waitText(d, '#promo-counter', /^Le nombre de places restantes est momentanément indisponible\.$/);
    await waitFor(d, () => document.querySelectorAll('.package [data-signup]').length === 4, undefined, '4 package CTAs');
    await d.click('.package[data-package="starter"] [data-signup]');
    await d.fill('#signup-email', freshEmail('panne'));
    await d.click('#signup-submit');
    await waitText(d, '#signup-error', /^Le service est momentanément indisponible\. Réessayez dans quelques instants\.$/);
    // An outage is not the visitor's mistake: the code field is not marked invalid.
    assert.equal(await d.getAttribute('#signup-code-status', 'data-kind'), 'warn');
    assert.equal(await d.getAttribute('#signup-code', 'aria-invalid'), 'false');
    await d.screenshot({ path: path.join(ARTIFACTS, 'promo-down-1280.png'), animations: 'disabled' });
    await d.close();
    run.page = a;
  });

  await step('no request left localhost, no script error, no CSP violation', async () => {
    assert.ok(requests.length > 20, `only ${requests.length} requests recorded`);
    const outside = requests.filter((r) => {
      const u = new URL(r.url);
      if (u.protocol === 'data:' || u.protocol === 'blob:') return false;
      return !['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname);
    });
    assert.deepEqual(outside, [], 'requests to other hosts');
    const kinds = new Set(requests.map((r) => new URL(r.url).pathname));
    for (const must of ['/api-packages/', '/api-packages/styles.css', '/api-packages/app.js', '/api-packages/i18n.js', '/api-packages/site.js', '/api/site', '/api-packages/mentions-legales/', '/api-packages/cgv/', '/api-packages/confidentialite/', '/api/promo/LAUNCH30/remaining/stream', '/api/promo/packages', '/api/promo/validate', '/api/promo/signup']) {
      assert.ok(kinds.has(must), `${must} was never requested`);
    }
    assert.deepEqual(pageErrors, [], 'script errors');
    assert.deepEqual(consoleProblems, [], 'console problems');
    const hosts = [...new Set(requests.map((r) => new URL(r.url).host))].sort();
    console.log(`    ${requests.length} requests, all to ${hosts.join(', ')}`);
  });
} catch {
  exitCode = 1;
} finally {
  await close();
}

console.log(exitCode === 0 && run.failures === 0 ? '# all landing page checks passed' : '# landing page checks FAILED');
console.log(`# screenshots: ${ARTIFACTS}`);
process.exit(exitCode || run.failures ? 1 : 0);
