import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  allParsings,
  formatSegmentId,
  mostProbableDataSource,
  parseSegmentId,
  parsingsWithDataSource,
  segmentIdOf,
  tryParseSegmentId,
} from '../../../sidecar/druid/segmentId.js';
import type { SegmentId } from '../../../sidecar/druid/segmentId.js';

const S = '2015-09-12T00:00:00.000Z';
const E = '2015-09-13T00:00:00.000Z';
const V = '2024-01-01T00:00:00.000Z';

test('formats the partition suffix only when it is not 0', () => {
  assert.equal(formatSegmentId({ dataSource: 'wiki', start: S, end: E, version: V, partition: 0 }), `wiki_${S}_${E}_${V}`);
  assert.equal(formatSegmentId({ dataSource: 'wiki', start: S, end: E, version: V, partition: 3 }), `wiki_${S}_${E}_${V}_3`);
});

const roundTrips: Array<[string, string, string, string, string, number]> = [
  // [id, dataSource, start, end, version, partition]
  [`wikipedia_${S}_${E}_${V}`, 'wikipedia', S, E, V, 0],
  [`wikipedia_${S}_${E}_${V}_1`, 'wikipedia', S, E, V, 1],
  [`web_logs_${S}_${E}_${V}_12`, 'web_logs', S, E, V, 12],
  [`a_b_c_${S}_${E}_${V}`, 'a_b_c', S, E, V, 0],
  [`ds_${S}_${E}_v_with_underscores`, 'ds', S, E, 'v_with_underscores', 0],
  [`ds_2015-09-12T00:00:00.123+05:30_2015-09-12T01:00:00.456+05:30_${V}_7`, 'ds', '2015-09-12T00:00:00.123+05:30', '2015-09-12T01:00:00.456+05:30', V, 7],
  [
    'eternal_-146136543-09-08T08:23:32.096Z_146140482-04-24T15:36:27.903Z_2020-01-01T00:00:00.000Z',
    'eternal',
    '-146136543-09-08T08:23:32.096Z',
    '146140482-04-24T15:36:27.903Z',
    '2020-01-01T00:00:00.000Z',
    0,
  ],
  [`with space_${S}_${E}_${V}`, 'with space', S, E, V, 0],
  [`ünïcode_${S}_${E}_${V}_2`, 'ünïcode', S, E, V, 2],
];

for (const [id, dataSource, start, end, version, partition] of roundTrips) {
  test(`parses and formats ${id}`, () => {
    const p = parseSegmentId(id);
    assert.deepEqual(
      { dataSource: p.dataSource, start: p.start, end: p.end, version: p.version, partition: p.partition },
      { dataSource, start, end, version, partition },
    );
    assert.equal(formatSegmentId(p), id);
    assert.ok(p.startMs < p.endMs);
  });
}

test('a trailing positive number is the partition first, the end of the version second (as Druid)', () => {
  const id = `ds_${S}_${E}_${V}_1`;
  const all = parsingsWithDataSource('ds', id);
  assert.equal(all.length, 2);
  assert.deepEqual([all[0]!.version, all[0]!.partition], [V, 1]);
  assert.deepEqual([all[1]!.version, all[1]!.partition], [`${V}_1`, 0]);
  // Both format back to the same string, which is why the descriptor decides in a flat cache.
  assert.equal(formatSegmentId(all[1]!), id);
});

test('a trailing 0 or negative number belongs to the version', () => {
  assert.equal(parseSegmentId(`ds_${S}_${E}_v_0`).version, 'v_0');
  assert.equal(parseSegmentId(`ds_${S}_${E}_v_-1`).version, 'v_-1');
  assert.equal(parseSegmentId(`ds_${S}_${E}_v_99999999999`).version, 'v_99999999999');
});

test('versions may contain colons and underscores', () => {
  const p = parseSegmentId(`ds_${S}_${E}_2024-01-01T00:00:00.000Z_compact_v:2_5`);
  assert.equal(p.version, '2024-01-01T00:00:00.000Z_compact_v:2');
  assert.equal(p.partition, 5);
});

