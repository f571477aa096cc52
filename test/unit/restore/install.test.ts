import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { scanCache } from '../../../sidecar/druid/scan.js';
import type { BackupError } from '../../../sidecar/errors.js';
import { removeLeftovers, stagingPath, swapInto, writeFileAtomic } from '../../../sidecar/restore/atomic.js';
import { DigestMemo } from '../../../sidecar/restore/digests.js';
import { receiveInto } from '../../../sidecar/restore/receive.js';
import { receiveZip } from '../../../sidecar/restore/zip.js';
import { checkSegmentDir } from '../../../sidecar/verify/check.js';
import { writeSampleCache } from '../../../sidecar/sample/sampleCache.js';
import { batchedReaderFrom, manifestOf, readerFrom } from './fixtures.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'dbk-restore-'));

async function sample(segments = 2, smooshChunkSize = 2147483647) {
  const dir = tmp();
  const r = await writeSampleCache({ dir, segments, layout: 'nested', dataSources: ['wikipedia'], segmentSize: 64 * 1024, smooshChunkSize, seed: 3 });
  const scan = await scanCache({ locations: [{ path: r.location }] });
  return { dir, r, segments: scan.segments };
}

const tree = (dir: string) =>
  readdirSync(dir)
    .sort()
    .map((n) => [n, readFileSync(path.join(dir, n)).toString('base64')]);

test('receiveInto writes every file, checked against the manifest, and refuses a damaged or incomplete stream', async () => {
  const { dir, segments } = await sample();
  const s = segments[0]!;
  const m = await manifestOf(s);
  const out = path.join(dir, 'out');
  mkdirSync(out);
  await receiveInto(readerFrom(s.dir, m), m, out);
  assert.deepEqual(tree(out), tree(s.dir));

  // One flipped byte in the source: the digest check fails and names the file.
  const damaged = path.join(dir, 'damaged');
  await fs.cp(s.dir, damaged, { recursive: true });
  const f = path.join(damaged, '00000.smoosh');
  const buf = readFileSync(f);
  buf[100] = buf[100]! ^ 1;
  writeFileSync(f, buf);
  const into = (name: string) => {
    const d = path.join(dir, name);
    mkdirSync(d);
    return d;
  };
  await assert.rejects(
    receiveInto(readerFrom(damaged, m), m, into('a')),
    (e: BackupError) => e.code === 'digest_mismatch' && /00000\.smoosh has sha256/.test(e.message) && e.message.includes(s.id),
  );
  await assert.rejects(receiveInto(readerFrom(s.dir, m, ['version.bin', 'meta.smoosh']), m, into('b')), /00000\.smoosh, factory\.json was not sent/);
  await assert.rejects(receiveInto(readerFrom(s.dir, m, ['version.bin', 'version.bin']), m, into('c')), /not in the manifest \(or was sent twice\)/);
  await assert.rejects(
    receiveInto({ ...readerFrom(s.dir, m), manifest: { ...m, digest: 'x' } }, m, into('d')),
    /manifest changed since the restore was planned/,
  );
  const ctl = new AbortController();
  ctl.abort();
  await assert.rejects(receiveInto(readerFrom(s.dir, m), m, into('e'), { signal: ctl.signal }), /cancelled/);
});

test('receiveInto and receiveZip take files that arrive as batches of slices, checking every byte of every slice', async () => {
  const { dir, segments } = await sample(1, 40 * 1024);
  const s = segments[0]!;
  const m = await manifestOf(s);
  const out = path.join(dir, 'out');
  mkdirSync(out);
  // 1000-byte slices, 7 to a batch: batches and files end mid-slice.
  await receiveInto(batchedReaderFrom(s.dir, m, 1000, 7), m, out);
  assert.deepEqual(tree(out), tree(s.dir));
  const zip = path.join(dir, 'index.zip');
  await receiveZip(batchedReaderFrom(s.dir, m, 1000, 7), m, zip);
  const unzipped = path.join(dir, 'unzipped');
  execFileSync('python3', ['-c', 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])', zip, unzipped]);
  assert.deepEqual(tree(unzipped), tree(s.dir));

  const into = (name: string) => {
    const d = path.join(dir, name);
    mkdirSync(d);
    return d;
  };
  // A byte flipped in the last slice of a batch, and a file one byte longer inside its last batch.
  const flipped = (name: string, b: Buffer) => {
    if (name !== '00000.smoosh') return b;
    const c = Buffer.from(b);
    c[6999] = c[6999]! ^ 1;
    return c;
  };
  await assert.rejects(receiveInto(batchedReaderFrom(s.dir, m, 1000, 7, flipped), m, into('a')), /00000\.smoosh has sha256/);
  await assert.rejects(receiveZip(batchedReaderFrom(s.dir, m, 1000, 7, flipped), m, path.join(dir, 'bad.zip')), /00000\.smoosh has sha256/);
  const longer = (name: string, b: Buffer) => (name === 'meta.smoosh' ? Buffer.concat([b, Buffer.from('x')]) : b);
  await assert.rejects(receiveInto(batchedReaderFrom(s.dir, m, 1000, 7, longer), m, into('b')), /meta\.smoosh is longer than/);
});

