// Stock OHIF (the built viewer of @ohif/app) against a DICOMweb server, in
// headless Chromium driven by Playwright, as a hospital would run it: OHIF
// served from its own origin, its `dicomweb` data source pointed at the
// server. Used by tests/dicomweb.rs (what OHIF shows) and by
// bench/dicomweb (how soon it shows it).
//
//   node tests/dicomweb/ohif.mjs --ohif DIR --port 3000 \
//     --dicomweb http://localhost:8080/dicom-web [--token T] \
//     [--proxy http://127.0.0.1:8042] [--repeat N] \
//     [--expect TEXT]... [--study UID]... [--screenshots DIR] [--name PREFIX]
//
// Prints one JSON object: the study list's texts that were found, per study
// the viewport's pixel statistics and the milliseconds from navigation to
// the first non-blank image (each opening in a fresh browser context, so
// nothing is cached), and every DICOMweb request with its status.
// OHIF takes a bearer token from its OIDC login; here the token is given
// and sent as that same `Authorization` header. With --proxy, `/dicom-web`
// on OHIF's own origin is forwarded to that server (for a server without
// CORS; set --dicomweb to the origin's own `/dicom-web` then).

import { createServer, request as httpRequest } from 'node:http';
import { readFile, stat, mkdir } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

function parseArgs(argv) {
  const args = { expect: [], study: [], name: 'ohif', repeat: '1' };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`--${key} needs a value`);
    if (Array.isArray(args[key])) args[key].push(value);
    else args[key] = value;
  }
  for (const required of ['ohif', 'port', 'dicomweb']) {
    if (!args[required]) throw new Error(`--${required} is required`);
  }
  return args;
}

/** The data source a hospital would configure: Telediag's DICOMweb, WADO-RS frames. */
export function appConfig(dicomweb) {
  const source = {
    namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
    sourceName: 'telediag',
    configuration: {
      friendlyName: 'Telediag',
      name: 'telediag',
      qidoRoot: dicomweb,
      wadoRoot: dicomweb,
      wadoUriRoot: dicomweb,
      qidoSupportsIncludeField: true,
      imageRendering: 'wadors',
      thumbnailRendering: 'wadors',
      enableStudyLazyLoad: true,
      supportsFuzzyMatching: false,
      supportsWildcard: true,
      staticWado: false,
      singlepart: 'bulkdata,video',
      bulkDataURI: { enabled: true },
    },
  };
  return `window.config = ${JSON.stringify({
    routerBasename: null,
    extensions: [],
    modes: [],
    showStudyList: true,
    showWarningMessageForCrossOrigin: false,
    showCPUFallbackMessage: false,
    maxNumberOfWebWorkers: 2,
    defaultDataSourceName: 'telediag',
    dataSources: [source],
  })};\n`;
}

const MEDIA_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
  '.ttf': 'font/ttf',
  '.xml': 'application/xml',
};

/** Forwards one request to `target` as it came, streaming both ways. */
function forward(target, request, response) {
  const upstream = httpRequest(new URL(request.url, target), { method: request.method, headers: request.headers }, answer => {
    response.writeHead(answer.statusCode, answer.headers);
    answer.pipe(response);
  });
  upstream.on('error', error => {
    response.writeHead(502, { 'content-type': 'text/plain' });
    response.end(String(error));
  });
  request.pipe(upstream);
}

/** OHIF's dist as static files, index.html for its client-side routes. */
export function serveOhif(root, port, config, proxy) {
  const server = createServer(async (request, response) => {
    if (proxy && request.url.startsWith('/dicom-web')) {
      forward(proxy, request, response);
      return;
    }
    const path = decodeURIComponent(new URL(request.url, 'http://x').pathname);
    if (path === '/app-config.js') {
      response.writeHead(200, { 'content-type': MEDIA_TYPES['.js'], 'cache-control': 'no-store' });
      response.end(config);
      return;
    }
    let file = normalize(join(root, path));
    if (!file.startsWith(root + sep)) file = join(root, 'index.html');
    try {
      if (!(await stat(file)).isFile()) throw new Error('not a file');
    } catch {
      if (extname(path)) {
        response.writeHead(404).end();
        return;
      }
      file = join(root, 'index.html');
    }
    const body = await readFile(file);
    response.writeHead(200, { 'content-type': MEDIA_TYPES[extname(file)] ?? 'application/octet-stream' });
    response.end(body);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(port), '127.0.0.1', () => resolve(server));
  });
}

/**
 * Pixel statistics of the first viewport's canvas: how much of it is not
 * black and how many distinct grey levels it shows. A canvas with a WebGL
 * context is copied onto a 2D one first.
 */
