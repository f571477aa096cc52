/**
 * The cluster's metadata read from a real HTTP server that answers exactly as a Druid 33 Coordinator (running the
 * Overlord) and Broker do (shapes from ../shared/notes/druid-metadata.md), behind basic authentication; and the
 * cluster sidecar (a Coordinator, no cache) started as a real process.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { captureClusterMetadata } from '../../sidecar/cluster/metadata.js';
import { isLeader } from '../../sidecar/cluster/leader.js';
import { countRows } from '../../sidecar/cluster/rows.js';
import { markUsed } from '../../sidecar/targets/coordinator.js';
import { REDACTED_MARKER } from '../../sidecar/snapshot/model.js';
import type { NodeInfo } from '../../sidecar/api.js';
import { startSidecar, tmpDir } from '../helpers/sidecar.js';
import { descriptor, idOf, seg } from '../helpers/snapshots.js';
import { takeSnapshot } from '../../sidecar/snapshot/take.js';
import { LocalStore } from '../../sidecar/store/local/store.js';

const AUTH = { user: 'admin', password: 'pw:with:colons' };
const log = pino({ level: 'silent' });

const RULES =
  '{"_default":[{"tieredReplicants":{"_default_tier":2},"useDefaultTierForNull":true,"type":"loadForever"}],"demo":[{"tieredReplicants":{"_default_tier":1},"useDefaultTierForNull":true,"type":"loadForever"}]}';
const COMPACTION =
  '{"compactionConfigs":[{"type":"inline","dataSource":"demo","taskPriority":25,"inputSegmentSizeBytes":100000000000000,"maxRowsPerSegment":null,"skipOffsetFromLatest":"PT0S","tuningConfig":{"partitionsSpec":{"type":"dynamic","maxRowsPerSegment":5000000,"maxTotalRows":9223372036854775807}},"taskContext":null}],"compactionTaskSlotRatio":0.1,"maxCompactionTaskSlots":2147483647,"compactionPolicy":{"type":"newestSegmentFirst","priorityDatasource":null},"useSupervisors":false,"engine":"native"}';
const DYNAMIC = '{"millisToWaitBeforeDeleting":900000,"maxSegmentsToMove":100,"replicantLifetime":15,"killDataSourceWhitelist":[],"pauseCoordination":false}';
const SUPERVISORS =
  '[{"id":"wiki","state":"RUNNING","detailedState":"RUNNING","healthy":true,"spec":{"type":"kafka","spec":{"dataSchema":{"dataSource":"wiki"},"ioConfig":{"topic":"wiki","consumerProperties":{"bootstrap.servers":"kafka:9092","sasl.jaas.config":"org.apache.kafka.common.security.plain.PlainLoginModule required username=\\"u\\" password=\\"hunter2\\";"}}}},"suspended":false}]';
const LOOKUPS =
  '{"__default":{"countries":{"version":"v1","lookupExtractorFactory":{"type":"cachedNamespace","extractionNamespace":{"type":"jdbc","connectorConfig":{"connectURI":"jdbc:mysql://db:3306/geo","user":"geo","password":"lookup-secret"},"table":"countries","keyColumn":"code","valueColumn":"name"}}}}}';

interface Fake {
  url: string;
  /** Answers by path; `null` for the Druid 33 default of the path. */
  overrides: Map<string, { status: number; body: string; location?: string }>;
  sql: Array<{ query: string; parameters: Array<{ type: string; value: string }> }>;
  marked: string[][];
  leader: boolean;
  /** sys.segments: id -> [num_rows, is_available] */
  rows: Record<string, [number | null, number]>;
  /** The extension's answer of committed offsets; unset: the extension is not loaded (404). */
  offsets?: string;
  close(): Promise<void>;
}

let druid: Fake;

