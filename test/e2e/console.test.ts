/**
 * The web console in a real browser (headless Chromium from Debian, driven by
 * playwright-core) against the demo's cluster: sign in with the token, see
 * both nodes and the witness grouped by cloud, see each module's roles,
 * switch the mirror module over from the console (confirming the dialog),
 * see the event arrive in the timeline and the roles swap. A wrong token is
 * refused on the sign-in form. SKYHA_UPDATE_SCREENSHOTS=1 writes the
 * screenshots the README shows into docs/.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { Demo } from '../../src/demo/demo.js';
import { waitFor } from '../../src/testing/wait.js';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const DOCS = fileURLToPath(new URL('../../../docs/', import.meta.url));
const net = `127.${1 + Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}`;

describe('web console in Chromium', { skip: CHROMIUM ? false : 'no Chromium at /usr/bin/chromium (apt-get install chromium; .ci/run does)' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'skyha-console-'));
  const said: string[] = [];
  let demo: Demo;
  let browser: Browser;
  let page: Page;
  const shot = async (name: string) => {
    const file = process.env.SKYHA_UPDATE_SCREENSHOTS ? join(DOCS, name) : join(dir, name);
    await page.screenshot({ path: file, fullPage: true });
  };

  before(async () => {
    demo = new Demo({ dir: join(dir, 'demo'), net, say: (l) => said.push(l) });
    await demo.prepare();
    await demo.start();
    browser = await chromium.launch({ executablePath: CHROMIUM!, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  });

  after(async () => {
    await browser?.close();
    await demo?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a wrong token on the sign-in form', async () => {
    await page.goto(`http://${net}.1:7401/`);
    await page.fill('#token', 'skyha_not-a-token');
    await page.click('button[type=submit]');
    await page.getByRole('alert').waitFor();
    assert.match(await page.getByRole('alert').innerText(), /not one of api.users/);
  });

  it('signs in and shows both nodes and the witness by cloud, and each module\'s roles', async () => {
    await page.fill('#token', demo.token);
    await page.click('button[type=submit]');
    for (const [member, cloud] of [['aws-1', 'aws'], ['azure-1', 'azure'], ['witness', 'onprem']]) {
      await page.locator(`.cloud[data-cloud="${cloud}"] .member[data-member="${member}"][data-state="up"]`).waitFor({ timeout: 15_000 });
    }
    // kv prefers aws-1: once the cluster has settled it is the primary there, azure-1 its secondary.
    await page.locator('[data-module="kv"] tr[data-node="aws-1"][data-role="primary"]').waitFor({ timeout: 30_000 });
    await page.locator('[data-module="kv"] tr[data-node="azure-1"][data-role="secondary"]').waitFor({ timeout: 30_000 });
    await page.locator('[data-module="web"] tr[data-node="aws-1"][data-role="active"]').waitFor({ timeout: 15_000 });
    await page.locator('[data-module="web"] tr[data-node="azure-1"][data-role="active"]').waitFor({ timeout: 15_000 });
    assert.match(await page.locator('header').innerText(), /demo \(admin\)/);
    await waitFor('azure-1 in sync in the console', async () => /in sync/.test(await page.locator('[data-module="kv"] tr[data-node="azure-1"]').innerText()) || undefined, { deadline: 15_000 });
    await shot('console.png');
  });

  it('switches kv over from the console: the event appears and the roles swap', async () => {
    page.once('dialog', (d) => {
      assert.match(d.message(), /Switch kv over from aws-1/);
      void d.accept();
    });
    await page.locator('[data-module="kv"] button', { hasText: 'Switchover' }).click();
    await page.locator('.notice.ok').waitFor({ timeout: 5000 });
    await page.locator('.timeline li[data-reason="OPERATOR_SWITCHOVER"]').first().waitFor({ timeout: 10_000 });
    assert.match(await page.locator('.timeline li[data-reason="OPERATOR_SWITCHOVER"]').first().innerText(), /demo asked for a switchover of kv/);
    await page.locator('[data-module="kv"] tr[data-node="azure-1"][data-role="primary"]').waitFor({ timeout: 20_000 });
    await page.locator('[data-module="kv"] tr[data-node="aws-1"][data-role="secondary"]').waitFor({ timeout: 20_000 });
    await page.locator('.timeline li[data-reason="PRIMARY_RUNNING"]').first().waitFor({ timeout: 10_000 });
    await shot('console-switchover.png');
  });
});
