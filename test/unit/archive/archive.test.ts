import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { Header } from 'tar';
import { WHOLE_BYTES, packSegment, packStored } from '../../../sidecar/archive/pack.js';
import { END_OF_ARCHIVE, fileHeader, padding } from '../../../sidecar/archive/tar.js';
import { DownloadReader, MAX_SLICES, UploadReader } from '../../../sidecar/archive/unpack.js';
import type { Manifest } from '../../../sidecar/store/manifest.js';
import { segmentDigest } from '../../../sidecar/store/manifest.js';
import type { OutgoingSegment } from '../../../sidecar/store/target.js';
import { SLOT, hashThread } from '../../../sidecar/util/hashThread.js';

const ID = 'wikipedia_2015-09-12T00:00:00.000Z_2015-09-12T01:00:00.000Z_2024-01-01T00:00:01.234Z';
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** `small`: each file also offers its bytes whole (`readSmall`), as the sender does for a small file read without a limit. */
function segment(files: Record<string, Buffer | string>, chunk = 7, small = false): OutgoingSegment {
  return {
    segmentId: ID,
    descriptor: {
      dataSource: 'wikipedia',
      interval: '2015-09-12T00:00:00.000Z/2015-09-12T01:00:00.000Z',
      version: '2024-01-01T00:00:01.234Z',
      shardSpec: { type: 'numbered', partitionNum: 0 },
    },
    node: 'n1',
    files: Object.entries(files).map(([name, body]) => {
      const b = Buffer.from(body);
      // Small pieces, so entries straddle chunk boundaries.
      const pieces = Array.from({ length: Math.ceil(b.length / chunk) }, (_, i) => b.subarray(i * chunk, (i + 1) * chunk));
      return { name, size: b.length, open: () => Readable.from(pieces), ...(small ? { readSmall: () => b } : {}) };
    }),
  };
}

async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

function entry(name: string, body: Buffer | string): Buffer {
  const b = Buffer.from(body);
  return Buffer.concat([fileHeader(name, b.length, new Date(0)), b, padding(b.length)]);
}

const FILES = { 'version.bin': Buffer.from([0, 0, 0, 9]), 'meta.smoosh': 'v1,2147483647,1\n', '00000.smoosh': Buffer.alloc(1500, 7), 'empty.bin': '' };

async function readUpload(bytes: Buffer | Readable, id = ID) {
  const r = new UploadReader(Buffer.isBuffer(bytes) ? Readable.from([bytes]) : bytes, { maxBytes: 1 << 30, segmentId: id });
  const decl = await r.open();
  const got: Record<string, Buffer> = {};
  for await (const f of r.files()) {
    const parts: Buffer[] = [];
    for await (const batch of f.chunks) parts.push(...batch);
    got[f.name] = Buffer.concat(parts);
  }
  return { decl, got, digests: await r.finish() };
}

test('pack then read back: same files, digests computed on both sides, exact Content-Length', async () => {
  const p = packSegment(segment(FILES));
  const bytes = await collect(p.stream);
  assert.equal(bytes.length, p.length);
  const sent = await p.files;
  assert.deepEqual(
    sent.map((f) => [f.name, f.size, f.sha256]),
    Object.entries(FILES).map(([n, b]) => [n, Buffer.byteLength(b), sha(b)]),
  );
  const { decl, got, digests } = await readUpload(
    Readable.from(Array.from({ length: Math.ceil(bytes.length / 100) }, (_, i) => bytes.subarray(i * 100, (i + 1) * 100))),
  );
  assert.equal(decl.segmentId, ID);
  assert.deepEqual(Object.keys(got), Object.keys(FILES));
  for (const [n, b] of Object.entries(FILES)) assert.ok(got[n]!.equals(Buffer.from(b)), n);
  assert.deepEqual(digests, sent);
});

