import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { PipelinedFileWriter } from '../../../sidecar/util/fileWriter.js';
import { tmpDir } from '../../helpers/sidecar.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('the file holds exactly the chunks given, in order, whatever their sizes (empty, tiny, more than IOV_MAX per batch, larger than a batch)', async () => {
  const dir = tmpDir('dbk-writer-');
  try {
    const file = path.join(dir, 'out');
    const w = await PipelinedFileWriter.create(file);
    const sent = createHash('sha256');
    let total = 0;
    const give = async (b: Buffer) => {
      sent.update(b);
      total += b.length;
      await w.write(b);
    };
    await give(Buffer.alloc(0));
    for (let i = 0; i < 3000; i++) await give(randomBytes(1 + (i % 7))); // many tiny pieces: batches cut at 1024 buffers
    for (let i = 0; i < 40; i++) await give(randomBytes(64 * 1024 + i)); // socket-sized pieces
    await give(randomBytes(5 * 1024 * 1024 + 3)); // one piece larger than a batch
    // past the background flush interval (64 MiB), with a piece reused by reference twice
    const big = randomBytes(8 * 1024 * 1024);
    for (let i = 0; i < 9; i++) await give(big);
    await w.close();
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
    await assert.rejects(PipelinedFileWriter.create(file), { code: 'EEXIST' });
    assert.equal(readFileSync(file, 'utf8'), 'deep storage bytes');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('abort waits for the write in flight and closes the file; writing after close fails', async () => {
  const dir = tmpDir('dbk-writer-');
  try {
    const file = path.join(dir, 'out');
    const w = await PipelinedFileWriter.create(file);
    await w.write(randomBytes(3 * 1024 * 1024));
    await w.abort();
    await w.abort(); // twice is harmless
    assert.ok(existsSync(file));
    rmSync(file); // closed: removable, and the caller removes it
    const v = await PipelinedFileWriter.create(file);
    await v.write(Buffer.from('x'));
    await v.close();
    await assert.rejects(v.write(randomBytes(2 * 1024 * 1024)));
    assert.equal(readFileSync(file, 'utf8'), 'x');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
