/**
 * The extension tested the way a person uses it: a real VS Code (code-server) with the packaged .vsix installed,
 * in Chromium, against a real source sidecar on a sample Historical cache and a real target sidecar. It adds the
 * nodes through the UI (token into SecretStorage), sees nodes, data sources, intervals and segments with their
 * backup state, sees the backups of the target, deletes a segment (its files and info_dir entry, as Druid drops
 * one), restores it through the context menu with the dry-run plan confirmed, and finds its files back on disk,
 * byte for byte. Screenshots go to test-results/e2e/.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { intervalLabel } from '../../extension/tree/format.js';
import type { SegmentInfo, SegmentsResponse } from '../../sidecar/api.js';
import { cacheSegmentPath } from '../../sidecar/druid/paths.js';
import { parseSegmentId } from '../../sidecar/druid/segmentId.js';
import { writeSampleCache, type SampleResult } from '../../sidecar/sample/sampleCache.js';
import { type SidecarProcess, startSidecar, tmpDir, waitFor } from '../helpers/sidecar.js';
import { requireCodeServer, ROOT } from './codeServer.js';
import { addNode, VsCodeSession } from './session.js';
import { chromiumPath } from './workbench.js';

let work: string;
let sample: SampleResult;
let target: SidecarProcess | undefined;
let source: SidecarProcess | undefined;
/** VS Code, closed after a last screenshot of whatever state the test ended in. */
let vscode: VsCodeSession | undefined;

/** Every file under `dir`, by path relative to it, as its sha256 and size. */
function digests(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = path.join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out[path.relative(dir, p)] = `${createHash('sha256').update(readFileSync(p)).digest('hex')} ${statSync(p).size}`;
    }
  };
  walk(dir);
  return out;
}

before(async () => {
  requireCodeServer();
  assert.ok(existsSync(chromiumPath()), `Chromium is missing at ${chromiumPath()}: apt-get install chromium (or set CHROMIUM_PATH)`);
  assert.ok(existsSync(path.join(ROOT, 'dist/extension.js')), 'dist/extension.js is missing: npm run build');
  work = tmpDir('dbk-e2e-');
  sample = await writeSampleCache({
    dir: path.join(work, 'historical'),
    segments: 12,
    layout: 'nested',
    dataSources: ['wikipedia', 'web_logs', 'kttm'],
    segmentSize: 64 * 1024,
    smooshChunkSize: 2147483647,
    seed: 5,
  });
  target = await startSidecar(['--store', path.join(work, 'store'), '--node-name', 'target-1'], { stateDir: path.join(work, 'target-state') });
  // Automatic restore stays on: a segment whose info_dir entry went first is a Druid drop, which it leaves alone.
  source = await startSidecar(['--config', sample.propertiesFile, '--target', target.url], { token: target.token, stateDir: path.join(work, 'source-state') });
  await waitFor(
    'the active backup of the sample cache',
    async () => {
      const r = await source!.get<SegmentsResponse>('/data/v1/segments?limit=1000');
      return r.total === 12 && r.items.every((s) => s.backup.state === 'backedUp');
    },
    60_000,
    200,
  );
});