test('a file arrives in batches of the slices received, without a copy; slices dripped a few bytes at a time are joined', async () => {
  for (const [size, piece] of [
    [2 * 1024 * 1024 + 5, 64 * 1024],
    [100_000, 5],
  ] as const) {
    const big = Buffer.alloc(size);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) % 251;
    const bytes = await collect(packSegment(segment({ 'version.bin': Buffer.from([0, 0, 0, 9]), '00000.smoosh': big }, 64 * 1024)).stream);
    const r = new UploadReader(
      Readable.from(Array.from({ length: Math.ceil(bytes.length / piece) }, (_, i) => bytes.subarray(i * piece, (i + 1) * piece))),
      { maxBytes: 1 << 30, segmentId: ID },
    );
    await r.open();
    for await (const f of r.files()) {
      const batches: Buffer[][] = [];
      for await (const batch of f.chunks) batches.push(batch);
      if (f.name === 'version.bin') continue;
      assert.ok(batches.every((batch) => batch.length <= MAX_SLICES));
      // Socket-sized pieces are handed on as views of what arrived; the 20,000 dripped ones as one joined buffer.
      if (piece > 1024) assert.ok(batches.flat().every((b) => b.buffer === bytes.buffer));
      else assert.deepEqual(batches.map((batch) => batch.length), [1]);
      assert.ok(Buffer.concat(batches.flat()).equals(big), `${piece}-byte pieces`);
    }
    await r.finish();
  }
});

test('GNU tar reads the wire format: plain files an operator can unpack by hand', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dbk-tar-'));
  const file = path.join(dir, 'seg.tar');
  writeFileSync(file, await collect(packSegment(segment(FILES)).stream));
  execFileSync('tar', ['-xf', file, '-C', dir]);
  assert.deepEqual(readdirSync(dir).sort(), ['00000.smoosh', 'digests.json', 'empty.bin', 'meta.smoosh', 'segment.json', 'seg.tar', 'version.bin'].sort());
  assert.ok(readFileSync(path.join(dir, '00000.smoosh')).equals(FILES['00000.smoosh']));
});

test('a file that grows or shrinks while it is packed fails the stream, streamed or packed whole', async () => {
  for (const small of [false, true])
    for (const size of [10, 1000]) {
      const seg = segment({ 'version.bin': Buffer.alloc(100) }, 7, small);
      seg.files[0]!.size = size;
      const p = packSegment(seg);
      await assert.rejects(collect(p.stream), new RegExp(size === 10 ? 'grew' : 'shrank'));
      await assert.rejects(p.files);
    }
});

test('a small segment whose files offer a small read is packed at once: one piece, the same files and digests, which GNU tar reads', async () => {
  const streamed = packSegment(segment(FILES));
  const whole = packSegment(segment(FILES, 7, true));
  const pieces: Buffer[] = [];
  for await (const c of whole.stream) pieces.push(c as Buffer);
  assert.equal(pieces.length, 1, 'one piece');
  const bytes = pieces[0]!;
  assert.equal(bytes.length, whole.length);
  assert.equal(whole.length, streamed.length);
  await collect(streamed.stream);
  assert.deepEqual(await whole.files, await streamed.files);
  const { got, digests } = await readUpload(bytes);
  for (const [n, b] of Object.entries(FILES)) assert.ok(got[n]!.equals(Buffer.from(b)), n);
  assert.deepEqual(digests, await whole.files);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dbk-tar-'));
  writeFileSync(path.join(dir, 'seg.tar'), bytes);
  execFileSync('tar', ['-xf', path.join(dir, 'seg.tar'), '-C', dir]);
  assert.ok(readFileSync(path.join(dir, '00000.smoosh')).equals(FILES['00000.smoosh']));
});

test('a segment packed whole would be larger than WHOLE_BYTES, or a file offers no small read: it streams', async () => {
  const refuse = () => assert.fail('read whole');
  const large = segment({ 'version.bin': Buffer.from([0, 0, 0, 9]), '00000.smoosh': Buffer.alloc(WHOLE_BYTES, 1) }, 64 * 1024, true);
  const mixed = segment(FILES, 7, true);
  mixed.files[2] = { ...mixed.files[2]!, readSmall: undefined };
  for (const seg of [large, mixed]) {
    for (const f of seg.files) if (f.readSmall) f.readSmall = refuse;
    const p = packSegment(seg);
    assert.equal((await collect(p.stream)).length, p.length);
  }
});

