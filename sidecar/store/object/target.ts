/**
 * A bucket or a container as a target, spoken to directly by the source sidecar (no target sidecar), written once
 * against the object-store primitives (store.ts) for every service (S3, Azure Blob Storage). The store format is the
 * local store's, as objects (layout.ts): per segment its files and a manifest, the manifest written last and only
 * when absent (`If-None-Match: *`), so a segment is in the bucket only once all its files are, and two nodes sending
 * the same segment cannot overwrite each other: each uploads under its own node name, the first manifest wins, and
 * the loser's copy becomes a source (same bytes) or a flagged conflict (different bytes) and is deleted.
 *
 * Later changes to a manifest (another source, a conflict) are read-modify-writes with `If-Match`, retried when
 * another writer came first. A segment whose manifest is already there costs one GET and no upload. Every file read
 * back is checked against the manifest's size and sha256 as it streams.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Page, StoredSegment } from '../../api.js';
import { parseManifest } from '../../archive/format.js';
import { segmentIdOfDescriptor } from '../../druid/descriptor.js';
import { compileSelector } from '../../druid/selector.js';
import { parseSegmentId } from '../../druid/segmentId.js';
import { BackupError, isBackupError, messageOf } from '../../errors.js';
import { ANSWER_LIMITS, PageGuard } from '../../util/limitedRead.js';
import type { Manifest, SegmentFileInfo } from '../manifest.js';
import { catalogEntry, hashOutgoing, newManifest, nodeNameProblem, segmentDigest, segmentFileNameProblem } from '../manifest.js';
import { catalogPageOf, checkSource, recordReplica, storedSummary } from '../replicas.js';
import type {
  CatalogQuery,
  IncomingFile,
  ListFilter,
  OutgoingSegment,
  PutOutcome,
  PutResult,
  SegmentReader,
  StoredSummary,
  StoreStats,
  Target,
  TargetVerifyOptions,
  TargetVerifyReport,
  TransferOptions,
} from '../target.js';
import type { KnownManifest } from './catalog.js';
import { ObjectCatalog } from './catalog.js';
import { ObjectLayout } from './layout.js';
import type { ObjectStore } from './store.js';
import { verifyObjects } from './verify.js';

/** Bucket capacity is not something S3 or Azure reports: `freeBytes` says "no limit known". */
export const UNBOUNDED_BYTES = Number.MAX_SAFE_INTEGER;

/** How long the pages after a catalog's first page reuse its listing. */
const CATALOG_REUSE_MS = 60_000;

/**
 * An object's bytes as they arrive, checked against the manifest as they pass: too many bytes fail at once, and a
 * wrong size or sha256 fails the stream before its last piece, so a restore never installs a damaged file. The pieces
 * are handed on as the socket delivers them (the writer batches them into one writev each, without a copy).
 */
async function* verifiedChunks(body: AsyncIterable<Uint8Array>, want: SegmentFileInfo, where: string, noun: string): AsyncGenerator<Buffer> {
  const hash = createHash('sha256');
  let seen = 0;
  let last: Buffer | undefined;
  for await (const c of body) {
    const chunk = Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
    seen += chunk.length;
    if (seen > want.size) throw new BackupError('digest_mismatch', `${where}: ${want.name} is longer than the ${want.size} bytes of the manifest; run verify`);
    hash.update(chunk);
    // One piece is held back, so that the last one is handed on only once the whole object is checked.
    if (last) yield last;
    last = chunk;
  }
  if (seen !== want.size)
    throw new BackupError('digest_mismatch', `${where}: ${want.name} has ${seen} bytes in the ${noun}, the manifest ${want.size}; run verify`);
  const got = hash.digest('hex');
  if (got !== want.sha256) throw new BackupError('digest_mismatch', `${where}: ${want.name} has sha256 ${got}, the manifest ${want.sha256}; run verify`);
  if (last) yield last;
}

export interface ObjectTargetOptions {
  /** The canonical target URL. */
  url: string;
  /** Empty, or path segments each followed by `/`. */
  prefix: string;
  store: ObjectStore;
  log: Logger;
}

export class ObjectTarget implements Target {
  readonly url: string;
  readonly layout: ObjectLayout;
  readonly store: ObjectStore;
  readonly catalog: ObjectCatalog;
  protected readonly log: Logger;
  private lastCatalog?: { key: string; at: number; items: StoredSegment[] };

  constructor(o: ObjectTargetOptions) {
    this.url = o.url;
    this.store = o.store;
    this.layout = new ObjectLayout(o.prefix);
    this.log = o.log.child({ target: this.url });
    this.catalog = new ObjectCatalog({
      store: this.store,
      layout: this.layout,
      log: this.log,
      call: (action, signal, fn) => this.call(action, signal, fn),
      getManifest: (id, signal) => this.getManifest(id, signal),
    });
  }

