/** The extension's tree model without VS Code: API answers → rows, states, paging, stable ids. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { NodeInfo, SegmentInfo } from '../../../sidecar/api.js';
import { SEGMENT_GROUPING, STORED_GROUPING } from '../../../extension/cluster.js';
import { intervalLabel, md, timeAgo } from '../../../extension/tree/format.js';
import { GroupedIndex } from '../../../extension/tree/index.js';
import {
  dataSourceChildren,
  intervalChildren,
  jobNodeChildren,
  jobRow,
  nodeChildren,
  nodeRow,
  type NodeView,
  type Paging,
  type Row,
  segmentRow,
  storedSegmentRow,
  storedIntervalChildren,
  targetChildren,
  targetRow,
  visibleJobs,
} from '../../../extension/tree/rows.js';
import { displayState, summarize } from '../../../extension/tree/state.js';
import { day, job, NOW, segment, stored } from './fixtures.js';

const URL_1 = 'http://127.0.0.1:8484';
const pkg = JSON.parse(readFileSync(path.resolve(__dirname, '../../../package.json'), 'utf8'));

const INFO: NodeInfo = {
  name: 'historical-1:8083',
  version: '0.1.0',
  roles: ['source'],
  druid: {
    service: 'druid/historical',
    host: 'historical-1',
    plaintextPort: 8083,
    locations: [{ path: '/var/druid/segment-cache' }],
    layout: 'nested',
    deepStorage: { type: 'local', zip: false },
  },
  target: 'http://127.0.0.1:8485',
  startedAt: '2024-06-01T00:00:00.000Z',
};

function node(segments: SegmentInfo[], over: Partial<NodeView> = {}): NodeView {
  return { url: URL_1, info: INFO, segments: GroupedIndex.of(SEGMENT_GROUPING, segments), ...over };
}

function paging(pageSize: number, shown: Record<string, number> = {}): Paging {
  return { pageSize, shown: (id) => shown[id] ?? 0 };
}

const labels = (rows: Row[]) => rows.map((r) => r.label);

test('a segment shows its local state first, then its backup state', () => {
  const s = segment('wikipedia', 0);
  assert.equal(displayState(s), 'backedUp');
  assert.equal(displayState({ ...s, backup: { state: 'pending' } }), 'pending');
  assert.equal(displayState({ ...s, backup: { state: 'failed', error: 'target down' } }), 'failed');
  assert.equal(displayState({ ...s, backup: { state: 'none' } }), 'notBackedUp');
  assert.equal(displayState({ ...s, state: 'downloading', backup: { state: 'none' } }), 'downloading');
  assert.equal(displayState({ ...s, state: 'restoring' }), 'restoring');
  for (const bad of ['damaged', 'incomplete'] as const) assert.equal(displayState({ ...s, state: bad }), 'damaged', bad);
  assert.equal(displayState({ ...s, state: 'missing', backup: { state: 'none' } }), 'lost', 'files gone, info_dir entry kept');
});

test('node → data source → interval → segment, with counts and the worst state on each level', () => {
  const segs = [
    segment('wikipedia', 0),
    segment('wikipedia', 0, 1, { backup: { state: 'pending' } }),
    segment('wikipedia', 1),
    segment('kttm', 3, 0, { state: 'damaged' }),
  ];
  const n = node(segs);
  const top = nodeRow(n);
  assert.equal(top.label, 'historical-1:8083');
  assert.match(top.description!, /^4 segments, 1\.00 MiB · 1 damaged, 1 pending, 2 backed up$/);
  assert.match(top.contextValue!, /^node\b.*\bsource\b/);

  const dss = nodeChildren(n, paging(100));
  assert.deepEqual(labels(dss), ['kttm', 'wikipedia']);
  assert.equal(dss[0]!.icon?.icon, 'database');
  assert.equal(dss[0]!.icon?.color, 'charts.red', 'kttm has a damaged segment');
  assert.equal(dss[1]!.description, '3 segments, 768 KiB · 1 pending, 2 backed up');

  const ivs = dataSourceChildren(n, 'wikipedia', paging(100));
  assert.deepEqual(labels(ivs), ['2024-01-02/2024-01-03', '2024-01-01/2024-01-02'], 'newest interval first, midnight times shortened');
  assert.equal(ivs[1]!.ref.interval, day(0));

  const rows = intervalChildren(n, 'wikipedia', day(0), paging(100), NOW);
  assert.deepEqual(
    rows.map((r) => r.ref.segmentId),
    [segs[0]!.id, segs[1]!.id],
  );
  assert.equal(rows[1]!.icon?.icon, 'clock');
});

test('a segment row: id as label, state and size as description, id, size, files and backup time in the tooltip', () => {
  const s = segment('wikipedia', 0);
  const r = segmentRow(node([s]), s, NOW);
  assert.equal(r.label, s.id);
  assert.equal(r.kind, 'segment');
  assert.equal(r.description, 'backed up · 256 KiB · backed up 5 min ago');
  assert.equal(r.icon?.icon, 'pass');
  assert.equal(r.icon?.color, 'charts.green');
  assert.match(r.contextValue!, /^segment backedUp hasBackup$/);
  for (const part of ['wikipedia\\_2024', '256 KiB in 3 files', '00000\\.smoosh', '2024\\-06\\-01T11\\:55\\:00\\.000Z'])
    assert.ok(r.tooltip!.includes(part), `${part} in ${r.tooltip}`);

  const damaged = segmentRow(node([s]), { ...s, state: 'damaged' }, NOW);
  assert.equal(damaged.description, 'damaged: files do not match their digests · 256 KiB · backed up 5 min ago');
  assert.equal(damaged.icon?.icon, 'warning');
  assert.match(damaged.contextValue!, /\bhasBackup\b/, 'a damaged segment with a backup can be restored');

  const never = segmentRow(node([s]), { ...s, backup: { state: 'none' } }, NOW);
  assert.doesNotMatch(never.contextValue!, /hasBackup/);
  assert.equal(never.description, 'not backed up · 256 KiB');
});

test('row ids are stable paths: a state change keeps the id, and ids are unique across levels and nodes', () => {
  const s = segment('wikipedia', 0);
  const a = segmentRow(node([s]), s, NOW);
  const b = segmentRow(node([s]), { ...s, state: 'restoring', backup: { state: 'pending' } }, NOW);
  assert.equal(a.id, b.id);
  const other = segmentRow({ ...node([s]), url: 'http://127.0.0.1:9999' }, s, NOW);
  assert.notEqual(a.id, other.id);
  const n = node([s]);
  const ids = [nodeRow(n), ...nodeChildren(n, paging(10)), ...dataSourceChildren(n, 'wikipedia', paging(10)), a].map((r) => r.id);
  assert.equal(new Set(ids).size, ids.length);
});

test('a node that does not answer shows an error item and a retry, not an empty tree', () => {
  const n: NodeView = { url: URL_1, error: { message: 'cannot connect to http://127.0.0.1:8484 (connection refused)', code: 'unreachable' } };
  assert.equal(nodeRow(n).description, 'unreachable');
  assert.equal(nodeRow(n).icon?.icon, 'error');
  assert.match(nodeRow(n).contextValue!, /^node\b.*\bunreachable\b/);
  const rows = nodeChildren(n, paging(10));
  assert.equal(rows[0]!.label, 'cannot connect to http://127.0.0.1:8484 (connection refused)');
  assert.equal(rows[0]!.icon?.icon, 'error');
  assert.equal(rows[1]!.command?.command, 'druidBackup.refreshNode');

  const denied = nodeChildren({ url: URL_1, error: { message: 'http://127.0.0.1:8484: the token was rejected', code: 'unauthorized' } }, paging(10));
  assert.equal(denied[1]!.command?.command, 'druidBackup.setToken');
  assert.deepEqual(denied[1]!.command?.args, [URL_1]);
});

test('an empty cache and a target-only node say so', () => {
  assert.equal(nodeChildren(node([]), paging(10))[0]!.label, 'No segments in the cache');
  const target: NodeView = { url: URL_1, info: { ...INFO, roles: ['target'] } };
  assert.match(nodeChildren(target, paging(10))[0]!.label, /target/);
});

test('10,000 segments: a level shows one page, then a "Load more" row that brings the next', () => {
  const segs: SegmentInfo[] = [];
  for (let i = 0; i < 10_000; i++) segs.push(segment(['wikipedia', 'web_logs', 'kttm'][i % 3]!, Math.floor(i / 3) % 3000, Math.floor(i / 9000)));
  const n = node(segs);
  assert.equal(n.segments!.size, 10_000);
  assert.match(nodeRow(n).description!, /^10,000 segments, 2\.44 GiB · 10,000 backed up$/);

  const parent = JSON.stringify(['n', URL_1, 'wikipedia']);
  const first = dataSourceChildren(n, 'wikipedia', paging(200));
  assert.equal(first.length, 201);
  const more = first[200]!;
  assert.equal(more.kind, 'loadMore');
  assert.equal(more.description, '200 of 2,800 more');
  assert.deepEqual(more.command, { command: 'druidBackup.loadMore', title: 'Load more', args: [parent] });

  const second = dataSourceChildren(n, 'wikipedia', paging(200, { [parent]: 400 }));
  assert.equal(second.length, 401);
  assert.deepEqual(
    second.slice(0, 200).map((r) => r.id),
    first.slice(0, 200).map((r) => r.id),
    'the first page stays as it was',
  );
  const all = dataSourceChildren(n, 'wikipedia', paging(200, { [parent]: 3000 }));
  assert.equal(all.length, 3000, 'no "Load more" once everything is shown');
  assert.equal(all.at(-1)!.kind, 'interval');
});

test('the index follows upserts, moves and removals', () => {
  const a = segment('wikipedia', 0);
  const idx = GroupedIndex.of(SEGMENT_GROUPING, [a, segment('wikipedia', 1)]);
  assert.equal(idx.upsert({ ...a, state: 'damaged' })?.state, 'complete');
  assert.equal(idx.get(a.id)?.state, 'damaged');
  assert.equal(idx.intervals('wikipedia').length, 2);
  idx.remove(a.id);
  assert.deepEqual(idx.intervals('wikipedia'), [day(1)]);
  idx.remove(segment('wikipedia', 1).id);
  assert.deepEqual(idx.dataSources(), []);
  assert.equal(idx.remove('nope'), undefined);
  // Druid's eternity interval sorts by instant, not by text.
  const eternity = { ...a, id: 'x', interval: '-146136543-09-08T08:23:32.096Z/146140482-04-24T15:36:27.903Z' };
  idx.upsert(eternity);
  idx.upsert(a);
  assert.deepEqual(idx.intervals('wikipedia'), [a.interval, eternity.interval]);
});

test('Backups view: target → data source → interval → segment with size, time, sources and a conflict mark', () => {
  const s0 = segment('wikipedia', 0);
  const s1 = segment('wikipedia', 0, 1);
  const n: NodeView = {
    url: 'http://127.0.0.1:8485',
    info: { ...INFO, name: 'target-1', roles: ['target'], store: { path: '/backups', segments: 2, bytes: 524_288 } },
    stored: GroupedIndex.of(STORED_GROUPING, [
      stored(s0),
      stored(s1, { sources: ['historical-1:8083', 'historical-2:8083'], conflicts: ['historical-2:8083'] }),
    ]),
  };
  const t = targetRow(n);
  assert.equal(t.label, 'target-1');
  assert.equal(t.description, '2 segments, 512 KiB · 1 conflict');
  assert.match(t.contextValue!, /^target\b.*\btarget\b/);
  assert.deepEqual(labels(targetChildren(n, paging(10))), ['wikipedia']);
  const rows = storedIntervalChildren(n, 'wikipedia', day(0), paging(10), NOW);
  assert.equal(rows[0]!.description, '256 KiB · 1 h ago · from historical-1:8083');
  assert.equal(rows[0]!.icon?.icon, 'package');
  assert.equal(rows[1]!.description, '⚠ replicas differ · 256 KiB · 1 h ago · from 2 nodes');
  assert.equal(rows[1]!.icon?.icon, 'warning');
  assert.equal(rows[1]!.contextValue, 'storedSegment conflict');
  assert.ok(rows[1]!.tooltip!.includes('historical\\-2\\:8083'));
});

test('Jobs view: running jobs first with progress, then the most recent finished ones', () => {
  const jobs = [
    job('j1', { state: 'succeeded', createdAt: '2024-06-01T10:00:00.000Z', finishedAt: '2024-06-01T10:05:00.000Z' }),
    job('j2', {
      state: 'failed',
      createdAt: '2024-06-01T11:00:00.000Z',
      finishedAt: '2024-06-01T11:01:00.000Z',
      errors: [{ segmentId: 'x', message: 'digest mismatch' }],
    }),
    job('j3', { createdAt: '2024-06-01T09:00:00.000Z' }),
  ];
  assert.deepEqual(
    visibleJobs(jobs, 2).map((j) => j.id),
    ['j3', 'j2'],
  );
  const n: NodeView = { url: URL_1, info: INFO, jobs };
  const running = jobRow(n, jobs[2]!, NOW);
  assert.equal(running.label, 'restore wikipedia');
  assert.equal(running.description, 'running 42% · 2/4 segments · 420 B/1000 B');
  assert.equal(running.contextValue, 'job active');
  const failed = jobRow(n, jobs[1]!, NOW);
  assert.match(failed.description!, /^failed · 1 done, 1 skipped · 59 min ago$/);
  assert.equal(failed.collapsible, 'collapsed', 'its errors are its children');
  assert.equal(jobNodeChildren(n, 20, NOW).length, 3);
  assert.equal(jobNodeChildren({ ...n, jobs: [] }, 20, NOW)[0]!.label, 'No jobs yet');
});

test('summaries, interval labels and times', () => {
  const sum = summarize([segment('a', 0), segment('a', 1, 0, { state: 'downloading' })]);
  assert.equal(sum.worst, 'downloading');
  assert.equal(sum.bytes, 524_288);
  assert.equal(intervalLabel('2024-01-01T00:00:00.000Z/2024-01-01T06:00:00.000Z'), '2024-01-01/2024-01-01T06:00Z');
  assert.equal(timeAgo('2024-06-01T11:59:30.000Z', NOW), 'just now');
  assert.equal(timeAgo('2024-05-30T12:00:00.000Z', NOW), '2 days ago');
  assert.equal(timeAgo('2023-01-01T00:00:00.000Z', NOW), '2023-01-01');
});

/**
 * Reads a tooltip as CommonMark would, for what matters here: a backslash before ASCII punctuation makes it literal,
 * and any other ASCII punctuation is markup. Returns the literal text, or undefined when markup came through.
 */
