/**
 * The cluster-restore steps' own rules, against a real HTTP server that answers like a Druid 33 Coordinator running the
 * Overlord (shapes from /work/shared/notes/druid-metadata.md; the real cluster is test/druid/cluster-rows.test.ts):
 * what the extension and the Overlord answer is checked, a redacted secret is never posted, supervisors come back
 * suspended, and configs that Druid already holds plan nothing.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import type { DruidAuth } from '../../../sidecar/cluster/druidHttp.js';
import { parseJsonText } from '../../../sidecar/cluster/jsonText.js';
import { parseLockedIntervals, parseRegisterAnswer } from '../../../sidecar/cluster/register.js';
import { canonical, druidMetadataStep, keysThatDiffer } from '../../../sidecar/cluster/restore/metadata.js';
import { metadataRowsStep } from '../../../sidecar/cluster/restore/rows.js';
import type { ClusterRestoreContext } from '../../../sidecar/cluster/restore/step.js';
import { REDACTED_MARKER } from '../../../sidecar/snapshot/model.js';
import type { ClusterMetadata, SnapshotSegment } from '../../../sidecar/snapshot/model.js';

const A = 'wikipedia_2015-09-12T00:00:00.000Z_2015-09-13T00:00:00.000Z_v1';
const B = 'wikipedia_2015-09-13T00:00:00.000Z_2015-09-14T00:00:00.000Z_v1';

test('the extension answer names every id asked exactly once, and nothing else', () => {
  assert.deepEqual(parseRegisterAnswer(JSON.stringify({ dataSource: 'wikipedia', inserted: [A], present: [B] }), 'wikipedia', [A, B]), {
    inserted: [A],
    present: [B],
  });
  const refused = (answer: unknown, re: RegExp) =>
    assert.throws(() => parseRegisterAnswer(typeof answer === 'string' ? answer : JSON.stringify(answer), 'wikipedia', [A, B]), re);
  refused('nope', /is not JSON/);
  refused({ dataSource: 'other', inserted: [A], present: [B] }, /is not \{"dataSource"/);
  refused({ dataSource: 'wikipedia', inserted: [A, 'x'], present: [B] }, /names "x", which was not asked/);
  refused({ dataSource: 'wikipedia', inserted: [A], present: [A, B] }, /names .* twice/);
  refused({ dataSource: 'wikipedia', inserted: [A], present: [] }, /leaves out 1 of the ids asked/);
});

test("the Overlord's locked intervals are checked: only data sources asked, only intervals", () => {
  const m = parseLockedIntervals('{"wikipedia":["2015-09-12T00:00:00.000Z/2015-09-13T00:00:00.000Z"]}', new Set(['wikipedia']));
  assert.equal(m.get('wikipedia')![0]!.start, '2015-09-12T00:00:00.000Z');
  assert.throws(() => parseLockedIntervals('{"other":[]}', new Set(['wikipedia'])), /name "other", which was not asked/);
  assert.throws(() => parseLockedIntervals('{"wikipedia":["yesterday"]}', new Set(['wikipedia'])), /not an interval/);
  assert.throws(() => parseLockedIntervals('[]', new Set(['wikipedia'])), /not an object/);
});

test('configs compare with keys in any order and numbers as written; the diff names the keys', () => {
  const a = '{"b":[1,{"y":2,"x":9223372036854775807}],"a":"s"}';
  const b = '{ "a" : "s", "b" : [1, {"x":9223372036854775807,"y":2}] }';
  assert.equal(canonical(parseJsonText(a), a), canonical(parseJsonText(b), b));
  const c = '{"a":"s","b":[1,{"x":9223372036854775806,"y":2}]}';
  assert.notEqual(canonical(parseJsonText(a), a), canonical(parseJsonText(c), c));
  const now = '{"a":1,"b":2,"c":3}';
  const then = '{"a":1,"b":5,"d":4}';
  assert.equal(keysThatDiffer(parseJsonText(now), now, parseJsonText(then), then), 'differs in b, c, d');
  assert.equal(keysThatDiffer(undefined, '', parseJsonText(then), then), 'none now');
});

interface Seen {
  method: string;
  url: string;
  body: string;
  author?: string;
  comment?: string;
}

/** A Coordinator running the Overlord, as far as these steps ask it; `routes` answers by "METHOD path". */
async function druid(routes: Record<string, (body: string) => [number, string]>): Promise<{ url: string; seen: Seen[]; close(): void }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => (body += d));
    req.on('end', () => {
      const key = `${req.method} ${(req.url ?? '').split('?')[0]}`;
      seen.push({ method: req.method!, url: req.url!, body, author: req.headers['x-druid-author'] as string, comment: req.headers['x-druid-comment'] as string });
      const route = routes[key];
      const [status, text] = route ? route(body) : [404, ''];
      res.writeHead(status, { 'content-type': 'application/json' }).end(text);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, close: () => server.close() };
}

