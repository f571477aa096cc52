/**
 * Druid segment ids: `dataSource_start_end_version[_partitionNum]`, the partition suffix only when it is
 * not 0. Parsed the way Druid's `SegmentId` does: a data source and a version may both contain `_`, so the
 * id is split on `_` and the interval is found where two parts parse as instants with start < end; a
 * trailing positive integer is read as the partition number first, as part of the version second.
 */
import { BackupError } from '../errors.js';
import { checkSegmentParts, quoteId } from './paths.js';
import { COMMON_DATE_TIME, parseInstant } from './time.js';

export interface SegmentId {
  /** The id exactly as Druid writes it; the key of a segment everywhere in this project. */
  id: string;
  dataSource: string;
  /** Interval bounds as written in the id (Joda `DateTime.toString()`), e.g. `2015-09-12T00:00:00.000Z`. */
  start: string;
  end: string;
  startMs: number;
  endMs: number;
  version: string;
  partition: number;
}

export const MAX_SEGMENT_ID_LENGTH = 1024;

export function formatSegmentId(p: { dataSource: string; start: string; end: string; version: string; partition: number }): string {
  const base = `${p.dataSource}_${p.start}_${p.end}_${p.version}`;
  return p.partition !== 0 ? `${base}_${p.partition}` : base;
}

/** `Ints.tryParse`: an optional `-` and decimal digits that fit in a Java int. */
function tryParseJavaInt(s: string): number | undefined {
  if (!/^-?\d{1,10}$/.test(s)) return undefined;
  const n = Number(s);
  return n >= -2147483648 && n <= 2147483647 ? n : undefined;
}

/**
 * Every parsing of `id` with the given data source: empty when impossible, one element when the id does not
 * end in `_<positive int>`, else two (explicit partition first, then the number as the end of the version).
 */
export function parsingsWithDataSource(dataSource: string, id: string): SegmentId[] {
  if (!dataSource || !id.startsWith(dataSource) || id.charAt(dataSource.length) !== '_') return [];
  const splits = id.slice(dataSource.length + 1).split('_');
  if (splits.length < 3) return [];
  const start = splits[0]!;
  const end = splits[1]!;
  const startMs = parseInstant(start);
  const endMs = parseInstant(end);
  if (startMs === undefined || endMs === undefined || startMs >= endMs) return [];
  let version = splits.slice(2, Math.max(splits.length - 1, 3)).join('_');
  const trail = splits.length > 3 ? splits[splits.length - 1]! : undefined;
  const out: SegmentId[] = [];
  const make = (v: string, partition: number): SegmentId => ({ id, dataSource, start, end, startMs, endMs, version: v, partition });
  if (trail !== undefined) {
    const n = tryParseJavaInt(trail);
    if (n !== undefined && n > 0) out.push(make(version, n));
    version = `${version}_${trail}`;
  }
  out.push(make(version, 0));
  return out;
}

/** The data source that precedes the first `_<instant>` in the id, Druid's most probable guess. */
export function mostProbableDataSource(id: string): string | undefined {
  for (const m of id.matchAll(COMMON_DATE_TIME)) {
    const end = m.index - 1;
    if (end >= 0 && id.charAt(end) === '_') return id.slice(0, end);
  }
  return undefined;
}

/**
 * All parsings, the most probable data source first (Druid's `iterateAllPossibleParsings`), one at a time. Unlike
 * Druid's loop, which stops one split early, this also tries the data source that leaves exactly three parts, so
 * ids whose instants the date pattern misses (the eternity interval) still parse.
 *
 * Linear in the id's length up to the first parsing: the id is split once, each part is parsed as an instant at
 * most once, and a candidate data source is only built when the two parts after it form an interval. (Rebuilding
 * every candidate, as Druid does, costs the square of the number of `_`: an id of 1024 characters with 500 of them
 * took 5 ms, so one request listing such ids blocked the event loop for seconds.)
 */
