/**
 * The state of the backups at a glance (issue 24), in a real VS Code (code-server in Chromium) against real
 * sidecars: the coverage timeline of a data source, its cells checked from the DOM against the API; a segment's
 * files deleted from the cache of a node run with druid.backup.autoRestore=false turn its cell and its Nodes row
 * lost (the status bar counts it), a restore started from the timeline brings both back; screenshots of the
 * timeline in the dark and the light theme and of the status bar; and the open time of the timeline of a data
 * source of 10,000 segments, printed.
 */
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import type { FrameLocator, Page } from 'playwright-core';
import { intervalLabel } from '../../extension/tree/format.js';
import type { Job, SegmentInfo, SegmentsResponse } from '../../sidecar/api.js';
import type { SnapshotSummary } from '../../sidecar/snapshot/service.js';
import { cacheSegmentPath } from '../../sidecar/druid/paths.js';
import { parseSegmentId } from '../../sidecar/druid/segmentId.js';
import { type SampleResult, writeSampleCache } from '../../sidecar/sample/sampleCache.js';
import { HttpTarget } from '../../sidecar/store/http/target.js';
import type { OutgoingSegment } from '../../sidecar/store/target.js';
import { newToken, type SidecarProcess, startSidecar, tmpDir, waitFor } from '../helpers/sidecar.js';
import { coordinator, descriptor } from '../helpers/snapshots.js';
import { requireCodeServer, ROOT } from './codeServer.js';
import { addNode, VsCodeSession } from './session.js';
import { describeOpenTime, openTimelineTimed, timelineFrame } from './timelineOpenTime.js';
import { chromiumPath, SCREENSHOTS, type Workbench } from './workbench.js';

const BIG = 10_000;

let work: string;
let sample: SampleResult;
let big: SampleResult;
let target: SidecarProcess | undefined;
let source: SidecarProcess | undefined;
let bigSource: SidecarProcess | undefined;
let cluster: SidecarProcess | undefined;
let druid: Awaited<ReturnType<typeof coordinator>> | undefined;
let vscode: VsCodeSession | undefined;

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
  // Its retention keeps the last two snapshots: the third one taken shows as going at the next prune.
  target = await startSidecar(['--store', path.join(work, 'store'), '--node-name', 'target-1'], {
    token,
    stateDir: path.join(work, 'target-state'),
    env: { DRUID_BACKUP_RETENTION_KEEP_LAST: '2' },
  });
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
  await vscode?.close('timeline-last');
  await bigSource?.stop();
  await cluster?.stop();
  druid?.close();
  await source?.stop();
  await target?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

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
  const input = wb.page.locator('.quick-input-widget .quick-input-box input');
  // A chord the workbench missed (the focus still in the webview, or the two keys too quick under load) is pressed again.
  for (let attempt = 1; ; attempt++) {
    await wb.page.locator('.part.editor').click({ position: { x: 5, y: 5 } });
    await wb.page.keyboard.press('Control+K');
    await wb.page.keyboard.press('Control+T');
    try {
      await input.waitFor({ timeout: 5_000 });
      break;
    } catch (err) {
      if (attempt >= 5) throw err;
      await wb.page.keyboard.press('Escape');
    }
  }
  await input.fill(name);
  await wb.page.locator('.quick-input-widget .monaco-list-row.focused', { hasText: name }).first().waitFor();
  await input.press('Enter');
  await wb.page.locator('.quick-input-widget').waitFor({ state: 'hidden' });
}

/**
 * Expiring when: three snapshots of the `demo` data source (a cluster sidecar asking a Coordinator that answers as
 * Druid does) in the target, whose retention keeps the last two: its Snapshots rows and the markers on the
 * timeline of `demo` say when each goes, as the target's list answers.
 */
