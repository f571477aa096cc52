/**
 * A snapshot: what a Druid cluster used at a time T, and the metadata a rebuilt cluster needs, as a small immutable
 * record kept in each target beside the segments (issue 21). It is written in two kinds of objects:
 * - content-addressed blobs (`snapshots/blobs/{sha256}`): each data source's segment list (JSON lines of
 *   `SnapshotSegment`) and the cluster metadata (JSON of `ClusterMetadata`); identical consecutive snapshots share
 *   them, so a snapshot that repeats the previous one costs one small header;
 * - the header (`snapshots/{id}.json`, a `SnapshotHeader`), written last, so a half-written snapshot never exists.
 * Pins are kept apart from the immutable header (`snapshots/pins/{id}`).
 */
import type { DataSegment } from '../druid/descriptor.js';

export const SNAPSHOT_FORMAT = 1;

/** Why a used segment is not in the backup. */
export type MissingReason = 'not_cached' | 'pending' | 'failed' | 'unknown';

/** One used segment of a data source, one JSON line of its list blob. */
export interface SnapshotSegment {
  id: string;
  /** Used but overshadowed (Druid keeps such segments used for a while after a compaction). */
  overshadowed: boolean;
  size: number;
  /** As the Coordinator reported it (loadSpec included). */
  descriptor: DataSegment | null;
  /** A target held a good copy when the snapshot was taken. */
  backedUp: boolean;
  missing?: MissingReason;
  /** `sys.segments.num_rows`, when a Broker was asked. */
  rows?: number;
}

export interface SnapshotDataSource {
  name: string;
  segments: number;
  bytes: number;
  /** The sum of the segments' rows, when a Broker was asked. */
  rows?: number;
  /** Every used segment of the data source is backed up. */
  complete: boolean;
  /** sha256 of the list blob. */
  list: string;
}

/** Druid's metadata, read through Druid's own APIs; every value as Druid returned it unless redacted. */
export interface ClusterMetadata {
  druidVersion?: string;
  /** `GET /druid/coordinator/v1/rules`: the default (`_default`) and per data source. */
  rules?: unknown;
  /** `GET /druid/coordinator/v1/config/compaction`. */
  compaction?: unknown;
  coordinatorDynamicConfig?: unknown;
  overlordDynamicConfig?: unknown;
  /** Supervisor specs by id. */
  supervisors?: unknown;
  /** `GET /druid/coordinator/v1/lookups/config/all`. */
  lookups?: unknown;
  /** Committed stream offsets per data source, read in-process by the Druid extension on the Overlord. */
  offsets: { captured: boolean; reason?: string; dataSources?: Record<string, unknown> };
  /** JSON paths whose values looked like secrets and were replaced by `REDACTED_MARKER`. */
  redacted: string[];
  /** What could not be read, by part (e.g. `{"lookups": "403 Forbidden"}`). */
  errors?: Record<string, string>;
}

export const REDACTED_MARKER = '<redacted by druid-backup>';

export interface SnapshotHeader {
  formatVersion: typeof SNAPSHOT_FORMAT;
  /** Sortable by time: `YYYYMMDDTHHMMSSZ-xxxxxxxx`. */
  id: string;
  /** ISO 8601, UTC. */
  time: string;
  /** The node that took it. */
  node: string;
  dataSources: SnapshotDataSource[];
  segments: number;
  bytes: number;
  /** Every used segment of every chosen data source is backed up: it can be restored whole. */
  complete: boolean;
  /** sha256 of the metadata blob. */
  metadata: string;
}
