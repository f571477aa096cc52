import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { BackupError } from '../../../sidecar/errors.js';
import { PageGuard, readJsonLimited, readLimited } from '../../../sidecar/util/limitedRead.js';

/** A stream of `chunks` chunks of `size` bytes, made as read, that records how much was pulled and whether it was destroyed. */
function source(chunks: number, size: number) {
  const seen = { pulled: 0, destroyed: false };
  let i = 0;
  const stream = new Readable({
    read() {
      if (i++ >= chunks) return void this.push(null);
      seen.pulled += size;
      this.push(Buffer.alloc(size, 0x61));
    },
    destroy(e, cb) {
      seen.destroyed = true;
      cb(e);
    },
  });
  return { stream, seen };
}

test('readLimited returns an answer within the limit whole', async () => {
  const { stream } = source(4, 1000);
  const buf = await readLimited(stream, 4000, 'the answer');
  assert.equal(buf.length, 4000);
});

test('readLimited stops reading past the limit, destroys the stream and names what was read', async () => {
  const { stream, seen } = source(100_000, 64 * 1024);
  await assert.rejects(readLimited(stream, 1024 * 1024, 'the stats of http://t'), (e: unknown) => {
    assert.ok(e instanceof BackupError);
    assert.equal(e.code, 'target_answer_too_large');
    assert.equal(e.status, 502);
    assert.match(e.message, /the stats of http:\/\/t is larger than 1 MiB/);
    return true;
  });
  assert.ok(seen.destroyed);
  // At most a few chunks beyond the limit were pulled (read-ahead), not the 6 GiB the source would give.
  assert.ok(seen.pulled < 4 * 1024 * 1024, `pulled ${seen.pulled} bytes`);
});

test('readLimited refuses a declared length above the limit before reading a byte', async () => {
  const { stream, seen } = source(10, 1000);
  await assert.rejects(readLimited(stream, 5000, 'x', 10_000), { code: 'target_answer_too_large' });
  assert.equal(seen.pulled, 0);
  assert.ok(seen.destroyed);
});

test('readJsonLimited parses JSON and calls anything else the target fault', async () => {
  assert.deepEqual(await readJsonLimited(Readable.from([Buffer.from('{"a":'), Buffer.from('1}')]), 100, 'x'), { a: 1 });
  await assert.rejects(readJsonLimited(Readable.from([Buffer.from('<html>')]), 100, 'the answer of t'), {
    code: 'target_error',
    message: 'the answer of t is not valid JSON',
  });
});

test('PageGuard stops a listing that repeats a cursor or never ends', () => {
  const g = new PageGuard('the catalog of t', 5);
  g.next('a');
  g.next('b');
  assert.throws(() => g.next('b'), { code: 'target_error', message: /same page cursor twice/ });
  const h = new PageGuard('the catalog of t', 3);
  h.next('1');
  h.next('2');
  assert.throws(() => h.next('3'), { code: 'target_answer_too_large', message: /past 3 pages/ });
});
