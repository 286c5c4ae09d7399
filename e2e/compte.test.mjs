// Browser test of the customer account (/compte/) against the whole platform.
//
// Started by `cargo test -p gateway-rest --test landing customer_account` (gateway-rest/tests/landing),
// which runs promo-service (e-mailing a real SMTP sink), llm-gateway (offline mock provider) and
// gateway-rest on random loopback ports and passes:
//   COMPTE_BASE_URL       gateway-rest, e.g. http://127.0.0.1:41234 (also the e-mails' public URL)
//   COMPTE_MAIL_DIR       folder where each e-mail the SMTP sink receives appears as NNN.txt
//                         (recipients, subject, decoded text body)
//   COMPTE_AUTH_CACHE_MS  llm-gateway's key cache: the documented window for a revoked key
//   COMPTE_ARTIFACTS      folder for screenshots (target/screenshots/compte)
//   LANDING_CHROMIUM      Chromium binary (default /usr/bin/chromium, Debian's package)
//
// Drives Debian's Chromium with playwright-core (no browser download); audits the pages with
// axe-core. Prints one line per step and exits 1 at the first failure, after a screenshot.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  api as apiAt, axeCheck, launch, mustEnv, norm, requests, pageErrors, consoleProblems, run, step,
  STEP_TIMEOUT, waitFor, waitText, watch,
} from './harness.mjs';

const BASE = mustEnv('COMPTE_BASE_URL');
const MAIL_DIR = mustEnv('COMPTE_MAIL_DIR');
const AUTH_CACHE_MS = Number(mustEnv('COMPTE_AUTH_CACHE_MS'));
const ARTIFACTS = process.env.COMPTE_ARTIFACTS || path.resolve('..', 'target', 'screenshots', 'compte');
const PAGE = `${BASE}/compte/`;
// A model of the built-in catalogue; with no provider key, llm-gateway's mock answers it.
const MODEL = 'gpt-4o-mini';

// ---------------------------------------------------------------------------------------------
// Helpers

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const api = (method, p, body, headers) => apiAt(BASE, method, p, body, headers);

/** One chat call through gateway-rest's OpenAI-compatible route. */
function chat(key, content = 'Bonjour') {
  return api('POST', '/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content }] },
    { authorization: `Bearer ${key}` });
}

/** The e-mails the SMTP sink received so far, oldest first. */
function mails() {
  return fs.readdirSync(MAIL_DIR).filter((f) => /^\d+\.txt$/.test(f)).sort()
    .map((f) => fs.readFileSync(path.join(MAIL_DIR, f), 'utf8'));
}

/** Waits for an e-mail to `to` whose text matches `re`, arrived after the first `after` ones. */
async function waitMail(to, re, after = 0) {
  const deadline = Date.now() + STEP_TIMEOUT;
  while (Date.now() < deadline) {
    const found = mails().slice(after).find((m) => m.split('\n')[0].includes(to) && re.test(m));
    if (found) return found;
    await sleep(100);
  }
  throw new Error(`no e-mail to ${to} matching ${re}; received:\n${mails().map((m) => m.split('\n').slice(0, 2).join(' | ')).join('\n')}`);
}

// Requests to other hosts, refused by the route below.
const blocked = [];

async function shot(page, name, fullPage = true) {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage, animations: 'disabled' });
}

/** The key table's row for the key whose name is `name`. */
function keyRow(page, name) {
  return page.locator('#keys-body tr', { has: page.locator('td:first-child', { hasText: new RegExp(`^${name}$`) }) });
}

// ---------------------------------------------------------------------------------------------

const { context, close } = await launch('compte', ARTIFACTS);
// Anything not addressed to this machine is refused (and recorded): the page must need nothing
// from outside.
await context.route((url) => !['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname) && !/^(data|blob):/.test(url.protocol), (route) => {
  blocked.push(route.request().url());
  return route.abort('blockedbyclient');
});
await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE });

