/**
 * A snapshot over many segments in bounded memory (issue 21): the sidecar runs with a V8 heap far smaller than what
 * holding every used segment would take, so a taker that keeps the descriptors or a whole segment list runs out of
 * heap and dies, where the streaming one finishes. No timing threshold: the heap limit is the measure. A cluster
 * sidecar takes a snapshot of 50,000 used segments (a real HTTP Coordinator answering element by element,
 * test/helpers/bigStore.ts) with a 64 MiB heap.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { Job, JobAccepted } from '../../sidecar/api.js';
import { NODE_FLAGS } from '../../sidecar/runtime.js';
import type { SnapshotHeader } from '../../sidecar/snapshot/model.js';
import { bigCoordinator, upTo } from '../helpers/bigStore.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { startSidecar, tmpDir } from '../helpers/sidecar.js';

const heap = (mib: number) => [...NODE_FLAGS, `--max-old-space-size=${mib}`];

/** The job's end, or a failure naming how the sidecar died (out of heap: SIGABRT), as soon as it does. */
async function job(s: SidecarProcess, url: string, body: Record<string, unknown>): Promise<Job> {
  const died = new Promise<never>((_, reject) =>
    s.proc.once('exit', (code, signal) => reject(new Error(`the sidecar died (${signal ?? code}):\n${s.logs().slice(-1500)}`))),
  );
  died.catch(() => undefined);
  const r = await s.request<JobAccepted>('POST', url, body);
  assert.equal(r.status, 202, r.text);
  return Promise.race([s.waitForJob(r.json.jobId, 600_000), died]);
}

describe('bounded memory over many segments', { timeout: 600_000 }, () => {
  const running: SidecarProcess[] = [];
  const closers: Array<() => void> = [];
  after(async () => {
    for (const s of running) await s.stop();
    for (const c of closers) c();
  });

  test('a snapshot of 50,000 used segments with a 64 MiB heap', async () => {
    const N = 50_000;
    const c = await bigCoordinator(() => upTo(N));
    closers.push(c.close);
    const store = tmpDir('dbk-mem-snap-');
    const s = await startSidecar(['--coordinator', c.url, '--store', store], { nodeFlags: heap(64), timeoutMs: 120_000 });
    running.push(s);
    const j = await job(s, '/data/v1/snapshots', {});
    assert.equal(j.state, 'succeeded', `${JSON.stringify(j.errors)}\n${s.logs().slice(-2000)}`);
    const id = (j.result as { snapshot: string }).snapshot;
    const h = (await s.get<{ header: SnapshotHeader } & SnapshotHeader>(`/data/v1/snapshots/${id}`)) as unknown as Record<string, unknown>;
    const header = (h.header ?? h) as SnapshotHeader;
    assert.equal(header.segments, N);
    assert.equal(header.complete, false, 'its own store holds none of them');
  });
});
