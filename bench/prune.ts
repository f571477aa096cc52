/**
 * Prune of a store of 100,000 segments of which 90 % are prunable (issue 21), in a local store and in a bucket on
 * VersityGW: the store holds every segment, one snapshot names the last tenth (a Coordinator answering those as
 * used, test/helpers/bigStore.ts), the policy is keepLast=1 with gracePeriod PT0S. The prune runs as a job of a real
 * sidecar (`POST /data/v1/store/prune`: its own store, or `{"target": "s3://…"}`); printed: the plan's time (a dry
 * run), the prune's time, segments removed per second, and the sidecar's memory: its RSS once started (a local
 * store's catalog is loaded then) and its peak (VmHWM) over both, split into the V8 heap's peak size (what V8 kept
 * reserved, sampled from /metrics each second) and peak use (live objects and garbage not yet collected), and the
 * rest (code, buffers, the allocator's own).
 * What bounds it (measured with --trace-gc, 2026-12): after a full GC the heap holds the catalog (about 0.7 KB a
 * segment) and little of the prune's; V8 lets old space grow to about 4 times what is live before the next full GC,
 * and the sweep's removals (I/O objects that live long enough to be promoted) fill that room. So the peak follows
 * the catalog times V8's growth factor: at 100,000 segments, 88 MiB live, a heap of about 350 MiB, peak RSS about
 * 480 MiB; with --heap-growing-percent=50, 253 MiB, for about 1.7 s more of full GCs.
 * Size with DBK_BENCH_PRUNE_SEGMENTS (default 100000); DBK_BENCH_PRUNE_ONLY=local or s3 runs one.
 */
import { readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import type { Job, JobAccepted } from '../sidecar/api.js';
import type { PruneResult } from '../sidecar/snapshot/prune.js';
import { LocalStore } from '../sidecar/store/local/store.js';
import { S3Target } from '../sidecar/store/s3/target.js';
import { bigSegment, snapshotLastTenth, writeBucketSegments, writeLocalSegments } from '../test/helpers/bigStore.js';
import type { SidecarProcess } from '../test/helpers/sidecar.js';
import { metricValue, startSidecar, tmpDir } from '../test/helpers/sidecar.js';
import { installVersityGw, startVersityGw } from '../test/helpers/versitygw.js';
import { addRow } from './table.js';

const N = Number(process.env.DBK_BENCH_PRUNE_SEGMENTS ?? 100_000);
const KEPT_FROM = N - N / 10;
const RETENTION = { DRUID_BACKUP_RETENTION_KEEP_LAST: '1', DRUID_BACKUP_RETENTION_GRACE_PERIOD: 'PT0S' };
const log = pino({ level: 'silent' });

function statusMiB(p: SidecarProcess, field: 'VmHWM' | 'VmRSS'): number {
  return Math.round(Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(readFileSync(`/proc/${p.proc.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024);
}

/** The V8 heap's peak size and use, from the sidecar's /metrics each second until `stop`. */
function heapPeaks(s: SidecarProcess): { stop(): Promise<{ totalMiB: number; usedMiB: number }> } {
  let total = 0;
  let used = 0;
  let running = true;
  const mib = (n: number) => Math.round(n / 1048576);
  const loop = (async () => {
    while (running) {
      const m = await s.metrics().catch(() => '');
      total = Math.max(total, metricValue(m, 'druid_backup_nodejs_heap_size_total_bytes'));
      used = Math.max(used, metricValue(m, 'druid_backup_nodejs_heap_size_used_bytes'));
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { totalMiB: mib(total), usedMiB: mib(used) };
    },
  };
}

async function run(s: SidecarProcess, body: Record<string, unknown>): Promise<{ ms: number; result: PruneResult }> {
  const t0 = performance.now();
  const r = await s.request<JobAccepted>('POST', '/data/v1/store/prune', body);
  if (r.status !== 202) throw new Error(`prune: ${r.status} ${r.text}`);
  const job: Job = await s.waitForJob(r.json.jobId, 3_600_000);
  if (job.state !== 'succeeded') throw new Error(`prune job ${job.state}: ${JSON.stringify(job.errors)}`);
  return { ms: performance.now() - t0, result: job.result as unknown as PruneResult };
}

async function measure(kind: string, s: SidecarProcess, body: Record<string, unknown>, setupMs: number): Promise<void> {
  const started = statusMiB(s, 'VmRSS');
  const heap = heapPeaks(s);
  const plan = await run(s, { ...body, dryRun: true });
  if (plan.result.removeCount !== KEPT_FROM) throw new Error(`the plan removes ${plan.result.removeCount}, not ${KEPT_FROM}`);
  const done = await run(s, body);
  if (done.result.removed.segments !== KEPT_FROM) throw new Error(`the prune removed ${done.result.removed.segments}, not ${KEPT_FROM}`);
  const h = await heap.stop();
  const peak = statusMiB(s, 'VmHWM');
  console.log(
    `prune ${kind}: ${N} segments, ${KEPT_FROM} prunable (90 %): plan ${(plan.ms / 1000).toFixed(1)} s, prune ${(done.ms / 1000).toFixed(1)} s (${Math.round(KEPT_FROM / (done.ms / 1000))} segments/s); sidecar RSS ${started} MiB once started, peak ${peak} MiB (V8 heap: peak size ${h.totalMiB} MiB, peak use ${h.usedMiB} MiB; the rest ${peak - h.totalMiB} MiB); store written in ${(setupMs / 1000).toFixed(0)} s`,
  );
  // In the closing table too (issue 21's row): no goal, the figures as measured.
  const what = `prune of ${N.toLocaleString('en-US')} segments, 90 % prunable, ${kind}`;
  addRow({ figure: `${what}: plan (dry run) + prune`, unit: 's', value: (plan.ms + done.ms) / 1000 });
  addRow({ figure: `${what}: sidecar peak RSS`, unit: 'MiB', value: peak });
}

async function local(): Promise<void> {
  const dir = tmpDir('dbk-bench-prune-');
  let s: SidecarProcess | undefined;
  try {
    const store = path.join(dir, 'store');
    const t0 = performance.now();
    writeLocalSegments(store, 0, N);
    const ls = LocalStore.open(store, { log });
    await snapshotLastTenth(N, KEPT_FROM, ls);
    const setupMs = performance.now() - t0;
    s = await startSidecar(['--store', store], { fast: false, timeoutMs: 600_000, env: RETENTION });
    await measure('local', s, {}, setupMs);
  } finally {
    await s?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function s3(): Promise<void> {
  installVersityGw('the prune benchmark');
  const root = tmpDir('dbk-bench-prune-s3-');
  const gw = await startVersityGw({ rootParent: root });
  let s: SidecarProcess | undefined;
  const url = 's3://prune/bench';
  const target = S3Target.open(url, { log, settings: { endpoint: gw.endpoint } });
  try {
    Object.assign(process.env, gw.env);
    await gw.createBucket('prune');
    const t0 = performance.now();
    // One segment through the S3 target's own put, the rest written as it leaves them (100,000 PUTs through
    // VersityGW take hours on two cores); the prune reads them all through the S3 API.
    const r = await target.put(bigSegment(0));
    if (r.outcome !== 'stored') throw new Error(`segment 0: ${r.outcome}`);
    for (let from = 1; from < N; from += 10_000) writeBucketSegments(path.join(gw.root, 'prune'), 'bench/', from, Math.min(N, from + 10_000));
    await snapshotLastTenth(N, KEPT_FROM, target);
    const setupMs = performance.now() - t0;
    // The snapshot listed the bucket, so its catalog index now names every segment: what the catalog holds (compressed).
    const indexBytes = statSync(path.join(gw.root, 'prune', 'bench', 'catalog.json.gz')).size;
    console.log(`prune S3: the catalog index of ${N} segments is ${(indexBytes / 1048576).toFixed(1)} MiB gzipped (${Math.round(indexBytes / N)} bytes a segment)`);
    // A sidecar with a store of its own (empty) that prunes the bucket it is asked to.
    s = await startSidecar(['--store', path.join(root, 'own')], { fast: false, allowedTargets: [url], env: { ...gw.env, ...RETENTION } });
    await measure('S3 (VersityGW)', s, { target: url }, setupMs);
  } finally {
    target.close();
    await s?.stop();
    await gw.close();
    rmSync(root, { recursive: true, force: true });
  }
}

export async function benchPrune(): Promise<void> {
  const only = process.env.DBK_BENCH_PRUNE_ONLY;
  if (only !== 's3') await local();
  if (only !== 'local') await s3();
}
