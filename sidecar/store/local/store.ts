/**
 * The local-disk store, the embedded default target: one directory per segment holding its files as plain files
 * and `manifest.json` (layout.ts), so an operator can restore by hand with `cp` if this tool is gone.
 *
 * Receiving (`receive`, behind `PUT /data/v1/store/segments/{id}`): the tar stream is read by the strict reader
 * (archive/unpack.ts) into `{store}/.tmp/put-*`, each file fsynced as it completes; only when every digest matched
 * the sender's trailer is `manifest.json` written, the directory fsynced and renamed into place, and its parent
 * fsynced. A reader never sees half a segment, and a crash leaves only `.tmp/`, which is emptied at start. A batch of
 * small segments (`receiveBatch`) is written without per-file fsyncs and flushed by one syncfs of the store's
 * filesystem before its renames and one after (`commitLocked`, util/syncfs.ts), under the same rule.
 *
 * Druid replicates a segment on several Historicals: the first copy is stored, a later identical copy only adds
 * its node to `sources`, and a copy whose bytes differ is recorded in `conflicts` and never stored over the first.
 *
 * Repair: a copy the store's verify found damaged is marked so (`{store}/damaged.json`), answered as damaged by
 * `head` and the catalog, and not served; an upload with `replace` whose bytes are the manifest's (same digest)
 * puts its files over the damaged ones, one rename each, and clears the mark. Any other upload of a held segment
 * stays "already held". Two nodes repairing at once write the same bytes.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { mkdtemp, open, readdir, rename, rm, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import type { Logger } from 'pino';
import type { Page, StoredSegment } from '../../api.js';
import { packSegment, packStored } from '../../archive/pack.js';
import type { PackedSegment } from '../../archive/pack.js';
import { parseManifest } from '../../archive/format.js';
import { UploadReader } from '../../archive/unpack.js';
import { segmentIdOfDescriptor } from '../../druid/descriptor.js';
import { ownPath, quoteId, storeSegmentPath } from '../../druid/paths.js';
import { parseSegmentId } from '../../druid/segmentId.js';
import type { SegmentId } from '../../druid/segmentId.js';
import type { Selector } from '../../druid/selector.js';
import { compileSelector, selects } from '../../druid/selector.js';
import { BackupError, isBackupError, messageOf } from '../../errors.js';
import type { BatchOutcome } from '../http/batch.js';
import { BatchBodyReader } from '../http/batch.js';
import type { EventBus } from '../../services/events.js';
import type { Metrics } from '../../services/metrics.js';
import { pageSorted } from '../../services/paging.js';
import { readSmallFile, readStream, SMALL_READ_BYTES } from '../../util/readStream.js';
import { fsyncDirAsync, writeFileAtomicAsync } from '../../util/atomic.js';
import { gathered, writeAtOnce, writeChunks } from '../../util/fileWriter.js';
import { FilesystemSync } from '../../util/syncfs.js';
import type { Manifest, SegmentFileInfo } from '../manifest.js';
import { MANIFEST_NAME, catalogEntry, newManifest, nodeNameProblem, segmentDigest } from '../manifest.js';
import { catalogPageOf, checkSource, recordReplica, storedSummary } from '../replicas.js';
import type {
  IncomingFile,
  CatalogQuery,
  ListFilter,
  OutgoingSegment,
  PutOutcome,
  PutResult,
  SegmentReader,
  StoredSummary,
  StoreStats,
  Target,
  TransferOptions,
} from '../target.js';
import { SEGMENTS_DIR, TMP_DIR, segmentPath } from './layout.js';
import { LocalSnapshots } from './snapshots.js';
import { inside } from '../../druid/paths.js';

/** The store's marks of damaged copies, by segment id: what its verify found wrong. */
const DAMAGED_FILE = 'damaged.json';

/** Largest segment accepted; free space is checked too. Druid segments are typically 300-700 MB. */
export const MAX_SEGMENT_BYTES = 1024 ** 4;
/** Kept free on the store's filesystem: an upload that would leave less is refused with `no_space`. */
export const RESERVE_BYTES = 64 * 1024 * 1024;
/** Files smaller than this are fsynced while the next one is received; larger ones before. */
const SYNC_INLINE_FROM = 8 * 1024 * 1024;
/** Largest file of a batch written by direct calls once received (`writeAtOnce`): the event loop waits for one such write at most, the bound the source's reads of small files keep. */
const WRITE_AT_ONCE_UP_TO = SMALL_READ_BYTES;
/** Files of one upload being fsynced at once. */
const MAX_PENDING_SYNCS = 16;

export interface LocalStoreOptions {
  log: Logger;
  metrics?: Metrics;
  events?: EventBus;
  maxSegmentBytes?: number;
  /** Most bytes of segment files the store may hold (druid.backup.storeQuota); a source sees it in the stats and chooses another target. */
  quotaBytes?: number;
  /**
   * How a batch of small segments is made durable (druid.backup.storeFlush): `filesystem`, one flush of the store's
   * filesystem before the batch's renames and one after (util/syncfs.ts), where this system can; `files`, each file
   * and directory fsynced, as a single upload always is. Default `filesystem`.
   */
  flush?: 'filesystem' | 'files';
}

