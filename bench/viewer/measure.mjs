// Times two viewers on the same studies in headless Chromium on loopback:
// Telediag's reading page (its own DICOMweb) and stock OHIF (served by
// tests/dicomweb/ohif.mjs's server, its data source on another DICOMweb
// server, e.g. Orthanc's plugin). For each study, in a fresh browser
// context per opening (nothing cached):
//
//   firstImageMs   navigation to the first non-blank image on the canvas
//   stackMs        navigation until every frame of the series has arrived
//                  (distinct WADO-RS frame responses), or null if not in 60 s
//   scroll         requestAnimationFrame frame times while the loaded stack
//                  is scrolled by Arrow Down presses, one every 15 ms
//
//   node bench/viewer/measure.mjs --viewer telediag --url http://127.0.0.1:8080 \
//     --login admin:PW --open /read/12 --frames 300 [--runs 5] [--scroll 299]
//   node bench/viewer/measure.mjs --viewer ohif --ohif sample-data/ohif --port 3001 \
//     --proxy http://127.0.0.1:8042 --study UID --frames 300 [--runs 5] [--scroll 299]
//
// Prints one JSON object with every run and the medians.

import { chromium } from 'playwright-core';
import { appConfig, serveOhif } from '../../tests/dicomweb/ohif.mjs';

function parseArgs(argv) {
  const args = { runs: '5', scroll: '0', timeout: '90' };
  for (let i = 0; i < argv.length; i += 2) args[argv[i].replace(/^--/, '')] = argv[i + 1];
  if (!['telediag', 'ohif'].includes(args.viewer)) throw new Error('--viewer telediag|ohif');
  if (!args.frames) throw new Error('--frames N (the series size) is required');
  return args;
}

/** Records requestAnimationFrame timestamps until `window.stopFrames()`. */
function frameRecorder() {
  const times = [];
  let running = true;
  const tick = t => {
    times.push(t);
    if (running) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
  window.stopFrames = () => {
    running = false;
    return times;
  };
}

/**
 * Whether the viewport shows an image: both viewers draw through
 * Cornerstone3D, whose canvas has this class. Read at 48×48, so that
 * looking every animation frame costs the page almost nothing (reading
 * the whole canvas each time would slow the viewer it measures).
 */
function litAtAGlance() {
  const canvas = document.querySelector('canvas.cornerstone-canvas');
  if (!canvas || canvas.width === 0) return false;
  const small = document.createElement('canvas');
  small.width = 48;
  small.height = 48;
  const context = small.getContext('2d');
  context.drawImage(canvas, 0, 0, 48, 48);
  const { data } = context.getImageData(0, 0, 48, 48);
  let lit = 0;
  for (let i = 0; i < data.length; i += 4) if (data[i] + data[i + 1] + data[i + 2] > 24) lit++;
  return lit / (48 * 48) > 0.01;
}

const median = values => {
  const sorted = values.filter(v => v !== null).sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor(sorted.length / 2)] : null;
};

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--use-angle=swiftshader', '--enable-unsafe-swiftshader'],
  });
  let server = null;
  let origin = args.url;
  let path = args.open;
  if (args.viewer === 'ohif') {
    origin = `http://127.0.0.1:${args.port}`;
    server = await serveOhif(args.ohif, args.port, appConfig(`${origin}/dicom-web`), args.proxy);
    path = `/viewer?StudyInstanceUIDs=${encodeURIComponent(args.study)}`;
  }
  const runs = [];
  const errors = [];
  try {
    for (let run = 0; run < Number(args.runs); run++) {
      const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, locale: 'zh-CN' });
      const page = await context.newPage();
      page.on('pageerror', error => errors.push(String(error).slice(0, 200)));
      if (args.viewer === 'telediag') {
        // Signed in first (not timed), as a reader is before opening a case.
        const at = args.login.indexOf(':');
        const answer = await page.request.post(`${origin}/api/login`, {
          data: { username: args.login.slice(0, at), password: args.login.slice(at + 1) },
        });
        if (!answer.ok()) throw new Error(`login: ${answer.status()}`);
      }
      const frames = new Set();
      let stackMs = null;
      let started = 0;
      page.on('response', response => {
        const url = response.url();
        if (response.status() === 200 && /\/frames\/\d+$/.test(url)) {
          frames.add(url);
          if (frames.size === Number(args.frames) && stackMs === null) stackMs = Math.round(performance.now() - started);
        }
      });
      started = performance.now();
      await page.goto(`${origin}${path}`, { waitUntil: 'domcontentloaded' });
      let firstImageMs = null;
      try {
        await page.waitForFunction(litAtAGlance, null, { timeout: Number(args.timeout) * 1000, polling: 'raf' });
        firstImageMs = Math.round(performance.now() - started);
      } catch (error) {
        errors.push(`run ${run}: no image in ${args.timeout} s: ${String(error).split('\n')[0]}`);
      }
      const deadline = Date.now() + 60_000;
      while (stackMs === null && Date.now() < deadline) await page.waitForTimeout(50);
      let scroll = null;
      if (Number(args.scroll) > 0 && firstImageMs !== null) {
        const viewport = page.locator('[data-testid=viewport], .cornerstone-viewport-element').first();
        await viewport.hover();
        await viewport.click({ position: { x: 10, y: 10 } }).catch(() => {});
        await page.evaluate(frameRecorder);
        const scrollStart = Date.now();
        for (let i = 0; i < Number(args.scroll); i++) {
          await page.keyboard.press('ArrowDown');
          await page.waitForTimeout(15);
        }
        const times = await page.evaluate(() => window.stopFrames());
        const gaps = times.slice(1).map((t, i) => t - times[i]).sort((a, b) => a - b);
        const seconds = (times.at(-1) - times[0]) / 1000;
        scroll = {
          presses: Number(args.scroll),
          wallMs: Date.now() - scrollStart,
          fps: Math.round(((times.length - 1) / seconds) * 10) / 10,
          medianFrameMs: Math.round(gaps[Math.floor(gaps.length / 2)] * 10) / 10,
          p95FrameMs: Math.round(gaps[Math.floor(gaps.length * 0.95)] * 10) / 10,
          framesOver50Ms: gaps.filter(g => g > 50).length,
          lastImageIndex: await page
            .locator('.overlay.bottom-left')
            .first()
            .getAttribute('data-image-index', { timeout: 1000 })
            .catch(() => null),
        };
      }
      if (args.screenshots && run === 0) await page.screenshot({ path: `${args.screenshots}/${args.viewer}-${args.name ?? 'study'}.png` });
      runs.push({ run, firstImageMs, stackMs, framesArrived: frames.size, scroll });
      await context.close();
    }
  } finally {
    await browser.close();
    server?.close();
  }
  const result = {
    viewer: args.viewer,
    frames: Number(args.frames),
    medians: {
      firstImageMs: median(runs.map(r => r.firstImageMs)),
      stackMs: median(runs.map(r => r.stackMs)),
      scrollFps: median(runs.map(r => r.scroll?.fps ?? null)),
      p95FrameMs: median(runs.map(r => r.scroll?.p95FrameMs ?? null)),
    },
    runs,
    errors,
  };
  process.stdout.write(`${JSON.stringify(result, null, 1)}\n`);
}

main().catch(error => {
  process.stderr.write(`${error.stack ?? error}\n`);
  process.exit(1);
});
