/**
 * A target keeps backups. Everything above this interface (active and passive backup, restore, verify) talks to
 * a `Target` and never knows which kind it has, as Litestream's ReplicaClient:
 * - `http(s)://host:port`: another sidecar started with `--store` (store/http/), which keeps a local store;
 * - a local store directory (store/local/), used by that sidecar and by `verify --store DIR`;
 * - `s3://bucket/prefix` (store/s3/), a bucket this process talks to itself;
 * - a set of targets (targets/set.ts) keeping each segment on several of them.
 *
 * ## Capabilities
 * Beyond the core calls, a kind offers what it can, declared as the optional members below ("Capability:" in
 * their comments). A caller asks for the member (`target.held?.(…)`, `hasCapability(target, 'verify')`), never for
 * a class: `instanceof` on a target class outside store/ and targets/ is refused by test/unit/layering.test.ts.
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
 * `POST /data/v1/store/batch` carries several small segments' uploads, each exactly as above, in one request and
 * has them committed together; store/http/batch.ts has its framing and answer.
 */
import type { Readable } from 'node:stream';
import type { Page, StoredSegment, VerifyProblem } from '../api.js';
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
  /**
   * `path` is the file on disk, when there is one: a target may read it its own way (the S3 uploader does).
   * `readSmall`, offered for a small file read without a bandwidth limit, reads it whole in one call (util/readStream.ts
   * `readSmallFile`: what is there, one byte more than `size` when it grew), so a small segment packs at once.
   */
  files: Array<{ name: string; size: number; open(): Readable; path?: string; readSmall?(): Buffer }>;
  /**
   * The files' digests as the sender knows them (remembered by file fingerprint, else read once and remembered), for
   * a target that must compare before sending (a set, some of whose members hold the segment); without it the
   * target reads the files to hash them.
   */
  digests?(signal?: AbortSignal): Promise<SegmentFileInfo[]>;
}

export type PutOutcome = 'stored' | 'identical' | 'conflict';

export interface PutResult {
  outcome: PutOutcome;
  /** The digests the sender computed while reading its files. */
  files: SegmentFileInfo[];
  digest: string;
  bytes: number;
  /** `identical` only: the bytes were held, and this node was recorded as another source of them. */
  sourceAdded?: boolean;
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
  /**
   * `read` and `readBatch`: the manifest a segment's restore was planned with (checked when the catalog was read).
   * A reader that is given it takes the target's answer for that segment only when its manifest names the same id
   * and digest, and checks the files against the planned list, instead of parsing and checking the same manifest
   * a second time. A target may ignore it.
   */
  planned?: (segmentId: string) => Manifest | undefined;
}

/**
 * Bytes of a file as they arrive: one buffer, or a batch of buffers to be taken in order (the slices a socket
 * delivered, archive/unpack.ts), so that a restore writes them as they came instead of copying them into one.
 */
export type FileChunk = Buffer | readonly Buffer[];

export interface IncomingFile {
  name: string;
  size: number;
  chunks: AsyncIterable<FileChunk>;
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

/** One segment of a batch read: its reader, or why the target did not send it. */
export type BatchRead = { segmentId: string; reader: SegmentReader; error?: undefined } | { segmentId: string; reader?: undefined; error: Error };

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
  /** A target sidecar that takes batch uploads (store/http/batch.ts) says so, with its limits. */
  batch?: { maxSegments: number; maxBytes: number };
}

/**
 * A segment below this size is small: its transfer is mostly fixed costs (a request, the target's flushes around
 * its commit), so the sender runs several at once (backup/sender.ts) and the http target sends them in batches.
 */
export const SMALL_SEGMENT_BYTES = 1024 * 1024;
/** Small segments a worker moves at once as one group: a backup's batch, a restore's group (backup/sender.ts says why). */
export const SMALL_GROUP = 64;
/** Groups of small segments a worker has in flight at once, a backup's and a restore's alike (backup/sender.ts). */
export const GROUPS_PER_WORKER = 2;

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