async function snapshotExpiry(wb: Workbench): Promise<void> {
  druid = await coordinator();
  // One segment of demo, of the last hour, in the target: the timeline of demo spans the snapshots' times.
  const hour = Math.floor(Date.now() / 3600_000) * 3600_000;
  const interval = `${new Date(hour - 3600_000).toISOString()}/${new Date(hour + 3600_000).toISOString()}`;
  const d = { ...descriptor(1, 'v1'), interval, identifier: `demo_${interval.replace('/', '_')}_v1` };
  const bytes = Buffer.from('segment of the hour');
  const seg: OutgoingSegment = {
    segmentId: d.identifier,
    descriptor: d,
    node: 'h1',
    files: [
      { name: 'version.bin', size: 4, open: () => Readable.from([Buffer.from([0, 0, 0, 9])]) },
      { name: '00000.smoosh', size: bytes.length, open: () => Readable.from([bytes]) },
    ],
  };
  await new HttpTarget(target!.url, { token: target!.token }).put(seg);
  druid.used.push({ day: 1, version: 'v1' });
  const taker = await startSidecar(['--coordinator', druid.url, '--target', target!.url, '--store', path.join(work, 'cluster-store')], {
    token: target!.token,
    stateDir: path.join(work, 'cluster-state'),
  });
  cluster = taker;
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await taker.request<{ jobId: string }>('POST', '/data/v1/snapshots', {});
    assert.equal(r.status, 202, r.text);
    const job = await waitFor(`snapshot ${i}`, async () => {
      const j = await taker.get<Job>(`/data/v1/jobs/${r.json.jobId}`);
      return j.state === 'running' || j.state === 'queued' ? undefined : j;
    });
    assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
    ids.push((job.result as { snapshot: string }).snapshot);
    await new Promise((done) => setTimeout(done, 1100));
  }
  const listed = (await target!.get<{ snapshots: SnapshotSummary[] }>('/data/v1/snapshots')).snapshots;
  const oldest = listed.find((x) => x.id === ids[0])!;
  assert.equal(oldest.retention?.keep, false, JSON.stringify(oldest.retention));

  // The Backups view, refreshed: the target's Snapshots group, each row saying what retention does with it.
  await wb.pane('Backups').locator('.pane-header').hover();
  await wb.pane('Backups').getByRole('button', { name: 'Refresh' }).click();
  await wb.expand(wb.labelled('Backups', 'Snapshots'));
  await wb.row('Backups', 'next prune removes it').waitFor();
  assert.equal(await wb.row('Backups', /expires ~/).count(), 2, 'the two kept ones say when they go');
  await wb.screenshot('backups-snapshots-expiry');

  // The timeline of demo, from the Backups view: a marker per snapshot, saying the same.
  await wb.contextMenu(wb.labelled('Backups', 'demo'), 'Show Coverage Timeline');
  const frame = timelineFrame(wb);
  await frame.locator('.snapshot').nth(2).waitFor();
  const marks = await frame
    .locator('.snapshot')
    .evaluateAll((ms) => ms.map((m) => ({ id: m.getAttribute('data-snapshot'), expiry: m.getAttribute('data-expiry'), label: m.getAttribute('aria-label') })));
  const byId = new Map(marks.map((m) => [m.id, m]));
  assert.equal(byId.get(ids[0]!)?.expiry, 'next prune removes it');
  assert.match(byId.get(ids[0]!)!.label!, /Retention \(keepLast=2\) does not keep it/);
  for (const id of ids.slice(1)) assert.match(byId.get(id)!.expiry!, /^expires ~\d{4}-\d\d-\d\d \d\d:\d\d/);
  assert.equal(await frame.locator('.snapshot.expiring').count(), 3, 'at this cadence (seconds), all go within a day');
  await wb.screenshot('timeline-snapshots-expiry');
}

/** What has the focus inside the timeline page (undefined: its body, or nothing). */
interface Focused {
  tag: string;
  key: string | null;
  label: string | null;
  interval: string | null;
  version: string | null;
  text: string;
  width: number;
}
function focusedIn(frame: FrameLocator): Promise<Focused | undefined> {
  return frame.locator('body').evaluate((body) => {
    const a = body.ownerDocument.activeElement;
    if (!a || a === body) return undefined;
    return {
      tag: a.tagName.toLowerCase(),
      key: a.getAttribute('data-key'),
      label: a.getAttribute('aria-label'),
      interval: a.getAttribute('data-interval'),
      version: a.getAttribute('data-version'),
      text: a.textContent ?? '',
      width: Number(a.getAttribute('width') ?? 0),
    };
  });
}

/** Presses `key` in the page and waits until the focus in the timeline is as `ok` wants it. */
async function pressFor(page: Page, frame: FrameLocator, key: string, what: string, ok: (f: Focused | undefined) => boolean): Promise<Focused | undefined> {
  await page.keyboard.press(key);
  return waitFor(`${key}: ${what}`, async () => {
    const f = await focusedIn(frame);
    return ok(f) ? { f } : undefined;
  }).then((x) => x.f);
}

const onCell = (f: Focused | undefined): f is Focused => f?.tag === 'rect' && !!f.key;

/** Into the page: Ctrl+1 focuses the editor (the webview), Tab goes through the toolbar to the grid's cell. */
async function tabIntoGrid(page: Page, frame: FrameLocator): Promise<Focused> {
  await page.keyboard.press('Control+1');
  await waitFor('the timeline page focused', () => frame.locator('body').evaluate((body) => body.ownerDocument.hasFocus()));
  // Each Tab waits for the focus to move, so a slow page is not tabbed past the grid.
  let first = await focusedIn(frame);
  for (let i = 0; i < 10 && !onCell(first); i++) {
    const was = JSON.stringify(first ?? null);
    first = await pressFor(page, frame, 'Tab', 'the focus moved on', (f) => JSON.stringify(f ?? null) !== was);
  }
  assert.ok(onCell(first), `Tab reaches a cell (${JSON.stringify(first)})`);
  return first;
}

