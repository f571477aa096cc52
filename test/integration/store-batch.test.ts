/**
 * Batches of small segments between real sidecars (store/http/batcher.ts → POST /data/v1/store/batch): a backup to a
 * target that offers batches sends its small segments in them and stores exactly what single PUTs store (files
 * byte for byte, manifests but for their times) into a target that does not (druid.backup.storeBatch=false, as an
 * older sidecar), which gets single PUTs; each segment's outcome reaches the job, the source's state and metrics,
 * a differing replica among them included.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { Job, JobAccepted, SegmentsResponse } from '../../sidecar/api.js';
import { packSegment } from '../../sidecar/archive/pack.js';
import type { SampleResult } from '../../sidecar/sample/sampleCache.js';
import { writeSampleCache } from '../../sidecar/sample/sampleCache.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { startSidecar, tmpDir } from '../helpers/sidecar.js';
import { storedSegmentDir } from '../helpers/store.js';

const SEGMENTS = 60;
const BATCH_ROUTE = { method: 'POST', route: '/data/v1/store/batch' };
const PUT_ROUTE = { method: 'PUT', route: '/data/v1/store/segments/:id' };

/** A manifest without its times (when stored, when each source was recorded), which differ between any two stores. */
function timeless(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(timeless);
  if (v && typeof v === 'object')
    return Object.fromEntries(
      Object.entries(v)
        .filter(([k]) => !/(^at|At)$/.test(k))
        .map(([k, x]) => [k, timeless(x)]),
    );
  return v;
}