export interface ReceiveResult {
  outcome: PutOutcome;
  manifest: Manifest;
  /** Bytes of segment files received. */
  bytes: number;
  files: SegmentFileInfo[];
}

/** A received segment, verified and staged in its temporary directory, waiting to be committed. */
export interface StagedSegment {
  tmp: string;
  /** Settles once every received file is flushed. */
  filesDurable: Promise<unknown>;
  seg: SegmentId;
  descriptor: Manifest['descriptor'];
  files: SegmentFileInfo[];
  node: string;
  replace: boolean;
  /** The files are written, not flushed: the batch's commit flushes the whole filesystem once for all (util/syncfs.ts). */
  flushLater: boolean;
}

/** A staged member of a batch and how to settle its `receive`. */
interface BatchMember {
  staged: StagedSegment;
  resolve(r: ReceiveResult): void;
  reject(e: unknown): void;
}

/** A new segment whose manifest is written and whose flushes are under way; the rename makes it visible. */
interface PendingCommit {
  tmp: string;
  final: string;
  parent: string;
  manifest: Manifest;
  bytes: number;
  files: SegmentFileInfo[];
  node: string;
  flushes: Array<Promise<unknown>>;
  close(): Promise<void>;
}

/** Waits for a pending commit's flushes (every one settled, even when one fails) and closes its manifest. */
async function flushed(p: PendingCommit): Promise<void> {
  try {
    await Promise.all(p.flushes);
  } finally {
    await Promise.allSettled(p.flushes);
    await p.close();
  }
}

/**
 * A stored segment in the catalog held in memory: its directory is derived from its id when needed (the one path
 * rule), and the strings many segments share (data source, version, node lists) are one copy each (`share`), so
 * an entry costs about 710 bytes where it cost about 990 (measured at 20,000 segments of bigStore.ts).
 */
interface IndexEntry {
  startMs: number;
  endMs: number;
  summary: StoredSegment;
}

/** Re-exported for sidecar/snapshot/records.ts, which still imports it from here (store/manifest.ts is its place). */
export { nodeNameProblem } from '../manifest.js';

/** `top` and each directory below it down to `bottom` (`top` is `bottom` or one of its ancestors). */
function dirsDownTo(top: string, bottom: string): string[] {
  const out: string[] = [];
  for (let d = bottom; ; d = path.dirname(d)) {
    out.push(d);
    if (d === top || d === path.dirname(d)) return out;
  }
}

/** Writes a received file; a large one is flushed before the next one arrives (`writeChunks` returns at once). */
async function writeReceived(file: string, size: number, chunks: AsyncIterable<Buffer[]>, flush: boolean): Promise<{ durable: Promise<void> }> {
  if (!flush && size <= WRITE_AT_ONCE_UP_TO) {
    writeAtOnce(file, await gathered(chunks));
    return { durable: Promise.resolve() };
  }
  const written = await writeChunks(file, chunks, { flush });
  if (!flush) return written;
  // Measured: overlapping a large file's writeback with the next file's writes slows the disk down, where small
  // files gain by sharing journal commits.
  if (size >= SYNC_INLINE_FROM) await written.durable;
  return written;
}

export class LocalStore implements Target {
  readonly url: string;
  private readonly index = new Map<string, IndexEntry>();
  private sortedIds?: string[];
  private readonly locks = new Map<string, Promise<unknown>>();
  /** One copy of each data source, version and node list the catalog holds (`share`). */
  private readonly shared = new Map<string, string | string[]>();
  private totalBytes = 0;
  /** Bytes declared by uploads still arriving: counted as stored until they end, so uploads at once cannot each see the same room. */
  private arrivingBytes = 0;
  /** Copies the store's verify found damaged, by segment id, with what is wrong. */
  private readonly damaged = new Map<string, string>();
  /** Problems found while loading (unreadable manifests, misplaced directories), for the log and verify. */
  readonly issues: Array<{ path: string; problem: string }> = [];
  /** Snapshots kept beside the segments, and what prune needs (store/local/snapshots.ts). */
  readonly snapshots: LocalSnapshots;
  /** The flusher of the store's filesystem for batches, when this system has one and the store uses it. */
  private fsSync?: FilesystemSync;

  private constructor(
    readonly root: string,
    private readonly opts: LocalStoreOptions,
  ) {
    this.url = pathToFileURL(root).toString();
    this.snapshots = new LocalSnapshots(root, {
      summaries: () => this.summaries(),
      removeSegment: (id) => this.remove(id),
      orphans: () => this.orphanDirs(),
      removeOrphan: (name) => this.removeOrphanDir(name),
    });
  }