test('the reader rejects every kind of bad upload', async () => {
  const good = await collect(packSegment(segment(FILES)).stream);
  const decl = (files: unknown, extra: object = {}) =>
    entry('segment.json', JSON.stringify({ formatVersion: 1, segmentId: ID, descriptor: null, files, ...extra }));
  const vb = [{ name: 'version.bin', size: 4 }];
  const vbEntry = entry('version.bin', Buffer.from([0, 0, 0, 9]));
  const trailer = (files: unknown) => entry('digests.json', JSON.stringify({ files }));
  const goodTrailer = trailer([{ name: 'version.bin', size: 4, sha256: sha(Buffer.from([0, 0, 0, 9])) }]);
  const pax = Buffer.alloc(512);
  new Header({ path: 'PaxHeader', type: 'ExtendedHeader', size: 0, mtime: new Date(0) }).encode(pax, 0);
  const dirEntry = Buffer.alloc(512);
  new Header({ path: 'version.bin', type: 'Directory', size: 0, mode: 0o755, mtime: new Date(0) }).encode(dirEntry, 0);
  const cases: Array<[string, Buffer, RegExp, string?]> = [
    ['empty stream', Buffer.alloc(0), /ends early/],
    ['not tar', Buffer.alloc(600, 65), /checksum/],
    ['wrong first entry', vbEntry, /where "segment.json" was expected/],
    ['declaration not JSON', entry('segment.json', '{nope'), /not valid JSON/],
    ['declaration of another id', decl(vb, { segmentId: ID.replace('wikipedia', 'kttm') }), /declares segment kttm/],
    ['unknown format', decl(vb, { formatVersion: 2 }), /formatVersion 2/],
    ['duplicate names', decl([...vb, ...vb]), /listed twice/],
    ['path in a name', decl([{ name: 'a/version.bin', size: 4 }]), /not a plain segment file name/],
    ['dot-dot', decl([{ name: '..', size: 4 }]), /not a plain segment file name/],
    ['manifest.json as a file', decl([...vb, { name: 'manifest.json', size: 2 }]), /may not be named manifest.json/],
    ['negative size', decl([{ name: 'version.bin', size: -1 }]), /non-negative/],
    [
      'descriptor of another segment',
      decl(vb, { descriptor: { dataSource: 'kttm', interval: '2015-09-12T00:00:00.000Z/2015-09-12T01:00:00.000Z', version: '2024-01-01T00:00:01.234Z' } }),
      /describes segment kttm/,
    ],
    ['pax header', Buffer.concat([decl(vb), pax, END_OF_ARCHIVE]), /ExtendedHeader entry/],
    ['directory entry', Buffer.concat([decl(vb), dirEntry, END_OF_ARCHIVE]), /Directory entry/],
    ['truncated file', Buffer.concat([decl(vb), vbEntry.subarray(0, 514)]), /ends early/],
    ['missing trailer', Buffer.concat([decl(vb), vbEntry, END_OF_ARCHIVE]), /where "digests.json" was expected/],
    [
      'trailer with other names',
      Buffer.concat([decl(vb), vbEntry, trailer([{ name: 'factory.json', size: 4, sha256: 'a'.repeat(64) }]), END_OF_ARCHIVE]),
      /version\.bin or druid\.segment/,
    ],
    [
      'digest mismatch',
      Buffer.concat([decl(vb), vbEntry, trailer([{ name: 'version.bin', size: 4, sha256: 'a'.repeat(64) }]), END_OF_ARCHIVE]),
      /does not match|hash to/,
      'digest_mismatch',
    ],
    ['no end marker', Buffer.concat([decl(vb), vbEntry, goodTrailer]), /ends early/],
    ['garbage after end', Buffer.concat([decl(vb), vbEntry, goodTrailer, END_OF_ARCHIVE, Buffer.from('x')]), /after the end/],
    ['endless zeros', Buffer.concat([decl(vb), vbEntry, goodTrailer, Buffer.alloc(64 * 1024)]), /too much padding/],
    ['good upload, cut short', good.subarray(0, good.length - 1024), /ends early/],
  ];
  for (const [what, bytes, re, code] of cases) {
    await assert.rejects(readUpload(bytes), (e: Error & { code?: string }) => {
      assert.match(e.message, re, what);
      assert.equal(e.code, code ?? 'bad_archive', what);
      return true;
    });
  }
  // The size bound is checked from the declaration, before any file byte.
  const big = new UploadReader(Readable.from([decl([{ name: 'version.bin', size: 2 ** 40 }])]), { maxBytes: 1 << 20 });
  await assert.rejects(big.open(), /larger than the limit/);
});