describe('batch uploads of small segments', () => {
  let root: string;
  let sample: SampleResult;
  let batchTarget: SidecarProcess;
  let oldTarget: SidecarProcess;
  let source: SidecarProcess;
  let conflicted: string;

  const backup = async (target: SidecarProcess, dataSource?: string): Promise<Job> => {
    const r = await source.request<JobAccepted>('POST', '/data/v1/backup', { target: target.url, ...(dataSource ? { dataSource } : {}) });
    assert.equal(r.status, 202, r.text);
    return source.waitForJob(r.json.jobId, 120_000);
  };

  before(async () => {
    root = tmpDir('dbk-batch-');
    sample = await writeSampleCache({
      dir: path.join(root, 'historical'),
      segments: SEGMENTS,
      layout: 'nested',
      dataSources: ['wikipedia', 'kttm', 'web_logs'],
      segmentSize: 3 * 1024,
      smooshChunkSize: 2147483647,
      seed: 23,
    });
    batchTarget = await startSidecar(['--store', path.join(root, 'store-batch')]);
    oldTarget = await startSidecar(['--store', path.join(root, 'store-old')], { token: batchTarget.token, env: { DRUID_BACKUP_STORE_BATCH: 'false' } });
    source = await startSidecar(['--config', sample.propertiesFile, '--node-name', 'historical-b'], { token: batchTarget.token, allowedTargets: ['*'] });
    // Another node's differing copy of one segment, held by the batch target before the backup.
    conflicted = sample.segmentIds[7]!;
    const other = packSegment({
      segmentId: conflicted,
      descriptor: null,
      node: 'elsewhere',
      files: [
        { name: 'version.bin', size: 4, open: () => Readable.from([Buffer.from([0, 0, 0, 9])]) },
        { name: '00000.smoosh', size: 100, open: () => Readable.from([randomBytes(100)]) },
      ],
    });
    const chunks: Buffer[] = [];
    for await (const c of other.stream) chunks.push(c as Buffer);
    const put = await batchTarget.request('PUT', `/data/v1/store/segments/${encodeURIComponent(conflicted)}`, undefined, {
      raw: Buffer.concat(chunks),
      headers: { 'content-type': 'application/x-tar', 'x-druid-backup-node': 'elsewhere' },
    });
    assert.equal(put.status, 201, put.text);
  });
  after(async () => {
    await source?.stop();
    await batchTarget?.stop();
    await oldTarget?.stop();
  });

  test('a target that offers batches gets the small segments in batches; each outcome reaches the job, state and metrics', async () => {
    const puts0 = await batchTarget.metric('druid_backup_http_requests_total', PUT_ROUTE);
    const job = await backup(batchTarget);
    // Failed for the one differing replica alone.
    assert.equal(job.state, 'failed', JSON.stringify(job.errors));
    assert.equal(job.progress.segmentsDone, SEGMENTS - 1);
    assert.equal(job.progress.segmentsFailed, 1);
    assert.deepEqual(
      job.errors.map((e) => e.segmentId),
      [conflicted],
    );
    assert.match(job.errors[0]!.message, /different bytes/);
    const batches = await batchTarget.metric('druid_backup_http_requests_total', { ...BATCH_ROUTE, status: '200' });
    assert.ok(batches >= 1 && batches < SEGMENTS / 2, `${batches} batches for ${SEGMENTS} segments`);
    assert.equal(await batchTarget.metric('druid_backup_http_requests_total', PUT_ROUTE), puts0, 'no single PUT');
    assert.equal(await source.metric('druid_backup_segments_backed_up_total', { outcome: 'stored' }), SEGMENTS - 1);
    const backedUp = await source.get<SegmentsResponse>('/data/v1/segments?state=backedUp&limit=1');
    assert.equal(backedUp.total, SEGMENTS - 1);
    const conflict = await batchTarget.get<{ items: Array<{ segmentId: string }> }>('/data/v1/store/segments?state=conflict&limit=10');
    assert.deepEqual(
      conflict.items.map((s) => s.segmentId),
      [conflicted],
    );
    // A second backup finds everything held and sends nothing.
    const again = await backup(batchTarget);
    assert.equal(again.progress.segmentsFailed, 1);
    // Only the differing replica is sent again; alone, it goes by a single PUT.
    assert.equal(await batchTarget.metric('druid_backup_http_requests_total', { ...BATCH_ROUTE, status: '200' }), batches);
    assert.equal(await batchTarget.metric('druid_backup_http_requests_total', { ...PUT_ROUTE, status: '409' }), 1);
  });

  test('a target that does not offer batches gets single PUTs, and stores exactly the same segments', async () => {
    const job = await backup(oldTarget);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
    assert.equal(job.progress.segmentsDone, SEGMENTS);
    assert.equal(await oldTarget.metric('druid_backup_http_requests_total', BATCH_ROUTE), 0);
    assert.equal(await oldTarget.metric('druid_backup_http_requests_total', { ...PUT_ROUTE, status: '201' }), SEGMENTS);
    for (const id of sample.segmentIds) {
      if (id === conflicted) continue;
      const a = storedSegmentDir(path.join(root, 'store-batch'), id);
      const b = storedSegmentDir(path.join(root, 'store-old'), id);
      assert.equal(path.relative(path.join(root, 'store-batch'), a), path.relative(path.join(root, 'store-old'), b), `${id}: the same place`);
      const names = readdirSync(a).sort();
      assert.deepEqual(names, readdirSync(b).sort(), `${id}: the same files`);
      for (const name of names) {
        const [x, y] = [readFileSync(path.join(a, name)), readFileSync(path.join(b, name))];
        if (name === 'manifest.json') assert.deepEqual(timeless(JSON.parse(x.toString())), timeless(JSON.parse(y.toString())), `${id}: the same manifest`);
        else assert.ok(x.equals(y), `${id}/${name}: the same bytes`);
      }
    }
  });

  test('a target that stops taking batches (404, an older build started in its place) gets the same segments by single PUTs', async () => {
    const store = path.join(root, 'store-downgraded');
    let target = await startSidecar(['--store', store], { token: batchTarget.token });
    try {
      const first = await backup(target, 'kttm');
      assert.equal(first.state, 'succeeded', JSON.stringify(first.errors));
      assert.ok((await target.metric('druid_backup_http_requests_total', BATCH_ROUTE)) >= 1, 'batches while it took them');
      const port = target.port;
      await target.stop();
      // The source still knows it as a target that takes batches.
      target = await startSidecar(['--store', store], { token: batchTarget.token, port, env: { DRUID_BACKUP_STORE_BATCH: 'false' } });
      const rest = await backup(target);
      assert.equal(rest.state, 'succeeded', JSON.stringify(rest.errors));
      const kttm = sample.segmentIds.filter((id) => id.startsWith('kttm_')).length;
      assert.equal(rest.progress.segmentsDone, SEGMENTS - kttm);
      assert.equal(rest.progress.segmentsFailed, 0);
      assert.ok((await target.metric('druid_backup_http_requests_total', { ...BATCH_ROUTE, status: '404' })) >= 1, 'a batch refused, its segments sent again');
      assert.equal(await target.metric('druid_backup_http_requests_total', { ...PUT_ROUTE, status: '201' }), SEGMENTS - kttm);
      const catalog = await target.get<{ items: Array<{ segmentId: string }> }>('/data/v1/store/segments?limit=1000');
      assert.equal(catalog.items.length, SEGMENTS);
    } finally {
      await target.stop();
    }
  });
});