async function fakeDruid(): Promise<Fake> {
  const fake = { overrides: new Map(), sql: [], marked: [], leader: true } as unknown as Fake;
  const rows: Record<string, [number | null, number]> = {
    demo_a: [100, 1],
    demo_b: [200, 1],
    demo_c: [0, 0],
    wiki_a: [7, 1],
    [idOf(1, 'v1')]: [10, 1],
    [idOf(2, 'v1')]: [20, 1],
    [idOf(3, 'v1')]: [0, 1],
  };
  fake.rows = rows;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const send = (status: number, body: string) => {
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(body);
      };
      // druid-basic-security answers 401 to a request without the right credentials.
      if (req.headers.authorization !== `Basic ${Buffer.from(`${AUTH.user}:${AUTH.password}`).toString('base64')}`) return send(401, '');
      const u = req.url ?? '';
      const o = fake.overrides.get(u);
      if (o) {
        if (o.location) res.setHeader('Location', o.location);
        return send(o.status, o.body);
      }
      switch (u) {
        case '/status':
          return send(200, '{"version":"33.0.0","modules":[]}');
        case '/druid/coordinator/v1/rules':
          return send(200, RULES);
        case '/druid/coordinator/v1/config/compaction':
          return send(200, COMPACTION);
        case '/druid/coordinator/v1/config':
          return send(200, DYNAMIC);
        case '/druid/indexer/v1/worker':
          // Never set: 200 with an empty body.
          return send(200, '');
        case '/druid/indexer/v1/supervisor?full':
          return send(200, SUPERVISORS);
        case '/druid/coordinator/v1/lookups/config/all':
          return send(404, '');
        case '/druid-ext/druid-backup/v1/offsets?dataSource=wiki':
          // As the druid-backup extension on the Overlord answers, when the test loads it.
          return fake.offsets ? send(200, fake.offsets) : send(404, '');
        case '/druid/coordinator/v1/metadata/segments?includeOvershadowedStatus&includeRealtimeSegments':
          // The Coordinator's numRows is 999 for each: a snapshot's rows must come from the Broker's sys.segments.
          return send(
            200,
            JSON.stringify(
              [1, 2, 3]
                .map((day) => ({ overshadowed: false, replicationFactor: 1, numRows: 999, realtime: false, ...descriptor(day, 'v1') }))
                .concat([{ overshadowed: false, replicationFactor: 0, numRows: 5, realtime: true, ...descriptor(8, 'rt') }]),
            ),
          );
        case '/druid/coordinator/v1/isLeader':
          return send(fake.leader ? 200 : 404, JSON.stringify({ leader: fake.leader }));
        case '/druid/v2/sql': {
          const q = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Fake['sql'][number];
          fake.sql.push(q);
          const ids = q.parameters.map((p) => p.value);
          return send(
            200,
            JSON.stringify(
              ids.flatMap((id) => {
                const r = rows[id];
                return r ? [{ segment_id: id, num_rows: r[0], is_available: r[1] }] : [];
              }),
            ),
          );
        }
        case '/druid/coordinator/v1/datasources/demo/markUsed': {
          const ids = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { segmentIds: string[] }).segmentIds;
          fake.marked.push(ids);
          return send(200, JSON.stringify({ numChangedSegments: ids.length, segmentStateChanged: true }));
        }
        default:
          return send(404, '');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fake.close = () => new Promise((r) => server.close(() => r()));
  return fake;
}

before(async () => {
  druid = await fakeDruid();
});
after(async () => {
  await druid.close();
});

test('every part is kept byte for byte as Druid answered it, with the secrets replaced in place', async () => {
  druid.overrides.clear();
  druid.overrides.set('/druid/coordinator/v1/lookups/config/all', { status: 200, body: LOOKUPS });
  const m = await captureClusterMetadata({ coordinator: druid.url, auth: AUTH, log });
  assert.equal(m.druidVersion, '33.0.0');
  assert.equal(m.rules, RULES);
  assert.equal(m.compaction, COMPACTION, 'byte for byte, Long.MAX_VALUE included');
  assert.equal(m.coordinatorDynamicConfig, DYNAMIC);
  assert.equal(m.overlordDynamicConfig, null, 'an empty body: none was ever set');
  assert.equal(m.errors, undefined);
  assert.deepEqual(m.redacted, [
    'supervisors[0].spec.spec.ioConfig.consumerProperties["sasl.jaas.config"]',
    'lookups.__default.countries.lookupExtractorFactory.extractionNamespace.connectorConfig.password',
  ]);
  const marker = JSON.stringify(REDACTED_MARKER);
  assert.equal(m.supervisors, SUPERVISORS.replace(/"sasl\.jaas\.config":"(?:[^"\\]|\\.)*"/, `"sasl.jaas.config":${marker}`));
  assert.equal(m.lookups, LOOKUPS.replace('"lookup-secret"', marker));
  assert.deepEqual(m.offsets.captured, false);
  assert.match(m.offsets.reason ?? '', /no HTTP API .* not loaded on the Overlord/);
  // The snapshot's metadata blob is JSON of this record: the texts survive it unchanged.
  assert.equal(JSON.parse(JSON.stringify(m)).compaction, COMPACTION);
});

