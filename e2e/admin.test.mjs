// Browser test of the operator console (/admin/) against the whole platform.
//
// Started by `cargo test -p gateway-rest --test landing operator_console` (gateway-rest/tests/landing),
// which runs promo-service (on a manual clock), llm-gateway (its one model routed to a local
// upstream speaking OpenAI's wire format at known prices) and gateway-rest on random loopback
// ports, makes two operators with the admin token (owner Amel, support Sami), signs four
// customers up on three days, and passes:
//   ADMIN_BASE_URL          gateway-rest, e.g. http://127.0.0.1:41234
//   ADMIN_SIGNUP_DAYS       the UTC day of each signup, comma-separated (dev, starter, business, premium)
//   ADMIN_CHAT_KEY          the premium customer's API key
//   ADMIN_MODEL / ADMIN_PROVIDER          the model the customer calls and the provider serving it
//   ADMIN_PRICES_USD_PER_MTOK             its input,output prices in dollars per million tokens
//   ADMIN_UPSTREAM_USAGE                  prompt,completion tokens the upstream reports per call
//   ADMIN_USD_DZD_RATE_MILLI              gateway-rest's USD_DZD_RATE, in thousandths of a dinar
//   ADMIN_OWNER_PASSWORD / ADMIN_SUPPORT_PASSWORD
//   ADMIN_ARTIFACTS         folder for screenshots (target/screenshots/admin)
//
// Every figure the pages show is checked against what this fixture did. Prints one line per
// step and exits 1 at the first failure, after a screenshot.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  api as apiAt, axeCheck, launch, mustEnv, norm, requests, pageErrors, consoleProblems, run, step,
  waitFor, waitText, watch,
} from './harness.mjs';

const BASE = mustEnv('ADMIN_BASE_URL');
const DAYS = mustEnv('ADMIN_SIGNUP_DAYS').split(',');
const KEY = mustEnv('ADMIN_CHAT_KEY');
const OWNER_PASSWORD = mustEnv('ADMIN_OWNER_PASSWORD');
const SUPPORT_PASSWORD = mustEnv('ADMIN_SUPPORT_PASSWORD');
const ARTIFACTS = process.env.ADMIN_ARTIFACTS || path.resolve('..', 'target', 'screenshots', 'admin');
const CONSOLE = `${BASE}/admin/`;
const LANDING = `${BASE}/api-packages/`;
const MODEL = mustEnv('ADMIN_MODEL');
const PROVIDER = mustEnv('ADMIN_PROVIDER');
const [PRICE_IN, PRICE_OUT] = mustEnv('ADMIN_PRICES_USD_PER_MTOK').split(',').map(Number);
const [UP_PROMPT, UP_COMPLETION] = mustEnv('ADMIN_UPSTREAM_USAGE').split(',').map(Number);
const RATE_MILLI = BigInt(mustEnv('ADMIN_USD_DZD_RATE_MILLI'));
const CHAT_CALLS = 2;
// What the fixture's calls cost upstream, computed here from the prices and the usage (1 $ per
// million tokens is 1 000 nano-dollars per token), and in dinars at the configured rate, rounded
// up to the dinar as the console says it does.
const CALL_NANO_USD = BigInt(Math.round(UP_PROMPT * PRICE_IN * 1000 + UP_COMPLETION * PRICE_OUT * 1000));
const COST_NANO_USD = CALL_NANO_USD * BigInt(CHAT_CALLS);
const dzdCeil = (nano) => Number((nano * RATE_MILLI + 999_999_999_999n) / 1_000_000_000_000n);
const COST_DZD = dzdCeil(COST_NANO_USD);
/** Dollars as the console prints them (fr-FR, 2 to 6 decimals). */
const usdText = (nano) => norm(`${new Intl.NumberFormat('fr-FR', { minimumFractionDigits: 2, maximumFractionDigits: 6 }).format(Number(nano) / 1e9)} $`);

const nf = new Intl.NumberFormat('fr-FR');
const dzd = (v) => norm(`${nf.format(v)} DZD`);
const api = (method, p, body, headers) => apiAt(BASE, method, p, body, headers);
const shortDay = (d) => { const p = d.split('-'); return `${Number(p[2])}/${Number(p[1])}`; };
const blocked = [];

