/**
 * Writes a stream of chunks into a new file: `wx` (never into an existing file, which may be a hard link to deep
 * storage), through an fs.WriteStream whose buffer of WRITE_BUFFER bytes lets the caller keep reading its socket
 * (and hashing) while the previous chunks go out together in one writev. A chunk may be a batch of buffers (the
 * slices a socket delivered, archive/unpack.ts), written as they are rather than copied into one. Used by the local
 * store for uploads and by restores.
 */
import { close, closeSync, createWriteStream, fdatasync, fsync, open, openSync, writeSync } from 'node:fs';
import { once } from 'node:events';
import { promisify } from 'node:util';

const openAsync = promisify(open);
const fsyncAsync = promisify(fsync);
const closeAsync = promisify(close);
/** Looks `fdatasync` up at each call (its test counts the calls). */
const fdatasyncAsync = (fd: number) => new Promise<void>((resolve, reject) => fdatasync(fd, (e) => (e ? reject(e) : resolve())));

/** Writes of received files go out in batches up to this size (fs.WriteStream uses writev). */
const WRITE_BUFFER = 4 * 1024 * 1024;

/**
 * A file flushed at its end has its data flushed too each time this many more bytes were written, one flush at a
 * time, without waiting: the disk writes while the next bytes arrive instead of all at the end. On this machine's
 * 24 GB nothing else starts the writeback of a 128 MiB file (the kernel waits for 10 % of memory dirty), so its fsync
 * wrote it all while the socket stood still. Restore of 2 GiB: 5.01-5.97 s against 6.37 and 6.43 s without; backup
 * 5.56 and 5.78 s against 6.25 and 6.91 s (docs/performance.md). Durability is the final fsync's, as before.
 */
export const EARLY_SYNC_EVERY = 16 * 1024 * 1024;

/**
 * Resolves once the bytes are written, with `durable`, which settles once the file is fsynced and closed (only
 * closed with `flush: false`: the caller flushes the whole filesystem later, util/syncfs.ts). A failure
 * of `chunks` (a check of the caller's) or of a write closes the file and rejects; the caller removes it.
 */
export async function writeChunks(
  file: string,
  chunks: AsyncIterable<Buffer | readonly Buffer[]>,
  o: { flush?: boolean } = {},
): Promise<{ durable: Promise<void> }> {
  const fd = await openAsync(file, 'wx', 0o644);
  try {
    const ws = createWriteStream(file, { fd, highWaterMark: WRITE_BUFFER, autoClose: false });
    const failed = new Promise<never>((_, reject) => ws.once('error', reject));
    failed.catch(() => undefined);
    let early: Promise<void> | undefined;
    let earlyFailed: unknown;
    let flushedTo = 0;
    for await (const chunk of chunks) {
      if (o.flush !== false && !early && ws.bytesWritten - flushedTo >= EARLY_SYNC_EVERY) {
        flushedTo = ws.bytesWritten;
        early = fdatasyncAsync(fd).then(
          () => (early = undefined),
          (e: unknown) => {
            earlyFailed = e;
          },
        );
      }
      let room: boolean;
      if (Buffer.isBuffer(chunk)) room = ws.write(chunk);
      else {
        // Corked, a batch goes out in one writev (or joins the one waiting for the write in flight).
        ws.cork();
        room = true;
        for (const piece of chunk) room = ws.write(piece);
        ws.uncork();
      }
      if (!room) await Promise.race([once(ws, 'drain'), failed]);
    }
    ws.end();
    await Promise.race([once(ws, 'finish'), failed]);
    await early;
    if (earlyFailed) throw earlyFailed;
  } catch (e) {
    await closeAsync(fd).catch(() => undefined);
    throw e;
  }
  const durable = o.flush === false ? closeAsync(fd) : fsyncAsync(fd).finally(() => closeAsync(fd));
  durable.catch(() => undefined);
  return { durable };
}

/** The chunks of a small file, as one buffer (the reader bounds them to the file's declared size). */
export async function gathered(chunks: AsyncIterable<Buffer | readonly Buffer[]>): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for await (const chunk of chunks) {
    if (Buffer.isBuffer(chunk)) pieces.push(chunk);
    else pieces.push(...chunk);
  }
  return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
}

/**
 * Creates (`wx`), writes and closes a small file by three direct calls, not flushed (the caller flushes the whole
 * filesystem later, util/syncfs.ts): through the thread pool each would be a hand-off and a wake-up, which is most of
 * what a small segment's files cost (docs/performance.md). For files of at most SMALL_READ_BYTES (util/readStream.ts), so
 * that the event loop waits for one such write at most as long as for one of the source's reads of small files.
 */
export function writeAtOnce(file: string, data: Buffer | string): void {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  const fd = openSync(file, 'wx', 0o644);
  try {
    for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
  } finally {
    closeSync(fd);
  }
}
