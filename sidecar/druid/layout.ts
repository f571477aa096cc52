/**
 * Druid's two cache layouts (the path of a segment in either is made by paths.ts, `cacheSegmentPath`):
 * - nested (Druid up to 34.x): `{location}/{dataSource}/{start}_{end}/{version}/{partitionNum}/`
 * - flat (Druid 35+, apache/druid#18176): `{location}/{segmentId}/`
 */
import type { SegmentId } from './segmentId.js';
import { segmentIdOf } from './segmentId.js';

export type CacheLayout = 'nested' | 'flat';

/**
 * The id these four path parts name when they are in Druid's own form (`{dataSource}_{start}_{end}_{version}`, and
 * `_{partition}` unless it is 0): a key to look up a segment already known, not a check. Parts in any other form make
 * a key that matches nothing, and `segmentOfNestedParts` reads them.
 */
export function nestedPartsKey(dataSource: string, intervalDir: string, version: string, partitionDir: string): string {
  return `${dataSource}_${intervalDir}_${version}${partitionDir === '0' ? '' : `_${partitionDir}`}`;
}

/**
 * The segment of a nested-layout directory from its four path parts, or undefined when they do not form one
 * (`{start}_{end}` must split into two instants; the partition must be a non-negative integer).
 */
export function segmentOfNestedParts(dataSource: string, intervalDir: string, version: string, partitionDir: string): SegmentId | undefined {
  if (!/^(0|[1-9]\d{0,9})$/.test(partitionDir)) return undefined;
  const partition = Number(partitionDir);
  if (partition > 2147483647) return undefined;
  // Instants contain no `_`, so the interval directory has exactly one.
  const parts = intervalDir.split('_');
  if (parts.length !== 2) return undefined;
  try {
    const seg = segmentIdOf({ dataSource, start: parts[0]!, end: parts[1]!, version, partition });
    return seg.startMs < seg.endMs ? seg : undefined;
  } catch {
    return undefined;
  }
}
