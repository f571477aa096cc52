import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseSegmentId } from '../../../sidecar/druid/segmentId.js';
import { BackupError } from '../../../sidecar/errors.js';
import type { DestinationSpec, PresentCopy } from '../../../sidecar/restore/plan.js';
import { checkManifest, deepStoragePathOf, difference, planRestore } from '../../../sidecar/restore/plan.js';
import type { Room } from '../../../sidecar/restore/room.js';
import { describeRoom, fits, freeBytes } from '../../../sidecar/restore/room.js';
import { parseSelector, selectManifests } from '../../../sidecar/restore/select.js';
import type { Manifest } from '../../../sidecar/store/manifest.js';
import { segmentDigest } from '../../../sidecar/store/manifest.js';

const T = 'http://target:8484';
const sha = (c: string) => c.repeat(64);

function manifest(id: string, size = 1000, opts: { loadSpecPath?: string } = {}): Manifest {
  const s = parseSegmentId(id);
  const files = [
    { name: '00000.smoosh', size: size - 100, sha256: sha('a') },
    { name: 'meta.smoosh', size: 96, sha256: sha('b') },
    { name: 'version.bin', size: 4, sha256: sha('c') },
  ];
  const interval = `${s.start}/${s.end}`;
  const descriptor = {
    dataSource: s.dataSource,
    interval,
    version: s.version,
    loadSpec: { type: 'local', path: opts.loadSpecPath ?? `/deep/${s.dataSource}/${s.start}_${s.end}/${s.version}/${s.partition}/index/` },
    shardSpec: { type: 'numbered', partitionNum: s.partition, partitions: 3 },
    binaryVersion: 9,
    size,
  };
  return {
    formatVersion: 1,
    segmentId: id,
    dataSource: s.dataSource,
    interval,
    version: s.version,
    partition: s.partition,
    descriptor,
    files,
    size,
    digest: segmentDigest(files),
    sources: [],
    conflicts: [],
    createdAt: '',
    updatedAt: '',
  };
}

const A = 'wikipedia_2015-09-12T00:00:00.000Z_2015-09-12T01:00:00.000Z_2024-01-01T00:00:00.000Z';
const B = 'wikipedia_2015-09-12T01:00:00.000Z_2015-09-12T02:00:00.000Z_2024-01-01T00:00:00.000Z_1';
const C = 'web_logs_2015-09-12T00:00:00.000Z_2015-09-12T01:00:00.000Z_v_1';
const catalog = [manifest(A), manifest(B), manifest(C)];

const room = (p: string, o: Partial<Room> = {}): Room => ({ path: p, used: 0, diskFree: 1e12, diskKeep: 0, ...o });
const cache = (rooms: Room[], layout: 'nested' | 'flat' = 'nested'): DestinationSpec => ({
  kind: 'cache',
  name: 'cache',
  layout,
  infoDir: '/c/info_dir',
  rooms,
});

test('the selector filters by data source, overlapping interval and ids, all at once', () => {
  const ids = (raw: Parameters<typeof parseSelector>[0]) => selectManifests(parseSelector(raw), catalog, T).map((m) => m.segmentId);
  assert.deepEqual(ids({}), [C, A, B].sort());
  assert.deepEqual(ids({ dataSource: 'wikipedia' }), [A, B]);
  assert.deepEqual(ids({ interval: '2015-09-12T01:00/2015-09-12T01:30' }), [B], 'half-open intervals: A ends where the filter starts');
  assert.deepEqual(ids({ interval: '2015-09-12/P1D', dataSource: 'web_logs' }), [C]);
  assert.deepEqual(ids({ segmentIds: [B] }), [B]);
});

