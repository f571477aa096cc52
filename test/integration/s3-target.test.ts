/**
 * The S3 target (sidecar/store/s3/) driven through the `Target` interface against a real VersityGW started on a
 * free port with a temporary root: objects are files there, so what arrived is hashed without an S3 client.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { CreateMultipartUploadCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import pino from 'pino';
import { scanCache } from '../../sidecar/druid/scan.js';
import type { CachedSegment } from '../../sidecar/druid/scan.js';
import { isBackupError } from '../../sidecar/errors.js';
import { writeSampleCache } from '../../sidecar/sample/sampleCache.js';
import type { FileChunk, OutgoingSegment } from '../../sidecar/store/target.js';
import { encodeName } from '../../sidecar/store/object/layout.js';
import { S3Target } from '../../sidecar/store/s3/target.js';
import { bodyDigests } from '../../sidecar/store/s3/upload.js';
import type { VersityGw } from '../helpers/versitygw.js';
import { requireVersityGw, startVersityGw } from '../helpers/versitygw.js';

requireVersityGw();

const MIB = 1024 * 1024;
const silent = pino({ level: 'silent' });

function outgoing(seg: CachedSegment, node: string): OutgoingSegment {
  return {
    segmentId: seg.id,
    descriptor: seg.descriptor ?? null,
    node,
    files: seg.files.map((f) => ({ name: f.name, size: f.size, open: () => createReadStream(path.join(seg.dir, f.name), { highWaterMark: MIB }) })),
  };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function collect(chunks: AsyncIterable<FileChunk>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of chunks) parts.push(...(Buffer.isBuffer(c) ? [c] : c));
  return Buffer.concat(parts);
}

async function errorOf(p: Promise<unknown>): Promise<{ code: string; status: number; message: string }> {
  try {
    await p;
  } catch (e) {
    assert.ok(isBackupError(e), `expected a BackupError, got ${(e as Error)?.stack}`);
    return { code: e.code, status: e.status, message: e.message };
  }
  assert.fail('expected a failure');
}

describe('S3 target against VersityGW', () => {
  let gw: VersityGw;
  let dir: string;
  let segments: CachedSegment[];
  let n = 0;
  const targets: S3Target[] = [];
  /** A fresh bucket per test, so tests do not see each other's objects. */
  const bucket = async () => {
    const name = `dbk-test-${++n}`;
    await gw.createBucket(name);
    return name;
  };
  /** With a partSize, files larger than one part go as multipart uploads; without, every file as one PUT. */
  const open = (url: string, o: { node?: string; partSize?: number; endpoint?: string } = {}) => {
    const settings = { endpoint: o.endpoint ?? gw.endpoint, partSize: o.partSize, multipartThreshold: o.partSize };
    const t = S3Target.open(url, { log: silent, node: o.node, settings });
    targets.push(t);
    return t;
  };
  const objectFile = (b: string, key: string) => path.join(gw.root, b, key);

  before(async () => {
    gw = await startVersityGw();
    // The SDK's standard chain, as an operator would set it (this file runs in its own process).
    Object.assign(process.env, gw.env);
    dir = mkdtempSync(path.join(os.tmpdir(), 'dbk-s3t-'));
    const r = await writeSampleCache({
      dir,
      segments: 6,
      layout: 'nested',
      dataSources: ['wikipedia', 'web_logs'],
      segmentSize: 64 * 1024,
      smooshChunkSize: 2147483647,
      seed: 7,
    });
    segments = (await scanCache({ locations: [{ path: r.location }], infoDir: r.infoDir })).segments;
    assert.equal(segments.length, 6);
  });
  after(async () => {
    for (const t of targets) t.close();
    await gw?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('put stores byte-identical objects and a manifest per segment; a re-run sends no bytes', async () => {
    const b = await bucket();
    const t = open(`s3://${b}/backups/druid`, { node: 'hist-1:8083' });
    for (const seg of segments) {
      const r = await t.put(outgoing(seg, 'hist-1:8083'));
      assert.equal(r.outcome, 'stored');
      assert.equal(r.bytes, seg.size);
      const m = await t.manifest(seg.id);
      assert.ok(m);
      assert.equal(m.digest, r.digest);
      assert.ok(existsSync(objectFile(b, t.layout.manifestKey(seg.id))));
      for (const f of seg.files) {
        const stored = readFileSync(objectFile(b, t.layout.fileKey(seg.id, 'hist-1:8083', f.name)));
        assert.equal(sha(stored), sha(readFileSync(path.join(seg.dir, f.name))), `${seg.id}/${f.name}`);
        assert.equal(m.files.find((x) => x.name === f.name)?.sha256, sha(stored));
      }
    }
    let sent = 0;
    for (const seg of segments) {
      const r = await t.put(outgoing(seg, 'hist-1:8083'), { onBytes: (k) => (sent += k) });
      assert.equal(r.outcome, 'identical');
      assert.equal(r.bytes, 0);
    }
    assert.equal(sent, 0);
    const h = await t.head(segments[0]!.id);
    assert.deepEqual(h?.sources, ['hist-1:8083']);
    assert.equal(await t.head(`${segments[0]!.dataSource}_2001-01-01T00:00:00.000Z_2001-01-02T00:00:00.000Z_v9`), undefined);
  });

  test('read streams every file back as stored', async () => {
    const b = await bucket();
    const t = open(`s3://${b}`);
    const seg = segments[1]!;
    await t.put(outgoing(seg, 'n1'));
    const reader = await t.read(seg.id);
    assert.equal(reader.manifest.segmentId, seg.id);
    const names: string[] = [];
    for await (const f of reader.files) {
      names.push(f.name);
      assert.equal(sha(await collect(f.chunks)), sha(readFileSync(path.join(seg.dir, f.name))));
    }
    assert.deepEqual(
      names,
      reader.manifest.files.map((f) => f.name),
    );
  });

  test('a file larger than a part goes up in parts, checked against the composite checksum', async () => {
    const b = await bucket();
    const t = open(`s3://${b}/mp`, { partSize: 5 * MIB });
    const big = path.join(dir, 'big.bin');
    const bytes = Buffer.alloc(12 * MIB + 123);
    for (let i = 0; i < bytes.length; i += 4096) bytes.writeUInt32BE(i, i);
    writeFileSync(big, bytes);
    const seg = segments[2]!;
    const out = outgoing(seg, 'n1');
    out.files.push({ name: '00001.smoosh', size: bytes.length, open: () => createReadStream(big) });
    const r = await t.put(out);
    assert.equal(r.outcome, 'stored');
    assert.equal(sha(readFileSync(objectFile(b, t.layout.fileKey(seg.id, 'n1', '00001.smoosh')))), sha(bytes));
    assert.equal(r.files.find((f) => f.name === '00001.smoosh')?.sha256, sha(bytes));
  });

  test('a file up to the multipart threshold goes as one streamed PUT whose stored checksum is its own sha256', async () => {
    const b = await bucket();
    const t = open(`s3://${b}/one`);
    const big = path.join(dir, 'one-put.bin');
    const bytes = Buffer.alloc(12 * MIB + 321);
    for (let i = 0; i < bytes.length; i += 4096) bytes.writeUInt32BE(i ^ 0x5a5a, i);
    writeFileSync(big, bytes);
    const seg = segments[4]!;
    const out = outgoing(seg, 'n1');
    out.files.push({ name: '00001.smoosh', size: bytes.length, open: () => createReadStream(big) });
    let reported = 0;
    const r = await t.put(out, { onBytes: (n) => (reported += n) });
    assert.equal(r.outcome, 'stored');
    const key = t.layout.fileKey(seg.id, 'n1', '00001.smoosh');
    assert.equal(sha(readFileSync(objectFile(b, key))), sha(bytes));
    assert.equal(r.files.find((f) => f.name === '00001.smoosh')?.sha256, sha(bytes));
    assert.equal(reported, r.bytes, 'progress counts every byte once');
    // One PUT, not parts: the object's checksum is the file's sha256 itself, not a composite `...-N`.
    const head = await gw.client.send(new HeadObjectCommand({ Bucket: b, Key: key, ChecksumMode: 'ENABLED' }));
    assert.equal(head.ChecksumSHA256, Buffer.from(sha(bytes), 'hex').toString('base64'));
    const uploads = await gw.client.send(new ListMultipartUploadsCommand({ Bucket: b }));
    assert.deepEqual(uploads.Uploads ?? [], []);
  });

  test('a file that grows or shrinks while it streams up in one PUT fails at once with a conflict, and nothing is stored', async () => {
    const b = await bucket();
    const t = open(`s3://${b}`);
    const seg = segments[4]!;
    for (const [label, declared, actual] of [
      ['grows', 8 * MIB, 9 * MIB],
      ['shrinks', 8 * MIB, 7 * MIB],
    ] as const) {
      const out = outgoing(seg, 'n1');
      out.files.push({
        name: '00001.smoosh',
        size: declared,
        open: () =>
          Readable.from(
            (async function* () {
              for (let i = 0; i < actual / MIB; i++) yield Buffer.alloc(MIB, i);
            })(),
          ),
      });
      const e = await errorOf(t.put(out));
      assert.equal(e.code, 'conflict', `${label}: ${e.message}`);
      assert.match(e.message, /00001\.smoosh (grew beyond|has \d+ bytes, not)/, label);
      assert.equal(await t.manifest(seg.id), undefined, label);
    }
  });

  test('the server verifies the sha256 sent with the body (BadDigest on a wrong one)', async () => {
    const b = await bucket();
    const t = open(`s3://${b}`);
    const wrong = Buffer.from(sha(Buffer.from('other')), 'hex').toString('base64');
    await assert.rejects(
      (await t.s3()).client.send(new PutObjectCommand({ Bucket: b, Key: 'x', Body: Buffer.from('payload'), ChecksumSHA256: wrong })),
      /BadDigest|did not match/,
    );
    // A streamed PUT's trailing checksum is the digest the uploader computed (bodyDigests): the server checks it too.
    const body = Readable.from([Buffer.alloc(64 * 1024, 7)], { objectMode: false });
    bodyDigests.set(body, Promise.resolve(createHash('sha256').update('other').digest()));
    await assert.rejects(
      (await t.s3()).client.send(new PutObjectCommand({ Bucket: b, Key: 'y', Body: body, ContentLength: 64 * 1024, ChecksumAlgorithm: 'SHA256' })),
      /BadDigest|did not match|mismatch/i,
    );
    const keys = (await gw.client.send(new ListObjectsV2Command({ Bucket: b }))).Contents ?? [];
    assert.deepEqual(keys, [], 'nothing stored under a wrong checksum');
  });

  test('another node with the same bytes becomes a source; different bytes are flagged, never stored over', async () => {
    const b = await bucket();
    const t = open(`s3://${b}/p`);
    const seg = segments[3]!;
    assert.equal((await t.put(outgoing(seg, 'hist-1'))).outcome, 'stored');
    assert.equal((await t.put(outgoing(seg, 'hist-2'))).outcome, 'identical');
    assert.equal(await t.addSource(seg.id, 'hist-3', (await t.head(seg.id))!.digest), 'identical');
    assert.deepEqual((await t.head(seg.id))?.sources, ['hist-1', 'hist-2', 'hist-3']);

    const changed = path.join(dir, 'changed-factory.json');
    writeFileSync(changed, '{"type":"somethingElse"}');
    const other = outgoing(seg, 'hist-4');
    other.files = other.files.map((f) =>
      f.name === 'factory.json' ? { name: f.name, size: readFileSync(changed).length, open: () => createReadStream(changed) } : f,
    );
    const before = await t.manifest(seg.id);
    const r = await t.put(other);
    assert.equal(r.outcome, 'conflict');
    assert.equal(r.bytes, 0);
    const m = await t.manifest(seg.id);
    assert.equal(m?.digest, before?.digest);
    assert.deepEqual(
      m?.conflicts.map((c) => c.node),
      ['hist-4'],
    );
    const keys = (await gw.client.send(new ListObjectsV2Command({ Bucket: b, Prefix: t.layout.segmentPrefix(seg.id) }))).Contents?.map((o) => o.Key) ?? [];
    assert.ok(
      keys.every((k) => k!.startsWith(t.layout.dataPrefix(seg.id, 'hist-1'))),
      keys.join(' '),
    );
  });

  test('two nodes sending one segment at once: one copy, one manifest, the other a source', async () => {
    const b = await bucket();
    const t1 = open(`s3://${b}`);
    const t2 = open(`s3://${b}`);
    const seg = segments[4]!;
    const [r1, r2] = await Promise.all([t1.put(outgoing(seg, 'a')), t2.put(outgoing(seg, 'b'))]);
    assert.deepEqual([r1.outcome, r2.outcome].sort(), ['identical', 'stored']);
    const m = await t1.manifest(seg.id);
    assert.deepEqual(m?.sources.map((s) => s.node).sort(), ['a', 'b']);
    const keys = (await gw.client.send(new ListObjectsV2Command({ Bucket: b, Prefix: t1.layout.segmentPrefix(seg.id) }))).Contents?.map((o) => o.Key) ?? [];
    assert.equal(keys.length, seg.files.length, keys.join(' '));
  });

  for (const mode of ['in parts', 'as one PUT'] as const)
    test(`a cancelled upload (${mode}) leaves no manifest, no objects and no multipart upload`, async () => {
      await cancelledUpload(mode === 'in parts' ? 5 * MIB : undefined);
    });

  async function cancelledUpload(partSize: number | undefined): Promise<void> {
    const b = await bucket();
    const t = open(`s3://${b}`, { partSize });
    const seg = segments[5]!;
    const ac = new AbortController();
    const out = outgoing(seg, 'n1');
    // An endless slow file: cancelled after its first parts went up.
    out.files.push({
      name: '00001.smoosh',
      size: 64 * MIB,
      open: () =>
        Readable.from(
          (async function* () {
            for (let i = 0; i < 64; i++) {
              if (i === 12) setTimeout(() => ac.abort(), 10);
              yield Buffer.alloc(MIB, i);
              await new Promise((r) => setTimeout(r, 5));
            }
          })(),
        ),
    });
    const e = await errorOf(t.put(out, { signal: ac.signal }));
    assert.equal(e.code, 'cancelled');
    assert.equal(await t.manifest(seg.id), undefined);
    const objects = await gw.client.send(new ListObjectsV2Command({ Bucket: b }));
    assert.deepEqual(objects.Contents ?? [], []);
    const uploads = await gw.client.send(new ListMultipartUploadsCommand({ Bucket: b }));
    assert.deepEqual(uploads.Uploads ?? [], []);
  }

  test('at start a node aborts its own stale multipart uploads under the prefix, and only its own', async () => {
    const b = await bucket();
    const t0 = open(`s3://${b}/p`);
    const seg = segments[0]!;
    const mine = t0.layout.fileKey(seg.id, 'hist-1', '00000.smoosh');
    const theirs = t0.layout.fileKey(seg.id, 'hist-2', '00000.smoosh');
    for (const Key of [mine, theirs]) await gw.client.send(new CreateMultipartUploadCommand({ Bucket: b, Key }));
    // Opening the target is the start: no upload needed.
    open(`s3://${b}/p`, { node: 'hist-1' });
    const left = async () => (await gw.client.send(new ListMultipartUploadsCommand({ Bucket: b }))).Uploads?.map((u) => u.Key);
    for (let i = 0; i < 100 && (await left())?.length !== 1; i++) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(await left(), [theirs]);
  });

  test('list pages through more than 1,000 manifests, then serves them from the index without a GET each', async () => {
    const b = await bucket();
    const t = open(`s3://${b}/cat`);
    const seg = segments[0]!;
    await t.put(outgoing(seg, 'n1'));
    const m = (await t.manifest(seg.id))!;
    // 1,100 more manifests of made-up segments (objects of their own, written as another node would).
    const ids: string[] = [];
    const writes: Array<Promise<unknown>> = [];
    for (let i = 0; i < 1100; i++) {
      const id = `${m.dataSource}_2000-01-01T00:00:00.000Z_2000-01-02T00:00:00.000Z_v${i}`;
      ids.push(id);
      const copy = { ...m, segmentId: id, interval: '2000-01-01T00:00:00.000Z/2000-01-02T00:00:00.000Z', version: `v${i}`, partition: 0, descriptor: null };
      writes.push(gw.client.send(new PutObjectCommand({ Bucket: b, Key: t.layout.manifestKey(id), Body: JSON.stringify(copy) })));
      if (writes.length >= 32) await Promise.all(writes.splice(0));
    }
    await Promise.all(writes);
    const first: string[] = [];
    for await (const x of t.list()) first.push(x.segmentId);
    assert.equal(first.length, 1101);
    assert.equal(t.catalog.lastList?.listRequests, 2);
    assert.equal(t.catalog.lastList?.manifestGets, 1100, 'only manifests this process did not write are read');
    assert.equal(t.catalog.lastList?.indexWritten, true);

    const fresh = open(`s3://${b}/cat`);
    const second: string[] = [];
    for await (const x of fresh.list()) second.push(x.segmentId);
    assert.deepEqual(second.sort(), first.sort());
    assert.equal(fresh.catalog.lastList?.manifestGets, 0);
    assert.equal(fresh.catalog.lastList?.indexRead, 'fresh');

    const st = await fresh.stats();
    assert.equal(st.segments, 1101);
    const filtered: string[] = [];
    for await (const x of fresh.list({ interval: '2000-01-01/2000-01-02' })) filtered.push(x.segmentId);
    assert.equal(filtered.length, 1100);
    const byId: string[] = [];
    for await (const x of fresh.list({ segmentIds: [ids[5]!, seg.id] })) byId.push(x.segmentId);
    assert.deepEqual(byId.sort(), [ids[5]!, seg.id].sort());
  });

  test('the catalog index never gives a wrong answer: a changed manifest is read again, a damaged index is ignored', async () => {
    const b = await bucket();
    const t = open(`s3://${b}/idx`);
    for (const seg of segments.slice(0, 3)) await t.put(outgoing(seg, 'n1'));
    for await (const m of t.list()) assert.ok(m.segmentId);
    assert.equal(t.catalog.lastList?.indexWritten, true);
    // Another node adds itself to one manifest: its ETag changes, so that one manifest is read again.
    const other = open(`s3://${b}/idx`);
    assert.equal(await other.addSource(segments[1]!.id, 'n2', (await other.head(segments[1]!.id))!.digest), 'identical');
    const fresh = open(`s3://${b}/idx`);
    const seen = new Map<string, string[]>();
    for await (const m of fresh.list())
      seen.set(
        m.segmentId,
        m.sources.map((s) => s.node),
      );
    assert.deepEqual(seen.get(segments[1]!.id), ['n1', 'n2']);
    assert.equal(fresh.catalog.lastList?.manifestGets, 1);
    // Garbage in place of the index: every manifest is read, the answer is the same, and the index is rewritten.
    writeFileSync(objectFile(b, 'idx/catalog.json.gz'), 'not gzip');
    const third = open(`s3://${b}/idx`);
    const again: string[] = [];
    for await (const m of third.list()) again.push(m.segmentId);
    assert.deepEqual(again.sort(), [...seen.keys()].sort());
    assert.equal(third.catalog.lastList?.manifestGets, 3);
  });

  test('a hostile catalog index costs requests, never a wrong answer: out of order, a key naming another manifest, a bomb, the old format', async () => {
    const b = await bucket();
    const t = open(`s3://${b}/hx`);
    for (const seg of segments.slice(0, 4)) await t.put(outgoing(seg, 'n1'));
    const truth: string[] = [];
    for await (const m of t.list()) truth.push(m.segmentId);
    assert.equal(truth.length, 4);
    const indexFile = objectFile(b, 'hx/catalog.json.gz');
    const good = gunzipSync(readFileSync(indexFile)).toString('utf8').split('\n').filter(Boolean);
    assert.deepEqual(JSON.parse(good[0]!), { formatVersion: 2 }, 'format 2: a header line');
    assert.equal(good.length, 5, 'then one line per manifest');
    const keys = good.slice(1).map((l) => (JSON.parse(l.slice(0, l.indexOf('\t'))) as [string, string])[0]);
    assert.deepEqual(keys, [...keys].sort(), 'in key order');

    const listed = async (index: Buffer, expectGets: number, why: string) => {
      writeFileSync(indexFile, index);
      const fresh = open(`s3://${b}/hx`);
      const got: string[] = [];
      for await (const m of fresh.list()) got.push(m.segmentId);
      assert.deepEqual(got.sort(), [...truth].sort(), why);
      assert.equal(fresh.catalog.lastList?.manifestGets, expectGets, why);
      assert.equal(fresh.catalog.lastList?.indexWritten, true, `${why}: the index is written again`);
      const again = gunzipSync(readFileSync(indexFile)).toString('utf8').split('\n').filter(Boolean);
      assert.deepEqual(again, good, `${why}: the index written again is the good one`);
    };
    const gz = (lines: string[]) => gzipSync(`${lines.join('\n')}\n`);
    // Two entries swapped (1, 3, 2, 4): the second key is not where the index is, so it is read; the third is
    // used; the key out of order ends the index there, so the fourth is read.
    await listed(gz([good[0]!, good[1]!, good[3]!, good[2]!, good[4]!]), 2, 'keys out of order');
    // The second entry carries the first one's manifest under its own key and the ETag the listing gives.
    const [, k2] = JSON.parse(good[2]!.slice(0, good[2]!.indexOf('\t'))) as [string, string];
    const forged = `${JSON.stringify([keys[1], k2])}${good[1]!.slice(good[1]!.indexOf('\t'))}`;
    await listed(gz([good[0]!, good[1]!, forged, good[3]!, good[4]!]), 1, 'an entry whose manifest is not its key\'s');
    // A line of 16 MiB: beyond what an entry may be, so the rest of the index is not read.
    await listed(gz([good[0]!, good[1]!, 'x'.repeat(16 * MIB), good[3]!, good[4]!]), 3, 'a line too long');
    // A bomb: 64 MiB of zeros after the good lines, gzipped to about 64 KiB.
    await listed(Buffer.concat([gz(good), gzipSync(Buffer.alloc(64 * MIB))]), 0, 'a gzip bomb after the entries');
    // The format of earlier builds (one JSON document): read as no index, every manifest fetched, replaced.
    await listed(gzipSync(JSON.stringify({ formatVersion: 1, entries: [] })), 4, 'the format 1 index');

    // A listing of one data source rewrites its part of the index and keeps the others' entries.
    const gone = segments[0]!;
    const others = truth.filter((id) => id !== gone.id);
    assert.ok(segments.slice(1, 4).some((x) => x.dataSource !== gone.dataSource), 'the first segments span data sources');
    unlinkSync(objectFile(b, t.layout.manifestKey(gone.id)));
    const one = open(`s3://${b}/hx`);
    for await (const m of one.list({ dataSource: gone.dataSource })) assert.notEqual(m.segmentId, gone.id);
    assert.equal(one.catalog.lastList?.indexWritten, true);
    const whole = open(`s3://${b}/hx`);
    const rest: string[] = [];
    for await (const m of whole.list()) rest.push(m.segmentId);
    assert.deepEqual(rest.sort(), others.sort());
    assert.equal(whole.catalog.lastList?.manifestGets, 0, 'the other data sources kept their entries');
    assert.equal(whole.catalog.lastList?.indexWritten, false);
  });

  test('verify reads every object back and names each bad segment: changed bytes, a deleted object, an edited manifest', async () => {
    const b = await bucket();
    const t = open(`s3://${b}/v`);
    for (const seg of segments.slice(0, 4)) await t.put(outgoing(seg, 'n1'));
    const ok = await t.verify();
    assert.equal(ok.segments, 4);
    assert.equal(ok.ok, 4);
    assert.equal(
      ok.bytes,
      segments.slice(0, 4).reduce((s, x) => s + x.size, 0),
    );

    const [s0, s1, s2] = segments;
    const smoosh = objectFile(b, t.layout.fileKey(s0!.id, 'n1', '00000.smoosh'));
    const bytes = readFileSync(smoosh);
    bytes[100] = bytes[100]! ^ 0xff;
    writeFileSync(smoosh, bytes);
    unlinkSync(objectFile(b, t.layout.fileKey(s1!.id, 'n1', 'meta.smoosh')));
    const mkey = objectFile(b, t.layout.manifestKey(s2!.id));
    const edited = JSON.parse(readFileSync(mkey, 'utf8'));
    edited.files[0].sha256 = '0'.repeat(64);
    writeFileSync(mkey, JSON.stringify(edited));

    const r = await t.verify();
    assert.equal(r.segments, 4);
    assert.equal(r.ok, 1);
    const bad = new Map(r.bad.map((x) => [x.segmentId, x.problems.map((p) => p.problem)]));
    assert.deepEqual(bad.get(s0!.id), ['digest-mismatch']);
    assert.deepEqual(bad.get(s1!.id), ['missing-file']);
    assert.deepEqual(bad.get(s2!.id), ['bad-manifest']);

    const e = await errorOf(t.head(s2!.id));
    assert.equal(e.code, 'target_error');
    assert.match(e.message, /manifest of segment .* is damaged: .*digest does not match/);
    const reader = await t.read(s1!.id);
    const err = await errorOf(
      (async () => {
        for await (const f of reader.files) await collect(f.chunks);
      })(),
    );
    assert.match(err.message, /meta\.smoosh is missing from the bucket \(NoSuchKey/);
  });

  test('bad input and faults give one clear error naming the S3 code, and no secret', async () => {
    const b = await bucket();
    const seg = segments[0]!;
    const missing = await errorOf(open('s3://no-such-bucket-here').stats());
    assert.equal(missing.code, 'target_error');
    assert.match(missing.message, /NoSuchBucket/);

    const wrongSecret = 'not-the-secret-0123456789';
    // Credentials are resolved from the environment at the first call and kept by the client.
    process.env.AWS_SECRET_ACCESS_KEY = wrongSecret;
    const bad = open(`s3://${b}`);
    const denied = await errorOf(bad.put(outgoing(seg, 'n1'))).finally(() => (process.env.AWS_SECRET_ACCESS_KEY = gw.secretKey));
    assert.equal(denied.status, 403);
    assert.match(denied.message, /SignatureDoesNotMatch/);
    assert.ok(!denied.message.includes(wrongSecret) && !denied.message.includes(gw.secretKey));

    const nowhere = open(`s3://${b}`, { endpoint: 'http://127.0.0.1:9' });
    const down = await errorOf(nowhere.head(seg.id));
    assert.equal(down.code, 'target_unreachable');
    assert.match(down.message, /ECONNREFUSED/);

    for (const [url, re] of [
      ['s3://', /bucket name is missing/],
      ['s3:///prefix', /bucket name is missing/],
      ['s3://bkt/../x', /must not have "\.\." segments/],
      ['s3://ok-bucket/a/./b', /must not have "\." segments/],
      ['s3://Bad_Bucket/x', /lower-case letters/],
      ['s3://key:secret@bucket/x', /credentials do not belong/],
      ['s3://bucket/x?region=eu', /no query/],
    ] as const) {
      let e: unknown;
      try {
        S3Target.open(url, { log: silent });
      } catch (err) {
        e = err;
      }
      assert.ok(isBackupError(e) && e.code === 'bad_request', `${url}: ${String(e)}`);
      assert.match(e.message, re);
    }
  });

  test('an endpoint stopped in the middle of a segment fails the put with no manifest; after a restart it goes through', async () => {
    const b = await bucket();
    const t = open(`s3://${b}`, { partSize: 5 * MIB });
    const seg = segments[2]!;
    const out = outgoing(seg, 'n1');
    out.files.push({
      name: '00001.smoosh',
      size: 40 * MIB,
      open: () =>
        Readable.from(
          (async function* () {
            for (let i = 0; i < 40; i++) {
              if (i === 12) await gw.stop({ hard: true });
              yield Buffer.alloc(MIB, i);
            }
          })(),
        ),
    });
    const e = await errorOf(t.put(out));
    assert.equal(e.code, 'target_unreachable');
    assert.match(e.message, /does not answer \(ECONNREFUSED\)/);
    await gw.start();
    assert.equal(await t.manifest(seg.id), undefined);
    assert.equal((await t.put(outgoing(seg, 'n1'))).outcome, 'stored');
    const keys =
      (await gw.client.send(new ListObjectsV2Command({ Bucket: b, Prefix: t.layout.segmentPrefix(seg.id) }))).Contents?.map((o) =>
        o.Key!.slice(t.layout.dataPrefix(seg.id, 'n1').length),
      ) ?? [];
    assert.deepEqual(keys.sort(), seg.files.map((f) => f.name).sort(), 'the half-sent file of the failed attempt is gone');
    assert.equal((await gw.client.send(new ListMultipartUploadsCommand({ Bucket: b }))).Uploads?.length ?? 0, 0);
  });

  test('segment ids with colons, plus, percent, dots and unicode are safe keys; none is a prefix of another; a slash is refused', async () => {
    const b = await bucket();
    const t = open(`s3://${b}`);
    const seg = segments[0]!;
    const weird = [`${seg.dataSource}_${seg.start}_${seg.end}_v1+a%2F..b:ü`, `${seg.dataSource}_${seg.start}_${seg.end}_v1+a%2F..b:ü_1`];
    const climbing = outgoing(seg, 'n/1');
    climbing.segmentId = `${seg.dataSource}_${seg.start}_${seg.end}_v1/../../b`;
    climbing.descriptor = null;
    await assert.rejects(t.put(climbing), { code: 'bad_segment_id' });
    for (const id of weird) {
      const out = outgoing(seg, 'n/1');
      out.segmentId = id;
      out.descriptor = null;
      assert.equal((await t.put(out)).outcome, 'stored', id);
    }
    const keys = ((await gw.client.send(new ListObjectsV2Command({ Bucket: b }))).Contents ?? []).map((o) => o.Key!);
    for (const a of keys) for (const c of keys) if (a !== c) assert.ok(!c.startsWith(a), `${a} is a prefix of ${c}`);
    assert.ok(
      keys.every((k) => /^[A-Za-z0-9_%./-]+$/.test(k)),
      keys.join(' '),
    );
    assert.ok(keys.includes(`segments/${encodeName(weird[0]!)}/n%2F1/version.bin`));
    const listed: string[] = [];
    for await (const m of t.list()) listed.push(m.segmentId);
    assert.deepEqual(listed.sort(), [...weird].sort());
  });
});
