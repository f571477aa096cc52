/** A target's snapshots in the Backups view, the prune plan's words and the menus on them, without VS Code. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { SnapshotSummary } from '../../../sidecar/snapshot/service.js';
import { STORED_GROUPING } from '../../../extension/cluster.js';
import { GroupedIndex } from '../../../extension/tree/index.js';
import { type NodeView, type Paging, targetChildren } from '../../../extension/tree/rows.js';
import {
  expiryWords,
  parsePrunePlan,
  parseSnapshotList,
  prunePlanText,
  snapshotChildren,
  snapshotsGroupRow,
  type SnapshotsView,
} from '../../../extension/tree/snapshots.js';
import { NOW, segment, stored } from './fixtures.js';

const pkg = JSON.parse(readFileSync(path.resolve(__dirname, '../../../package.json'), 'utf8'));
const paging = (pageSize: number): Paging => ({ pageSize, shown: () => 0 });
const TARGET = 'http://127.0.0.1:8485';

function snap(id: string, time: string, over: Partial<SnapshotSummary> = {}): SnapshotSummary {
  return {
    formatVersion: 1 as SnapshotSummary['formatVersion'],
    id,
    time,
    node: 'cluster-1',
    dataSources: [{ name: 'wikipedia' }, { name: 'koalas' }] as unknown as SnapshotSummary['dataSources'],
    segments: 6,
    bytes: 1024,
    complete: true,
    metadata: 'a'.repeat(64),
    pinned: false,
    targets: [TARGET],
    ...over,
  };
}

const A = snap('20240601T110000Z-0000000a', '2024-06-01T11:00:00.000Z', { pinned: true });
const B = snap('20240601T100000Z-0000000b', '2024-06-01T10:00:00.000Z', { complete: false, dataSources: [] });

function target(over: Partial<NodeView & SnapshotsView> = {}): NodeView & SnapshotsView {
  return {
    url: TARGET,
    info: {
      name: 'target-1',
      version: '0.1.0',
      roles: ['target'],
      druid: { locations: [], layout: 'empty', deepStorage: { type: 'local', zip: false } },
      startedAt: '',
    },
    stored: GroupedIndex.of(STORED_GROUPING, [stored(segment('wikipedia', 0))]),
    ...over,
  };
}

test('a target with snapshots shows a Snapshots group first, then its data sources; one without shows none', () => {
  const rows = targetChildren(target({ snapshots: [A, B] }), paging(10));
  assert.deepEqual(
    rows.map((r) => [r.kind, r.label]),
    [
      ['snapshots', 'Snapshots'],
      ['storedDataSource', 'wikipedia'],
    ],
  );
  assert.equal(rows[0]!.description, '2 snapshots, 1 pinned · latest 2024-06-01T11:00:00.000Z');
  assert.deepEqual(
    targetChildren(target({ snapshots: [] }), paging(10)).map((r) => r.kind),
    ['storedDataSource'],
  );
  // A failure to read them is shown, not hidden.
  const failed = target({ snapshotsError: { message: 'snapshots: HTTP 500' } });
  assert.equal(targetChildren(failed, paging(10))[0]!.kind, 'snapshots');
  assert.equal(snapshotChildren(failed, paging(10), NOW)[0]!.label, 'snapshots: HTTP 500');
});

test('each snapshot row shows its time, data sources, completeness and pin, newest first, with stable ids', () => {
  const n = target({ snapshots: [A, B] });
  const rows = snapshotChildren(n, paging(10), NOW);
  assert.deepEqual(
    rows.map((r) => [r.label, r.description, r.icon?.icon, r.contextValue, r.ref.snapshotId]),
    [
      ['2024-06-01 11:00:00 UTC', 'wikipedia, koalas · pinned', 'pinned', 'snapshot pinned complete', A.id],
      ['2024-06-01 10:00:00 UTC', 'no data source · incomplete', 'warning', 'snapshot unpinned incomplete', B.id],
    ],
  );
  assert.match(rows[0]!.tooltip!, /Pinned: retention never removes it/);
  assert.match(rows[1]!.tooltip!, /retention \(druid\.backup\.retention\.\*\) may remove it/);
  // Ids do not change with the pin or the count, so VS Code keeps the selection across refreshes.
  const again = snapshotChildren(
    target({ snapshots: [{ ...A, pinned: false }, B, snap('20240601T090000Z-0000000c', '2024-06-01T09:00:00Z')] }),
    paging(10),
    NOW,
  );
  assert.deepEqual(
    again.slice(0, 2).map((r) => r.id),
    rows.map((r) => r.id),
  );
  assert.notEqual(snapshotsGroupRow(n).id, rows[0]!.id);
  // Paged like every long level.
  const paged = snapshotChildren(target({ snapshots: [A, B, snap('20240601T090000Z-0000000c', '2024-06-01T09:00:00Z')] }), paging(2), NOW);
  assert.deepEqual(
    paged.map((r) => r.kind),
    ['snapshot', 'snapshot', 'loadMore'],
  );
});

test('a bucket read through a node shows only the snapshots that name it', () => {
  const bucket = target({ url: 's3://bkt/p', via: TARGET, snapshots: [A, { ...B, targets: ['s3://bkt/p'] }] });
  assert.deepEqual(
    snapshotChildren(bucket, paging(10), NOW).map((r) => r.ref.snapshotId),
    [B.id],
  );
});

test('what a sidecar answers for snapshots is checked: entries without a valid id, time or lists are dropped', () => {
  assert.throws(() => parseSnapshotList({ items: [] }), /no list of snapshots/);
  const parsed = parseSnapshotList({
    snapshots: [
      A,
      { ...B, id: '../../etc/passwd' },
      { ...B, time: 'yesterday' },
      { ...B, targets: 'http://x' },
      null,
      { ...B, segments: -5, bytes: 'lots', pinned: 'yes', dataSources: [{ name: 'ok' }, { nope: 1 }, 7] },
    ],
  });
  assert.deepEqual(
    parsed.map((s) => [s.id, s.segments, s.bytes, s.pinned, s.dataSources.length]),
    [
      [A.id, 6, 1024, true, 2],
      [B.id, 0, 0, false, 1],
    ],
  );
});

test("a prune's dry run is shown as what would go and why, and what stays", () => {
  const plan = parsePrunePlan({
    target: TARGET,
    policy: 'keepLast=1',
    at: '2024-06-01T12:00:00Z',
    dryRun: true,
    snapshots: [
      { id: A.id, time: A.time, keep: true, reasons: ['newest'], pinned: false, segments: 3, complete: true },
      { id: B.id, time: B.time, keep: false, reasons: ['beyond keepLast=1'], pinned: false, segments: 3, complete: true },
    ],
    remove: [{ segmentId: 'wikipedia_v1', dataSource: 'wikipedia', bytes: 2048, reason: 'no kept snapshot names it' }],
    kept: { byLatestSnapshot: 3, bySnapshots: 0, byNodes: 1, byGracePeriod: 0 },
    orphans: [],
    blobs: ['b'.repeat(64)],
    bytes: { stored: 4096, usedByLatest: 2048, keptByRetention: 0, prunable: 2048 },
    removed: { snapshots: 0, segments: 0, bytes: 0, orphans: 0, blobs: 0 },
  });
  const t = prunePlanText(plan);
  assert.equal(t.removes, true);
  assert.equal(t.summary, `Prune ${TARGET}: remove 1 snapshot and 1 segment (2.00 KiB)?`);
  assert.match(t.detail, /Policy: keepLast=1/);
  assert.match(t.detail, new RegExp(`snapshot ${B.id} \\(${B.time}\\) — beyond keepLast=1`));
  assert.match(t.detail, /segment wikipedia_v1 \(2.00 KiB\) — no kept snapshot names it/);
  assert.match(t.detail, /1 held by nodes/);
  assert.doesNotMatch(t.detail, new RegExp(`snapshot ${A.id}`));
  // A plan lists its first segments and counts them all: the summary says all, the detail how many more.
  const big = prunePlanText(parsePrunePlan({ ...plan, removeCount: 90_000 }));
  assert.match(big.summary, /remove 1 snapshot and 90,000 segments/);
  assert.match(big.detail, /…and 89,?999 more/);
  // Nothing to remove: said so, and no confirmation is asked.
  const none = prunePlanText({ ...plan, snapshots: plan.snapshots.slice(0, 1), remove: [], removeCount: 0, blobs: [] });
  assert.equal(none.removes, false);
  assert.match(none.summary, /^Nothing to prune/);
  // A hostile or empty result never throws and shows nothing to remove.
  assert.equal(prunePlanText(parsePrunePlan('nonsense')).removes, false);
  assert.equal(prunePlanText(parsePrunePlan({ remove: 'x', snapshots: [null, 1] })).removes, false);
});

test('the menus offer Restore Snapshot and Pin or Unpin on the right snapshot rows, and Prune on a target', () => {
  const ctx = pkg.contributes.menus['view/item/context'] as Array<{ command: string; when: string }>;
  const re = (when: string) => new RegExp(/viewItem =~ \/(.*)\/$/.exec(when)![1]!);
  const on = (command: string, contextValue: string) => ctx.some((m) => m.command === command && re(m.when).test(contextValue));
  const [pinned, unpinned] = snapshotChildren(target({ snapshots: [A, B] }), paging(10), NOW);
  assert.ok(on('druidBackup.restoreSnapshot', pinned!.contextValue!) && on('druidBackup.restoreSnapshot', unpinned!.contextValue!));
  assert.ok(on('druidBackup.unpinSnapshot', pinned!.contextValue!) && !on('druidBackup.pinSnapshot', pinned!.contextValue!));
  assert.ok(on('druidBackup.pinSnapshot', unpinned!.contextValue!) && !on('druidBackup.unpinSnapshot', unpinned!.contextValue!));
  assert.ok(!on('druidBackup.restoreSnapshot', 'snapshots'));
  assert.ok(on('druidBackup.pruneTarget', 'target target') && on('druidBackup.pruneTarget', 'snapshots'));
});

test('a snapshot row says when retention lets it go: pinned, kept until newer ones, a time, or the next prune', () => {
  const policy = 'keepLast=3, keepDaily=7';
  const row = (over: Partial<SnapshotSummary>) => snapshotChildren(target({ snapshots: [snap(B.id, B.time, over)] }), paging(10), NOW)[0]!;
  const timed = row({ retention: { keep: true, reasons: ['daily 2024-06-01'], policy, until: '2024-06-08T10:00:00.000Z', cadenceMs: 3600_000 } });
  assert.equal(timed.description, 'wikipedia, koalas · expires ~2024-06-08 10:00 UTC');
  assert.match(
    String(timed.tooltip).replace(/\\(.)/g, '$1'),
    /Retention \(keepLast=3, keepDaily=7\) keeps it \(daily 2024-06-01\) until about 2024-06-08 10:00 UTC \(in 7 days\), if snapshots go on every 1 h; the prune after that removes it\./,
  );
  assert.equal(row({ pinned: true, retention: { keep: true, reasons: ['pinned'], policy } }).description, 'wikipedia, koalas · pinned: kept');
  assert.equal(
    row({ retention: { keep: false, reasons: ['no rule keeps it (keepLast=3)'], policy } }).description,
    'wikipedia, koalas · next prune removes it',
  );
  assert.equal(row({ retention: { keep: true, reasons: ['last 1 of 3'], policy } }).description, 'wikipedia, koalas · kept: last 1 of 3');
  assert.equal(
    row({ retention: { keep: true, reasons: ['no retention rule is set'], policy: 'no rule' } }).description,
    'wikipedia, koalas · kept (no retention rule)',
  );
  assert.equal(expiryWords({ pinned: false }, NOW), undefined, 'an older sidecar says nothing: nothing is shown');
  // What a sidecar sends is checked: a retention of the wrong shape is dropped, bad fields left out.
  const parsed = parseSnapshotList({
    snapshots: [
      { ...A, retention: { keep: 'yes', reasons: [], policy } },
      { ...B, retention: { keep: true, reasons: ['newest'], policy, until: 'soon', cadenceMs: -1 } },
    ],
  });
  assert.equal(parsed[0]!.retention, undefined);
  assert.deepEqual(parsed[1]!.retention, { keep: true, reasons: ['newest'], policy });
});