test('bad selectors are 4xx errors that say what is wrong', () => {
  const cases: Array<[Parameters<typeof parseSelector>[0], string, RegExp]> = [
    [{ segmentIds: ['not-a-segment'] }, 'bad_segment_id', /"not-a-segment" is not a Druid segment id/],
    [{ segmentIds: [] }, 'bad_request', /segmentIds is empty/],
    [{ interval: '2015-09-13/2015-09-12' }, 'bad_interval', /the end is before the start/],
    [{ interval: 'yesterday' }, 'bad_interval', /must be two ISO-8601 instants/],
    [{ dataSource: 'a/b' }, 'bad_request', /contains "\/"/],
  ];
  for (const [sel, code, re] of cases) {
    assert.throws(
      () => parseSelector(sel),
      (e: BackupError) => e.code === code && re.test(e.message) && e.status >= 400 && e.status < 500,
      JSON.stringify(sel),
    );
  }
  const unknown = A.replace('2024', '2023');
  assert.throws(
    () => selectManifests(parseSelector({ segmentIds: [A, unknown] }), catalog, T),
    (e: BackupError) => e.code === 'not_found' && e.message.includes(unknown) && !e.message.includes(`${A},`),
  );
});

test('into an empty cache every segment is restored, in the configured layout, with its info file', () => {
  for (const layout of ['nested', 'flat'] as const) {
    const { plan, items } = planRestore({ target: T, destination: cache([room('/c')], layout), manifests: catalog, present: new Map() });
    assert.deepEqual(plan.totals, { segments: 3, bytes: 3000, restore: 3, skip: 0, overwrite: 0 });
    const b = items.find((i) => i.segmentId === B)!;
    assert.equal(b.path, layout === 'nested' ? '/c/wikipedia/2015-09-12T01:00:00.000Z_2015-09-12T02:00:00.000Z/2024-01-01T00:00:00.000Z/1' : `/c/${B}`);
    assert.equal(b.infoFile, `/c/info_dir/${B}`);
    assert.ok(
      plan.segments.every((s) => !('manifest' in s)),
      'the API plan carries no internals',
    );
  }
});

test('present and matching is skipped, different is overwritten with the reason, files without info file get it written', () => {
  const ok = (m: Manifest): PresentCopy => ({ path: `/c/x/${m.segmentId}`, location: '/c', size: m.size, files: m.files.map((f) => ({ ...f })) });
  const damaged = ok(catalog[1]!);
  damaged.files![0]!.sha256 = sha('f');
  const present = new Map([
    [A, ok(catalog[0]!)],
    [B, damaged],
    [C, ok(catalog[2]!)],
  ]);
  const { plan, items } = planRestore({ target: T, destination: cache([room('/c')]), manifests: catalog, present, infoFiles: new Set([A, B]) });
  const by = new Map(plan.segments.map((s) => [s.segmentId, s]));
  assert.equal(by.get(A)!.action, 'skip');
  assert.equal(by.get(B)!.action, 'overwrite');
  assert.match(by.get(B)!.reason!, /00000\.smoosh differs/);
  assert.equal(by.get(B)!.path, `/c/x/${B}`, 'an overwrite stays where the copy is');
  assert.equal(by.get(C)!.action, 'restore');
  assert.match(by.get(C)!.reason!, /info_dir descriptor/);
  assert.equal(items.find((i) => i.segmentId === C)!.writeFiles, false);
  assert.equal(plan.totals.bytes, 1000, 'only the overwrite moves bytes');
});

test('difference names missing, resized, extra and different files', () => {
  const m = catalog[0]!;
  assert.equal(difference(m, m.files), undefined);
  const d = difference(m, [
    { name: '00000.smoosh', size: 1, sha256: sha('a') },
    { name: 'meta.smoosh', size: 96, sha256: sha('b') },
    { name: 'junk', size: 3 },
  ])!;
  assert.match(d, /00000\.smoosh has 1 bytes, the backup 900/);
  assert.match(d, /version\.bin missing/);
  assert.match(d, /junk not in the backup/);
});

