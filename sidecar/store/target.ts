/**
 * A target keeps backups. Everything above this interface (active and passive backup, restore, verify) talks to
 * a `Target` and never knows which kind it has, as Litestream's ReplicaClient:
 * - `http(s)://host:port`: another sidecar started with `--store` (store/http/), which keeps a local store;
 * - a local store directory (store/local/), used by that sidecar and by `verify --store DIR`;
 * - `s3://bucket/prefix` (store/s3/), later.
 *
 * ## Wire format between sidecars (the http target)
 * `PUT /data/v1/store/segments/{id}` with `Content-Type: application/x-tar`, header `X-Druid-Backup-Node`, body a
 * POSIX tar stream of, in order:
 *   1. `segment.json`: `{"formatVersion":1,"segmentId","descriptor","files":[{"name","size"}]}`, the files
 *      the sender is about to send with their sizes;
 *   2. each file, as a regular-file entry named by its plain file name, in the order declared;
 *   3. `digests.json`: `{"files":[{"name","size","sha256"}]}`, the sha256 of each file as the sender read it,
 *      computed while streaming.
 * The receiver hashes what it receives, checks every entry against the declaration (type, name, size) and the
 * trailer, and only then makes the segment visible (fsync, rename). It answers `201` with the manifest, `200`
 * when it already held identical bytes, `409` when it holds different bytes from another node (flagged).
 * `GET /data/v1/store/segments/{id}` streams `manifest.json` first, then every file, as tar.
 * `HEAD /data/v1/store/segments/{id}` answers `X-Druid-Backup-Digest` and `X-Druid-Backup-Sources`.
 */
import type { Readable } from 'node:stream';
import type { DataSegment } from '../druid/descriptor.js';
import type { SnapshotStore } from '../snapshot/store.js';
import type { Manifest, SegmentFileInfo } from './manifest.js';

export interface StoredSummary {
  digest: string;
  sources: string[];
  size: number;
  /** The target's own verify found this copy damaged (what is wrong): held, but no good copy until replaced. */
  damaged?: string;
}

/** A segment to send: its files are opened one at a time while streaming. */
export interface OutgoingSegment {
  segmentId: string;
  descriptor: DataSegment | null;
  node: string;
  /** `path` is the file on disk, when there is one: a target may read it its own way (the S3 uploader does). */
  files: Array<{ name: string; size: number; open(): Readable; path?: string }>;
}

export type PutOutcome = 'stored' | 'identical' | 'conflict';

export interface PutResult {
  outcome: PutOutcome;
  /** The digests the sender computed while reading its files. */
  files: SegmentFileInfo[];
  digest: string;
  bytes: number;
}

export interface TransferOptions {
  signal?: AbortSignal;
  /**
   * `put` only: the target's copy of the segment is damaged; store these bytes over it. Taken only when they are
   * the bytes its manifest names (same digest), so repairs from several nodes at once write the same thing.
   */
  replace?: boolean;
  /** Called as bytes go out or come in, for progress. */
  onBytes?: (n: number) => void;
}

export interface IncomingFile {
  name: string;
  size: number;
  stream: Readable;
}

/** A segment being read back: the manifest first, then each file in manifest order. */
export interface SegmentReader {
  manifest: Manifest;
  files: AsyncIterable<IncomingFile>;
  /**
   * True when the reader itself checks each file against the manifest (size and sha256) and fails that file's
   * stream before it ends when they differ, as the http target's download does; a restore then does not hash the
   * same bytes a second time.
   */
  verified?: boolean;
}

export interface ListFilter {
  dataSource?: string;
  /** Segments overlapping this ISO interval. */
  interval?: string;
  segmentIds?: string[];
}

export interface StoreStats {
  segments: number;
  bytes: number;
  freeBytes: number;
  /** Configured limit of the store, when there is one. */
  quotaBytes?: number;
}

/** Where the copies of one segment are, as a restore must tell them apart: good, damaged, absent, or not answering. */
export interface CopySurvey {
  /** Targets holding a copy not known damaged. */
  good: string[];
  /** Targets whose copy failed its digests, with what is wrong (target and files). */
  damaged: Array<{ target: string; problem: string }>;
  /** Targets that could not be asked, and why. */
  unreachable: Array<{ target: string; why: string; holder: boolean }>;
  /** Targets that answered they hold no copy. */
  absent: string[];
}

export interface Target {
  /** The URL operators configure (`http://host:8484`, `s3://bucket/prefix`, `file:///dir`). */
  readonly url: string;
  head(segmentId: string, opts?: TransferOptions): Promise<StoredSummary | undefined>;
  manifest(segmentId: string, opts?: TransferOptions): Promise<Manifest | undefined>;
  put(segment: OutgoingSegment, opts?: TransferOptions): Promise<PutResult>;
  /** Records that `node` also holds the segment with `digest` (a replica that needed no transfer). */
  addSource(segmentId: string, node: string, digest: string, opts?: TransferOptions): Promise<PutOutcome>;
  read(segmentId: string, opts?: TransferOptions): Promise<SegmentReader>;
  list(filter?: ListFilter, opts?: TransferOptions): AsyncIterable<Manifest>;
  stats(opts?: TransferOptions): Promise<StoreStats>;
  /** Releases what the target keeps open (idle connections, a client) when it holds any; calls in flight finish. */
  close?(): void;
  /**
   * A target made of several (a set) says where each copy of a segment is; `probe` asks one member whether it
   * answers now, whatever its back-off. One target without them is surveyed with `head` (restore/sources.ts).
   */
  survey?(segmentId: string, opts?: TransferOptions): Promise<CopySurvey>;
  probe?(url: string, opts?: TransferOptions): Promise<boolean>;
  /** Snapshots, retention and prune (issue 21): a target that keeps snapshots beside its segments offers this. */
  readonly snapshots?: SnapshotStore;
}
