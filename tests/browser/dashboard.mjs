// Drives the dashboard in headless Chromium as a person would: signs in through the emailed
// link, looks at the overview, opens a deployment and watches its log. Prints one JSON
// report on stdout; the Rust test (tests/tests/dashboard.rs) judges it.
//
// Environment: BASE_URL, MAILDIR, EMAIL, TARBALL (a .tar.gz to deploy), LOG_MARKER (a line
// the build prints), SHOTS (where screenshots go), CHROMIUM (the browser binary),
// PLAYWRIGHT_DIR (where playwright-core is installed).

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

// playwright-core lives in the machine's cache (scripts/lib.sh ensure_browser), not here.
const { chromium } = createRequire(join(process.env.PLAYWRIGHT_DIR, 'package.json'))('playwright-core');

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const base = env('BASE_URL');
const email = env('EMAIL');
const shots = env('SHOTS');
const report = {};

// The newest message to `email` in the Maildir; its sign-in link (quoted-printable undone).
async function emailedLink() {
  const dir = join(env('MAILDIR'), 'new');
  for (let i = 0; i < 100; i++) {
    const messages = readdirSync(dir)
      .map((name) => join(dir, name))
      .map((path) => ({ path, at: statSync(path).mtimeMs, text: readFileSync(path, 'utf8') }))
      .filter((m) => m.text.split('\n').some((l) => l.toLowerCase().startsWith('to:') && l.includes(email)))
      .sort((a, b) => a.at - b.at);
    if (messages.length) {
      const body = messages.at(-1).text.replaceAll('=\r\n', '').replaceAll('=\n', '').replaceAll('=3D', '=');
      const match = body.match(/\/auth\/email\/callback\?t=\S+/);
      if (match) return match[0];
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no sign-in link for ${email}`);
}

async function api(path, session, init = {}) {
  const answer = await fetch(base + path, {
    ...init,
    headers: { ...(init.headers || {}), Authorization: `Bearer ${session}` },
  });
  return { status: answer.status, body: await answer.json() };
}

const browser = await chromium.launch({ executablePath: env('CHROMIUM'), args: ['--no-sandbox'] });
try {
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  const page = await context.newPage();

  // Sign in: the form asks for a link; the link signs the browser in.
  await page.goto(`${base}/dashboard`);
  await page.fill('input[name=email]', email);
  await page.click('button[type=submit]');
  await page.waitForFunction(() => document.getElementById('sent').textContent.includes('Check your inbox'));
  await page.screenshot({ path: join(shots, '1-sign-in.png') });
  await page.goto(base + (await emailedLink()));
  report.after_link_url = page.url();
  report.signed_in_text = await page.textContent('body');
  const cookie = (await context.cookies()).find((c) => c.name === 'instanode_session');
  report.cookie_http_only = cookie?.httpOnly ?? null;
  const session = cookie?.value;

  // The team's database (measured) and an app, made through the API with the session.
  const db = await api('/db/new', session, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'browser-db' }),
  });
  report.db_status = db.status;
  report.db_token = db.body.token;
  await fetch(`${base}/testing/meter`, { method: 'POST' });
  const form = new FormData();
  form.append('name', 'browser-app');
  form.append('tarball', new Blob([readFileSync(env('TARBALL'))]), 'app.tar.gz');
  const deploy = await api('/deploy/new', session, { method: 'POST', body: form });
  report.deploy_status = deploy.status;
  const id = deploy.body.id;

  // The overview: the database's row, its usage bar and lifetime.
  await page.goto(`${base}/dashboard`);
  const row = page.locator(`tr[data-token="${db.body.token}"]`);
  report.db_row = await row.innerText();
  report.db_row_meter = await row.locator('[role=meter]').count();
  await page.screenshot({ path: join(shots, '2-overview.png'), fullPage: true });

  // The deployment: live log lines, then healthy.
  await page.goto(`${base}/dashboard/deployments/${id}`);
  await page.waitForFunction(
    (marker) => document.getElementById('log').textContent.includes(marker),
    env('LOG_MARKER'),
    { timeout: 120000 },
  );
  await page.waitForFunction(() => document.getElementById('status').textContent === 'healthy', null, { timeout: 120000 });
  report.log = await page.textContent('#log');
  report.deployment_status = await page.textContent('#status');
  await page.screenshot({ path: join(shots, '3-deployment.png'), fullPage: true });
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