async function shot(page, name, fullPage = true) {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage, animations: 'disabled' });
}

/** Full-page screenshot of a narrow viewport, cut in slices of 900 px (readable one by one). */
async function slices(page, name, count = 3) {
  for (let i = 0; i < count; i++) {
    await page.screenshot({ path: path.join(ARTIFACTS, `${name}-${i + 1}.png`), fullPage: true, animations: 'disabled',
      clip: { x: 0, y: i * 900, width: 360, height: 900 } });
  }
}

/** The accessible title of the SVG chart inside `holder`. */
async function chartTitle(page, holder) {
  return norm(await page.evaluate((h) => document.querySelector(`#${h} svg title`)?.textContent ?? '', holder));
}

/** Signs out and waits until the server has ended the session: a navigation right after the click
 * would cancel the page's DELETE and leave the old session in place. */
async function signOut(page) {
  await page.click('#signout');
  await waitFor(page, () => !document.getElementById('connexion').hidden, undefined, 'signed out');
}

async function signIn(page, email, password) {
  await page.goto(CONSOLE);
  await waitFor(page, () => !document.getElementById('connexion').hidden, undefined, 'the sign-in form');
  await page.fill('#email', email);
  await page.fill('#password', password);
  await page.click('#signin-form button[type=submit]');
  await waitFor(page, () => !document.getElementById('console').hidden, undefined, 'the console');
  // Every section loaded.
  await waitFor(page, () => document.querySelector('#chart-signups svg') && document.querySelector('#audit-table tbody tr')
    && document.querySelector('#customers-table tbody tr') && document.querySelector('#codes .catalogue-item')
    && document.querySelector('#providers-table tbody tr'), undefined, 'the sections');
}

const { context, close } = await launch('admin', ARTIFACTS);
await context.route((url) => !['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname) && !/^(data|blob):/.test(url.protocol), (route) => {
  blocked.push(route.request().url());
  return route.abort('blockedbyclient');
});

