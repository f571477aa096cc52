/**
 * What every e2e test file does before its own steps: the .vsix packaged as `npm run package` makes it and installed
 * the way a person installs one, code-server started on a fresh home and workspace with quiet settings, Chromium on
 * it, and the Druid Backup container open with a wide side bar; and, after, a last screenshot and everything closed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { type CodeServer, installExtension, ROOT, startCodeServer } from './codeServer.js';
import { launchChromium, SCREENSHOTS, Workbench } from './workbench.js';

/** The settings every e2e VS Code starts with: no welcome page, tips, trust prompt or telemetry; jobs polled often. */
const QUIET_SETTINGS: Record<string, unknown> = {
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'security.workspace.trust.enabled': false,
  'extensions.ignoreRecommendations': true,
  'telemetry.telemetryLevel': 'off',
  'druidBackup.jobPollInterval': 250,
};

export class VsCodeSession {
  private constructor(
    readonly codeServer: CodeServer,
    readonly browser: Browser,
    readonly page: Page,
    readonly wb: Workbench,
    private readonly home: string,
  ) {}

  /**
   * Opens VS Code under `work` (its code-server home and workspace folder go there) with the quiet settings and
   * `settings` over them, and the Druid Backup container shown with the side bar `sideBarWidth` pixels wide.
   */
  static async open(work: string, opts: { sideBarWidth: number; settings?: Record<string, unknown> }): Promise<VsCodeSession> {
    const vsix = path.join(work, 'druid-backup.vsix');
    const pack = spawnSync(process.execPath, [path.join(ROOT, 'scripts/package-extension.mjs'), '--out', vsix], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(pack.status, 0, `${pack.stdout}${pack.stderr}`);
    const home = path.join(work, 'code-server');
    installExtension(home, vsix);
    const folder = path.join(work, 'workspace');
    mkdirSync(folder);
    const codeServer = await startCodeServer({ home, folder, settings: { ...QUIET_SETTINGS, ...opts.settings } });
    let browser: Browser | undefined;
    try {
      browser = await launchChromium();
      const page = await browser.newPage({ viewport: { width: 1500, height: 950 } });
      page.setDefaultTimeout(30_000);
      const wb = new Workbench(page);
      const session = new VsCodeSession(codeServer, browser, page, wb, home);
      await wb.open(codeServer.url, folder);
      await wb.openContainer('Druid Backup');
      await wb.widenSideBar(opts.sideBarWidth);
      return session;
    } catch (e) {
      await browser?.close().catch(() => undefined);
      await codeServer.stop();
      throw e;
    }
  }

  /**
   * A last screenshot named `last` (whatever state the test ended in) and the extension's output beside it
   * (`last`.log: what it asked of the nodes and what failed), then Chromium and code-server closed.
   */
  async close(last: string): Promise<void> {
    await this.wb.screenshot(last).catch(() => undefined);
    const logs = path.join(this.home, 'user-data', 'logs');
    const output = existsSync(logs) ? readdirSync(logs, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('Druid Backup.log')) : [];
    for (const f of output.slice(-1)) copyFileSync(path.join(logs, f), path.join(SCREENSHOTS, `${last}.log`));
    await this.browser.close().catch(() => undefined);
    await this.codeServer.stop();
  }
}

/**
 * Adds a node through the Nodes view as a person does: the welcome view's Add Node for the first one, the view's
 * title action for the next; then its URL and its token.
 */
export async function addNode(wb: Workbench, url: string, token: string, first: boolean): Promise<void> {
  if (!first) await wb.pane('Nodes').locator('.pane-header').hover();
  await wb.clickAsking(
    wb
      .pane('Nodes')
      .getByRole('button', { name: first ? 'Add Node' : 'Add Node…', exact: true })
      .first(),
    'Add a Druid Backup node',
  );
  await wb.answer('Add a Druid Backup node', url);
  await wb.answer(`Token of ${url}`, token);
}
