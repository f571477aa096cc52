import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs, { existsSync, fstatSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import path from 'node:path';
import { test } from 'node:test';
import { EARLY_SYNC_EVERY, writeChunks } from '../../../sidecar/util/fileWriter.js';
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

/** Runs `body` with Node's `fs.fdatasync` counting its calls (the size of the file at each) and failing as `fail` says. */
async function withCountedDatasync(body: (sizes: number[]) => Promise<void>, fail?: NodeJS.ErrnoException): Promise<void> {
  const real = fs.fdatasync;
  const sizes: number[] = [];
  fs.fdatasync = ((fd: number, cb: (e: NodeJS.ErrnoException | null) => void) => {
    sizes.push(fstatSync(fd).size);
    if (fail) setImmediate(() => cb(fail));
    else real(fd, cb);
  }) as typeof fs.fdatasync;
  syncBuiltinESMExports();
  try {
    await body(sizes);
  } finally {
    fs.fdatasync = real;
    syncBuiltinESMExports();
  }
}

test('a large file flushed at its end has its data flushed on the way too, one flush at a time; a file the caller flushes later, never', async () => {
  const dir = tmpDir('dbk-writer-');
  const total = 3 * EARLY_SYNC_EVERY + 5;
  async function* chunks(): AsyncGenerator<Buffer> {
    for (let sent = 0; sent < total; ) {
      const b = randomBytes(Math.min(1024 * 1024, total - sent));
      sent += b.length;
      yield b;
    }
  }
  try {
    await withCountedDatasync(async (sizes) => {
      await (
        await writeChunks(path.join(dir, 'flushed'), chunks())
      ).durable;
      assert.ok(sizes.length >= 2, `${sizes.length} flushes on the way`);
      assert.ok(sizes.every((n) => n < total), `each while the file was still being written: ${sizes.join(', ')}`);
      assert.equal(statSync(path.join(dir, 'flushed')).size, total);
      sizes.length = 0;
      await (
        await writeChunks(path.join(dir, 'later'), chunks(), { flush: false })
      ).durable;
      assert.deepEqual(sizes, []);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a flush on the way that fails fails the write with its error', async () => {
  const dir = tmpDir('dbk-writer-');
  try {
    const eio = Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
    await withCountedDatasync(async () => {
      await assert.rejects(
        writeChunks(
          path.join(dir, 'out'),
          (async function* () {
            for (let i = 0; i < 40; i++) yield randomBytes(1024 * 1024);
          })(),
        ),
        { code: 'EIO' },
      );
    }, eio);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
