/**
 * Reading an answer from elsewhere (a target sidecar, a bucket) with a size limit: whatever comes back is input, and
 * a target that answers a stats call with 200 MiB must cost at most the limit, not 200 MiB of heap. Every remote
 * answer that is read whole (JSON, a manifest, an index, an error body) goes through here.
 */
import { BackupError } from '../errors.js';

const KIB = 1024;
const MIB = 1024 * KIB;

/** Limits by kind of answer: small calls, manifests, and pages of a listing or catalog. */
export const ANSWER_LIMITS = {
  /** Stats, health, a sources update, an error body. */
  small: 64 * KIB,
  /** One segment's manifest (its file list: a segment has a handful of files, at most a few thousand). */
  manifest: 4 * MIB,
  /** A page of a catalog or of manifests (1,000 entries with ids up to 1024 characters). */
  page: 16 * MIB,
  /** A bucket's catalog index as stored (gzipped), and what it may inflate to (about 1 KiB per segment). */
  index: 32 * MIB,
  indexInflated: 128 * MIB,
} as const;

/** Pages followed in one listing: 10 million entries at 1,000 per page, far beyond a node's segments. */
export const MAX_PAGES = 10_000;

export function tooLarge(what: string, limit: number): BackupError {
  return new BackupError('target_answer_too_large', `${what} is larger than ${formatLimit(limit)}, more than such an answer can be; it was not read`);
}

function formatLimit(n: number): string {
  return n >= MIB ? `${n / MIB} MiB` : n >= KIB ? `${n / KIB} KiB` : `${n} bytes`;
}

/**
 * Reads a stream whole, at most `limit` bytes; beyond that the stream is destroyed (the connection is not drained)
 * and a `target_answer_too_large` error names `what`. A declared length above the limit fails before any byte is read.
 */
export async function readLimited(
  stream: AsyncIterable<Uint8Array> & { destroy?: (e?: Error) => void },
  limit: number,
  what: string,
  declaredLength?: number,
): Promise<Buffer> {
  if (declaredLength !== undefined && declaredLength > limit) {
    stream.destroy?.();
    throw tooLarge(what, limit);
  }
  const parts: Uint8Array[] = [];
  let n = 0;
  try {
    for await (const c of stream) {
      n += c.length;
      if (n > limit) throw tooLarge(what, limit);
      parts.push(c);
    }
  } finally {
    // Ends the transfer when the loop stopped early (too large, or an error); a no-op once fully read.
    stream.destroy?.();
  }
  return Buffer.concat(parts, n);
}

/** Parses JSON read with `readLimited`; text that is not JSON is the target's fault, named as such. */
export async function readJsonLimited<T>(
  stream: AsyncIterable<Uint8Array> & { destroy?: (e?: Error) => void },
  limit: number,
  what: string,
  declaredLength?: number,
): Promise<T> {
  const buf = await readLimited(stream, limit, what, declaredLength);
  try {
    return JSON.parse(buf.toString('utf8')) as T;
  } catch {
    throw new BackupError('target_error', `${what} is not valid JSON`);
  }
}

/** Counts pages of a listing; the page after `MAX_PAGES`, or the same cursor twice in a row, ends it with an error. */
export class PageGuard {
  private pages = 0;
  private last?: string;
  constructor(
    private readonly what: string,
    private readonly maxPages = MAX_PAGES,
  ) {}

  /** Called with each next cursor before the next page is asked for. */
  next(cursor: string): void {
    this.pages++;
    if (this.pages >= this.maxPages) throw new BackupError('target_answer_too_large', `${this.what} goes on past ${this.maxPages} pages; listing stopped`);
    if (cursor === this.last) throw new BackupError('target_error', `${this.what} gave the same page cursor twice; listing stopped`);
    this.last = cursor;
  }
}
