import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import type { ReadStream } from 'node:fs';
import { Readable } from 'node:stream';

/** Largest read: few system calls for big files, bounded memory. */
export const READ_CHUNK = 1 << 20;

/**
 * Opens a file of known size for streaming. Each read allocates its buffer at the stream's highWaterMark, so a
 * small file gets small reads (size + 1, which still shows a file that grew) instead of a 1 MiB buffer per read:
 * for a segment's handful of tiny files that allocation cost more than the rest of the transfer.
 */
export function readStream(file: string, size: number): ReadStream {
  return createReadStream(file, { highWaterMark: Math.max(1, Math.min(READ_CHUNK, size + 1)) });
}

/** Files up to this size are read whole by `readFileForSending`. */
export const SMALL_READ_BYTES = 64 * 1024;

/**
 * `readStream` for a segment file being backed up, where a small file is read in place in one call (open, one read
 * of size + 1 bytes, close) rather than by four thread-pool round trips: thousands of small segments made these hand-offs
 * most of the source's system calls (bench/backup.ts, the first backup of 10,000 small segments). One read of at
 * most 64 KiB is what the event loop may wait for; a larger file streams from the thread pool. A file that shrank
 * yields fewer bytes and one that grew yields one more than `size`, as `readStream` does, for the packer to refuse.
 */
export function readFileForSending(file: string, size: number): Readable {
  if (size > SMALL_READ_BYTES) return readStream(file, size);
  let data: Buffer;
  try {
    data = readSmallFile(file, size);
  } catch (e) {
    // Thrown by the stream, as an open of `readStream` fails, so the caller meets it where it reads.
    return new Readable({
      read() {
        this.destroy(e as Error);
      },
    });
  }
  return Readable.from(data.length ? [data] : [], { objectMode: false });
}

/**
 * A file of at most SMALL_READ_BYTES read whole in place: open, one read of size + 1 bytes, close. It returns what
 * was there, so a file that shrank gives fewer bytes and one that grew one more than `size`, for the caller to
 * refuse. Throws what the open or the read threw.
 */
export function readSmallFile(file: string, size: number): Buffer {
  if (size > SMALL_READ_BYTES) throw new RangeError(`${file}: ${size} bytes is more than a small read`);
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(size + 1);
    let got = 0;
    for (let n = -1; n !== 0 && got < buf.length; got += n) n = readSync(fd, buf, got, buf.length - got, got);
    return buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}