function context(url: string, metadata: Partial<ClusterMetadata>, segments: SnapshotSegment[] = []): ClusterRestoreContext {
  return {
    snapshot: { dataSources: [{ name: 'wikipedia' }] },
    segments: new Map([['wikipedia', segments]]),
    metadata: { offsets: { captured: false, reason: 'no stream supervisor' }, redacted: [], druidVersion: '33.0.0', ...metadata },
    dataSources: ['wikipedia'],
    intervals: [],
    coordinator: url,
    overlord: url,
    auth: undefined as unknown as DruidAuth,
    author: 'ops',
    comment: 'disaster recovery',
  } as unknown as ClusterRestoreContext;
}

const SUPERVISORS = `[{"id":"wiki-kafka","spec":{"type":"kafka","spec":{"dataSchema":{"dataSource":"wikipedia"},"ioConfig":{"topic":"w","consumerProperties":{"sasl.jaas.config":"${REDACTED_MARKER}"}}},"suspended":false}}]`;

test('a supervisor whose spec holds a redacted secret is skipped with a warning; supplied, it is re-created suspended with it', async () => {
  const d = await druid({
    'GET /status': () => [200, '{"version":"34.0.0"}'],
    'GET /druid/coordinator/v1/rules': () => [200, '{"_default":[{"type":"loadForever"}]}'],
    'GET /druid/indexer/v1/supervisor': () => [200, '[]'],
    'POST /druid/indexer/v1/supervisor': () => [200, '{"id":"wiki-kafka"}'],
  });
  try {
    const metadata = { rules: '{"_default":[{"type":"loadForever"}]}', compaction: null, supervisors: SUPERVISORS, redacted: ['supervisors[0].spec.spec.ioConfig.consumerProperties["sasl.jaas.config"]'] };
    const skipped = await druidMetadataStep({ clusterWide: false }).plan(context(d.url, metadata));
    assert.deepEqual(skipped.items, []);
    assert.equal(skipped.done, true);
    assert.deepEqual(skipped.warnings, [
      'Druid 34.0.0 runs now; the snapshot was taken on Druid 33.0.0: configs are put back as that version wrote them',
      'supervisor "wiki-kafka" is not restored: the snapshot holds redacted secrets at supervisors[0].spec.spec.ioConfig.consumerProperties["sasl.jaas.config"]; supply them (by these paths) and run again',
    ]);
    assert.ok(!d.seen.some((s) => s.method === 'POST'), 'nothing posted');

    const step = druidMetadataStep({ clusterWide: false, secrets: { 'supervisors[0].spec.spec.ioConfig.consumerProperties["sasl.jaas.config"]': 'user="a" password="p";' } });
    const ctx = context(d.url, metadata);
    const plan = await step.plan(ctx);
    assert.deepEqual(plan.items, [{ action: 'create supervisor (suspended)', subject: 'wiki-kafka', detail: 'ingests into wikipedia' }]);
    assert.match(plan.warnings[1]!, /its committed offsets were not captured \(no stream supervisor\)/);
    const run = await step.run(ctx, plan, () => undefined);
    assert.deepEqual(run.items.map((i) => i.outcome), ['done']);
    const posted = d.seen.find((s) => s.method === 'POST')!;
    assert.deepEqual(JSON.parse(posted.body), {
      type: 'kafka',
      spec: { dataSchema: { dataSource: 'wikipedia' }, ioConfig: { topic: 'w', consumerProperties: { 'sasl.jaas.config': 'user="a" password="p";' } } },
      suspended: true,
    });
    assert.deepEqual([posted.author, posted.comment], ['ops', 'disaster recovery']);
  } finally {
    d.close();
  }
});

