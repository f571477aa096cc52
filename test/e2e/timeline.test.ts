/**
 * The state of the backups at a glance (issue 24), in a real VS Code (code-server in Chromium) against real
 * sidecars: the coverage timeline of a data source, its cells checked from the DOM against the API; a segment's
 * files deleted from the cache of a node run with druid.backup.autoRestore=false turn its cell and its Nodes row
 * lost (the status bar counts it), a restore started from the timeline brings both back; screenshots of the
 * timeline in the dark and the light theme and of the status bar; and the open time of the timeline of a data
 * source of 10,000 segments, printed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, FrameLocator } from 'playwright-core';
import { intervalLabel } from '../../extension/tree/format.js';
import type { SegmentInfo, SegmentsResponse } from '../../sidecar/api.js';
import { cacheSegmentPath } from '../../sidecar/druid/paths.js';
import { parseSegmentId } from '../../sidecar/druid/segmentId.js';
import { type SampleResult, writeSampleCache } from '../../sidecar/sample/sampleCache.js';
import { newToken, type SidecarProcess, startSidecar, tmpDir, waitFor } from '../helpers/sidecar.js';
import { type CodeServer, installExtension, requireCodeServer, ROOT, startCodeServer } from './codeServer.js';
import { chromiumPath, launchChromium, SCREENSHOTS, Workbench } from './workbench.js';

const BIG = 10_000;

let work: string;
let sample: SampleResult;
let big: SampleResult;
let target: SidecarProcess | undefined;
let source: SidecarProcess | undefined;
let bigSource: SidecarProcess | undefined;
let codeServer: CodeServer | undefined;
let browser: Browser | undefined;
let workbench: Workbench | undefined;

before(async () => {
  requireCodeServer();
  assert.ok(existsSync(chromiumPath()), `Chromium is missing at ${chromiumPath()}`);
  assert.ok(existsSync(path.join(ROOT, 'dist/extension.js')), 'dist/extension.js is missing: npm run build');
  work = tmpDir('dbk-e2e-timeline-');
  sample = await writeSampleCache({
    dir: path.join(work, 'historical'),
    segments: 24,
    layout: 'nested',
    dataSources: ['wikipedia', 'kttm'],
    segmentSize: 16 * 1024,
    smooshChunkSize: 2147483647,
    seed: 24,
  });
  // What automatic restore would repair at once must stay lost long enough to be seen.
  appendFileSync(sample.propertiesFile, '\ndruid.backup.autoRestore=false\n');
  const token = newToken();
  target = await startSidecar(['--store', path.join(work, 'store'), '--node-name', 'target-1'], { token, stateDir: path.join(work, 'target-state') });
  source = await startSidecar(['--config', sample.propertiesFile, '--target', target.url, '--node-name', 'historical-1'], {
    token,
    stateDir: path.join(work, 'source-state'),
  });
  await waitFor(
    'the active backup of the sample cache',
    async () => {
      const r = await source!.get<SegmentsResponse>('/data/v1/segments?limit=1000');
      return r.total === 24 && r.items.every((s) => s.backup.state === 'backedUp');
    },
    60_000,
    200,
  );
});

after(async () => {
  await workbench?.screenshot('timeline-last').catch(() => undefined);
  await browser?.close().catch(() => undefined);
  await codeServer?.stop();
  await bigSource?.stop();
  await source?.stop();
  await target?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** The page of the newest timeline webview (VS Code nests it in two iframes). */
function timelineFrame(wb: Workbench): FrameLocator {
  return wb.page.frameLocator('iframe.webview.ready').last().frameLocator('#active-frame');
}

/** The cells as the page shows them. */
async function cellsOf(frame: FrameLocator): Promise<Array<{ state: string; copies: number; interval: string; version: string; label: string }>> {
  return frame.locator('rect.cell').evaluateAll((rects) =>
    rects.map((r) => ({
      state: r.getAttribute('data-state') ?? '',
      copies: Number(r.getAttribute('data-copies')),
      interval: r.getAttribute('data-interval') ?? '',
      version: r.getAttribute('data-version') ?? '',
      label: r.getAttribute('aria-label') ?? '',
    })),
  );
}

/** Picks a colour theme the way a person does: Ctrl+K Ctrl+T, its name, Enter. */
async function colorTheme(wb: Workbench, name: string): Promise<void> {
  await wb.page.locator('.part.editor').click({ position: { x: 5, y: 5 } });
  await wb.page.keyboard.press('Control+K');
  await wb.page.keyboard.press('Control+T');
  const input = wb.page.locator('.quick-input-widget .quick-input-box input');
  await input.waitFor();
  await input.fill(name);
  await wb.page.locator('.quick-input-widget .monaco-list-row.focused', { hasText: name }).first().waitFor();
  await input.press('Enter');
  await wb.page.locator('.quick-input-widget').waitFor({ state: 'hidden' });
}

