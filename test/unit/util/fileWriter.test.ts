import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { BufferPool, lend } from '../../../sidecar/util/bufferPool.js';
import { writeChunks } from '../../../sidecar/util/fileWriter.js';
import { tmpDir } from '../../helpers/sidecar.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('the file holds exactly the chunks given, in order, whatever their sizes (empty, tiny, socket-sized, larger than the write buffer)', async () => {
  const dir = tmpDir('dbk-writer-');
  try {
    const file = path.join(dir, 'out');
    const sent = createHash('sha256');
    let total = 0;
    async function* chunks(): AsyncGenerator<Buffer> {
      const give = (b: Buffer) => {
        sent.update(b);
        total += b.length;
        return b;
      };
      yield give(Buffer.alloc(0));
      for (let i = 0; i < 3000; i++) yield give(randomBytes(1 + (i % 7)));
      for (let i = 0; i < 40; i++) yield give(randomBytes(64 * 1024 + i));
      yield give(randomBytes(5 * 1024 * 1024 + 3));
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

test('lent pieces go back to their pool only once written: the file holds every piece though each buffer is reused', async () => {
  const dir = tmpDir('dbk-writer-');
  try {
    const file = path.join(dir, 'out');
    const pool = new BufferPool(256 * 1024, 32);
    const sent = createHash('sha256');
    let total = 0;
    async function* chunks(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 200; i++) {
        const buf = pool.take();
        // Every piece has its own bytes: a buffer handed back (and refilled) before its write would show in the file.
        buf.fill(i % 251);
        const view = buf.subarray(0, buf.length - (i % 5));
        lend(view, () => pool.give(buf));
        sent.update(view);
        total += view.length;
        yield view;
      }
    }
    await (
      await writeChunks(file, chunks())
    ).durable;
    assert.equal(statSync(file).size, total);
    assert.equal(sha(readFileSync(file)), sent.digest('hex'));
    // 200 pieces of 256 KiB in 4 MiB batches: one batch being written while the next gathers.
    assert.ok(pool.allocated <= 40, `the pool allocated ${pool.allocated} buffers for 200 pieces`);
    assert.ok(pool.freeCount > 0, 'written buffers came back to the pool');
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
