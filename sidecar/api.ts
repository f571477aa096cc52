/**
 * Request and response types of the sidecar's HTTP API (`/data/v1/*`), shared by the server, the CLI, the
 * VS Code extension (imported as types only) and the tests. `/openapi.json` describes the same shapes.
 * Every call but `GET /status/health` needs `Authorization: Bearer <token>`.
 * Errors: a 4xx/5xx status with `{"error": {"code", "message"}}`, never a stack trace.
 */
import type { DataSegment } from './druid/descriptor.js';
import type { Manifest } from './store/manifest.js';

export const API_PREFIX = '/data/v1';

export interface ApiError {
  error: { code: string; message: string };
}

/** GET /status/health (no token). */
export interface HealthResponse {
  status: 'ok';
  version: string;
}

/** GET /data/v1/node */
export interface NodeInfo {
  name: string;
  version: string;
  /** source: backs up a cache; target: keeps a store; cluster: the cluster sidecar beside the Coordinator (snapshots). */
  roles: Array<'source' | 'target' | 'cluster'>;
  druid: {
    service?: string;
    host?: string;
    plaintextPort?: number;
    locations: Array<{ path: string; maxSize?: number; freeBytes?: number }>;
    infoDir?: string;
    layout: 'nested' | 'flat' | 'mixed' | 'empty';
    deepStorage: { type: string; directory?: string; zip: boolean };
  };
  /** The target active backup streams to, when set. */
  target?: string;
  /**
   * The kind of `target` (the registry of target kinds): its name (`http`, `s3`, ...) and whether this node answers
   * for it (a bucket has no sidecar of its own: its catalog, manifests and verify are asked of this node).
   */
  targetKind?: TargetKindInfo;
  store?: { path: string; segments: number; bytes: number };
  /** The node's bandwidth limits in bytes per second (druid.backup.maxBytesPerSecond, druid.backup.restore.maxBytesPerSecond); null: none (absent from sidecars before these limits). */
  maxBytesPerSecond?: { backup: number | null; restore: number | null };
  startedAt: string;
}

export type BackupState = 'backedUp' | 'pending' | 'failed' | 'none';
export type SegmentLocalState = 'complete' | 'downloading' | 'incomplete' | 'missing' | 'damaged' | 'restoring';

/** One segment in GET /data/v1/segments. */
export interface SegmentInfo {
  id: string;
  dataSource: string;
  interval: string;
  version: string;
  partition: number;
  size: number;
  files: Array<{ name: string; size: number }>;
  layout: 'nested' | 'flat';
  state: SegmentLocalState;
  hasInfoFile: boolean;
  backup: {
    state: BackupState;
    target?: string;
    /** ISO time of the last successful backup. */
    at?: string;
    /** With several targets (druid.backup.targets): how many hold a good copy, and which. */
    copies?: number;
    targets?: string[];
    /** Copies a read or a verify found damaged, not counted in `copies` until repaired and verified clean. */
    damagedCopies?: Array<{ target: string; problem: string; at: string }>;
    digest?: string;
    error?: string;
  };
}

/** Query of list endpoints: filters, and paging with an opaque cursor. */
export interface ListQuery {
  dataSource?: string;
  interval?: string;
  state?: string;
  /** Page size, 1..1000 (default 100). */
  limit?: number;
  cursor?: string;
}

export interface Page<T> {
  items: T[];
  /** Number of items matching the filters, over all pages. */
  total: number;
  /** Pass as `cursor` to get the next page; absent on the last one. */
  nextCursor?: string;
}

/** GET /data/v1/segments */
export type SegmentsResponse = Page<SegmentInfo>;

/** Segment selection shared by backup and restore. All given filters must match (AND). */
export interface SegmentSelector {
  dataSource?: string;
  /** ISO-8601 interval; selects segments that overlap it. */
  interval?: string;
  segmentIds?: string[];
}

/**
 * Where a backup goes or a restore reads from: one target URL (as always), a list of them (a set: each segment kept
 * on `copies` of them, read from the nearest good copy), or left out (the sidecar's own druid.backup.targets, else
 * druid.backup.target).
 */
export type TargetField = string | string[];

