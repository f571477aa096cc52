/**
 * Snapshots and prune on a real target (a local store, a bucket), with a real HTTP server answering like a Druid 33
 * Coordinator (`/druid/coordinator/v1/metadata/segments?includeOvershadowedStatus&includeRealtimeSegments`, shapes
 * from /work/shared/notes/druid-metadata.md).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import pino from 'pino';
import type { OutgoingSegment, Target } from '../../sidecar/store/target.js';
import { prune } from '../../sidecar/snapshot/prune.js';
import { takeSnapshot } from '../../sidecar/snapshot/take.js';
import type { ClusterMetadata, SnapshotSegment } from '../../sidecar/snapshot/model.js';
import { readSegmentList } from '../../sidecar/snapshot/check.js';
import type { SnapshotStore } from '../../sidecar/snapshot/store.js';
import { encodeName } from '../../sidecar/store/object/layout.js';
import type { ObjectTarget } from '../../sidecar/store/object/target.js';

export const log = pino({ level: 'silent' });

export function descriptor(day: number, version: string) {
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
    // What the segment's files add up to (seg() below), as Druid's size does.
    size: 4 + Buffer.byteLength(`segment ${day} ${version}`),
    identifier: `demo_${d(day)}_${d(day + 1)}_${version}`,
  };
}
export const idOf = (day: number, version: string) => descriptor(day, version).identifier;

export function seg(day: number, version: string, node = 'h1'): OutgoingSegment {
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
export async function coordinator(): Promise<{
  url: string;
  used: Array<{ day: number; version: string; overshadowed?: boolean }>;
  close(): void;
  asked: string[];
}> {
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
      state.used
        .map((u) => ({ overshadowed: u.overshadowed ?? false, replicationFactor: 1, numRows: null, realtime: false, ...descriptor(u.day, u.version) }))
        .concat([{ overshadowed: false, replicationFactor: 0, numRows: null, realtime: true, ...descriptor(9 - 1, 'rt') }]),
    );
    for (let i = 0; i < text.length; i += 37) res.write(text.slice(i, i + 37));
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, ...state, close: () => server.close() } as never;
}

/** The segments of a list blob, read the one way the sidecar reads them (streamed and checked). */
export async function listOf(s: SnapshotStore, sha: string, dataSource = 'demo'): Promise<SnapshotSegment[]> {
  const out: SnapshotSegment[] = [];
  for await (const seg of readSegmentList(s, sha, dataSource, `list ${sha}`)) out.push(seg);
  return out;
}

export const metadata = async (): Promise<ClusterMetadata> => ({
  druidVersion: '33.0.0',
  rules: { _default: [{ type: 'loadForever' }] },
  offsets: { captured: false, reason: 'no extension' },
  redacted: [],
});

