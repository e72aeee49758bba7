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

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i += 2) args[argv[i].replace(/^--/, '')] = argv[i + 1];
  for (const required of ['url', 'admin', 'site-name', 'screenshots']) {
    if (!args[required]) throw new Error(`--${required} is required`);
  }
  return args;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  await mkdir(args.screenshots, { recursive: true });
  const at = args.admin.indexOf(':');
  const admin = { username: args.admin.slice(0, at), password: args.admin.slice(at + 1) };
  const seen = { errors: [], dialogs: [], steps: {} };
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--no-first-run'],
  });
  const context = await browser.newContext({ locale: 'zh-CN', viewport: { width: 1366, height: 768 } });
  const page = await context.newPage();
  page.on('dialog', dialog => {
    // Removing a hospital asks first; nothing else may open a dialog.
    seen.dialogs.push(dialog.message());
    void dialog.accept();
  });
  page.on('console', message => {
    // The refused hospital is an expected 409 in the console.
    if (message.type() === 'error' && !/\b(401|409)\b/.test(message.text())) seen.errors.push(message.text().slice(0, 300));
  });
  page.on('pageerror', error => seen.errors.push(String(error).slice(0, 300)));
  page.on('response', response => {
    if (response.status() >= 500) seen.errors.push(`${response.status()} ${response.url()}`);
  });
  const shot = name => page.screenshot({ path: join(args.screenshots, `${name}.png`), fullPage: true });
  const counter = (site, key) => page.locator(`tr[data-site="${site}"] [data-counter=${key}]`).textContent();
  try {
    await page.goto(`${args.url}/`);
    await page.locator('input[name=username]').fill(admin.username);
    await page.locator('input[name=password]').fill(admin.password);
    await page.locator('button[type=submit]').click();

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
    await page.waitForTimeout(300);
    const sites = await (await page.request.get(`${args.url}/api/sites`)).json();
    seen.steps.site = sites.find(s => s.name === '东山县人民医院');
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
    await page.locator('.notice', { hasText: 'zhou' }).waitFor();
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
  } catch (error) {
    await shot('admin-failure').catch(() => {});
    process.stderr.write(`errors: ${JSON.stringify(seen.errors)}\nsteps: ${JSON.stringify(seen.steps)}\n`);
    throw error;
  } finally {
    await browser.close();
  }
  process.stdout.write(`${JSON.stringify(seen, null, 1)}\n`);
}

main().catch(error => {
  process.stderr.write(`${error.stack ?? error}\n`);
  process.exit(1);
});