const email = `client.${Date.now().toString(36)}@exemple.dz`;
let exitCode = 0;
try {
  const a = watch(await context.newPage(), 'A');
  run.page = a;
  a.on('dialog', (d) => d.accept());
  let firstKey = '';

  await step('a customer signs up (dev, LAUNCH30) and makes a few chat calls', async () => {
    const r = await api('POST', '/api/promo/signup', { email, package: 'dev', promo_code: 'LAUNCH30' });
    assert.equal(r.status, 201, r.text);
    firstKey = r.json.api_key;
    for (let i = 0; i < 3; i++) {
      const c = await chat(firstKey, `Question ${i}`);
      assert.equal(c.status, 200, c.text);
      assert.ok(c.json.usage.total_tokens > 0, c.text);
    }
  });

  await step('the sign-in page asks for the e-mail, with no script error', async () => {
    const r = await a.goto(PAGE);
    assert.equal(r.status(), 200);
    assert.equal(await a.getAttribute('html', 'lang'), 'fr');
    await waitFor(a, () => !document.getElementById('connexion').hidden, undefined, 'the sign-in form');
    await shot(a, 'connexion-1280', false);
    await axeCheck(a, 'sign-in form');
  });

  let link = '';
  await step('asking for a link e-mails it through SMTP; the answer does not say whether the address exists', async () => {
    const before = mails().length;
    await a.fill('#email', email);
    await a.click('#link-form button[type=submit]');
    await waitText(a, '#link-status', /lien/i);
    const answer = norm(await a.textContent('#link-status'));
    const mail = await waitMail(email, /jeton=/, before);
    link = mail.split(/\s+/).find((w) => w.startsWith(`${BASE}/compte/connexion#jeton=`));
    assert.ok(link, `no sign-in link in:\n${mail}`);
    // An unknown address gets the same words.
    const other = await api('POST', '/api/compte/lien', { email: `inconnu.${Date.now()}@exemple.dz` });
    assert.equal(other.status, 202, other.text);
    assert.equal(norm(other.json.message), answer);
  });

  await step('the link from the e-mail opens the dashboard: package, price, usage of the calls', async () => {
    await a.goto(link);
    await waitFor(a, () => !document.getElementById('espace').hidden, undefined, 'the dashboard');
    // The token leaves the address bar once used.
    assert.equal(new URL(a.url()).hash, '');
    await waitText(a, '#account-email', new RegExp(email.replace(/[.]/g, '\\.')));
    await waitText(a, '#pkg-name', /Dev/i);
    await waitText(a, '#pkg-price', /DZD par mois \(−\d+ % avec LAUNCH30\)/);
    await waitText(a, '#pkg-after', /À partir du .* : 15 000 DZD par mois\./);
    await waitText(a, '#usage-figures', /\d tokens.*3 requêtes/);
    await waitText(a, '#models', new RegExp(MODEL));
    // Mes derniers appels: the three calls, newest first, with their key and tokens, no cost.
    await waitFor(a, () => document.querySelectorAll('#calls-table tbody tr').length === 3, undefined, 'the three calls');
    const calls = (await a.locator('#calls-table tbody tr').allTextContents()).map((t) => t.replace(/\s+/g, ' ').trim());
    for (const c of calls) {
      assert.ok(c.includes(MODEL) && c.includes('Réussi') && c.includes(firstKey.slice(0, 10)), c);
      assert.ok(!/\$|USD/.test(c), `no cost shown: ${c}`);
    }
    assert.ok(await a.isHidden('#calls-empty'));
    // Reused, the same link is refused.
    const again = await api('POST', '/api/compte/session', { token: link.split('#jeton=')[1] });
    assert.equal(again.status, 401, again.text);
  });

  await step('the daily chart: an SVG drawn by the page, today\'s bar, day numbers, the busiest day, a text alternative', async () => {
    await waitFor(a, () => document.querySelector('#chart svg rect.chart-bar') !== null, undefined, 'a bar');
    const chart = await a.evaluate(() => {
      const svg = document.querySelector('#chart svg');
      const rects = [...svg.querySelectorAll('rect.chart-bar')];
      return {
        role: svg.getAttribute('role'),
        title: svg.querySelector(':scope > title').textContent,
        labelledBy: svg.getAttribute('aria-labelledby'),
        bars: rects.length,
        barTitles: rects.map((r) => r.querySelector('title').textContent),
        labels: [...svg.querySelectorAll('text.chart-label')].map((t) => t.textContent),
        value: svg.querySelector('text.chart-value')?.textContent,
        legend: document.getElementById('chart-legend').textContent,
        width: svg.getBoundingClientRect().width,
      };
    });
    const today = new Date().getUTCDate();
    assert.equal(chart.role, 'img');
    assert.equal(chart.labelledBy, 'chart-svg-title');
    assert.match(chart.title, /Tokens consommés par jour en .* : [\d\s\u202f]+ au total/);
    assert.match(chart.title, /Quota : 5\s000\s000 tokens par mois/);
    assert.equal(chart.bars, 1, JSON.stringify(chart));
    assert.match(chart.barTitles[0], new RegExp(`^${today} : .* tokens, 3 requêtes$`));
    assert.ok(chart.labels.includes('1') && chart.labels.includes('15'), JSON.stringify(chart.labels));
    assert.ok(chart.value && /\d/.test(chart.value), 'the busiest day is labelled');
    assert.match(chart.legend, /Rythme du quota/);
    assert.ok(chart.width > 600, `chart ${chart.width} px wide`);
  });

  await step('dashboard screenshots at 1280 and 360 px, axe-core clean', async () => {
    await shot(a, 'tableau-1280');
    await axeCheck(a, 'dashboard 1280');
    await a.setViewportSize({ width: 360, height: 800 });
    // Redrawn at the new width: the labels keep their size.
    await waitFor(a, () => {
      const svg = document.querySelector('#chart svg');
      return svg && Number(svg.getAttribute('width')) <= 360;
    }, undefined, 'the chart redrawn for 360 px');
    const overflow = await a.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow} px wider than the screen`);
    await shot(a, 'tableau-360');
    // Screen-sized views too (a full 360 px page is too tall to look at in one picture).
    for (const [id, name] of [['tableau', 'haut'], ['chart-card', 'graphique'], ['appels', 'appels'], ['cles', 'cles']]) {
      await a.locator(`#${id}`).scrollIntoViewIfNeeded();
      await a.evaluate((i) => document.getElementById(i).scrollIntoView({ block: 'start' }), id);
      await shot(a, `tableau-360-${name}`, false);
    }
    await axeCheck(a, 'dashboard 360');
    await a.setViewportSize({ width: 1280, height: 900 });
  });

  await step('billing: the subscription state, the invoices and how to pay', async () => {
    await waitText(a, '#billing-state', /Actif/);
    await waitFor(a, () => document.getElementById('invoices-body').children.length > 0, undefined, 'the invoices table');
    await a.locator('#factures').scrollIntoViewIfNeeded();
    await a.evaluate(() => document.getElementById('factures').scrollIntoView({ block: 'start' }));
    await shot(a, 'factures-1280', false);
  });

  let ciKey = '';
  await step('create a named key: shown once, it works', async () => {
    await a.fill('#key-name', 'ci');
    await a.click('#key-form button[type=submit]');
    await waitFor(a, () => !document.getElementById('new-key').hidden, undefined, 'the new key');
    ciKey = norm(await a.textContent('#new-key-value'));
    assert.match(ciKey, /^iaf_/);
    await waitFor(a, () => document.querySelectorAll('#keys-body tr').length === 2, undefined, 'two keys listed');
    await waitText(a, '#keys-body', /ci/);
    const c = await chat(ciKey);
    assert.equal(c.status, 200, c.text);
    await waitMail(email, /cl[ée]/i);
    await shot(a, 'cles-1280');
  });

  let rotated = '';
  await step('rotate the signup key with no grace: a replacement is shown and works', async () => {
    const row = keyRow(a, "Clé d'inscription");
    await row.locator('select').selectOption('0');
    await row.getByRole('button', { name: /^Remplacer/ }).click();
    await waitText(a, '#new-key-title', /Clé de remplacement/);
    rotated = norm(await a.textContent('#new-key-value'));
    assert.match(rotated, /^iaf_/);
    assert.notEqual(rotated, firstKey);
    assert.equal((await chat(rotated)).status, 200);
    await waitFor(a, () => document.querySelectorAll('#keys-body tr').length === 3, undefined, 'three keys listed');
    // The old one is listed as revoked (no grace), the replacement as active.
    await waitFor(a, () => [...document.querySelectorAll('#keys-body tr')]
      .filter((tr) => /Révoquée/.test(tr.textContent)).length === 1, undefined, 'the old key revoked');
  });

  await step(`revoke the "ci" key: /v1/chat/completions answers 401 within the ${AUTH_CACHE_MS} ms cache window`, async () => {
    const prefix = ciKey.slice(0, 10);
    const row = keyRow(a, 'ci');
    assert.equal(await row.count(), 1);
    assert.match(norm(await row.textContent()), new RegExp(prefix));
    assert.equal((await chat(ciKey)).status, 200, 'the key works before');
    await row.getByRole('button', { name: /^Révoquer/ }).click();
    await waitText(a, '#keys-status', new RegExp(`Clé ${prefix}.*révoquée`));
    const revokedAt = Date.now();
    await waitFor(a, () => [...document.querySelectorAll('#keys-body tr')]
      .filter((tr) => /Révoquée/.test(tr.textContent)).length === 2, undefined, 'two keys revoked');
    let status = 200;
    while (Date.now() - revokedAt < AUTH_CACHE_MS + 2000) {
      status = (await chat(ciKey)).status;
      if (status === 401) break;
      await sleep(250);
    }
    const took = Date.now() - revokedAt;
    assert.equal(status, 401, `still ${status} after ${took} ms`);
    assert.ok(took <= AUTH_CACHE_MS + 1000, `refused only after ${took} ms`);
    // The key rotated away is refused too by now; the replacement still works.
    assert.equal((await chat(firstKey)).status, 401);
    assert.equal((await chat(rotated)).status, 200);
    console.log(`    revoked key refused after ${took} ms`);
  });

  await step('upgrade to Business takes effect now', async () => {
    await a.selectOption('#package', 'business');
    await a.click('#change-form button[type=submit]');
    await waitFor(a, () => !document.getElementById('plan').hidden, undefined, 'the plan');
    await waitText(a, '#plan-message', /Business/i);
    // The difference for the days left is invoiced at once, and said before confirming.
    await waitText(a, '#plan-message', /Une facture de .* DZD TTC est émise à la confirmation/);
    await a.click('#plan-confirm');
    await waitText(a, '#change-status', /Changement effectué\. Facture de .* DZD TTC émise/);
    await waitText(a, '#pkg-name', /Business/i);
    await waitMail(email, /Business/i);
  });

  await step('the invoices show the period with its last day, the upgrade\'s prorated invoice too', async () => {
    await waitText(a, '#invoices-body', /Changement de forfait/);
    const billing = await a.evaluate(() => fetch('/api/compte/facturation', { credentials: 'same-origin' }).then((r) => r.json()));
    const frDay = (iso) => new Date(iso).toLocaleDateString('fr-FR', { day: 'numeric', month: 'long', year: 'numeric', timeZone: 'UTC' }).replace(/^1 /, '1er ');
    const kinds = billing.invoices.map((i) => i.kind).sort();
    assert.deepEqual(kinds, ['period', 'proration'], JSON.stringify(billing.invoices));
    const rows = await a.$$eval('#invoices-body tr', (trs) => trs.map((tr) => tr.children[1].textContent));
    for (const inv of billing.invoices) {
      // The stored interval is half-open; the page prints the day before the next period starts.
      const end = new Date(inv.period_end);
      assert.equal(inv.period_last_day, new Date(end.getTime() - 86400000).toISOString().slice(0, 10));
      const cell = rows.find((r) => r.includes(frDay(inv.period_start)) && r.endsWith(frDay(inv.period_last_day + 'T00:00:00Z')));
      assert.ok(cell, `no row prints ${inv.period_start} – ${inv.period_last_day}: ${JSON.stringify(rows)}`);
      assert.ok(!rows.some((r) => r.endsWith(frDay(inv.period_end))), 'the next period\'s first day is never printed as the last');
    }
    await a.locator('#factures').scrollIntoViewIfNeeded();
    await a.evaluate(() => document.getElementById('factures').scrollIntoView({ block: 'start' }));
    await shot(a, 'factures-apres-changement-1280', false);
  });

  await step('downgrade to Starter is scheduled for the next period', async () => {
    await a.selectOption('#package', 'starter');
    await a.click('#change-form button[type=submit]');
    await waitText(a, '#plan-message', /Starter/i);
    await a.click('#plan-confirm');
    await waitText(a, '#change-status', /Changement programmé\./);
    await waitFor(a, () => !document.getElementById('pkg-pending').hidden, undefined, 'the pending change');
    await waitText(a, '#pkg-pending', /Passage au forfait .* à partir du /);
    await waitText(a, '#pkg-name', /Business/i);
  });

  await step('cancel at period end, said on the dashboard', async () => {
    await a.click('#cancel-btn');
    await waitText(a, '#cancel-status', /Résiliation enregistrée\./);
    await waitFor(a, () => !document.getElementById('pkg-cancel').hidden, undefined, 'the cancellation notice');
    await waitText(a, '#pkg-cancel', /Abonnement résilié : il prend fin le /);
    await waitText(a, '#cancel-btn', /Annuler la résiliation/);
    await a.evaluate(() => window.scrollTo(0, 0));
    await shot(a, 'forfait-1280');
    await axeCheck(a, 'after the package changes');
    await a.setViewportSize({ width: 360, height: 800 });
    await shot(a, 'forfait-360');
    await a.setViewportSize({ width: 1280, height: 900 });
  });

  await step('a sign-out that does not reach the server says so and keeps the dashboard', async () => {
    const failDelete = (route) => (route.request().method() === 'DELETE' ? route.abort('failed') : route.continue());
    await a.route('**/api/compte/session*', failDelete);
    await a.click('#signout-all');
    await waitText(a, '#page-error', /La déconnexion n'a pas abouti/);
    assert.ok(await a.isHidden('#connexion'), 'still shown as signed in: the session was not ended');
    await a.unroute('**/api/compte/session*', failDelete);
    const me = await a.evaluate(() => fetch('/api/compte').then((r) => r.status));
    assert.equal(me, 200, 'the session still works');
  });

  await step('sign out: the dashboard is gone and the session no longer works', async () => {
    await a.click('#signout');
    await waitFor(a, () => !document.getElementById('connexion').hidden, undefined, 'the sign-in form');
    await a.reload();
    await waitFor(a, () => !document.getElementById('connexion').hidden, undefined, 'still signed out');
  });

  await step('no request left 127.0.0.1, no script error, no CSP violation', async () => {
    assert.ok(requests.length > 15, `only ${requests.length} requests recorded`);
    assert.deepEqual(blocked, [], 'requests to other hosts');
    const outside = requests.filter((r) => {
      const u = new URL(r.url);
      if (u.protocol === 'data:' || u.protocol === 'blob:') return false;
      return u.hostname !== '127.0.0.1';
    });
    assert.deepEqual(outside, [], 'requests to other hosts');
    const paths = new Set(requests.map((r) => new URL(r.url).pathname));
    for (const must of ['/compte/', '/compte/compte.js', '/compte/compte.css', '/api/compte/lien', '/api/compte/session', '/api/compte', '/api/compte/consommation', '/api/compte/cles']) {
      assert.ok(paths.has(must), `${must} was never requested`);
    }
    assert.deepEqual(pageErrors, [], 'script errors');
    assert.deepEqual(consoleProblems, [], 'console problems');
    console.log(`    ${requests.length} requests, all to ${[...new Set(requests.map((r) => new URL(r.url).host))].join(', ')}`);
  });
} catch {
  exitCode = 1;
} finally {
  await close();
}

console.log(exitCode === 0 && run.failures === 0 ? '# all customer account checks passed' : '# customer account checks FAILED');
console.log(`# screenshots: ${ARTIFACTS}`);
process.exit(exitCode || run.failures ? 1 : 0);
