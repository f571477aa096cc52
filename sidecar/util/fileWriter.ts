/**
 * Writes a stream of chunks into a new file: `wx` (never into an existing file, which may be a hard link to deep
 * storage), in batches of up to WRITE_BUFFER bytes, each one writev(2), while the next batch gathers, so the caller
 * keeps reading its socket (and hashing) while the disk writes. Used by the local store for uploads and by restores.
 */
import { close, fsync, open, writev } from 'node:fs';
import { promisify } from 'node:util';
import { releaseLent } from './bufferPool.js';

const openAsync = promisify(open);
const fsyncAsync = promisify(fsync);
const closeAsync = promisify(close);

/**
 * Bytes gathered into one writev. fs.WriteStream wrote the first piece after each drain alone and the rest as one
 * writev: a 2 GiB restore made 3,600 write calls, each a round trip to the thread pool (docs/performance.md).
 */
const WRITE_BUFFER = 4 * 1024 * 1024;
/** Pieces in one writev at most (Linux's IOV_MAX). */
const MAX_PIECES = 1024;

function writevAt(fd: number, bufs: Buffer[], position: number): Promise<number> {
  return new Promise((resolve, reject) => writev(fd, bufs, position, (err, n) => (err ? reject(err) : resolve(n))));
}

/** Writes every byte of `bufs` at `position` (a short write goes on where it stopped), then gives lent pieces back. */
async function writeBatch(fd: number, bufs: Buffer[], position: number): Promise<void> {
  let rest = bufs;
  let at = position;
  while (rest.length) {
    let n = await writevAt(fd, rest, at);
    at += n;
    let i = 0;
    while (i < rest.length && n >= rest[i]!.length) n -= rest[i++]!.length;
    rest = rest.slice(i);
    if (n > 0) rest[0] = rest[0]!.subarray(n);
  }
  // A lent piece (a pooled buffer, util/bufferPool.ts) goes back to its pool once the disk write took it.
  for (const b of bufs) releaseLent(b);
}

/**
 * Resolves once the bytes are written, with `durable`, which settles once the file is fsynced and closed. A failure
 * of `chunks` (a check of the caller's) or of a write closes the file and rejects; the caller removes it.
 */
export async function writeChunks(file: string, chunks: AsyncIterable<Buffer>): Promise<{ durable: Promise<void> }> {
  const fd = await openAsync(file, 'wx', 0o644);
  let writing: Promise<void> = Promise.resolve();
  try {
    let batch: Buffer[] = [];
    let bytes = 0;
    let position = 0;
    const send = async () => {
      // One write at a time: the batch after it gathers meanwhile. A failed write shows here, at the latest at the end.
      await writing;
      writing = writeBatch(fd, batch, position);
      writing.catch(() => undefined);
      position += bytes;
      batch = [];
      bytes = 0;
    };
    for await (const chunk of chunks) {
      if (!chunk.length) continue;
      batch.push(chunk);
      bytes += chunk.length;
      if (bytes >= WRITE_BUFFER || batch.length >= MAX_PIECES) await send();
    }
    if (batch.length) await send();
    await writing;
  } catch (e) {
    await writing.catch(() => undefined);
    await closeAsync(fd).catch(() => undefined);
    throw e;
  }
  const durable = fsyncAsync(fd).finally(() => closeAsync(fd));
  durable.catch(() => undefined);
  return { durable };
}
