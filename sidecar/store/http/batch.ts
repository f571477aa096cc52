/**
 * The batch upload between sidecars (`POST /data/v1/store/batch`): several small segments in one request, committed
 * together on the target (store/local/store.ts `receiveBatch`), so that a small segment does not pay one HTTP
 * exchange and its own round of flushes. Wire format (store/target.ts has the single PUT's):
 *   1. one line of JSON ending in `\n`, at most BATCH_HEADER_MAX bytes:
 *      `{"formatVersion":1,"segments":[{"segmentId","length"}…]}`, at most BATCH_MAX_SEGMENTS distinct ids whose
 *      lengths add up to at most BATCH_MAX_BYTES;
 *   2. each segment's upload, exactly the body a single PUT would carry (segment.json, files, digests.json) and
 *      exactly `length` bytes long, in the order of the header; nothing after the last.
 * The answer (200) gives each segment's outcome in the order of the header: `stored`, `identical`, `conflict`, or
 * `refused` with the error code and status a single PUT would have answered. A batch whose framing is broken (the
 * header, a body shorter or longer than the lengths) is refused whole and nothing of it is stored.
 * A target offers the route when its `/data/v1/store/stats` answer carries `batch` (the limits); a client sends
 * single PUTs to one that does not.
 */
import { parseSegmentId } from '../../druid/segmentId.js';
import { BackupError, messageOf } from '../../errors.js';
import { API_PREFIX } from '../../api.js';
import { ChunkCursor } from '../../util/chunkCursor.js';

export const BATCH_PATH = `${API_PREFIX}/store/batch`;
export const BATCH_CONTENT_TYPE = 'application/x-druid-backup-batch';
export const BATCH_FORMAT_VERSION = 1;
/** Segments in one batch: one worker's group of small segments (the sender's SMALL_GROUP). */
export const BATCH_MAX_SEGMENTS = 64;
/** Bytes of segment uploads in one batch: what a request's receiver stages before it commits any of them. */
export const BATCH_MAX_BYTES = 8 * 1024 * 1024;
/** The header line: BATCH_MAX_SEGMENTS ids of up to 1024 characters, with room for JSON escapes. */
export const BATCH_HEADER_MAX = 256 * 1024;

export interface BatchLimits {
  maxSegments: number;
  maxBytes: number;
}

export const BATCH_LIMITS: BatchLimits = { maxSegments: BATCH_MAX_SEGMENTS, maxBytes: BATCH_MAX_BYTES };

export interface BatchEntry {
  segmentId: string;
  length: number;
}

export type BatchOutcome =
  | { segmentId: string; outcome: 'stored' | 'identical' | 'conflict' }
  | { segmentId: string; outcome: 'refused'; status: number; error: { code: string; message: string } };

export function encodeBatchHeader(entries: BatchEntry[]): Buffer {
  return Buffer.from(`${JSON.stringify({ formatVersion: BATCH_FORMAT_VERSION, segments: entries })}\n`);
}

