// What the browser tests share: environment, Chromium through playwright-core (Debian's binary,
// no download), numbered steps with a screenshot of the failing page, the record of every request
// and console problem, waiting helpers, and the axe-core audit.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE_SOURCE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export const STEP_TIMEOUT = 15000;

/** An environment variable the Rust test sets, without a trailing slash; exits 2 without it. */
export function mustEnv(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`${name} is not set: run this through \`cargo test -p gateway-rest --test landing\``);
    process.exit(2);
  }
  return v.replace(/\/$/, '');
}

export const norm = (s) => String(s ?? '').replace(/\s+/g, ' ').trim();

/** One JSON call; the answer's status, parsed body (or null) and text. */
export async function api(base, method, p, body, headers = {}) {
  const r = await fetch(`${base}${p}`, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { json = null; }
  return { status: r.status, json, text };
}

/** Waits until the text of `selector` (whitespace collapsed) matches `re`. */
export async function waitText(page, selector, re, timeout = STEP_TIMEOUT) {
  try {
    await page.waitForFunction(([sel, src, flags]) => {
      const el = document.querySelector(sel);
      return Boolean(el) && new RegExp(src, flags).test(el.textContent.replace(/\s+/g, ' '));
    }, [selector, re.source, re.flags], { timeout });
  } catch {
    const actual = await page.evaluate((sel) => document.querySelector(sel)?.textContent ?? null, selector);
    throw new Error(`${selector}: expected text matching ${re}, got ${JSON.stringify(norm(actual))}`);
  }
}

export async function waitFor(page, fn, arg, what, timeout = STEP_TIMEOUT) {
  try {
    await page.waitForFunction(fn, arg, { timeout });
  } catch {
    throw new Error(`timed out waiting for ${what}`);
  }
}

// Every request any page makes (to prove nothing leaves the machine), script errors and console
// problems (CSP violations first of all).
export const requests = [];
export const pageErrors = [];
export const consoleProblems = [];

/**
 * Records what `page` does under `name`. Failed fetches (a 404, a 409 or 429 answer) are
 * expected; `alsoExpected` names more console errors a page may log (an EventSource reconnecting).
 */
export function watch(page, name, alsoExpected = null) {
  page.on('request', (r) => requests.push({ page: name, url: r.url(), method: r.method() }));
  page.on('pageerror', (e) => pageErrors.push(`${name}: ${e.message}`));
  page.on('console', (m) => {
    const t = m.text();
    if (/Content Security Policy|Refused to (load|connect|execute|apply)/i.test(t)) consoleProblems.push(`${name}: ${t}`);
    if (m.type() === 'error' && !/Failed to load resource|net::ERR_/i.test(t) && !(alsoExpected && alsoExpected.test(t))) {
      consoleProblems.push(`${name}: ${t}`);
    }
  });
  return page;
}

/**
 * Runs axe-core (WCAG 2.x A and AA rules: contrast, labels, names, ARIA, landmarks…) on the page
 * as it is now. The script is evaluated through the DevTools protocol, so the page's CSP is kept.
 */
export async function axeCheck(page, what) {
  await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(async () => {
    const r = await window.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
      resultTypes: ['violations'],
    });
    return { passes: r.passes.length, violations: r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 5).map((n) => `${n.target.join(' ')} — ${n.failureSummary.replace(/\s+/g, ' ')}`),
    })) };
  });
  assert.ok(result.passes >= 10, `axe-core checked only ${result.passes} rules (${what})`);
  assert.deepEqual(result.violations, [], `axe-core violations (${what}):\n${JSON.stringify(result.violations, null, 2)}`);
}

/** Where screenshots go, and which page a failing step photographs. */
export const run = { artifacts: '.', page: null, failures: 0 };

/** Runs one named check, printing `ok`/`not ok`; a failure screenshots `run.page` and rethrows. */
export async function step(name, fn) {
  const started = Date.now();
  try {
    await fn();
    console.log(`ok - ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    run.failures++;
    console.log(`not ok - ${name}`);
    console.log(String(e && e.stack ? e.stack : e).split('\n').map((l) => `    ${l}`).join('\n'));
    if (run.page) {
      const file = path.join(run.artifacts, `failure-${name.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}.png`);
      await run.page.screenshot({ path: file, fullPage: true }).catch(() => {});
      console.log(`    screenshot: ${file}`);
    }
    throw e;
  }
}

/**
 * Debian's Chromium (`LANDING_CHROMIUM`, default /usr/bin/chromium) in a fresh profile, French,
 * 1280 × 900, with nothing running in the background; screenshots go to `artifacts`.
 * Returns the context and a `close()` that also removes the profile.
 */
export async function launch(name, artifacts) {
  run.artifacts = artifacts;
  fs.mkdirSync(artifacts, { recursive: true });
  const executablePath = process.env.LANDING_CHROMIUM || '/usr/bin/chromium';
  if (!fs.existsSync(executablePath)) {
    console.error(`Chromium not found at ${executablePath}: run scripts/test-setup.sh`);
    process.exit(1);
  }
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), `iaf-${name}-chromium-`));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    locale: 'fr-FR',
    viewport: { width: 1280, height: 900 },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const close = async () => {
    await context.close().catch(() => {});
    fs.rmSync(userDataDir, { recursive: true, force: true });
  };
  return { context, close };
}
