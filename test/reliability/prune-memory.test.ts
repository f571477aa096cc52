/**
 * A prune over many segments in bounded memory (issue 21): a target sidecar whose V8 heap holds its catalog and
 * little more prunes a local store of 50,000 segments, 90 % of them prunable (one snapshot names the last tenth;
 * keepLast=1, gracePeriod PT0S). A prune that held its removals, its plan or whole manifests would run out of heap
 * and die; the bounded one finishes. No timing threshold: the heap limit is the measure (DBK_PRUNE_HEAP_MIB and
 * DBK_PRUNE_SEGMENTS change it, to find where a build fails). Then the store is checked from its files: exactly the
 * prunable segments are gone, nothing of them is left, and each kept one is whole, its bytes what was written.
 *
 * The heap is what loading the catalog of 50,000 segments needs, with a little room: with 64 MiB the sidecar dies
 * while it starts, before any prune. Measured (2026-12, loaded machine), 80 MiB: this build prunes in 152 s with a
 * plan of 8.8 s and a peak RSS of 166 MiB; the build from before the plan read the catalog in place (it read and
 * parsed every manifest) also finishes, with a plan of 36.7 s spent in GC and a peak RSS of 173 MiB: what the prune
 * holds was already small, and the peak RSS of an unlimited heap is V8 collecting garbage late (bench/prune.ts prints the split).
 *
 * The same for a bucket (VersityGW): a sidecar with a 64 MiB heap and an empty store of its own prunes a bucket of
 * 20,000 segments (DBK_PRUNE_S3_SEGMENTS) with no catalog index yet, so it reads every manifest and writes the
 * index itself. The object catalog holds the index compressed and a page of manifests at a time; the build before
 * it held every manifest parsed (about 10 KB of heap each: 200 MB here) and dies with this heap.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import pino from 'pino';
import type { Job, JobAccepted } from '../../sidecar/api.js';
import { NODE_FLAGS } from '../../sidecar/runtime.js';
import type { PruneResult } from '../../sidecar/snapshot/prune.js';
import { segmentPath } from '../../sidecar/store/local/layout.js';
import { LocalStore } from '../../sidecar/store/local/store.js';
import { MANIFEST_NAME } from '../../sidecar/store/manifest.js';
import { S3Target } from '../../sidecar/store/s3/target.js';
import { BIG_DS, bigId, bigSegment, snapshotLastTenth, upTo, writeBucketSegments, writeLocalSegments } from '../helpers/bigStore.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { startSidecar, tmpDir } from '../helpers/sidecar.js';
import { requireVersityGw, startVersityGw } from '../helpers/versitygw.js';

const N = Number(process.env.DBK_PRUNE_SEGMENTS ?? 50_000);
const KEPT_FROM = N - N / 10;
const HEAP_MIB = Number(process.env.DBK_PRUNE_HEAP_MIB ?? 80);
const log = pino({ level: 'silent' });
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function hwmMiB(p: SidecarProcess): number {
  return Math.round(Number(/^VmHWM:\s+(\d+)/m.exec(readFileSync(`/proc/${p.proc.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024);
}

/** The job's end, or a failure naming how the sidecar died (out of heap: SIGABRT), as soon as it does. */
async function job(s: SidecarProcess, body: Record<string, unknown>): Promise<Job> {
  const died = new Promise<never>((_, reject) =>
    s.proc.once('exit', (code, signal) => reject(new Error(`the sidecar died (${signal ?? code}):\n${s.logs().slice(-1500)}`))),
  );
  died.catch(() => undefined);
  const r = await s.request<JobAccepted>('POST', '/data/v1/store/prune', body);
  assert.equal(r.status, 202, r.text);
  return Promise.race([s.waitForJob(r.json.jobId, 1_800_000), died]);
}