/** A manifest of `bodies` as the store keeps one. */
function manifestOf(bodies: Record<string, Buffer | string>): Manifest {
  const files = Object.entries(bodies).map(([name, b]) => ({ name, size: Buffer.byteLength(b), sha256: sha(b) }));
  return {
    formatVersion: 1,
    segmentId: ID,
    dataSource: 'wikipedia',
    interval: '2015-09-12T00:00:00.000Z/2015-09-12T01:00:00.000Z',
    version: '2024-01-01T00:00:01.234Z',
    partition: 0,
    descriptor: null,
    files,
    size: files.reduce((n, f) => n + f.size, 0),
    digest: segmentDigest(files),
    sources: [{ node: 'n1', digest: segmentDigest(files), at: '2024-01-01T00:00:00.000Z' }],
    conflicts: [],
    createdAt: '2024-01-01T00:00:00.000Z',
    updatedAt: '2024-01-01T00:00:00.000Z',
  };
}

const openBodies = (bodies: Record<string, Buffer | string>) => (name: string) => Readable.from([Buffer.from(bodies[name]!)]);

/** Reads a download to its end; the names of its files. */
async function readDownload(stream: Readable, planned?: Manifest) {
  const r = new DownloadReader(stream, { maxBytes: 1 << 30, segmentId: ID, planned });
  const m = await r.open();
  const got: string[] = [];
  for await (const f of r.files()) {
    for await (const _ of f.chunks);
    got.push(f.name);
  }
  await r.finish();
  return { m, got };
}

test('a download (manifest.json first) is checked file by file against the manifest', async () => {
  const manifest = manifestOf(FILES);
  const ok = packStored(manifest, openBodies(FILES));
  const bytes = await collect(ok.stream);
  assert.equal(bytes.length, ok.length);
  const { m, got } = await readDownload(Readable.from([bytes]));
  assert.equal(m.digest, manifest.digest);
  assert.deepEqual(got, Object.keys(FILES));
  // A damaged store file of the same size is caught by its digest.
  const damaged = { ...FILES, '00000.smoosh': Buffer.alloc(1500, 8) };
  await assert.rejects(readDownload(packStored(manifest, openBodies(damaged)).stream), (e: Error & { code?: string }) => e.code === 'digest_mismatch');
  // A manifest whose digest does not add up is refused before any file.
  await assert.rejects(readDownload(packStored({ ...manifest, digest: 'b'.repeat(64) }, openBodies(FILES)).stream), /digest does not match its files/);
});

