// What every web application journey needs: its arguments, Debian's
// Chromium launched headless through playwright-core, pages that record
// what went wrong (console errors, page errors, 5xx answers, dialogs a
// script injected through patient text would open), sign-in, and reading
// a value Cornerstone updates throttled once it has settled.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

/** `--name value` pairs; throws naming the first required one missing. */
export function parseArgs(argv, required, defaults = {}) {
  const args = { ...defaults };
  for (let i = 0; i < argv.length; i += 2) args[argv[i].replace(/^--/, '')] = argv[i + 1];
  for (const name of required) {
    if (!args[name]) throw new Error(`--${name} is required`);
  }
  return args;
}

/** `user:password` as its two parts (the password may hold colons). */
export function credentials(text) {
  const at = text.indexOf(':');
  return { username: text.slice(0, at), password: text.slice(at + 1) };
}

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-quic',
      '--no-first-run', '--use-angle=swiftshader', '--enable-unsafe-swiftshader',
    ],
  });
}

/**
 * The observations a journey prints, and a page recorder: console errors
 * except the refusals the journey provokes (HTTP statuses in `expected`),
 * uncaught page errors, 5xx answers, and every dialog (dismissed, or
 * accepted with `acceptDialogs`).
 */
export function observations() {
  return { dialogs: [], errors: [], steps: {} };
}

export function watch(page, seen, { expected = [401], acceptDialogs = false } = {}) {
  const refusal = new RegExp(`\\b(${expected.join('|')})\\b`);
  page.on('dialog', dialog => {
    seen.dialogs.push(dialog.message());
    void (acceptDialogs ? dialog.accept() : dialog.dismiss());
  });
  page.on('console', message => {
    if (message.type() === 'error' && !refusal.test(message.text())) seen.errors.push(message.text().slice(0, 300));
  });
  page.on('pageerror', error => seen.errors.push(String(error).slice(0, 300)));
  page.on('response', response => {
    if (response.status() >= 500) seen.errors.push(`${response.status()} ${response.url()}`);
  });
  return page;
}

/** A screenshot function writing `<dir>/<name>.png`, the directory made first. */
export async function screenshots(dir) {
  await mkdir(dir, { recursive: true });
  return (page, name, fullPage = false) => page.screenshot({ path: join(dir, `${name}.png`), fullPage });
}

/** Signs in through the login page and waits for the application's bar. */
export async function signIn(page, url, who) {
  await page.goto(`${url}/`);
  await page.locator('input[name=username]').fill(who.username);
  await page.locator('input[name=password]').fill(who.password);
  await page.locator('button[type=submit]').click();
  await page.locator('.top-bar').waitFor();
}

/**
 * `attribute` of `locator` once two readings 200 ms apart agree:
 * Cornerstone updates a measurement's statistics throttled while it is
 * drawn, so a value read at once can be a mid-drag one.
 */
export async function settled(page, locator, attribute) {
  let last = null;
  for (let tries = 0; tries < 50; tries++) {
    await page.waitForTimeout(200);
    const value = await locator.getAttribute(attribute);
    if (value === last) return value;
    last = value;
  }
  return last;
}

/** Runs `journey`, printing the observations as JSON; on failure a screenshot and what was seen go to stderr. */
export async function run(browser, seen, failureShot, journey) {
  try {
    await journey();
  } catch (error) {
    await failureShot().catch(() => {});
    process.stderr.write(`errors: ${JSON.stringify(seen.errors)}\nsteps: ${JSON.stringify(seen.steps)}\n`);
    throw error;
  } finally {
    await browser.close();
  }
  process.stdout.write(`${JSON.stringify(seen, null, 1)}\n`);
}

export function main(journey) {
  journey().catch(error => {
    process.stderr.write(`${error.stack ?? error}\n`);
    process.exit(1);
  });
}
