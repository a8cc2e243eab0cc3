/**
 * The operator console in a real browser: Debian's chromium driven by playwright-core (DEPENDENCIES.md;
 * `npx playwright install` downloads browsers and cannot run here). The proxy, an origin and the telemetry
 * feed are real and on loopback. A screenshot of every page is written to test-results/console/ for review.
 *
 * What an operator does: the console refuses a wrong token; with the right one, a blocked flow appears in the
 * live list within a second of the request; the list filters by process; a row opens to the record and the
 * rule-by-rule explanation (with the keyboard too); the endpoints page flags the client that sends no
 * telemetry. The page must load under its strict CSP: any CSP violation or script error fails the test.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eid3, freeSourcePort } from '../helpers/sysmon.js';
import { field, startHarness, type Harness } from '../helpers/harness.js';
import { curl, echoHandler, startOrigin, type TestServer } from '../helpers/servers.js';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'browser-test-token-0001';
const SHOTS = join(fileURLToPath(new URL('../../', import.meta.url)), 'test-results', 'console');

const POLICY = `version: 1
rules:
  - id: lolbin-external
    description: LOLBin talking to the internet
    when:
      process.name: { in: [rundll32.exe, mshta.exe, wscript.exe] }
    action: block
    severity: high
    tags: [attack.t1218]
`;

describe('operator console in chromium', () => {
  let h: Harness;
  let origin: TestServer;
  let browser: Browser;
  let page: Page;
  /** Script errors and CSP violations the page reported. */
  const pageErrors: string[] = [];

  const flowFrom = async (image: string, path: string): Promise<void> => {
    const port = await freeSourcePort();
    const res = await fetch(`${h.adminUrl}/v1/hints`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/x-ndjson' },
      body: JSON.stringify(eid3(port, image)),
    });
    expect(res.status).toBe(202);
    await curl(['-x', h.proxyUrl, '--local-port', String(port), `http://127.0.0.1:${origin.port}${path}`]);
  };
  const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

  beforeAll(async () => {
    await mkdir(SHOTS, { recursive: true });
    origin = await startOrigin(echoHandler());
    h = await startHarness({
      policy: POLICY,
      config: {
        admin: `admin:\n  listen: "127.0.0.1:0"\n  token: ${TOKEN}`,
        policy: 'policy:\n  files: ["POLICY_FILE"]\n  hint_wait: 300ms',
        // A low live rate, so that a burst of a dozen requests shows the sampling line.
        console: 'console:\n  live_rate: 3',
      },
    });
    // Some traffic before the operator looks: a managed app, and an unmanaged client (127.0.0.2, no telemetry).
    await flowFrom('C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe', '/index.html');
    await curl(['-x', h.proxyUrl, '--interface', '127.0.0.2', `http://127.0.0.1:${origin.port}/update.xml`]);
    await h.waitForRecord((r) => field(r, 'url.path') === '/update.xml');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('pageerror', (err) => pageErrors.push(`pageerror: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error' && !msg.text().includes('401')) pageErrors.push(`console: ${msg.text()}`);
    });
  });
  afterAll(async () => {
    await browser?.close();
    await h?.stop();
    await origin?.close();
  });

  it('refuses a wrong token and keeps the operator on the sign-in form', async () => {
    await page.goto(`${h.adminUrl}/ui/flows`);
    expect(new URL(page.url()).pathname).toBe('/ui/login');
    await shot('login');
    await page.getByLabel('Admin token').fill('not-the-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('Wrong token');
    expect(new URL(page.url()).pathname).toBe('/ui/login');
    expect((await page.context().cookies()).filter((c) => c.name === 'ei_session')).toEqual([]);
  });

  it('signs in, then shows a blocked flow live within a second of the request', async () => {
    await new Promise((r) => setTimeout(r, 1_100)); // the wait after a failed sign-in
    await page.getByLabel('Admin token').fill(TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL('**/ui/flows');
    const [cookie] = (await page.context().cookies()).filter((c) => c.name === 'ei_session');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/ui' });
    await expect.poll(() => page.locator('#live-status').textContent(), { timeout: 5_000 }).toMatch(/^live/);
    expect(await page.locator('#flows tbody tr[data-flow-id]').count()).toBe(2);

    await flowFrom('C:\\Windows\\System32\\rundll32.exe', '/payload.bin');
    const requestDone = Date.now();
    const row = page.locator('#flows tbody tr[data-flow-id]', { hasText: 'rundll32.exe' });
    await row.first().waitFor({ timeout: 1_000 });
    expect(Date.now() - requestDone).toBeLessThan(1_000);
    await expect.poll(() => row.first().textContent()).toContain('block');
    await shot('flows');
  });

  it('says so on the page when the live view samples, then goes back to live', async () => {
    await Promise.all(Array.from({ length: 12 }, (_, i) => curl(['-x', h.proxyUrl, `http://127.0.0.1:${origin.port}/burst/${i}`])));
    await expect.poll(() => page.locator('#live-status').textContent(), { timeout: 3_000 }).toMatch(/sampling: showing \d+ of \d+ flows\/s \(limit 3\/s\)/);
    await expect.poll(() => page.locator('#live-status').textContent(), { timeout: 5_000 }).toMatch(/^live$/);
  });

  it('filters the list by process', async () => {
    await flowFrom('C:\\Windows\\System32\\mshta.exe', '/hta');
    await h.waitForRecord((r) => field(r, 'url.path') === '/hta');
    await page.locator('input[name="process"]').fill('rundll32');
    await page.locator('input[name="process"]').press('Enter');
    await page.waitForURL(/process=rundll32/);
    const texts = await page.locator('#flows tbody tr[data-flow-id]').allTextContents();
    expect(texts.length).toBe(1);
    expect(texts[0]).toContain('rundll32.exe');
  });

  it('opens a record with its rule-by-rule explanation, by mouse and by keyboard', async () => {
    const row = page.locator('#flows tbody tr[data-flow-id]').first();
    const button = row.locator('button.expand');
    await button.click();
    await expect.poll(() => button.getAttribute('aria-expanded')).toBe('true');
    const detailId = await button.getAttribute('aria-controls');
    const detail = page.locator(`#${detailId ?? 'missing'}`);
    await expect.poll(() => detail.textContent(), { timeout: 5_000 }).toContain('lolbin-external');
    const text = (await detail.textContent()) ?? '';
    expect(text).toContain('matched');
    expect(text).toContain('/payload.bin');
    expect(text).toContain('"rundll32.exe"');
    await shot('flow-detail');
    // Closed and opened again from the keyboard.
    await button.click();
    await expect.poll(() => button.getAttribute('aria-expanded')).toBe('false');
    await button.focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => button.getAttribute('aria-expanded')).toBe('true');
  });

  it('flags the unmanaged endpoint on the coverage page', async () => {
    await page.getByRole('link', { name: /Endpoints/ }).click();
    await page.waitForURL('**/ui/endpoints');
    const unmanaged = page.locator('tr', { hasText: '127.0.0.2' }).first();
    expect(await unmanaged.textContent()).toContain('unmanaged — no telemetry');
    await shot('endpoints');
  });

  it('renders the alerts, policy and health pages', async () => {
    for (const [name, expected] of [['alerts', 'lolbin-external'], ['policy', 'lolbin-external'], ['health', `127.0.0.1:${h.port}`]] as const) {
      await page.goto(`${h.adminUrl}/ui/${name}`);
      expect(await page.locator('main').textContent(), name).toContain(expected);
      await shot(name);
    }
  });

  it('loaded every page under the CSP without a script error or violation', () => {
    expect(pageErrors).toEqual([]);
  });
});