export function* iterateParsings(id: string): Generator<SegmentId> {
  const probable = mostProbableDataSource(id);
  if (probable) yield* parsingsWithDataSource(probable, id);
  const splits = id.split('_');
  const instants: Array<number | undefined | null> = new Array(splits.length).fill(null);
  const instantAt = (k: number): number | undefined => {
    const known = instants[k];
    if (known !== null) return known;
    return (instants[k] = parseInstant(splits[k]!));
  };
  let dsLength = -1;
  for (let i = 1; i <= splits.length - 3; i++) {
    dsLength += splits[i - 1]!.length + 1;
    if (probable && dsLength === probable.length) continue;
    const startMs = instantAt(i);
    if (startMs === undefined) continue;
    const endMs = instantAt(i + 1);
    if (endMs === undefined || startMs >= endMs) continue;
    yield* parsingsWithDataSource(id.slice(0, dsLength), id);
  }
}

/** Every parsing of `id`, in the order of iterateParsings. */
export function allParsings(id: string): SegmentId[] {
  return [...iterateParsings(id)];
}

/**
 * Parses a segment id. With a data source, as `SegmentId.tryParse` does; without one, the most probable
 * parsing. Returns undefined when the text is not a segment id.
 */
export function tryParseSegmentId(id: string, dataSource?: string): SegmentId | undefined {
  if (dataSource !== undefined) return parsingsWithDataSource(dataSource, id)[0];
  for (const p of iterateParsings(id)) return p;
  return undefined;
}

/** Why a data source name is not one Druid accepts (`IdUtils.validateId`), or undefined when it is fine. */
export function dataSourceProblem(name: string): string | undefined {
  if (!name) return 'the data source name is empty';
  if (name.startsWith('.')) return `data source ${quoteId(name)} starts with "."`;
  if (name.includes('/')) return `data source ${quoteId(name)} contains "/"`;
  // Druid allows the space but no other whitespace and no control characters.
  if (/[\u0000-\u001f\u007f\t\n\r\u2028\u2029]/.test(name)) return `data source ${quoteId(name)} contains a control or whitespace character`;
  return undefined;
}

/**
 * Checks a segment id that came from outside (URL, request body, upload, manifest) and parses it; an id whose
 * parts could not name a path (paths.ts) is refused here already, so no such id is ever stored or planned.
 */
export function parseSegmentId(id: unknown, dataSource?: string): SegmentId {
  if (typeof id !== 'string' || id.length === 0) throw new BackupError('bad_segment_id', 'segment id must be a non-empty string');
  if (id.length > MAX_SEGMENT_ID_LENGTH) throw new BackupError('bad_segment_id', `segment id is longer than ${MAX_SEGMENT_ID_LENGTH} characters`);
  if (/[\u0000-\u001f\u007f]/.test(id)) throw new BackupError('bad_segment_id', 'segment id contains a control character');
  const parsed = tryParseSegmentId(id, dataSource);
  if (!parsed) {
    throw new BackupError(
      'bad_segment_id',
      `${quoteId(id)} is not a Druid segment id (expected dataSource_start_end_version[_partition], e.g. wikipedia_2015-09-12T00:00:00.000Z_2015-09-13T00:00:00.000Z_2024-01-01T00:00:00.000Z)`,
    );
  }
  const problem = dataSourceProblem(parsed.dataSource);
  if (problem) throw new BackupError('bad_segment_id', problem);
  checkSegmentParts(parsed);
  return parsed;
}

/** Builds a segment id from its parts, as `SegmentId.of(...).toString()`. */
export function segmentIdOf(p: { dataSource: string; start: string; end: string; version: string; partition: number }): SegmentId {
  const startMs = parseInstant(p.start);
  const endMs = parseInstant(p.end);
  if (startMs === undefined || endMs === undefined) throw new BackupError('bad_interval', `"${p.start}/${p.end}" is not an interval`);
  return { ...p, id: formatSegmentId(p), startMs, endMs };
}
