import { createReadStream } from 'node:fs';
import type { ReadStream } from 'node:fs';

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
