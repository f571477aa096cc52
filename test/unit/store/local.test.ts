import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import pino from 'pino';
import { compileSelector } from '../../../sidecar/druid/selector.js';
import { encodeName, segmentPath } from '../../../sidecar/store/local/layout.js';
import { LocalStore } from '../../../sidecar/store/local/store.js';
import type { OutgoingSegment } from '../../../sidecar/store/target.js';

const log = pino({ level: 'silent' });
const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'dbk-store-'));

function seg(id: string, node: string, smoosh: string, descriptor: OutgoingSegment['descriptor'] = null): OutgoingSegment {
  const files: Record<string, Buffer> = { 'version.bin': Buffer.from([0, 0, 0, 9]), '00000.smoosh': Buffer.from(smoosh) };
  return { segmentId: id, descriptor, node, files: Object.entries(files).map(([name, b]) => ({ name, size: b.length, open: () => Readable.from([b]) })) };
}

const id = (ds: string, hour: number, version = 'v1') =>
  `${ds}_2015-09-12T${String(hour).padStart(2, '0')}:00:00.000Z_2015-09-12T${String(hour + 1).padStart(2, '0')}:00:00.000Z_${version}`;

test('directory names: readable for plain ids, one safe component for any id, distinct when long', () => {
  assert.equal(encodeName('wikipedia_2015-09-12T00:00:00.000Z_2015-09-13T00:00:00.000Z_v1'), 'wikipedia_2015-09-12T00:00:00.000Z_2015-09-13T00:00:00.000Z_v1');
  for (const s of ['..', '.hidden', 'a/b', 'a\\b', 'ümlaut', 'a b', '%41', 'x'.repeat(1000), `${'y'.repeat(300)}1`, `${'y'.repeat(300)}2`]) {
    const n = encodeName(s);
    assert.ok(n.length <= 200, `${s.slice(0, 20)}: ${n.length}`);
    assert.match(n, /^[A-Za-z0-9._:+%~-]+$/);
    assert.ok(!n.startsWith('.'), n);
  }
  assert.notEqual(encodeName(`${'y'.repeat(300)}1`), encodeName(`${'y'.repeat(300)}2`));
  assert.notEqual(encodeName('%41'), encodeName('A'));
  assert.equal(
    path.basename(segmentPath('a b', 'a b_2015-09-12T00:00:00.000Z_2015-09-13T00:00:00.000Z_v')),
    'a%20b_2015-09-12T00:00:00.000Z_2015-09-13T00:00:00.000Z_v',
  );
});