test('narrowed to chosen data sources: their rules, compaction configs and supervisors, and the default rules', async () => {
  druid.overrides.clear();
  const m = await captureClusterMetadata({ coordinator: druid.url, overlord: druid.url, auth: AUTH, dataSources: ['other'], log });
  assert.equal(m.rules, '{"_default":[{"tieredReplicants":{"_default_tier":2},"useDefaultTierForNull":true,"type":"loadForever"}]}');
  assert.equal(JSON.parse(m.compaction as string).compactionConfigs.length, 0);
  assert.equal(m.supervisors, '[]');
  assert.deepEqual(m.redacted, []);
});

test('a part Druid refuses, or answers with something else, goes to errors; the others are kept', async () => {
  druid.overrides.clear();
  druid.overrides.set('/druid/indexer/v1/supervisor?full', { status: 403, body: '{"error":"Unauthorized"}' });
  druid.overrides.set('/druid/coordinator/v1/config', { status: 200, body: '<html>gateway</html>' });
  druid.overrides.set('/druid/coordinator/v1/rules', { status: 200, body: '{"_default":{"type":"loadForever"}}' });
  druid.overrides.set('/druid/coordinator/v1/config/compaction', { status: 200, body: `{"compactionConfigs":[${'"x",'.repeat(1_200_000)}"x"]}` });
  const m = await captureClusterMetadata({ coordinator: druid.url, auth: AUTH, log });
  assert.equal(m.errors?.supervisors, '403 Forbidden');
  assert.match(m.errors?.coordinatorDynamicConfig ?? '', /not valid JSON/);
  assert.match(m.errors?.rules ?? '', /not a list of rules/);
  assert.match(m.errors?.compaction ?? '', /larger than 4 MiB/);
  assert.equal(m.lookups, null, 'lookups never configured: 404 means none');
  assert.equal(m.errors!.lookups, undefined);
  assert.equal(m.druidVersion, '33.0.0');
  for (const p of ['supervisors', 'coordinatorDynamicConfig', 'rules', 'compaction'] as const) assert.equal(m[p], undefined);
});

test('without the credentials every part is refused, and said so; a Druid that is down is named', async () => {
  druid.overrides.clear();
  const m = await captureClusterMetadata({ coordinator: druid.url, log });
  assert.deepEqual(Object.values(m.errors ?? {}).sort(), Array(7).fill('401 Unauthorized'));
  const down = await captureClusterMetadata({ coordinator: 'http://127.0.0.1:1', log });
  assert.match(down.errors?.rules ?? '', /no answer from http:\/\/127\.0\.0\.1:1/);
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(captureClusterMetadata({ coordinator: druid.url, auth: AUTH, signal: ac.signal, log }));
});

test("row counts: sys.segments.num_rows for exactly the snapshot's ids, as parameters, in batches", async () => {
  druid.sql.length = 0;
  const demo = ['demo_a', 'demo_b', 'demo_c', "demo_'); DROP TABLE x; --", ...Array.from({ length: 600 }, (_, i) => `demo_missing_${i}`)];
  const r = await countRows(druid.url, { demo, wiki: ['wiki_a', 'wiki_a'] }, AUTH);
  assert.deepEqual(r.byDataSource, { demo: { rows: 300, counted: 2, unknown: demo.length - 2 }, wiki: { rows: 7, counted: 1, unknown: 0 } });
  assert.equal(r.bySegment.get('demo_a'), 100);
  assert.equal(r.bySegment.has('demo_c'), false, 'an unavailable segment with 0 rows: not known');
  assert.equal(druid.sql.length, 3, '604 ids in batches of 500, and one for wiki');
  for (const q of druid.sql) {
    assert.match(q.query, /^SELECT segment_id, num_rows, is_available FROM sys\.segments WHERE segment_id IN \(\?(, \?)*\)$/);
    assert.ok(!q.query.includes('DROP'));
  }
  await assert.rejects(countRows(druid.url, { demo: ['demo_a'] }), /the Broker answered 401/);
});