  /** Opens (creating if needed) the store at `root`, empties its temporary area and loads the catalog. */
  static open(root: string, opts: LocalStoreOptions): LocalStore {
    const abs = path.resolve(root);
    mkdirSync(path.join(abs, SEGMENTS_DIR), { recursive: true });
    const tmp = path.join(abs, TMP_DIR);
    // Left by uploads cut off by a crash or a kill: never part of the store.
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    const store = new LocalStore(abs, opts);
    if ((opts.flush ?? 'filesystem') === 'filesystem') {
      const probed = FilesystemSync.probe(abs);
      if (probed instanceof FilesystemSync) store.fsSync = probed;
      else opts.log.warn({ store: abs, why: probed.unavailable }, 'this system cannot flush a whole filesystem; batches are flushed file by file');
    }
    store.load();
    return store;
  }

  private load(): void {
    const t0 = performance.now();
    const segmentsDir = path.join(this.root, SEGMENTS_DIR);
    for (const ds of readdirSync(segmentsDir, { withFileTypes: true })) {
      if (!ds.isDirectory()) continue;
      const dsDir = path.join(segmentsDir, ds.name);
      for (const e of readdirSync(dsDir, { withFileTypes: true })) {
        if (!e.isDirectory() || e.name.startsWith('.')) continue;
        const dir = path.join(dsDir, e.name);
        try {
          const m = parseManifest(JSON.parse(readFileSync(path.join(dir, MANIFEST_NAME), 'utf8')));
          const belongs = this.segmentDir(m.descriptor ? segmentIdOfDescriptor(m.descriptor) : parseSegmentId(m.segmentId));
          if (belongs !== dir) throw new Error(`holds segment ${quoteId(m.segmentId)}, which belongs in ${path.relative(this.root, belongs)}`);
          this.addToIndex(m, dir);
        } catch (err) {
          this.issues.push({ path: dir, problem: messageOf(err) });
        }
      }
    }
    for (const i of this.issues) this.opts.log.warn(i, 'store directory skipped');
    this.loadDamaged();
    this.opts.log.info({ store: this.root, segments: this.index.size, bytes: this.totalBytes, ms: Math.round(performance.now() - t0) }, 'store loaded');
    this.updateGauges();
  }

  /** Where a segment lives in this store, through the one rule for paths. */
  private segmentDir(seg: SegmentId): string {
    return storeSegmentPath(this.root, seg, segmentPath(seg.dataSource, seg.id));
  }

  private loadDamaged(): void {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(path.join(this.root, DAMAGED_FILE), 'utf8'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
        this.opts.log.warn({ err: messageOf(e) }, `${DAMAGED_FILE} unreadable; the next verify marks damaged copies again`);
      return;
    }
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return;
    for (const [id, problem] of Object.entries(raw as Record<string, unknown>)) {
      const e = this.index.get(id);
      if (!e || typeof problem !== 'string') continue;
      this.damaged.set(id, problem.slice(0, 1000));
      e.summary.damaged = this.damaged.get(id);
    }
  }

  private async saveDamaged(): Promise<void> {
    await writeFileAtomicAsync(path.join(this.root, DAMAGED_FILE), JSON.stringify(Object.fromEntries(this.damaged)));
  }

  /** What the store's own verify found of a segment: damaged (marked, served as such) or clean (the mark goes). */
  async verified(segmentId: string, problems: string[]): Promise<void> {
    const e = this.entry(segmentId);
    if (!e) return;
    const problem = problems.length ? problems.join('; ').slice(0, 1000) : undefined;
    if (problem === this.damaged.get(segmentId)) return;
    if (problem) this.damaged.set(segmentId, problem);
    else this.damaged.delete(segmentId);
    e.summary.damaged = problem;
    if (!problem) delete e.summary.damaged;
    await this.saveDamaged();
    this.publish(e);
    if (problem) this.opts.log.warn({ segmentId, problem }, 'verify found this copy damaged; marked so until a node replaces it');
  }

  /** The directory of a cataloged segment: the one it was loaded from or committed to, by the same rule. */
  private dirOf(e: IndexEntry): string {
    return path.join(this.root, segmentPath(e.summary.dataSource, e.summary.segmentId));
  }

  /** The one copy of a string (or list of node names) many catalog entries share; never changed once shared. */
  private share<T extends string | string[]>(v: T): T {
    const key = typeof v === 'string' ? `s${v}` : `a${v.join('\n')}`;
    const got = this.shared.get(key);
    if (got !== undefined) return got as T;
    this.shared.set(key, v);
    return v;
  }

  private addToIndex(m: Manifest, dir: string): void {
    const seg = m.descriptor ? segmentIdOfDescriptor(m.descriptor) : parseSegmentId(m.segmentId);
    const summary = catalogEntry(m);
    // The directory is derived again from the entry (dirOf): it must be this one.
    if (path.join(this.root, segmentPath(summary.dataSource, summary.segmentId)) !== dir)
      throw new Error(`holds segment ${quoteId(m.segmentId)} of data source ${quoteId(m.dataSource)}, which belongs elsewhere`);
    const old = this.index.get(m.segmentId);
    if (old) this.totalBytes -= old.summary.size;
    else this.sortedIds = undefined;
    const damaged = this.damaged.get(m.segmentId);
    summary.dataSource = this.share(summary.dataSource);
    summary.version = this.share(summary.version);
    summary.sources = this.share(summary.sources);
    summary.conflicts = this.share(summary.conflicts);
    this.index.set(m.segmentId, { startMs: seg.startMs, endMs: seg.endMs, summary: { ...summary, ...(damaged ? { damaged } : {}) } });
    this.totalBytes += m.size;
  }

