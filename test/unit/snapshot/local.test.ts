/** Snapshots and prune on a real local store (the scenario of test/helpers/snapshots.ts, and the local store's own cases). */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, unlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { segmentPath } from '../../../sidecar/store/local/layout.js';
import { LocalStore } from '../../../sidecar/store/local/store.js';
import { LISTED_REMOVALS, REMOVE_BATCH, prune } from '../../../sidecar/snapshot/prune.js';
import { takeSnapshot } from '../../../sidecar/snapshot/take.js';
import { bigCoordinator, upTo, writeLocalSegments } from '../../helpers/bigStore.js';
import { compactionScenario, coordinator, idOf, log, metadata, seg } from '../../helpers/snapshots.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'dbk-snap-'));

test('snapshot, compaction, snapshot again, prune keepLast=1: the local store then holds only what Druid uses', async () => {
  await compactionScenario(LocalStore.open(tmp(), { log }));
});

test('prune keeps pinned snapshots, what nodes report holding, the grace period, and defers while a snapshot is being written', async () => {
  const c = await coordinator();
  try {
    const root = tmp();
    const store = LocalStore.open(root, { log });
    for (const d of [1, 2, 3]) await store.put(seg(d, 'v1'));
    c.used.push({ day: 1, version: 'v1' });
    const a = await takeSnapshot({ coordinator: c.url, catalogs: [store], targets: [store], node: 'cluster', captureMetadata: metadata, log });
    c.used.splice(0, 1, { day: 2, version: 'v1' });
    await takeSnapshot({ coordinator: c.url, catalogs: [store], targets: [store], node: 'cluster', captureMetadata: metadata, log });
    await store.snapshots.setPin(a.header.id, { at: new Date().toISOString(), reason: 'before the upgrade' });
    await store.snapshots.putHoldings({ node: 'h1', at: new Date().toISOString(), segmentIds: [idOf(3, 'v1')] });
    // A grace period keeps everything recently stored.
    const graced = await prune(store, { policy: { keepLast: 1, gracePeriodMs: 3600_000 }, dryRun: true, owner: 't', log });
    assert.equal(graced.remove.length, 0);
    const plan = await prune(store, { policy: { keepLast: 1, gracePeriodMs: 0 }, dryRun: true, owner: 't', log });
    assert.deepEqual(
      plan.snapshots.map((s) => s.reasons[0]),
      ['newest', 'pinned'],
    );
    assert.equal(plan.remove.length, 0, 'day 1 is named by the pinned snapshot, day 2 by the newest, day 3 held by h1');
    assert.deepEqual(plan.kept, { byLatestSnapshot: 1, bySnapshots: 1, byNodes: 1, byGracePeriod: 0 });
    // Unpinned and no longer held: both go, unless a snapshot is being written.
    await store.snapshots.setPin(a.header.id, undefined);
    await store.snapshots.putHoldings({ node: 'h1', at: new Date().toISOString(), segmentIds: [] });
    await store.snapshots.putWriting('20991231T000000Z-00000000', new Date(Date.now() + 60_000).toISOString());
    const deferred = await prune(store, { policy: { keepLast: 1, gracePeriodMs: 0 }, owner: 't', log });
    assert.match(deferred.deferred ?? '', /being written/);
    assert.equal(deferred.removed.segments, 0);
    assert.equal(deferred.removed.snapshots, 1);
    await store.snapshots.deleteWriting('20991231T000000Z-00000000');
    const swept = await prune(store, { policy: { keepLast: 1, gracePeriodMs: 0 }, owner: 't', log });
    assert.equal(swept.removed.segments, 2);
  } finally {
    c.close();
  }
});

test('a prune killed after a manifest went leaves an invisible orphan that the next prune removes; the lease keeps a second pruner out', async () => {
  const root = tmp();
  const store = LocalStore.open(root, { log });
  await store.put(seg(1, 'v1'));
  await store.put(seg(2, 'v1'));
  const dir = path.join(root, segmentPath('demo', idOf(1, 'v1')));
  unlinkSync(path.join(dir, 'manifest.json'));
  const reopened = LocalStore.open(root, { log });
  assert.equal((await reopened.stats()).segments, 1, 'a segment without its manifest is invisible');
  assert.equal(await reopened.snapshots.acquireLease('other', 60_000), true);
  await assert.rejects(prune(reopened, { policy: { gracePeriodMs: 0 }, owner: 't', log }), /another prune .* holds its lease \(other/);
  // An expired lease does not block the next pruner.
  await reopened.snapshots.releaseLease('other');
  assert.equal(await reopened.snapshots.acquireLease('dead', -1), true);
  const r = await prune(reopened, { policy: { gracePeriodMs: 0 }, owner: 't', log });
  assert.equal(r.removed.orphans, 1);
  assert.equal(existsSync(dir), false);
  assert.equal(r.removed.segments, 0, 'a store without any snapshot is never pruned of segments');
  assert.match(r.deferred ?? '', /no snapshot/);
  assert.deepEqual(
    readdirSync(path.join(root, 'prune')).filter((n) => n.startsWith('lease')),
    [],
  );
});

test('hostile store contents: a header naming another id, a damaged blob, a bad id are refused with a clear error', async () => {
  const root = tmp();
  const store = LocalStore.open(root, { log });
  await assert.rejects(store.snapshots.getHeader('../../etc/passwd'), /is not of the form/);
  await assert.rejects(store.snapshots.getBlob('../x', 10), /not a sha256/);
  const { writeFileSync, mkdirSync } = await import('node:fs');
  mkdirSync(path.join(root, 'snapshots/blobs'), { recursive: true });
  writeFileSync(path.join(root, 'snapshots/20260101T000000Z-0000000a.json'), JSON.stringify({ formatVersion: 1, id: '20260101T000000Z-0000000b' }));
  await assert.rejects(store.snapshots.getHeader('20260101T000000Z-0000000a'), /names another id/);
  writeFileSync(path.join(root, 'snapshots/blobs', 'a'.repeat(64)), 'not that');
  await assert.rejects(store.snapshots.getBlob('a'.repeat(64), 100), /damaged/);
  await assert.rejects(store.snapshots.putBlob('b'.repeat(64), Buffer.from('x')), /another sha256/);
});

test('prune of more segments than the plan lists removes them all, in batches read back from its spool', async () => {
  // 1,075 to remove: more than the plan lists (LISTED_REMOVALS) and not a whole number of batches.
  const n = 1_150;
  const keptFrom = 1_075;
  const root = tmp();
  writeLocalSegments(root, 0, n);
  const store = LocalStore.open(root, { log });
  const c = await bigCoordinator(() => upTo(n, keptFrom));
  try {
    await takeSnapshot({ coordinator: c.url, catalogs: [store], targets: [store], node: 'cluster', captureMetadata: metadata, log });
  } finally {
    c.close();
  }
  const policy = { keepLast: 1, gracePeriodMs: 0 };
  const plan = await prune(store, { policy, dryRun: true, owner: 't', log });
  assert.equal(plan.removeCount, keptFrom);
  assert.equal(plan.remove.length, LISTED_REMOVALS);
  let batches = 0;
  const r = await prune(store, { policy, owner: 't', log, onStep: (s) => void (s === 'segment' && batches++) });
  assert.equal(r.removed.segments, keptFrom, 'every segment the plan counts is removed, not only those it lists');
  assert.equal(batches, Math.ceil(keptFrom / REMOVE_BATCH));
  assert.equal((await LocalStore.open(root, { log }).stats()).segments, n - keptFrom);
});
