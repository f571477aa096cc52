/**
 * Snapshots of 100,000 used segments in bounded memory (issue 21): a Coordinator answers 100,000 used segments, a
 * target sidecar's store holds them all; the cluster sidecar takes a snapshot into the target, the target plans a
 * prune (reading the 100,000-line list), and the cluster sidecar plans a restore from the snapshot (reading the list
 * again, through the target's API). The prune itself of 90,000 of them is bench/prune.ts. Each sidecar's peak resident memory (VmHWM,
 * read from /proc by this process) stays below PEAK_LIMIT_MIB (see there); the figures are printed.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Job, JobAccepted, RestorePlan } from '../../sidecar/api.js';
import type { PruneResult } from '../../sidecar/snapshot/prune.js';
import { bigCoordinator, bigId, upTo, writeLocalSegments } from '../helpers/bigStore.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { newToken, startSidecar, tmpDir } from '../helpers/sidecar.js';

const N = 100_000;
/**
 * Measured at 100,000 segments: the target holds about 380 MiB once its store is loaded (the local store keeps its
 * catalog in memory), its prune plan peaked at 709 MiB and the cluster sidecar's snapshot at 629 MiB. The limit
 * catches a list read whole again (each copy of a 100,000-line list is about 70 MiB); the 300 MiB every other
 * sidecar test holds to is not met yet at this size.
 */
const PEAK_LIMIT_MIB = 800;

function mib(p: SidecarProcess, field: 'VmHWM' | 'VmRSS'): number {
  const status = readFileSync(`/proc/${p.proc.pid}/status`, 'utf8');
  return Math.round(Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0) / 1024);
}

describe(`snapshots of ${N.toLocaleString('en')} segments in bounded memory`, { timeout: 1_200_000 }, () => {
  let work: string;
  let target: SidecarProcess;
  let cluster: SidecarProcess;
  let c: Awaited<ReturnType<typeof bigCoordinator>>;
  const used = N;
  const figures: Record<string, number> = {};

  async function job(s: SidecarProcess, urlPath: string, body: unknown): Promise<Job> {
    const r = await s.request<JobAccepted>('POST', urlPath, body);
    assert.equal(r.status, 202, r.text);
    const j = await s.waitForJob(r.json.jobId, 900_000);
    assert.equal(j.state, 'succeeded', JSON.stringify(j.errors));
    return j;
  }

  before(async () => {
    work = tmpDir('dbk-snapmem-');
    const store = path.join(work, 'store');
    const t0 = Date.now();
    writeLocalSegments(store, 0, N);
    process.stderr.write(`# wrote ${N} segments in ${Date.now() - t0} ms\n`);
    c = await bigCoordinator(() => upTo(used));
    const token = newToken();
    target = await startSidecar(['--store', store], {
      token,
      timeoutMs: 300_000,
      env: { DRUID_BACKUP_RETENTION_KEEP_LAST: '1', DRUID_BACKUP_RETENTION_GRACE_PERIOD: 'PT0S' },
    });
    cluster = await startSidecar(['--coordinator', c.url, '--target', target.url], { token });
    figures['target after loading its store (RSS)'] = mib(target, 'VmRSS');
  });

  after(async () => {
    process.stderr.write(`# peak memory (MiB): ${JSON.stringify(figures)}\n`);
    await cluster?.stop();
    await target?.stop();
    c?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('snapshot, prune plan, prune and restore plan: every sidecar stays below its limit', async () => {
    const first = await job(cluster, '/data/v1/snapshots', {});
    const s1 = (first.result as { snapshot: string; segments: number; complete: boolean }).snapshot;
    assert.equal(first.result!.segments, N);
    assert.equal(first.result!.complete, true);
    figures['cluster sidecar: snapshot'] = mib(cluster, 'VmHWM');

    const plan = (await job(target, '/data/v1/store/prune', { dryRun: true })).result as unknown as PruneResult;
    assert.equal(plan.kept.byLatestSnapshot, N);
    assert.equal(plan.remove.length, 0);
    figures['target: prune plan'] = mib(target, 'VmHWM');

    // The whole list is read to find the one segment asked for (planning 100,000 restores is the planner's own matter).
    const restore = await cluster.request<RestorePlan>('POST', '/data/v1/restore', {
      snapshot: s1,
      segmentIds: [bigId(N - 1)],
      target: target.url,
      destination: path.join(work, 'restored'),
      dryRun: true,
    });
    assert.equal(restore.status, 200, restore.text.slice(0, 500));
    assert.deepEqual(
      restore.json.segments.map((x) => x.segmentId),
      [bigId(N - 1)],
    );
    assert.deepEqual(restore.json.snapshot, { id: s1, missing: [] });
    figures['cluster sidecar: restore plan'] = mib(cluster, 'VmHWM');

    for (const [what, peak] of Object.entries(figures)) assert.ok(peak < PEAK_LIMIT_MIB, `${what}: ${peak} MiB`);
  });
});
