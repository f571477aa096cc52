/**
 * Holdings reports between real sidecars (issue 21): a source node's reconcile tells each target that keeps
 * snapshots what it holds, so a prune with gracePeriod=PT0S keeps a segment only a node holds and no snapshot names;
 * once the node drops it and reports again, the next prune removes it. Over an http target sidecar and over S3.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Job, StoreCatalogResponse } from '../../sidecar/api.js';
import type { SampleResult } from '../../sidecar/sample/sampleCache.js';
import { writeSampleCache } from '../../sidecar/sample/sampleCache.js';
import { cacheSegmentPath, infoFilePath } from '../../sidecar/druid/paths.js';
import { parseSegmentId } from '../../sidecar/druid/segmentId.js';
import { prune } from '../../sidecar/snapshot/prune.js';
import type { PruneResult } from '../../sidecar/snapshot/prune.js';
import { S3Target } from '../../sidecar/store/s3/target.js';
import { startSidecar, tmpDir, waitFor } from '../helpers/sidecar.js';
import { coordinator, log } from '../helpers/snapshots.js';
import type { VersityGw } from '../helpers/versitygw.js';
import { requireVersityGw, startVersityGw } from '../helpers/versitygw.js';

const SEGMENTS = 3;
/** Reconcile every second, so that a new report follows a drop quickly; no automatic restore of the dropped segment. */
const SOURCE_ENV = { DRUID_BACKUP_RECONCILE_PERIOD: 'PT1S', DRUID_BACKUP_AUTO_RESTORE: 'false' };

async function cache(prefix: string): Promise<SampleResult> {
  return writeSampleCache({
    dir: path.join(tmpDir(prefix), 'historical'),
    segments: SEGMENTS,
    layout: 'nested',
    dataSources: ['wikipedia', 'web_logs'],
    segmentSize: 16 * 1024,
    smooshChunkSize: 8 * 1024,
    seed: 7,
  });
}

/**
 * A snapshot by a cluster sidecar whose Coordinator uses one segment of another data source: a prune removes
 * nothing from a store without a snapshot, and this one names none of the node's segments.
 */
async function snapshot(target: string, env: NodeJS.ProcessEnv, token?: string): Promise<void> {
  const c = await coordinator();
  c.used.push({ day: 1, version: 'v1' });
  const cluster = await startSidecar(['--coordinator', c.url, '--target', target], { env, token });
  try {
    const r = await cluster.request<{ jobId: string }>('POST', '/data/v1/snapshots', {});
    assert.equal(r.status, 202, r.text);
    const j = await waitFor('the snapshot', async () => {
      const x = await cluster.get<Job>(`/data/v1/jobs/${r.json.jobId}`);
      return x.state === 'running' || x.state === 'queued' ? undefined : x;
    });
    assert.equal(j.state, 'succeeded', JSON.stringify(j.errors));
  } finally {
    await cluster.stop();
    c.close();
  }
}

/** Drops a segment from the cache as Druid does: its info_dir entry first, then its files. */
function drop(sample: SampleResult, id: string): void {
  const seg = parseSegmentId(id);
  rmSync(infoFilePath(sample.infoDir, seg), { force: true });
  rmSync(cacheSegmentPath(sample.location, seg, 'nested'), { recursive: true, force: true });
}