function literalText(escaped: string): string | undefined {
  let out = '';
  for (let i = 0; i < escaped.length; i++) {
    const c = escaped[i]!;
    const punct = /[\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e]/;
    if (c === '\\' && i + 1 < escaped.length && punct.test(escaped[i + 1]!)) out += escaped[++i];
    else if (punct.test(c)) return undefined;
    else out += c;
  }
  return out;
}

const HOSTILE = [
  '[click](command:workbench.action.terminal.new)',
  '![x](https://evil.example/pixel.png)',
  '<img src=x onerror=alert(1)>',
  '`code` **bold** _em_ ~~strike~~',
  '&lt;script&gt; &#x3C;',
  'line1\n# heading\n\n- item\r\n> quote\u2028===',
  'https://evil.example www.evil.example',
  '\\[escaped\\]',
];

test('md() makes any server text literal in a tooltip: no link, image, HTML, entity or block survives', () => {
  for (const h of HOSTILE) {
    const lit = literalText(md(h));
    assert.equal(lit, h.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' '), `${JSON.stringify(h)} -> ${md(h)}`);
  }
  // Non-text values (a number where a string was due, an object) are made text first, never passed through.
  assert.equal(literalText(md({ toString: () => '[a](b)' })), '[a](b)');
});

test('tooltips escape every server-supplied name: roles, layout, digests, data sources, ids, jobs', () => {
  const evil = '[x](command:evil)<b>';
  const info: NodeInfo = {
    ...INFO,
    roles: [evil as 'source'],
    version: evil,
    druid: { ...INFO.druid, host: evil, layout: evil as 'nested', service: evil, locations: [{ path: evil }] },
    target: evil,
    store: { path: evil, segments: evil as unknown as number, bytes: evil as unknown as number },
  } as NodeInfo;
  const s = segment(evil, 0, 0, {
    layout: evil as 'nested',
    files: [{ name: evil, size: evil as unknown as number }],
    backup: { state: evil as 'backedUp', at: evil, target: evil, error: evil },
  });
  const n = node([s], { info });
  const j = job(evil, {
    type: evil as 'backup',
    state: evil as 'running',
    target: evil,
    errors: [{ segmentId: evil, message: evil }],
    request: { dataSource: evil },
  });
  const st = stored(s, { digest: evil, sources: [evil], conflicts: [evil], createdAt: evil, updatedAt: evil, size: evil as unknown as number });
  const tips = {
    node: nodeRow(n).tooltip!,
    segment: segmentRow(n, s, NOW).tooltip!,
    stored: storedSegmentRow(n, st, NOW).tooltip!,
    job: jobRow(n, j, NOW).tooltip!,
  };
  for (const [what, tip] of Object.entries(tips)) {
    // The rows' own text uses no brackets, angle brackets, backticks, bangs or ampersands: each one here is the
    // server's, and must be escaped.
    const unescaped = /(^|[^\\])[[\]<>`!&]/.exec(tip);
    assert.equal(unescaped, null, `${what}: markup from the server came through at "${unescaped?.[0]}": ${tip}`);
    assert.ok(!tip.includes('command:'), `${what}: ${tip}`);
    // The name is still there, readable once unescaped.
    assert.ok(tip.includes(md(evil)), `${what}: ${tip}`);
  }
  assert.match(tips.node, /NaN segments/, 'a count that is not a number is not shown as text');
});

test('a lost segment (info_dir entry kept, files gone) stays in the Nodes view as lost, with Restore, until it is back', () => {
  const s = segment('wikipedia', 0);
  // As the sidecar lists it: no files, no backup record any more, but its copies on the targets.
  const lost: SegmentInfo = {
    ...s,
    state: 'missing',
    size: 0,
    files: [],
    backup: { state: 'none', copies: 2, targets: ['http://t1:8485', 'http://t2:8485'] },
  };
  const n = node([segment('wikipedia', 0, 1), lost]);
  const r = segmentRow(n, lost, NOW);
  assert.equal(r.icon?.icon, 'debug-disconnect');
  assert.equal(r.icon?.color, 'charts.red');
  assert.equal(r.description, 'lost: files gone from the cache · 2 copies in the backup');
  assert.match(r.contextValue!, /^segment lost\b/);
  assert.match(r.contextValue!, /\bhasBackup\b/);
  assert.match(r.tooltip!, /info\\_dir entry still says/);
  assert.match(r.tooltip!, /drop or a balancer move removes the info\\_dir entry first/);
  assert.match(r.tooltip!, /Copies: 2 on http/);
  // A lost segment with no copy anywhere still offers Restore (its plan says what is missing).
  const bare = segmentRow(n, { ...lost, backup: { state: 'none' } }, NOW);
  assert.equal(bare.description, 'lost: files gone from the cache · no copy in the backup');
  assert.match(bare.contextValue!, /^segment lost$/);

  // Its groups show it as the worst state, by name.
  const [ds] = nodeChildren(n, paging(50));
  assert.match(ds!.description!, /1 lost, 1 backed up$/);
  assert.equal(ds!.icon?.color, 'charts.red');
  const [iv] = dataSourceChildren(n, 'wikipedia', paging(50));
  assert.match(iv!.description!, /1 lost/);

  // Restore's menus offer it inline for a lost row (package.json's `when` clause, as VS Code matches it).
  const menus = (pkg.contributes.menus['view/item/context'] as Array<{ command: string; when: string; group: string }>).filter(
    (m) => m.command === 'druidBackup.restore' && m.group.startsWith('inline') && m.when.includes('druidBackup.nodes'),
  );
  const re = (when: string) => new RegExp(/viewItem =~ \/(.*)\/$/.exec(when)![1]!);
  assert.ok(
    menus.some((m) => re(m.when).test(bare.contextValue!)),
    'inline Restore on a lost row',
  );

  // Back: the same id, no longer lost.
  const back = segmentRow(n, s, NOW);
  assert.equal(back.id, r.id);
  assert.doesNotMatch(back.contextValue!, /lost/);
});