async function addNode(wb: Workbench, url: string, token: string, first: boolean): Promise<void> {
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

test('in VS Code: the coverage timeline, lost segments and the status bar', { timeout: 600_000 }, async () => {
  const vsix = path.join(work, 'druid-backup.vsix');
  const pack = spawnSync(process.execPath, [path.join(ROOT, 'scripts/package-extension.mjs'), '--out', vsix], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(pack.status, 0, `${pack.stdout}${pack.stderr}`);
  const home = path.join(work, 'code-server');
  installExtension(home, vsix);
  const folder = path.join(work, 'workspace');
  mkdirSync(folder);
  const settings: Record<string, unknown> = {
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'security.workspace.trust.enabled': false,
    'extensions.ignoreRecommendations': true,
    'telemetry.telemetryLevel': 'off',
    'workbench.colorTheme': 'Default Dark Modern',
    'druidBackup.jobPollInterval': 250,
  };
  codeServer = await startCodeServer({ home, folder, settings });
  browser = await launchChromium();
  const page = await browser.newPage({ viewport: { width: 1500, height: 950 } });
  page.setDefaultTimeout(30_000);
  const wb = new Workbench(page);
  workbench = wb;
  await wb.open(codeServer.url, folder);
  await wb.openContainer('Druid Backup');
  await wb.widenSideBar(620);
  await addNode(wb, source!.url, source!.token, true);
  await wb.row('Nodes', 'historical-1').filter({ hasText: '24 segments' }).waitFor();
  await wb.clickAsking(wb.row('Backups', target!.url), 'Add a Druid Backup node');
  await wb.answer('Add a Druid Backup node', target!.url);
  await wb.answer(`Token of ${target!.url}`, target!.token);
  await wb.row('Backups', 'target-1').filter({ hasText: '24 segments' }).waitFor();

  // The status bar: every served segment has its one copy.
  const status = page.locator('.part.statusbar').getByRole('button', { name: /^Druid Backup:/ });
  await status.filter({ hasText: '24/24' }).first().waitFor();

  // The timeline of wikipedia from its data source row; its cells against the API.
  await wb.contextMenu(wb.labelled('Nodes', 'wikipedia'), 'Show Coverage Timeline');
  const frame = timelineFrame(wb);
  const api = (await source!.get<SegmentsResponse>('/data/v1/segments?dataSource=wikipedia&limit=1000')).items;
  const expected = new Map<string, SegmentInfo[]>();
  for (const s of api) expected.set(`${s.version} ${s.interval}`, [...(expected.get(`${s.version} ${s.interval}`) ?? []), s]);
  await waitFor('every cell drawn', async () => (await frame.locator('rect.cell').count()) === expected.size, 30_000, 200);
  const cells = await cellsOf(frame);
  assert.equal(cells.length, expected.size);
  assert.equal(new Set(cells.map((c) => c.version)).size, new Set(api.map((s) => s.version)).size, 'one lane per version');
  for (const c of cells) {
    const segs = expected.get(`${c.version} ${c.interval}`);
    assert.ok(segs, `a cell for ${c.version} ${c.interval} the API does not list`);
    assert.ok(
      segs.every((s) => s.backup.state === 'backedUp'),
      'the API says backed up',
    );
    assert.equal(c.state, 'backedUp', c.label);
    assert.equal(c.copies, 1, c.label);
    assert.match(
      c.label,
      new RegExp(`^wikipedia ${intervalLabel(c.interval).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, version .*: backed up, 1 copy, ${segs.length} segments?`),
    );
  }
  // The Content-Security-Policy: nothing but the nonce'd script and the extension's own stylesheet.
  const csp = await frame.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content');
  assert.match(csp!, /default-src 'none'/);
  assert.match(csp!, /script-src 'nonce-[^']+'(;|$)/);
  assert.doesNotMatch(csp!, /unsafe-inline|unsafe-eval|https?:\/\/(?!.*vscode)/);
  await wb.screenshot('timeline-dark');

  // The light theme: the same page, the theme's colours.
  await colorTheme(wb, 'Light Modern');
  await page.locator('.monaco-workbench.vs').waitFor();
  await frame.locator('rect.cell').first().waitFor();
  await wb.screenshot('timeline-light');
  await colorTheme(wb, 'Dark High Contrast');
  await page.locator('.monaco-workbench.hc-black').waitFor();
  await frame.locator('rect.cell').first().waitFor();
  await wb.screenshot('timeline-high-contrast');
  await colorTheme(wb, 'Dark Modern');
  await page.locator('.monaco-workbench.vs-dark').waitFor();

  // A segment's files go from the cache, its info_dir entry stays: lost, in the timeline and in the Nodes view.
  const victim = api.sort((a, b) => (a.id < b.id ? -1 : 1))[0]!;
  const dir = cacheSegmentPath(sample.location, parseSegmentId(victim.id, victim.dataSource), 'nested');
  rmSync(dir, { recursive: true });
  const cell = frame.locator(`rect.cell[data-interval="${victim.interval}"][data-version="${victim.version}"]`);
  await cell.and(frame.locator('[data-state="lost"]')).waitFor({ timeout: 60_000 });
  assert.match((await cell.getAttribute('aria-label'))!, /lost from the node \(backup holds it\), 1 copy/);
  await status.filter({ hasText: '1 lost' }).first().waitFor();
  await page.locator('.part.statusbar').screenshot({ path: path.join(SCREENSHOTS, 'status-bar-lost.png') });

  // The status bar's summary links to it: picking it selects its row in the Nodes view, shown as lost.
  await status.first().click();
  const summaryPick = page.locator('.quick-input-widget');
  await summaryPick.locator('.monaco-list-row', { hasText: victim.id }).waitFor();
  await summaryPick.locator('.quick-input-box input').fill(victim.id);
  await summaryPick.locator('.monaco-list-row.focused', { hasText: victim.id }).waitFor();
  await page.keyboard.press('Enter');
  const row = wb.row('Nodes', victim.id);
  await row.filter({ hasText: 'lost: files gone from the cache' }).and(page.locator('.selected')).waitFor();
  // Another row selected (kttm, expanded by the click and collapsed again, so the view keeps its length).
  await wb.labelled('Nodes', 'kttm').click();
  await row.and(page.locator('.selected')).waitFor({ state: 'detached' });
  await wb.labelled('Nodes', 'kttm').and(page.locator('[aria-expanded="true"]')).click();
  await wb.labelled('Nodes', 'kttm').and(page.locator('[aria-expanded="false"]')).waitFor();

  // A click on the cell selects its segment in the Nodes view too, with Restore inline.
  await cell.click();
  await row.and(page.locator('.selected')).waitFor();
  await row.hover();
  await row.getByRole('button', { name: 'Restore…' }).waitFor();
  await wb.screenshot('timeline-lost');

  // Restore… from the timeline: the trees' command, its dry-run plan, its confirmation.
  await frame.getByRole('button', { name: 'Restore…' }).click();
  const dialog = wb.dialog();
  await dialog.filter({ hasText: 'Restore 1 segment into historical-1?' }).waitFor();
  assert.ok((await dialog.innerText()).includes(victim.id));
  await dialog.getByRole('button', { name: 'Restore', exact: true }).click();
  await wb.notification(/done, 1 restored/).waitFor({ timeout: 60_000 });
  assert.ok(existsSync(path.join(dir, 'version.bin')), 'back on disk');
  await cell.and(frame.locator('[data-state="backedUp"]')).waitFor({ timeout: 60_000 });
  await row.filter({ hasText: 'backed up' }).waitFor({ timeout: 60_000 });
  await status.filter({ hasText: '24/24' }).first().waitFor({ timeout: 60_000 });
  await page.locator('.part.statusbar').screenshot({ path: path.join(SCREENSHOTS, 'status-bar.png') });
  await wb.screenshot('timeline-restored');

  // The status bar's summary: a quick pick of what needs attention.
  await status.first().click();
  await page.locator('.quick-input-widget').filter({ hasText: 'Nothing needs attention' }).waitFor();
  await page.keyboard.press('Escape');

  // 10,000 segments in one data source: the time from the command to every cell drawn.
  big = await writeSampleCache({
    dir: path.join(work, 'big'),
    segments: BIG,
    layout: 'nested',
    dataSources: ['big'],
    segmentSize: 1024,
    smooshChunkSize: 2147483647,
    seed: 1,
  });
  bigSource = await startSidecar(['--config', big.propertiesFile, '--node-name', 'historical-big'], {
    token: target!.token,
    stateDir: path.join(work, 'big-state'),
  });
  await addNode(wb, bigSource.url, bigSource.token, false);
  await wb
    .row('Nodes', 'historical-big')
    .filter({ hasText: `${BIG.toLocaleString('en-US')} segments` })
    .waitFor({ timeout: 120_000 });
  await page.keyboard.press('F1');
  await page.keyboard.type('Druid Backup: Show Coverage Timeline');
  await page.keyboard.press('Enter');
  const pick = page.locator('.quick-input-widget .quick-input-box input');
  await pick.waitFor();
  await pick.fill('big');
  const t0 = Date.now();
  await pick.press('Enter');
  const bigFrame = timelineFrame(wb);
  await bigFrame.locator('#summary', { hasText: `${BIG.toLocaleString('en-US')} segments` }).waitFor({ timeout: 120_000 });
  const drawn = await bigFrame.locator('rect.cell').count();
  const ms = Date.now() - t0;
  const renderMs = await bigFrame.locator('body').getAttribute('data-render-ms');
  console.log(
    `timeline of ${BIG.toLocaleString('en-US')} segments (${drawn} cells drawn): open to drawn in ${ms} ms, of which the page's drawing ${renderMs} ms`,
  );
  assert.ok(drawn > 0);
  await wb.screenshot('timeline-10000');
});