/** POST /data/v1/backup → 202 {jobId} */
export interface BackupRequest extends SegmentSelector {
  target?: TargetField;
  /** With a list of targets: on how many each segment is kept (default druid.backup.copies). */
  copies?: number;
  /** This job's own bandwidth limit, bytes per second: at most the node's druid.backup.maxBytesPerSecond. */
  maxBytesPerSecond?: number;
}

export type RestoreDestination = 'cache' | 'deep-storage' | string;

/** POST /data/v1/restore → 202 {jobId}; with dryRun → 200 RestorePlan */
export interface RestoreRequest extends SegmentSelector {
  target?: TargetField;
  /** After a restore into deep storage, mark the segments used on this Druid Coordinator (default druid.backup.coordinator). */
  coordinator?: string;
  /** false: do not tell the Coordinator even when druid.backup.coordinator is set. */
  markUsed?: boolean;
  /** `cache` (default), `deep-storage`, or an absolute directory path. */
  destination?: RestoreDestination;
  /** Restore exactly the segments this snapshot names (of `dataSource` when given); any no target holds is named in the plan. */
  snapshot?: string;
  dryRun?: boolean;
  /**
   * Segments that fail because every target holding a good copy is unreachable are restored again as soon as one
   * answers (probed every few seconds); the job result says per segment which case applied.
   */
  retry?: boolean;
  /** This job's own bandwidth limit, bytes per second: at most the node's druid.backup.restore.maxBytesPerSecond. */
  maxBytesPerSecond?: number;
}

/**
 * Why a lost segment is or is not back (restore/sources.ts): `restored`; `restorable` (a good copy answers);
 * `holders_unreachable` (waiting for a target that holds it); `copies_damaged` (every reachable copy failed its
 * digests); `no_backup` (every target answered, none holds it).
 */
export type LossCase = 'restored' | 'restorable' | 'holders_unreachable' | 'copies_damaged' | 'no_backup';

export interface LossVerdict {
  segmentId: string;
  case: LossCase;
  /** Targets with a good copy. */
  good?: string[];
  /** The target restored from. */
  from?: string;
  damaged?: Array<{ target: string; problem: string }>;
  unreachable?: Array<{ target: string; why: string }>;
  /** Targets the segment waits on. */
  waitOn?: string[];
}

export interface RestorePlanItem {
  segmentId: string;
  size: number;
  action: 'restore' | 'skip' | 'overwrite';
  /** Why it is skipped or overwritten. */
  reason?: string;
  path: string;
}

export interface RestorePlan {
  target: string;
  destination: RestoreDestination;
  segments: RestorePlanItem[];
  totals: { segments: number; bytes: number; restore: number; skip: number; overwrite: number };
  /** Segments refused before any byte is written (a bad manifest, an id or loadSpec naming no path inside its root), each with why. */
  refused?: Array<{ segmentId: string; reason: string }>;
  /** A restore into deep storage with a Coordinator: the segments it would mark used, by data source. */
  markUsed?: { coordinator: string; segments: Record<string, string[]> };
  /** A restore from a snapshot: its id, and the segments it names that no target holds, each with why. */
  snapshot?: { id: string; missing: Array<{ segmentId: string; reason: string }> };
}

/** POST /data/v1/cluster/restore: a cluster brought back to a snapshot (sidecar/cluster/restore/). */
export interface ClusterRestoreRequest {
  /** The target holding the snapshot and its segments; left out: the targets this sidecar is configured with. */
  target?: string;
  /** The snapshot, or `asOf`: the newest snapshot taken at or before that instant. */
  snapshot?: string;
  asOf?: string;
  /** Default: every data source of the snapshot. */
  dataSources?: string[];
  /** A rollback marks unused only inside these; without any, nothing is marked unused. */
  intervals?: string[];
  /** The deep storage of a new cluster: an absolute directory, or `s3://bucket/baseKey`. */
  deepStorage?: string;
  /** The data sources' compaction configs are taken away while the restore runs, and put back after it. */
  suspendCompaction?: boolean;
  /** How long the post-restore check waits for Druid to load every restored segment (ISO-8601 period). */
  checkTimeout?: string;
  /**
   * Values of the secrets the snapshot holds redacted, by the JSON path it names (the plan's warnings list them):
   * a config holding one is put back only when every one of its secrets is given.
   */
  secrets?: Record<string, string>;
  dryRun?: boolean;
}