test('swapInto replaces a copy whose files are hard links without touching the linked files, and puts the old copy back when the swap fails', async () => {
  const { dir, segments } = await sample();
  const s = segments[0]!;
  const location = path.dirname(path.dirname(path.dirname(path.dirname(s.dir))));
  // deep storage shares the inode of every cache file, as on a real Druid with local deep storage
  const deep = path.join(dir, 'deep-copy');
  mkdirSync(deep);
  for (const n of readdirSync(s.dir)) linkSync(path.join(s.dir, n), path.join(deep, n));
  const before = tree(deep);
  const staged = stagingPath(location, 'restore');
  mkdirSync(staged);
  for (const n of readdirSync(s.dir)) writeFileSync(path.join(staged, n), `new ${n}`);
  await swapInto(staged, s.dir, location);
  assert.equal(readFileSync(path.join(s.dir, 'version.bin'), 'utf8'), 'new version.bin');
  assert.deepEqual(tree(deep), before, 'the hard-linked deep storage files are unchanged');
  assert.equal(statSync(path.join(deep, 'version.bin')).nlink, 1);
  assert.deepEqual(
    readdirSync(location).filter((n) => n.startsWith('.')),
    [],
    'no journal or old copy left',
  );

  const missing = stagingPath(location, 'restore');
  await assert.rejects(swapInto(missing, s.dir, location), /ENOENT/);
  assert.equal(readFileSync(path.join(s.dir, 'version.bin'), 'utf8'), 'new version.bin', 'the old copy is back');
  assert.deepEqual(
    readdirSync(location).filter((n) => n.startsWith('.')),
    [],
  );
});

test('leftovers of a crash: staging goes, an old copy whose swap stopped halfway is put back', async () => {
  const { segments } = await sample(2);
  const [s1, s2] = segments as [(typeof segments)[0], (typeof segments)[0]];
  const location = s1.location;
  const content = tree(s1.dir);
  // The crash came between moving the old copy aside and renaming the new one in.
  const old = stagingPath(location, 'old');
  writeFileSync(`${old}.json`, JSON.stringify({ path: s1.dir }));
  await fs.rename(s1.dir, old);
  // A finished swap whose old copy was not yet removed, and plain staging.
  const old2 = stagingPath(location, 'old');
  await fs.cp(s2.dir, old2, { recursive: true });
  writeFileSync(`${old2}.json`, JSON.stringify({ path: s2.dir }));
  mkdirSync(stagingPath(location, 'restore'));
  writeFileSync(stagingPath(location, 'tmp'), 'x');
  const r = await removeLeftovers(location);
  assert.deepEqual(r.putBack, [s1.dir]);
  assert.deepEqual(tree(s1.dir), content);
  assert.equal(r.removed.length, 5, "both journals, the finished swap's old copy, the staging dir and the temporary file");
  assert.deepEqual(r.problems, []);
  assert.deepEqual(
    readdirSync(location).filter((n) => n.startsWith('.')),
    [],
  );
});

test('writeFileAtomic replaces a file by rename, never writing into it', async () => {
  const dir = tmp();
  const f = path.join(dir, 'info');
  writeFileSync(f, 'old');
  linkSync(f, path.join(dir, 'link'));
  await writeFileAtomic(f, 'new');
  assert.equal(readFileSync(f, 'utf8'), 'new');
  assert.equal(readFileSync(path.join(dir, 'link'), 'utf8'), 'old');
  assert.deepEqual(readdirSync(dir).sort(), ['info', 'link']);
});

test('receiveZip writes an index.zip that unzips (Python zipfile) to the same bytes; a damaged stream leaves nothing usable', async () => {
  const { dir, segments } = await sample(1, 40 * 1024);
  const s = segments[0]!;
  assert.ok(
    s.files.some((f) => f.name === '00001.smoosh'),
    'the sample has several smoosh chunks',
  );
  const m = await manifestOf(s);
  const zip = path.join(dir, 'index.zip');
  await receiveZip(readerFrom(s.dir, m), m, zip);
  const out = path.join(dir, 'unzipped');
  execFileSync('python3', ['-c', 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; z.extractall(sys.argv[2])', zip, out]);
  assert.deepEqual(tree(out), tree(s.dir));
  assert.deepEqual(await checkSegmentDir(m, out), []);

  const bad = { ...m, files: m.files.map((f) => (f.name === 'meta.smoosh' ? { ...f, sha256: '0'.repeat(64) } : f)) };
  bad.digest = m.digest;
  await assert.rejects(receiveZip(readerFrom(s.dir, bad), bad, path.join(dir, 'bad.zip')), /meta\.smoosh has sha256/);
});

test('checkSegmentDir reports missing, extra, resized and damaged files', async () => {
  const { segments } = await sample();
  const s = segments[0]!;
  const m = await manifestOf(s);
  const memo = new DigestMemo();
  assert.deepEqual(await checkSegmentDir(m, s.dir, { memo }), []);
  writeFileSync(path.join(s.dir, 'extra.bin'), 'x');
  await fs.rm(path.join(s.dir, 'factory.json'));
  await fs.truncate(path.join(s.dir, 'meta.smoosh'), 3);
  const f = path.join(s.dir, '00000.smoosh');
  const buf = readFileSync(f);
  buf[0] = buf[0]! ^ 0xff;
  writeFileSync(f, buf);
  const problems = (opts: Parameters<typeof checkSegmentDir>[2]) => checkSegmentDir(m, s.dir, opts).then((p) => p.map((x) => `${x.problem} ${x.file}`).sort());
  const base = ['extra-file extra.bin', 'missing-file factory.json', 'size-mismatch meta.smoosh'];
  assert.deepEqual(await problems({ memo, fresh: true }), [...base, 'digest-mismatch 00000.smoosh'].sort());
  assert.deepEqual(await problems({}), [...base, 'digest-mismatch 00000.smoosh'].sort());
  assert.ok(!existsSync(path.join(s.dir, 'downloadStartMarker')));
});
