// The radiologist's viewer beyond one stack, in headless Chromium: the
// patient's prior CT opened beside the current one and scrolled with it
// (linked by level), a series dragged into a 2×2 layout, the ultrasound
// clip played as cine at its own frame rate and in colour, rectangle and
// ellipse ROIs on the CR marked "at detector" with areas in mm², a
// MONOCHROME1 radiograph drawn as its server-rendered preview is, and the
// shortcut panel. Called by tests/web_app.rs, which pushes the prior and
// the MONOCHROME1 image first.
//
//   node tests/web_app/image_reading.mjs --url http://127.0.0.1:8080 \
//     --reader demo_radiologist:PW --screenshots DIR --ct ID --us ID --cr ID [--mono1 ID]
//
// The ids are the read requests of the demo CT, ultrasound and CR, and of
// a MONOCHROME1 radiograph when one was sent.
//
// Prints one JSON object of observations.

import { credentials, launch, main, observations, parseArgs, run, screenshots, settled, signIn, watch } from './browser.mjs';

main(async () => {
  const args = parseArgs(process.argv.slice(2), ['url', 'reader', 'screenshots', 'ct', 'us', 'cr']);
  const reader = credentials(args.reader);
  const seen = observations();
  const browser = await launch();
  const context = await browser.newContext({ locale: 'zh-CN', viewport: { width: 1366, height: 768 } });
  const page = watch(await context.newPage(), seen);
  const save = await screenshots(args.screenshots);
  const shot = name => save(page, name);
  const index = viewport => page.locator(`[data-viewport=${viewport}] .overlay.bottom-left`).getAttribute('data-image-index');
  const drawn = viewport =>
    page.waitForFunction(
      v => {
        const canvas = document.querySelector(`[data-viewport=${v}] canvas`);
        return canvas && canvas.width > 0 && document.querySelector(`[data-viewport=${v}] .overlay.bottom-right[data-ww]`);
      },
      viewport,
      { timeout: 60_000 },
    );
  /** Opens a request by its id (the worklist's Read link leads there too). */
  const openRequest = async id => {
    await page.goto(`${args.url}/read/${id}`);
    await drawn('viewport-0');
  };
  await run(browser, seen, () => shot('image-failure'), async () => {
    await signIn(page, args.url, reader);

    // The CT, its prior opened beside it, the two linked.
    await openRequest(args.ct);
    const prior = page.locator('details.prior').first();
    await prior.waitFor({ timeout: 30_000 });
    seen.steps.priorSummary = await prior.locator('summary').textContent();
    await prior.locator('summary').click();
    await prior.locator('.series-card').first().click();
    await drawn('viewport-1');
    seen.steps.viewports = await page.locator('[data-viewport]').count();
    seen.steps.priorDate = await page.locator('[data-viewport=viewport-1] .overlay.top-right div').first().textContent();
    await page.locator('[data-viewport=viewport-0] [data-testid=viewport]').click({ position: { x: 5, y: 5 } });
    await page.getByRole('button', { name: '同步' }).click();
    await page.locator('[data-viewport=viewport-0]').hover();
    for (let i = 0; i < 5; i++) await page.keyboard.press('ArrowDown');
    await page.waitForFunction(() => document.querySelector('[data-viewport=viewport-1] .overlay.bottom-left')?.getAttribute('data-image-index') === '5', null, {
      timeout: 10_000,
    });
    seen.steps.linked = { current: await index('viewport-0'), prior: await index('viewport-1') };
    await page.waitForTimeout(400);
    await shot('zh-CN-reading-ct-prior-linked');
    await page.getByRole('button', { name: '同步' }).click();
    await page.locator('button[aria-pressed=false]', { hasText: '同步' }).waitFor();
    for (let i = 0; i < 3; i++) await page.keyboard.press('ArrowDown');
    await page.waitForTimeout(400);
    seen.steps.unlinked = { current: await index('viewport-0'), prior: await index('viewport-1') };

    // 2×2, and the current series dragged into the fourth viewport.
    await page.getByRole('button', { name: '2×2' }).click();
    await page.locator('.series-card').first().dragTo(page.locator('.viewer-grid > :nth-child(4)'));
    await drawn('viewport-3');
    seen.steps.grid = await page.locator('[data-viewport]').evaluateAll(cells => cells.map(c => c.getAttribute('data-viewport')));
    await page.waitForTimeout(300);
    await shot('zh-CN-reading-2x2');

    // The shortcut panel.
    await page.keyboard.press('?');
    await page.locator('.shortcut-help').waitFor();
    seen.steps.helpRows = await page.locator('.shortcut-help tr').count();
    await shot('zh-CN-reading-help');
    await page.keyboard.press('?');

    // The ultrasound clip: its own frame rate, played, in colour.
    await openRequest(args.us);
    seen.steps.clipFps = await page.getByLabel('帧率').inputValue();
    // The canvas is read back until the clip's first frame is on it.
    let colour = 0;
    for (let tries = 0; tries < 50 && colour === 0; tries++) {
      await page.waitForTimeout(100);
      colour = await page.evaluate(() => {
        const canvas = document.querySelector('[data-viewport=viewport-0] canvas');
        const copy = document.createElement('canvas');
        copy.width = canvas.width;
        copy.height = canvas.height;
        const c = copy.getContext('2d');
        c.drawImage(canvas, 0, 0);
        const { data } = c.getImageData(0, 0, copy.width, copy.height);
        let tinted = 0;
        for (let i = 0; i < data.length; i += 4) if (Math.abs(data[i] - data[i + 2]) > 40) tinted++;
        return tinted;
      });
    }
    seen.steps.colourPixels = colour;
    const before = Number(await index('viewport-0'));
    await page.locator('[data-testid=cine]').click();
    // Playing moves on once the next frames have arrived: waited for, not
    // timed (a loaded CI machine fetches them slower than 15 fps).
    await page
      .waitForFunction(
        b => Number(document.querySelector('[data-viewport=viewport-0] .overlay.bottom-left')?.getAttribute('data-image-index')) !== b,
        before,
        { timeout: 20_000 },
      )
      .catch(() => {});
    await page.waitForTimeout(300);
    const during = Number(await index('viewport-0'));
    await shot('zh-CN-reading-us-cine');
    await page.keyboard.press(' ');
    await page.waitForTimeout(300);
    const stopped = Number(await index('viewport-0'));
    await page.waitForTimeout(500);
    seen.steps.cine = { before, during, stopped, after: Number(await index('viewport-0')), frames: await page.locator('[data-viewport=viewport-0] .overlay.bottom-left').getAttribute('data-image-count') };

    // The CR: a rectangle ROI, "at detector", its area in mm².
    await openRequest(args.cr);
    await page.locator('[data-viewport=viewport-0][data-tools=ready]').waitFor();
    await page.keyboard.press('t');
    const box = await page.locator('[data-viewport=viewport-0] [data-testid=viewport]').boundingBox();
    const scale = Math.min(box.width, box.height) / 768;
    const [cx, cy] = [box.x + box.width / 2, box.y + box.height / 2];
    await page.mouse.move(cx - 100 * scale, cy - 100 * scale);
    await page.mouse.down();
    await page.mouse.move(cx + 100 * scale, cy + 100 * scale, { steps: 10 });
    await page.mouse.up();
    const roi = page.locator('.measurements li[data-kind=rectangle]');
    await roi.waitFor({ timeout: 10_000 });
    await settled(page, roi, 'data-area');
    seen.steps.roi = {
      area: Number(await roi.getAttribute('data-area')),
      mean: Number(await roi.getAttribute('data-value')),
      sd: Number(await roi.getAttribute('data-sd')),
      unit: await roi.getAttribute('data-unit'),
      atDetector: await roi.getAttribute('data-at-detector'),
      text: await roi.textContent(),
      screenPixelsPerImagePixel: scale,
    };
    await shot('zh-CN-reading-cr-roi');

    // A MONOCHROME1 radiograph: drawn as the centre's own rendering draws it (not inverted).
    if (args.mono1) {
      await openRequest(args.mono1);
      // Read back until the 7 MB image is on the canvas.
      for (let tries = 0; tries < 100; tries++) {
        await page.waitForTimeout(200);
        seen.steps.mono1 = await page.evaluate(async () => {
        // The viewport canvas and the centre's preview, both reduced to a 24×24 grid over the image.
        const canvas = document.querySelector('[data-viewport=viewport-0] canvas');
        const series = document.querySelector('.series-card')?.getAttribute('data-series');
        const img = document.querySelector('.series-card img');
        const studyPath = new URL(img.src).pathname.split('/series/')[0];
        const instances = await (await fetch(`${studyPath}/series/${series}/instances`, { headers: { Accept: 'application/dicom+json' } })).json();
        const sop = instances[0]['00080018'].Value[0];
        const rows = instances[0]['00280010'].Value[0];
        const columns = instances[0]['00280011'].Value[0];
        const preview = new Image();
        preview.src = `/api/instances/${sop}/preview`;
        await preview.decode();
        const grid = (source, sx, sy, sw, sh) => {
          const small = document.createElement('canvas');
          small.width = 24;
          small.height = 24;
          const c = small.getContext('2d');
          c.drawImage(source, sx, sy, sw, sh, 0, 0, 24, 24);
          const { data } = c.getImageData(0, 0, 24, 24);
          const out = [];
          for (let i = 0; i < data.length; i += 4) out.push(data[i]);
          return out;
        };
        const fit = Math.min(canvas.width / columns, canvas.height / rows);
        const [w, h] = [columns * fit, rows * fit];
        const shown = grid(canvas, (canvas.width - w) / 2, (canvas.height - h) / 2, w, h);
        const reference = grid(preview, 0, 0, preview.naturalWidth, preview.naturalHeight);
        const mean = a => a.reduce((s, v) => s + v, 0) / a.length;
        const [ma, mb] = [mean(shown), mean(reference)];
        let num = 0;
        let da = 0;
        let db = 0;
        shown.forEach((a, i) => {
          const b = reference[i];
          num += (a - ma) * (b - mb);
          da += (a - ma) ** 2;
          db += (b - mb) ** 2;
        });
        return { correlation: num / Math.sqrt(da * db), shownMean: ma, previewMean: mb };
        });
        if (seen.steps.mono1.shownMean > 0) break;
      }
      await shot('zh-CN-reading-mono1');
    }

    // English.
    await page.getByRole('button', { name: '语言' }).click();
    await openRequest(args.ct);
    await page.keyboard.press('?');
    await page.waitForTimeout(500);
    await shot('en-reading-help');
  });
});
