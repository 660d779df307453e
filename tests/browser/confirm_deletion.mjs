// Opens an emailed delete-confirmation link in headless Chromium as the person who got the
// email would, and clicks "Delete it". Prints one JSON report on stdout; the Rust test
// (tests/tests/integration/app_controls.rs) judges it.
//
// Environment: LINK (the full link), CHROMIUM (the browser binary), PLAYWRIGHT_DIR (where
// playwright-core is installed).

import { createRequire } from 'node:module';
import { join } from 'node:path';

const { chromium } = createRequire(join(process.env.PLAYWRIGHT_DIR, 'package.json'))('playwright-core');

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM, args: ['--no-sandbox'] });
const report = {};
try {
  const page = await browser.newPage();
  const opened = await page.goto(process.env.LINK);
  report.status = opened.status();
  report.pending = await page.textContent('#pending');
  await page.click('#confirm button[type=submit]');
  await page.waitForFunction(() => document.getElementById('result').textContent.length > 0);
  report.result = await page.textContent('#result');
  // Opened again, the used link says so and offers nothing to click.
  await page.goto(process.env.LINK);
  report.reopened = await page.textContent('#pending');
  report.reopened_has_button = (await page.locator('#confirm').count()) > 0;
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
