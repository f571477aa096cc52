import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { SMALL_FILE_BYTES, writeChunks, writeSmallFile } from '../../../sidecar/util/fileWriter.js';
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

test('a small file holds exactly its chunks (none, tiny ones, up to the limit), written in place and flushed by `durable`', async () => {
  const dir = tmpDir('dbk-writer-');
  try {
    for (const sizes of [[], [0], [1, 2, 3], [4096, 1, 4096], [SMALL_FILE_BYTES - 1, 1], [SMALL_FILE_BYTES]]) {
      const file = path.join(dir, `out-${sizes.join('-')}`);
      const parts = sizes.map((n) => randomBytes(n));
      const written = await writeSmallFile(
        file,
        (async function* () {
          yield* parts;
        })(),
      );
      await written.durable;
      assert.equal(sha(readFileSync(file)), sha(Buffer.concat(parts)), `chunks of ${sizes.join(', ')}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a small file: never into an existing file, never more than SMALL_FILE_BYTES held, a failing source creates nothing', async () => {
  const dir = tmpDir('dbk-writer-');
  try {
    const file = path.join(dir, 'out');
    writeFileSync(file, 'deep storage bytes');
    await assert.rejects(writeSmallFile(file, (async function* () {})()), { code: 'EEXIST' });
    assert.equal(readFileSync(file, 'utf8'), 'deep storage bytes');

    const big = path.join(dir, 'big');
    await assert.rejects(
      writeSmallFile(
        big,
        (async function* () {
          yield randomBytes(SMALL_FILE_BYTES);
          yield randomBytes(1);
        })(),
      ),
      RangeError,
    );
    assert.equal(existsSync(big), false);

    const failed = path.join(dir, 'failed');
    await assert.rejects(
      writeSmallFile(
        failed,
        (async function* () {
          yield randomBytes(10);
          throw new Error('digest mismatch');
        })(),
      ),
      /digest mismatch/,
    );
    assert.equal(existsSync(failed), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
