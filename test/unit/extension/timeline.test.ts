/** The coverage timeline's model without VS Code: API answers → lanes (one per version) and cells with their state. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { NodeInfo, SegmentInfo, StoredSegment } from '../../../sidecar/api.js';
import { SEGMENT_GROUPING, STORED_GROUPING } from '../../../extension/cluster.js';
import { parseMessage } from '../../../extension/timeline/messages.js';
import { buildTimeline, type Cell, CELL_FIELDS, CELL_STATES, cellDetails, cellKey, isoInterval, segmentRef, toWire } from '../../../extension/timeline/model.js';
import { GroupedIndex } from '../../../extension/tree/index.js';
import type { NodeView } from '../../../extension/tree/rows.js';
import type { SnapshotSummary } from '../../../sidecar/snapshot/service.js';
import { day, segment, stored } from './fixtures.js';

const INFO: NodeInfo = {
  name: 'historical-1',
  version: '0.1.0',
  roles: ['source'],
  druid: { locations: [], layout: 'nested', deepStorage: { type: 'local', zip: false } },
  startedAt: '2024-06-01T00:00:00.000Z',
};

const source = (url: string, segs: SegmentInfo[]): NodeView => ({ url, info: INFO, segments: GroupedIndex.of(SEGMENT_GROUPING, segs) });
const target = (url: string, segs: StoredSegment[]): NodeView => ({
  url,
  info: { ...INFO, roles: ['target'] },
  stored: GroupedIndex.of(STORED_GROUPING, segs),
});

function withVersion(s: SegmentInfo, version: string): SegmentInfo {
  return { ...s, version, id: s.id.replace(s.version, version) };
}

const cellAt = (cells: Cell[], i: number) => cells.find((c) => c.interval === day(i))!;

test('one lane per version, newest first; one cell per interval, coloured by the worst of its segments', () => {
  const ok = segment('w', 0, 0, { backup: { state: 'backedUp', copies: 2, targets: ['http://t1', 'http://t2'] } });
  const ok1 = segment('w', 0, 1, { backup: { state: 'backedUp', copies: 1, targets: ['http://t1'] } });
  const pending = segment('w', 1, 0, { backup: { state: 'pending' } });
  const failed = segment('w', 2, 0, { backup: { state: 'failed', error: 'target down' } });
  const cacheOnly = segment('w', 3, 0, { backup: { state: 'none' } });
  const lost = segment('w', 4, 0, { state: 'missing', size: 0, files: [], backup: { state: 'none' } });
  const other = segment('kttm', 0);
  const lostStored = stored(segment('w', 4, 0));
  const onlyStored = stored(segment('w', 5, 0));
  const newer = withVersion(segment('w', 0, 0), '2024-05-02T00:00:00.000Z');
  const tl = buildTimeline(
    'w',
    [source('http://a', [ok, ok1, pending, failed, cacheOnly, lost, other, newer]), target('http://t1', [lostStored, onlyStored])],
    2,
  );
  assert.deepEqual(
    tl.lanes.map((l) => l.version),
    ['2024-05-02T00:00:00.000Z', '2024-05-01T00:00:00.000Z'],
  );
  const old = tl.lanes[1]!.cells;
  assert.deepEqual(
    old.map((c) => c.interval),
    [0, 1, 2, 3, 4, 5].map(day),
    'sorted by time',
  );
  assert.equal(cellAt(old, 0).state, 'overshadowed', 'day 0 of the older version is covered by the newer one');
  assert.equal(cellAt(old, 0).copies, 1, 'the fewest copies of its segments');
  assert.equal(cellAt(old, 0).segments.length, 2);
  assert.equal(cellAt(old, 1).state, 'pending');
  assert.equal(cellAt(old, 2).state, 'failed');
  assert.equal(cellAt(old, 2).segments[0]!.error, 'target down');
  assert.equal(cellAt(old, 3).state, 'cacheOnly');
  assert.equal(cellAt(old, 4).state, 'lost');
  assert.equal(cellAt(old, 4).copies, 1, 'the catalog of t1 holds it');
  assert.deepEqual(cellAt(old, 4).segments[0]!.targets, ['http://t1']);
  assert.equal(cellAt(old, 5).state, 'backupOnly');
  assert.equal(tl.lanes[0]!.cells[0]!.state, 'backedUp', 'the newer version');
  assert.equal(tl.segments, 8, 'kttm is not in the timeline of w');
  assert.equal(tl.start, Date.parse(day(0).split('/')[0]!));
  assert.equal(tl.end, Date.parse(day(5).split('/')[1]!));
  assert.deepEqual(
    Object.entries(tl.counts).filter(([, n]) => n),
    [
      ['lost', 1],
      ['failed', 1],
      ['cacheOnly', 1],
      ['pending', 1],
      ['overshadowed', 1],
      ['backupOnly', 1],
      ['backedUp', 1],
    ],
  );
  assert.equal(cellAt(old, 4).key, cellKey('2024-05-01T00:00:00.000Z', day(4)));
});

test('the compact form for the page: each cell as numbers, intervals only when not as Druid writes them, once; the segments of a cell on request', () => {
  // Written another way (no ms): sent as it is, so that the page shows it and keys its cell as the API has it.
  const noMs = (i: number) => day(i).replace(/\.000Z/g, 'Z');
  const older = [0, 1, 2].map((d) => segment('w', d, 0, { size: 100 + d, ...(d > 0 ? { interval: noMs(d) } : {}) }));
  const two = segment('w', 1, 1, { size: 7, interval: noMs(1), backup: { state: 'failed', error: 'down' } });
  const newer = { ...withVersion(segment('w', 1, 0), '2024-05-02T00:00:00.000Z'), interval: noMs(1) };
  const tl = buildTimeline('w', [source('http://a', [...older, two, newer])]);
  const wire = toWire(tl);
  assert.deepEqual(wire.states, CELL_STATES);
  assert.equal(wire.unit, 86_400_000, 'daily segments: times in days');
  assert.deepEqual(wire.intervals, [noMs(1), noMs(2)], 'day 1 once, though two versions have it; day 0 as Druid writes it, not sent');
  assert.deepEqual(
    wire.lanes.map((l) => l.version),
    tl.lanes.map((l) => l.version),
  );
  // Back from the numbers: every cell as the model has it.
  wire.lanes.forEach((lane, li) => {
    const cells = tl.lanes[li]!.cells;
    assert.equal(lane.cells.length, cells.length * CELL_FIELDS.length);
    cells.forEach((c, ci) => {
      const f = Object.fromEntries(CELL_FIELDS.map((name, k) => [name, lane.cells[ci * CELL_FIELDS.length + k]!]));
      assert.deepEqual(
        {
          interval: f.interval === -1 ? isoInterval(wire.start + f.start! * wire.unit, wire.start + (f.start! + f.length!) * wire.unit) : wire.intervals[f.interval!],
          start: wire.start + f.start! * wire.unit,
          end: wire.start + (f.start! + f.length!) * wire.unit,
          state: wire.states[f.state!],
          copies: f.copies,
          size: f.size,
          segments: f.segments,
        },
        { interval: c.interval, start: c.start, end: c.end, state: c.state, copies: c.copies, size: c.size, segments: c.segments.length },
      );
    });
  });
  const day1 = tl.lanes[1]!.cells.find((c) => c.interval === noMs(1))!;
  assert.equal(day1.state, 'overshadowed');
  assert.ok(!JSON.stringify(wire).includes(older[0]!.id), 'no segment id travels with the cells');
  const d = cellDetails(day1, 1);
  assert.deepEqual(
    d.segments.map((s) => s.id),
    [older[1]!.id],
  );
  assert.equal(d.more, 1);
  assert.equal(d.key, cellKey(older[1]!.version, noMs(1)));
});

test('a segment on two nodes and two targets is one segment with its copies, and the commands find its rows', () => {
  const s = segment('w', 0, 0, { backup: { state: 'backedUp', copies: 2, targets: ['http://t1', 'http://t2'] } });
  const tl = buildTimeline('w', [
    source('http://a', [s]),
    source('http://b', [s]),
    target('http://t1', [stored(s)]),
    target('http://t2', [stored(s, { damaged: 'digest mismatch' })]),
  ]);
  const cell = tl.lanes[0]!.cells[0]!;
  assert.equal(tl.segments, 1);
  assert.equal(cell.state, 'backedUp');
  assert.equal(cell.copies, 2);
  assert.deepEqual(cell.segments[0]!.nodes, ['http://a', 'http://b']);
  assert.deepEqual(segmentRef('w', cell, cell.segments[0]!), {
    view: 'nodes',
    kind: 'segment',
    node: 'http://a',
    dataSource: 'w',
    interval: day(0),
    segmentId: s.id,
  });
  const only = buildTimeline('w', [target('http://t1', [stored(s)])]).lanes[0]!.cells[0]!;
  assert.equal(segmentRef('w', only, only.segments[0]!)?.view, 'backups');
});

test('a damaged catalog copy does not count; nonsense intervals are left out; an empty data source is empty', () => {
  const s = segment('w', 0, 0, { backup: { state: 'none' } });
  const tl = buildTimeline('w', [
    source('http://a', [s, { ...segment('w', 1), interval: 'not/an-interval' }]),
    target('http://t1', [stored(s, { damaged: 'bad' })]),
  ]);
  assert.equal(tl.lanes[0]!.cells.length, 1);
  assert.equal(tl.lanes[0]!.cells[0]!.state, 'cacheOnly');
  const empty = buildTimeline('none', [source('http://a', [s])]);
  assert.deepEqual(empty.lanes, []);
  assert.equal(empty.start, 0);
});

test('10,000 segments in one data source: one cell each (the build time is printed)', () => {
  const segs = Array.from({ length: 10_000 }, (_, i) => segment('big', i, 0, { backup: i % 7 ? { state: 'backedUp' } : { state: 'pending' } }));
  const t0 = performance.now();
  const tl = buildTimeline('big', [source('http://a', segs)]);
  const ms = performance.now() - t0;
  assert.equal(tl.lanes[0]!.cells.length, 10_000);
  const bytes = JSON.stringify(toWire(tl)).length;
  console.log(`timeline model of 10,000 segments: ${ms.toFixed(0)} ms, ${(bytes / 1024).toFixed(0)} KiB to the page`);
});

test('messages from the page: only the known types with string keys are taken', () => {
  assert.deepEqual(parseMessage({ type: 'ready' }), { type: 'ready' });
  assert.deepEqual(parseMessage({ type: 'select', key: '["v","i"]' }), { type: 'select', key: '["v","i"]' });
  assert.deepEqual(parseMessage({ type: 'details', key: '["v","i"]', x: 1 }), { type: 'details', key: '["v","i"]' });
  assert.deepEqual(parseMessage({ type: 'restore', keys: ['a', 'b'], extra: 1 }), { type: 'restore', keys: ['a', 'b'] });
  for (const bad of [
    null,
    'ready',
    { type: 'select' },
    { type: 'select', key: 1 },
    { type: 'details', key: ['a'] },
    { type: 'backup', keys: 'a' },
    { type: 'backup', keys: [1] },
    { type: 'eval', code: 'x' },
  ])
    assert.equal(parseMessage(bad), undefined, JSON.stringify(bad));
});

test('snapshots that name the data source are markers at their time, one per snapshot whatever holds it, oldest first', () => {
  const snap = (id: string, time: string, dataSources: string[], over: Partial<SnapshotSummary> = {}): SnapshotSummary => ({
    formatVersion: 1 as SnapshotSummary['formatVersion'],
    id,
    time,
    node: 'cluster-1',
    dataSources: dataSources.map((name) => ({ name })) as unknown as SnapshotSummary['dataSources'],
    segments: 1,
    bytes: 1,
    complete: true,
    metadata: '',
    pinned: false,
    targets: ['http://t1'],
    ...over,
  });
  const newer = snap('20240602T000000Z-0000000b', '2024-06-02T00:00:00Z', ['w', 'kttm']);
  const older = snap('20240601T000000Z-0000000a', '2024-06-01T00:00:00Z', ['w'], { complete: false });
  const otherSource = snap('20240603T000000Z-0000000c', '2024-06-03T00:00:00Z', ['kttm']);
  const t1 = { ...target('http://t1', [stored(segment('w', 0))]), snapshots: [newer, older, otherSource] };
  const t2 = { ...target('http://t2', []), snapshots: [{ ...newer, targets: ['http://t2'], pinned: true }] };
  const tl = buildTimeline('w', [t1, t2]);
  assert.deepEqual(
    tl.snapshots.map((m) => [m.id, m.time, m.pinned, m.complete, m.targets]),
    [
      [older.id, Date.parse(older.time), false, false, ['http://t1']],
      [newer.id, Date.parse(newer.time), true, true, ['http://t1', 'http://t2']],
    ],
  );
  assert.match(tl.snapshots[0]!.label, /^Snapshot 20240601T000000Z-0000000a, taken 2024-06-01T00:00:00.000Z, incomplete, in http:\/\/t1$/);
  // No snapshot loaded (or none naming it): no marker, and the lanes do not depend on them.
  const plain = buildTimeline('w', [target('http://t1', [stored(segment('w', 0))])]);
  assert.deepEqual(plain.snapshots, []);
  assert.deepEqual(plain.lanes, tl.lanes);
  assert.deepEqual(
    buildTimeline('kttm', [t1]).snapshots.map((m) => m.id),
    [newer.id, otherSource.id],
  );
});

test('a marker says when retention lets its snapshot go, as its target answered', () => {
  const base = {
    formatVersion: 1 as SnapshotSummary['formatVersion'],
    node: 'cluster-1',
    dataSources: [{ name: 'w' }] as unknown as SnapshotSummary['dataSources'],
    segments: 1,
    bytes: 1,
    complete: true,
    metadata: '',
    pinned: false,
    targets: ['http://t1'],
  };
  const now = Date.parse('2024-06-02T12:00:00Z');
  const soon: SnapshotSummary = {
    ...base,
    id: '20240601T000000Z-0000000a',
    time: '2024-06-01T00:00:00Z',
    retention: { keep: true, reasons: ['last 2 of 2'], policy: 'keepLast=2', until: '2024-06-03T00:00:00.000Z', cadenceMs: 86_400_000 },
  };
  const gone: SnapshotSummary = {
    ...base,
    id: '20240531T000000Z-00000009',
    time: '2024-05-31T00:00:00Z',
    retention: { keep: false, reasons: ['no rule keeps it (keepLast=2)'], policy: 'keepLast=2' },
  };
  const later: SnapshotSummary = {
    ...base,
    id: '20240602T000000Z-0000000b',
    time: '2024-06-02T00:00:00Z',
    retention: { keep: true, reasons: ['newest', 'last 1 of 2'], policy: 'keepLast=2', until: '2024-06-04T00:00:00.000Z', cadenceMs: 86_400_000 },
  };
  const tl = buildTimeline('w', [{ ...target('http://t1', []), snapshots: [later, soon, gone] }], 1, now);
  assert.deepEqual(
    tl.snapshots.map((m) => [m.id, m.expiry, m.expiring]),
    [
      [gone.id, 'next prune removes it', true],
      [soon.id, 'expires ~2024-06-03 00:00 UTC', true],
      [later.id, 'expires ~2024-06-04 00:00 UTC', false],
    ],
  );
  assert.match(
    tl.snapshots[1]!.label,
    /\. Retention \(keepLast=2\) keeps it \(last 2 of 2\) until about 2024-06-03 00:00 UTC \(in 12 h\), if snapshots go on every 1 day; the prune after that removes it\.$/,
  );
});
