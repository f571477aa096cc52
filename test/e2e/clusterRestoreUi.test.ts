/**
 * Restore Cluster from Snapshot… in a real VS Code (code-server in Chromium) against real sidecars (issue 22): the
 * snapshot row of a target sidecar in the Backups view; the command says a cluster restore runs on the cluster
 * sidecar and offers the configured one; the dry-run plan in a modal; Show Plan opens it in a Markdown preview;
 * Restore Cluster starts the recovery job, followed to its end, which writes the deep storage back on disk; the job
 * shows in the Jobs view. Then Roll Back Data Source… after a bad overwrite: the interval it touches is offered,
 * the plan lists the segment it would mark unused, and Cancel sends Druid nothing. The Coordinator is a Druid stand-in (test/e2e/druidStandIn.ts), not one of our parts.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Job } from '../../sidecar/api.js';
import { HttpTarget } from '../../sidecar/store/http/target.js';
import { type SidecarProcess, startSidecar, tmpDir, waitFor } from '../helpers/sidecar.js';
import { requireCodeServer, ROOT } from './codeServer.js';
import { clusterProperties, druidStandIn, segment } from './druidStandIn.js';
import { addNode, VsCodeSession } from './session.js';
import { chromiumPath } from './workbench.js';

let work: string;
let deep: string;
let target: SidecarProcess | undefined;
let cluster: SidecarProcess | undefined;
let druid: Awaited<ReturnType<typeof druidStandIn>> | undefined;
let vscode: VsCodeSession | undefined;
let snapshot: { id: string; time: string };

before(async () => {
  requireCodeServer();
  assert.ok(existsSync(chromiumPath()), `Chromium is missing at ${chromiumPath()}`);
  assert.ok(existsSync(path.join(ROOT, 'dist/extension.js')), 'dist/extension.js is missing: npm run build');
  work = tmpDir('dbk-e2e-cluster-');
  deep = path.join(work, 'deep');
  mkdirSync(deep, { recursive: true });
  druid = await druidStandIn(deep);
  target = await startSidecar(['--store', path.join(work, 'store'), '--node-name', 'target-1'], { stateDir: path.join(work, 'target-state') });
  const conf = path.join(work, 'cluster.properties');
  writeFileSync(conf, clusterProperties(deep, druid.url, target.url));
  cluster = await startSidecar(['--config', conf, '--node-name', 'cluster-1'], { token: target.token, stateDir: path.join(work, 'cluster-state') });
  const store = new HttpTarget(target.url, { token: target.token });
  for (const d of [1, 2]) await store.put(segment(deep, d, 'v1'));
  druid.used.push({ day: 1, version: 'v1' }, { day: 2, version: 'v1' });
  const { jobId } = (await cluster.request<{ jobId: string }>('POST', '/data/v1/snapshots', {})).json;
  const job = await waitFor('the snapshot', async () => {
    const j = await cluster!.get<Job>(`/data/v1/jobs/${jobId}`);
    return j.state === 'running' || j.state === 'queued' ? undefined : j;
  });
  assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
  const id = (job.result as { snapshot: string }).snapshot;
  snapshot = { id, time: (await cluster.get<{ time: string }>(`/data/v1/snapshots/${id}`)).time };
});

after(async () => {
  await vscode?.close('cluster-restore-last');
  await cluster?.stop();
  await target?.stop();
  druid?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

test(
  "in VS Code: Restore Cluster from Snapshot… and Roll Back Data Source… on a target's snapshot, through the cluster sidecar, plan first",
  { timeout: 600_000 },
  async () => {
    vscode = await VsCodeSession.open(work, { sideBarWidth: 700 });
    const { wb, page } = vscode;
    await addNode(wb, target!.url, target!.token, true);
    await addNode(wb, cluster!.url, cluster!.token, false);
    // The Nodes view shows nodes with a cache; the cluster sidecar shows in the Jobs view.
    await wb.labelled('Jobs', 'cluster-1').waitFor();

    // The snapshot, under the target that holds it.
    await wb.expand(wb.labelled('Backups', 'target-1'));
    await wb.expand(wb.labelled('Backups', 'Snapshots'));
    const row = wb.labelled('Backups', snapshot.time.replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC'));
    await wb.contextMenu(row, 'Restore Cluster from Snapshot…');

    // target-1 is no cluster sidecar: the command says so and offers cluster-1.
    const dialog = wb.dialog();
    await dialog.filter({ hasText: 'a cluster restore runs on the cluster sidecar' }).waitFor();
    await dialog.getByRole('button', { name: 'Use cluster-1', exact: true }).click();

    // The plan: what it would do, warnings first, then each step.
    await dialog.filter({ hasText: `Restore the cluster from snapshot ${snapshot.id}?` }).waitFor();
    const text = await dialog.innerText();
    assert.match(text, /⚠ Warnings \(1\):/);
    assert.match(text, /1\. deep-storage: to do — write to deep storage: 2 segments, 32 B/);
    await wb.screenshot('cluster-restore-plan');
    assert.equal(existsSync(path.join(deep, 'demo/1/v1/0/index/00000.smoosh')), false, 'the dry run wrote nothing');

    // Show Plan: the whole plan in a Markdown preview, the question in a notification beside it.
    await dialog.getByRole('button', { name: 'Show Plan', exact: true }).click();
    const preview = page.frameLocator('iframe.webview.ready').last().frameLocator('#active-frame');
    await preview.locator('h1', { hasText: `Restore the cluster from snapshot ${snapshot.id}` }).waitFor();
    await preview.locator('h2', { hasText: '1. deep-storage: to do' }).waitFor();
    await preview.locator('h2', { hasText: 'Warnings (1)' }).waitFor();
    const question = wb.notification(`Restore the cluster from snapshot ${snapshot.id}? The plan is open beside.`);
    await question.waitFor();
    await wb.screenshot('cluster-restore-plan-preview');

    // Restore Cluster: the recovery job, followed to its end; deep storage is whole again; the Jobs view lists it.
    await question.getByRole('button', { name: 'Restore Cluster', exact: true }).click();
    await wb.notification(/done, the post-restore check succeeded/).waitFor({ timeout: 120_000 });
    for (const d of [1, 2]) assert.ok(existsSync(path.join(deep, `demo/${d}/v1/0/index/00000.smoosh`)), `segment of day ${d} written back`);
    await wb.row('Jobs', /recovery/).waitFor();
    await wb.screenshot('cluster-restore-done');

    // Roll Back Data Source… after a bad overwrite of day 2: the interval it touches is offered, picked, and the plan
    // lists what would be marked unused; Cancel leaves Druid untouched.
    druid!.used.push({ day: 2, version: 'v2' });
    await wb.contextMenu(row, 'Roll Back Data Source…');
    await dialog.filter({ hasText: 'a cluster restore runs on the cluster sidecar' }).waitFor();
    await dialog.getByRole('button', { name: 'Use cluster-1', exact: true }).click();
    const input = page.locator('.quick-input-widget .quick-input-box input');
    await input.and(page.locator(`[placeholder^="demo: roll back which intervals? (1 interval differ"]`)).waitFor();
    await page.locator('.quick-input-widget .monaco-list-row', { hasText: '2024-01-02/2024-01-03' }).waitFor();
    await input.press('Enter');
    await dialog.filter({ hasText: `Roll back demo from snapshot ${snapshot.id}?` }).waitFor();
    const rollback = await dialog.innerText();
    assert.match(rollback, /Intervals: 2024-01-02\/2024-01-03\./);
    assert.match(rollback, /2\. rollback: to do — mark unused: 1 segment, 16 B/);
    await wb.screenshot('cluster-rollback-plan');
    await dialog.getByRole('button', { name: 'Cancel', exact: true }).click();
    await dialog.waitFor({ state: 'hidden' });
    // Planning reads: GETs, and two POSTs that only ask (task locks, the ids of used rows).
    const reads = new Set(['POST /druid/indexer/v1/lockedIntervals/v2', 'POST /druid/coordinator/v1/metadata/datasources/demo/segments']);
    assert.deepEqual(
      druid!.asked.filter((a) => !a.startsWith('GET ') && !reads.has(a)),
      [],
      'nothing but reads reached Druid',
    );
  },
);