test("a snapshot's rows: the Broker's sys.segments.num_rows for exactly its segments, per segment and summed", async () => {
  const store = LocalStore.open(tmpDir('dbk-rows-'), { log });
  const take = () =>
    takeSnapshot({
      coordinator: druid.url,
      broker: druid.url,
      auth: AUTH,
      catalogs: [store],
      targets: [store],
      node: 'c',
      captureMetadata: captureClusterMetadata,
      log,
    });
  const lines = async (list: string) =>
    (await store.snapshots.getBlob(list, 1 << 20))
      .toString('utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string; rows?: number });
  druid.sql.length = 0;
  const { header } = await take();
  assert.deepEqual(
    header.dataSources.map((d) => [d.name, d.segments, d.rows]),
    [['demo', 3, 30]],
    'a served tombstone counts 0 rows; the realtime segment is not in the snapshot',
  );
  assert.deepEqual(
    (await lines(header.dataSources[0]!.list)).map((l) => [l.id, l.rows]),
    [
      [idOf(1, 'v1'), 10],
      [idOf(2, 'v1'), 20],
      [idOf(3, 'v1'), 0],
    ],
  );
  assert.deepEqual(
    druid.sql.map((q) => q.parameters.map((p) => p.value).sort()),
    [[1, 2, 3].map((d) => idOf(d, 'v1')).sort()],
    'exactly the snapshot ids asked',
  );
  // A segment the Broker has no count for: its own rows absent, and no short sum for the data source.
  const saved = druid.rows[idOf(3, 'v1')]!;
  delete druid.rows[idOf(3, 'v1')];
  try {
    const again = (await take()).header;
    assert.equal(again.dataSources[0]!.rows, undefined);
    assert.deepEqual(
      (await lines(again.dataSources[0]!.list)).map((l) => l.rows),
      [10, 20, undefined],
    );
  } finally {
    druid.rows[idOf(3, 'v1')] = saved;
  }
});

test("a snapshot's completeness counts good copies only: a copy the store's verify marked damaged is missing", async () => {
  const store = LocalStore.open(tmpDir('dbk-good-'), { log });
  for (const d of [1, 2, 3]) await store.put(seg(d, 'v1'));
  await store.verified(idOf(1, 'v1'), ['00000.smoosh has other bytes']);
  const { header } = await takeSnapshot({
    coordinator: druid.url,
    auth: AUTH,
    catalogs: [store],
    targets: [store],
    node: 'c',
    captureMetadata: captureClusterMetadata,
    log,
  });
  assert.equal(header.complete, false);
  const got = (await store.snapshots.getBlob(header.dataSources[0]!.list, 1 << 20))
    .toString('utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { id: string; backedUp: boolean; missing?: string });
  assert.deepEqual(
    got.map((l) => [l.id, l.backedUp, l.missing]),
    [
      [idOf(1, 'v1'), false, 'pending'],
      [idOf(2, 'v1'), true, undefined],
      [idOf(3, 'v1'), true, undefined],
    ],
  );
  // Repaired (verified clean), it counts again.
  await store.verified(idOf(1, 'v1'), []);
  const again = await takeSnapshot({
    coordinator: druid.url,
    auth: AUTH,
    catalogs: [store],
    targets: [store],
    node: 'c',
    captureMetadata: captureClusterMetadata,
    log,
  });
  assert.equal(again.header.complete, true);
});

test('isLeader follows the Coordinator; markUsed carries the credentials', async () => {
  druid.leader = true;
  assert.equal(await isLeader(druid.url, AUTH), true);
  druid.leader = false;
  assert.equal(await isLeader(druid.url, AUTH), false);
  await assert.rejects(isLeader(druid.url), /answered 401/);
  const done = await markUsed({ coordinator: druid.url, segments: { demo: ['demo_a', 'demo_b'] } }, { auth: AUTH });
  assert.deepEqual(done.outcome, { demo: { changed: 2 } });
  assert.deepEqual(druid.marked.at(-1), ['demo_a', 'demo_b']);
  const refused = await markUsed({ coordinator: druid.url, segments: { demo: ['demo_a'] } });
  assert.match(refused.outcome.demo?.error ?? '', /401/);
});

test('the cluster sidecar: a Coordinator and no cache starts with its API up, role cluster, nothing to back up', async () => {
  const root = tmpDir('dbk-cluster-');
  mkdirSync(path.join(root, 'coordinator'));
  const props = path.join(root, 'coordinator', 'runtime.properties');
  writeFileSync(
    props,
    `druid.service=druid/coordinator\ndruid.plaintextPort=8081\ndruid.backup.coordinator=${druid.url}\ndruid.backup.druid.user=${AUTH.user}\ndruid.backup.druid.password={"type":"environment","variable":"DRUID_PW"}\n`,
  );
  const sc = await startSidecar(['--config', props], { env: { DRUID_PW: AUTH.password } });
  try {
    const node = await sc.get<NodeInfo & { active?: unknown }>('/data/v1/node');
    assert.deepEqual(node.roles, ['cluster']);
    assert.deepEqual(node.druid.locations, []);
    assert.equal(node.active, undefined, 'no active backup');
    assert.ok(!sc.logs().includes(AUTH.password), "Druid's password is never logged");
  } finally {
    await sc.stop();
  }
});

test("committed offsets of the supervisors' data sources, from the druid-backup extension on the Overlord, byte for byte", async () => {
  druid.overrides.clear();
  const kafka = '{"type":"kafka","partitions":{"type":"end","stream":"wiki","topic":"wiki","partitionSequenceNumberMap":{"0":9007199254740993,"1":12}}}';
  druid.offsets = `{"dataSources":{"wiki":${kafka}}}`;
  try {
    const m = await captureClusterMetadata({ coordinator: druid.url, auth: AUTH, log });
    assert.deepEqual(m.offsets, { captured: true, dataSources: { wiki: kafka } });
    druid.offsets = '{"dataSources":{"wiki":[1,2]}}';
    const bad = await captureClusterMetadata({ coordinator: druid.url, auth: AUTH, log });
    assert.equal(bad.offsets.captured, false);
    assert.match(bad.offsets.reason ?? '', /committed offsets of "wiki" are not an object/);
    // No stream supervisor: nothing to capture, said so.
    druid.overrides.set('/druid/indexer/v1/supervisor?full', { status: 200, body: '[]' });
    const none = await captureClusterMetadata({ coordinator: druid.url, auth: AUTH, log });
    assert.deepEqual(none.offsets, { captured: false, reason: 'no stream supervisor: there are no committed offsets to capture' });
  } finally {
    delete druid.offsets;
  }
});

test("a redirect is not followed: Druid's credentials never go to a server this sidecar was not configured with", async () => {
  const seen: Array<string | undefined> = [];
  const elsewhere = http.createServer((req, res) => {
    seen.push(req.headers.authorization);
    res.end('{}');
  });
  await new Promise<void>((r) => elsewhere.listen(0, '127.0.0.1', r));
  try {
    druid.overrides.clear();
    const location = `http://127.0.0.1:${(elsewhere.address() as AddressInfo).port}/druid/coordinator/v1/rules`;
    druid.overrides.set('/druid/coordinator/v1/rules', { status: 307, body: '', location });
    const m = await captureClusterMetadata({ coordinator: druid.url, auth: AUTH, log });
    assert.equal(m.errors?.rules, '307 Temporary Redirect');
    assert.deepEqual(seen, []);
  } finally {
    druid.overrides.clear();
    await new Promise((r) => elsewhere.close(r));
  }
});
