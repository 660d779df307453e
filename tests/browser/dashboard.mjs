// Drives the dashboard in headless Chromium as a person would: signs in through the emailed
// link, looks at the overview, reveals and rotates a database's credentials, opens a
// deployment and watches its log, claims anonymous resources through the claim page, and
// works the operator page (unload, upload). Prints one JSON report on stdout; the Rust test
// (tests/tests/integration/dashboard.rs) judges it.
//
// Environment: BASE_URL, MAILDIR, EMAIL, TARBALL (a .tar.gz to deploy), LOG_MARKER (a line
// the build prints), SHOTS (where screenshots go), CHROMIUM (the browser binary),
// PLAYWRIGHT_DIR (where playwright-core is installed), ADMIN_TOKEN, COMPONENT (a provider
// component to upload), PROVIDER (its provider name).

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

// The newest message to `to` in the Maildir; its sign-in link (quoted-printable undone).
async function emailedLink(to = email) {
  const dir = join(env('MAILDIR'), 'new');
  for (let i = 0; i < 100; i++) {
    const messages = readdirSync(dir)
      .map((name) => join(dir, name))
      .map((path) => ({ path, at: statSync(path).mtimeMs, text: readFileSync(path, 'utf8') }))
      .filter((m) => m.text.split('\n').some((l) => l.toLowerCase().startsWith('to:') && l.includes(to)))
      .sort((a, b) => a.at - b.at);
    if (messages.length) {
      const body = messages.at(-1).text.replaceAll('=\r\n', '').replaceAll('=\n', '').replaceAll('=3D', '=');
      const match = body.match(/\/auth\/email\/callback\?t=\S+/);
      if (match) return match[0];
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no sign-in link for ${to}`);
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

  // The database's page: reveal (recorded), then rotate.
  await row.locator('a').click();
  await page.waitForSelector('#reveal');
  report.resource_page_url = page.url();
  report.history_before = await page.textContent('#history');
  await page.click('#reveal');
  await page.waitForSelector('#credentials');
  report.revealed_text = await page.textContent('#credentials');
  report.history_after_reveal = await page.textContent('#history');
  await page.click('#rotate');
  await page.waitForFunction(() => (document.getElementById('credentials-notice')?.textContent || '').includes('New credentials'));
  report.rotated_notice = await page.textContent('#credentials-notice');
  report.rotated_text = await page.textContent('#credentials');
  report.history_after_rotate = await page.textContent('#history');
  await page.screenshot({ path: join(shots, '4-resource.png'), fullPage: true });

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

  // The claim page an anonymous resource's `upgrade` link opens, in a fresh browser.
  const anonymous = await fetch(`${base}/db/new`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'claim-me' }),
  });
  const created = await anonymous.json();
  report.anonymous_status = anonymous.status;
  report.anonymous_token = created.token;
  if (!created.upgrade) throw new Error(`anonymous provisioning: ${anonymous.status} ${JSON.stringify(created)}`);
  const stranger = await browser.newContext();
  const claimPage = await stranger.newPage();
  // The create answer's claim_url opens the same page (a GET, as a browser sends it).
  const byClaimUrl = await claimPage.goto(created.claim_url);
  report.claim_url_status = byClaimUrl.status();
  report.claim_url_claimable = await claimPage.textContent('#claimable');
  await claimPage.goto(created.upgrade);
  report.claimable = await claimPage.textContent('#claimable');
  const claimer = `claim-${email}`;
  await claimPage.fill('#email', claimer);
  await claimPage.click('button[type=submit]');
  await claimPage.waitForFunction(() => document.getElementById('result').textContent.length > 0);
  report.claim_result = await claimPage.textContent('#result');
  await claimPage.screenshot({ path: join(shots, '5-claim.png'), fullPage: true });
  await claimPage.goto(base + (await emailedLink(claimer)));
  report.after_claim_url = claimPage.url();
  report.after_claim_row = await claimPage.locator(`tr[data-token="${created.token}"]`).innerText();
  await stranger.close();

  // The operator page: sign in with the admin token, unload a provider, upload it again.
  const provider = env('PROVIDER');
  await page.goto(`${base}/dashboard/operator`);
  await page.fill('input[name=token]', 'not-the-token');
  await page.click('button[type=submit]');
  report.operator_wrong_token = await page.textContent('.refusal');
  await page.fill('input[name=token]', env('ADMIN_TOKEN'));
  await page.click('button[type=submit]');
  const providerRow = () => page.locator(`tr[data-provider="${provider}"]`);
  report.operator_row = await providerRow().innerText();
  await providerRow().locator('button', { hasText: 'Unload' }).click();
  await page.waitForSelector('#notice.notice');
  report.unload_notice = await page.textContent('#notice');
  report.unloaded_row = await providerRow().innerText();
  await providerRow().locator('input.component').setInputFiles(env('COMPONENT'));
  await page.waitForFunction((name) => {
    const row = document.querySelector(`tr[data-provider="${name}"] .version`);
    return row !== null;
  }, provider, { timeout: 60000 });
  report.reloaded_row = await providerRow().innerText();
  await page.screenshot({ path: join(shots, '6-operator.png'), fullPage: true });
} catch (error) {
  // What the page showed when a step failed, for the test's failure message.
  for (const context of browser.contexts()) {
    for (const open of context.pages()) console.error(`--- ${open.url()}\n${(await open.textContent('body').catch(() => '')).slice(0, 2000)}`);
  }
  throw error;
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
