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
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import pino from 'pino';
import type { Job, JobAccepted } from '../../sidecar/api.js';
import { NODE_FLAGS } from '../../sidecar/runtime.js';
import type { PruneResult } from '../../sidecar/snapshot/prune.js';
import { takeSnapshot } from '../../sidecar/snapshot/take.js';
import { segmentPath } from '../../sidecar/store/local/layout.js';
import { LocalStore } from '../../sidecar/store/local/store.js';
import { MANIFEST_NAME } from '../../sidecar/store/manifest.js';
import { BIG_DS, bigCoordinator, bigId, upTo, writeLocalSegments } from '../helpers/bigStore.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { startSidecar, tmpDir } from '../helpers/sidecar.js';

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
    {
      // The snapshot naming the last tenth, taken in this process (a Coordinator answering those as used).
      const c = await bigCoordinator(() => upTo(N, KEPT_FROM));
      try {
        const r = await takeSnapshot({
          coordinator: c.url,
          catalogs: [LocalStore.open(store, { log })],
          targets: [LocalStore.open(store, { log })],
          node: 'test',
          captureMetadata: async () => ({ offsets: { captured: false }, redacted: [] }),
          log,
        });
        assert.equal(r.header.segments, N - KEPT_FROM);
        assert.equal(r.header.complete, true);
      } finally {
        c.close();
      }
    }
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
