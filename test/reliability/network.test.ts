/**
 * Network faults between a source and its target, made by the fault proxy: the target refuses connections, accepts
 * and stalls, goes silent mid-upload (a partition: neither side hears from the other), resets connections
 * mid-stream, and answers 5xx. The source retries with backoff (doubling up to druid.backup.retryMaxDelay), a
 * stalled transfer times out after druid.backup.stallTimeout, the target drops a silent upload after the same
 * time, and once the network heals every segment is stored exactly once, byte-identical, with nothing left behind.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, beforeEach, afterEach, describe, test } from 'node:test';
import type { SegmentsResponse } from '../../sidecar/api.js';
import type { SampleResult } from '../../sidecar/sample/sampleCache.js';
import { writeSampleCache } from '../../sidecar/sample/sampleCache.js';
import { FaultProxy } from '../helpers/faults.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { startSidecar, tmpDir, waitFor } from '../helpers/sidecar.js';
import { assertStoredOnce, logged } from './lib.js';

const NODE = 'historical-net';
const base = { DRUID_BACKUP_RECONCILE_PERIOD: 'PT1H', DRUID_BACKUP_RETRY_MAX_DELAY: 'PT4S' };
/** The stall tests use a short stall timeout; the others a long one, so a loaded machine is not mistaken for a stall. */
// The 5xx test injects faults into single PUTs, so its target takes no batches (a 5xx to a batch fails all its
// segments alike; store-batch.test.ts has the batch route's outcomes).
const stallEnv = (name: string) => ({
  ...base,
  DRUID_BACKUP_STALL_TIMEOUT: /stall|silent/.test(name) ? 'PT3S' : 'PT30S',
  DRUID_BACKUP_STORE_BATCH: /5xx/.test(name) ? 'false' : 'true',
});