after(async () => {
  await vscode?.close('last');
  await source?.stop();
  await target?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

test(
  'in VS Code (code-server, Chromium): nodes, segments and backups with their state; restore of a deleted segment from the context menu',
  { timeout: 300_000 },
  async () => {
    vscode = await VsCodeSession.open(work, { sideBarWidth: 760 });
    const { wb, page } = vscode;
    await wb.pane('Nodes').getByRole('button', { name: 'Add Node', exact: true }).waitFor();
    await wb.screenshot('0-welcome');

    // Nothing configured: the welcome view's Add Node, then the URL and the token.
    await addNode(wb, source!.url, source!.token, true);
    const nodeName = (await source!.get<{ name: string }>('/data/v1/node')).name;
    await wb.row('Nodes', nodeName).filter({ hasText: '12 segments' }).filter({ hasText: '12 backed up' }).waitFor();

    // Data sources, intervals, segments with their backup state.
    const segments = (await source!.get<SegmentsResponse>('/data/v1/segments?limit=1000')).items;
    for (const ds of ['wikipedia', 'web_logs', 'kttm']) {
      const n = segments.filter((s) => s.dataSource === ds).length;
      await wb
        .labelled('Nodes', ds)
        .filter({ hasText: `${n} segment` })
        .waitFor();
    }
    const victim: SegmentInfo = segments.filter((s) => s.dataSource === 'wikipedia').sort((a, b) => (a.interval < b.interval ? 1 : -1))[0]!;
    await wb.expand(wb.labelled('Nodes', 'wikipedia'));
    await wb.expand(wb.labelled('Nodes', intervalLabel(victim.interval)));
    await wb.row('Nodes', victim.id).filter({ hasText: 'backed up' }).waitFor();
    await wb.screenshot('1-nodes');

    // The target the node sends to is offered for adding; its backups appear.
    await wb.clickAsking(wb.row('Backups', target!.url), 'Add a Druid Backup node');
    await wb.answer('Add a Druid Backup node', target!.url);
    await wb.answer(`Token of ${target!.url}`, target!.token);
    await wb.row('Backups', 'target-1').filter({ hasText: '12 segments' }).waitFor();
    await wb.expand(wb.labelled('Backups', 'wikipedia'));
    await wb.expand(wb.labelled('Backups', intervalLabel(victim.interval)));
    const stored = wb.row('Backups', victim.id);
    await stored.filter({ hasText: `from ${nodeName}` }).waitFor();
    await wb.screenshot('2-backups');

    // The manifest, read-only JSON from the target.
    await wb.contextMenu(stored, 'Show Manifest');
    const editor = page.locator('.editor-instance .monaco-editor .view-lines');
    await editor.filter({ hasText: `"segmentId": "${victim.id}"` }).waitFor();
    assert.equal(
      await page
        .locator('.tab.active')
        .getAttribute('aria-label')
        .then((l) => l?.includes(`${victim.id}.json`)),
      true,
    );

    // Verify the target from the view's title: every digest matches.
    await wb.pane('Backups').locator('.pane-header').hover();
    await wb.pane('Backups').getByRole('button', { name: 'Verify Backups', exact: true }).click();
    await wb.notification('target-1: all 12 segments verified, every digest matches.').waitFor({ timeout: 60_000 });

    // Live: a backup job started by someone else appears in the Jobs view with its outcome, without a refresh.
    const started = await source!.request<{ jobId: string }>('POST', '/data/v1/backup', { target: target!.url, dataSource: 'kttm' });
    assert.equal(started.status, 202, started.text);
    await wb.row('Jobs', 'backup kttm').filter({ hasText: 'succeeded' }).waitFor();
    await wb.screenshot('3-jobs');

    // Druid drops the segment: its info_dir entry goes, then its files.
    const dir = cacheSegmentPath(sample.location, parseSegmentId(victim.id, victim.dataSource), 'nested');
    const infoFile = path.join(sample.infoDir, victim.id);
    const before = { files: digests(dir), info: readFileSync(infoFile) };
    assert.ok(Object.keys(before.files).includes('version.bin'));
    rmSync(infoFile);
    rmSync(dir, { recursive: true });
    await wb.pane('Nodes').locator('.pane-header').hover();
    await wb.pane('Nodes').getByRole('button', { name: 'Refresh', exact: true }).click();
    await wb.row('Nodes', victim.id).waitFor({ state: 'detached' });

    // Restore it from the Backups view: the plan, the confirmation, the progress, the result.
    await wb.contextMenu(stored, 'Restore…');
    const dialog = wb.dialog();
    await dialog.filter({ hasText: `Restore 1 segment into ${nodeName}?` }).waitFor();
    assert.match(await dialog.innerText(), /1 segment to restore/);
    assert.ok((await dialog.innerText()).includes(victim.id));
    await wb.screenshot('4-restore-plan');
    await dialog.getByRole('button', { name: 'Restore', exact: true }).click();
    await wb.notification(/done, 1 restored/).waitFor({ timeout: 60_000 });

    // Back on disk, byte for byte, with its info_dir entry; and back in the Nodes view.
    assert.deepEqual(digests(dir), before.files);
    assert.deepEqual(readFileSync(infoFile), before.info);
    await wb.pane('Nodes').locator('.pane-header').hover();
    await wb.pane('Nodes').getByRole('button', { name: 'Refresh', exact: true }).click();
    await wb.expand(wb.labelled('Nodes', intervalLabel(victim.interval)));
    await wb.row('Nodes', victim.id).filter({ hasText: 'backed up' }).waitFor();
    await wb.row('Jobs', /restore/).waitFor();
    await wb.screenshot('5-restored');

    // From the Nodes view: a whole data source backed up now, then a restore of it that finds everything in place.
    await wb.contextMenu(wb.labelled('Nodes', 'web_logs'), 'Back Up Now');
    await wb.notification(/Backing up web_logs of .*: done, 0 backed up, 4 skipped/).waitFor({ timeout: 60_000 });
    await wb.contextMenu(wb.labelled('Nodes', 'web_logs'), 'Restore…');
    await wb.notification(`Nothing to restore: 4 segments already in place on ${nodeName}.`).waitFor();

    // A multi-selection in the Backups view: two intervals, one plan.
    const other = segments.find((s) => s.dataSource === 'wikipedia' && s.interval !== victim.interval)!.interval;
    const both = segments.filter((s) => s.dataSource === 'wikipedia' && (s.interval === other || s.interval === victim.interval)).length;
    await wb.labelled('Backups', intervalLabel(victim.interval)).click();
    await wb.labelled('Backups', intervalLabel(other)).click({ modifiers: ['Control'] });
    await wb.contextMenu(wb.labelled('Backups', intervalLabel(other)), 'Restore…');
    await wb.notification(`Nothing to restore: ${both} segments already in place on ${nodeName}.`).waitFor();

    // Remove Node on the target, from its row: a modal asks first; once removed, the target leaves the settings (the
    // node stays) and the Backups view offers its URL again, as a target the node sends to that is not configured.
    await wb.contextMenu(wb.row('Backups', 'target-1'), 'Remove Node');
    const ask = wb.dialog();
    await ask.filter({ hasText: `Remove target-1 (${target!.url}) from the views?` }).waitFor();
    await ask.getByRole('button', { name: 'Remove', exact: true }).click();
    await wb.row('Backups', 'target-1').waitFor({ state: 'detached' });
    await wb.row('Backups', target!.url).waitFor();
    const settings = JSON.parse(readFileSync(path.join(work, 'code-server', 'user-data', 'User', 'settings.json'), 'utf8')) as Record<string, unknown>;
    const urls = ((settings['druidBackup.nodes'] ?? []) as Array<string | { url: string }>).map((n) => (typeof n === 'string' ? n : n.url).replace(/\/$/, ''));
    assert.deepEqual(urls, [source!.url.replace(/\/$/, '')], `the settings list the node only: ${JSON.stringify(settings['druidBackup.nodes'])}`);
    await wb.row('Nodes', nodeName).filter({ hasText: '12 segments' }).waitFor();
    await wb.screenshot('6-target-removed');
  },
);