  private updateGauges(): void {
    this.opts.metrics?.storeSegments.set(this.index.size);
    this.opts.metrics?.storeBytes.set(this.totalBytes);
  }

  /** Runs `fn` with no other commit of the same segment in flight (two Historicals may send one segment at once). */
  private async withLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(id) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.locks.set(id, tail);
    try {
      return await run;
    } finally {
      if (this.locks.get(id) === tail) this.locks.delete(id);
    }
  }

  private checkSpace(bytes: number): void {
    const max = this.opts.maxSegmentBytes ?? MAX_SEGMENT_BYTES;
    if (bytes > max) throw new BackupError('payload_too_large', `segment of ${bytes} bytes is larger than the store's limit of ${max} bytes`);
    const fs = statfsSync(this.root);
    const free = fs.bavail * fs.bsize - this.arrivingBytes;
    if (free - bytes < RESERVE_BYTES)
      throw new BackupError('no_space', `store ${this.root} has ${free} bytes free; a segment of ${bytes} bytes would leave less than ${RESERVE_BYTES}`);
    const quota = this.opts.quotaBytes;
    if (quota !== undefined && this.totalBytes + this.arrivingBytes + bytes > quota)
      throw new BackupError(
        'no_space',
        `store ${this.root} holds ${this.totalBytes} bytes (${this.arrivingBytes} more arriving) of its quota of ${quota}; a segment of ${bytes} bytes does not fit`,
      );
  }

  private entry(segmentId: string): IndexEntry | undefined {
    return this.index.get(segmentId);
  }

  private readManifest(e: IndexEntry): Manifest {
    return parseManifest(JSON.parse(readFileSync(path.join(this.dirOf(e), MANIFEST_NAME), 'utf8')), e.summary.segmentId);
  }

  private publish(e: IndexEntry): void {
    this.opts.events?.publish({ type: 'stored', segment: { ...e.summary } });
  }

  /**
   * Receives one segment upload (the wire format of store/target.ts) from `node`. Resolves with the outcome once
   * the segment is durable; rejects with `bad_archive`, `digest_mismatch`, `payload_too_large` or `no_space`,
   * leaving the store as it was.
   */
  async receive(
    body: Readable | AsyncIterable<Buffer>,
    o: {
      segmentId: string;
      node: string;
      signal?: AbortSignal;
      leaveBodyOpen?: boolean;
      replace?: boolean;
      /** A batch's member: the staged segment is handed to the batch, which commits it with the others (`receiveBatch`). */
      join?: (staged: StagedSegment) => Promise<ReceiveResult>;
    },
  ): Promise<ReceiveResult> {
    const seg = parseSegmentId(o.segmentId);
    const problem = nodeNameProblem(o.node);
    if (problem) throw new BackupError('bad_request', problem);
    const reader = new UploadReader(body, {
      maxBytes: this.opts.maxSegmentBytes ?? MAX_SEGMENT_BYTES,
      segmentId: seg.id,
      signal: o.signal,
      onBytes: (n) => this.opts.metrics?.storeBytesReceived.inc(n),
    });
    // A batch's member on a store that flushes its filesystem: one flush for the whole batch, in commitBatch, and its
    // small files written by direct calls (writeAtOnce).
    const flushLater = o.join !== undefined && this.fsSync !== undefined;
    const tmpPrefix = ownPath(this.root, path.join(TMP_DIR, 'put-'));
    const tmp = flushLater ? mkdtempSync(tmpPrefix) : await mkdtemp(tmpPrefix);
    const durable: Array<Promise<void>> = [];
    let committed = false;
    let arriving = 0;
    try {
      const decl = await reader.open();
      const declared = decl.files.reduce((n, f) => n + f.size, 0);
      this.checkSpace(declared);
      this.arrivingBytes += declared;
      arriving = declared;
      for await (const f of reader.files()) {
        durable.push((await writeReceived(path.join(tmp, f.name), f.size, f.chunks, !flushLater)).durable);
        // A segment may declare thousands of files: bound the descriptors held open while they flush.
        if (durable.length % MAX_PENDING_SYNCS === 0) await Promise.all(durable.slice(-MAX_PENDING_SYNCS));
      }
      const files = await reader.finish();
      const parts = decl.descriptor ? segmentIdOfDescriptor(decl.descriptor) : seg;
      const filesDurable = Promise.all(durable);
      filesDurable.catch(() => undefined);
      const staged: StagedSegment = { tmp, filesDurable, seg: parts, descriptor: decl.descriptor, files, node: o.node, replace: o.replace === true, flushLater };
      const result = await (o.join ? o.join(staged) : this.withLock(seg.id, () => this.commit(staged)));
      committed = result.outcome === 'stored';
      this.opts.metrics?.storePuts.inc({ outcome: result.outcome });
      return result;
    } catch (e) {
      this.opts.metrics?.storePuts.inc({ outcome: 'rejected' });
      // An HTTP request body is left to the server, which sends the error and then closes the connection: destroying
      // it here would reset the socket before the sender could read why its upload was refused.
      if (!o.leaveBodyOpen) await reader.close().catch(() => undefined);
      // The disk filled up under the upload (another writer, or uploads in flight that each saw room): the sender
      // is told so and tries again later, rather than reading of an internal error.
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC' || code === 'EDQUOT')
        throw new BackupError('no_space', `store ${this.root} ran out of room while receiving ${seg.id} (${code}); nothing was stored`);
      throw e;
    } finally {
      await Promise.allSettled(durable);
      this.arrivingBytes -= arriving;
      if (!committed) await rm(tmp, { recursive: true, force: true });
    }
  }

  private async commit(s: StagedSegment): Promise<ReceiveResult> {
    const p = await this.prepare(s);
    if (!('flushes' in p)) return p;
    await flushed(p);
    await rename(p.tmp, p.final);
    await fsyncDirAsync(p.parent);
    return this.committed(p);
  }

  /**
   * The part of a commit before the flushes: a segment already held is settled here (a replica recorded, a damaged
   * copy replaced); a new one gets its manifest written and every flush it needs before its rename started.
   */
  private async prepare(s: StagedSegment): Promise<ReceiveResult | PendingCommit> {
    const { tmp, filesDurable, seg, files, node } = s;
    const digest = segmentDigest(files);
    const bytes = files.reduce((n, f) => n + f.size, 0);
    const existing = this.entry(seg.id);
    if (existing && s.replace) {
      await filesDurable;
      if (s.flushLater) await this.flushFilesystem('nothing was replaced');
      return this.replaceFiles(existing, tmp, files, node, bytes);
    }
    if (existing) {
      await filesDurable;
      const { outcome, manifest } = await this.recordReplica(existing, node, digest);
      return { outcome, manifest, bytes, files };
    }
    const manifest = newManifest(seg.id, seg, s.descriptor, files, node);
    const final = this.segmentDir(seg);
    const parent = path.dirname(final);
    // Before the rename, in one wait rather than one after another (a small segment's upload is mostly these
    // waits, and flushes in flight together share the filesystem's journal commits): every file, the manifest,
    // the directory holding them, and the entries of the directories made for the segment's parent. Nothing is
    // visible until the rename; a crash before it leaves only `.tmp/`.
    const flushes: Array<Promise<unknown>> = [filesDurable];
    if (s.flushLater) {
      // A batch's: written by direct calls and flushed with the filesystem (writeAtOnce says why).
      writeFileSync(path.join(tmp, MANIFEST_NAME), JSON.stringify(manifest, null, 2), { flag: 'wx', mode: 0o644 });
      mkdirSync(parent, { recursive: true });
      return { tmp, final, parent, manifest, bytes, files, node, flushes, close: async () => undefined };
    }
    const manifestFile = await open(path.join(tmp, MANIFEST_NAME), 'wx', 0o644);
    const pending: PendingCommit = { tmp, final, parent, manifest, bytes, files, node, flushes, close: () => manifestFile.close() };
    try {
      await manifestFile.writeFile(JSON.stringify(manifest, null, 2));
      flushes.push(manifestFile.sync(), fsyncDirAsync(tmp));
      const created = mkdirSync(parent, { recursive: true });
      if (created) for (const dir of dirsDownTo(path.dirname(created), path.dirname(parent))) flushes.push(fsyncDirAsync(dir));
    } catch (e) {
      await flushed(pending).catch(() => undefined);
      throw e;
    }
    return pending;
  }

  /** After the rename and the parent's flush: the segment is in the catalog, announced and logged. */
  private committed(p: PendingCommit): ReceiveResult {
    this.addToIndex(p.manifest, p.final);
    this.updateGauges();
    this.publish(this.index.get(p.manifest.segmentId)!);
    this.opts.log.info({ segmentId: p.manifest.segmentId, node: p.node, bytes: p.bytes, files: p.files.length }, 'segment stored');
    return { outcome: 'stored', manifest: p.manifest, bytes: p.bytes, files: p.files };
  }

  /**
   * Receives a batch of small segments (`POST /data/v1/store/batch`, store/http/batch.ts) from `node`: each is read
   * and checked by `receive`, exactly as a single upload, and staged; once the whole body is read the staged ones
   * are committed together (`commitBatch`). Resolves with each segment's outcome in the header's order; rejects, with
   * nothing of the batch stored, when the framing is broken (the header, or the body cut off or too long).
   */
  async receiveBatch(body: AsyncIterable<Buffer>, o: { node: string; signal?: AbortSignal }): Promise<BatchOutcome[]> {
    const problem = nodeNameProblem(o.node);
    if (problem) throw new BackupError('bad_request', problem);
    const reader = new BatchBodyReader(body);
    const entries = await reader.header();
    const joined: BatchMember[] = [];
    const results: Array<Promise<ReceiveResult>> = [];
    let broken: unknown;
    for (const entry of entries) {
      let staged!: () => void;
      const stagedNow = new Promise<void>((resolve) => (staged = resolve));
      const result = this.receive(reader.part(entry.length), {
        segmentId: entry.segmentId,
        node: o.node,
        signal: o.signal,
        leaveBodyOpen: true,
        join: (s) =>
          new Promise<ReceiveResult>((resolve, reject) => {
            joined.push({ staged: s, resolve, reject });
            staged();
          }),
      });
      results.push(result);
      // The part is read once the segment is staged, or refused (bad bytes in it are skipped to reach the next).
      await Promise.race([stagedNow, result.then(staged, staged)]);
      try {
        await reader.skipPart();
      } catch (e) {
        broken = e;
        break;
      }
    }
    if (broken === undefined) await reader.end().catch((e: unknown) => (broken = e));
    if (broken !== undefined) {
      for (const m of joined) m.reject(broken);
      await Promise.allSettled(results);
      throw broken;
    }
    await this.commitBatch(joined);
    const settled = await Promise.allSettled(results);
    return settled.map((r, i): BatchOutcome => {
      const segmentId = entries[i]!.segmentId;
      if (r.status === 'fulfilled') return { segmentId, outcome: r.value.outcome };
      const e = r.reason as unknown;
      if (isBackupError(e)) return { segmentId, outcome: 'refused', status: e.status, error: { code: e.code, message: e.message } };
      this.opts.log.error({ segmentId, err: messageOf(e) }, 'a segment of a batch failed');
      return { segmentId, outcome: 'refused', status: 500, error: { code: 'internal', message: 'internal error; the target logged it' } };
    });
  }

  /**
   * Commits a batch's staged segments together, under the locks of all their ids (taken in id order, so two batches
   * never wait on each other): the flushes of every new segment (files, manifest, directory, new parents) in one
   * wait, then the renames, then each parent directory flushed once. Each member's outcome or error is its own.
   */
  private async commitBatch(members: BatchMember[]): Promise<void> {
    const ids = members.map((m) => m.staged.seg.id).sort();
    const locked = (i: number): Promise<void> => (i === ids.length ? this.commitLocked(members) : this.withLock(ids[i]!, () => locked(i + 1)));
    await locked(0);
  }

  private async commitLocked(members: BatchMember[]): Promise<void> {
    const pending: Array<{ m: BatchMember; p: PendingCommit }> = [];
    await Promise.all(
      members.map(async (m) => {
        try {
          const p = await this.prepare(m.staged);
          if ('flushes' in p) pending.push({ m, p });
          else m.resolve(p);
        } catch (e) {
          m.reject(e);
        }
      }),
    );
    // A batch written without flushes (flushLater: every member of a batch on a store that flushes its filesystem)
    // waits for one flush of the filesystem before its renames and one after them; otherwise each file was flushed,
    // as a single upload's, and each parent directory is.
    const byFilesystem = pending.some((x) => x.m.staged.flushLater);
    const ownFlushes = pending.map((x) => flushed(x.p));
    for (const f of ownFlushes) f.catch(() => undefined);
    const filesystemFlushed = byFilesystem ? Promise.allSettled(ownFlushes).then(() => this.flushFilesystem('nothing of it was stored')) : undefined;
    filesystemFlushed?.catch(() => undefined);
    const renamed: typeof pending = [];
    await Promise.all(
      pending.map(async (x, i) => {
        try {
          await ownFlushes[i];
          await filesystemFlushed;
          await rename(x.p.tmp, x.p.final);
          renamed.push(x);
        } catch (e) {
          x.m.reject(e);
        }
      }),
    );
    const parents = new Map<string, Promise<void>>();
    const renamesFlushed = byFilesystem && renamed.length ? this.flushFilesystem('it was renamed into place but is not known to be on disk') : undefined;
    for (const { p } of renamed) if (!parents.has(p.parent)) parents.set(p.parent, renamesFlushed ?? fsyncDirAsync(p.parent));
    await Promise.allSettled(parents.values());
    for (const { m, p } of renamed) {
      try {
        await parents.get(p.parent);
        m.resolve(this.committed(p));
      } catch (e) {
        m.reject(e);
      }
    }
  }

  /** One flush of the store's filesystem for a batch; its failure (a write-back error) refuses the batch's segments. */
  private async flushFilesystem(what: string): Promise<void> {
    try {
      await this.fsSync!.flush();
    } catch (e) {
      this.opts.log.error({ store: this.root, err: messageOf(e), batch: what }, 'the store could not flush its disk');
      throw new BackupError('internal', `the store could not flush its disk (${messageOf(e)}); ${what}`);
    }
  }

  /**
   * A repair: the received files (every digest checked against the sender's trailer) go over the stored ones, each
   * by one rename, when they are exactly the manifest's. A crash part-way leaves some files good and the rest as
   * they were: the copy is still damaged, and the next repair finishes it. The manifest is not touched.
   */
  private async replaceFiles(e: IndexEntry, tmp: string, files: SegmentFileInfo[], node: string, bytes: number): Promise<ReceiveResult> {
    const manifest = this.readManifest(e);
    const want = new Map(manifest.files.map((f) => [f.name, f]));
    const same = files.length === want.size && files.every((f) => want.get(f.name)?.sha256 === f.sha256 && want.get(f.name)?.size === f.size);
    if (!same)
      throw new BackupError(
        'conflict',
        `the store's manifest of ${manifest.segmentId} has digest ${manifest.digest}; a replacement must be those bytes, and these are not; nothing was replaced`,
      );
    const dir = this.dirOf(e);
    for (const f of files) await rename(path.join(tmp, f.name), path.join(dir, f.name));
    await fsyncDirAsync(dir);
    await rm(tmp, { recursive: true, force: true });
    if (this.damaged.delete(manifest.segmentId)) await this.saveDamaged();
    delete e.summary.damaged;
    this.publish(e);
    this.opts.log.warn({ segmentId: manifest.segmentId, node, bytes, files: files.length }, 'damaged copy replaced with the bytes of its manifest');
    return { outcome: 'stored', manifest, bytes, files };
  }

  /** Records another node's copy of a stored segment (replicas.ts), under the segment's lock. */
  private recordReplica(e: IndexEntry, node: string, digest: string): Promise<{ outcome: PutOutcome; manifest: Manifest }> {
    const segmentId = e.summary.segmentId;
    return recordReplica(
      {
        load: async () => ({ manifest: this.readManifest(e), version: undefined }),
        save: async (manifest) => {
          const dir = this.dirOf(e);
          await writeFileAtomicAsync(path.join(dir, MANIFEST_NAME), JSON.stringify(manifest, null, 2));
          this.addToIndex(manifest, dir);
          this.publish(this.index.get(segmentId)!);
          return true;
        },
      },
      { segmentId, node, digest, log: this.opts.log, where: `segment ${segmentId} in ${this.root}` },
    );
  }

  // ---- Prune ----

  /**
   * Removes a segment: its manifest first (fsynced), so from then on nothing lists, reads or restores it, then its
   * files and directory. Killed in between, the directory without a manifest is an orphan the next prune removes.
   */
  async remove(segmentId: string): Promise<void> {
    await this.withLock(segmentId, async () => {
      const e = this.entry(segmentId);
      if (!e) return;
      this.index.delete(segmentId);
      this.sortedIds = undefined;
      this.totalBytes -= e.summary.size;
      if (this.damaged.delete(segmentId)) await this.saveDamaged();
      const dir = this.dirOf(e);
      await unlink(path.join(dir, MANIFEST_NAME)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
      await fsyncDirAsync(dir);
      await rm(dir, { recursive: true, force: true });
      await fsyncDirAsync(path.dirname(dir));
      this.updateGauges();
      this.opts.log.info({ segmentId, bytes: e.summary.size }, 'segment pruned');
    });
  }

  /**
   * The catalog's own entries in id order, for a prune's plan: nothing is read or copied. The ids are those sorted
   * when it starts; one removed meanwhile is skipped.
   */
  private *summaries(): Generator<StoredSegment> {
    for (const id of this.ids()) {
      const e = this.index.get(id);
      if (e) yield e.summary;
    }
  }

  /** Segment directories without a manifest (`{dataSource}/{segment}` relative to segments/): a prune cut short. */
  private async orphanDirs(): Promise<string[]> {
    const out: string[] = [];
    const segmentsDir = path.join(this.root, SEGMENTS_DIR);
    for (const ds of await readdir(segmentsDir, { withFileTypes: true })) {
      if (!ds.isDirectory()) continue;
      for (const e of await readdir(path.join(segmentsDir, ds.name), { withFileTypes: true })) {
        if (!e.isDirectory() || e.name.startsWith('.')) continue;
        if (!existsSync(path.join(segmentsDir, ds.name, e.name, MANIFEST_NAME))) out.push(`${ds.name}/${e.name}`);
      }
    }
    return out.sort();
  }

  private async removeOrphanDir(name: string): Promise<void> {
    const [ds = '', seg = '', ...rest] = name.split('/');
    const dir = inside(path.join(this.root, SEGMENTS_DIR), [ds, seg], name);
    if (rest.length || existsSync(path.join(dir, MANIFEST_NAME))) throw new BackupError('conflict', `${quoteId(name)} is not an orphan`);
    await rm(dir, { recursive: true, force: true });
  }

  // ---- Target ----

  async head(segmentId: string): Promise<StoredSummary | undefined> {
    const e = this.entry(segmentId);
    return e ? storedSummary(e.summary) : undefined;
  }

  /** A copy marked damaged is never served as good: reading it fails with what the verify found. */
  private checkNotDamaged(segmentId: string): void {
    const problem = this.damaged.get(segmentId);
    if (problem)
      throw new BackupError('digest_mismatch', `the store's verify found its copy of ${segmentId} damaged (${problem}); it awaits repair from a good copy`);
  }

  async manifest(segmentId: string): Promise<Manifest | undefined> {
    const e = this.entry(segmentId);
    return e ? this.readManifest(e) : undefined;
  }

  async put(segment: OutgoingSegment, opts: TransferOptions = {}): Promise<PutResult> {
    const packed = packSegment(segment, opts);
    const r = await this.receive(packed.stream, { segmentId: segment.segmentId, node: segment.node, signal: opts.signal, replace: opts.replace });
    return { outcome: r.outcome, files: r.files, digest: segmentDigest(r.files), bytes: r.bytes };
  }

  async addSource(segmentId: string, node: string, digest: string): Promise<PutOutcome> {
    checkSource(node, digest);
    return this.withLock(segmentId, async () => {
      const e = this.entry(segmentId);
      if (!e) throw new BackupError('not_found', `the store holds no segment ${segmentId}`);
      return (await this.recordReplica(e, node, digest)).outcome;
    });
  }

  async read(segmentId: string): Promise<SegmentReader> {
    const e = this.entry(segmentId);
    if (!e) throw new BackupError('not_found', `the store holds no segment ${segmentId}`);
    this.checkNotDamaged(segmentId);
    const manifest = this.readManifest(e);
    const dir = this.dirOf(e);
    async function* files(): AsyncGenerator<IncomingFile> {
      for (const f of manifest.files) yield { name: f.name, size: f.size, chunks: readStream(path.join(dir, f.name), f.size) };
    }
    return { manifest, files: files() };
  }

  /** The tar stream of `GET /data/v1/store/segments/{id}`: manifest.json, then the files. */
  async pack(segmentId: string, opts: TransferOptions = {}): Promise<PackedSegment> {
    const e = this.entry(segmentId);
    if (!e) throw new BackupError('not_found', `the store holds no segment ${segmentId}`);
    this.checkNotDamaged(segmentId);
    const manifest = this.readManifest(e);
    const sizes = new Map(manifest.files.map((f) => [f.name, f.size]));
    const dir = this.dirOf(e);
    return packStored(
      manifest,
      (name) => readStream(path.join(dir, name), sizes.get(name) ?? 0),
      opts,
      (name, size) => readSmallFile(path.join(dir, name), size),
    );
  }

  private ids(): string[] {
    if (!this.sortedIds) this.sortedIds = [...this.index.keys()].sort();
    return this.sortedIds;
  }

  private matching(sel: Selector): IndexEntry[] {
    const out: IndexEntry[] = [];
    for (const id of sel.segmentIds && sel.segmentIds.size < this.index.size ? [...sel.segmentIds].sort() : this.ids()) {
      const e = this.index.get(id);
      if (e && selects(sel, { id, dataSource: e.summary.dataSource, startMs: e.startMs, endMs: e.endMs })) out.push(e);
    }
    return out;
  }

  async *list(filter: ListFilter = {}): AsyncGenerator<Manifest> {
    for (const e of this.matching(compileSelector(filter))) {
      if (!this.index.has(e.summary.segmentId)) continue;
      yield this.readManifest(e);
    }
  }

  /** The catalog as a target's page (remoteIndex: a reconcile, a snapshot's completeness), each copy's damaged mark included. */
  async catalogPage(filter: ListFilter, query: CatalogQuery): Promise<Page<StoredSegment>> {
    return this.catalog(compileSelector(filter), query.limit, query.cursor, query.onlyConflicts);
  }

  /** `GET /data/v1/store/segments`: one page of the catalog. */
  catalog(sel: Selector, limit: number, cursor?: string, onlyConflicts = false): Page<StoredSegment> {
    // matching() walks the ids in order, so only the page's summaries are copied.
    return catalogPageOf(this.matching(sel), (e) => e.summary, { limit, cursor, onlyConflicts });
  }

  /** `GET /data/v1/store/manifests`: one page of whole manifests, for clients that plan restores. */
  manifests(sel: Selector, limit: number, cursor?: string): Page<Manifest> {
    return pageSorted(
      this.matching(sel),
      (e) => e.summary.segmentId,
      (e) => this.readManifest(e),
      limit,
      cursor,
    );
  }

  async stats(): Promise<StoreStats> {
    const fs = statfsSync(this.root);
    // What an upload may still take: the disk less the reserve every upload keeps, and no more than the quota leaves.
    let freeBytes = Math.max(0, fs.bavail * fs.bsize - RESERVE_BYTES);
    const quotaBytes = this.opts.quotaBytes;
    if (quotaBytes !== undefined) freeBytes = Math.max(0, Math.min(freeBytes, quotaBytes - this.totalBytes));
    return { segments: this.index.size, bytes: this.totalBytes, freeBytes, ...(quotaBytes !== undefined ? { quotaBytes } : {}) };
  }
}