/** The header as a receiver checks it: limits (413), whole lengths, valid and distinct ids (400). */
export function parseBatchHeader(line: Buffer): BatchEntry[] {
  let v: unknown;
  try {
    v = JSON.parse(line.toString('utf8'));
  } catch {
    throw new BackupError('bad_request', 'the batch header is not a line of JSON');
  }
  const o = v as { formatVersion?: unknown; segments?: unknown } | null;
  if (!o || typeof o !== 'object' || Array.isArray(o)) throw new BackupError('bad_request', 'the batch header must be a JSON object');
  if (o.formatVersion !== BATCH_FORMAT_VERSION) throw new BackupError('bad_request', `the batch header's formatVersion must be ${BATCH_FORMAT_VERSION}`);
  if (!Array.isArray(o.segments) || o.segments.length === 0) throw new BackupError('bad_request', 'the batch header must list at least one segment');
  if (o.segments.length > BATCH_MAX_SEGMENTS)
    throw new BackupError('payload_too_large', `a batch holds at most ${BATCH_MAX_SEGMENTS} segments; this one lists ${o.segments.length}`, 413);
  const seen = new Set<string>();
  let total = 0;
  const out: BatchEntry[] = [];
  for (const [i, raw] of o.segments.entries()) {
    const e = raw as { segmentId?: unknown; length?: unknown } | null;
    if (!e || typeof e !== 'object' || Array.isArray(e)) throw new BackupError('bad_request', `batch entry ${i} must be an object`);
    const id = parseSegmentId(e.segmentId).id;
    if (seen.has(id)) throw new BackupError('bad_request', `segment ${id} is listed twice in one batch`);
    seen.add(id);
    if (!Number.isSafeInteger(e.length) || (e.length as number) <= 0)
      throw new BackupError('bad_request', `batch entry ${i}: length must be a positive whole number`);
    total += e.length as number;
    if (total > BATCH_MAX_BYTES) throw new BackupError('payload_too_large', `a batch holds at most ${BATCH_MAX_BYTES} bytes of uploads`, 413);
    out.push({ segmentId: id, length: e.length as number });
  }
  return out;
}

/**
 * Reads a batch body: the header line, then each segment's part as a stream of exactly its length, which the
 * single PUT's reader consumes; what a part's reader left unread is skipped before the next part. Nothing is
 * buffered beyond one chunk of the socket (and the header line).
 */
export class BatchBodyReader extends ChunkCursor {
  /** Bytes left of the part being read. */
  private left = 0;

  constructor(body: AsyncIterable<Buffer | string>) {
    // The sender went away mid-body: a cut-off batch, refused whole.
    super(body, (e) => new BackupError('bad_archive', `the batch was cut off: ${messageOf(e)}`));
  }

  async header(): Promise<BatchEntry[]> {
    return parseBatchHeader(await this.line());
  }

  /** The first line (without its `\n`), at most BATCH_HEADER_MAX bytes. */
  async line(): Promise<Buffer> {
    const parts: Buffer[] = [];
    let size = 0;
    for (;;) {
      if (this.cur.length === 0 && !(await this.fill())) throw new BackupError('bad_archive', 'the batch ends before its header line does');
      const nl = this.cur.indexOf(10);
      const take = nl < 0 ? this.cur.length : nl;
      size += take;
      if (size > BATCH_HEADER_MAX) throw new BackupError('payload_too_large', `the batch header is longer than ${BATCH_HEADER_MAX} bytes`, 413);
      parts.push(this.cur.subarray(0, take));
      if (nl >= 0) {
        this.cur = this.cur.subarray(nl + 1);
        return Buffer.concat(parts, size);
      }
      this.clear();
    }
  }

  /** The next `length` bytes as a stream; it ends early only where the body does (a truncated batch). */
  part(length: number): AsyncIterable<Buffer> {
    this.left = length;
    const next = async (): Promise<IteratorResult<Buffer>> => {
      if (this.left === 0) return { done: true, value: undefined };
      if (this.cur.length === 0 && !(await this.fill())) return { done: true, value: undefined };
      const out = this.cur.subarray(0, Math.min(this.left, this.cur.length));
      this.cur = this.cur.subarray(out.length);
      this.left -= out.length;
      return { done: false, value: out };
    };
    // `return` is a no-op: a reader that stops early leaves the rest to `skipPart`, not to the socket.
    return { [Symbol.asyncIterator]: () => ({ next, return: async () => ({ done: true, value: undefined }) }) };
  }

  /** Skips what the part's reader left unread; refuses the batch when the body ends before the part does. */
  async skipPart(): Promise<void> {
    while (this.left > 0) {
      if (this.cur.length === 0 && !(await this.fill())) throw new BackupError('bad_archive', 'the batch ends inside a segment: it was cut off');
      const k = Math.min(this.left, this.cur.length);
      this.cur = this.cur.subarray(k);
      this.left -= k;
    }
  }

