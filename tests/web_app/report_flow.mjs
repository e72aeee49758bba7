// A report from claim to the county hospital, in headless Chromium: the
// radiologist claims the demo CT and lands in it, marks a key image,
// writes with a phrase, meets another tab's newer save as a conflict,
// chooses a signing PIN at the first signature (a wrong password first)
// and signs; the reviewer, in English in another browser, revises the
// conclusion and signs it as its editor, and sees the PDF in the page; the county
// hospital downloads it (saved for tests/web_app.rs to check with
// pdfsig), sees it marked printed and its verification QR, and registers
// a new request. Called by tests/web_app.rs.
//
//   node tests/web_app/report_flow.mjs --url http://127.0.0.1:8080 \
//     --reader demo_radiologist:PW --reviewer demo_reviewer:PW --site demo_site:PW \
//     --reader-enrolment CODE --reviewer-enrolment CODE \
//     --exam '胸部CT平扫' --screenshots DIR --pdf FILE
//
// Prints one JSON object of observations.

import { credentials, launch, main, observations, parseArgs, run, screenshots, signIn as signInAt, watch } from './browser.mjs';

/** The signing PIN the reader chooses at their first signature. */
const READER_PIN = '802417';
/** The conclusion as the reviewer revises it. */
const REVISED_CONCLUSION = '右肺上叶实性小结节（8 mm），建议 6–12 个月后 CT 复查。';

