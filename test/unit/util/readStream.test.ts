import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ReadStream, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { test } from 'node:test';
import { SMALL_READ_BYTES, readFileForSending } from '../../../sidecar/util/readStream.js';
import { tmpDir } from '../../helpers/sidecar.js';

async function drain(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r as AsyncIterable<Buffer>) parts.push(c);
  return Buffer.concat(parts);
}

test('a file read for sending yields its bytes, whether small (read in place) or large (streamed), empty included', async () => {
  const dir = tmpDir('dbk-readstream-');
  try {
    for (const size of [0, 1, 4, 1000, SMALL_READ_BYTES, SMALL_READ_BYTES + 1, 3 * 1024 * 1024 + 5]) {
      const file = path.join(dir, `f${size}`);
      const data = randomBytes(size);
      writeFileSync(file, data);
      const r = readFileForSending(file, size);
      assert.equal(r instanceof ReadStream, size > SMALL_READ_BYTES, `size ${size}`);
      assert.ok((await drain(r)).equals(data), `size ${size}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a small file that grew yields one byte more than its size, one that shrank fewer, a vanished one fails where it is read', async () => {
  const dir = tmpDir('dbk-readstream-');
  try {
    const file = path.join(dir, 'f');
    writeFileSync(file, randomBytes(5000));
    assert.equal((await drain(readFileForSending(file, 100))).length, 101);
    assert.equal((await drain(readFileForSending(file, 6000))).length, 5000);
    const gone = readFileForSending(path.join(dir, 'gone'), 10);
    await assert.rejects(drain(gone), { code: 'ENOENT' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
