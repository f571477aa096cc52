/**
 * The one check of everything a snapshot is made of, applied where it enters: ids and digests before any key or
 * path is made of them, headers, segment-list lines and pins as a target sends them back (a target or a bucket is
 * hostile until checked, like a request body). A refusal is a `target_error` naming what is wrong, or a
 * `bad_request` for a caller's id.
 */
import { createHash, randomBytes } from 'node:crypto';
import { BackupError } from '../errors.js';
import { quoteId } from '../druid/paths.js';
import { parseSegmentId } from '../druid/segmentId.js';
import { parseInstant } from '../druid/time.js';
import { splitLines } from '../util/lines.js';
import type { MissingReason, SnapshotDataSource, SnapshotHeader, SnapshotSegment } from './model.js';
import { SNAPSHOT_FORMAT } from './model.js';

export const SNAPSHOT_ID = /^\d{8}T\d{6}Z-[0-9a-f]{8}$/;
export const SHA256_HEX = /^[0-9a-f]{64}$/;
/** Largest header or pin read back; a header lists data sources, not segments. */
export const MAX_HEADER_BYTES = 4 * 1024 * 1024;
/** Largest metadata blob read back (rules, specs and lookups of a whole cluster). */
export const MAX_METADATA_BYTES = 64 * 1024 * 1024;
/** Longest line of a segment list (one descriptor). */
export const MAX_LIST_LINE = 1024 * 1024;
/** Largest list blob read back: 100,000 descriptors of about 1 KiB, with room. */
export const MAX_LIST_BYTES = 512 * 1024 * 1024;
const MISSING: readonly MissingReason[] = ['not_cached', 'pending', 'failed', 'unknown'];

/** Throws `bad_request` (or `code`) unless `id` is a snapshot id: the only ids a key or path is made of. */
export function checkSnapshotId(id: unknown, code: 'bad_request' | 'target_error' = 'bad_request'): string {
  if (typeof id !== 'string' || !SNAPSHOT_ID.test(id)) throw new BackupError(code, `snapshot id ${quoteId(id)} is not of the form YYYYMMDDTHHMMSSZ-xxxxxxxx`);
  return id;
}

