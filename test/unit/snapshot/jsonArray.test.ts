import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { jsonArrayElements } from '../../../sidecar/snapshot/jsonArray.js';

async function* chunked(text: string, cuts: number[]): AsyncGenerator<Uint8Array> {
  const buf = Buffer.from(text, 'utf8');
  let at = 0;
  for (const c of [...new Set(cuts.map((x) => x % (buf.length + 1)))].sort((a, b) => a - b)) {
    yield buf.subarray(at, c);
    at = c;
  }
  yield buf.subarray(at);
}

async function all(text: string, cuts: number[] = [], max = 1 << 20): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const v of jsonArrayElements(chunked(text, cuts), max, 'the answer')) out.push(v);
  return out;
}

test('property: any JSON array, cut into chunks anywhere (inside strings, escapes, multi-byte characters), gives its elements', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.jsonValue()), fc.array(fc.nat()), fc.boolean(), async (arr, cuts, pretty) => {
      const text = pretty ? JSON.stringify(arr, null, 2) : JSON.stringify(arr);
      assert.deepEqual(await all(text, cuts), JSON.parse(text));
    }),
    { numRuns: 300 },
  );
});

test('not an array, text after it, a missing end, an element too large, or a bad element are errors', async () => {
  await assert.rejects(all('{"a":1}'), /is not a JSON array/);
  await assert.rejects(all('[1,2] x'), /text after its array/);
  await assert.rejects(all('[1,2'), /ends before its array does/);
  await assert.rejects(all('[1,{"a":"'), /ends before/);
  await assert.rejects(all(`["${'x'.repeat(100)}"]`, [10, 50], 64), /larger than 64 bytes/);
  await assert.rejects(all('[1,tru]'), /not JSON/);
  await assert.rejects(all('[,1]'), /not JSON/);
  assert.deepEqual(await all(' [ ] '), []);
  assert.deepEqual(await all('["a]\\"[,{",{"b":[1,[2]]}]', [3, 4, 5, 6]), ['a]"[,{', { b: [1, [2]] }]);
});
