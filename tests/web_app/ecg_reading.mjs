// An ECG doctor reads the demo ECG in headless Chromium: claims it, lands
// in the tracing drawn from the samples, switches layout, speed and gain,
// places calipers on two R peaks of the lead II rhythm strip (a click near
// each, then ← → to the peak sample) and reads the RR interval, writes and
// signs. Called by tests/web_app.rs, which compares the reading with the
// samples.
//
//   node tests/web_app/ecg_reading.mjs --url http://127.0.0.1:8080 \
//     --reader demo_ecg:PW --reader-enrolment CODE --screenshots DIR
//
// Prints one JSON object of observations.

import { credentials, launch, main, observations, parseArgs, run, screenshots, signIn, watch } from './browser.mjs';

main(async () => {
  const args = parseArgs(process.argv.slice(2), ['url', 'reader', 'reader-enrolment', 'screenshots']);
  const reader = credentials(args.reader);
  const seen = observations();
  const browser = await launch();
  const context = await browser.newContext({ locale: 'zh-CN', viewport: { width: 1366, height: 768 } });
  const page = watch(await context.newPage(), seen);
  const save = await screenshots(args.screenshots);
  const shot = name => save(page, name);
  await run(browser, seen, () => shot('ecg-failure'), async () => {
    await signIn(page, args.url, reader);
    await page.getByRole('tab', { name: '待抢单' }).click();
    const row = page.locator('tr', { hasText: 'ECG' }).first();
    await row.waitFor({ timeout: 30_000 });
    await row.getByRole('button', { name: '抢单' }).click();
    await page.waitForURL(/\/read\/\d+$/);
    const canvas = page.locator('[data-testid=ecg-canvas]');
    await canvas.waitFor({ timeout: 30_000 });
    await page.locator('#report-findings').waitFor({ timeout: 30_000 });
    await page.locator('.ecg-measurements td').first().waitFor();
    await page.waitForTimeout(300);
    await shot('zh-CN-ecg-3x4');

    // The samples and the centre's analysis, as the page has them.
    const sop = await page.locator('.ecg-viewer').getAttribute('data-sop');
    const samples = await (await page.request.get(`${args.url}/api/instances/${encodeURIComponent(sop)}/ecg-samples`)).json();
    const analysis = await (await page.request.get(`${args.url}/api/instances/${encodeURIComponent(sop)}/ecg-measurements`)).json();
    const lead = samples.leads.find(l => l.label === 'II').microvolts;
    const rate = samples.sampling_rate_hz;
    // R peaks: the largest |II| within 60 ms of each detected QRS.
    const window = Math.round(0.06 * rate);
    const peaks = analysis.qrs_samples.map(q => {
      let best = q;
      for (let i = Math.max(0, q - window); i < Math.min(lead.length, q + window); i++) if (Math.abs(lead[i]) > Math.abs(lead[best])) best = i;
      return best;
    });
    seen.steps.rate = rate;
    seen.steps.peaks = peaks;
    seen.steps.paperLit = await canvas.evaluate(c => {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let ink = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i] < 80 && d[i + 1] < 80 && d[i + 2] < 80) ink++;
      return ink / (d.length / 4);
    });

    // Calipers on the rhythm strip at the second and third R peaks.
    const layout = JSON.parse(await canvas.getAttribute('data-layout'));
    const rhythm = layout.at(-1);
    const box = await canvas.boundingBox();
    const xOf = sample => box.x + rhythm.x + ((sample - rhythm.start) / (rhythm.end - rhythm.start)) * rhythm.width;
    const [r1, r2] = [peaks[1], peaks[2]];
    const readout = page.locator('.caliper-reading');
    await page.mouse.click(xOf(r1), box.y + rhythm.baseline);
    await page.keyboard.press('ArrowRight'); // nudged and back: the keys move the caliper
    await page.keyboard.press('ArrowLeft');
    const firstPlaced = Number((await readout.getAttribute('data-samples')).split(',')[0]);
    for (let i = firstPlaced; i < r1; i++) await page.keyboard.press('ArrowRight');
    for (let i = firstPlaced; i > r1; i--) await page.keyboard.press('ArrowLeft');
    await page.mouse.click(xOf(r2), box.y + rhythm.baseline);
    const secondPlaced = Number((await readout.getAttribute('data-samples')).split(',')[1]);
    for (let i = secondPlaced; i < r2; i++) await page.keyboard.press('ArrowRight');
    for (let i = secondPlaced; i > r2; i--) await page.keyboard.press('ArrowLeft');
    seen.steps.clicked = { first: firstPlaced, second: secondPlaced, pixelsPerSample: rhythm.width / (rhythm.end - rhythm.start) };
    seen.steps.calipers = {
      samples: await readout.getAttribute('data-samples'),
      ms: Number(await readout.getAttribute('data-ms')),
      bpm: Number(await readout.getAttribute('data-bpm')),
      text: await readout.textContent(),
    };
    await shot('zh-CN-ecg-calipers');

    // The other layouts, speeds and gains.
    await page.getByLabel('布局').selectOption('6x2');
    await page.waitForTimeout(200);
    await shot('zh-CN-ecg-6x2');
    await page.getByLabel('布局').selectOption('12x1');
    await page.getByLabel('走纸速度').selectOption('50');
    await page.getByLabel('增益').selectOption('5');
    await page.waitForTimeout(200);
    seen.steps.layout12 = JSON.parse(await canvas.getAttribute('data-layout')).length;
    seen.steps.scale50 = Number(await canvas.getAttribute('data-scale'));
    await shot('zh-CN-ecg-12x1-50mm');
    await page.getByLabel('布局').selectOption('3x4');
    await page.getByLabel('走纸速度').selectOption('25');
    await page.getByLabel('增益').selectOption('10');

    // The measurements side by side, the cart's statements.
    seen.steps.measurements = await page.locator('.ecg-measurements tbody tr').evaluateAll(rows =>
      rows.map(r => [...r.children].map(c => c.textContent)),
    );
    seen.steps.statements = await page.locator('.ecg-statements li').allTextContents();

    // The report: the prefilled conclusion confirmed, then signed.
    const conclusion = page.locator('#report-conclusion');
    seen.steps.prefilled = await conclusion.inputValue();
    await conclusion.fill('窦性心律，正常心电图。');
    await page.locator('[data-save-status=saved]').waitFor({ timeout: 15_000 });
    await page.getByRole('button', { name: '报告医师签名' }).click();
    // Their first signature: the ECG doctor chooses a signing PIN.
    const dialog = page.locator('dialog.confirm');
    await dialog.locator('input[name=new-signing-pin]').waitFor();
    await dialog.locator('input[name=password]').fill(reader.password);
    await dialog.locator('input[name=new-signing-pin]').fill('ecg-pin-1357');
    await dialog.locator('input[name=repeat-signing-pin]').fill('ecg-pin-1357');
    await dialog.locator('input[name=enrolment-code]').fill(args['reader-enrolment']);
    await dialog.getByRole('button', { name: '签名', exact: true }).click();
    await page.locator('[data-report-state=preliminary], [data-report-state=final]').waitFor({ timeout: 30_000 });
    seen.steps.signedState = await page.locator('[data-report-state]').getAttribute('data-report-state');
    await shot('zh-CN-ecg-signed');

    // The same in English.
    await page.getByRole('button', { name: '语言' }).click();
    await page.getByRole('button', { name: 'Co-sign as reviewer' }).or(page.locator('.ecg-measurements')).first().waitFor();
    await page.waitForTimeout(300);
    await shot('en-ecg');

    // Their signing settings: the certificate the first signature issued.
    await page.getByRole('link', { name: 'Signing' }).click();
    await page.locator('.signing-status[data-has-pin=true]').waitFor();
    seen.steps.signingCertificate = await page.locator('.signing-status dd').first().textContent();
    await shot('en-signing');
  });
});
