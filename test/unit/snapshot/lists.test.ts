/**
 * listSegments: a segment list blob read as its bytes arrive, in chunks cut anywhere (a line across many chunks),
 * each line checked, the order checked, and the bytes checked against the blob's name at their end.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_LIST_LINE, listSegments, sha256 } from '../../../sidecar/snapshot/check.js';
import type { SnapshotSegment } from '../../../sidecar/snapshot/model.js';

const id = (day: number) => `demo_2024-01-${String(day).padStart(2, '0')}T00:00:00.000Z_2024-01-${String(day + 1).padStart(2, '0')}T00:00:00.000Z_v1`;
const line = (day: number, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ id: id(day), overshadowed: false, size: day, descriptor: null, backedUp: true, ...extra }) + '\n';

async function* chunks(data: Buffer, sizes: number[]): AsyncGenerator<Uint8Array> {
  let at = 0;
  for (let i = 0; at < data.length; i++) {
    const n = sizes[i % sizes.length]!;
    yield data.subarray(at, at + n);
    at += n;
  }
}

async function read(data: Buffer, sizes = [7], sha = sha256(data)): Promise<SnapshotSegment[]> {
  const out: SnapshotSegment[] = [];
  for await (const s of listSegments(chunks(data, sizes), sha, 'demo', 'snapshot x')) out.push(s);
  return out;
}

test('the same segments whatever the chunks, with or without a last newline', async () => {
  const data = Buffer.from([1, 2, 3, 9].map((d) => line(d)).join(''));
  const want = [1, 2, 3, 9].map(id);
  for (const sizes of [[1], [3, 200], [data.length], [line(1).length], [line(1).length - 1, 2]])
    assert.deepEqual(
      (await read(data, sizes)).map((s) => s.id),
      want,
    );
  const bare = data.subarray(0, data.length - 1);
  assert.deepEqual(
    (await read(bare, [5])).map((s) => s.id),
    want,
  );
  assert.deepEqual(await read(Buffer.alloc(0)), []);
});

test('a damaged list is refused at its end: other bytes than its name says, out of order, a bad line, a line too long', async () => {
  const good = Buffer.from(line(1) + line(2));
  await assert.rejects(read(good, [4], sha256('other')), /damaged: its bytes have another sha256/);
  await assert.rejects(read(Buffer.from(line(2) + line(1))), /not sorted by id/);
  await assert.rejects(read(Buffer.from(line(1) + line(1))), /not sorted by id/);
  await assert.rejects(read(Buffer.from(line(1) + '{"id":"../x"}\n')), /refused/);
  await assert.rejects(read(Buffer.from(line(1) + 'not json\n')), /not JSON/);
  await assert.rejects(read(Buffer.from(line(1, { pad: 'x'.repeat(MAX_LIST_LINE) }))), /too long/);
  // Of another data source.
  await assert.rejects(read(Buffer.from(line(1).replace('demo_', 'other_'))), /refused/);
});