test('rules and compaction configs Druid already holds plan nothing; a compaction config the snapshot lacks is deleted', async () => {
  const compaction = (configs: string) => `{"compactionConfigs":[${configs}],"compactionTaskSlotRatio":0.1,"maxCompactionTaskSlots":2147483647}`;
  const live = '{"dataSource":"wikipedia","skipOffsetFromLatest":"P1D","taskPriority":25}';
  const d = await druid({
    'GET /status': () => [200, '{"version":"33.0.0"}'],
    'GET /druid/coordinator/v1/rules': () => [200, '{"_default":[{"type":"loadForever"}],"wikipedia":[{"type":"dropForever"}]}'],
    'GET /druid/coordinator/v1/config/compaction': () => [200, compaction(live)],
    'DELETE /druid/coordinator/v1/config/compaction/wikipedia': () => [200, ''],
  });
  try {
    const same = await druidMetadataStep({ clusterWide: false }).plan(
      context(d.url, { rules: '{"wikipedia":[{"type":"dropForever"}],"_default":[{"type":"loadForever"}]}', compaction: compaction(' {"taskPriority":25,"skipOffsetFromLatest":"P1D","dataSource":"wikipedia"}') }),
    );
    assert.deepEqual([same.done, same.items, same.warnings], [true, [], []]);
    const ctx = context(d.url, { rules: '{"_default":[{"type":"loadForever"}]}', compaction: compaction('') });
    const step = druidMetadataStep({ clusterWide: false });
    const plan = await step.plan(ctx);
    assert.deepEqual(plan.items, [
      { action: 'set rules', subject: 'wikipedia', detail: 'now: dropForever; in the snapshot: no rules' },
      { action: 'delete compaction config', subject: 'wikipedia', detail: 'none in the snapshot' },
    ]);
    const run = await step.run(ctx, plan, () => undefined);
    // No rules route: Druid's refusal is reported, the next change still made.
    assert.deepEqual(run.items.map((i) => [i.outcome, i.error]), [['failed', 'Druid answered 404 Not Found'], ['done', undefined]]);
    assert.equal(d.seen.find((s) => s.method === 'POST')!.body, '[]');
  } finally {
    d.close();
  }
});

test('metadata-rows refuses while a task holds a lock on an interval it would write, and when a segment has no descriptor', async () => {
  const d = await druid({
    'POST /druid/indexer/v1/lockedIntervals/v2': () => [200, '{"wikipedia":["2015-09-12T06:00:00.000Z/2015-09-12T07:00:00.000Z"]}'],
    'POST /druid/coordinator/v1/metadata/datasources/wikipedia/segments': () => [200, '[]'],
    'GET /druid/coordinator/v1/metadata/datasources/wikipedia/unusedSegments': () => [200, '[]'],
  });
  try {
    const descriptor = { dataSource: 'wikipedia', interval: '2015-09-12T00:00:00.000Z/2015-09-13T00:00:00.000Z', version: 'v1', loadSpec: { type: 'local', path: '/x' } };
    const ctx = context(d.url, {}, [
      { id: A, overshadowed: false, size: 10, descriptor, backedUp: true },
      { id: B, overshadowed: false, size: 20, descriptor: null, backedUp: true },
    ]);
    const step = metadataRowsStep();
    const plan = await step.plan(ctx);
    assert.deepEqual(plan.refusals, [
      `1 segment(s) of "wikipedia" have no row in the metadata store and the snapshot kept no descriptor to write one from (e.g. "${B}")`,
      'a task holds a lock on 2015-09-12T06:00:00.000Z/2015-09-12T07:00:00.000Z of "wikipedia": writing rows there would bypass it; wait for the task to end (or stop it) and plan again',
    ]);
    const run = await step.run(ctx, plan, () => undefined);
    assert.deepEqual(run.items.map((i) => i.outcome), ['skipped']);
    assert.ok(!d.seen.some((s) => s.url.startsWith('/druid-ext/')), 'nothing was sent to the extension');
  } finally {
    d.close();
  }
});

const OFFSETS_PATH = '/druid-ext/druid-backup/v1/offsets';
const COMMITTED = '{"type":"object","object":{"p0":42}}';

