/**
 * The DataSegment JSON Druid keeps in `info_dir` and in its metadata store (the segment's descriptor).
 */
import { BackupError } from '../errors.js';
import { checkSegmentParts, quoteId } from './paths.js';
import type { SegmentId } from './segmentId.js';
import { formatSegmentId, segmentIdOf } from './segmentId.js';

export interface LoadSpec {
  type: string;
  path?: string;
  [k: string]: unknown;
}

export interface DataSegment {
  dataSource: string;
  interval: string;
  version: string;
  loadSpec?: LoadSpec;
  dimensions?: string;
  metrics?: string;
  shardSpec?: { type?: string; partitionNum?: number; partitions?: number; [k: string]: unknown };
  binaryVersion?: number;
  size?: number;
  identifier?: string;
  [k: string]: unknown;
}

/**
 * The segment id a descriptor stands for (`DataSegment.getId()`). Throws when the JSON is not a descriptor, or
 * (`bad_segment_id`) when its parts could not name a path (paths.ts): descriptors come from uploads, manifests
 * and info_dir files, all written by others.
 */
export function segmentIdOfDescriptor(d: unknown): SegmentId {
  if (!d || typeof d !== 'object' || Array.isArray(d)) throw new BackupError('bad_request', 'descriptor must be a JSON object');
  const o = d as Record<string, unknown>;
  if (typeof o.dataSource !== 'string' || typeof o.interval !== 'string' || typeof o.version !== 'string') {
    throw new BackupError('bad_request', 'descriptor needs string fields dataSource, interval and version');
  }
  const [start = '', end = '', ...rest] = o.interval.split('/');
  const shard = o.shardSpec as { partitionNum?: unknown } | undefined;
  const partition = shard && typeof shard.partitionNum === 'number' ? shard.partitionNum : 0;
  const parts = { dataSource: o.dataSource, start, end, version: o.version, partition };
  checkSegmentParts({ ...parts, id: formatSegmentId(parts) });
  if (rest.length) throw new BackupError('bad_interval', `descriptor interval ${quoteId(o.interval)} is not start/end`);
  return segmentIdOf(parts);
}