export function viewportPixels() {
  const canvas = document.querySelector('canvas.cornerstone-canvas');
  if (!canvas || canvas.width === 0 || canvas.height === 0) return null;
  let context = canvas.getContext('2d');
  if (!context) {
    const copy = document.createElement('canvas');
    copy.width = canvas.width;
    copy.height = canvas.height;
    context = copy.getContext('2d');
    context.drawImage(canvas, 0, 0);
  }
  const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
  const levels = new Set();
  let lit = 0;
  for (let i = 0; i < data.length; i += 4) {
    const value = data[i] + data[i + 1] + data[i + 2];
    if (value > 24) lit++;
    levels.add(data[i]);
  }
  return { width: canvas.width, height: canvas.height, litFraction: lit / (data.length / 4), levels: levels.size };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const root = normalize(args.ohif);
  const origin = `http://127.0.0.1:${args.port}`;
  const server = await serveOhif(root, args.port, appConfig(args.dicomweb), args.proxy);
  if (args.screenshots) await mkdir(args.screenshots, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--use-angle=swiftshader', '--enable-unsafe-swiftshader'],
  });
  const result = { origin, studyList: { found: [], missing: [] }, studies: [], requests: [], errors: [] };
  /** A fresh browser context (empty cache) whose DICOMweb traffic is recorded. */
  const openPage = async () => {
    const context = await browser.newContext({
      viewport: { width: 1400, height: 900 },
      extraHTTPHeaders: args.token ? { authorization: `Bearer ${args.token}` } : {},
    });
    await context.addInitScript({ content: `window.viewportPixels = ${viewportPixels.toString()};` });
    const page = await context.newPage();
    page.on('response', response => {
      const url = new URL(response.url());
      if (url.pathname.includes('/dicom-web')) {
        result.requests.push({
          method: response.request().method(),
          path: url.pathname + url.search,
          status: response.status(),
          accept: response.request().headers().accept ?? null,
          contentType: response.headers()['content-type'] ?? null,
        });
      }
    });
    page.on('requestfailed', request => {
      result.errors.push(`request failed: ${request.method()} ${request.url()}: ${request.failure()?.errorText}`);
    });
    page.on('console', message => {
      if (message.type() === 'error') result.errors.push(`console: ${message.text().slice(0, 300)}`);
    });
    page.on('pageerror', error => result.errors.push(`page: ${String(error).slice(0, 300)}`));
    return { context, page };
  };
  try {
    // The study list, as a doctor first sees it.
    if (args.expect.length > 0) {
      const { context, page } = await openPage();
      await page.goto(`${origin}/`, { waitUntil: 'domcontentloaded' });
      for (const text of args.expect) {
        try {
          await page.getByText(text, { exact: false }).first().waitFor({ timeout: 60_000 });
          result.studyList.found.push(text);
        } catch {
          result.studyList.missing.push(text);
        }
      }
      if (args.screenshots) await page.screenshot({ path: join(args.screenshots, `${args.name}-study-list.png`) });
      await context.close();
    }

    // Each study opened in the viewer: time until its first image is drawn.
    for (const uid of args.study) {
      for (let run = 0; run < Number(args.repeat); run++) {
        const { context, page } = await openPage();
        const started = performance.now();
        await page.goto(`${origin}/viewer?StudyInstanceUIDs=${encodeURIComponent(uid)}`, { waitUntil: 'domcontentloaded' });
        let firstImageMs = null;
        try {
          await page.waitForFunction(
            () => {
              const stats = window.viewportPixels();
              return stats && stats.litFraction > 0.01;
            },
            null,
            { timeout: 90_000, polling: 20 },
          );
          firstImageMs = Math.round(performance.now() - started);
        } catch (error) {
          result.errors.push(`study ${uid}: no image within 90 s (${String(error).split('\n')[0]})`);
        }
        // Let the viewport settle (overlays, the rest of the stack) before looking.
        await page.waitForTimeout(1500);
        const pixels = await page.evaluate(() => window.viewportPixels());
        if (args.screenshots && run === 0) await page.screenshot({ path: join(args.screenshots, `${args.name}-${uid}.png`) });
        result.studies.push({ uid, run, firstImageMs, pixels });
        await context.close();
      }
    }
  } finally {
    await browser.close();
    server.close();
  }
  process.stdout.write(JSON.stringify(result, null, 1) + '\n');
}

// Run as a script (not when bench/viewer imports the server and the probes).
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch(error => {
    process.stderr.write(`${error.stack ?? error}\n`);
    process.exit(1);
  });
}
