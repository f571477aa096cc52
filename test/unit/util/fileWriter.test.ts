import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { writeChunks } from '../../../sidecar/util/fileWriter.js';
import { tmpDir } from '../../helpers/sidecar.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('the file holds exactly the chunks given, in order, whatever their sizes (empty, tiny, socket-sized, larger than the write buffer) and whether alone or in batches', async () => {
  const dir = tmpDir('dbk-writer-');
  try {
    const file = path.join(dir, 'out');
    const sent = createHash('sha256');
    let total = 0;
    async function* chunks(): AsyncGenerator<Buffer | Buffer[]> {
      const give = (b: Buffer) => {
        sent.update(b);
        total += b.length;
        return b;
      };
      yield give(Buffer.alloc(0));
      for (let i = 0; i < 3000; i++) yield give(randomBytes(1 + (i % 7)));
      for (let i = 0; i < 40; i++) yield give(randomBytes(64 * 1024 + i));
      yield give(randomBytes(5 * 1024 * 1024 + 3));
      // Batches of socket-sized slices, one of them larger than the write buffer, with single buffers between.
      for (let i = 0; i < 20; i++) yield Array.from({ length: 1 + (i % 5) }, (_, k) => give(randomBytes(64 * 1024 - k)));
      yield give(randomBytes(17));
      yield Array.from({ length: 80 }, () => give(randomBytes(64 * 1024)));
      yield [];
      yield [give(randomBytes(3))];
    }
    await (
      await writeChunks(file, chunks())
    ).durable;
    assert.equal(statSync(file).size, total);
    assert.equal(sha(readFileSync(file)), sent.digest('hex'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('never writes into an existing file (it may be a hard link to deep storage)', async () => {
  const dir = tmpDir('dbk-writer-');
  try {
    const file = path.join(dir, 'out');
    writeFileSync(file, 'deep storage bytes');
    await assert.rejects(writeChunks(file, (async function* () {})()), { code: 'EEXIST' });
    assert.equal(readFileSync(file, 'utf8'), 'deep storage bytes');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a failing source rejects with its own error and leaves the file closed for the caller to remove', async () => {
  const dir = tmpDir('dbk-writer-');
  try {
    const file = path.join(dir, 'out');
    async function* failing(): AsyncGenerator<Buffer> {
      yield randomBytes(3 * 1024 * 1024);
      throw new Error('digest mismatch');
    }
    await assert.rejects(writeChunks(file, failing()), /digest mismatch/);
    assert.ok(existsSync(file));
    rmSync(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