  /** Runs one call of the store; a failure becomes one clear BackupError naming the service's error code. */
  async call<T>(action: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw this.store.error(e, action, signal);
    }
  }

  /** Work a kind does before its first upload (S3 aborts this node's stale multipart uploads). */
  protected beforePut(_signal?: AbortSignal): Promise<void> {
    return Promise.resolve();
  }

  private where(segmentId: string): string {
    return `segment ${segmentId} in ${this.url}`;
  }

  /** Reads a manifest; undefined when the bucket has none for the id, a clear error when it does not parse. */
  async getManifest(segmentId: string, signal?: AbortSignal): Promise<KnownManifest | undefined> {
    const key = this.layout.manifestKey(segmentId);
    const got = await this.call(`reading the manifest of ${segmentId}`, signal, () =>
      this.store.read(key, ANSWER_LIMITS.manifest, `the manifest of ${this.where(segmentId)} (${this.store.name}/${key})`, { signal }),
    );
    if (!got || got === 'unchanged') return undefined;
    try {
      const manifest = parseManifest(JSON.parse(got.body.toString('utf8')), segmentId);
      if (manifest.sources.length === 0) throw new Error('it names no source, so its files cannot be found');
      return { etag: got.etag, manifest };
    } catch (e) {
      throw new BackupError(
        isBackupError(e) && e.code === 'bad_segment_id' ? 'bad_segment_id' : 'target_error',
        `the manifest of ${this.where(segmentId)} (${this.store.name}/${key}) is damaged: ${messageOf(e)}; run verify, and delete that object to back the segment up again`,
      );
    }
  }

  /** Where the files of a stored segment are: under the node that wrote its manifest. */
  dataPrefixOf(m: Manifest): string {
    return this.layout.dataPrefix(m.segmentId, m.sources[0]!.node);
  }

  // ---- Target ----

  async head(segmentId: string, opts: TransferOptions = {}): Promise<StoredSummary | undefined> {
    const k = await this.getManifest(parseSegmentId(segmentId).id, opts.signal);
    return k ? storedSummary(catalogEntry(k.manifest)) : undefined;
  }

  async manifest(segmentId: string, opts: TransferOptions = {}): Promise<Manifest | undefined> {
    return (await this.getManifest(parseSegmentId(segmentId).id, opts.signal))?.manifest;
  }

  async put(segment: OutgoingSegment, opts: TransferOptions = {}): Promise<PutResult> {
    const seg = parseSegmentId(segment.segmentId);
    const parts = segment.descriptor ? segmentIdOfDescriptor(segment.descriptor) : seg;
    if (parts.id !== seg.id) throw new BackupError('bad_request', `the descriptor describes segment ${parts.id}, not ${seg.id}`);
    const problem = nodeNameProblem(segment.node);
    if (problem) throw new BackupError('bad_request', problem);
    const names = new Set<string>();
    for (const f of segment.files) {
      const p = segmentFileNameProblem(f.name);
      if (p) throw new BackupError('bad_request', `segment ${seg.id}: ${p}`);
      if (names.has(f.name)) throw new BackupError('bad_request', `segment ${seg.id}: file ${f.name} is listed twice`);
      names.add(f.name);
    }
    await this.beforePut(opts.signal);

    const existing = await this.getManifest(seg.id, opts.signal);
    if (existing && opts.replace) return this.replaceCopy(segment, existing.manifest, opts);
    if (existing) return this.recordCopy(segment, existing, opts);

    const node = segment.node;
    const dataPrefix = this.layout.dataPrefix(seg.id, node);
    // Nothing refers to this node's copy while there is no manifest: whatever an earlier attempt left goes.
    await this.clearCopy(dataPrefix, opts.signal);
    const files: SegmentFileInfo[] = [];
    let manifestSent = false;
    try {
      for (const f of segment.files) {
        const key = `${dataPrefix}${f.name}`;
        files.push(await this.call(`uploading ${key}`, opts.signal, () => this.store.upload(key, f, { signal: opts.signal, onBytes: opts.onBytes })));
      }
      const manifest = newManifest(seg.id, parts, segment.descriptor, files, node);
      const { size: bytes, digest } = manifest;
      const key = this.layout.manifestKey(seg.id);
      if (opts.signal?.aborted) throw new BackupError('cancelled', `backup of ${seg.id} cancelled`);
      manifestSent = true;
      const res = await this.store.write(key, JSON.stringify(manifest, null, 2), { contentType: 'application/json', ifAbsent: true, signal: opts.signal });
      if (res !== 'precondition-failed') {
        this.catalog.remember(key, { etag: res.etag, manifest });
        this.log.info({ segmentId: seg.id, node, bytes, files: files.length }, 'segment stored');
        return { outcome: 'stored', files, digest, bytes };
      }
      // A manifest appeared while the files went up: another node's (or ours, when a retry followed a lost answer).
      const winner = await this.getManifest(seg.id, opts.signal);
      if (!winner) throw new BackupError('target_error', `${this.where(seg.id)}: the manifest was refused as existing, but cannot be read`);
      if (winner.manifest.sources[0]!.node === node && winner.manifest.digest === digest) return { outcome: 'stored', files, digest, bytes };
      await this.clearCopy(dataPrefix, opts.signal);
      const outcome = await this.recordReplica(seg.id, node, digest, opts.signal);
      return { outcome, files, digest, bytes };
    } catch (e) {
      const err = this.store.error(e, `backing up ${seg.id}`, opts.signal);
      // Files without a manifest are no backup; but when the manifest may have been written, its files stay.
      if (!manifestSent)
        await this.clearCopy(dataPrefix).catch((c) =>
          this.log.warn({ prefix: dataPrefix, err: messageOf(c) }, 'files of a failed upload left behind; the next attempt removes them'),
        );
      throw err;
    }
  }

  /**
   * A repair: the stored copy is damaged. The files are hashed first and must be exactly the manifest's; only then
   * is each uploaded over the object the manifest points at (an overwrite with the same bytes, whoever else repairs
   * it at once). The manifest is not touched.
   */
  private async replaceCopy(segment: OutgoingSegment, manifest: Manifest, opts: TransferOptions): Promise<PutResult> {
    const want = new Map(manifest.files.map((f) => [f.name, f]));
    const hashed = await hashOutgoing(segment, opts.signal);
    if (hashed.length !== want.size || hashed.some((f) => want.get(f.name)?.sha256 !== f.sha256 || want.get(f.name)?.size !== f.size))
      throw new BackupError(
        'conflict',
        `the manifest of ${this.where(segment.segmentId)} has digest ${manifest.digest}; a replacement must be those bytes, and these are not; nothing was replaced`,
      );
    const prefix = this.dataPrefixOf(manifest);
    const files: SegmentFileInfo[] = [];
    for (const f of segment.files) {
      const key = `${prefix}${f.name}`;
      files.push(await this.call(`replacing ${key}`, opts.signal, () => this.store.upload(key, f, { signal: opts.signal, onBytes: opts.onBytes })));
    }
    const digest = segmentDigest(files);
    const bytes = files.reduce((n, f) => n + f.size, 0);
    this.log.warn({ segmentId: segment.segmentId, node: segment.node, bytes, files: files.length }, 'damaged copy replaced with the bytes of its manifest');
    return { outcome: 'stored', files, digest, bytes };
  }

  /** The bucket holds the segment already: compare digests (reading the local files, sending none) and record. */
  private async recordCopy(segment: OutgoingSegment, existing: KnownManifest, opts: TransferOptions): Promise<PutResult> {
    const files = await hashOutgoing(segment, opts.signal);
    const digest = segmentDigest(files);
    const outcome =
      existing.manifest.digest === digest && existing.manifest.sources.some((s) => s.node === segment.node)
        ? 'identical'
        : await this.recordReplica(segment.segmentId, segment.node, digest, opts.signal);
    return { outcome, files, digest, bytes: 0 };
  }

  /** Records another node's copy (replicas.ts): the manifest rewritten only if no other writer changed it since it was read. */
  private async recordReplica(segmentId: string, node: string, digest: string, signal?: AbortSignal): Promise<PutOutcome> {
    const key = this.layout.manifestKey(segmentId);
    const slot = {
      load: async () => {
        const k = await this.getManifest(segmentId, signal);
        if (!k) throw new BackupError('not_found', `${this.url} holds no segment ${segmentId}`);
        return { manifest: k.manifest, version: k.etag };
      },
      save: async (manifest: Manifest, etag: string) => {
        const res = await this.call(`updating the manifest of ${segmentId}`, signal, () =>
          this.store.write(key, JSON.stringify(manifest, null, 2), { contentType: 'application/json', ifMatch: etag, signal }),
        );
        if (res === 'precondition-failed') return false;
        this.catalog.remember(key, { etag: res.etag, manifest });
        return true;
      },
    };
    return (await recordReplica(slot, { segmentId, node, digest, log: this.log, where: this.where(segmentId) })).outcome;
  }

  async addSource(segmentId: string, node: string, digest: string, opts: TransferOptions = {}): Promise<PutOutcome> {
    checkSource(node, digest);
    return this.recordReplica(parseSegmentId(segmentId).id, node, digest, opts.signal);
  }

  async read(segmentId: string, opts: TransferOptions = {}): Promise<SegmentReader> {
    const id = parseSegmentId(segmentId).id;
    const k = await this.getManifest(id, opts.signal);
    if (!k) throw new BackupError('not_found', `${this.url} holds no segment ${id}`);
    const manifest = k.manifest;
    const prefix = this.dataPrefixOf(manifest);
    const where = this.where(id);
    const open = async (want: SegmentFileInfo): Promise<IncomingFile> => {
      const { name, size } = want;
      const key = `${prefix}${name}`;
      const got = await this.call(`reading ${this.store.name}/${key}`, opts.signal, () => this.store.open(key, opts.signal));
      if (!got)
        throw new BackupError(
          'digest_mismatch',
          `${where}: ${name} is missing from the ${this.store.noun} (${this.store.missingCode} at ${this.store.name}/${key}); run verify`,
        );
      if (got.size !== undefined && got.size !== size) {
        got.cancel();
        throw new BackupError('digest_mismatch', `${where}: ${name} has ${got.size} bytes in the ${this.store.noun}, the manifest ${size}; run verify`);
      }
      return { name, size, chunks: verifiedChunks(got.body, want, where, this.store.noun) };
    };
    async function* files(): AsyncGenerator<IncomingFile> {
      for (const f of manifest.files) yield await open(f);
    }
    return { manifest, files: files(), verified: true };
  }

  list(filter: ListFilter = {}, opts: TransferOptions = {}): AsyncIterable<Manifest> {
    return this.catalog.list(compileSelector(filter), opts.signal);
  }

  async stats(opts: TransferOptions = {}): Promise<StoreStats> {
    let segments = 0;
    let bytes = 0;
    for await (const m of this.list({}, opts)) {
      segments++;
      bytes += m.size;
    }
    return { segments, bytes, freeBytes: UNBOUNDED_BYTES };
  }

  /**
   * One page of the catalog (`GET /data/v1/store/segments?target=s3://…`, or azure://…), the shape a target sidecar answers with.
   * A first page lists the bucket; the pages that follow it within CATALOG_REUSE_MS page through that same listing,
   * so walking 10,000 segments in pages of 1,000 costs one listing, not ten.
   */
  async catalogPage(filter: ListFilter, query: CatalogQuery, opts: TransferOptions = {}): Promise<Page<StoredSegment>> {
    const key = JSON.stringify([filter.dataSource, filter.interval, filter.segmentIds]);
    const kept = this.lastCatalog;
    let items: StoredSegment[];
    if (query.cursor !== undefined && kept?.key === key && Date.now() - kept.at < CATALOG_REUSE_MS) items = kept.items;
    else {
      items = [];
      for await (const m of this.list(filter, opts)) items.push(catalogEntry(m));
      items.sort((a, b) => (a.segmentId < b.segmentId ? -1 : a.segmentId > b.segmentId ? 1 : 0));
      this.lastCatalog = { key, at: Date.now(), items };
    }
    return catalogPageOf(items, (x) => x, query);
  }

  /** Re-reads every selected segment's objects against its manifest (verify.ts). */
  verify(filter: ListFilter = {}, opts: TargetVerifyOptions = {}): Promise<TargetVerifyReport> {
    return verifyObjects(this, compileSelector(filter), opts);
  }

  /** Removes a node's copy of one segment: its uploads in progress and its objects. */
  async clearCopy(prefix: string, signal?: AbortSignal): Promise<void> {
    if (this.store.abortUploads) await this.call(`aborting uploads under ${this.store.name}/${prefix}`, signal, () => this.store.abortUploads!(prefix, signal));
    await this.deletePrefix(prefix, signal);
  }

  /** Deletes every object under a prefix (a node's copy of one segment: a handful of keys). */
  async deletePrefix(prefix: string, signal?: AbortSignal): Promise<void> {
    await this.call(`removing ${this.store.name}/${prefix}`, signal, async () => {
      let token: string | undefined;
      const guard = new PageGuard(`the listing of ${this.store.name}/${prefix}`);
      do {
        const page = await this.store.list(prefix, { token, signal });
        const keys = page.objects.map((o) => o.key).filter((k) => k.startsWith(prefix));
        if (keys.length) await this.store.remove(keys, signal);
        token = page.next;
        if (token) guard.next(token);
      } while (token);
    });
  }

  /** Closes idle connections now and busy ones when their call ends, so a job still reading this store finishes. */
  close(): void {
    this.store.close();
  }
}
