// Browser test of the waitlist (issue 17, item 3) against the whole platform.
//
// Started by `cargo test -p gateway-rest --test landing waitlist` (gateway-rest/tests/landing),
// which runs promo-service (e-mailing a real SMTP sink), llm-gateway and gateway-rest on random
// loopback ports and passes:
//   WAITLIST_BASE_URL     gateway-rest (also the e-mails' public URL)
//   WAITLIST_MAIL_DIR     folder where each e-mail the SMTP sink receives appears as NNN.txt
//   WAITLIST_ADMIN_TOKEN  the admin token (fills the launch code, reads the waitlist)
//   WAITLIST_OWNER_PASSWORD the password of the owner operator amel@iafactory.dz
//   WAITLIST_ARTIFACTS    folder for screenshots (target/screenshots/waitlist)
//
// Once LAUNCH30 has no place left, the landing page offers the waitlist form (consent box not
// ticked); the double opt-in e-mail arrives through SMTP; its link shows a page whose button
// confirms (opening the link alone confirms nothing); the operator sees the confirmed entry.
// Then the console's "Campagnes" page: CSV import with a bad line reported, a campaign to the
// waitlist, its test copy to the operator, its sending, progress and results (a card per sent
// campaign: the bar of where its messages stand, audience, unsubscribed through its link,
// conversions). Last, the same waitlist from the Arabic page: the form, the e-mail and the
// pages its link opens are Arabic, right to left.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  api as apiAt, axeCheck, launch, mustEnv, norm, requests, pageErrors, consoleProblems, run, step,
  STEP_TIMEOUT, waitFor, waitText, watch,
} from './harness.mjs';

const BASE = mustEnv('WAITLIST_BASE_URL');
const MAIL_DIR = mustEnv('WAITLIST_MAIL_DIR');
const ADMIN = mustEnv('WAITLIST_ADMIN_TOKEN');
const OWNER_PASSWORD = mustEnv('WAITLIST_OWNER_PASSWORD');
const ARTIFACTS = process.env.WAITLIST_ARTIFACTS || path.resolve('..', 'target', 'screenshots', 'waitlist');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const api = (method, p, body, headers) => apiAt(BASE, method, p, body, headers);
const admin = (method, p, body) => api(method, p, body, { authorization: `Bearer ${ADMIN}` });

function mails() {
  return fs.readdirSync(MAIL_DIR).filter((f) => /^\d+\.txt$/.test(f)).sort()
    .map((f) => fs.readFileSync(path.join(MAIL_DIR, f), 'utf8'));
}

async function waitMail(to, re) {
  const deadline = Date.now() + STEP_TIMEOUT;
  while (Date.now() < deadline) {
    const found = mails().find((m) => m.split('\n')[0].includes(to) && re.test(m));
    if (found) return found;
    await sleep(100);
  }
  throw new Error(`no e-mail to ${to} matching ${re}; received:\n${mails().map((m) => m.split('\n').slice(0, 2).join(' | ')).join('\n')}`);
}

async function shot(page, name, fullPage = true) {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage, animations: 'disabled' });
}

const blocked = [];
const { context, close } = await launch('waitlist', ARTIFACTS);
await context.route((url) => !['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname) && !/^(data|blob):/.test(url.protocol), (route) => {
  blocked.push(route.request().url());
  return route.abort('blockedbyclient');
});

