/**
 * Druid's two cache layouts (the path of a segment in either is made by paths.ts, `cacheSegmentPath`):
 * - nested (Druid up to 34.x): `{location}/{dataSource}/{start}_{end}/{version}/{partitionNum}/`
 * - flat (Druid 35+, apache/druid#18176): `{location}/{segmentId}/`
 */
import type { SegmentId } from './segmentId.js';
import { formatSegmentId } from './segmentId.js';
import { parseInstant } from './time.js';

export type CacheLayout = 'nested' | 'flat';

/**
 * The id these four path parts name when they are in Druid's own form (`{dataSource}_{start}_{end}_{version}`, and
 * `_{partition}` unless it is 0): a key to look up a segment already known, not a check. Parts in any other form make
 * a key that matches nothing, and `segmentOfNestedParts` reads them.
 */
export function nestedPartsKey(dataSource: string, intervalDir: string, version: string, partitionDir: string): string {
  return `${dataSource}_${intervalDir}_${version}${partitionDir === '0' ? '' : `_${partitionDir}`}`;
}

/** The interval a nested layout's interval directory (`{start}_{end}`) names. */
export interface NestedInterval {
  start: string;
  end: string;
  startMs: number;
  endMs: number;
}

/**
 * The interval of a nested-layout interval directory, or undefined when its name is not one (`{start}_{end}` must
 * split into two instants, the first before the second). Parsed once for all the segments under it.
 */
export function nestedInterval(intervalDir: string): NestedInterval | undefined {
  // Instants contain no `_`, so the interval directory has exactly one.
  const parts = intervalDir.split('_');
  if (parts.length !== 2) return undefined;
  const start = parts[0]!;
  const end = parts[1]!;
  const startMs = parseInstant(start);
  const endMs = parseInstant(end);
  if (startMs === undefined || endMs === undefined || startMs >= endMs) return undefined;
  return { start, end, startMs, endMs };
}

/**
 * The segment of a nested-layout directory from its four path parts (the interval directory's name, or its interval
 * as `nestedInterval` read it), or undefined when they do not form one (the partition must be a non-negative integer
 * that fits in a Java int).
 */
export function segmentOfNestedParts(
  dataSource: string,
  intervalDir: string | NestedInterval | undefined,
  version: string,
  partitionDir: string,
): SegmentId | undefined {
  if (!/^(0|[1-9]\d{0,9})$/.test(partitionDir)) return undefined;
  const partition = Number(partitionDir);
  if (partition > 2147483647) return undefined;
  const iv = typeof intervalDir === 'string' ? nestedInterval(intervalDir) : intervalDir;
  if (!iv) return undefined;
  const { start, end, startMs, endMs } = iv;
  return { id: formatSegmentId({ dataSource, start, end, version, partition }), dataSource, start, end, startMs, endMs, version, partition };
}
