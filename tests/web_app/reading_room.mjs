// The web application as its users meet it, in headless Chromium driven by
// Playwright: a radiologist signs in (after one wrong password), finds the
// pool, claims a case while a second reader's open browser watches it leave
// their pool, switches language, signs out. Called by tests/web_app.rs,
// which starts the centre and checks what this prints.
//
//   node tests/web_app/reading_room.mjs --url http://127.0.0.1:8080 \
//     --reader demo_radiologist:PASSWORD --second demo_reviewer:PASSWORD \
//     --claim 'PATIENT TEXT' --screenshots DIR
//
// Prints one JSON object of observations: texts seen, timings, dialogs
// that opened (a script injected through patient text would open one),
// console errors and refused requests.

import { credentials, launch, main, observations, parseArgs, run, screenshots, settled, watch } from './browser.mjs';

main(async () => {
  const args = parseArgs(process.argv.slice(2), ['url', 'reader', 'second', 'claim', 'screenshots']);
  const seen = { ...observations(), eventStreams: [] };
  const browser = await launch();
  const open = async (locale, width = 1366, height = 768, deviceScaleFactor = 1) => {
    const context = await browser.newContext({ locale, viewport: { width, height }, deviceScaleFactor });
    // A wrong password is an expected 401 in the console.
    const page = watch(await context.newPage(), seen);
    page.on('response', response => {
      if (new URL(response.url()).pathname === '/api/events') {
        seen.eventStreams.push(`${response.status()} ${response.headers()['content-type']}`);
      }
    });
    return { context, page };
  };
  /** The viewport canvas: a checksum of its pixels and how much of it is lit. */
  const pixels = page =>
    page.evaluate(() => {
      const canvas = document.querySelector('[data-testid=viewport] canvas');
      if (!canvas || canvas.width === 0) return null;
      const copy = document.createElement('canvas');
      copy.width = canvas.width;
      copy.height = canvas.height;
      const context = copy.getContext('2d');
      context.drawImage(canvas, 0, 0);
      const { data } = context.getImageData(0, 0, copy.width, copy.height);
      let sum = 0;
      let lit = 0;
      for (let i = 0; i < data.length; i += 4) {
        sum = (sum * 31 + data[i]) >>> 0;
        if (data[i] > 8) lit++;
      }
      return { sum, lit: lit / (data.length / 4) };
    });
  const overlay = async (page, selector, attribute) => page.locator(`.overlay.${selector}`).getAttribute(attribute);
  const save = await screenshots(args.screenshots);
  const shot = (page, name) => save(page, name, true);
  /** Fills the login form on the page as it is (a wrong password stays on it). */
  const signIn = async (page, who) => {
    await page.locator('input[name=username]').fill(who.username);
    await page.locator('input[name=password]').fill(who.password);
    await page.locator('button[type=submit]').click();
  };

  let current = null;
  await run(browser, seen, () => (current ? shot(current, 'failure') : Promise.resolve()), async () => {
    const reader = credentials(args.reader);
    const second = credentials(args.second);

    // A browser preferring Chinese gets Chinese. One wrong password first.
    const { page } = await open('zh-CN');
    current = page;
    await page.goto(`${args.url}/`);
    await page.locator('input[name=username]').waitFor();
    seen.steps.loginTitle = await page.locator('h1').textContent();
    await shot(page, 'zh-CN-login');
    await signIn(page, { username: reader.username, password: 'not-the-password' });
    seen.steps.wrongPassword = await page.locator('[role=alert]').textContent();
    await shot(page, 'zh-CN-login-wrong-password');
    await signIn(page, reader);
    await page.locator('.top-bar').waitFor();
    seen.steps.signedInAs = await page.locator('.user-name').textContent();
    seen.steps.tabs = await page.locator('[role=tab]').allTextContents();
    await shot(page, 'zh-CN-worklist-mine');

    // The pool: the case to claim is there, its patient text shown as text.
    await page.getByRole('tab', { name: '待抢单' }).click();
    const row = page.locator('tr', { hasText: args.claim });
    try {
      await row.waitFor({ timeout: 30_000 });
    } finally {
      await shot(page, 'zh-CN-worklist-pool');
    }
    seen.steps.poolRows = await page.locator('tbody tr').count();
    seen.steps.claimRowText = await row.locator('.patient-name').textContent();
    seen.steps.injectedImages = await page.locator('tbody img').count();
    await shot(page, 'zh-CN-worklist-pool');

    // A second reader has the pool open in another browser.
    const other = await open('zh-CN');
    await other.page.goto(`${args.url}/`);
    await signIn(other.page, second);
    await other.page.getByRole('tab', { name: '待抢单' }).click();
    const otherRow = other.page.locator('tr', { hasText: args.claim });
    await otherRow.waitFor({ timeout: 30_000 });

    // Claim: it moves to "mine" here, and leaves the other reader's pool.
    const claimedAt = Date.now();
    await row.getByRole('button', { name: '抢单' }).click();
    await otherRow.waitFor({ state: 'detached', timeout: 10_000 });
    seen.steps.leftOtherPoolMs = Date.now() - claimedAt;
    // The winner is taken into the case; it is in their "mine" list after.
    await page.waitForURL(/\/read\/\d+$/);
    seen.steps.landedOn = new URL(page.url()).pathname;
    await page.locator('#report-findings').waitFor({ timeout: 30_000 });
    await page.goto(`${args.url}/`);
    await page.locator('tr', { hasText: args.claim }).waitFor();
    seen.steps.afterClaimTab = await page.locator('[role=tab][aria-selected=true]').textContent();
    seen.steps.mineRowState = await page.locator('tr', { hasText: args.claim }).locator('td').nth(6).textContent();
    await shot(page, 'zh-CN-worklist-claimed');
    await shot(other.page, 'zh-CN-worklist-other-reader');

    // Released from the case: back in the other reader's pool, without a reload.
    await page.locator('tr', { hasText: args.claim }).getByRole('link', { name: '阅片' }).click();
    await page.getByRole('button', { name: '放回抢单池' }).click();
    const releasedAt = Date.now();
    await page.waitForURL(url => new URL(url).pathname === '/');
    await other.page.locator('tr', { hasText: args.claim }).waitFor({ timeout: 10_000 });
    seen.steps.backInOtherPoolMs = Date.now() - releasedAt;
    // Claimed again, to read on as before.
    await page.getByRole('tab', { name: '待抢单' }).click();
    await page.locator('tr', { hasText: args.claim }).getByRole('button', { name: '抢单' }).click();
    await page.waitForURL(/\/read\/\d+$/);
    await page.goto(`${args.url}/`);

    // Reading the demo CT: the first image drawn, the stack scrolled, the window dragged, the lung preset.
    await page.getByRole('tab', { name: '全部' }).click();
    const ctRow = page.locator('tr', { hasText: '胸部CT平扫' });
    const openedAt = Date.now();
    await ctRow.getByRole('link', { name: '阅片' }).click();
    await page.waitForFunction(
      () => {
        const canvas = document.querySelector('[data-testid=viewport] canvas');
        return canvas && canvas.width > 0 && document.querySelector('.overlay.bottom-left');
      },
      null,
      { timeout: 60_000 },
    );
    let first = null;
    for (let tries = 0; tries < 100 && !(first && first.lit > 0.05); tries++) {
      await page.waitForTimeout(100);
      first = await pixels(page);
    }
    seen.steps.firstImageMs = Date.now() - openedAt;
    seen.steps.firstImage = first;
    seen.steps.stackSize = await overlay(page, 'bottom-left', 'data-image-count');
    await shot(page, 'zh-CN-reading-ct');
    await page.locator('[data-testid=viewport]').hover();
    for (let i = 0; i < 5; i++) await page.keyboard.press('ArrowDown');
    await page.waitForFunction(() => document.querySelector('.overlay.bottom-left')?.getAttribute('data-image-index') === '5');
    await page.waitForTimeout(300);
    seen.steps.afterScroll = await pixels(page);
    seen.steps.indexAfterScroll = await overlay(page, 'bottom-left', 'data-image-index');
    // The mouse tools are bound a moment after the first image.
    await page.locator('[data-tools=ready]').waitFor();
    const box = await page.locator('[data-testid=viewport]').boundingBox();
    const windowBefore = await overlay(page, 'bottom-right', 'data-ww');
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width / 2 + 120, box.y + box.height / 2 + 60, { steps: 8 });
    await page.mouse.up();
    await page.waitForTimeout(300);
    seen.steps.windowDrag = { before: windowBefore, after: await overlay(page, 'bottom-right', 'data-ww') };
    seen.steps.afterDrag = await pixels(page);
    await page.keyboard.press('4');
    await page.waitForTimeout(300);
    seen.steps.lungPreset = {
      width: await overlay(page, 'bottom-right', 'data-ww'),
      center: await overlay(page, 'bottom-right', 'data-wc'),
    };
    seen.steps.afterPreset = await pixels(page);
    await shot(page, 'zh-CN-reading-ct-lung');

    // A length across the middle row, from image column 64 to 192: where those
    // columns are on screen follows from the 256×256 image fitted to the
    // viewport's height; 128 pixels of 1.367 mm are 175.0 mm.
    await page.keyboard.press('l');
    const area = await page.locator('[data-testid=viewport]').boundingBox();
    const scale = Math.min(area.width, area.height) / 256;
    const [cx, cy] = [area.x + area.width / 2, area.y + area.height / 2];
    await page.mouse.move(cx + (64 - 128) * scale, cy);
    await page.mouse.down();
    await page.mouse.move(cx + (192 - 128) * scale, cy, { steps: 10 });
    await page.mouse.up();
    const length = page.locator('.measurements li[data-kind=length]');
    await length.waitFor({ timeout: 10_000 });
    // Read once Cornerstone's throttled statistics have settled.
    await settled(page, length, 'data-value');
    seen.steps.length = {
      value: Number(await length.getAttribute('data-value')),
      unit: await length.getAttribute('data-unit'),
      text: await length.textContent(),
      screenPixelsPerImagePixel: scale,
    };
    await shot(page, 'zh-CN-reading-ct-length');
    await page.goto(`${args.url}/`);

    // English, remembered across a reload.
    await page.getByRole('button', { name: '语言' }).click();
    await page.getByRole('tab', { name: 'Mine' }).waitFor();
    await page.reload();
    await page.locator('[role=tab]').first().waitFor();
    seen.steps.tabsAfterReload = await page.locator('[role=tab]').allTextContents();
    await page.locator('tr', { hasText: args.claim }).waitFor();
    await shot(page, 'en-worklist-mine');
    await page.getByRole('tab', { name: 'Pool' }).click();
    await page.locator('tbody tr, .empty').first().waitFor();
    await shot(page, 'en-worklist-pool');
    await page.getByRole('tab', { name: 'All' }).click();
    await page.locator('tr', { hasText: '胸部CT平扫' }).getByRole('link', { name: 'Read' }).click();
    await page.locator('.overlay.bottom-right[data-ww]').waitFor({ timeout: 60_000 });
    await page.waitForTimeout(1000);
    await shot(page, 'en-reading-ct');

    // A 4K reading monitor, at the 200 % scaling such monitors run at.
    const wide = await open('en', 1920, 1080, 2);
    await wide.page.goto(`${args.url}/`);
    await signIn(wide.page, second);
    await wide.page.getByRole('tab', { name: 'All' }).click();
    await wide.page.locator('tbody tr').first().waitFor();
    await shot(wide.page, 'en-worklist-4k');

    // Sign out: back to the login, in English.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.locator('input[name=username]').waitFor();
    seen.steps.afterLogout = await page.locator('h1').textContent();
    await shot(page, 'en-login');

    // A path of the application opened while signed out comes back after login.
    await page.goto(`${args.url}/no/such/page`);
    await signIn(page, reader);
    seen.steps.deepLink = await page.locator('.empty-page p').textContent();
  });
});