/**
 * Everything the timeline offers, with the keyboard alone: into the page (Ctrl+1, Tab to the grid's one Tab stop),
 * between cells and versions, selecting, zooming around the focused cell and panning, Back Up Now and Restore…
 * from the toolbar (Shift+Tab), the restore confirmed in VS Code's dialog with Enter. A second segment goes lost
 * first, so the restore has something to do.
 */
async function keyboardPath(wb: Workbench, frame: FrameLocator, api: SegmentInfo[]): Promise<void> {
  const page = wb.page;
  const focused = () => focusedIn(frame);
  const press = (key: string, what: string, ok: (f: Focused | undefined) => boolean) => pressFor(page, frame, key, what, ok);
  const lanes = [...new Set(api.map((s) => s.version))].sort().reverse();
  const startOf = (interval: string) => Date.parse(interval.split('/')[0]!);
  /** Walks to the cell of `version` and `interval` with the arrow keys. */
  const goTo = async (version: string, interval: string): Promise<Focused> => {
    for (let step = 0; step < 60; step++) {
      const f = (await focused())!;
      assert.ok(onCell(f), `a cell has the focus (${JSON.stringify(f)})`);
      if (f.version === version && f.interval === interval) return f;
      const key =
        f.version !== version
          ? lanes.indexOf(f.version!) < lanes.indexOf(version)
            ? 'ArrowDown'
            : 'ArrowUp'
          : startOf(f.interval!) < startOf(interval)
            ? 'ArrowRight'
            : 'ArrowLeft';
      await press(key, 'another cell', (n) => onCell(n) && n.key !== f.key);
    }
    throw new Error(`the arrow keys did not reach ${version} ${interval}`);
  };
  const selectedKeys = () => frame.locator('rect.cell[aria-selected="true"]').evaluateAll((rs) => rs.map((r) => r.getAttribute('data-key')));

  const victim = api.sort((a, b) => (a.id < b.id ? -1 : 1)).at(-1)!;
  rmSync(cacheSegmentPath(sample.location, parseSegmentId(victim.id, victim.dataSource), 'nested'), { recursive: true });
  const cell = frame.locator(`rect.cell[data-interval="${victim.interval}"][data-version="${victim.version}"]`);
  await cell.and(frame.locator('[data-state="lost"]')).waitFor({ timeout: 60_000 });

  const first = await tabIntoGrid(page, frame);
  // Its accessible name, as assistive technology computes it: the words of the cell.
  assert.match(first.label!, /^wikipedia .*, version .*: .*, \d+ segments?, /);
  assert.equal(await frame.getByRole('gridcell', { name: first.label!, exact: true }).count(), 1, 'the cell is a grid cell named by its words');
  assert.equal(await frame.locator('rect.cell:not([role="gridcell"]), rect.cell:not([aria-label])').count(), 0, 'every cell is a named grid cell');
  assert.equal(await frame.locator('rect.cell[tabindex="0"]').count(), 1, 'one Tab stop in the grid');

  // Between cells: Home and End of a version, the arrows along it and across versions.
  const lane = (version: string) =>
    api
      .filter((s) => s.version === version)
      .map((s) => s.interval)
      .filter((v, i, a) => a.indexOf(v) === i)
      .sort((a, b) => startOf(a) - startOf(b));
  const home = await press('Home', "the version's first cell", (f) => onCell(f) && f.interval === lane(first.version!)[0]);
  if (lane(first.version!).length > 1) {
    await press('ArrowRight', 'the next cell', (f) => onCell(f) && f.interval === lane(first.version!)[1]);
    await press('End', "the version's last cell", (f) => onCell(f) && f.interval === lane(first.version!).at(-1));
  }
  assert.ok(lanes.length > 1, 'the sample has several versions');
  const across = lanes.indexOf(home!.version!) === lanes.length - 1 ? 'ArrowUp' : 'ArrowDown';
  await press(across, 'a cell of another version', (f) => onCell(f) && f.version !== home!.version);

  // Back Up Now on a cell selected with Enter: its row is selected in the Nodes view, the focus stays on the cell.
  const healthy = api.find((s) => s.interval !== victim.interval || s.version !== victim.version)!;
  const h = await goTo(healthy.version, healthy.interval);
  await page.keyboard.press('Enter');
  await waitFor('the cell selected', async () => (await selectedKeys()).join() === h.key);
  await wb.row('Nodes', healthy.id).and(page.locator('.selected')).waitFor();
  assert.equal((await focused())?.key, h.key, 'the focus stayed in the timeline');
  await press('Shift+Tab', 'Back Up Now', (f) => f?.tag === 'button' && f.text === 'Back Up Now');
  await page.keyboard.press('Enter');
  await wb
    .notification(/^Backing up .*: done/)
    .first()
    .waitFor({ timeout: 60_000 });
  await press('Tab', 'back in the grid', (f) => onCell(f) && f.key === h.key);

  // Shift+arrows add to the selection, Escape clears it.
  const next = await press('ArrowRight', 'a next cell', (f) => onCell(f));
  if (next?.key !== h.key) {
    await page.keyboard.press('Enter');
    await press('Shift+ArrowLeft', 'the cell before', (f) => f?.key === h.key);
    await waitFor('two cells selected', async () => (await selectedKeys()).length === 2);
    await frame.getByRole('button', { name: 'Restore 2 cells…' }).waitFor();
    await page.keyboard.press('Escape');
    await waitFor('the selection cleared', async () => (await selectedKeys()).length === 0);
    assert.ok(await frame.getByRole('button', { name: 'Restore…' }).isDisabled());
  }

  // Zoom around the focused cell and pan, with the focus kept on a cell throughout; 0 shows everything again.
  const v = await goTo(victim.version, victim.interval);
  for (let i = 0; i < 3; i++) await press('+', 'zoomed in, the cell kept', (f) => f?.key === v.key);
  const zoomed = (await focused())!;
  assert.ok(zoomed.width > v.width * 1.5, `zoomed in: the cell is ${v.width} then ${zoomed.width} px wide`);
  const firstTick = () => frame.locator('.tick-label').first().textContent();
  const before = await firstTick();
  await page.keyboard.press('Control+ArrowRight');
  await waitFor('panned', async () => (await firstTick()) !== before);
  assert.ok(onCell(await focused()), 'a cell keeps the focus after panning');
  await press('-', 'zoomed out', (f) => onCell(f));
  await page.keyboard.press('0');
  await waitFor('everything shown', async () => Number(await cell.getAttribute('width')) === v.width);

  // Restore… of the lost cell: selected with Enter, Shift+Tab twice to Restore…, the plan confirmed with Enter.
  await goTo(victim.version, victim.interval);
  await page.keyboard.press('Enter');
  await waitFor('the lost cell selected', async () => (await selectedKeys()).join() === v.key);
  await press('Shift+Tab', 'Back Up Now', (f) => f?.tag === 'button' && f.text === 'Back Up Now');
  await press('Shift+Tab', 'Restore…', (f) => f?.tag === 'button' && f.text === 'Restore…');
  await page.keyboard.press('Enter');
  const dialog = wb.dialog().filter({ hasText: 'Restore 1 segment into historical-1?' });
  await dialog.waitFor();
  assert.ok((await dialog.innerText()).includes(victim.id));
  await page.keyboard.press('Enter');
  await dialog.waitFor({ state: 'detached' });
  await cell.and(frame.locator('[data-state="backedUp"]')).waitFor({ timeout: 60_000 });
  await wb.screenshot('timeline-keyboard');
  // The rows the selections revealed are folded again, so the next node's row shows.
  await wb.pane('Nodes').locator('.pane-header').hover();
  await wb.pane('Nodes').getByRole('button', { name: 'Collapse All' }).click();
  await wb.labelled('Nodes', 'historical-1').and(page.locator('[aria-expanded="false"]')).waitFor();
}