const email = `attente.${Date.now().toString(36)}@exemple.dz`;
let exitCode = 0;
let unsubscribeLink = '';
try {
  // The live counter's stream may reconnect while the page loads.
  const p = watch(await context.newPage(), 'W', /EventSource/);
  run.page = p;

  await step('the last place of LAUNCH30 is taken', async () => {
    const patch = await admin('PATCH', '/api/promo/codes/LAUNCH30', { max_redemptions: 1 });
    assert.equal(patch.status, 200, patch.text);
    const r = await api('POST', '/api/promo/signup', { email: `dernier.${Date.now()}@exemple.dz`, package: 'starter', promo_code: 'LAUNCH30' });
    assert.equal(r.status, 201, r.text);
    const left = await api('GET', '/api/promo/LAUNCH30/remaining');
    assert.equal(left.json.remaining, 0, left.text);
  });

  await step('the full offer shows the waitlist form, consent not ticked, axe-core clean', async () => {
    const r = await p.goto(`${BASE}/api-packages/`);
    assert.equal(r.status(), 200);
    await waitFor(p, () => !document.getElementById('liste-attente').hidden, undefined, 'the waitlist form');
    assert.equal(await p.isChecked('#waitlist-consent'), false, 'the consent box starts unticked');
    await shot(p, 'liste-attente-1280', false);
    await axeCheck(p, 'landing page with the waitlist');
    await p.setViewportSize({ width: 360, height: 800 });
    await p.locator('#liste-attente').scrollIntoViewIfNeeded();
    await shot(p, 'liste-attente-360', false);
    await p.setViewportSize({ width: 1280, height: 900 });
  });

  await step('without the consent box ticked, nothing is sent', async () => {
    await p.fill('#waitlist-email', email);
    await p.click('#waitlist-submit');
    await waitText(p, '#waitlist-error', /Cochez la case/);
    await sleep(300);
    assert.ok(!mails().some((m) => m.split('\n')[0].includes(email)), 'an e-mail went out without consent');
  });

  let answer = '';
  await step('with consent: the same answer as for any address, and the confirmation e-mail', async () => {
    await p.check('#waitlist-consent');
    await p.click('#waitlist-submit');
    await waitFor(p, () => !document.getElementById('waitlist-done').hidden, undefined, 'the answer');
    answer = norm(await p.textContent('#waitlist-done'));
    assert.match(answer, /e-mail de confirmation/);
    await shot(p, 'liste-attente-envoye-1280', false);
    await axeCheck(p, 'after joining');
    const again = await api('POST', '/api/promo/waitlist', { email, consent: true });
    assert.equal(again.status, 202, again.text);
    assert.equal(norm(again.json.message), answer);
    const unknown = await api('POST', '/api/promo/waitlist', { email: `autre.${Date.now()}@exemple.dz`, consent: true });
    assert.equal(norm(unknown.json.message), answer);
  });

  let link = '';
  await step('the e-mail arrives through SMTP with a signed confirmation link', async () => {
    const mail = await waitMail(email, /liste-attente\/confirmer\?jeton=/);
    link = mail.split(/\s+/).find((w) => w.startsWith(`${BASE}/liste-attente/confirmer?jeton=`));
    assert.ok(link, `no link in:\n${mail}`);
    const list = await admin('GET', '/api/admin/liste-attente');
    assert.equal(list.status, 200, list.text);
    assert.equal(list.json.confirmed, 0, 'not confirmed before the link is used');
  });

  await step('opening the link shows a button and confirms nothing; the button confirms', async () => {
    const r = await p.goto(link);
    assert.equal(r.status(), 200);
    await waitText(p, 'h1', /Confirmer/);
    await shot(p, 'confirmation-page-1280', false);
    await axeCheck(p, 'confirmation page');
    let list = await admin('GET', '/api/admin/liste-attente');
    assert.equal(list.json.confirmed, 0, 'a GET confirmed the entry');
    await p.click('button[type=submit]');
    await waitText(p, 'h1', /Inscription confirmée/);
    await p.setViewportSize({ width: 360, height: 800 });
    await shot(p, 'confirmation-done-360', false);
    await p.setViewportSize({ width: 1280, height: 900 });
    await axeCheck(p, 'confirmed page');
    list = await admin('GET', '/api/admin/liste-attente');
    assert.equal(list.json.confirmed, 1, list.text);
    assert.equal(list.json.entries[0].email, email);
  });

  await step('a tampered link is refused with a page', async () => {
    const r = await p.goto(link.replace('jeton=', 'jeton=A'));
    assert.equal(r.status(), 200, 'the GET page shows the button whatever the token');
    await p.click('button[type=submit]');
    await waitText(p, '#message', /pas valide/);
  });


  await step('the console\'s Campagnes page: import with a bad line reported, axe-core clean', async () => {
    await p.goto(`${BASE}/admin/`);
    await p.fill('#email', 'amel@iafactory.dz');
    await p.fill('#password', OWNER_PASSWORD);
    await p.click('#signin-form button[type=submit]');
    await waitFor(p, () => !document.getElementById('console').hidden, undefined, 'the console');
    await p.click('a[href="/admin/campagnes.html"]');
    await waitFor(p, () => !document.getElementById('console').hidden, undefined, 'the campaigns page');
    await p.setInputFiles('#import-file', {
      name: 'contacts.csv',
      mimeType: 'text/csv',
      buffer: Buffer.from('\ufeffemail;nom;consent_at\r\nfarid@exemple.dz;Farid;2025-11-02\r\npas-une-adresse;X;\r\nnadia@exemple.dz;Nadia;02/11/2025\r\n'),
    });
    await p.click('#import-form button[type=submit]');
    await waitText(p, '#import-status', /2 contact\(s\) créé\(s\).*1 ligne\(s\) refusée\(s\)/);
    await waitText(p, '#problems-table tbody', /3.*adresse e-mail invalide/);
    await waitText(p, '#contact-totals', /2 contact\(s\), dont 2 avec consentement/);
    await waitText(p, '#waitlist-table tbody', new RegExp(email.replace(/[.]/g, '\\.')));
    await axeCheck(p, 'campaigns page');
  });

  await step('a campaign to the waitlist: test copy to the operator, then sent once, progress shown', async () => {
    await p.fill('#cmp-name', 'Places revenues');
    await p.selectOption('#cmp-template', 'waitlist_back');
    await p.selectOption('#cmp-audience', 'waitlist');
    await p.click('#campaign-form button[type=submit]');
    await waitText(p, '#campaign-status', /Brouillon/);
    await p.click('#campaigns-table tbody tr:first-child button:has-text("Envoyer un test")');
    await waitText(p, '#campaign-status', /amel@iafactory\.dz/);
    await waitMail('amel@iafactory.dz', /\[TEST\][\s\S]*désinscrire/i);
    p.once('dialog', (d) => d.accept());
    await p.click('#campaigns-table tbody tr:first-child button:has-text("Programmer")');
    await waitText(p, '#campaign-status', /Envoi commencé/);
    const mail = await waitMail(email, /places sont revenues/);
    assert.match(mail, /\/desabonnement\?jeton=/);
    unsubscribeLink = mail.split(/\s+/).find((w) => w.startsWith(`${BASE}/desabonnement?jeton=`));
    assert.ok(unsubscribeLink, `no unsubscribe link in:\n${mail}`);
    await waitText(p, '#campaigns-table tbody tr:first-child', /1 \/ 0 \/ 0 \/ 0 \(sur 1\)/, 20000);
    await waitText(p, '#campaign-metrics .campaign-card', /Places revenues[\s\S]*Envoyés : 1[\s\S]*En attente : 0/);
    await waitText(p, '#campaign-metrics [data-figure="audience"] dd', /^1$/);
    await shot(p, 'campagnes-1280');
    await axeCheck(p, 'campaigns page after sending');
    await p.setViewportSize({ width: 360, height: 800 });
    await shot(p, 'campagnes-360');
    await p.setViewportSize({ width: 1280, height: 900 });
  });

  await step('the recipient leaves through the campaign\'s link: its card counts it', async () => {
    const r = await p.goto(unsubscribeLink);
    assert.equal(r.status(), 200);
    await p.click('button[type=submit]');
    await waitText(p, 'h1', /Désinscription faite/);
    await p.goto(`${BASE}/admin/campagnes.html`);
    await waitFor(p, () => !document.getElementById('console').hidden, undefined, 'the campaigns page');
    await waitText(p, '#campaign-metrics [data-figure="unsubscribed"] dd', /^1 100\s?%$/);
    await waitText(p, '#campaign-metrics [data-figure="conversions"] dd', /^0 0\s?%$/);
    const bar = await p.getAttribute('#campaign-metrics .campaign-bar', 'aria-label');
    assert.match(bar, /Envoyés : 1, En attente : 0, Échecs : 0/);
    await p.locator('#campaign-metrics').scrollIntoViewIfNeeded();
    await shot(p, 'campagnes-resultats-1280', false);
    await axeCheck(p, 'campaigns page with results');
    await p.setViewportSize({ width: 360, height: 800 });
    await p.locator('#campaign-metrics').scrollIntoViewIfNeeded();
    await shot(p, 'campagnes-resultats-360', false);
    await p.setViewportSize({ width: 1280, height: 900 });
  });

  const arEmail = `arabe.${Date.now().toString(36)}@exemple.dz`;
  await step('from the Arabic page: the waitlist form in Arabic, right to left, axe-core clean', async () => {
    const r = await p.goto(`${BASE}/api-packages/?lang=ar`);
    assert.equal(r.status(), 200);
    await waitFor(p, () => !document.getElementById('liste-attente').hidden, undefined, 'the waitlist form');
    assert.equal(await p.getAttribute('html', 'dir'), 'rtl');
    await waitText(p, '#waitlist-title', /أعلِموني إذا عادت الأماكن/);
    await p.fill('#waitlist-email', arEmail);
    await p.click('#waitlist-submit');
    await waitText(p, '#waitlist-error', /ضع علامة في الخانة/);
    await p.check('#waitlist-consent');
    await p.click('#waitlist-submit');
    await waitFor(p, () => !document.getElementById('waitlist-done').hidden, undefined, 'the answer');
    assert.match(norm(await p.textContent('#waitlist-done')), /^شكرًا/);
    await p.locator('#liste-attente').scrollIntoViewIfNeeded();
    await shot(p, 'liste-attente-ar-1280', false);
    await axeCheck(p, 'Arabic landing page after joining');
  });

  await step('the Arabic e-mail, its confirmation page (360 and 1280 px) and the answer, in Arabic', async () => {
    const mail = await waitMail(arEmail, /أكّد تسجيلك/);
    assert.doesNotMatch(mail, /Bonjour/);
    const arLink = mail.split(/\s+/).find((w) => w.startsWith(`${BASE}/liste-attente/confirmer?jeton=`));
    assert.ok(arLink && arLink.endsWith('&lang=ar'), `no Arabic link in:\n${mail}`);
    const r = await p.goto(arLink);
    assert.equal(r.status(), 200);
    assert.equal(await p.getAttribute('html', 'dir'), 'rtl');
    assert.equal(await p.getAttribute('html', 'lang'), 'ar');
    await waitText(p, 'h1', /تأكيد التسجيل في قائمة الانتظار/);
    await shot(p, 'confirmation-ar-1280', false);
    await axeCheck(p, 'Arabic confirmation page');
    await p.setViewportSize({ width: 360, height: 800 });
    await shot(p, 'confirmation-ar-360', false);
    await p.setViewportSize({ width: 1280, height: 900 });
    await p.click('button[type=submit]');
    await waitText(p, 'h1', /تم تأكيد التسجيل/);
    await waitText(p, '#message', /تم تأكيد تسجيلك/);
    await axeCheck(p, 'Arabic confirmed page');
    const list = await admin('GET', '/api/admin/liste-attente');
    const entry = list.json.entries.find((e) => e.email === arEmail);
    assert.ok(entry, list.text);
    assert.equal(entry.lang, 'ar');
  });

  await step('no request left 127.0.0.1, no script error, no CSP violation', async () => {
    assert.deepEqual(blocked, [], 'requests to other hosts');
    const outside = requests.filter((r) => {
      const u = new URL(r.url);
      if (u.protocol === 'data:' || u.protocol === 'blob:') return false;
      return u.hostname !== '127.0.0.1';
    });
    assert.deepEqual(outside, [], 'requests to other hosts');
    const paths = new Set(requests.map((r) => new URL(r.url).pathname));
    for (const must of ['/api-packages/waitlist.js', '/api/promo/waitlist', '/liste-attente/confirmer', '/desabonnement', '/admin/campagnes.js', '/admin/campagnes.css', '/api/admin/contacts/import', '/api/admin/campagnes']) {
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

console.log(exitCode === 0 && run.failures === 0 ? '# all waitlist checks passed' : '# waitlist checks FAILED');
console.log(`# screenshots: ${ARTIFACTS}`);
process.exit(exitCode || run.failures ? 1 : 0);