test('a cache location without room is refused before any byte, naming the location, free and needed bytes', () => {
  const full = room('/c', { maxSize: 2500, used: 1000 });
  assert.throws(
    () => planRestore({ target: T, destination: cache([full]), manifests: catalog, present: new Map() }),
    (e: BackupError) =>
      e.code === 'no_space' && e.status === 507 && /\/c has 1\.46 KiB \(1500 bytes\) free/.test(e.message) && /needs 2\.93 KiB \(3000 bytes\)/.test(e.message),
  );
  // freeSpacePercent: 10 GB free on disk, 9.9995 GB of it kept free leaves 500 bytes.
  const keep = room('/d', { diskFree: 10e9, diskKeep: 10e9 - 500 });
  assert.equal(freeBytes(keep), 500);
  assert.ok(!fits(keep, 501));
  assert.match(describeRoom(keep), /freeSpacePercent keeps/);
  assert.throws(() => planRestore({ target: T, destination: cache([keep]), manifests: catalog, present: new Map() }), /\/d has 500 B \(500 bytes\) free/);
  const { plan } = planRestore({ target: T, destination: cache([full]), manifests: [catalog[0]!], present: new Map() });
  assert.equal(plan.totals.restore, 1, 'what fits is planned');
});

test('segments spread over locations, the least used first, and go where they fit', () => {
  const big = room('/big', { used: 500, maxSize: 10_000 });
  const small = room('/small', { used: 0, maxSize: 1200 });
  const { items } = planRestore({ target: T, destination: cache([big, small]), manifests: catalog, present: new Map() });
  const where = items.map((i) => i.location).sort();
  assert.deepEqual(where, ['/big', '/big', '/small']);
  assert.equal(small.used, 0, "the caller's rooms are not changed");
});

test('deep storage paths come from the loadSpec and must lie inside the storage directory', () => {
  const m = catalog[0]!;
  const deep = (x: Manifest) => deepStoragePathOf(x, checkManifest(x, 't'), '/deep');
  assert.equal(deep(m), '/deep/wikipedia/2015-09-12T00:00:00.000Z_2015-09-12T01:00:00.000Z/2024-01-01T00:00:00.000Z/0/index');
  assert.throws(() => deep(manifest(A, 1000, { loadSpecPath: '/etc/index/' })), {
    code: 'bad_segment_id',
    message: /outside the node's deep storage "\/deep"/,
  });
  assert.throws(() => deep(manifest(A, 1000, { loadSpecPath: '/deep/../etc/x/index.zip' })), /outside/);
  assert.throws(() => deep(manifest(A, 1000, { loadSpecPath: '/deep' })), /outside/, 'the storage directory itself is no segment path');
  assert.throws(() => deep({ ...m, descriptor: null }), /no descriptor with a loadSpec/);
  assert.throws(() => deep({ ...m, descriptor: { ...m.descriptor!, loadSpec: { type: 's3_zip', bucket: 'b' } } }), /"s3_zip" deep storage, not local/);
  const dest: DestinationSpec = { kind: 'deep-storage', name: 'deep-storage', directory: '/deep', room: room('/deep') };
  const zipped = manifest(B, 1000, { loadSpecPath: '/deep/w/x/index.zip' });
  const { plan } = planRestore({ target: T, destination: dest, manifests: [zipped], present: new Map([[B, { path: '/deep/w/x/index.zip', size: 900 }]]) });
  assert.equal(plan.segments[0]!.action, 'overwrite', 'a present index.zip cannot be compared without unpacking');
  assert.throws(
    () => planRestore({ target: T, destination: { ...dest, room: room('/deep', { diskFree: 10 }) }, manifests: catalog, present: new Map() }),
    (e: BackupError) => e.code === 'no_space' && /deep storage/.test(e.message),
  );
});

test('a manifest from a target is checked before anything is written from it', () => {
  const m = catalog[0]!;
  assert.equal(checkManifest(m, T).id, A);
  const bad: Array<[Manifest, RegExp]> = [
    [{ ...m, files: [{ name: '../../etc/passwd', size: 1, sha256: sha('a') }] }, /not a plain segment file name/],
    [{ ...m, files: [m.files[0]!, m.files[0]!] }, /twice/],
    [{ ...m, files: [{ ...m.files[0]!, sha256: 'zz' }] }, /no valid size and sha256/],
    [{ ...m, segmentId: B }, /names segment/],
    [{ ...m, files: [] }, /lists no files/],
  ];
  for (const [x, re] of bad)
    assert.throws(
      () => checkManifest(x, T),
      (e: BackupError) => e.code === 'target_error' && re.test(e.message),
    );
});
