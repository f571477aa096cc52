/**
 * Hostile batches to `POST /data/v1/store/batch` (store/http/batch.ts), on a real target sidecar over loopback: a
 * segment whose bytes do not match its digest amid good ones, a file name that climbs out, too many segments or
 * bytes, a duplicate id, a header that is not one, a body cut off or longer than its lengths, and the connection
 * closed mid-body. The good segments of a batch are stored, each bad one refused with the error a single PUT would
 * get; a batch whose framing is broken is refused whole; nothing stored before is touched, nothing is written
 * outside the store and its temporary area is empty after each.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { END_OF_ARCHIVE, fileHeader, padding } from '../../sidecar/archive/tar.js';
import { BATCH_CONTENT_TYPE, BATCH_MAX_BYTES, BATCH_MAX_SEGMENTS, encodeBatchHeader } from '../../sidecar/store/http/batch.js';
import type { AnsweredOutcome } from '../helpers/batch.js';
import { VERSION_BIN, batchBody as batch, hourSegmentId, packedUpload as packed } from '../helpers/batch.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { startSidecar, tmpDir, waitFor } from '../helpers/sidecar.js';
import { storedSegmentDir } from '../helpers/store.js';
import { checkStore, rawHttp, treeDiff, treeSnapshot } from './lib.js';

const VB = VERSION_BIN;
const idOf = hourSegmentId;
const BEFORE = idOf('batchbefore', 0);

function entry(name: string, body: Buffer | string): Buffer {
  const b = Buffer.from(body);
  return Buffer.concat([fileHeader(name, b.length, new Date(0)), b, padding(b.length)]);
}

type Outcome = AnsweredOutcome;

describe('hostile batches to POST /data/v1/store/batch', () => {
  let sandbox: string;
  let storeDir: string;
  let target: SidecarProcess;
  let storedBefore: Map<string, string>;
  let outside: Map<string, string>;
  const aimed: string[] = [];
  const tally: Record<string, number | undefined> = {};

  const post = (body: Buffer, headers: Record<string, string> = {}) =>
    target.request<{ results: Outcome[]; error?: { code: string; message: string } }>('POST', '/data/v1/store/batch', undefined, {
      raw: body,
      headers: { 'content-type': BATCH_CONTENT_TYPE, 'x-druid-backup-node': 'attacker', ...headers },
    });
  const skip = (rel: string) => rel.startsWith('store/.tmp') || rel.startsWith('state') || rel.startsWith('store/segments');

  before(async () => {
    sandbox = tmpDir('dbk-hostile-batch-');
    storeDir = path.join(sandbox, 'store');
    mkdirSync(path.join(sandbox, 'neighbour'));
    writeFileSync(path.join(sandbox, 'neighbour', 'keep.txt'), 'an operator file beside the store');
    target = await startSidecar(['--store', storeDir], { stateDir: path.join(sandbox, 'state') });
    const first = await target.request('PUT', `/data/v1/store/segments/${encodeURIComponent(BEFORE)}`, undefined, {
      raw: await packed(BEFORE, { 'version.bin': VB, '00000.smoosh': randomBytes(5000) }),
      headers: { 'content-type': 'application/x-tar', 'x-druid-backup-node': 'n0' },
    });
    assert.equal(first.status, 201, first.text);
    storedBefore = treeSnapshot(path.join(storeDir, 'segments', 'batchbefore'));
    outside = treeSnapshot(sandbox, skip);
  });
  after(async () => {
    await target?.stop();
    console.log(`hostile batches: statuses ${JSON.stringify(tally)}`);
  });

  async function assertHarmless(what: string): Promise<void> {
    await waitFor(`the temporary area to be empty after ${what}`, () => readdirSync(path.join(storeDir, '.tmp')).length === 0, 10_000, 25);
    for (const p of aimed) assert.ok(!existsSync(p), `${what}: ${p} was created`);
    assert.deepEqual(treeDiff(outside, treeSnapshot(sandbox, skip)), [], `${what}: nothing changes outside the store's segments and .tmp`);
    assert.deepEqual(
      treeDiff(storedBefore, treeSnapshot(path.join(storeDir, 'segments', 'batchbefore'))),
      [],
      `${what}: the segment stored before is untouched`,
    );
    assert.deepEqual(checkStore(storeDir).problems, [], `${what}: the store is consistent`);
  }

  function refusedWhole(what: string, r: { status?: number; text?: string; body?: string }, status: number, code: string): void {
    const text = r.text ?? r.body ?? '';
    tally[what] = r.status;
    assert.equal(r.status, status, `${what}: ${text}`);
    const e = (JSON.parse(text) as { error?: { code: string; message: string } }).error;
    assert.equal(e?.code, code, `${what}: ${text}`);
    assert.doesNotMatch(text, /\n\s+at |node:internal|\.ts:\d+/, `${what}: no stack trace`);
  }

  const held = (id: string) => checkStore(storeDir).segments.has(id);

  test('good segments of a batch are stored byte for byte, as by a single PUT', async () => {
    const files = [0, 1, 2].map(() => ({ 'version.bin': VB, '00000.smoosh': randomBytes(2000), 'meta.smoosh': randomBytes(100) }));
    const ids = [0, 1, 2].map((h) => idOf('batchgood', h));
    const r = await post(batch(await Promise.all(ids.map(async (id, i) => [id, await packed(id, files[i]!)] as [string, Buffer]))));
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(
      r.json.results.map((o) => [o.segmentId, o.outcome]),
      ids.map((id) => [id, 'stored']),
    );
    for (const [i, id] of ids.entries()) {
      const dir = storedSegmentDir(storeDir, id);
      for (const [name, body] of Object.entries(files[i]!)) assert.ok(readFileSync(path.join(dir, name)).equals(body), `${id}/${name}`);
      const sources = (JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as { sources: Array<{ node: string }> }).sources;
      assert.deepEqual(
        sources.map((s) => s.node),
        ['attacker'],
      );
    }
    // Sent again: identical, and a different copy of one is a conflict, each in its own outcome.
    const again = await post(
      batch([
        [ids[0]!, await packed(ids[0]!, files[0]!)],
        [ids[1]!, await packed(ids[1]!, { 'version.bin': VB, '00000.smoosh': randomBytes(2000) })],
      ]),
      { 'x-druid-backup-node': 'other' },
    );
    assert.equal(again.status, 200, again.text);
    assert.deepEqual(
      again.json.results.map((o) => o.outcome),
      ['identical', 'conflict'],
    );
    await assertHarmless('a good batch');
  });

  test('a segment whose bytes do not match its digest, amid good ones: it is refused, they are stored', async () => {
    const ids = [0, 1, 2].map((h) => idOf('batchdigest', h));
    const good = await Promise.all([ids[0]!, ids[2]!].map((id) => packed(id, { 'version.bin': VB, '00000.smoosh': randomBytes(3000) })));
    const smoosh = randomBytes(3000);
    const bad = await packed(ids[1]!, { 'version.bin': VB, '00000.smoosh': smoosh });
    // One byte of the file flipped on the way: the trailer's digest is the sender's.
    bad[bad.indexOf(smoosh) + 10]! ^= 0xff;
    const r = await post(
      batch([
        [ids[0]!, good[0]!],
        [ids[1]!, bad],
        [ids[2]!, good[1]!],
      ]),
    );
    assert.equal(r.status, 200, r.text);
    tally['digest mismatch amid good ones'] = r.json.results[1]?.status;
    assert.deepEqual(
      r.json.results.map((o) => [o.outcome, o.error?.code]),
      [
        ['stored', undefined],
        ['refused', 'digest_mismatch'],
        ['stored', undefined],
      ],
    );
    assert.equal(r.json.results[1]!.status, 422);
    assert.ok(held(ids[0]!) && held(ids[2]!) && !held(ids[1]!));
    await assertHarmless('digest mismatch');
  });

  test('a file name that climbs out of its segment, inside a batch: that segment is refused, nothing is written outside', async () => {
    const escape = path.join(sandbox, 'escaped');
    const evil = `/tmp/dbk-evil-batch-${randomBytes(6).toString('hex')}`;
    aimed.push(escape, evil);
    const ids = [0, 1, 2].map((h) => idOf('batchpath', h));
    const climb = (id: string, name: string) =>
      Buffer.concat([
        entry('segment.json', JSON.stringify({ formatVersion: 1, segmentId: id, descriptor: null, files: [{ name, size: 4 }] })),
        entry(name, VB),
        entry('digests.json', JSON.stringify({ files: [{ name, size: 4, sha256: '3b28a6c3766c6295adad976d349705ef49393fbfdebe4facb5862d2cdfa285d3' }] })),
        END_OF_ARCHIVE,
      ]);
    const r = await post(
      batch([
        [ids[0]!, climb(ids[0]!, '../../../escaped')],
        [ids[1]!, await packed(ids[1]!, { 'version.bin': VB })],
        [ids[2]!, climb(ids[2]!, evil)],
      ]),
    );
    assert.equal(r.status, 200, r.text);
    tally['file name climbing out'] = r.json.results[0]?.status;
    assert.deepEqual(
      r.json.results.map((o) => [o.outcome, o.error?.code]),
      [
        ['refused', 'bad_archive'],
        ['stored', undefined],
        ['refused', 'bad_archive'],
      ],
    );
    await assertHarmless('a file name climbing out');
  });

  test('too many segments, too many bytes, a duplicate id, a header that is not one: refused whole, nothing stored', async () => {
    const one = await packed(idOf('batchlimits', 0), { 'version.bin': VB });
    const many = Array.from({ length: BATCH_MAX_SEGMENTS + 1 }, (_, i) => ({ segmentId: idOf(`batchmany${i}`, 0), length: one.length }));
    refusedWhole('too many segments', await post(encodeBatchHeader(many)), 413, 'payload_too_large');
    // Declared lengths beyond the limit are refused from the header, before any segment byte is read.
    const big = [0, 1].map((h) => ({ segmentId: idOf('batchbig', h), length: BATCH_MAX_BYTES / 2 + 1 }));
    const head = (len: number) =>
      `POST /data/v1/store/batch HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${target.token}\r\ncontent-type: ${BATCH_CONTENT_TYPE}\r\nx-druid-backup-node: attacker\r\ncontent-length: ${len}\r\n\r\n`;
    const huge = (function* () {
      yield encodeBatchHeader(big);
      const block = Buffer.alloc(1 << 20, 0x41);
      for (let n = 0; n < BATCH_MAX_BYTES + 2; n += block.length) yield block;
    })();
    const tooBig = await rawHttp(target.url, head(BATCH_MAX_BYTES + 2 + encodeBatchHeader(big).length), huge, { timeoutMs: 20_000 });
    refusedWhole('too many bytes', tooBig, 413, 'payload_too_large');
    assert.ok(tooBig.written < BATCH_MAX_BYTES, `the server read ${tooBig.written} bytes before refusing`);
    const dup = idOf('batchdup', 0);
    const dupBody = await packed(dup, { 'version.bin': VB });
    refusedWhole(
      'duplicate id',
      await post(
        batch([
          [dup, dupBody],
          [dup, dupBody],
        ]),
      ),
      400,
      'bad_request',
    );
    refusedWhole('a header that is not JSON', await post(Buffer.from('not json\n')), 400, 'bad_request');
    refusedWhole('no header line', await post(Buffer.from('{"formatVersion":1')), 400, 'bad_archive');
    refusedWhole('a header line far too long', await post(Buffer.alloc(300 * 1024, 0x20)), 413, 'payload_too_large');
    refusedWhole('a bad segment id in the header', await post(encodeBatchHeader([{ segmentId: '../../etc/passwd', length: 10 }])), 400, 'bad_segment_id');
    refusedWhole('a zero length', await post(encodeBatchHeader([{ segmentId: idOf('batchzero', 0), length: 0 }])), 400, 'bad_request');
    assert.ok(!held(dup) && !held(idOf('batchbig', 0)));
    await assertHarmless('limits');
  });

  test('a body cut off, shorter or longer than its lengths: the batch is refused whole, nothing of it stored', async () => {
    const ids = [0, 1, 2].map((h) => idOf('batchcut', h));
    const parts = await Promise.all(
      ids.map(async (id) => [id, await packed(id, { 'version.bin': VB, '00000.smoosh': randomBytes(4000) })] as [string, Buffer]),
    );
    const whole = batch(parts);
    const headerLength = whole.indexOf(10) + 1;
    // The third segment cut short (the lengths promise more than comes): the first two, already staged, go too.
    const cut = whole.subarray(0, whole.length - 700);
    refusedWhole('body shorter than its lengths', await post(cut), 400, 'bad_archive');
    refusedWhole('bytes after the last segment', await post(Buffer.concat([whole, Buffer.from('extra')])), 400, 'bad_archive');
    for (const at of [headerLength - 1, headerLength + 100, headerLength + parts[0]![1].length + 5]) {
      refusedWhole(`cut at ${at}`, await post(whole.subarray(0, at)), 400, 'bad_archive');
    }
    // The connection itself closed mid-body: content-length promises more than comes.
    const head = `POST /data/v1/store/batch HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${target.token}\r\ncontent-type: ${BATCH_CONTENT_TYPE}\r\nx-druid-backup-node: attacker\r\ncontent-length: ${whole.length}\r\n\r\n`;
    const gone = await rawHttp(target.url, head, whole.subarray(0, headerLength + parts[0]![1].length + parts[1]![1].length + 100), {
      endEarly: true,
      timeoutMs: 3000,
    });
    tally['connection closed mid-body'] = gone.status;
    for (const id of ids) assert.ok(!held(id), `${id} is not stored from a broken batch`);
    await assertHarmless('a cut-off batch');
    // The same batch whole is stored after all that.
    const r = await post(whole);
    assert.deepEqual(
      r.json.results.map((o) => o.outcome),
      ['stored', 'stored', 'stored'],
    );
    await assertHarmless('the whole batch after the broken ones');
  });

  test('a target with druid.backup.storeBatch=false neither offers nor takes batches', async () => {
    const old = await startSidecar(['--store', path.join(sandbox, 'old-store')], { env: { DRUID_BACKUP_STORE_BATCH: 'false' } });
    try {
      const stats = await old.request<Record<string, unknown>>('GET', '/data/v1/store/stats');
      assert.equal(stats.json.batch, undefined);
      const id = idOf('batchold', 0);
      const r = await old.request('POST', '/data/v1/store/batch', undefined, {
        raw: batch([[id, await packed(id, { 'version.bin': VB })]]),
        headers: { 'content-type': BATCH_CONTENT_TYPE, 'x-druid-backup-node': 'n1' },
      });
      assert.equal(r.status, 404, r.text);
      const fresh = await target.request<Record<string, unknown>>('GET', '/data/v1/store/stats');
      assert.deepEqual(fresh.json.batch, { maxSegments: BATCH_MAX_SEGMENTS, maxBytes: BATCH_MAX_BYTES });
    } finally {
      await old.stop();
    }
  });
});
