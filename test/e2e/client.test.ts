/**
 * The extension's client, model and live updates against real sidecars (no VS Code needed): every answer the
 * views are made of, the errors a person sees for a wrong token or a node that is down, events streamed into the
 * model, and a bucket target answered by the node that backs up to it.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { SidecarClient } from '../../extension/client.js';
import { type Change, Cluster } from '../../extension/cluster.js';
import { LiveUpdates } from '../../extension/live.js';
import { nodeChildren, nodeRow, targetChildren } from '../../extension/tree/rows.js';
import { writeSampleCache, type SampleResult } from '../../sidecar/sample/sampleCache.js';
import { freePort, startVersityGw, type VersityGw } from '../helpers/versitygw.js';
import { type SidecarProcess, startSidecar, tmpDir, waitFor } from '../helpers/sidecar.js';

const quiet = { info() {}, error() {} };
let dir: string;
let sample: SampleResult;
let target: SidecarProcess;
let source: SidecarProcess;
let gw: VersityGw | undefined;
let bucketSource: SidecarProcess | undefined;

function client(url: string, token: string | undefined): SidecarClient {
  return new SidecarClient(url, { token, timeoutMs: 5000, log: quiet });
}

before(async () => {
  dir = tmpDir('dbk-ext-client-');
  sample = await writeSampleCache({
    dir: path.join(dir, 'h'),
    segments: 9,
    layout: 'flat',
    dataSources: ['wikipedia', 'kttm'],
    segmentSize: 4096,
    smooshChunkSize: 2147483647,
    seed: 9,
  });
  target = await startSidecar(['--store', path.join(dir, 'store'), '--node-name', 'target-1'], { stateDir: path.join(dir, 'target-state') });
  source = await startSidecar(['--config', sample.propertiesFile, '--target', target.url], { token: target.token, stateDir: path.join(dir, 'source-state') });
});

after(async () => {
  await bucketSource?.stop();
  await gw?.close();
  await source?.stop();
  await target?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('identity, segments in pages, catalog, restore plan and jobs, as the views read them', async () => {
  const c = client(source.url, source.token);
  const info = await c.node();
  assert.deepEqual(info.roles, ['source']);
  assert.equal(info.target, target.url);
  const all = await waitFor('the active backup', async () => {
    const segs = await c.allSegments();
    return segs.length === 9 && segs.every((s) => s.backup.state === 'backedUp') ? segs : undefined;
  });
  const page = await c.segmentsPage({ limit: 4 });
  assert.equal(page.items.length, 4);
  assert.equal(page.total, 9);
  assert.ok(page.nextCursor);
  const stored = await client(target.url, target.token).allStored();
  assert.deepEqual(stored.map((s) => s.segmentId).sort(), all.map((s) => s.id).sort());
  const manifest = await client(target.url, target.token).manifest(all[0]!.id);
  assert.equal(manifest.segmentId, all[0]!.id);
  const plan = await c.restorePlan({ target: target.url, dataSource: 'kttm' });
  assert.equal(plan.totals.restore + plan.totals.overwrite, 0, 'everything is in place');
  assert.equal(plan.totals.skip, all.filter((s) => s.dataSource === 'kttm').length);
  const { jobId } = await c.backup({ target: target.url, segmentIds: [all[0]!.id] });
  const done = await waitFor('the backup job', async () => {
    const j = await c.job(jobId);
    return j.state === 'succeeded' ? j : undefined;
  });
  assert.equal(done.progress.segmentsSkipped, 1, 'unchanged: nothing sent');
  assert.ok((await c.jobs()).some((j) => j.id === jobId));
});

test('a wrong token, a bad id and a node that is down: errors a person can act on, and error rows', async () => {
  const denied = await client(source.url, 'wrong-token')
    .node()
    .catch((e: unknown) => e);
  assert.equal((denied as { code: string }).code, 'unauthorized');
  const bad = await client(target.url, target.token)
    .manifest('not a segment id')
    .catch((e: unknown) => e);
  assert.equal((bad as { status: number }).status, 400);
  assert.match((bad as Error).message, /segment/i);

  const port = await freePort();
  const down = `http://127.0.0.1:${port}`;
  const cluster = new Cluster(10);
  cluster.setNodes([{ url: down }, { url: source.url }], (n) => client(n.url, n.url === down ? 'x' : 'wrong-token'));
  await Promise.all(cluster.list().map((e) => cluster.ensureSegments(e)));
  const dead = cluster.get(down)!;
  assert.equal(dead.error?.code, 'unreachable');
  assert.equal(nodeRow(dead).description, 'unreachable');
  assert.match(nodeChildren(dead, { pageSize: 10, shown: () => 0 })[0]!.label, /cannot connect to http:\/\/127\.0\.0\.1:\d+ \(connection refused\)/);
  const wrong = cluster.get(source.url)!;
  assert.equal(nodeRow(wrong).description, 'token rejected');
  assert.equal(nodeChildren(wrong, { pageSize: 10, shown: () => 0 })[1]!.command?.command, 'druidBackup.setToken');
  cluster.dispose();
});

test('a token set while the read without it is under way: the late refusal is not kept, and the node shows as read with its token', async () => {
  const cluster = new Cluster(10);
  cluster.setNodes([{ url: target.url }], (n) => client(n.url, undefined));
  const e = cluster.get(target.url)!;
  // The first read goes without a token (as when a node's URL is saved before its token is found); the token comes
  // before the node answers 401.
  const first = cluster.ensureInfo(e);
  cluster.replaceClient(target.url, client(target.url, target.token));
  const second = cluster.ensureInfo(e);
  await Promise.all([first, second]);
  assert.equal(e.error, undefined, `the refusal of the read without the token was kept: ${JSON.stringify(e.error)}`);
  assert.equal(e.info?.name, 'target-1');
  cluster.dispose();
});

test('live: a node first read while it was down is read again once its events stream comes up', async () => {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const cluster = new Cluster(10);
  const late = tmpDir('dbk-ext-late-');
  let up: SidecarProcess | undefined;
  const token = 'late-node-token-0123456789';
  cluster.setNodes([{ url }], (n) => client(n.url, token));
  const e = cluster.get(url)!;
  await cluster.ensureInfo(e);
  assert.equal(e.error?.code, 'unreachable');
  const live = new LiveUpdates(cluster, quiet, { baseMs: 100, maxMs: 200 });
  try {
    live.sync(true);
    up = await startSidecar(['--store', path.join(late, 'store'), '--node-name', 'late-1'], { port, token, stateDir: path.join(late, 'state') });
    // The loop asks as a view does; a node in error is not read again unless something resets it.
    await waitFor('the node read again', async () => {
      await cluster.ensureInfo(e);
      return e.info?.name === 'late-1' && e.error === undefined ? true : undefined;
    });
  } finally {
    live.dispose();
    cluster.dispose();
    await up?.stop();
    rmSync(late, { recursive: true, force: true });
  }
});

test('live: the events stream keeps the model current, and a change reaches the views in a batch', async () => {
  const cluster = new Cluster(50);
  cluster.setNodes([{ url: source.url }], (n) => client(n.url, source.token));
  const e = cluster.get(source.url)!;
  await cluster.ensureSegments(e);
  await cluster.ensureJobs(e);
  const batches: Change[][] = [];
  cluster.onChange((b) => batches.push(b));
  const live = new LiveUpdates(cluster, quiet);
  try {
    live.sync(true);
    // The stream is up once a job started now shows in the model without a reload.
    const c = client(source.url, source.token);
    const jobId = await waitFor(
      'a job event',
      async () => {
        const { jobId } = await c.backup({ target: target.url, dataSource: 'wikipedia' });
        await waitFor('the job to end', async () => ['succeeded', 'failed'].includes((await c.job(jobId)).state));
        return e.jobs?.find((j) => j.id === jobId && j.state === 'succeeded')?.id;
      },
      20_000,
      500,
    );
    assert.ok(batches.flat().some((ch) => ch.view === 'jobs' && ch.jobId === jobId));
  } finally {
    live.dispose();
    cluster.dispose();
  }
});

test('a bucket target: its catalog, manifests and verify answered by the node that backs up to it', async () => {
  gw = await startVersityGw();
  await gw.createBucket('ext-bucket');
  const bucket = 's3://ext-bucket/druid';
  bucketSource = await startSidecar(['--config', sample.propertiesFile, '--node-name', 'hist-s3', '--target', bucket], {
    env: gw.env,
    stateDir: path.join(dir, 's3-source-state'),
  });
  const cluster = new Cluster(10);
  cluster.setNodes([{ url: bucketSource.url }], (n) => client(n.url, bucketSource!.token));
  await cluster.ensureInfo(cluster.get(bucketSource.url)!);
  const b = cluster.get(bucket)!;
  assert.equal(b.via, bucketSource.url);
  const stored = await waitFor('the bucket to hold the sample', async () => {
    await cluster.ensureStored(b);
    const n = b.stored?.size ?? 0;
    if (n < 9) cluster.reload(bucket);
    return n === 9 ? b.stored : undefined;
  });
  assert.deepEqual(stored.dataSources(), ['kttm', 'wikipedia']);
  assert.deepEqual(
    targetChildren(b, { pageSize: 10, shown: () => 0 }).map((r) => r.label),
    ['kttm', 'wikipedia'],
  );
  const id = [...stored.values()][0]!.segmentId;
  assert.equal((await b.client.manifest(id)).segmentId, id);
  const { jobId } = await b.client.verify();
  const job = await waitFor('the bucket verify', async () => {
    const j = await b.client.job(jobId);
    return j.state === 'succeeded' || j.state === 'failed' ? j : undefined;
  });
  assert.equal(job.state, 'succeeded');
  assert.equal(job.progress.segmentsDone, 9);
  cluster.dispose();
});