test('a data source name that contains an instant-like part is found by the date pattern', () => {
  assert.equal(mostProbableDataSource(`my_ds_${S}_${E}_${V}`), 'my_ds');
  const p = tryParseSegmentId(`my_ds_${S}_${E}_${V}`, 'my_ds');
  assert.equal(p?.version, V);
  // With an explicit but wrong data source nothing parses.
  assert.equal(tryParseSegmentId(`my_ds_${S}_${E}_${V}`, 'other'), undefined);
  assert.ok(allParsings(`my_ds_${S}_${E}_${V}`).length >= 1);
});

test('rejects what is not a segment id, with a clear message', () => {
  const bad = [
    '',
    'x',
    'ds_notadate_2015-09-13T00:00:00.000Z_v',
    `ds_${E}_${S}_v`,
    `ds_${S}_${S}_v`,
    `ds_${S}_${E}`,
    `_${S}_${E}_v`,
    `.ds_${S}_${E}_v`,
    `d/s_${S}_${E}_v`,
    `ds\u0000_${S}_${E}_v`,
    'a'.repeat(2000),
    `ds_${S}_2015-02-30T00:00:00.000Z_v`,
  ];
  for (const id of bad) assert.throws(() => parseSegmentId(id), { code: 'bad_segment_id' }, JSON.stringify(id).slice(0, 60));
  assert.throws(() => parseSegmentId(42), { code: 'bad_segment_id' });
});

test('segmentIdOf builds the same id Druid would', () => {
  const s = segmentIdOf({ dataSource: 'wikipedia', start: S, end: E, version: V, partition: 2 });
  assert.equal(s.id, `wikipedia_${S}_${E}_${V}_2`);
  assert.equal(s.endMs - s.startMs, 86_400_000);
});

/** The parser as it was before it was made linear (quadratic in the number of `_`): the reference for its semantics. */
function referenceParsings(id: string): SegmentId[] {
  const splits = id.split('_');
  const probable = mostProbableDataSource(id);
  const out: SegmentId[] = probable ? parsingsWithDataSource(probable, id) : [];
  for (let i = 1; i <= splits.length - 3; i++) {
    const ds = splits.slice(0, i).join('_');
    if (probable && ds.length === probable.length) continue;
    out.push(...parsingsWithDataSource(ds, id));
  }
  return out;
}

test('the linear parser finds exactly the parsings the reference does, in the same order', () => {
  const piece = fc.constantFrom(
    '_',
    '_',
    '_',
    'a',
    'b_c',
    '1',
    '0',
    '-1',
    '2147483648',
    S,
    E,
    V,
    '2015-09-12',
    '2015-09-14',
    'x:y',
    '-146136543-09-08T08:23:32.096Z',
  );
  fc.assert(
    fc.property(fc.array(piece, { maxLength: 14 }), (a) => {
      const id = a.join('');
      assert.deepEqual(allParsings(id), referenceParsings(id));
      assert.deepEqual(tryParseSegmentId(id), referenceParsings(id)[0]);
    }),
    { numRuns: 5000 },
  );
});

test('10,000 worst-case ids of 1024 characters are parsed (the time is reported)', (t) => {
  // Hundreds of `_` before the interval (or none at all): the shapes that made every candidate data source be built.
  const shapes: Record<string, (i: number) => string> = {
    'no interval': (i) => 'a_'.repeat(512).slice(0, 1020) + String(i).padStart(4, '0'),
    'interval at the end': (i) => {
      const tail = `_${S}_${E}_v${i}`;
      return 'a_'.repeat(600).slice(0, 1024 - tail.length) + tail;
    },
    'instants only': (i) => `${S}_`.repeat(60).slice(0, 1020) + String(i).padStart(4, '0'),
  };
  for (const [shape, make] of Object.entries(shapes)) {
    const ids = Array.from({ length: 10_000 }, (_, i) => make(i));
    assert.ok(ids.every((id) => id.length === 1024));
    const t0 = performance.now();
    let parsed = 0;
    for (const id of ids) if (tryParseSegmentId(id)) parsed++;
    const ms = performance.now() - t0;
    t.diagnostic(`${shape}: 10,000 ids of 1024 chars in ${ms.toFixed(0)} ms`);
    assert.equal(parsed, shape === 'interval at the end' ? 10_000 : 0);
  }
  const last = tryParseSegmentId(shapes['interval at the end']!(7))!;
  assert.deepEqual([last.start, last.end, last.version], [S, E, 'v7']);
});