describe('network faults between source and target', () => {
  let sample: SampleResult;
  let storeDir: string;
  let target: SidecarProcess;
  let proxy: FaultProxy;
  let source: SidecarProcess | undefined;
  const figures: Record<string, unknown> = {};

  before(async () => {
    sample = await writeSampleCache({
      dir: path.join(tmpDir('dbk-net-'), 'historical'),
      segments: 8,
      layout: 'nested',
      dataSources: ['wikipedia', 'kttm'],
      segmentSize: 256 * 1024,
      smooshChunkSize: 128 * 1024,
      seed: 71,
    });
  });
  after(() => console.log(`network faults: ${JSON.stringify(figures)}`));

  let env: ReturnType<typeof stallEnv>;
  beforeEach(async (t) => {
    env = stallEnv(t.name);
    const root = tmpDir('dbk-net-run-');
    storeDir = path.join(root, 'store');
    target = await startSidecar(['--store', storeDir], { stateDir: path.join(root, 'target-state'), env });
    proxy = await FaultProxy.start(target.port);
  });
  afterEach(async () => {
    await source?.stop();
    source = undefined;
    await proxy.close();
    await target.stop();
  });

  const startSource = () =>
    startSidecar(['--config', sample.propertiesFile, '--target', proxy.url, '--node-name', NODE, '--log-level', 'debug'], { token: target.token, env });
  const allBackedUp = async () => (await source!.get<SegmentsResponse>('/data/v1/segments?state=backedUp&limit=1')).total === sample.segmentIds.length;
  const tmpEntries = () => readdirSync(path.join(storeDir, '.tmp'));
  /** Bytes a whole backup puts on the wire, roughly: the files plus headers and JSON. */
  const wire = () => sample.bytes + sample.segmentIds.length * 4096;

  async function healedAndComplete(): Promise<void> {
    proxy.clearFaults();
    await proxy.accept();
    await waitFor('every segment backed up once the network healed', allBackedUp, 60_000, 200);
    await waitFor('the source queue to drain', async () => (await source!.metric('druid_backup_queue_depth')) === 0, 10_000);
    assertStoredOnce(storeDir, sample, NODE, [target.stdout]);
    const failed = await source!.get<SegmentsResponse>('/data/v1/segments?state=failed&limit=1');
    assert.equal(failed.total, 0);
  }

  test('connections refused: the source probes with doubling delays, then sends everything once the target listens', async () => {
    await proxy.refuse();
    source = await startSource();
    await waitFor('the source to see the target down', async () => (await source!.metric('druid_backup_target_up')) === 0, 20_000);
    await waitFor('three failed probes', () => logged(source!.stdout, 'target still unreachable').length >= 3, 30_000);
    const delays = logged(source.stdout, 'target still unreachable').map((l) => Number(l.nextProbeMs));
    assert.deepEqual(delays.slice(0, 3), [2000, 4000, 4000], 'probe delays double from 1 s up to retryMaxDelay (4 s)');
    assert.equal(await source.metric('druid_backup_bytes_sent_total'), 0);
    figures.refusedProbeDelaysMs = delays;
    await healedAndComplete();
  });

  test('accepted and stalled from the first byte: calls time out after the stall timeout; nothing is lost', async () => {
    proxy.hold();
    source = await startSource();
    await waitFor(
      'the source to give up on the stalled target',
      () => logged(source!.stdout, 'target unreachable; transfers paused until it answers again').length > 0,
      30_000,
    );
    const errors = logged(source.stdout, 'cannot list the target; deciding from the local state').map((l) => String(l.err));
    assert.ok(
      errors.some((e) => /did not answer in time|timeout/i.test(e)),
      `a timeout, not a hang: ${JSON.stringify(errors)}`,
    );
    figures.stalledFromStart = errors[0];
    await healedAndComplete();
  });

  test('silent mid-upload (a partition): the source abandons the transfer, the target drops the upload and cleans up', async () => {
    source = await startSource();
    // Well inside the first upload's file bytes.
    await proxy.holdAtUp(Math.floor(wire() / 3));
    await waitFor('the upload to be in the target temporary area', () => tmpEntries().length > 0, 10_000, 20);
    await waitFor(
      'the source to abandon the stalled transfer',
      () =>
        logged(source!.stdout, 'backup failed; will retry').length +
          logged(source!.stdout, 'target unreachable; transfers paused until it answers again').length >
        0,
      30_000,
    );
    const waiting = await source.get<SegmentsResponse>('/data/v1/segments?state=pending&limit=1000');
    assert.ok(
      waiting.items.some((s) => /no progress for 3 s; transfer abandoned/.test(s.backup.error ?? '')),
      `the stalled transfer timed out: ${JSON.stringify(waiting.items.map((s) => s.backup.error))}`,
    );
    // The proxy still holds the connection open and silent: only the target's own timeout can end the upload.
    await waitFor('the target to drop the silent upload and empty .tmp', () => tmpEntries().length === 0, 30_000, 100);
    figures.partitionCleanedTmp = true;
    await healedAndComplete();
  });

  test('connections reset mid-stream, three times: each cut upload is dropped, every segment ends stored once', async () => {
    source = await startSource();
    const points = [0.15, 0.45, 0.7].map((f) => Math.floor(wire() * f));
    for (const p of points) await Promise.race([proxy.resetAtUp(p), waitFor('a finished backup', allBackedUp, 60_000)]);
    const rejected = logged(target.stdout, 'request rejected').length;
    figures.resetsAtBytes = points;
    figures.resetTargetRejections = rejected;
    await healedAndComplete();
    assert.equal(logged(target.stdout, 'request failed').length, 0, 'no cut upload counts as an internal error on the target');
  });

  test('5xx answers: a failing segment is retried alone with doubling delays, and stored once', async () => {
    const unlucky = encodeURIComponent(sample.segmentIds[0]!);
    const other = encodeURIComponent(sample.segmentIds[1]!);
    proxy.failRequests((r) => r.method === 'PUT' && r.path.endsWith(unlucky), 503, 3);
    proxy.failRequests((r) => r.method === 'PUT' && r.path.endsWith(other), 500, 2);
    source = await startSource();
    await waitFor('every injected 5xx to be answered', () => proxy.requests.filter((r) => typeof r.action === 'number').length === 5, 30_000);
    await healedAndComplete();
    const retries = new Map<string, number[]>();
    for (const l of logged(source.stdout, 'backup failed; will retry')) {
      const id = String(l.segmentId);
      retries.set(id, [...(retries.get(id) ?? []), Number(l.retryInMs)]);
      assert.match(String(l.err), /answered (500|503)/, "the 5xx is reported as the target's answer");
    }
    // On a failure, what the source logged of the unlucky segment says where a 5xx went (seen once under load).
    const story = () => JSON.stringify(source!.logLines().filter((l) => l.segmentId === sample.segmentIds[0] || /unreachable/.test(String(l.msg))));
    assert.deepEqual(retries.get(sample.segmentIds[0]!), [1000, 2000, 4000], `retry delays double from 1 s; the source logged ${story()}`);
    assert.deepEqual(retries.get(sample.segmentIds[1]!), [1000, 2000]);
    assert.equal(retries.size, 2, 'only the segments that failed were retried');
    assert.equal(logged(source.stdout, 'target unreachable; transfers paused until it answers again').length, 0, 'a 5xx is not a dead target');
    figures.fivexxRetryDelaysMs = [...retries.values()];
  });
});
