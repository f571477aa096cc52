/**
 * Snapshots and prune on a real local store, with a real HTTP server answering like a Druid 33 Coordinator
 * (`/druid/coordinator/v1/metadata/segments?includeOvershadowedStatus&includeRealtimeSegments`, shapes from
 * /work/shared/notes/druid-metadata.md).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, unlinkSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import pino from 'pino';
import { segmentPath } from '../../../sidecar/store/local/layout.js';
import { LocalStore } from '../../../sidecar/store/local/store.js';
import type { OutgoingSegment } from '../../../sidecar/store/target.js';
import { prune } from '../../../sidecar/snapshot/prune.js';
import { takeSnapshot } from '../../../sidecar/snapshot/take.js';
import type { ClusterMetadata } from '../../../sidecar/snapshot/model.js';
import { parseListBlob } from '../../../sidecar/snapshot/check.js';

const log = pino({ level: 'silent' });
const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'dbk-snap-'));

function descriptor(day: number, version: string) {
  const d = (n: number) => `2024-01-0${n}T00:00:00.000Z`;
  return {
    dataSource: 'demo',
    interval: `${d(day)}/${d(day + 1)}`,
    version,
    loadSpec: { type: 'local', path: `/var/druid/segments/demo/${day}/${version}/0/index/` },
    dimensions: 'page,user',
    metrics: 'count',
    shardSpec: { type: 'numbered', partitionNum: 0, partitions: 1 },
    binaryVersion: 9,
    size: 100 + day,
    identifier: `demo_${d(day)}_${d(day + 1)}_${version}`,
  };
}
const idOf = (day: number, version: string) => descriptor(day, version).identifier;

function seg(day: number, version: string, node = 'h1'): OutgoingSegment {
  const b = Buffer.from(`segment ${day} ${version}`);
  const v = Buffer.from([0, 0, 0, 9]);
  return {
    segmentId: idOf(day, version),
    descriptor: descriptor(day, version),
    node,
    files: [
      { name: 'version.bin', size: 4, open: () => Readable.from([v]) },
      { name: '00000.smoosh', size: b.length, open: () => Readable.from([b]) },
    ],
  };
}

/** A Coordinator answering the used segments as Druid 33 does, from a list the test changes. */
async function coordinator(): Promise<{ url: string; used: Array<{ day: number; version: string; overshadowed?: boolean }>; close(): void; asked: string[] }> {
  const state = { used: [] as Array<{ day: number; version: string; overshadowed?: boolean }>, asked: [] as string[] };
  const server = http.createServer((req, res) => {
    state.asked.push(req.url ?? '');
    if (!req.url?.startsWith('/druid/coordinator/v1/metadata/segments?includeOvershadowedStatus&includeRealtimeSegments')) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    // Written in small pieces, as a large answer arrives.
    const text = JSON.stringify(
      state.used.map((u) => ({ overshadowed: u.overshadowed ?? false, replicationFactor: 1, numRows: null, realtime: false, ...descriptor(u.day, u.version) })).concat([
        { overshadowed: false, replicationFactor: 0, numRows: null, realtime: true, ...descriptor(9 - 1, 'rt') },
      ]),
    );
    for (let i = 0; i < text.length; i += 37) res.write(text.slice(i, i + 37));
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, ...state, close: () => server.close() } as never;
}

const metadata = async (): Promise<ClusterMetadata> => ({ druidVersion: '33.0.0', rules: { _default: [{ type: 'loadForever' }] }, offsets: { captured: false, reason: 'no extension' }, redacted: [] });

test('snapshot, compaction, snapshot again, prune keepLast=1: the store then holds only what Druid uses', async () => {
  const c = await coordinator();
  try {
    const store = LocalStore.open(tmp(), { log });
    const take = () => takeSnapshot({ coordinator: c.url, catalogs: [store], targets: [store], node: 'cluster', captureMetadata: metadata, log });
    for (const d of [1, 2, 3]) await store.put(seg(d, 'v1'));
    c.used.push(...[1, 2, 3].map((day) => ({ day, version: 'v1' })), { day: 4, version: 'v1' });
    const s1 = await take();
    assert.equal(s1.header.segments, 4);
    assert.equal(s1.header.complete, false, 'day 4 is used but no target holds it');
    const list1 = parseListBlob(await store.snapshots.getBlob(s1.header.dataSources[0]!.list, 1e6), 'demo', 's1');
    assert.deepEqual(list1.map((s) => [s.id.slice(5, 15), s.backedUp, s.missing]), [
      ['2024-01-01', true, undefined],
      ['2024-01-02', true, undefined],
      ['2024-01-03', true, undefined],
      ['2024-01-04', false, 'pending'],
    ]);
    assert.deepEqual(list1[0]!.descriptor, descriptor(1, 'v1'), 'the descriptor as the Coordinator sent it');
    assert.ok(!c.asked.some((u) => u.includes('rt')));
    // An identical snapshot costs one header: both its blobs were there.
    const same = await take();
    assert.equal(same.reused, 2);
    assert.equal(same.header.dataSources[0]!.list, s1.header.dataSources[0]!.list);
    // Compaction: v2 of days 1-3; the old versions stay used but overshadowed for a while, then go.
    for (const d of [1, 2, 3]) await store.put(seg(d, 'v2'));
    c.used.splice(0, c.used.length, ...[1, 2, 3].map((day) => ({ day, version: 'v2' })), ...[1, 2, 3].map((day) => ({ day, version: 'v1', overshadowed: true })));
    const mid = await take();
    assert.equal(parseListBlob(await store.snapshots.getBlob(mid.header.dataSources[0]!.list, 1e6), 'demo', 'mid').filter((s) => s.overshadowed).length, 3);
    c.used.splice(0, c.used.length, ...[1, 2, 3].map((day) => ({ day, version: 'v2' })));
    const s2 = await take();
    assert.equal(s2.header.complete, true);
    const policy = { keepLast: 1, gracePeriodMs: 0 };
    const dry = await prune(store, { policy, dryRun: true, owner: 't', log });
    assert.deepEqual(dry.snapshots.map((s) => [s.id, s.keep]), [
      [s2.header.id, true],
      [mid.header.id, false],
      [same.header.id, false],
      [s1.header.id, false],
    ]);
    assert.deepEqual(dry.remove.map((r) => r.segmentId).sort(), [1, 2, 3].map((d) => idOf(d, 'v1')));
    assert.match(dry.remove[0]!.reason, /no kept snapshot names it/);
    assert.equal(dry.bytes.stored, dry.bytes.usedByLatest + dry.bytes.prunable);
    assert.equal((await store.stats()).segments, 6, 'a dry run removes nothing');
    assert.equal((await store.snapshots.listSnapshots()).length, 4);
    const done = await prune(store, { policy, owner: 't', log });
    assert.deepEqual(done.removed, { snapshots: 3, segments: 3, bytes: dry.bytes.prunable, orphans: 0, blobs: 2 });
    assert.deepEqual(await store.snapshots.listSnapshots(), [s2.header.id]);
    const left: string[] = [];
    for await (const m of store.list()) left.push(m.segmentId);
    assert.deepEqual(left, [1, 2, 3].map((d) => idOf(d, 'v2')));
    // The kept snapshot's blobs are all still there and sound.
    for (const b of [s2.header.metadata, s2.header.dataSources[0]!.list]) await store.snapshots.getBlob(b, 1e6);
    // Idempotent: a second run has nothing to do.
    assert.deepEqual((await prune(store, { policy, owner: 't', log })).removed, { snapshots: 0, segments: 0, bytes: 0, orphans: 0, blobs: 0 });
  } finally {
    c.close();
  }
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
    assert.deepEqual(plan.snapshots.map((s) => s.reasons[0]), ['newest', 'pinned']);
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
  assert.deepEqual(readdirSync(path.join(root, 'prune')).filter((n) => n.startsWith('lease')), []);
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