/** A page of a catalog (`catalogPage`): `onlyConflicts` keeps the segments with a differing replica flagged. */
export interface CatalogQuery {
  limit: number;
  cursor?: string;
  onlyConflicts?: boolean;
}

export interface TargetVerifyOptions {
  signal?: AbortSignal;
  onBytes?(n: number): void;
  /** Called after each segment, bad or not. */
  onSegment?(segmentId: string, problems: VerifyProblem[]): void;
}

/** What a verify found: the same shape as a local store's verify report (verify/store.ts). */
export interface TargetVerifyReport {
  store: string;
  segments: number;
  ok: number;
  bytes: number;
  /** `dir`: where the segment's files are on the target. */
  bad: Array<{ segmentId: string; dir: string; problems: VerifyProblem[] }>;
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
  /**
   * Capability: `put` itself decides, once per segment, whether and where the segment is already held (a set asks
   * each member), records this node as a source where the bytes are identical and sends only where they are missing,
   * taking the digests from `segment.digests`; the sender asks nothing before it (backup/sender.ts).
   */
  readonly putDecidesHeld?: true;
  /** Capability: releases what the target keeps open (idle connections, a client); calls in flight finish. */
  close?(): void;
  /**
   * Capability: the catalog in pages (each segment's digest, sources, size, damage; no file lists), far cheaper
   * than whole manifests for "what do you hold" over thousands of segments (store/held.ts).
   */
  catalogPage?(filter: ListFilter, query: CatalogQuery, opts?: TransferOptions): Promise<Page<StoredSegment>>;
  /**
   * Capability: this process re-reads the target's copies against their manifests where they lie (a bucket, which
   * has no sidecar of its own to verify it).
   */
  verify?(filter: ListFilter, opts?: TargetVerifyOptions): Promise<TargetVerifyReport>;
  /**
   * Capability of a target made of several (a set): it decides itself which segments count as held (only those
   * with all their copies), so the reconcile re-sends a segment short of copies.
   */
  held?(filter: ListFilter, opts?: TransferOptions): Promise<Map<string, StoredSummary>>;
  /**
   * Capability of a set: says where each copy of a segment is; `probe` asks one member whether it answers now,
   * whatever its back-off. One target without them is surveyed with `head` (restore/sources.ts).
   */
  survey?(segmentId: string, opts?: TransferOptions): Promise<CopySurvey>;
  probe?(url: string, opts?: TransferOptions): Promise<boolean>;
  /**
   * Capability of a set: a restore of the segment failed after `read`; the copy read is set aside, and true means
   * another copy can be tried (the restore calls `read` again).
   */
  readFailed?(segmentId: string, e: unknown): boolean;
  /**
   * Capability of a set: before a job, checks its members answer (`all`: every one, else at least one). A target
   * without it is checked with `stats`.
   */
  check?(all: boolean, opts?: TransferOptions): Promise<void>;
  /**
   * Capability: several small segments read in one exchange, in the order asked (a restore's group, restore/install.ts);
   * undefined when this target turns out not to offer it after all. Each reader is consumed before the next.
   */
  readBatch?(segmentIds: readonly string[], opts?: TransferOptions): Promise<AsyncIterable<BatchRead> | undefined>;
  /** Snapshots, retention and prune (issue 21): a target that keeps snapshots beside its segments offers this. */
  readonly snapshots?: SnapshotStore;
}

/** The optional members of `Target`: what a kind may offer. */
export type TargetCapability = 'close' | 'catalogPage' | 'verify' | 'held' | 'survey' | 'probe' | 'readFailed' | 'check' | 'readBatch';

/** True when the target offers the capability; the member is then known to be there. */
export function hasCapability<C extends TargetCapability>(target: Target, c: C): target is Target & Required<Pick<Target, C>> {
  return typeof target[c] === 'function';
}
