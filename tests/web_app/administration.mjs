// The administrator in headless Chromium: the live dashboard counting a
// registration made meanwhile, a hospital added and its settings changed,
// a user added, credentialed and disabled, the audit log searched and its
// chain checked; every tab in Chinese and in English. Called by
// tests/web_app.rs.
//
//   node tests/web_app/administration.mjs --url http://127.0.0.1:8080 \
//     --admin admin:PW --site-name 演示县人民医院 --screenshots DIR
//
// Prints one JSON object of observations.

import { credentials, launch, main, observations, parseArgs, run, screenshots, signIn, watch } from './browser.mjs';

main(async () => {
  const args = parseArgs(process.argv.slice(2), ['url', 'admin', 'site-name', 'screenshots']);
  const admin = credentials(args.admin);
  const seen = observations();
  const browser = await launch();
  const context = await browser.newContext({ locale: 'zh-CN', viewport: { width: 1366, height: 768 } });
  // Removing a hospital asks first (accepted); the refused hospital is an expected 409.
  const page = watch(await context.newPage(), seen, { expected: [401, 409], acceptDialogs: true });
  const save = await screenshots(args.screenshots);
  const shot = name => save(page, name, true);
  const counter = (site, key) => page.locator(`tr[data-site="${site}"] [data-counter=${key}]`).textContent();
  await run(browser, seen, () => shot('admin-failure'), async () => {
    await signIn(page, args.url, admin);

    // The dashboard, live: a registration made elsewhere shows without a reload.
    await page.locator(`tr[data-site="${args['site-name']}"]`).waitFor({ timeout: 30_000 });
    seen.steps.landedOn = new URL(page.url()).pathname;
    const before = Number(await counter(args['site-name'], 'images_missing'));
    const registered = await page.request.post(`${args.url}/api/requests`, {
      headers: { 'X-Telediag-Request': '1' },
      data: { site: args['site-name'], patient_name: '孙丽', patient_id: 'ADM-0001', requested_exam: '腹部彩超', modality: 'US' },
    });
    seen.steps.registerStatus = registered.status();
    const asked = Date.now();
    await page.waitForFunction(
      ([site, n]) => Number(document.querySelector(`tr[data-site="${site}"] [data-counter=images_missing]`)?.textContent) === n,
      [args['site-name'], before + 1],
      { timeout: 10_000 },
    );
    seen.steps.dashboard = { before, after: before + 1, liveMs: Date.now() - asked };
    await shot('zh-CN-admin-dashboard');

    // A hospital added, its settings changed.
    await page.getByRole('tab', { name: '医院' }).click();
    await page.locator('input[name=site_name]').fill('东山县人民医院');
    await page.locator('input[name=ae_titles]').fill('CT_DONGSHAN, DR_DONGSHAN');
    await page.locator('input[name=networks]').fill('10.12.0.0/16');
    await page.getByRole('button', { name: '添加医院' }).click();
    const dongshan = page.locator('tr[data-site="东山县人民医院"]');
    await dongshan.waitFor();
    await dongshan.getByLabel('单签').check();
    await page.locator('.notice', { hasText: '已保存' }).waitFor();
    await dongshan.getByLabel('分配方式').selectOption('auto');
    // What the centre now holds, once both changes have reached it.
    for (let tries = 0; tries < 50; tries++) {
      const sites = await (await page.request.get(`${args.url}/api/sites`)).json();
      seen.steps.site = sites.find(s => s.name === '东山县人民医院');
      if (seen.steps.site?.assignment_mode === 'auto' && seen.steps.site?.single_signature) break;
      await page.waitForTimeout(100);
    }
    // A bad AE title is refused with the centre's reason.
    await page.locator('input[name=site_name]').fill('坏医院');
    await page.locator('input[name=ae_titles]').fill('THIS_AE_TITLE_IS_TOO_LONG');
    await page.getByRole('button', { name: '添加医院' }).click();
    seen.steps.badSite = await page.locator('[role=alert]').textContent();
    await shot('zh-CN-admin-sites');

    // A user added, credentialed for CT at that hospital, then disabled.
    await page.getByRole('tab', { name: '用户' }).click();
    await page.locator('input[name=new_username]').fill('zhou');
    await page.locator('input[name=new_display_name]').fill('放射科 周医生');
    await page.locator('input[name=new_password]').fill('password-zhou');
    await page.getByRole('button', { name: '添加用户' }).click();
    const zhou = page.locator('tr[data-user=zhou]');
    await zhou.waitFor();
    await zhou.getByRole('button', { name: '编辑' }).click();
    const editor = page.locator('.admin-editor');
    await editor.getByLabel('CT', { exact: true }).check();
    await editor.locator('fieldset', { hasText: '可读医院' }).getByLabel('东山县人民医院').check();
    await editor.getByRole('button', { name: '保存阅片资质' }).click();
    await page.locator('tr[data-user=zhou] td', { hasText: 'CT · ' }).waitFor();
    seen.steps.credentials = await page.locator('tr[data-user=zhou] td').nth(4).textContent();
    await editor.getByRole('button', { name: '停用' }).click();
    await page.locator('tr[data-user=zhou]', { hasText: '已停用' }).waitFor();
    seen.steps.userState = await page.locator('tr[data-user=zhou] td').nth(6).textContent();
    const login = await page.request.post(`${args.url}/api/login`, { data: { username: 'zhou', password: 'password-zhou' } });
    seen.steps.disabledLogin = login.status();
    await shot('zh-CN-admin-users');

    // The audit log: what was just done is in it; the chain is intact.
    await page.getByRole('tab', { name: '审计日志' }).click();
    await page.locator('input[name=audit_contains]').fill('/api/sites');
    await page.getByRole('button', { name: '查询' }).click();
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll('tr[data-audit]')];
      return rows.length > 0 && rows.every(r => r.textContent.includes('/api/sites'));
    });
    seen.steps.auditRows = await page.locator('tr[data-audit]').evaluateAll(rows =>
      rows.map(r => [...r.children].slice(3, 6).map(c => c.textContent)),
    );
    await page.getByRole('button', { name: '校验审计链' }).click();
    const chain = page.locator('[data-intact]');
    await chain.waitFor();
    seen.steps.chain = { intact: await chain.getAttribute('data-intact'), text: await chain.textContent() };
    await shot('zh-CN-admin-audit');

    // Every tab in English.
    await page.getByRole('button', { name: '语言' }).click();
    for (const [tab, name] of [['Dashboard', 'dashboard'], ['Hospitals', 'sites'], ['Users', 'users'], ['Audit log', 'audit']]) {
      await page.getByRole('tab', { name: tab }).click();
      await page.locator('table').first().waitFor();
      await page.waitForTimeout(200);
      await shot(`en-admin-${name}`);
    }
    seen.steps.englishTabs = await page.locator('[role=tab]').allTextContents();
  });
});
