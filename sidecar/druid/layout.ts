/**
 * Where a segment lives inside a cache location, in Druid's two layouts:
 * - nested (Druid up to 34.x): `{location}/{dataSource}/{start}_{end}/{version}/{partitionNum}/`
 * - flat (Druid 35+, apache/druid#18176): `{location}/{segmentId}/`
 */
import path from 'node:path';
import type { SegmentId } from './segmentId.js';
import { segmentIdOf } from './segmentId.js';

export type CacheLayout = 'nested' | 'flat';

/** Path of a segment's directory relative to its cache location. */
export function relativeSegmentDir(seg: SegmentId, layout: CacheLayout): string {
  if (layout === 'flat') return seg.id;
  return path.join(seg.dataSource, `${seg.start}_${seg.end}`, seg.version, String(seg.partition));
}

export function segmentDir(location: string, seg: SegmentId, layout: CacheLayout): string {
  return path.join(location, relativeSegmentDir(seg, layout));
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
