/**
 * Writes a stream of chunks into a new file: `wx` (never into an existing file, which may be a hard link to deep
 * storage), through an fs.WriteStream whose buffer of WRITE_BUFFER bytes lets the caller keep reading its socket
 * (and hashing) while the previous chunks go out together in one writev. Used by the local store for uploads and by
 * restores.
 */
import { close, closeSync, createWriteStream, fsync, open, openSync, writevSync } from 'node:fs';
import { once } from 'node:events';
import { promisify } from 'node:util';
import { fsyncAndClose } from './atomic.js';

const openAsync = promisify(open);
const fsyncAsync = promisify(fsync);
const closeAsync = promisify(close);

/** Writes of received files go out in batches up to this size (fs.WriteStream uses writev). */
const WRITE_BUFFER = 4 * 1024 * 1024;

/**
 * Resolves once the bytes are written, with `durable`, which settles once the file is fsynced and closed. A failure
 * of `chunks` (a check of the caller's) or of a write closes the file and rejects; the caller removes it.
 */
export async function writeChunks(file: string, chunks: AsyncIterable<Buffer>): Promise<{ durable: Promise<void> }> {
  const fd = await openAsync(file, 'wx', 0o644);
  try {
    const ws = createWriteStream(file, { fd, highWaterMark: WRITE_BUFFER, autoClose: false });
    const failed = new Promise<never>((_, reject) => ws.once('error', reject));
    failed.catch(() => undefined);
    for await (const chunk of chunks) {
      if (!ws.write(chunk)) await Promise.race([once(ws, 'drain'), failed]);
    }
    ws.end();
    await Promise.race([once(ws, 'finish'), failed]);
  } catch (e) {
    await closeAsync(fd).catch(() => undefined);
    throw e;
  }
  const durable = fsyncAsync(fd).finally(() => closeAsync(fd));
  durable.catch(() => undefined);
  return { durable };
}

/** Files up to this size may be written by `writeSmallFile`: held whole in memory, written in one call. */
export const SMALL_FILE_BYTES = 64 * 1024;

/**
 * `writeChunks` for a file of at most SMALL_FILE_BYTES: its chunks are gathered, then the file is created and written
 * in place, and only its fsync goes to the thread pool (`fsyncAndClose`). A segment of a few tiny files costs a
 * fraction of what four thread-pool round trips and a WriteStream per file did. More bytes than that reject.
 */
export async function writeSmallFile(file: string, chunks: AsyncIterable<Buffer>): Promise<{ durable: Promise<void> }> {
  const parts: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of chunks) {
    bytes += chunk.length;
    if (bytes > SMALL_FILE_BYTES) throw new RangeError(`${file}: more than ${SMALL_FILE_BYTES} bytes for a small file`);
    parts.push(chunk);
  }
  const fd = openSync(file, 'wx', 0o644);
  try {
    for (let written = 0; written < bytes;) {
      written += writevSync(fd, written ? [Buffer.concat(parts).subarray(written)] : parts);
    }
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  const durable = fsyncAndClose(fd);
  durable.catch(() => undefined);
  return { durable };
}
