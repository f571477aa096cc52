/**
 * Snapshots between real sidecars: a cluster sidecar (a Coordinator, no cache) snapshots to a target sidecar's store
 * over the http target; the target prunes its own store by its druid.backup.retention.*, dry run first; the CLI
 * shows the same. The Coordinator is a real HTTP server in the test answering as Druid 33 does.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Job, RestorePlan } from '../../sidecar/api.js';
import { HttpTarget } from '../../sidecar/store/http/target.js';
import type { PruneResult } from '../../sidecar/snapshot/prune.js';
import type { SnapshotSummary } from '../../sidecar/snapshot/service.js';
import { runCli } from '../helpers/cli.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { newToken, startSidecar, tmpDir, waitFor } from '../helpers/sidecar.js';
import { coordinator, idOf, seg } from '../helpers/snapshots.js';

describe('snapshots to a target sidecar', () => {
  let target: SidecarProcess;
  let cluster: SidecarProcess;
  let c: Awaited<ReturnType<typeof coordinator>>;
  const token = newToken();

  const job = async (s: SidecarProcess, path: string, body: unknown): Promise<Job> => {
    const r = await s.request<{ jobId: string }>('POST', path, body);
    assert.equal(r.status, 202, r.text);
    return waitFor(`job ${r.json.jobId}`, async () => {
      const j = await s.get<Job>(`/data/v1/jobs/${r.json.jobId}`);
      return j.state === 'running' || j.state === 'queued' ? undefined : j;
    }).catch((e: Error) => {
      throw new Error(`${e.message}\n${s.logs().slice(-3000)}`);
    });
  };

  before(async () => {
    c = await coordinator();
    target = await startSidecar(['--store', tmpDir('dbk-snapstore-')], {
      token,
      env: { DRUID_BACKUP_RETENTION_KEEP_LAST: '1', DRUID_BACKUP_RETENTION_GRACE_PERIOD: 'PT0S' },
    });
    // Until the cluster mode (a Coordinator, no cache) lands, the snapshotting sidecar keeps a store of its own too.
    cluster = await startSidecar(['--coordinator', c.url, '--target', target.url, '--store', tmpDir('dbk-snapown-')], { token });
  });
  after(async () => {
    await cluster?.stop();
    await target?.stop();
    c?.close();
  });

  test('snapshot, compaction, snapshot, prune dry run then real: the store then holds what Druid uses', async () => {
    const http = new HttpTarget(target.url, { token });
    for (const d of [1, 2]) await http.put(seg(d, 'v1'));
    c.used.push({ day: 1, version: 'v1' }, { day: 2, version: 'v1' });
    const first = await job(cluster, '/data/v1/snapshots', {});
    assert.equal(first.state, 'succeeded', JSON.stringify(first.errors));
    const s1 = (first.result as { snapshot: string }).snapshot;
    // Compaction: v2 replaces v1.
    for (const d of [1, 2]) await http.put(seg(d, 'v2'));
    c.used.splice(0, 2, { day: 1, version: 'v2' }, { day: 2, version: 'v2' });
    const second = await job(cluster, '/data/v1/snapshots', {});
    const s2 = (second.result as { snapshot: string }).snapshot;
    const list = await cluster.get<{ snapshots: SnapshotSummary[] }>('/data/v1/snapshots');
    assert.deepEqual(
      list.snapshots.map((s) => [s.id, s.complete, s.targets[0]]),
      [
        [s2, true, target.url],
        [s1, true, target.url],
      ],
    );
    assert.equal(list.snapshots[0]!.targets.length, 2, 'in the target sidecar and in its own store');
    // The CLI prints the same.
    const shown = await runCli(['snapshot', 'show', s1, '--node', cluster.url, '--token', token]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /2 segments.*complete/);
    const bad = await runCli(['snapshot', 'show', '../etc', '--node', cluster.url, '--token', token]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /is not of the form/);
    // A restore from the older snapshot would bring back exactly its two segments, the old versions.
    const into = tmpDir('dbk-snaprestore-');
    const before = await cluster.request<RestorePlan>('POST', '/data/v1/restore', { snapshot: s1, target: target.url, destination: into, dryRun: true });
    assert.equal(before.status, 200, before.text);
    assert.deepEqual(before.json.segments.map((x) => x.segmentId).sort(), [idOf(1, 'v1'), idOf(2, 'v1')]);
    assert.deepEqual(before.json.snapshot, { id: s1, missing: [] });
    // Dry run: the older snapshot and the old versions would go, each with its reason; nothing goes.
    const dry = await job(target, '/data/v1/store/prune', { dryRun: true });
    const plan = dry.result as unknown as PruneResult;
    assert.deepEqual(
      plan.snapshots.map((s) => [s.id, s.keep]),
      [
        [s2, true],
        [s1, false],
      ],
    );
    assert.deepEqual(plan.remove.map((r) => r.segmentId).sort(), [idOf(1, 'v1'), idOf(2, 'v1')]);
    assert.equal((await http.stats()).segments, 4);
    // The target's list says the same of each snapshot, by the policy it prunes with: s2 kept until the next
    // snapshot (at the cadence so far, the gap between the two), s1 not kept.
    const judged = (await target.get<{ snapshots: SnapshotSummary[] }>('/data/v1/snapshots')).snapshots;
    const r2 = judged.find((s) => s.id === s2)!.retention!;
    assert.deepEqual([r2.keep, r2.reasons, r2.policy], [true, ['newest', 'last 1 of 1'], 'keepLast=1']);
    const gap = Date.parse(list.snapshots[0]!.time) - Date.parse(list.snapshots[1]!.time);
    assert.ok(gap > 0 && r2.cadenceMs === gap, `the cadence is the gap between the two snapshots (${gap} ms, ${r2.cadenceMs})`);
    assert.ok(Date.parse(r2.until!) >= Date.parse(list.snapshots[0]!.time) + gap, r2.until);
    const r1 = judged.find((s) => s.id === s1)!.retention!;
    assert.equal(r1.keep, false);
    assert.equal(r1.until, undefined);
    assert.match(r1.reasons[0]!, /no rule keeps it \(keepLast=1\)/);
    // Pinned, the older snapshot keeps its segments.
    assert.equal((await cluster.request('PUT', `/data/v1/snapshots/${s1}/pin`, { reason: 'test' })).status, 200);
    const pinnedPlan = (await job(target, '/data/v1/store/prune', { dryRun: true })).result as unknown as PruneResult;
    assert.equal(pinnedPlan.remove.length, 0);
    const pinned = (await target.get<{ snapshots: SnapshotSummary[] }>('/data/v1/snapshots')).snapshots.find((s) => s.id === s1)!.retention!;
    assert.deepEqual([pinned.keep, pinned.reasons, pinned.until], [true, ['pinned'], undefined], 'pinned: kept, never let go');
    assert.equal((await cluster.request('DELETE', `/data/v1/snapshots/${s1}/pin`)).status, 200);
    // The storage overhead before: 4 segments stored, Druid uses 2 of the same size.
    const measured = await waitFor(
      'the retention figures',
      async () => (await target.get<{ retention?: { overhead?: number } }>('/data/v1/store/stats')).retention,
    );
    assert.equal(measured.overhead, 2);
    // The CLI's prune through the target sidecar, for real.
    const pruned = await runCli(['prune', '--target', target.url, '--token', token]);
    assert.equal(pruned.code, 0, pruned.stderr);
    assert.match(pruned.stdout, /removed 1 snapshot\(s\), 2 segment\(s\)/);
    assert.equal((await http.stats()).segments, 2);
    const stats = await target.get<{ retention: { overhead: number; prunable: number; usedByLatest: number; stored: number } }>('/data/v1/store/stats');
    assert.equal(stats.retention.overhead, 1, 'the store now holds only what Druid uses');
    assert.equal(stats.retention.prunable, 0);
    assert.equal(stats.retention.usedByLatest, stats.retention.stored);
    const metrics = (await target.request('GET', '/metrics')).text;
    assert.match(metrics, /druid_backup_store_overhead_ratio 1\b/);
    assert.match(metrics, /druid_backup_store_retention_bytes\{kind="prunable"\} 0/);
    const after = await cluster.get<{ snapshots: SnapshotSummary[] }>('/data/v1/snapshots');
    assert.deepEqual(
      after.snapshots.map((s) => [s.id, s.targets.includes(target.url)]),
      [
        [s2, true],
        [s1, false],
      ],
    );
    // The older snapshot is still in the cluster sidecar's own store, but its segments are gone: named, and refused.
    const named = await cluster.request<RestorePlan>('POST', '/data/v1/restore', { snapshot: s1, target: target.url, destination: into, dryRun: true });
    assert.equal(named.status, 200, named.text);
    assert.equal(named.json.segments.length, 0);
    assert.deepEqual(named.json.snapshot!.missing.map((m) => m.segmentId).sort(), [idOf(1, 'v1'), idOf(2, 'v1')]);
    assert.match(named.json.snapshot!.missing[0]!.reason, /retention removed it/);
    const refused = await cluster.request('POST', '/data/v1/restore', { snapshot: s1, target: target.url, destination: into });
    assert.equal(refused.status, 409);
    assert.match(refused.text, /names 2 segment\(s\) no target holds/);
    // The newest restores, exactly its segments.
    const restored = await job(cluster, '/data/v1/restore', { snapshot: s2, target: target.url, destination: into });
    assert.equal(restored.state, 'succeeded', JSON.stringify(restored.errors));
    assert.equal(restored.progress.segmentsDone, 2);
    // Forgotten everywhere, the older snapshot is gone and says so.
    assert.equal((await cluster.request('DELETE', `/data/v1/snapshots/${s1}`)).status, 200);
    const gone = await cluster.request('GET', `/data/v1/snapshots/${s1}`);
    assert.equal(gone.status, 404);
    assert.match(gone.text, /retention may have removed it/);
    const cli = await runCli([
      'restore',
      '--node',
      cluster.url,
      '--token',
      token,
      '--snapshot',
      s1,
      '--target',
      target.url,
      '--destination',
      into,
      '--dry-run',
    ]);
    assert.notEqual(cli.code, 0);
    assert.match(cli.stderr, new RegExp(`snapshot ${s1} is in none of this sidecar's targets: retention may have removed it`));
    http.close();
  });

  test('hostile requests to the store: a bad id, a blob whose bytes are not its name, a header naming a missing blob', async () => {
    assert.equal((await target.request('GET', '/data/v1/store/snapshots/..%2F..%2Fetc')).status, 400);
    const wrong = await target.request('PUT', `/data/v1/store/snapshots/blobs/${'a'.repeat(64)}`, undefined, {
      raw: Buffer.from('not a'),
      headers: { 'content-type': 'application/octet-stream' },
    });
    assert.equal(wrong.status, 422);
    const header = {
      formatVersion: 1,
      id: '20260101T000000Z-00000001',
      time: '2026-01-01T00:00:00.000Z',
      node: 'x',
      dataSources: [],
      segments: 0,
      bytes: 0,
      complete: true,
      metadata: 'b'.repeat(64),
    };
    const missing = await target.request('PUT', `/data/v1/store/snapshots/${header.id}`, header);
    assert.equal(missing.status, 409);
    assert.match(missing.text, /does not hold/);
    const other = await target.request('PUT', '/data/v1/store/snapshots/20260101T000000Z-00000002', header);
    assert.equal(other.status, 400);
  });
});
