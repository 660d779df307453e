// Drives the dashboard in headless Chromium as a person would. It signs in through the
// emailed link and walks every page: the overview, resources (filtered), a database's page
// (reveal, rotate), a delete confirmed by typing the name, deployments, an app's page (live
// log, redeploy), a stack, the vault (a recorded reveal), the team, and settings (an API key
// made, used, and revoked). It also opens the claim page in a fresh browser and works the
// operator page (unload, upload).
//
// On every page it takes screenshots at desktop and phone widths in light and dark, runs
// axe-core in each, and checks the page does not scroll sideways on a phone. Throughout, it
// notes every console error, script error, failed request, error answer to a subresource,
// and request to another origin. It prints one JSON report on stdout; the Rust test
// (tests/tests/integration/dashboard.rs) judges it.
//
// Environment: BASE_URL, MAILDIR, EMAIL, TARBALL (a .tar.gz to deploy), LOG_MARKER (a line
// the build prints), SHOTS (where screenshots go), CHROMIUM (the browser binary),
// PLAYWRIGHT_DIR (where playwright-core and axe-core are installed), ADMIN_TOKEN, COMPONENT
// (a provider component to upload), PROVIDER (its provider name), DB_TOKEN (the team's
// database), DOOMED_TOKEN and DOOMED_NAME (a resource to delete), STACK_SLUG (the team's
// stack), VAULT_KEY (a key in the vault's production env).

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
// playwright-core and axe-core live in the machine's cache (scripts/lib.sh ensure_browser).
const modules = env('PLAYWRIGHT_DIR');
const { chromium } = createRequire(join(modules, 'package.json'))('playwright-core');
const axeSource = readFileSync(join(modules, 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');

const base = env('BASE_URL');
const origin = new URL(base).origin;
const email = env('EMAIL');
const shots = env('SHOTS');
const report = { pages: {}, problems: [] };
// Addresses the walk expects a refusal from (a page with the API's code and message); the
// browser logs those answers as errors, so they are let through here and checked instead.
const refusalsExpected = new Set();

// How long after a cancelled request the page must have been left for it to be excused.
const CANCEL_GRACE_MS = 1000;
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const VARIANTS = [
  { name: 'desktop-light', viewport: DESKTOP, scheme: 'light' },
  { name: 'desktop-dark', viewport: DESKTOP, scheme: 'dark' },
  { name: 'phone-light', viewport: PHONE, scheme: 'light' },
  { name: 'phone-dark', viewport: PHONE, scheme: 'dark' },
];

// Everything that goes wrong on a page is noted, whichever step was running.
function watch(page) {
  // Counts the page's navigations (and its close), so a request the browser cancelled
  // because the page was left (a log stream, an icon still loading) is told from one that
  // failed. The two events may come in either order, so a cancel is judged a moment later.
  let navigations = 0;
  const startedAt = new WeakMap();
  page.on('framenavigated', (frame) => {
    if (frame === page.mainFrame()) navigations++;
  });
  page.on('close', () => navigations++);
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    if (m.text().startsWith('Failed to load resource') && refusalsExpected.has(m.location().url)) return;
    report.problems.push(`console error on ${page.url()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => report.problems.push(`script error on ${page.url()}: ${e.message}`));
  page.on('request', (r) => {
    startedAt.set(r, navigations);
    if (new URL(r.url()).origin !== origin) report.problems.push(`request to another origin: ${r.url()}`);
  });
  page.on('requestfailed', (r) => {
    const why = r.failure()?.errorText;
    const problem = `failed request ${r.method()} ${r.url()}: ${why}`;
    if (why !== 'net::ERR_ABORTED' || r.isNavigationRequest()) {
      report.problems.push(problem);
      return;
    }
    const started = startedAt.get(r) ?? navigations;
    setTimeout(() => {
      if (navigations === started) report.problems.push(problem);
    }, CANCEL_GRACE_MS);
  });
  page.on('response', (r) => {
    if (r.status() >= 400 && r.request().resourceType() !== 'document') {
      report.problems.push(`${r.status()} for ${r.request().method()} ${r.url()}`);
    }
  });
  return page;
}

// Opens `path` and insists on the status the page should have.
async function open(page, path, status = 200) {
  const answer = await page.goto(base + path);
  if (answer.status() !== status) {
    throw new Error(`${path}: ${answer.status()}, not ${status}: ${(await page.textContent('body')).slice(0, 500)}`);
  }
}

// Screenshots of the page as it is, in every variant, with axe's serious and critical
// findings and any sideways scrolling at phone width.
async function inspect(page, name) {
  const findings = [];
  for (const variant of VARIANTS) {
    await page.setViewportSize(variant.viewport);
    await page.emulateMedia({ colorScheme: variant.scheme });
    await page.screenshot({ path: join(shots, `${name}-${variant.name}.png`), fullPage: true });
    if (!(await page.evaluate(() => typeof window.axe === 'object'))) {
      await page.addScriptTag({ content: axeSource });
    }
    const violations = await page.evaluate(async () => {
      const result = await window.axe.run(document, { resultTypes: ['violations'] });
      return result.violations
        .filter((v) => v.impact === 'serious' || v.impact === 'critical')
        .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
    });
    for (const v of violations) findings.push(`${variant.name}: ${v}`);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (overflow > 1) findings.push(`${variant.name}: the page scrolls sideways by ${overflow}px`);
  }
  await page.setViewportSize(DESKTOP);
  await page.emulateMedia({ colorScheme: 'light' });
  report.pages[name] = { url: page.url(), title: await page.title(), findings };
}

// The newest message to `to` in the Maildir (waited for up to 30 s); its sign-in link
// (quoted-printable undone).
async function emailedLink(to = email) {
  const dir = join(env('MAILDIR'), 'new');
  for (let i = 0; i < 300; i++) {
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

// What an agent does with a bearer: a request and its JSON answer.
async function api(path, bearer, init = {}) {
  const answer = await fetch(base + path, {
    ...init,
    headers: { ...(init.headers || {}), Authorization: `Bearer ${bearer}` },
  });
  return { status: answer.status, body: await answer.json() };
}

const text = async (page, selector) => (await page.textContent(selector)) ?? '';

const browser = await chromium.launch({ executablePath: env('CHROMIUM'), args: ['--no-sandbox'] });
try {
  const context = await browser.newContext({ viewport: DESKTOP });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin });
  const page = watch(await context.newPage());

  // Sign in: the form asks for a link; the link signs the browser in.
  await open(page, '/dashboard');
  await inspect(page, 'sign-in');
  await page.fill('input[name=email]', email);
  await page.click('button[type=submit]');
  await page.waitForFunction(() => document.getElementById('sent').textContent.includes('Check your inbox'));
  await page.goto(base + (await emailedLink()));
  report.after_link_url = page.url();
  report.signed_in_text = await text(page, 'body');
  const cookie = (await context.cookies()).find((c) => c.name === 'instanode_session');
  report.cookie_http_only = cookie?.httpOnly ?? null;
  const session = cookie?.value;

  // An app, made through the API with the session; then two meter passes for the charts.
  const form = new FormData();
  form.append('name', 'browser-app');
  form.append('env_vars', JSON.stringify({ DATABASE_URL: 'postgres://u:p@db:5432/x', GREETING: 'hi' }));
  form.append('tarball', new Blob([readFileSync(env('TARBALL'))]), 'app.tar.gz');
  const deploy = await api('/deploy/new', session, { method: 'POST', body: form });
  report.deploy_status = deploy.status;
  const id = deploy.body.id;
  await fetch(`${base}/testing/meter`, { method: 'POST' });
  await new Promise((r) => setTimeout(r, 1100));
  await fetch(`${base}/testing/meter`, { method: 'POST' });

  // Keyboard: the first Tab reaches the skip link, then the brand, then the navigation,
  // each with a visible focus ring.
  await open(page, '/dashboard');
  const focused = [];
  for (let i = 0; i < 3; i++) {
    await page.keyboard.press('Tab');
    focused.push(await page.evaluate(() => {
      const el = document.activeElement;
      return `${el.textContent.trim()}|${getComputedStyle(el).outlineStyle}`;
    }));
  }
  report.keyboard = focused;

  // The overview.
  report.overview_counts = await text(page, '#counts');
  report.overview_kinds = await text(page, '#kinds');
  report.overview_banner = await page.locator('#limit-banner').textContent().catch(() => null);
  report.overview_activity = await text(page, '#activity');
  report.overview_charts = await page.locator('svg.chart').count();
  await inspect(page, 'overview');

  // Resources: every kind listed; the kind filter keeps the databases only.
  await page.click('nav.main a:has-text("Resources")');
  await page.waitForSelector('#resources');
  report.resource_rows = await page.locator('#resources tbody tr').count();
  report.resources_text = await text(page, '#resources');
  await inspect(page, 'resources');
  await page.selectOption('#filter-kind', 'db');
  await page.click('#filters button[type=submit]');
  await page.waitForURL(/kind=db/);
  report.filtered_rows = await page.locator('#resources tbody tr').count();
  const row = page.locator(`tr[data-token="${env('DB_TOKEN')}"]`);
  report.db_row = await row.innerText();
  report.db_row_meter = await row.locator('[role=meter]').count();

  // The database's page: reveal (recorded), then rotate.
  await row.locator('a').click();
  await page.waitForSelector('#reveal');
  report.resource_page_url = page.url();
  report.resource_charts = await page.locator('.usage-chart').count();
  report.history_before = await text(page, '#history');
  await page.click('#reveal');
  await page.waitForSelector('#credentials');
  report.revealed_text = await text(page, '#credentials');
  report.history_after_reveal = await text(page, '#history');
  await page.click('#rotate');
  await page.waitForFunction(() => (document.getElementById('credentials-notice')?.textContent || '').includes('New credentials'));
  report.rotated_notice = await text(page, '#credentials-notice');
  report.rotated_text = await text(page, '#credentials');
  report.history_after_rotate = await text(page, '#history');
  await inspect(page, 'resource');

  // A delete: a wrong name is refused (the refusal page), the right one deletes.
  const doomed = env('DOOMED_TOKEN');
  await open(page, `/dashboard/resources/${doomed}`);
  await page.fill('#confirm-name', 'not-its-name');
  refusalsExpected.add(`${base}/dashboard/resources/${doomed}/delete`);
  const [refused] = await Promise.all([page.waitForNavigation(), page.click('#delete-button')]);
  report.wrong_confirmation_status = refused.status();
  report.wrong_confirmation_text = await text(page, '.refusal');
  await inspect(page, 'refusal');
  await open(page, `/dashboard/resources/${doomed}`);
  await page.fill('#confirm-name', env('DOOMED_NAME'));
  await Promise.all([page.waitForURL(/\/dashboard\/resources$/), page.click('#delete-button')]);
  report.after_delete_url = page.url();
  report.doomed_rows_after = await page.locator(`tr[data-token="${doomed}"]`).count();

  // Deployments: the app and the stack; the app's page follows its log to healthy.
  await page.click('nav.main a:has-text("Deployments")');
  await page.waitForSelector('#apps');
  report.deployments_text = await text(page, 'main');
  await inspect(page, 'deployments');
  await page.click(`#apps tr[data-deployment="${id}"] a`);
  await page.waitForFunction(
    (marker) => document.getElementById('log').textContent.includes(marker),
    env('LOG_MARKER'),
    { timeout: 120000 },
  );
  await page.waitForFunction(() => document.getElementById('status').textContent === 'healthy', null, { timeout: 120000 });
  report.log = await text(page, '#log');
  report.deployment_status = await text(page, '#status');
  report.deployment_env = await text(page, '#env');
  report.deployment_prompts = await page.locator('.prompt').count();
  await inspect(page, 'deployment');
  // A prompt's copy button puts the exact request on the clipboard.
  await page.click('.prompt button[data-copy]');
  report.copied_prompt = await page.evaluate(() => navigator.clipboard.readText());
  await Promise.all([page.waitForURL(/done=redeploy/), page.click('#redeploy')]);
  report.redeploy_notice = await text(page, '#notice');
  report.redeploy_generation = await text(page, '#generation');

  // The stack.
  await open(page, `/dashboard/stacks/${env('STACK_SLUG')}`);
  report.stack_services = await text(page, '#services');
  await inspect(page, 'stack');

  // The vault: tabs per env, names only, a value on request.
  await page.click('nav.main a:has-text("Vault")');
  await page.waitForSelector('#vault-keys');
  report.vault_tabs = await text(page, 'nav.tabs');
  report.vault_text_before = await text(page, 'main');
  await inspect(page, 'vault');
  await page.click(`tr[data-key="${env('VAULT_KEY')}"] button`);
  await page.waitForSelector('#revealed');
  report.vault_revealed = await text(page, '#secret-value');

  // The team: its members, and an invitation sent from the page.
  await page.click('nav.main a:has-text("Team")');
  await page.waitForSelector('#members');
  report.members = await text(page, '#members');
  await page.fill('#invite-email', `teammate-${email}`);
  await Promise.all([page.waitForURL(/done=invited/), page.click('#invite button[type=submit]')]);
  report.invite_notice = await text(page, '#notice');
  report.invitations = await text(page, 'table#invitations');
  await inspect(page, 'team');

  // Settings: a key made (shown once, copied), used as an agent would, then revoked.
  await page.click('nav.main a:has-text("Settings")');
  await page.waitForSelector('#create-key');
  await inspect(page, 'settings');
  await page.fill('#key-name', 'browser agent');
  await Promise.all([page.waitForNavigation(), page.click('#create-key button[type=submit]')]);
  const key = (await text(page, '#new-key-value')).trim();
  report.key_prefix = key.slice(0, 4);
  await page.click('#new-key button[data-copy]');
  report.key_copied = (await page.evaluate(() => navigator.clipboard.readText())) === key;
  report.keys_table = await text(page, '#api-keys');
  await inspect(page, 'settings-new-key');
  const listed = await api('/api/v1/resources', key);
  report.key_list_status = listed.status;
  report.key_list_names = (listed.body.items || []).map((i) => i.name);
  const made = await api('/webhook/new', key, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'made-with-key' }),
  });
  report.key_create_status = made.status;
  await open(page, '/dashboard/settings');
  report.keys_table_after_use = await text(page, '#api-keys');
  await Promise.all([
    page.waitForURL(/done=revoked/),
    page.click('#api-keys tr:has-text("browser agent") button'),
  ]);
  report.revoke_notice = await text(page, '#notice');
  report.revoked_key_status = (await api('/api/v1/resources', key)).status;

  // The claim page an anonymous resource's `upgrade` link opens, in a fresh browser.
  const anonymous = await fetch(`${base}/db/new`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'claim-me' }),
  });
  const created = await anonymous.json();
  report.anonymous_status = anonymous.status;
  report.anonymous_token = created.token;
  if (!created.upgrade) throw new Error(`anonymous provisioning: ${anonymous.status} ${JSON.stringify(created)}`);
  const stranger = await browser.newContext({ viewport: DESKTOP });
  const claimPage = watch(await stranger.newPage());
  // The create answer's claim_url opens the same page (a GET, as a browser sends it).
  const byClaimUrl = await claimPage.goto(created.claim_url);
  report.claim_url_status = byClaimUrl.status();
  report.claim_url_claimable = await text(claimPage, '#claimable');
  await claimPage.goto(created.upgrade);
  report.claimable = await text(claimPage, '#claimable');
  await inspect(claimPage, 'claim');
  const claimer = `claim-${email}`;
  await claimPage.fill('#email', claimer);
  await claimPage.click('button[type=submit]');
  await claimPage.waitForFunction(() => document.getElementById('result').textContent.length > 0);
  report.claim_result = await text(claimPage, '#result');
  await claimPage.goto(base + (await emailedLink(claimer)));
  report.after_claim_url = claimPage.url();
  await open(claimPage, '/dashboard/resources');
  report.after_claim_row = await claimPage.locator(`tr[data-token="${created.token}"]`).innerText();
  await stranger.close();

  // The operator page: sign in with the admin token, unload a provider, upload it again.
  const provider = env('PROVIDER');
  await open(page, '/dashboard/operator');
  await inspect(page, 'operator-sign-in');
  await page.fill('input[name=token]', 'not-the-token');
  refusalsExpected.add(`${base}/dashboard/operator/sign-in`);
  await page.click('button[type=submit]');
  report.operator_wrong_token = await text(page, '.refusal');
  await page.fill('input[name=token]', env('ADMIN_TOKEN'));
  await page.click('button[type=submit]');
  const providerRow = () => page.locator(`tr[data-provider="${provider}"]`);
  report.operator_row = await providerRow().innerText();
  await inspect(page, 'operator');
  await providerRow().locator('button', { hasText: 'Unload' }).click();
  await page.waitForSelector('#notice.notice');
  report.unload_notice = await text(page, '#notice');
  report.unloaded_row = await providerRow().innerText();
  await providerRow().locator('input.component').setInputFiles(env('COMPONENT'));
  await page.waitForFunction((name) => {
    const row = document.querySelector(`tr[data-provider="${name}"] .version`);
    return row !== null;
  }, provider, { timeout: 60000 });
  report.reloaded_row = await providerRow().innerText();

  // Signing out ends the session: the dashboard asks for a sign-in again.
  await open(page, '/dashboard');
  await Promise.all([page.waitForNavigation(), page.click('header form button')]);
  report.after_sign_out = await text(page, 'h1');
  // Cancelled requests still being judged.
  await new Promise((r) => setTimeout(r, CANCEL_GRACE_MS + 100));
} catch (error) {
  // What the page showed when a step failed, for the test's failure message.
  for (const context of browser.contexts()) {
    for (const open of context.pages()) console.error(`--- ${open.url()}\n${(await open.textContent('body').catch(() => '')).slice(0, 2000)}`);
  }
  console.error(JSON.stringify(report.problems));
  throw error;
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