main(async () => {
  const args = parseArgs(process.argv.slice(2), [
    'url', 'reader', 'reviewer', 'site', 'exam', 'screenshots', 'pdf', 'reader-enrolment', 'reviewer-enrolment',
  ]);
  const seen = observations();
  const browser = await launch();
  // Refusals the flow provokes (a wrong password, a conflicting save) are expected in the console.
  const expected = { expected: [401, 403, 409] };
  const open = async (locale, width = 1366, height = 768) => {
    const context = await browser.newContext({ locale, viewport: { width, height }, acceptDownloads: true });
    return { context, page: watch(await context.newPage(), seen, expected) };
  };
  const shot = await screenshots(args.screenshots);
  const signIn = (page, who) => signInAt(page, args.url, who);
  const saved = page => page.locator('[data-save-status=saved]').waitFor({ timeout: 15_000 });

  let current = null;
  await run(browser, seen, () => (current ? shot(current, 'failure') : Promise.resolve()), async () => {
    const reader = credentials(args.reader);
    const reviewer = credentials(args.reviewer);
    const site = credentials(args.site);

    // The radiologist claims the CT from the pool and lands in it, with the template's draft.
    const { context: readerContext, page } = await open('zh-CN');
    current = page;
    await signIn(page, reader);
    await page.getByRole('tab', { name: '待抢单' }).click();
    const row = page.locator('tr', { hasText: args.exam });
    await row.waitFor({ timeout: 30_000 });
    await row.getByRole('button', { name: '抢单' }).click();
    await page.waitForURL(/\/read\/\d+$/);
    const readUrl = page.url();
    seen.steps.landedOn = new URL(readUrl).pathname;
    const findings = page.locator('#report-findings');
    await findings.waitFor({ timeout: 30_000 });
    seen.steps.template = {
      method: await page.locator('#report-method').inputValue(),
      findings: await findings.inputValue(),
      state: await page.locator('[data-report-state]').getAttribute('data-report-state'),
    };
    await page.locator('.overlay.bottom-right[data-ww]').waitFor({ timeout: 60_000 });

    // A key image: the fourth slice, marked with k.
    await page.locator('[data-testid=viewport]').hover();
    for (let i = 0; i < 3; i++) await page.keyboard.press('ArrowDown');
    await page.waitForFunction(() => document.querySelector('.overlay.bottom-left')?.getAttribute('data-image-index') === '3');
    await page.keyboard.press('k');
    await page.locator('.key-image').waitFor();
    seen.steps.keyImages = await page.locator('.key-image').count();
    seen.steps.keyButtonPressed = await page.locator('.toolbar .tool.key').getAttribute('aria-pressed');

    // Writing: the findings typed over, a phrase inserted, the conclusion written.
    await findings.fill('右肺上叶见一结节影，直径约 8 mm，边缘光整。');
    const conclusion = page.locator('.report-section', { has: page.locator('#report-conclusion') });
    await conclusion.locator('summary').click();
    await page.locator('#report-conclusion').fill('右肺上叶小结节，');
    await conclusion.getByRole('button', { name: '建议复查。', exact: true }).click();
    await saved(page);
    seen.steps.conclusionAfterPhrase = await page.locator('#report-conclusion').inputValue();
    await shot(page, 'zh-CN-report-draft');

    // Another tab of the same reader saves first: this tab's next save is a conflict, not an overwrite.
    const otherTab = watch(await readerContext.newPage(), seen, expected);
    await otherTab.goto(readUrl);
    await otherTab.locator('#report-findings').waitFor({ timeout: 30_000 });
    await otherTab.locator('#report-findings').fill('右肺上叶见一结节影，直径约 8 mm，边缘光整，邻近胸膜未见牵拉。');
    await saved(otherTab);
    await findings.fill('右肺上叶见一结节影，直径约 9 mm。');
    await page.locator('[data-save-status=conflict]').waitFor({ timeout: 15_000 });
    seen.steps.conflict = await page.locator('.conflict').textContent();
    await shot(page, 'zh-CN-report-conflict');
    await page.getByRole('button', { name: '重新加载报告' }).click();
    await page.locator('[data-save-status=saved]').waitFor();
    seen.steps.findingsAfterReload = await findings.inputValue();
    await otherTab.close();

    // Signing: the first signature asks for a signing PIN to be chosen,
    // confirmed with the password; a wrong password is refused in the
    // dialog, the right one issues the key and signs.
    await page.getByRole('button', { name: '报告医师签名' }).click();
    const dialog = page.locator('dialog.confirm');
    await dialog.locator('input[name=new-signing-pin]').waitFor();
    await dialog.locator('input[name=password]').fill('not-my-password');
    await dialog.locator('input[name=new-signing-pin]').fill(READER_PIN);
    await dialog.locator('input[name=repeat-signing-pin]').fill(READER_PIN);
    // The one-time code the registration officer handed the doctor.
    await dialog.locator('input[name=enrolment-code]').fill(args['reader-enrolment']);
    await dialog.getByRole('button', { name: '签名', exact: true }).click();
    seen.steps.wrongPassword = await dialog.locator('[role=alert]').textContent();
    await shot(page, 'zh-CN-report-sign-dialog');
    await dialog.locator('input[name=password]').fill(reader.password);
    await dialog.getByRole('button', { name: '签名', exact: true }).click();
    await page.locator('[data-report-state=preliminary]').waitFor({ timeout: 30_000 });
    seen.steps.afterSign = {
      state: 'preliminary',
      editable: await findings.isEditable(),
      signatures: await page.locator('.signatures li').allTextContents(),
    };
    await shot(page, 'zh-CN-report-signed');

    // The reviewer, in English in another browser, co-signs from "Awaiting review".
    const { page: review } = await open('en');
    current = review;
    await signIn(review, reviewer);
    await review.getByRole('tab', { name: 'Awaiting review' }).click();
    await review.locator('tr', { hasText: args.exam }).getByRole('link', { name: 'Read' }).click();
    await review.getByRole('button', { name: 'Co-sign as reviewer' }).waitFor({ timeout: 30_000 });
    seen.steps.reviewerSees = await review.locator('#report-findings').inputValue();
    await shot(review, 'en-report-review');
    // The reviewer revises the conclusion (审核修改) and signs the revised
    // text as its editor: their signature alone, the author's on the draft.
    seen.steps.reviewerMayTypeBefore = await review.locator('#report-conclusion').isEditable();
    await review.getByRole('button', { name: 'Revise', exact: true }).click();
    await review.locator('#report-conclusion').fill(REVISED_CONCLUSION);
    await shot(review, 'en-report-revising');
    await review.getByRole('button', { name: 'Sign revised report' }).click();
    const reviewDialog = review.locator('dialog.confirm');
    await reviewDialog.locator('input[name=new-signing-pin]').waitFor();
    await reviewDialog.locator('input[name=password]').fill(reviewer.password);
    await reviewDialog.locator('input[name=new-signing-pin]').fill('reviewer-pin-246');
    await reviewDialog.locator('input[name=repeat-signing-pin]').fill('reviewer-pin-246');
    await reviewDialog.locator('input[name=enrolment-code]').fill(args['reviewer-enrolment']);
    await shot(review, 'en-report-choose-pin');
    await reviewDialog.getByRole('button', { name: 'Sign as editor', exact: true }).click();
    await review.locator('[data-report-state=final]').waitFor({ timeout: 60_000 });
    const preview = review.locator('.pdf-preview iframe');
    await preview.waitFor();
    const previewUrl = new URL(await preview.getAttribute('src'), args.url).toString();
    const answer = await review.request.get(previewUrl);
    seen.steps.preview = {
      status: answer.status(),
      type: answer.headers()['content-type'],
      disposition: answer.headers()['content-disposition'],
      bytes: (await answer.body()).length,
    };
    seen.steps.finalSignatures = await review.locator('.signatures li').allTextContents();
    seen.steps.finalConclusion = await review.locator('.report-final').textContent();
    await review.waitForTimeout(1500);
    await shot(review, 'en-report-final');

    // The county hospital: final, downloaded, then printed; the QR code shown.
    const { page: county } = await open('zh-CN');
    current = county;
    await signIn(county, site);
    const siteRow = county.locator('tr', { hasText: args.exam }).first();
    await siteRow.waitFor({ timeout: 30_000 });
    seen.steps.siteStatusBefore = await siteRow.getAttribute('data-status');
    await shot(county, 'zh-CN-site-requests');
    const [download] = await Promise.all([county.waitForEvent('download'), siteRow.locator('[data-download=pdf]').click()]);
    await download.saveAs(args.pdf);
    seen.steps.downloadName = download.suggestedFilename();
    await county.reload();
    const printedRow = county.locator('tr', { hasText: args.exam }).first();
    await printedRow.waitFor();
    seen.steps.siteStatusAfter = await printedRow.getAttribute('data-status');
    seen.steps.siteStatusText = await printedRow.locator('.status').textContent();
    await printedRow.getByRole('button', { name: '验证码' }).click();
    const qr = printedRow.locator('img.qr');
    await qr.waitFor();
    await county.waitForFunction(img => img.complete && img.naturalWidth > 0, await qr.elementHandle());
    seen.steps.qrWidth = await qr.evaluate(img => img.naturalWidth);
    await shot(county, 'zh-CN-site-printed-qr');

    // Registering the next request ahead of its images.
    await county.getByRole('link', { name: '登记申请' }).click();
    await county.locator('input[name=patient_name]').fill('王秀英');
    await county.locator('input[name=patient_id]').fill('DS-REG-0001');
    await county.locator('select[name=patient_sex]').selectOption('F');
    await county.locator('input[name=age_value]').fill('63');
    await county.locator('select[name=modality]').selectOption('DX');
    await county.locator('input[name=requested_exam]').fill('胸部正位片');
    await county.locator('input[name=accession_number]').fill('DX20261205001');
    await county.locator('textarea[name=clinical_history]').fill('咳嗽两周，发热三天。');
    await shot(county, 'zh-CN-site-register');
    await county.getByRole('button', { name: '提交登记' }).click();
    await county.locator('.notice').waitFor();
    seen.steps.registered = await county.locator('.notice').textContent();
    const registered = county.locator('tr', { hasText: 'DX20261205001' });
    await registered.waitFor();
    seen.steps.registeredRow = { status: await registered.getAttribute('data-status'), text: await registered.textContent() };
    await shot(county, 'zh-CN-site-registered');

    // The county hospital's screens in English.
    await county.getByRole('button', { name: '语言' }).click();
    await county.getByRole('link', { name: 'Register a request' }).waitFor();
    seen.steps.siteStatusEnglish = await county.locator('tr', { hasText: args.exam }).first().locator('.status').textContent();
    await shot(county, 'en-site-requests');
    await county.getByRole('link', { name: 'Register a request' }).click();
    await county.locator('input[name=patient_name]').waitFor();
    await shot(county, 'en-site-register');
  });
});
