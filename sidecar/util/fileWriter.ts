/**
 * Writes a stream of chunks into a new file: `wx` (never into an existing file, which may be a hard link to deep
 * storage), through an fs.WriteStream whose buffer of WRITE_BUFFER bytes lets the caller keep reading its socket
 * (and hashing) while the previous chunks go out together in one writev. A chunk may be a batch of buffers (the
 * slices a socket delivered, archive/unpack.ts), written as they are rather than copied into one. Used by the local
 * store for uploads and by restores.
 */
import { close, createWriteStream, fsync, open } from 'node:fs';
import { once } from 'node:events';
import { promisify } from 'node:util';

const openAsync = promisify(open);
const fsyncAsync = promisify(fsync);
const closeAsync = promisify(close);

/** Writes of received files go out in batches up to this size (fs.WriteStream uses writev). */
const WRITE_BUFFER = 4 * 1024 * 1024;

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
    for await (const chunk of chunks) {
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
  } catch (e) {
    await closeAsync(fd).catch(() => undefined);
    throw e;
  }
  const durable = o.flush === false ? closeAsync(fd) : fsyncAsync(fd).finally(() => closeAsync(fd));
  durable.catch(() => undefined);
  return { durable };
}