/** Throws unless `h` is 64 lower-case hex digits: the only blob names a key or path is made of. */
export function checkSha256(h: unknown, code: 'bad_request' | 'target_error' = 'bad_request'): string {
  if (typeof h !== 'string' || !SHA256_HEX.test(h)) throw new BackupError(code, `blob name ${quoteId(h)} is not a sha256 in lower-case hex`);
  return h;
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A new snapshot id for time `ms`: sortable by time, unique by its random tail. */
export function newSnapshotId(ms: number): string {
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z-${randomBytes(4).toString('hex')}`;
}

/** The time a snapshot id names, in ms. */
export function snapshotIdTime(id: string): number {
  const t = parseInstant(`${id.slice(0, 4)}-${id.slice(4, 6)}-${id.slice(6, 8)}T${id.slice(9, 11)}:${id.slice(11, 13)}:${id.slice(13, 15)}.000Z`);
  if (t === undefined) throw new BackupError('bad_request', `snapshot id ${quoteId(id)} does not name a valid time`);
  return t;
}

function refused(what: string, problem: string): BackupError {
  return new BackupError('target_error', `${what} is refused: ${problem}`);
}

function bad(what: string, problem: string): never {
  throw refused(what, problem);
}

function count(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function obj(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

function checkDataSource(v: unknown, what: string): SnapshotDataSource {
  if (!obj(v)) bad(what, 'a data source entry is not an object');
  const { name, segments, bytes, rows, complete, list } = v;
  if (typeof name !== 'string' || name === '' || name.length > 1024) bad(what, `data source name ${quoteId(name)} is not a name`);
  if (!count(segments) || !count(bytes)) bad(what, `data source ${quoteId(name)} has bad counts`);
  if (rows !== undefined && !count(rows)) bad(what, `data source ${quoteId(name)} has a bad row count`);
  if (typeof complete !== 'boolean') bad(what, `data source ${quoteId(name)} has no completeness`);
  if (typeof list !== 'string' || !SHA256_HEX.test(list)) bad(what, `data source ${quoteId(name)} names a bad list blob ${quoteId(list)}`);
  return { name, segments, bytes, ...(rows !== undefined ? { rows } : {}), complete, list };
}

/** A header as a target sent it back, checked field by field; `id` is the id it was asked for. */
export function parseHeader(raw: unknown, id: string): SnapshotHeader {
  const what = `snapshot ${quoteId(id)}`;
  if (!obj(raw)) bad(what, 'its header is not a JSON object');
  if (raw.formatVersion !== SNAPSHOT_FORMAT) bad(what, `its format ${quoteId(raw.formatVersion)} is not ${SNAPSHOT_FORMAT}`);
  if (raw.id !== id) bad(what, `its header names another id ${quoteId(raw.id)}`);
  if (typeof raw.time !== 'string' || parseInstant(raw.time) === undefined) bad(what, `its time ${quoteId(raw.time)} is not an instant`);
  if (typeof raw.node !== 'string' || raw.node.length === 0 || raw.node.length > 255) bad(what, 'its node is not a name');
  if (!Array.isArray(raw.dataSources) || raw.dataSources.length > 100_000) bad(what, 'its data sources are not a list');
  const dataSources = raw.dataSources.map((d) => checkDataSource(d, what));
  const names = new Set(dataSources.map((d) => d.name));
  if (names.size !== dataSources.length) bad(what, 'it names a data source twice');
  if (!count(raw.segments) || !count(raw.bytes)) bad(what, 'its counts are not whole numbers');
  if (raw.segments !== dataSources.reduce((n, d) => n + d.segments, 0)) bad(what, 'its segment count is not the sum of its data sources');
  if (typeof raw.complete !== 'boolean') bad(what, 'it says nothing of completeness');
  if (typeof raw.metadata !== 'string' || !SHA256_HEX.test(raw.metadata)) bad(what, `it names a bad metadata blob ${quoteId(raw.metadata)}`);
  return {
    formatVersion: SNAPSHOT_FORMAT,
    id,
    time: raw.time,
    node: raw.node,
    dataSources,
    segments: raw.segments,
    bytes: raw.bytes,
    complete: raw.complete,
    metadata: raw.metadata,
  };
}

/** One line of a segment list blob of data source `dataSource`, checked: its id must be a segment of that data source. */
export function parseSegmentLine(line: string, dataSource: string, what: string): SnapshotSegment {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    bad(what, 'a line of its segment list is not JSON');
  }
  if (!obj(raw)) bad(what, 'a line of its segment list is not an object');
  const { id, overshadowed, size, descriptor, backedUp, missing, rows } = raw;
  let seg;
  try {
    seg = parseSegmentId(id, dataSource);
  } catch (e) {
    bad(what, `its list of ${quoteId(dataSource)} holds ${(e as Error).message}`);
  }
  if (typeof overshadowed !== 'boolean' || typeof backedUp !== 'boolean' || !count(size)) bad(what, `its entry of ${quoteId(seg.id)} has bad fields`);
  if (missing !== undefined && !MISSING.includes(missing as MissingReason)) bad(what, `its entry of ${quoteId(seg.id)} has a bad missing reason`);
  if (rows !== undefined && !count(rows)) bad(what, `its entry of ${quoteId(seg.id)} has a bad row count`);
  if (descriptor !== null && !obj(descriptor)) bad(what, `its entry of ${quoteId(seg.id)} has a bad descriptor`);
  return {
    id: seg.id,
    overshadowed,
    size,
    descriptor: descriptor as SnapshotSegment['descriptor'],
    backedUp,
    ...(missing !== undefined ? { missing: missing as MissingReason } : {}),
    ...(rows !== undefined ? { rows } : {}),
  };
}

/**
 * The segments of list blob `sha` of data source `dataSource`, one line at a time as its bytes arrive (a list of
 * 100,000 descriptors is never held whole, only the line being read): each line checked (`parseSegmentLine`), in
 * increasing id order, at most MAX_LIST_LINE long, the whole at most MAX_LIST_BYTES. The bytes are checked against
 * the blob's name at their end (a `digest_mismatch` then): a caller acts on what it read only once the iteration
 * has ended without an error.
 */
export async function* listSegments(chunks: AsyncIterable<Uint8Array>, sha: string, dataSource: string, what: string): AsyncGenerator<SnapshotSegment> {
  const hash = createHash('sha256');
  let total = 0;
  async function* hashed(): AsyncGenerator<Uint8Array> {
    for await (const chunk of chunks) {
      total += chunk.byteLength;
      if (total > MAX_LIST_BYTES) bad(what, `its segment list is larger than ${MAX_LIST_BYTES} bytes`);
      hash.update(chunk);
      yield chunk;
    }
  }
  let prev = '';
  for await (const line of splitLines(hashed(), MAX_LIST_LINE, () => refused(what, 'a line of its segment list is too long'))) {
    if (line.length === 0) continue;
    const s = parseSegmentLine(line.toString('utf8'), dataSource, what);
    if (s.id <= prev) bad(what, `its list of ${quoteId(dataSource)} is not sorted by id`);
    prev = s.id;
    yield s;
  }
  if (hash.digest('hex') !== sha) throw new BackupError('digest_mismatch', `${what}: its segment list ${sha} is damaged: its bytes have another sha256`);
}

/** Every segment of a list blob in store `s`, read and checked by `listSegments`. */
export function readSegmentList(
  s: { openBlob(sha: string, signal?: AbortSignal): Promise<AsyncIterable<Uint8Array>> },
  sha: string,
  dataSource: string,
  what: string,
  signal?: AbortSignal,
): AsyncGenerator<SnapshotSegment> {
  return (async function* () {
    yield* listSegments(await s.openBlob(checkSha256(sha, 'target_error'), signal), sha, dataSource, what);
  })();
}

/** A pin as kept apart from the header: when and why. */
export interface Pin {
  at: string;
  reason?: string;
}

export function parsePin(raw: unknown, id: string): Pin {
  if (!obj(raw) || typeof raw.at !== 'string' || parseInstant(raw.at) === undefined) bad(`pin of snapshot ${quoteId(id)}`, 'it is not {"at": instant}');
  if (raw.reason !== undefined && (typeof raw.reason !== 'string' || raw.reason.length > 1000)) bad(`pin of snapshot ${quoteId(id)}`, 'its reason is not text');
  return { at: raw.at, ...(raw.reason !== undefined ? { reason: raw.reason as string } : {}) };
}
