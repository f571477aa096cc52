/**
 * What a target offers for snapshots and pruning: the `snapshots` capability of a `Target` (store/target.ts). Every
 * kind implements the same contract (the local store, the http target through a target sidecar's API, S3):
 * - blobs are content-addressed and created only if absent; `putBlob` checks the bytes against their name (a segment
 *   list of 100,000 descriptors comes as a file and is streamed, never read into memory), and
 *   `getBlob` reads at most `maxBytes` and checks them again (a target is hostile: what comes back is input);
 *   `openBlob` streams one, for `listSegments` (check.ts) to check as it reads;
 * - a header is written last (after every blob it names) and never overwritten;
 * - a pin is a small mutable marker apart from the immutable header;
 * - the prune lease is held by the store itself, created with a conditional create, and expires, so a pruner that
 *   died does not block the next;
 * - `removeSegments` removes each segment's manifest before its files, so a half-removed segment is invisible (no
 *   catalog or restore sees it) and its remaining files are removed by the next prune (`orphans`). It takes a batch
 *   so that a bucket removes many with one request per step (DeleteObjects) instead of five per segment.
 * Every id and digest is checked (snapshot/check.ts) before a key or a path is made of it.
 */
import type { StoredSegment } from '../api.js';
import type { SnapshotHeader } from './model.js';
import type { Pin } from './check.js';

export interface Lease {
  owner: string;
  /** ISO 8601 */
  expires: string;
}

/** What the pruner remembers between runs: when each unreferenced segment was last seen referenced. */
export interface PruneMarks {
  /** segment id -> ms of the last time it was seen named by a kept snapshot or held by a node */
  lastReferenced: Record<string, number>;
  /** ms of the run that wrote them */
  at: number;
}

/** What a node reported holding, the last time its reconcile ran. */
export interface Holdings {
  node: string;
  at: string;
  segmentIds: string[];
}

/** What a prune's plan reads of each stored segment. */
export type StoredBrief = Pick<StoredSegment, 'segmentId' | 'dataSource' | 'size' | 'updatedAt'>;

/** A blob's bytes: small ones (the metadata) in memory, a segment list as a file its taker wrote, streamed from there. */
export type BlobBody = Buffer | BlobFile;

export interface BlobFile {
  path: string;
  size: number;
}

/**
 * A holdings report as it is sent: its ids as they come (a node of 100,000 segments never builds the report whole;
 * an iterable read once per target). Stored, it reads back as `Holdings`.
 */
export interface HoldingsReport {
  node: string;
  at: string;
  segmentIds: Iterable<string> | AsyncIterable<string>;
}

export interface SnapshotStore {
  putBlob(sha256: string, data: BlobBody, signal?: AbortSignal): Promise<'stored' | 'present'>;
  hasBlob(sha256: string, signal?: AbortSignal): Promise<boolean>;
  getBlob(sha256: string, maxBytes: number, signal?: AbortSignal): Promise<Buffer>;
  /**
   * A blob's bytes as they are read (a segment list of 100,000 descriptors is never held whole); `not_found` when
   * absent. Unchecked here: `listSegments` (check.ts) checks them line by line and against the blob's name at the end.
   */
  openBlob(sha256: string, signal?: AbortSignal): Promise<AsyncIterable<Uint8Array>>;
  listBlobs(signal?: AbortSignal): Promise<string[]>;
  deleteBlob(sha256: string, signal?: AbortSignal): Promise<void>;
  /** Fails with `conflict` when a header with this id exists. */
  putHeader(header: SnapshotHeader, signal?: AbortSignal): Promise<void>;
  getHeader(id: string, signal?: AbortSignal): Promise<SnapshotHeader | undefined>;
  /** Ids of every snapshot whose header exists, sorted. */
  listSnapshots(signal?: AbortSignal): Promise<string[]>;
  /** Deletes the header (first) and the pin. Blobs go at the next prune, once no header names them. */
  forget(id: string, signal?: AbortSignal): Promise<void>;
  setPin(id: string, pin: Pin | undefined, signal?: AbortSignal): Promise<void>;
  getPin(id: string, signal?: AbortSignal): Promise<Pin | undefined>;
  listPins(signal?: AbortSignal): Promise<string[]>;
  /**
   * Takes the prune lease for `ttlMs` (or renews it when `owner` holds it); false when another live owner holds it.
   * `deadOwner`: a live lease held by exactly that owner is taken over as if expired (its process is known dead).
   */
  acquireLease(owner: string, ttlMs: number, signal?: AbortSignal, deadOwner?: string): Promise<boolean>;
  releaseLease(owner: string, signal?: AbortSignal): Promise<void>;
  readLease(signal?: AbortSignal): Promise<Lease | undefined>;
  /**
   * The marker of a snapshot being written, from before its taker reads the catalogs until its header is written:
   * a prune that sees a live one sweeps no segment (docs/retention.md, the safety argument).
   */
  putWriting(id: string, expires: string, signal?: AbortSignal): Promise<void>;
  deleteWriting(id: string, signal?: AbortSignal): Promise<void>;
  /** Live markers (an expired one is its taker's, dead: ignored). */
  listWriting(signal?: AbortSignal): Promise<Array<{ id: string; expires: string }>>;
  readMarks(signal?: AbortSignal): Promise<PruneMarks | undefined>;
  writeMarks(marks: PruneMarks, signal?: AbortSignal): Promise<void>;
  /**
   * Replaces the node's report, streamed from its ids (records.ts `holdingsChunks` checks each, and the size): a
   * report that fails part-way leaves the previous one as it was.
   */
  putHoldings(h: HoldingsReport, signal?: AbortSignal): Promise<void>;
  listHoldings(signal?: AbortSignal): Promise<Holdings[]>;
  /**
   * Every stored segment, as the plan needs it: a local store reads its in-memory catalog (no manifest is read or
   * parsed, so a plan over 100,000 segments makes little garbage), a bucket its catalog's listing. Read once.
   */
  storedSegments(signal?: AbortSignal): AsyncIterable<StoredBrief>;
  /** Removes stored segments, each one's manifest before its files; on a failure, some may be removed and some not. */
  removeSegments(segmentIds: readonly string[], signal?: AbortSignal): Promise<void>;
  /** Segments whose files are stored without a manifest (a prune killed part-way): removed by the next prune. */
  orphans(signal?: AbortSignal): Promise<string[]>;
  removeOrphan(name: string, signal?: AbortSignal): Promise<void>;
}