describe('a prune over many segments in bounded memory', { timeout: 2_400_000 }, () => {
  const dir = tmpDir('dbk-mem-prune-');
  let s: SidecarProcess | undefined;
  after(async () => {
    await s?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test(`a prune of ${N.toLocaleString('en')} segments, 90 % prunable, with a ${HEAP_MIB} MiB heap`, async () => {
    const store = path.join(dir, 'store');
    writeLocalSegments(store, 0, N);
    await snapshotLastTenth(N, KEPT_FROM, LocalStore.open(store, { log }));
    s = await startSidecar(['--store', store], {
      nodeFlags: [...NODE_FLAGS, `--max-old-space-size=${HEAP_MIB}`],
      timeoutMs: 300_000,
      env: { DRUID_BACKUP_RETENTION_KEEP_LAST: '1', DRUID_BACKUP_RETENTION_GRACE_PERIOD: 'PT0S' },
    });
    const loaded = hwmMiB(s);
    const j = await job(s, {});
    assert.equal(j.state, 'succeeded', `${JSON.stringify(j.errors)}\n${s.logs().slice(-2000)}`);
    const r = j.result as unknown as PruneResult;
    assert.equal(r.removeCount, KEPT_FROM);
    assert.equal(r.removed.segments, KEPT_FROM);
    assert.equal(r.deferred, undefined);
    console.log(JSON.stringify({ pruneBoundedMemory: { segments: N, removed: r.removed.segments, heapMiB: HEAP_MIB, peakRssMiB: { loaded, pruned: hwmMiB(s) } } }));
    await s.stop();
    s = undefined;

    // From the files: the data source's directories are exactly the kept segments', each whole.
    const dsDir = path.join(store, path.dirname(segmentPath(BIG_DS, bigId(0))));
    const want = [...upTo(N, KEPT_FROM)].map((i) => path.basename(segmentPath(BIG_DS, bigId(i)))).sort();
    assert.deepEqual(
      readdirSync(dsDir)
        .filter((n) => !n.startsWith('.'))
        .sort(),
      want,
    );
    for (const i of upTo(N, KEPT_FROM)) {
      const seg = path.join(store, segmentPath(BIG_DS, bigId(i)));
      const m = JSON.parse(readFileSync(path.join(seg, MANIFEST_NAME), 'utf8')) as { segmentId: string; files: Array<{ name: string; size: number; sha256: string }> };
      assert.equal(m.segmentId, bigId(i));
      const smoosh = readFileSync(path.join(seg, '00000.smoosh'));
      assert.equal(smoosh.toString(), `segment ${i} of ${BIG_DS}\n`);
      for (const f of m.files) {
        const b = readFileSync(path.join(seg, f.name));
        assert.equal(b.length, f.size, `${bigId(i)}/${f.name}`);
        assert.equal(sha(b), f.sha256, `${bigId(i)}/${f.name}`);
      }
    }
    for (const i of [0, 1, KEPT_FROM / 2, KEPT_FROM - 1]) assert.equal(existsSync(path.join(store, segmentPath(BIG_DS, bigId(i)))), false);
    // The store opens to exactly the kept segments, and the snapshot is still whole.
    const reopened = LocalStore.open(store, { log });
    assert.equal((await reopened.stats()).segments, N - KEPT_FROM);
    assert.equal(reopened.issues.length, 0, JSON.stringify(reopened.issues.slice(0, 5)));
    assert.equal((await reopened.snapshots.listSnapshots()).length, 1);
  });
});

const N_S3 = Number(process.env.DBK_PRUNE_S3_SEGMENTS ?? 20_000);
const KEPT_FROM_S3 = N_S3 - N_S3 / 10;
const HEAP_S3_MIB = Number(process.env.DBK_PRUNE_S3_HEAP_MIB ?? 64);

describe('a prune of a bucket in bounded memory', { timeout: 2_400_000 }, () => {
  const root = tmpDir('dbk-mem-prune-s3-');
  let s: SidecarProcess | undefined;
  const closers: Array<() => Promise<void> | void> = [];
  after(async () => {
    await s?.stop();
    for (const c of closers.reverse()) await c();
    rmSync(root, { recursive: true, force: true });
  });

  test(`a prune of a bucket of ${N_S3.toLocaleString('en')} segments, 90 % prunable, no index yet, with a ${HEAP_S3_MIB} MiB heap`, async () => {
    requireVersityGw();
    const gw = await startVersityGw({ rootParent: root });
    closers.push(() => gw.close());
    Object.assign(process.env, gw.env);
    await gw.createBucket('prune');
    const url = 's3://prune/m';
    const open = () => S3Target.open(url, { log, settings: { endpoint: gw.endpoint } });
    const t = open();
    closers.push(() => t.close());
    // One segment through the target's own put, the rest written as it leaves them (bigStore.ts).
    assert.equal((await t.put(bigSegment(0))).outcome, 'stored');
    writeBucketSegments(path.join(gw.root, 'prune'), 'm/', 1, N_S3);
    await snapshotLastTenth(N_S3, KEPT_FROM_S3, t);
    // No index: the sidecar reads every manifest and writes the index itself.
    const indexFile = path.join(gw.root, 'prune', 'm', 'catalog.json.gz');
    rmSync(indexFile);
    s = await startSidecar(['--store', path.join(root, 'own')], {
      nodeFlags: [...NODE_FLAGS, `--max-old-space-size=${HEAP_S3_MIB}`],
      allowedTargets: [url],
      timeoutMs: 300_000,
      env: { ...gw.env, DRUID_BACKUP_RETENTION_KEEP_LAST: '1', DRUID_BACKUP_RETENTION_GRACE_PERIOD: 'PT0S' },
    });
    const plan = await job(s, { target: url, dryRun: true });
    assert.equal(plan.state, 'succeeded', `${JSON.stringify(plan.errors)}\n${s.logs().slice(-2000)}`);
    assert.equal((plan.result as unknown as PruneResult).removeCount, KEPT_FROM_S3);
    const j = await job(s, { target: url });
    assert.equal(j.state, 'succeeded', `${JSON.stringify(j.errors)}\n${s.logs().slice(-2000)}`);
    const r = j.result as unknown as PruneResult;
    assert.equal(r.removed.segments, KEPT_FROM_S3);
    console.log(JSON.stringify({ pruneBucketBoundedMemory: { segments: N_S3, removed: r.removed.segments, heapMiB: HEAP_S3_MIB, peakRssMiB: hwmMiB(s) } }));
    await s.stop();
    s = undefined;

    // Through the S3 API: exactly the kept segments are listed, each with the bytes written.
    const fresh = open();
    closers.push(() => fresh.close());
    const ids: string[] = [];
    for await (const m of fresh.list()) ids.push(m.segmentId);
    assert.deepEqual(ids.sort(), [...upTo(N_S3, KEPT_FROM_S3)].map((i) => bigId(i)).sort());
    for (const i of [KEPT_FROM_S3, N_S3 - 1]) {
      const reader = await fresh.read(bigId(i));
      for await (const f of reader.files) {
        const parts: Buffer[] = [];
        for await (const c of f.chunks) parts.push(...(Buffer.isBuffer(c) ? [c] : c));
        if (f.name === '00000.smoosh') assert.equal(Buffer.concat(parts).toString(), `segment ${i} of ${BIG_DS}\n`);
      }
    }
    // The index, written again by that listing (the pruned manifests are no longer listed), names exactly the kept
    // segments, in key order.
    const lines = gunzipSync(readFileSync(indexFile)).toString('utf8').split('\n').filter(Boolean);
    assert.deepEqual(JSON.parse(lines[0]!), { formatVersion: 2 });
    const keys = lines.slice(1).map((l) => (JSON.parse(l.slice(0, l.indexOf('\t'))) as [string, string])[0]);
    assert.equal(keys.length, N_S3 - KEPT_FROM_S3);
    assert.deepEqual(keys, [...keys].sort());
  });
});