  /** After the last part: the body must end here. */
  async end(): Promise<void> {
    if (this.cur.length > 0 || (await this.fill())) throw new BackupError('bad_archive', 'the batch has bytes after its last segment');
  }
}

/**
 * The batch read (`POST /data/v1/store/batch/read`): several small segments read back in one answer, for a restore
 * that installs them together (restore/install.ts). The request is JSON, `{"segmentIds":[…]}`, at most
 * BATCH_MAX_SEGMENTS distinct ids. The answer (200, BATCH_CONTENT_TYPE) is framed as an upload batch is:
 *   1. one line of JSON: `{"formatVersion":1,"segments":[…]}`, one entry for each id asked, in the order asked:
 *      `{"segmentId","length"}` for a segment sent, or `{"segmentId","status","error":{"code","message"}}` for one
 *      the store does not send (the status and error a single GET would have answered);
 *   2. each sent segment exactly as a single GET's body (manifest.json, then its files), exactly `length` bytes, at
 *      most READ_PART_MAX each, in the order of the header; nothing after the last.
 * A reader checks each part as it checks a single GET; a client falls back to single GETs for whatever a batch did
 * not bring (an error entry, a broken answer, a target without the route).
 */
export const READ_BATCH_PATH = `${API_PREFIX}/store/batch/read`;
/** A part of a batch read: a segment under 1 MiB (what a restore groups) with its manifest and tar framing. */
export const READ_PART_MAX = 2 * 1024 * 1024;

export type ReadEntry = { segmentId: string; length: number } | { segmentId: string; status: number; error: { code: string; message: string } };

export function encodeReadHeader(entries: ReadEntry[]): Buffer {
  return Buffer.from(`${JSON.stringify({ formatVersion: BATCH_FORMAT_VERSION, segments: entries })}\n`);
}

/** The answer's header as a client checks it, against the ids it asked for: everything a target sends is checked. */
export function parseReadHeader(line: Buffer, asked: readonly string[], target: string): ReadEntry[] {
  const bad = (why: string) => new BackupError('target_error', `${target} answered a batch read whose header ${why}`);
  let v: unknown;
  try {
    v = JSON.parse(line.toString('utf8'));
  } catch {
    throw bad('is not a line of JSON');
  }
  const o = v as { formatVersion?: unknown; segments?: unknown } | null;
  if (!o || typeof o !== 'object' || Array.isArray(o) || o.formatVersion !== BATCH_FORMAT_VERSION) throw bad(`is not an object of formatVersion ${BATCH_FORMAT_VERSION}`);
  if (!Array.isArray(o.segments) || o.segments.length !== asked.length) throw bad(`does not list the ${asked.length} segments asked for`);
  return o.segments.map((raw, i): ReadEntry => {
    const e = raw as { segmentId?: unknown; length?: unknown; status?: unknown; error?: { code?: unknown; message?: unknown } } | null;
    if (!e || typeof e !== 'object' || e.segmentId !== asked[i]) throw bad(`does not name segment ${asked[i]} at entry ${i}`);
    if (e.length !== undefined) {
      if (!Number.isSafeInteger(e.length) || (e.length as number) <= 0 || (e.length as number) > READ_PART_MAX)
        throw bad(`gives ${asked[i]} a length that is not a whole number from 1 to ${READ_PART_MAX}`);
      return { segmentId: asked[i]!, length: e.length as number };
    }
    const code = typeof e.error?.code === 'string' ? e.error.code.slice(0, 100) : 'target_error';
    const message = typeof e.error?.message === 'string' ? e.error.message.slice(0, 2000) : 'no reason given';
    const status = Number.isSafeInteger(e.status) && (e.status as number) >= 400 && (e.status as number) <= 599 ? (e.status as number) : 502;
    return { segmentId: asked[i]!, status, error: { code, message } };
  });
}