/** The plan of a cluster restore: what each step would do now (the dry run's answer, and a job's result). */
export interface ClusterRestorePlan {
  snapshot: { id: string; time: string; complete: boolean };
  target: string;
  dataSources: string[];
  intervals: string[];
  steps: Array<{
    step: string;
    done: boolean;
    items: Array<{ action: string; subject: string; segments?: number; bytes?: number; detail?: string }>;
    warnings: string[];
    refusals: string[];
  }>;
  /** Some step refuses: nothing is done. */
  refused: boolean;
}

export interface JobAccepted {
  jobId: string;
}

/** `recovery`: a cluster restore from a snapshot (POST /data/v1/cluster/restore). */
export type JobType = 'backup' | 'restore' | 'verify' | 'snapshot' | 'prune' | 'recovery';
export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface JobProgress {
  segmentsTotal: number;
  segmentsDone: number;
  segmentsSkipped: number;
  segmentsFailed: number;
  bytesTotal: number;
  bytesDone: number;
  /** The segment being worked on now. */
  current?: string;
  /** The bandwidth limit the job's transfers run under (the node's, or the job's own lower one), bytes per second. */
  maxBytesPerSecond?: number;
}

/** GET /data/v1/jobs/{id}; GET /data/v1/jobs lists them (newest first). */
export interface Job {
  id: string;
  type: JobType;
  state: JobState;
  target?: string;
  request: Record<string, unknown>;
  progress: JobProgress;
  errors: Array<{ segmentId?: string; message: string }>;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  /** Type-specific outcome, e.g. the list of bad segments of a verify job. */
  result?: Record<string, unknown>;
}

/** POST /data/v1/store/verify → 202 {jobId} */
export interface VerifyRequest {
  /** A bucket (`s3://bucket/prefix`) to verify from this sidecar, instead of the store it keeps. */
  target?: string;
  dataSource?: string;
  interval?: string;
  segmentIds?: string[];
}

export interface VerifyProblem {
  segmentId: string;
  problem: 'missing-file' | 'extra-file' | 'size-mismatch' | 'digest-mismatch' | 'bad-manifest';
  file?: string;
  message: string;
}

/** GET /data/v1/store/segments: the catalog of a target. */
export interface StoredSegment {
  segmentId: string;
  dataSource: string;
  interval: string;
  version: string;
  partition: number;
  size: number;
  fileCount: number;
  digest: string;
  sources: string[];
  /** Replicas whose bytes differ from the stored copy. */
  conflicts: string[];
  /** The store's own verify found this copy damaged (what is wrong); it is not served until replaced. */
  damaged?: string;
  createdAt: string;
  updatedAt: string;
}
export type StoreCatalogResponse = Page<StoredSegment>;

/** Server-sent events on GET /data/v1/events. */
export type SidecarEvent =
  | { type: 'segment'; segment: SegmentInfo }
  | { type: 'segment-removed'; segmentId: string }
  | { type: 'job'; job: Job }
  | { type: 'stored'; segment: StoredSegment };

export type { DataSegment, Manifest };

/** What a client may know of a target's kind, from the API: clients never parse a target's URL scheme. */
export interface TargetKindInfo {
  name: string;
  answeredByNode: boolean;
}

/** One target of GET /data/v1/targets. */
export interface TargetStatus {
  url: string;
  /** Its kind's name (`http`, `s3`, ...). */
  kind: string;
  zone?: string;
  weight: number;
  /** up: used; down: its circuit is open (failed its health check or transfers); invalid: answers nonsense stats; unknown: not asked yet. */
  state: 'up' | 'down' | 'unknown' | 'invalid';
  circuit: string;
  /** Bytes it can still take (disk or quota, whichever is less). */
  freeBytes?: number;
  quotaBytes?: number;
  storedBytes?: number;
  segments?: number;
  /** Rolling round-trip time of small requests, in milliseconds. */
  rttMs?: number;
  failures: number;
  lastError?: string;
  /** When an open circuit lets the next call through. */
  retryAt?: string;
  /** Segments of this node the copy records place on it. */
  copies: number;
  /** The last choice it took part in, and why it was or was not chosen. */
  lastChoice?: { segmentId: string; chosen: boolean; reason: string; at: string };
}

/** GET /data/v1/targets */
export interface TargetsResponse {
  copies: number;
  zone?: string;
  /** Segments of the cache kept on fewer available targets than copies. */
  underReplicated: number;
  targets: TargetStatus[];
}