describe('holdings reports: a segment a node holds is kept by prune until the node drops it', () => {
  test('over an http target sidecar', async () => {
    const sample = await cache('dbk-hold-http-');
    const target = await startSidecar(['--store', tmpDir('dbk-hold-store-')], {
      env: { DRUID_BACKUP_RETENTION_KEEP_LAST: '1', DRUID_BACKUP_RETENTION_GRACE_PERIOD: 'PT0S' },
    });
    const source = await startSidecar(['--config', sample.propertiesFile, '--target', target.url], { token: target.token, env: SOURCE_ENV });
    const job = async (dryRun: boolean): Promise<PruneResult> => {
      const r = await target.request<{ jobId: string }>('POST', '/data/v1/store/prune', { dryRun });
      assert.equal(r.status, 202, r.text);
      const j = await waitFor(`prune ${r.json.jobId}`, async () => {
        const x = await target.get<Job>(`/data/v1/jobs/${r.json.jobId}`);
        return x.state === 'running' || x.state === 'queued' ? undefined : x;
      });
      assert.equal(j.state, 'succeeded', JSON.stringify(j.errors));
      return j.result as unknown as PruneResult;
    };
    const stored = async () => (await target.get<StoreCatalogResponse>('/data/v1/store/segments?limit=1000')).items.map((s) => s.segmentId).sort();
    try {
      await waitFor('every segment backed up', async () => (await stored()).length === SEGMENTS, 30_000);
      await snapshot(target.url, {}, target.token);
      // No snapshot names them and the grace period is zero: only the node's report keeps them.
      const kept = await waitFor('a report of every segment', async () => {
        const p = await job(true);
        return p.kept.byNodes === SEGMENTS ? p : undefined;
      });
      assert.deepEqual(kept.remove, []);
      const real = await job(false);
      assert.equal(real.removed.segments, 0);
      assert.deepEqual(await stored(), [...sample.segmentIds].sort());
      // The node drops one; its next report leaves it out, and the next prune removes it.
      const gone = [...sample.segmentIds].sort()[0]!;
      drop(sample, gone);
      const plan = await waitFor('a report without the dropped segment', async () => {
        const p = await job(true);
        return p.remove.length ? p : undefined;
      });
      assert.deepEqual(
        plan.remove.map((r) => r.segmentId),
        [gone],
      );
      assert.match(plan.remove[0]!.reason, /./);
      const after = await job(false);
      assert.equal(after.removed.segments, 1);
      assert.deepEqual(await stored(), sample.segmentIds.filter((id) => id !== gone).sort());
    } finally {
      await source.stop();
      await target.stop();
    }
  });

  describe('over S3', () => {
    let gw: VersityGw;
    before(async () => {
      requireVersityGw();
      gw = await startVersityGw();
    });
    after(async () => {
      await gw?.close();
    });

    test('the bucket keeps what the node reports holding', async () => {
      const sample = await cache('dbk-hold-s3-');
      await gw.createBucket('dbk-hold');
      const url = 's3://dbk-hold/backups';
      const source = await startSidecar(['--config', sample.propertiesFile, '--target', url], { env: { ...gw.env, ...SOURCE_ENV } });
      const t = S3Target.open(url, { log, node: 'pruner', settings: { endpoint: gw.endpoint } });
      Object.assign(process.env, gw.env);
      const policy = { keepLast: 1, gracePeriodMs: 0 };
      const stored = async () => {
        const ids: string[] = [];
        for await (const m of t.list({})) ids.push(m.segmentId);
        return ids.sort();
      };
      try {
        await waitFor('every segment backed up', async () => (await stored()).length === SEGMENTS, 30_000);
        await snapshot(url, gw.env);
        await waitFor('a report of every segment', async () => {
          const p = await prune(t, { policy, dryRun: true, owner: 'test', log });
          return p.kept.byNodes === SEGMENTS ? p : undefined;
        });
        assert.equal((await prune(t, { policy, owner: 'test', log })).removed.segments, 0);
        assert.equal((await stored()).length, SEGMENTS);
        const gone = [...sample.segmentIds].sort()[0]!;
        drop(sample, gone);
        await waitFor('a report without the dropped segment', async () => {
          const p = await prune(t, { policy, dryRun: true, owner: 'test', log });
          return p.remove.length ? p : undefined;
        });
        const r = await prune(t, { policy, owner: 'test', log });
        assert.equal(r.removed.segments, 1);
        assert.deepEqual(await stored(), sample.segmentIds.filter((id) => id !== gone).sort());
      } finally {
        t.close();
        await source.stop();
      }
    });
  });
});