test('committed offsets the snapshot recorded are written back once, after the supervisors; a second plan writes nothing', async () => {
  let stored: string | null = null;
  const ids: string[] = [];
  const d = await druid({
    'GET /status': () => [200, '{"version":"33.0.0"}'],
    'GET /druid/coordinator/v1/rules': () => [200, '{"_default":[{"type":"loadForever"}]}'],
    'GET /druid/indexer/v1/supervisor': () => [200, JSON.stringify(ids)],
    'POST /druid/indexer/v1/supervisor': () => (ids.push('wiki-kafka'), [200, '{"id":"wiki-kafka"}']),
    [`GET ${OFFSETS_PATH}`]: () => [200, `{"dataSources":{"wikipedia":${stored ?? 'null'}}}`],
    [`POST ${OFFSETS_PATH}`]: (body) => {
      stored = JSON.stringify((JSON.parse(body) as { metadata: unknown }).metadata);
      return [200, '{"dataSource":"wikipedia","outcome":"inserted"}'];
    },
  });
  try {
    const supervisors = SUPERVISORS.replace(`"${REDACTED_MARKER}"`, '"x"');
    const metadata = { rules: '{"_default":[{"type":"loadForever"}]}', compaction: null, supervisors, offsets: { captured: true, dataSources: { wikipedia: COMMITTED } } };
    const step = druidMetadataStep({ clusterWide: false });
    const ctx = context(d.url, metadata);
    const plan = await step.plan(ctx);
    assert.deepEqual(plan.items, [
      { action: 'create supervisor (suspended)', subject: 'wiki-kafka', detail: 'ingests into wikipedia' },
      { action: 'write committed offsets', subject: 'wikipedia', detail: `now: none; in the snapshot: ${COMMITTED}` },
    ]);
    assert.deepEqual(plan.warnings, []);
    const run = await step.run(ctx, plan, () => undefined);
    assert.deepEqual(run.items.map((i) => `${i.action}: ${i.outcome}`), ['create supervisor (suspended): done', 'write committed offsets: done']);
    const posts = d.seen.filter((s) => s.method === 'POST');
    assert.deepEqual(posts.map((p) => p.url), ['/druid/indexer/v1/supervisor', OFFSETS_PATH], 'the supervisor first, then its offsets');
    assert.deepEqual(JSON.parse(posts[1]!.body), { dataSource: 'wikipedia', metadata: { type: 'object', object: { p0: 42 } } });
    assert.deepEqual([posts[1]!.author, posts[1]!.comment], ['ops', 'disaster recovery']);

    // Druid holds them now (keys in another order make no difference), and the supervisor exists: nothing to do.
    stored = '{"object":{"p0":42},"type":"object"}';
    const again = await druidMetadataStep({ clusterWide: false }).plan(context(d.url, { ...metadata }));
    assert.deepEqual(again.items, []);
    assert.equal(again.done, true);
  } finally {
    d.close();
  }
});

test('committed offsets are not written under a running supervisor, nor without the extension; the plan says why', async () => {
  let extension = true;
  const d = await druid({
    'GET /status': () => [200, '{"version":"33.0.0"}'],
    'GET /druid/coordinator/v1/rules': () => [200, '{"_default":[{"type":"loadForever"}]}'],
    'GET /druid/indexer/v1/supervisor': () => [
      200,
      '[{"id":"live","spec":{"type":"kafka","spec":{"dataSchema":{"dataSource":"wikipedia"}},"suspended":false}},{"id":"paused","spec":{"type":"kafka","spec":{"dataSchema":{"dataSource":"wikipedia"}},"suspended":true}}]',
    ],
    [`GET ${OFFSETS_PATH}`]: () => (extension ? [200, '{"dataSources":{"wikipedia":{"type":"object","object":{"p0":1}}}}'] : [404, '']),
  });
  try {
    const metadata = { rules: '{"_default":[{"type":"loadForever"}]}', compaction: null, supervisors: null, offsets: { captured: true, dataSources: { wikipedia: COMMITTED } } };
    const plan = await druidMetadataStep({ clusterWide: false }).plan(context(d.url, metadata));
    assert.deepEqual(plan.items, []);
    assert.deepEqual(plan.warnings, [
      'the committed offsets of "wikipedia" are not written back: supervisor "live" is running on it and would overwrite them; suspend it and run again',
    ]);
    extension = false;
    const without = await druidMetadataStep({ clusterWide: false }).plan(context(d.url, metadata));
    assert.deepEqual(without.items, []);
    assert.match(without.warnings[0]!, /^the committed offsets of "wikipedia" are not written back: the druid-backup extension that writes them is not loaded on the Overlord; .*resetOffsets with \{"type":"object","object":\{"p0":42\}\}\)$/);
    assert.ok(!d.seen.some((s) => s.method === 'POST'), 'nothing posted');
    const untyped = await druidMetadataStep({ clusterWide: false }).plan(context(d.url, { ...metadata, offsets: { captured: true, dataSources: { wikipedia: '{"object":{"p0":42}}' } } }));
    assert.deepEqual(untyped.items, []);
    assert.match(untyped.warnings[0]!, /^the committed offsets of "wikipedia" are not written back: the snapshot holds them without their "type"/);
    const bad = { ...metadata, offsets: { captured: true, dataSources: { wikipedia: '[1]' } } };
    await assert.rejects(druidMetadataStep({ clusterWide: false }).plan(context(d.url, bad)), /the snapshot's committed offsets of "wikipedia" are not a JSON object/);
  } finally {
    d.close();
  }
});