test('a small stored segment read in place packs to the bytes its stream gives; a stored file that grew or shrank is refused either way', async () => {
  const manifest = manifestOf(FILES);
  const calls: string[] = [];
  const readSmall = (bodies: Record<string, Buffer | string>) => (name: string, size: number) => {
    calls.push(`${name}:${size}`);
    return Buffer.from(bodies[name]!);
  };
  const whole = packStored(manifest, () => assert.fail('a small segment read in place opens no stream'), {}, readSmall(FILES));
  const streamed = packStored(manifest, openBodies(FILES));
  const bytes = await collect(whole.stream);
  assert.equal(bytes.length, whole.length);
  assert.ok(bytes.equals(await collect(streamed.stream)), 'the same tar, byte for byte');
  assert.deepEqual(calls, manifest.files.map((f) => `${f.name}:${f.size}`));
  const { got } = await readDownload(Readable.from([bytes]));
  assert.deepEqual(got, Object.keys(FILES));
  for (const [body, what] of [
    [Buffer.concat([Buffer.from(FILES['00000.smoosh']!), Buffer.from('x')]), 'larger'],
    [Buffer.from(FILES['00000.smoosh']!).subarray(1), 'smaller'],
  ] as const) {
    const bodies = { ...FILES, '00000.smoosh': body };
    for (const packed of [packStored(manifest, () => assert.fail(), {}, readSmall(bodies)), packStored(manifest, openBodies(bodies))])
      await assert.rejects(collect(packed.stream), (e: Error & { code?: string }) => e.code === 'digest_mismatch' && e.message.includes(`00000.smoosh is ${what} than its manifest says`));
  }
  // Larger than WHOLE_BYTES: it streams, and nothing is read in place.
  const bigBodies = { ...FILES, '00000.smoosh': Buffer.alloc(WHOLE_BYTES, 3) };
  const big = manifestOf(bigBodies);
  calls.length = 0;
  const { got: bigGot } = await readDownload(packStored(big, openBodies(bigBodies), {}, readSmall(bigBodies)).stream);
  assert.deepEqual(bigGot, Object.keys(bigBodies));
  assert.deepEqual(calls, []);
});

test('a download read against its planned manifest: the same id and digest, and each file checked against the plan', async () => {
  const manifest = manifestOf(FILES);
  const bytes = await collect(packStored(manifest, openBodies(FILES)).stream);
  const { m, got } = await readDownload(Readable.from([bytes]), manifest);
  assert.equal(m, manifest, 'the planned manifest, not a second parse of the same one');
  assert.deepEqual(got, Object.keys(FILES));
  // The target holds another version of the segment now: refused before any file.
  const other = manifestOf({ ...FILES, '00000.smoosh': Buffer.alloc(1500, 9) });
  await assert.rejects(readDownload(Readable.from([bytes]), other), (e: Error & { code?: string }) => e.code === 'target_error' && /changed since the restore was planned/.test(e.message));
  // A target that names the planned digest over other bytes: the file fails the planned sha256.
  const forged = packStored({ ...other, digest: manifest.digest }, openBodies({ ...FILES, '00000.smoosh': Buffer.alloc(1500, 9) }));
  await assert.rejects(readDownload(forged.stream, manifest), (e: Error & { code?: string }) => e.code === 'digest_mismatch' && e.message.includes('00000.smoosh'));
  // Garbage for a manifest: refused as a changed manifest, not parsed.
  const garbage = Buffer.concat([fileHeader('manifest.json', 4, new Date()), Buffer.from('[1]\n'), padding(4), END_OF_ARCHIVE]);
  await assert.rejects(readDownload(Readable.from([garbage]), manifest), (e: Error & { code?: string }) => e.code === 'target_error');
});

test("a download's large file is hashed on the hashing thread and checked all the same", async () => {
  const thread = hashThread();
  const sentBefore = thread.sent;
  const big = randomBytes(2 * SLOT + 12345);
  const bodies = { ...FILES, '00000.smoosh': big };
  const manifest = manifestOf(bodies);
  const { got } = await readDownload(packStored(manifest, openBodies(bodies)).stream);
  assert.deepEqual(got, Object.keys(bodies));
  assert.ok(thread.sent > sentBefore, 'its bytes went to the hashing thread');
  // One byte changed, in the last slot or the first: a digest mismatch, not a stored copy.
  for (const at of [big.length - 1, 7]) {
    const damaged = Buffer.from(big);
    damaged[at] = damaged[at]! ^ 1;
    await assert.rejects(readDownload(packStored(manifest, openBodies({ ...bodies, '00000.smoosh': damaged })).stream), (e: Error & { code?: string }) =>
      e.code === 'digest_mismatch' && e.message.includes('00000.smoosh'),
    );
  }
  await thread.close();
});