/** Snapshot, compaction, snapshot again, prune keepLast=1: the store then holds only what Druid uses. */
export async function compactionScenario(store: Target & { snapshots: SnapshotStore }): Promise<void> {
  const c = await coordinator();
  try {
    const take = () => takeSnapshot({ coordinator: c.url, catalogs: [store], targets: [store], node: 'cluster', captureMetadata: metadata, log });
    for (const d of [1, 2, 3]) await store.put(seg(d, 'v1'));
    c.used.push(...[1, 2, 3].map((day) => ({ day, version: 'v1' })), { day: 4, version: 'v1' });
    const s1 = await take();
    assert.equal(s1.header.segments, 4);
    assert.equal(s1.header.complete, false, 'day 4 is used but no target holds it');
    const list1 = await listOf(store.snapshots, s1.header.dataSources[0]!.list);
    assert.deepEqual(
      list1.map((s) => [s.id.slice(5, 15), s.backedUp, s.missing]),
      [
        ['2024-01-01', true, undefined],
        ['2024-01-02', true, undefined],
        ['2024-01-03', true, undefined],
        ['2024-01-04', false, 'pending'],
      ],
    );
    assert.deepEqual(list1[0]!.descriptor, descriptor(1, 'v1'), 'the descriptor as the Coordinator sent it');
    assert.ok(!c.asked.some((u) => u.includes('rt')));
    // An identical snapshot costs one header: both its blobs were there.
    const same = await take();
    assert.equal(same.reused, 2);
    assert.equal(same.header.dataSources[0]!.list, s1.header.dataSources[0]!.list);
    // Compaction: v2 of days 1-3; the old versions stay used but overshadowed for a while, then go.
    for (const d of [1, 2, 3]) await store.put(seg(d, 'v2'));
    c.used.splice(
      0,
      c.used.length,
      ...[1, 2, 3].map((day) => ({ day, version: 'v2' })),
      ...[1, 2, 3].map((day) => ({ day, version: 'v1', overshadowed: true })),
    );
    const mid = await take();
    assert.equal((await listOf(store.snapshots, mid.header.dataSources[0]!.list)).filter((s) => s.overshadowed).length, 3);
    c.used.splice(0, c.used.length, ...[1, 2, 3].map((day) => ({ day, version: 'v2' })));
    const s2 = await take();
    assert.equal(s2.header.complete, true);
    const policy = { keepLast: 1, gracePeriodMs: 0 };
    const dry = await prune(store, { policy, dryRun: true, owner: 't', log });
    assert.deepEqual(
      dry.snapshots.map((s) => [s.id, s.keep]),
      [
        [s2.header.id, true],
        [mid.header.id, false],
        [same.header.id, false],
        [s1.header.id, false],
      ],
    );
    assert.deepEqual(
      dry.remove.map((r) => r.segmentId).sort(),
      [1, 2, 3].map((d) => idOf(d, 'v1')),
    );
    assert.match(dry.remove[0]!.reason, /no kept snapshot names it/);
    assert.equal(dry.bytes.stored, dry.bytes.usedByLatest + dry.bytes.prunable);
    assert.equal((await store.stats()).segments, 6, 'a dry run removes nothing');
    assert.equal((await store.snapshots.listSnapshots()).length, 4);
    const done = await prune(store, { policy, owner: 't', log });
    assert.deepEqual(done.removed, { snapshots: 3, segments: 3, bytes: dry.bytes.prunable, orphans: 0, blobs: 2 });
    assert.deepEqual(await store.snapshots.listSnapshots(), [s2.header.id]);
    const left: string[] = [];
    for await (const m of store.list()) left.push(m.segmentId);
    assert.deepEqual(
      left,
      [1, 2, 3].map((d) => idOf(d, 'v2')),
    );
    // The kept snapshot's blobs are all still there and sound.
    for (const b of [s2.header.metadata, s2.header.dataSources[0]!.list]) await store.snapshots.getBlob(b, 1e6);
    // Idempotent: a second run has nothing to do.
    assert.deepEqual((await prune(store, { policy, owner: 't', log })).removed, { snapshots: 0, segments: 0, bytes: 0, orphans: 0, blobs: 0 });
  } finally {
    c.close();
  }
}

/**
 * A bucket's own cases, on any object store (S3, Azure): one lease holder at a time, renewal, release, an expired
 * lease taken over; a prune killed between a segment's manifest and its files (the record of the removal and the
 * files are there, the manifest is not) is finished by the next run. `open` opens the same place afresh (a new
 * process would); `keys` lists every key there.
 */
export async function leaseAndOrphanScenario(open: () => ObjectTarget & { snapshots: SnapshotStore }, keys: () => Promise<string[]>): Promise<void> {
  const t = open();
  assert.equal(await t.snapshots.acquireLease('a', 60_000), true);
  assert.equal(await t.snapshots.acquireLease('b', 60_000), false);
  assert.equal(await t.snapshots.acquireLease('a', 60_000), true, 'renewed by its owner');
  await t.snapshots.releaseLease('a');
  assert.equal(await t.snapshots.acquireLease('b', -1), true);
  assert.equal(await t.snapshots.acquireLease('c', 60_000), true, 'an expired lease is taken over');
  await t.snapshots.releaseLease('c');
  await t.put(seg(1, 'v1'));
  // Killed between the manifest and the files: written and removed here with the store's own primitives.
  const id = idOf(1, 'v1');
  const removing = `${t.layout.prefix}prune/removing/${encodeName(id)}`;
  assert.notEqual(await t.store.write(removing, '{}'), 'precondition-failed');
  await t.store.remove([t.layout.manifestKey(id)]);
  const r = await prune(open(), { policy: { gracePeriodMs: 0 }, owner: 'p', log });
  assert.equal(r.removed.orphans, 1);
  assert.deepEqual(
    (await keys()).filter((k) => k.includes('segments/') || k.includes('removing')),
    [],
  );
}