let exitCode = 0;
try {
  const visitor = watch(await context.newPage(), 'visitor');
  run.page = visitor;
  let chatTokens = 0;

  await step('visitors: three landing views, one click on a signup button, one code check are counted', async () => {
    // Each event's answer is awaited before the next action, so none is cut short by a navigation.
    const counted = (name) => visitor.waitForResponse((r) => r.url().endsWith('/api/evenements')
      && (r.request().postData() || '').includes(`"${name}"`), { timeout: 10000 });
    for (let i = 0; i < 3; i++) {
      const view = counted('landing_view');
      await visitor.goto(LANDING);
      assert.equal((await view).status(), 204);
      await waitFor(visitor, () => document.querySelector('.package[data-package="dev"] .price-now')?.textContent.trim(), undefined, 'the package cards');
    }
    const click = counted('cta_click');
    const check = counted('code_check');
    await visitor.click('.package[data-package="dev"] [data-signup]');
    assert.equal((await click).status(), 204);
    await waitFor(visitor, () => document.getElementById('signup-dialog').open, undefined, 'the signup dialog');
    assert.equal((await check).status(), 204);
    await waitText(visitor, '#signup-code-status', /33/);
    // What was sent: the event's name and nothing else, without cookie.
    const sent = requests.filter((r) => r.url.endsWith('/api/evenements'));
    assert.equal(sent.length, 5);
  });

  await step('a customer makes two chat calls, served by the priced local upstream', async () => {
    for (let i = 0; i < CHAT_CALLS; i++) {
      const r = await api('POST', '/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: `Question ${i}` }] },
        { authorization: `Bearer ${KEY}` });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.usage.prompt_tokens, UP_PROMPT);
      assert.equal(r.json.usage.completion_tokens, UP_COMPLETION);
      chatTokens += r.json.usage.total_tokens;
    }
    assert.equal(chatTokens, CHAT_CALLS * (UP_PROMPT + UP_COMPLETION));
    // The fixture's cost is not trivially small: several dinars, not a rounded-up zero.
    assert.ok(COST_DZD > 10, `${COST_DZD} DZD`);
  });

  const page = watch(await context.newPage(), 'console');
  run.page = page;

  await step('the sign-in page: French, accessible, and one answer for any wrong credential', async () => {
    const r = await page.goto(CONSOLE);
    assert.equal(r.status(), 200);
    assert.equal(await page.getAttribute('html', 'lang'), 'fr');
    assert.match(r.headers()['content-security-policy'], /default-src 'none'/);
    await waitFor(page, () => !document.getElementById('connexion').hidden, undefined, 'the sign-in form');
    await axeCheck(page, 'console sign-in');
    await shot(page, 'connexion-1280', false);
    await page.fill('#email', 'amel@iafactory.dz');
    await page.fill('#password', 'not the password');
    await page.click('#signin-form button[type=submit]');
    await waitText(page, '#signin-status', /incorrect/);
    const wrong = norm(await page.textContent('#signin-status'));
    await page.fill('#email', 'nobody@iafactory.dz');
    await page.click('#signin-form button[type=submit]');
    await waitFor(page, (w) => document.getElementById('signin-status').textContent.replace(/\s+/g, ' ').trim() === w && true, wrong, 'the same refusal');
    assert.equal(norm(await page.textContent('#signin-status')), wrong);
  });

  await step('owner: the dashboard shows places, customers, MRR, signups per day, revenue per package and the funnel', async () => {
    await signIn(page, 'amel@iafactory.dz', OWNER_PASSWORD);
    await waitText(page, '#whoami', /Amel.*propriétaire/);
    assert.equal(norm(await page.textContent('#kpi-places')), '27 / 30');
    assert.equal(norm(await page.textContent('#kpi-customers')), '4');
    // dev 10 050 + starter 7 500 (LAUNCH30) + business 100 000 + premium 140 000 (LAUNCH30).
    assert.equal(norm(await page.textContent('#kpi-mrr')), dzd(257550));
    const signups = await chartTitle(page, 'chart-signups');
    const perDay = {};
    for (const d of DAYS) perDay[d] = (perDay[d] || 0) + 1;
    for (const [d, n] of Object.entries(perDay)) assert.ok(signups.includes(`${shortDay(d)} ${n}`), `${d}: ${n} in ${signups}`);
    assert.match(norm(await page.textContent('#chart-signups .chart-legend')), /Total : 4/);
    const revenue = await chartTitle(page, 'chart-revenue');
    for (const [name, amount, n] of [['Starter', 7500, 1], ['Dev', 10050, 1], ['Business', 100000, 1], ['Premium', 140000, 1]]) {
      assert.ok(revenue.includes(`${name} ${dzd(amount)} (${n} client)`), `${name} in ${revenue}`);
    }
    const funnel = await chartTitle(page, 'chart-funnel');
    assert.ok(funnel.includes('Visites 3'), funnel);
    assert.ok(funnel.includes('Clics 1 (33,3 % des visites)'), funnel);
    assert.ok(funnel.includes('Codes vérifiés 1 (100 % des clics)'), funnel);
    // Signups come from the signups table, over the same 30 days.
    assert.ok(funnel.includes('Inscriptions 4'), funnel);
    // Today's MRR snapshot (written by the periodic job) is on the chart.
    await waitFor(page, () => Boolean(document.querySelector('#chart-mrr svg')), undefined, 'the MRR chart');
    assert.ok((await chartTitle(page, 'chart-mrr')).includes(dzd(257550)));
    await axeCheck(page, 'console, owner');
  });

  await step('owner: a marketing spend gives the month its CAC', async () => {
    const today = DAYS[3];
    await page.fill('#spend-day', today);
    await page.fill('#spend-channel', 'radio');
    await page.fill('#spend-amount', '8000');
    await page.click('#spend-form button[type=submit]');
    await waitText(page, '#spend-status', /ajoutée/);
    const month = today.slice(0, 7);
    const inMonth = DAYS.filter((d) => d.startsWith(month)).length;
    const row = page.locator('#cac-table tbody tr', { hasText: month });
    await waitFor(page, (m) => [...document.querySelectorAll('#cac-table tbody tr')].some((r) => r.textContent.includes(m) && /8\s000/.test(r.textContent)), month, 'the CAC row');
    const cells = (await row.locator('td').allTextContents()).map(norm);
    assert.deepEqual(cells, [month, dzd(8000), String(inMonth), dzd(Math.round(8000 / inMonth))]);
    await waitText(page, '#spend-table tbody', /radio/);
  });

  await shot(page, 'tableau-1280');
  await page.setViewportSize({ width: 360, height: 780 });
  // The charts are drawn again for the narrow width.
  await waitFor(page, () => Number(document.querySelector('#chart-funnel svg').getAttribute('width')) < 400, undefined, 'narrow charts');
  await shot(page, 'tableau-360');
  await slices(page, 'tableau-360', 4);
  await page.setViewportSize({ width: 1280, height: 900 });

  await step('owner: customers are searched, and one shows its keys and this month\'s usage in tokens', async () => {
    await page.fill('#search', 'PREMIUM.client');
    await page.click('#search-form button[type=submit]');
    await waitText(page, '#customers-count', /^1 client trouvé/);
    await page.click('#customers-table tbody tr button');
    await waitText(page, '#customer-title', /premium\.client@exemple\.dz/);
    await waitText(page, '#customer-usage', new RegExp(`${nf.format(chatTokens).replace(/\s/g, '\\s')} jetons sur ${nf.format(100000000).replace(/\s/g, '\\s')}`));
    assert.match(norm(await page.textContent('#customer-usage')), /2 requêtes/);
    assert.match(norm(await page.textContent('#customer-summary')), /Forfait premium : 140 000 DZD \/ mois avec LAUNCH30 \(−30 %/);
    await page.selectOption('#filter-package', 'dev');
    await page.fill('#search', '');
    await page.click('#search-form button[type=submit]');
    await waitText(page, '#customers-count', /^1 client trouvé/);
    await waitText(page, '#customers-table tbody', /dev\.client@exemple\.dz/);
    await page.selectOption('#filter-package', '');
    await page.click('#search-form button[type=submit]');
    await waitText(page, '#customers-count', /^4 clients trouvés/);
    await shot(page, 'clients-1280');
  });

  await step('owner: the customer\'s margin this month is what they pay less what they cost upstream, in dinars', async () => {
    // The two calls' upstream cost, computed from the fixture's prices and usage, in dinars at the
    // configured rate (rounded up); the margin is the month's price (premium with LAUNCH30) less it.
    await waitText(page, '#customer-margin', /Marge/);
    const m = norm(await page.textContent('#customer-margin'));
    assert.ok(m.includes(`Coût fournisseurs de ${DAYS[3].slice(0, 7)} : ${dzd(COST_DZD)} (${usdText(COST_NANO_USD)}`), m);
    assert.ok(m.includes(`à ${(Number(RATE_MILLI) / 1000).toLocaleString('fr-FR')} DZD le dollar`), m);
    assert.ok(m.includes(`Revenu du mois : ${dzd(140000)}. Marge : ${dzd(140000 - COST_DZD)}.`), m);
    assert.ok(m.includes('arrondi au dinar supérieur'), m);
  });

  await step('owner: the request log lists the two chat calls, filters them, and the providers page counts them', async () => {
    await page.click('#calls-form button[type=submit]');
    await waitFor(page, () => document.querySelectorAll('#calls-table tbody tr').length === 2, undefined, 'two calls');
    const rows = (await page.locator('#calls-table tbody tr').allTextContents()).map(norm);
    for (const r of rows) {
      assert.ok(r.includes(MODEL) && r.includes(PROVIDER) && r.includes('Réussi'), r);
      assert.ok(r.includes(KEY.slice(0, 10)), r);
      // Each call's cost, in dollars as computed from the fixture.
      assert.ok(r.includes(usdText(CALL_NANO_USD)), `${usdText(CALL_NANO_USD)} in ${r}`);
    }
    assert.match(norm(await page.textContent('#calls-count')), /^2 appels affichés/);
    // Tokens shown add up to what /v1 answered.
    const shown = await page.evaluate(() => [...document.querySelectorAll('#calls-table tbody tr td:nth-child(6)')]
      .map((td) => td.textContent.replace(/\s/g, '').split('/').map(Number)).reduce((s, [a, b]) => s + a + b, 0));
    assert.equal(shown, chatTokens);
    await page.selectOption('#calls-status', 'error');
    await page.click('#calls-form button[type=submit]');
    await waitText(page, '#calls-count', /Aucun appel/);
    await page.selectOption('#calls-status', '');
    await page.fill('#calls-model', 'autre-modele');
    await page.click('#calls-form button[type=submit]');
    await waitText(page, '#calls-count', /Aucun appel/);
    await page.fill('#calls-model', '');
    await page.click('#calls-form button[type=submit]');
    await waitText(page, '#calls-count', /^2 appels/);
    await page.selectOption('#providers-hours', '1');
    await page.click('#providers-form button[type=submit]');
    await waitFor(page, (p) => [...document.querySelectorAll('#providers-table tbody tr')].some((r) => r.textContent.trim().startsWith(p)
      && r.children[2].textContent.trim() === '2'), PROVIDER, 'the local provider with 2 calls');
    const local = norm(await page.locator('#providers-table tbody tr', { hasText: PROVIDER }).first().textContent());
    assert.ok(local.includes('0 % (0)'), local);
    // Its cost over the window: the two calls, in dinars (rounded up) and dollars.
    assert.ok(local.includes(`${dzd(COST_DZD)} (${usdText(COST_NANO_USD)})`), local);
    await waitFor(page, () => Boolean(document.querySelector('#chart-provider-cost svg')), undefined, 'the cost chart');
    const costChart = await chartTitle(page, 'chart-provider-cost');
    assert.ok(costChart.includes(`Coût de ${PROVIDER} par jour`), costChart);
    assert.ok(costChart.includes(dzd(COST_DZD)), `${dzd(COST_DZD)} in ${costChart}`);
    await axeCheck(page, 'console, calls and providers');
    await page.locator('#appels').screenshot({ path: path.join(ARTIFACTS, 'appels-1280.png'), animations: 'disabled' });
    await page.locator('#fournisseurs').screenshot({ path: path.join(ARTIFACTS, 'fournisseurs-1280.png'), animations: 'disabled' });
    await page.setViewportSize({ width: 360, height: 780 });
    await page.locator('#appels').screenshot({ path: path.join(ARTIFACTS, 'appels-360.png'), animations: 'disabled' });
    await page.locator('#fournisseurs').screenshot({ path: path.join(ARTIFACTS, 'fournisseurs-360.png'), animations: 'disabled' });
    await page.locator('#customer').screenshot({ path: path.join(ARTIFACTS, 'marge-360.png'), animations: 'disabled' });
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  await step('owner: "Exporter en CSV" downloads the filtered request log, with the costs computed from the fixture', async () => {
    await page.fill('#calls-model', MODEL);
    await page.click('#calls-form button[type=submit]');
    await waitText(page, '#calls-count', /^2 appels/);
    assert.ok(!(await page.isHidden('#calls-export')));
    assert.equal(await page.getAttribute('#calls-export', 'href'), `/api/admin/appels/export.csv?modele=${encodeURIComponent(MODEL)}`);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#calls-export')]);
    assert.equal(download.suggestedFilename(), 'appels.csv');
    const text = fs.readFileSync(await download.path(), 'utf8');
    const lines = text.split('\r\n').filter((l) => l);
    const cells = (l) => l.slice(1, -1).split('","');
    const header = cells(lines[0]);
    assert.deepEqual(header.slice(0, 3), ['id', 'at', 'customer_id']);
    assert.equal(lines.length, 1 + CHAT_CALLS, text);
    const col = (n) => header.indexOf(n);
    const exactUsd = (nano) => `${nano / 1_000_000_000n}.${String(nano % 1_000_000_000n).padStart(9, '0')}`;
    for (const l of lines.slice(1)) {
      const c = cells(l);
      assert.equal(c[col('model')], MODEL);
      assert.equal(c[col('provider')], PROVIDER);
      assert.equal(c[col('key_prefix')], KEY.slice(0, 10));
      assert.equal(c[col('prompt_tokens')], String(UP_PROMPT));
      assert.equal(c[col('completion_tokens')], String(UP_COMPLETION));
      assert.equal(c[col('cost_usd')], exactUsd(CALL_NANO_USD));
      assert.equal(c[col('status')], 'ok');
    }
    await page.fill('#calls-model', '');
    await page.click('#calls-form button[type=submit]');
    await waitText(page, '#calls-count', /^2 appels/);
  });

  await step('owner: revoking the key stops it; suspending and resuming are shown', async () => {
    await page.fill('#search', 'premium');
    await page.click('#search-form button[type=submit]');
    await waitText(page, '#customers-count', /^1 client trouvé/);
    await page.click('#customers-table tbody tr button');
    await waitText(page, '#customer-title', /premium/);
    await page.click('#customer-keys tbody tr button');
    await waitText(page, '#customer-status', /Clé révoquée/);
    await waitText(page, '#customer-keys tbody', /Révoquée/);
    // The key is refused on /v1 once llm-gateway's key cache (5 s) has let it go.
    const deadline = Date.now() + 15000;
    let status = 200;
    while (Date.now() < deadline) {
      status = (await api('POST', '/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'encore' }] },
        { authorization: `Bearer ${KEY}` })).status;
      if (status === 401) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(status, 401);
    await page.click('#suspend');
    await waitText(page, '#customer-status', /Compte suspendu/);
    await waitText(page, '#customer-summary', /Compte suspendu/);
    await page.click('#suspend');
    await waitText(page, '#customer-status', /Compte réactivé/);
  });

  await step('owner: the CSV export holds every customer', async () => {
    const r = await page.evaluate(async () => {
      const res = await fetch('/api/admin/clients/export.csv', { credentials: 'same-origin' });
      return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
    });
    assert.equal(r.status, 200, r.text);
    assert.match(r.type, /text\/csv/);
    const lines = r.text.trim().split(/\r?\n/);
    assert.equal(lines.length, 5);
    for (const e of ['dev.client', 'starter.client', 'business.client', 'premium.client']) assert.ok(r.text.includes(`${e}@exemple.dz`), e);
    assert.ok(!(await page.isHidden('#export')));
  });

  await step('owner: a package price and the launch code\'s discount edited in the console change the landing page', async () => {
    await page.fill('#pkg-starter-price', '14000');
    await page.click('#packages .catalogue-item:first-child button[type=submit]');
    await waitText(page, '#packages .catalogue-item:first-child .field-status', /enregistré/);
    await page.fill('#code-LAUNCH30-d-dev', '20');
    await page.click('#codes .catalogue-item:first-child button[type=submit]');
    await waitText(page, '#codes .catalogue-item:first-child .field-status', /enregistré/);
    await visitor.goto(LANDING);
    // Starter 14 000 − 25 % = 10 500; Dev 15 000 − 20 % = 12 000.
    await waitText(visitor, '.package[data-package="starter"] .price-now', /10\s500/);
    await waitText(visitor, '.package[data-package="dev"] .price-now', /12\s000/);
    const html = await (await fetch(LANDING)).text();
    assert.ok(!/33\s*(&nbsp;|\u00a0)?%/.test(html), 'no discount written in the page\'s HTML');
  });

  await step('owner: the audit log names the operator for every change, and the admin token for the operators', async () => {
    await page.reload();
    await waitFor(page, () => document.querySelectorAll('#audit-table tbody tr').length >= 7, undefined, 'the audit rows');
    const rows = (await page.locator('#audit-table tbody tr').allTextContents()).map(norm);
    const expect = [
      ['Amel', 'Code modifié', 'LAUNCH30'],
      ['Amel', 'Forfait modifié', 'starter'],
      ['Amel', 'Compte réactivé'],
      ['Amel', 'Compte suspendu'],
      ['Amel', 'Clé révoquée'],
      ['Amel', 'Dépense ajoutée'],
      ['admin-token', 'Opérateur créé', 'sami@iafactory.dz'],
      ['admin-token', 'Opérateur créé', 'amel@iafactory.dz'],
    ];
    assert.equal(rows.length, expect.length, rows.join('\n'));
    expect.forEach((parts, i) => parts.forEach((p) => assert.ok(rows[i].includes(p), `row ${i}: ${p} in ${rows[i]}`)));
    assert.ok(rows[1].includes('"monthly_price_dzd" : 10000 → 14000') || rows[1].includes('monthly_price_dzd : 10000 → 14000'), rows[1]);
    await shot(page, 'journal-1280');
    await signOut(page);
  });

  await step('support: reads the same figures, changes nothing, and the CSV export is refused', async () => {
    await signIn(page, 'sami@iafactory.dz', SUPPORT_PASSWORD);
    await waitText(page, '#whoami', /Sami.*support/);
    assert.equal(norm(await page.textContent('#kpi-customers')), '4');
    assert.ok(await page.isHidden('#export'));
    assert.ok(await page.isHidden('#calls-export'));
    assert.ok(await page.isHidden('#spend-form'));
    assert.ok(await page.isHidden('#operator-form'));
    await waitText(page, '#operators-table tbody', /Amel.*Propriétaire.*Sami.*Support/);
    assert.equal(await page.locator('#packages button[type=submit]').count(), 0);
    // Support reads the request log and the providers too.
    await waitFor(page, () => document.querySelectorAll('#calls-table tbody tr').length >= 2, undefined, 'the calls, as support');
    await waitFor(page, (p) => [...document.querySelectorAll('#providers-table tbody tr')].some((r) => r.textContent.trim().startsWith(p)), PROVIDER, 'the providers, as support');
    const r = await page.evaluate(async () => {
      const csrf = await fetch('/api/admin/moi').then((x) => x.json()).then((m) => m.csrf_token);
      const exp = await fetch('/api/admin/clients/export.csv');
      const calls = await fetch('/api/admin/appels/export.csv');
      const patch = await fetch('/api/admin/forfaits/starter', {
        method: 'PATCH', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf }, body: JSON.stringify({ monthly_price_dzd: 1 }),
      });
      return { exp: exp.status, expBody: await exp.text(), calls: calls.status, callsBody: await calls.text(), patch: patch.status };
    });
    assert.equal(r.exp, 403, r.expBody);
    assert.match(r.expBody, /permission_denied/);
    assert.equal(r.calls, 403, r.callsBody);
    assert.match(r.callsBody, /permission_denied/);
    assert.ok(!r.callsBody.includes('customer_id'), r.callsBody);
    assert.equal(r.patch, 403);
    await axeCheck(page, 'console, support');
    await page.setViewportSize({ width: 360, height: 780 });
    await waitFor(page, () => Number(document.querySelector('#chart-funnel svg').getAttribute('width')) < 400, undefined, 'narrow charts');
    await shot(page, 'support-360');
    await slices(page, 'support-360', 2);
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  await step('operators: Amel promotes Sami, deactivates him (his session ends at once), cannot step down as the last active owner, reactivates him, sets a cost budget and changes her password; all in the journal', async () => {
    // Sami is signed in on this page: his session cookie, to try it after the deactivation.
    assert.ok(!(await page.isHidden('#own-password')), 'an operator can change their own password');
    const samiCookie = (await context.cookies(BASE)).find((c) => /operator/.test(c.name));
    assert.ok(samiCookie, 'the operator session cookie');
    const asSami = () => fetch(`${BASE}/api/admin/moi`, { headers: { cookie: `${samiCookie.name}=${samiCookie.value}` } });
    assert.equal((await asSami()).status, 200);
    await signOut(page);
    await signIn(page, 'amel@iafactory.dz', OWNER_PASSWORD);
    const row = (email) => `#operators-table tbody tr[data-operator="${email}"]`;
    await waitText(page, row('sami@iafactory.dz'), /Support.*Actif/);
    await page.click(`${row('sami@iafactory.dz')} button:has-text("Passer propriétaire")`);
    await waitText(page, row('sami@iafactory.dz'), /Propriétaire.*Actif/);
    await page.click(`${row('sami@iafactory.dz')} button:has-text("Désactiver")`);
    await waitText(page, row('sami@iafactory.dz'), /Propriétaire.*Désactivé le/);
    assert.equal((await asSami()).status, 401, 'the deactivated operator\'s session ended at once');
    const samiSignIn = await api('POST', '/api/admin/session', { email: 'sami@iafactory.dz', password: SUPPORT_PASSWORD });
    assert.equal(samiSignIn.status, 401, samiSignIn.text);
    // Sami is deactivated: Amel is the last active owner.
    await page.click(`${row('amel@iafactory.dz')} button:has-text("Passer en support")`);
    await waitText(page, '#operators-table-status', /dernier propriétaire actif/);
    await waitText(page, row('amel@iafactory.dz'), /Propriétaire.*Actif/);
    await page.click(`${row('sami@iafactory.dz')} button:has-text("Réactiver")`);
    await waitText(page, row('sami@iafactory.dz'), /Propriétaire.*Actif/);
    // The margin protection: a cost budget in dollars, stored in nano-dollars.
    await page.fill('#pkg-business-budget', '12,5');
    await page.click('#packages .catalogue-item:nth-child(3) button[type=submit]');
    await waitText(page, '#packages .catalogue-item:nth-child(3) .field-status', /enregistré/);
    await page.locator('#packages .catalogue-item:nth-child(3)').screenshot({ path: path.join(ARTIFACTS, 'budget-1280.png'), animations: 'disabled' });
    const pkgs = await page.evaluate(() => fetch('/api/admin/forfaits').then((r) => r.json()));
    assert.equal(pkgs.packages.find((p) => p.id === 'business').monthly_cost_budget_nano_usd, 12_500_000_000);
    const pub = await api('GET', '/api/promo/packages');
    assert.ok(!pub.text.includes('budget'), 'the public package list never shows our cost price');
    // Her own password: the current one is required.
    await page.fill('#pw-current', 'not my password at all');
    await page.fill('#pw-new', 'a brand new owner passphrase');
    await page.click('#password-form button[type=submit]');
    await waitText(page, '#password-status', /incorrect/);
    await page.fill('#pw-current', OWNER_PASSWORD);
    await page.fill('#pw-new', 'a brand new owner passphrase');
    await page.click('#password-form button[type=submit]');
    await waitText(page, '#password-status', /Mot de passe changé/);
    await page.locator('#operateurs').screenshot({ path: path.join(ARTIFACTS, 'operators-1280.png'), animations: 'disabled' });
    await axeCheck(page, 'console, operators');
    await signOut(page);
    await signIn(page, 'amel@iafactory.dz', 'a brand new owner passphrase');
    await waitFor(page, () => document.querySelectorAll('#audit-table tbody tr').length >= 6, undefined, 'the audit rows');
    const rows = (await page.locator('#audit-table tbody tr').allTextContents()).map(norm);
    const expect = [
      ['Amel', 'Mot de passe changé', 'amel@iafactory.dz'],
      ['Amel', 'Forfait modifié', 'business', '12500000000'],
      ['Amel', 'Opérateur réactivé', 'sami@iafactory.dz'],
      ['Amel', 'Opérateur désactivé', 'sami@iafactory.dz'],
      ['Amel', 'Rôle changé', 'sami@iafactory.dz', '"support" → "owner"'],
    ];
    expect.forEach((parts, i) => parts.forEach((p) => assert.ok(rows[i].includes(p), `row ${i}: ${p} in ${rows[i]}`)));
    await page.setViewportSize({ width: 360, height: 780 });
    await page.locator('#operateurs').screenshot({ path: path.join(ARTIFACTS, 'operators-360.png'), animations: 'disabled' });
    // The charts redraw for the narrow width: let the layout settle before the picture.
    await page.waitForTimeout(500);
    await page.locator('#packages .catalogue-item:nth-child(3)').screenshot({ path: path.join(ARTIFACTS, 'budget-360.png'), animations: 'disabled' });
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  await step('nothing was loaded from outside, no script error, no CSP violation', async () => {
    assert.deepEqual(blocked, []);
    const outside = requests.filter((r) => !r.url.startsWith(BASE) && !/^(data|blob):/.test(r.url));
    assert.deepEqual(outside, []);
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(consoleProblems, []);
  });
} catch (e) {
  exitCode = 1;
} finally {
  await close();
}
process.exit(exitCode);
