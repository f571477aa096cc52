/**
 * Planning a cluster restore (issue 22), without a Druid: the snapshot an --as-of chooses, the segments an --interval
 * keeps, what a rollback marks and warns, where a segment goes in a new cluster's deep storage, and the deep-storage
 * step itself on real files (a local store as the target, a temporary directory as deep storage): written, verified,
 * skipped once whole, other loadSpec types refused by name.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { deepStorageStep, loadSpecAt, parseDeepStorageHome, relativePlace, rewriteForNewHome } from '../../../sidecar/cluster/restore/deepStorage.js';
import { containedIn, killWarning, planDataSource } from '../../../sidecar/cluster/restore/rollback.js';
import { chooseSnapshot, selectSegments } from '../../../sidecar/cluster/restore/run.js';
import type { ClusterRestoreContext, PlanItem } from '../../../sidecar/cluster/restore/step.js';
import { readDruidS3Storage } from '../../../sidecar/druid/nodeConfig.js';
import { parseSegmentId } from '../../../sidecar/druid/segmentId.js';
import { parseInterval } from '../../../sidecar/druid/time.js';
import { DigestMemo } from '../../../sidecar/restore/digests.js';
import type { SnapshotHeader, SnapshotSegment } from '../../../sidecar/snapshot/model.js';
import { LocalStore } from '../../../sidecar/store/local/store.js';
import { descriptor, idOf, log, seg } from '../../helpers/snapshots.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'dbk-crplan-'));
  dirs.push(d);
  return d;
};
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const header = (id: string, time: string): SnapshotHeader => ({
  formatVersion: 1,
  id,
  time,
  node: 'cluster',
  dataSources: [],
  segments: 0,
  bytes: 0,
  complete: true,
  metadata: '0'.repeat(64),
});

describe('choosing the snapshot', () => {
  const hs = [
    header('20240103T000000Z-00000003', '2024-01-03T00:00:00.000Z'),
    header('20240101T000000Z-00000001', '2024-01-01T00:00:00.000Z'),
    header('20240102T000000Z-00000002', '2024-01-02T00:00:00.000Z'),
  ];
  test('--as-of takes the newest at or before the time', () => {
    assert.equal(chooseSnapshot(hs, { asOf: '2024-01-02T00:00:00.000Z' }).id, '20240102T000000Z-00000002');
    assert.equal(chooseSnapshot(hs, { asOf: '2024-01-02T23:59:59Z' }).id, '20240102T000000Z-00000002');
    assert.equal(chooseSnapshot(hs, { asOf: '2030-01-01T00:00:00Z' }).id, '20240103T000000Z-00000003');
  });
  test('before the oldest, an unknown id, both or neither: refused, saying why', () => {
    assert.throws(
      () => chooseSnapshot(hs, { asOf: '2023-12-31T00:00:00Z' }),
      /no snapshot was taken at or before .*the oldest kept is 20240101T000000Z-00000001/,
    );
    assert.throws(() => chooseSnapshot(hs, { snapshot: '20240104T000000Z-00000004' }), { code: 'not_found' });
    assert.throws(() => chooseSnapshot(hs, { asOf: 'yesterday' }), { code: 'bad_request' });
    assert.throws(() => chooseSnapshot(hs, {}), { code: 'bad_request' });
    assert.throws(() => chooseSnapshot(hs, { snapshot: hs[0]!.id, asOf: '2024-01-01' }), { code: 'bad_request' });
    assert.equal(chooseSnapshot(hs, { snapshot: hs[1]!.id }).id, hs[1]!.id);
  });
});

const snapSeg = (day: number, version: string, extra: Partial<SnapshotSegment> = {}): SnapshotSegment => ({
  id: idOf(day, version),
  overshadowed: false,
  size: descriptor(day, version).size,
  descriptor: descriptor(day, version),
  backedUp: true,
  ...extra,
});

describe('intervals', () => {
  test('an --interval keeps the segments overlapping it', () => {
    const list = [1, 2, 3].map((d) => snapSeg(d, 'v1'));
    assert.deepEqual(
      selectSegments(list, 'demo', [parseInterval('2024-01-02/2024-01-03')]).map((s) => s.id),
      [idOf(2, 'v1')],
    );
    assert.equal(selectSegments(list, 'demo', []).length, 3);
    assert.equal(selectSegments(list, 'demo', [parseInterval('2024-01-01T12:00:00Z/2024-01-02T01:00:00Z')]).length, 2);
  });

  test('a rollback marks unused only what lies wholly inside an interval; without one it only lists', () => {
    const day2 = parseInterval('2024-01-02/2024-01-03');
    const p = planDataSource({
      dataSource: 'demo',
      used: [
        { id: idOf(2, 'v9'), size: 10 },
        { id: idOf(1, 'v1'), size: 11 },
        { id: 'demo_2024-01-01T00:00:00.000Z_2024-01-04T00:00:00.000Z_v9', size: 30 },
      ],
      unused: new Set([idOf(2, 'v1')]),
      snapshot: [snapSeg(1, 'v1'), snapSeg(2, 'v1'), snapSeg(3, 'v1', { overshadowed: true })],
      intervals: [day2],
    });
    assert.deepEqual(
      p.items.map((i: PlanItem) => [i.action, i.subject, i.segments, i.bytes]),
      [
        ['mark unused', idOf(2, 'v9'), 1, 10],
        ['mark used', 'demo', 1, descriptor(2, 'v1').size],
      ],
    );
    assert.match(p.warnings[0]!, /1 segment\(s\) .* reach beyond --interval and are left used: demo_2024-01-01T00:00:00.000Z_2024-01-04/);
    const none = planDataSource({
      dataSource: 'demo',
      used: [{ id: idOf(2, 'v9'), size: 10 }],
      unused: new Set(),
      snapshot: [snapSeg(2, 'v1')],
      intervals: [],
    });
    assert.deepEqual(
      none.items.map((i) => [i.action, i.subject]),
      [['would mark unused with --interval', idOf(2, 'v9')]],
    );
    assert.equal(containedIn({ startMs: day2.startMs, endMs: day2.endMs }, [day2]), true);
  });

  test("a warning when Druid's automatic kill covers the data source", () => {
    assert.equal(killWarning({ killOn: false, whitelist: [], dataSources: ['demo'] }), undefined);
    assert.equal(killWarning({ killOn: true, whitelist: ['other'], dataSources: ['demo'] }), undefined);
    assert.match(
      killWarning({ killOn: true, whitelist: [], dataSources: ['demo'], bufferPeriod: 'P30D' })!,
      /kill is on .* covers demo .*empty: every data source.*P30D/,
    );
    assert.match(killWarning({ killOn: true, whitelist: 'a, demo', dataSources: ['demo'] })!, /covers demo/);
    assert.match(killWarning({ whitelist: undefined, dataSources: ['demo'] })!, /may be on/);
  });
});

describe("a new cluster's deep storage", () => {
  const id = parseSegmentId(idOf(2, 'v1'), 'demo');
  test('each segment goes to the same relative place; the loadSpec says so', () => {
    const local = { type: 'local', path: '/var/druid/segments/demo/2024-01-02T00:00:00.000Z_2024-01-03T00:00:00.000Z/v1/0/index/' };
    assert.equal(relativePlace(id, local), 'demo/2024-01-02T00:00:00.000Z_2024-01-03T00:00:00.000Z/v1/0/index/');
    assert.deepEqual(loadSpecAt(id, local, { kind: 'local', directory: '/new' }), {
      type: 'local',
      path: '/new/demo/2024-01-02T00:00:00.000Z_2024-01-03T00:00:00.000Z/v1/0/index/',
    });
    assert.deepEqual(loadSpecAt(id, local, { kind: 's3', bucket: 'b', baseKey: 'druid/seg' }), {
      type: 's3_zip',
      bucket: 'b',
      key: 'druid/seg/demo/2024-01-02T00:00:00.000Z_2024-01-03T00:00:00.000Z/v1/0/index.zip',
      S3Schema: 's3n',
    });
    const s3 = { type: 's3_zip', bucket: 'old', key: 'base/demo/2024-01-02T00:00:00.000Z_2024-01-03T00:00:00.000Z/v1/0/1a2b/index.zip', S3Schema: 's3a' };
    assert.deepEqual(loadSpecAt(id, s3, { kind: 's3', bucket: 'new', baseKey: '' }), {
      type: 's3_zip',
      bucket: 'new',
      key: 'demo/2024-01-02T00:00:00.000Z_2024-01-03T00:00:00.000Z/v1/0/1a2b/index.zip',
      S3Schema: 's3a',
    });
    // Without Druid's storage directory in it (a path made by hand): Druid's default one.
    assert.equal(relativePlace(id, { type: 'local', path: '/x/y/../index.zip' }), 'demo/2024-01-02T00:00:00.000Z_2024-01-03T00:00:00.000Z/v1/0/index.zip');
    const rewritten = rewriteForNewHome(new Map([['demo', [snapSeg(2, 'v1')]]]), { kind: 'local', directory: '/new' });
    assert.equal(rewritten.get('demo')![0]!.descriptor!.loadSpec!.path, '/new/demo/2024-01-02T00:00:00.000Z_2024-01-03T00:00:00.000Z/v1/0/index/');
  });

  test('--deep-storage takes an absolute directory or an s3:// bucket, nothing else', () => {
    assert.deepEqual(parseDeepStorageHome('/data/deep/'), { kind: 'local', directory: '/data/deep' });
    assert.deepEqual(parseDeepStorageHome('s3://my-bucket/druid/segments/'), { kind: 's3', bucket: 'my-bucket', baseKey: 'druid/segments' });
    for (const bad of ['relative/dir', 's3://Bad_Bucket/x', 's3://bucket/a/../b', 'hdfs://nn/x', ''])
      assert.throws(() => parseDeepStorageHome(bad), { code: 'bad_request' }, bad);
  });
});

describe('the deep-storage step on real files', () => {
  async function setup() {
    const store = LocalStore.open(tmp(), { log });
    for (const d of [1, 2, 3]) await store.put(seg(d, 'v1'));
    const deep = tmp();
    const at = (day: number) => ({
      ...snapSeg(day, 'v1'),
      descriptor: {
        ...descriptor(day, 'v1'),
        loadSpec: { type: 'local', path: path.join(deep, `demo/${descriptor(day, 'v1').interval.replace('/', '_')}/v1/0/index/`) },
      },
    });
    const ctx = (segments: SnapshotSegment[]): ClusterRestoreContext => ({
      snapshot: header('20240103T000000Z-00000003', '2024-01-03T00:00:00.000Z'),
      segments: new Map([['demo', segments]]),
      metadata: { offsets: { captured: false }, redacted: [] },
      dataSources: ['demo'],
      intervals: [],
      target: store,
      coordinator: 'http://127.0.0.1:1',
      overlord: 'http://127.0.0.1:1',
      author: 'test',
      comment: 'test',
    });
    return { store, deep, at, ctx };
  }
  const env = (deep: string) => ({ storage: { type: 'local', directory: deep, zip: false }, memo: new DigestMemo(), workers: 2 });

  test('writes every segment at its loadSpec, verified; a second plan finds them whole', async () => {
    const { deep, at, ctx } = await setup();
    const step = deepStorageStep(env(deep));
    const c = ctx([at(1), at(2)]);
    const plan = await step.plan(c);
    assert.deepEqual(plan.refusals, []);
    assert.equal(plan.done, false);
    assert.deepEqual(
      plan.items.map((i) => [i.action, i.subject, i.segments, i.bytes]),
      [['write to deep storage', 'demo', 2, descriptor(1, 'v1').size + descriptor(2, 'v1').size]],
    );
    const seen: string[] = [];
    const r = await step.run(c, plan, (i) => seen.push(i.action));
    assert.deepEqual(
      r.items.map((i) => i.outcome),
      ['done'],
    );
    assert.deepEqual(seen, ['write to deep storage']);
    const dir = path.join(deep, `demo/${descriptor(1, 'v1').interval.replace('/', '_')}/v1/0/index`);
    assert.deepEqual(readdirSync(dir).sort(), ['00000.smoosh', 'version.bin']);
    assert.equal(readFileSync(path.join(dir, '00000.smoosh'), 'utf8'), 'segment 1 v1');
    const again = await step.plan(c);
    assert.equal(again.done, true);
    assert.deepEqual(
      again.items.map((i) => [i.action, i.segments]),
      [['already whole in deep storage', 2]],
    );
  });

  test('an index.zip already holding the backed-up bytes is read, not written again; one that differs is replaced', async () => {
    const { deep, at, ctx } = await setup();
    const zipped = (day: number) => {
      const s = at(day);
      return { ...s, descriptor: { ...s.descriptor, loadSpec: { type: 'local', path: s.descriptor.loadSpec.path.replace(/index\/$/, 'index.zip') } } };
    };
    const file = (day: number) => zipped(day).descriptor.loadSpec.path;
    const step = deepStorageStep(env(deep));
    const c = ctx([zipped(1), zipped(2)]);
    const first = await step.plan(c);
    assert.deepEqual(first.items.map((i) => [i.action, i.segments]), [['write to deep storage', 2]]);
    await step.run(c, first, () => undefined);
    const before = [1, 2].map((d) => statSync(file(d), { bigint: true }));
    assert.equal(execFileSync('unzip', ['-p', file(1), '00000.smoosh'], { encoding: 'utf8' }), 'segment 1 v1', 'a zip unzip reads');

    const again = await step.plan(c);
    assert.equal(again.done, true);
    assert.deepEqual(again.items.map((i) => [i.action, i.segments]), [['already whole in deep storage', 2]]);
    await step.run(c, again, () => undefined);
    const after_ = [1, 2].map((d) => statSync(file(d), { bigint: true }));
    assert.deepEqual(
      after_.map((s) => [s.ino, s.mtimeNs]),
      before.map((s) => [s.ino, s.mtimeNs]),
      'a second run writes nothing: the same inode, the same mtime',
    );

    // Zipped by another writer (Info-ZIP here, as Druid zips: flat, deflated): the same bytes are the same segment.
    const other = tmp();
    writeFileSync(path.join(other, 'version.bin'), Buffer.from([0, 0, 0, 9]));
    writeFileSync(path.join(other, '00000.smoosh'), 'segment 1 v1');
    rmSync(file(1));
    execFileSync('zip', ['-q', '-j', file(1), path.join(other, 'version.bin'), path.join(other, '00000.smoosh')]);
    const foreign = statSync(file(1), { bigint: true });
    const p3 = await step.plan(c);
    assert.deepEqual(p3.items.map((i) => [i.action, i.segments]), [['already whole in deep storage', 2]]);

    // The same names and sizes but one byte changed; a file that is no zip at all: both written again, verified.
    writeFileSync(path.join(other, '00000.smoosh'), 'segment 1 vX');
    rmSync(file(1));
    execFileSync('zip', ['-q', '-j', file(1), path.join(other, 'version.bin'), path.join(other, '00000.smoosh')]);
    writeFileSync(file(2), 'not a zip');
    const p4 = await step.plan(c);
    assert.deepEqual(p4.items.map((i) => [i.action, i.segments]), [['write to deep storage', 2]]);
    await step.run(c, p4, () => undefined);
    assert.notEqual(statSync(file(1), { bigint: true }).ino, foreign.ino);
    for (const d of [1, 2]) assert.equal(execFileSync('unzip', ['-p', file(d), '00000.smoosh'], { encoding: 'utf8' }), `segment ${d} v1`);
    assert.equal((await step.plan(c)).done, true);
  });

  test('another deep-storage type is refused by name; a segment no target holds is named', async () => {
    const { deep, at, ctx } = await setup();
    const hdfs = { ...at(3), descriptor: { ...descriptor(3, 'v1'), loadSpec: { type: 'hdfs', path: 'hdfs://nn/demo/index.zip' } } };
    const lost = { ...snapSeg(4, 'v1'), descriptor: { ...descriptor(4, 'v1') } };
    const plan = await deepStorageStep(env(deep)).plan(ctx([at(1), hdfs, lost]));
    assert.match(plan.refusals.join('\n'), /1 segment with "hdfs" loadSpecs: only local and s3_zip deep storage can be written/);
    assert.match(plan.refusals.join('\n'), new RegExp(`${idOf(4, 'v1')}: no target holds it`));
    // A loadSpec outside this node's deep storage is refused, not written where a snapshot says.
    const outside = { ...at(2), descriptor: { ...descriptor(2, 'v1'), loadSpec: { type: 'local', path: '/etc/druid/index/' } } };
    const p2 = await deepStorageStep(env(deep)).plan(ctx([outside]));
    assert.match(p2.refusals.join('\n'), /outside the node's deep storage/);
    assert.equal(existsSync('/etc/druid/index'), false);
  });

  test('--deep-storage DIR: the same relative place in the new directory', async () => {
    const { deep, at, ctx } = await setup();
    const fresh = tmp();
    const home = { kind: 'local' as const, directory: fresh };
    const c = ctx([...rewriteForNewHome(new Map([['demo', [at(1)]]]), home).get('demo')!]);
    const step = deepStorageStep({ ...env(deep), home });
    const plan = await step.plan(c);
    assert.deepEqual(
      plan.items.map((i) => [i.action, i.segments]),
      [
        ['write to deep storage', 1],
        ['point loadSpecs at the new deep storage', 1],
      ],
    );
    await step.run(c, plan, () => undefined);
    assert.deepEqual(readdirSync(path.join(fresh, `demo/${descriptor(1, 'v1').interval.replace('/', '_')}/v1/0/index`)).sort(), [
      '00000.smoosh',
      'version.bin',
    ]);
    assert.deepEqual(readdirSync(deep), [], 'the old deep storage is not written');
  });
});

describe("Druid's S3 deep storage settings, read as its S3 extension reads them", () => {
  const props = (o: Record<string, string>) =>
    new Map(Object.entries(o).map(([k, value], i) => [k, { value, line: i + 1, file: 'common.runtime.properties' }]));
  test('bucket, base key, credentials through a password provider, endpoint, path style, encryption', () => {
    const s = readDruidS3Storage(
      props({
        'druid.storage.bucket': 'deep',
        'druid.storage.baseKey': '/druid/segments/',
        'druid.storage.sse.type': 'kms',
        'druid.storage.sse.kms.keyId': 'key-1',
        'druid.s3.accessKey': 'AKIA1',
        'druid.s3.secretKey': '{"type":"environment","variable":"MY_SECRET"}',
        'druid.s3.endpoint.url': 'minio:9000',
        'druid.s3.protocol': 'http',
        'druid.s3.enablePathStyleAccess': 'true',
      }),
      { MY_SECRET: 's3cr3t' },
    );
    assert.deepEqual(s, {
      bucket: 'deep',
      baseKey: 'druid/segments',
      sse: { type: 'kms', keyId: 'key-1' },
      credentials: { accessKeyId: 'AKIA1', secretAccessKey: 's3cr3t' },
      endpoint: 'http://minio:9000',
      pathStyle: true,
    });
    assert.deepEqual(readDruidS3Storage(props({}), {}), {}, 'nothing set: the AWS SDK chain, as Druid falls back to');
    assert.throws(() => readDruidS3Storage(props({ 'druid.storage.sse.type': 'rot13' }), {}), { code: 'bad_config' });
    assert.throws(() => readDruidS3Storage(props({ 'druid.storage.sse.type': 'custom' }), {}), /base64EncodedKey/);
    assert.throws(
      () => readDruidS3Storage(props({ 'druid.s3.secretKey': '{"type":"mapString"}' }), {}),
      /only the "environment" and "default" password providers/,
    );
  });
});
