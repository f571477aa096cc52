/**
 * Crashes: kill -9 the source, then the target, at seeded random points of the transfers, and restart both.
 * The fault proxy between them holds the stream at an exact byte (chosen by the seed) while the process is killed,
 * so the kill lands mid-upload, between uploads or after the last one. After the restarts:
 * - the store holds no partial segment: every directory is a manifest and exactly its files, each hashing to its
 *   manifest, `.tmp` is empty, and `verify` finds nothing wrong;
 * - every segment of the cache is backed up exactly once (one copy, this node its only source, no conflict, no
 *   segment committed twice across the target's lives) and byte-identical to the cache;
 * - the source's queue lost nothing: every segment ends backed up in its state, the queue empty.
 * RELIABILITY_TRIALS (default 20) and RELIABILITY_SEED (default 1) choose the trials; scripts/soak.sh runs many.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { SegmentsResponse } from '../../sidecar/api.js';
import type { SampleResult } from '../../sidecar/sample/sampleCache.js';
import { writeSampleCache } from '../../sidecar/sample/sampleCache.js';
import { FaultProxy } from '../helpers/faults.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { startSidecar, tmpDir, waitFor } from '../helpers/sidecar.js';
import { assertStoredOnce, seeded, verifyStoreCli } from './lib.js';

const TRIALS = Number(process.env.RELIABILITY_TRIALS ?? 20);
const FIRST_SEED = Number(process.env.RELIABILITY_SEED ?? 1);
const NODE = 'historical-crash';

describe(`crashes: kill -9 the source, then the target, at random points (${TRIALS} trials from seed ${FIRST_SEED})`, () => {
  let sample: SampleResult;
  const alive = new Set<SidecarProcess>();
  const results: Array<{ seed: number; sourceKilledAt: number; targetKilledAt: number; wire: number; stored: number }> = [];

  before(async () => {
    sample = await writeSampleCache({
      dir: path.join(tmpDir('dbk-crash-'), 'historical'),
      segments: 12,
      layout: 'nested',
      dataSources: ['wikipedia', 'web_logs'],
      segmentSize: 160 * 1024,
      smooshChunkSize: 64 * 1024,
      seed: 61,
    });
  });
  after(async () => {
    for (const p of alive) await p.kill9();
    console.log(`crash trials: ${JSON.stringify(results)}`);
  });

  async function start(args: string[], opts: Parameters<typeof startSidecar>[1]): Promise<SidecarProcess> {
    const p = await startSidecar(args, opts);
    alive.add(p);
    return p;
  }
  async function kill(p: SidecarProcess): Promise<void> {
    await p.kill9();
    alive.delete(p);
  }

  for (let i = 0; i < TRIALS; i++) {
    const seed = FIRST_SEED + i;
    test(`seed ${seed}`, async () => {
      const rnd = seeded(seed);
      const root = tmpDir(`dbk-crash-${seed}-`);
      const storeDir = path.join(root, 'store');
      const targetState = path.join(root, 'target-state');
      const sourceState = path.join(root, 'source-state');
      const env = { DRUID_BACKUP_RECONCILE_PERIOD: 'PT1H', DRUID_BACKUP_WORKERS: String(1 + Math.floor(rnd() * 3)) };
      const targetLogs: string[] = [];

      let target = await start(['--store', storeDir], { stateDir: targetState });
      const proxy = await FaultProxy.start(target.port);
      const sourceArgs = ['--config', sample.propertiesFile, '--target', proxy.url, '--node-name', NODE];
      let source = await start(sourceArgs, { token: target.token, stateDir: sourceState, env });
      const backedUp = async () => (await source.get<SegmentsResponse>('/data/v1/segments?state=backedUp&limit=1')).total === sample.segmentIds.length;
      try {
        // Upload bytes: the files plus a few KB of tar headers and JSON per segment.
        const wire = sample.bytes + sample.segmentIds.length * 4096;
        const x = Math.floor(rnd() * wire * 1.1);
        const finished = () => waitFor('the first backup to finish', backedUp, 60_000).then(() => 'finished' as const);
        const first = await Promise.race([proxy.holdAtUp(x).then(() => 'held' as const), finished()]);
        const sourceKilledAt = proxy.bytesUp;
        await kill(source);
        proxy.release();
        source = await start(sourceArgs, { token: target.token, stateDir: sourceState, env });

        const y = proxy.bytesUp + Math.floor(rnd() * (first === 'held' ? Math.max(1, wire - x) : wire) * 1.1);
        await Promise.race([proxy.holdAtUp(y), waitFor('the backup to finish', backedUp, 60_000)]);
        const targetKilledAt = proxy.bytesUp;
        targetLogs.push(target.stdout);
        await kill(target);
        proxy.clearFaults();
        target = await start(['--store', storeDir], { token: target.token, stateDir: targetState });
        proxy.setUpstream(target.port);

        await waitFor('every segment backed up after the crashes', backedUp, 90_000, 200);
        await waitFor('the source queue to drain', async () => (await source.metric('druid_backup_queue_depth')) === 0, 10_000);
        targetLogs.push(target.stdout);

        const check = assertStoredOnce(storeDir, sample, NODE, targetLogs);
        const verified = await verifyStoreCli(storeDir);
        if (verified) assert.equal(verified.status, 0, `verify --store: ${verified.output}`);
        const failed = await source.get<SegmentsResponse>('/data/v1/segments?state=failed&limit=10');
        assert.equal(failed.total, 0, JSON.stringify(failed.items.map((s) => s.backup)));
        results.push({ seed, sourceKilledAt, targetKilledAt, wire, stored: check.segments.size });
      } finally {
        await proxy.close();
        for (const p of [source, target]) if (alive.has(p)) await p.stop();
        alive.delete(source);
        alive.delete(target);
      }
    });
  }
});