test('in VS Code: the coverage timeline, lost segments and the status bar', { timeout: 600_000 }, async () => {
  vscode = await VsCodeSession.open(work, { sideBarWidth: 620, settings: { 'workbench.colorTheme': 'Default Dark Modern' } });
  const { wb, page } = vscode;
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

  await keyboardPath(wb, frame, api);
  await snapshotExpiry(wb);

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
  const open = await openTimelineTimed(wb, 'big', BIG);
  console.log(describeOpenTime(BIG, open));
  assert.ok(open.drawn > 0);
  // Fewer elements than cells (the runs), and every cell in one of them: none left out by merging.
  assert.ok(open.drawn < open.cells, `${open.drawn} elements for ${open.cells} cells`);
  assert.equal(open.shown, open.cells, 'the runs and the cells drawn on their own show every cell');
  // A cell inside a run, reached with the keyboard: its own element, named by its words.
  const bigFrame = timelineFrame(wb);
  const start = await tabIntoGrid(page, bigFrame);
  const next = await pressFor(page, bigFrame, 'ArrowRight', 'the next cell', (f) => onCell(f) && f.key !== start.key);
  assert.match(next!.label!, /^big .*, version .*: .*, \d+ segments?, /);
  assert.equal(await bigFrame.locator('.cell.in-run[tabindex="0"]').count(), 1, 'drawn over its run, the one Tab stop');
  await wb.screenshot('timeline-10000');
});