test('put stores once; the same bytes from another node add a source; different bytes are flagged, never stored over', async () => {
  const root = tmp();
  const store = LocalStore.open(root, { log });
  const a = id('wikipedia', 0);
  assert.equal((await store.put(seg(a, 'h1', 'bytes'))).outcome, 'stored');
  assert.equal((await store.put(seg(a, 'h2', 'bytes'))).outcome, 'identical');
  assert.equal((await store.put(seg(a, 'h3', 'other'))).outcome, 'conflict');
  assert.equal((await store.put(seg(a, 'h1', 'bytes'))).outcome, 'identical');
  const m = (await store.manifest(a))!;
  assert.deepEqual(
    m.sources.map((s) => s.node),
    ['h1', 'h2'],
  );
  assert.deepEqual(
    m.conflicts.map((s) => s.node),
    ['h3'],
  );
  const dir = path.join(root, segmentPath('wikipedia', a));
  assert.deepEqual(readdirSync(dir).sort(), ['00000.smoosh', 'manifest.json', 'version.bin']);
  assert.equal(readFileSync(path.join(dir, '00000.smoosh'), 'utf8'), 'bytes');
  assert.deepEqual(JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')), m);
  // addSource without a transfer: identical digest, different digest, unknown segment.
  assert.equal(await store.addSource(a, 'h4', m.digest), 'identical');
  assert.equal(await store.addSource(a, 'h5', 'c'.repeat(64)), 'conflict');
  await assert.rejects(store.addSource(id('wikipedia', 5), 'h4', m.digest), /holds no segment/);
  await assert.rejects(store.addSource(a, 'bad node', m.digest), /node name/);
  const head = (await store.head(a))!;
  assert.deepEqual(head.sources, ['h1', 'h2', 'h4']);
  assert.equal(head.size, 9);
});

test('concurrent uploads of one segment from two nodes: one copy, both sources', async () => {
  const store = LocalStore.open(tmp(), { log });
  const a = id('kttm', 1);
  const outcomes = await Promise.all([store.put(seg(a, 'h1', 'same')), store.put(seg(a, 'h2', 'same'))]);
  assert.deepEqual(outcomes.map((o) => o.outcome).sort(), ['identical', 'stored']);
  assert.deepEqual((await store.head(a))!.sources.sort(), ['h1', 'h2']);
});

test('the catalog survives a restart; the temporary area is emptied at open; filters and paging', async () => {
  const root = tmp();
  const store = LocalStore.open(root, { log });
  const ids: string[] = [];
  for (let h = 0; h < 5; h++) for (const ds of ['wikipedia', 'kttm']) ids.push(id(ds, h));
  for (const i of ids) await store.put(seg(i, 'h1', `bytes of ${i}`));
  // What a crash mid-upload leaves, and a foreign directory.
  mkdirSync(path.join(root, '.tmp', 'put-crashed'), { recursive: true });
  writeFileSync(path.join(root, '.tmp', 'put-crashed', '00000.smoosh'), 'half');
  mkdirSync(path.join(root, 'segments', 'kttm', 'not-a-segment'), { recursive: true });

  const again = LocalStore.open(root, { log });
  assert.deepEqual(readdirSync(path.join(root, '.tmp')), []);
  assert.equal(again.issues.length, 1);
  assert.equal((await again.stats()).segments, 10);
  const listed: string[] = [];
  let cursor: string | undefined;
  do {
    const page = again.catalog(compileSelector({}), 3, cursor);
    assert.equal(page.total, 10);
    listed.push(...page.items.map((s) => s.segmentId));
    cursor = page.nextCursor;
  } while (cursor);
  assert.deepEqual(listed, [...ids].sort());
  const kttm = again.catalog(compileSelector({ dataSource: 'kttm', interval: '2015-09-12T01:30:00.000Z/2015-09-12T03:00:00.000Z' }), 100);
  assert.deepEqual(
    kttm.items.map((s) => s.segmentId),
    [id('kttm', 1), id('kttm', 2)],
  );
  const manifests = [];
  for await (const m of again.list({ dataSource: 'wikipedia' })) manifests.push(m.segmentId);
  assert.equal(manifests.length, 5);
  const reader = await again.read(ids[0]!);
  const names: string[] = [];
  for await (const f of reader.files) {
    names.push(f.name);
    await f.chunks[Symbol.asyncIterator]().return?.();
  }
  assert.deepEqual(
    names,
    reader.manifest.files.map((f) => f.name),
  );
  assert.ok(!existsSync(path.join(root, '.tmp', 'put-crashed')));
});

test('an id with characters that are not safe in file names is stored under an encoded directory', async () => {
  const root = tmp();
  const store = LocalStore.open(root, { log });
  const odd = 'web logs_2015-09-12T00:00:00.000Z_2015-09-12T01:00:00.000Z_v:1%2e+é';
  assert.equal((await store.put(seg(odd, 'h1', 'x'))).outcome, 'stored');
  // A version with a path separator could name no cache path on a node restoring it: refused at the door.
  await assert.rejects(store.put(seg('web logs_2015-09-12T00:00:00.000Z_2015-09-12T01:00:00.000Z_v/../1', 'h1', 'x')), { code: 'bad_segment_id' });
  const dsDirs = readdirSync(path.join(root, 'segments'));
  assert.deepEqual(dsDirs, ['web%20logs']);
  assert.deepEqual(readdirSync(path.join(root, 'segments', dsDirs[0]!)), [encodeName(odd)]);
  const again = LocalStore.open(root, { log });
  assert.equal((await again.manifest(odd))!.segmentId, odd);
});

test('repair: a copy its verify found damaged is marked (kept over a restart) and not served; only its own bytes replace it', async () => {
  const root = tmp();
  const store = LocalStore.open(root, { log });
  const a = id('wikipedia', 3);
  await store.put(seg(a, 'h1', 'the good bytes'));
  const file = path.join(root, segmentPath('wikipedia', a), '00000.smoosh');
  writeFileSync(file, 'the goad bytes');
  await store.verified(a, ['00000.smoosh has sha256 x, the manifest y']);

  const reopened = LocalStore.open(root, { log });
  assert.match((await reopened.head(a))!.damaged ?? '', /00000\.smoosh/);
  await assert.rejects(reopened.read(a), (e: Error & { code?: string }) => e.code === 'digest_mismatch' && /awaits repair/.test(e.message));
  // An ordinary upload of the same bytes says "already held" and changes nothing.
  assert.equal((await reopened.put(seg(a, 'h2', 'the good bytes'))).outcome, 'identical');
  assert.equal(readFileSync(file, 'utf8'), 'the goad bytes');
  // A replacement with other bytes than the manifest's is refused; nothing is replaced.
  await assert.rejects(reopened.put(seg(a, 'h2', 'other bytes!!!'), { replace: true }), (e: Error & { code?: string }) => e.code === 'conflict');
  assert.equal(readFileSync(file, 'utf8'), 'the goad bytes');
  // The manifest's bytes replace the damaged ones; the mark goes, the manifest stays as it was.
  const before = await reopened.manifest(a);
  assert.equal((await reopened.put(seg(a, 'h2', 'the good bytes'), { replace: true })).outcome, 'stored');
  assert.equal(readFileSync(file, 'utf8'), 'the good bytes');
  assert.equal((await reopened.head(a))!.damaged, undefined);
  assert.deepEqual(await reopened.manifest(a), before);
  assert.deepEqual(readdirSync(path.join(root, '.tmp')), []);
  assert.equal(LocalStore.open(root, { log }).catalog(compileSelector({}), 10).items[0]!.damaged, undefined);
});
