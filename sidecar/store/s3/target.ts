/**
 * `s3://bucket/prefix`: a bucket as a target, spoken to directly by the source sidecar (no target sidecar). The
 * store format is the local store's, as objects (layout.ts): per segment its files and a manifest, the manifest
 * written last with `If-None-Match: *`, so a segment is in the bucket only once all its files are, and two nodes
 * sending the same segment cannot overwrite each other: each uploads under its own node name, the first manifest
 * wins, and the loser's copy becomes a source (same bytes) or a flagged conflict (different bytes) and is deleted.
 *
 * Later changes to a manifest (another source, a conflict) are read-modify-writes with `If-Match`, retried when
 * another writer came first. A segment whose manifest is already there costs one GET and no upload.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Page, StoredSegment } from '../../api.js';
import { parseManifest } from '../../archive/format.js';
import { segmentIdOfDescriptor } from '../../druid/descriptor.js';
import { compileSelector } from '../../druid/selector.js';
import { parseSegmentId } from '../../druid/segmentId.js';
import { BackupError, isBackupError, messageOf } from '../../errors.js';
import { ANSWER_LIMITS, PageGuard } from '../../util/limitedRead.js';
import { pageSorted } from '../../services/paging.js';
import { nodeNameProblem } from '../local/store.js';
import type { Manifest, SegmentFileInfo, SourceRecord } from '../manifest.js';
import { catalogEntry, hashOutgoing, newManifest, segmentDigest, segmentFileNameProblem } from '../manifest.js';
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
  TransferOptions,
} from '../target.js';
import type { KnownManifest } from './catalog.js';
import { S3Catalog } from './catalog.js';
import { S3Snapshots } from './snapshots.js';
import type { PartChecksums, S3Settings } from './client.js';
import { checkS3Settings, createS3Client, describeEndpoint, readObjectLimited, s3Agents } from './client.js';
import { retireAgent } from '../../util/agents.js';
import { isNotFound, isPreconditionFailed, s3Error } from './errors.js';
import { S3Layout, encodeName } from './layout.js';
import type { S3Connection } from './sdk.js';
import { loadSdk } from './sdk.js';
import { uploadFile } from './upload.js';
import type { S3Location } from './url.js';
import { parseS3Url } from './url.js';
import type { S3VerifyOptions, S3VerifyReport } from './verify.js';
import { verifyBucket } from './verify.js';

/** Attempts of a manifest read-modify-write against other writers. */
const UPDATE_ATTEMPTS = 8;
/** Largest manifest object read (a descriptor is a few KB; 10,000 file names a few hundred KB). */
/** Bucket capacity is not something S3 reports: `freeBytes` says "no limit known". */
export const UNBOUNDED_BYTES = Number.MAX_SAFE_INTEGER;

export interface S3TargetOptions {
  log: Logger;
  settings?: S3Settings;
  /** This sidecar's node name: whose stale multipart uploads are aborted at start. */
  node?: string;
}

/** How long the pages after a catalog's first page reuse its listing. */
const CATALOG_REUSE_MS = 60_000;

/**
 * An object's bytes as they arrive, checked against the manifest as they pass: too many bytes fail at once, and a
 * wrong size or sha256 fails the stream before its last piece, so a restore never installs a damaged file. The pieces
 * are handed on as the socket delivers them (the writer batches them into one writev each, without a copy).
 */
async function* verifiedChunks(body: AsyncIterable<Uint8Array>, want: SegmentFileInfo, where: string): AsyncGenerator<Buffer> {
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
    throw new BackupError('digest_mismatch', `${where}: ${want.name} has ${seen} bytes in the bucket, the manifest ${want.size}; run verify`);
  const got = hash.digest('hex');
  if (got !== want.sha256) throw new BackupError('digest_mismatch', `${where}: ${want.name} has sha256 ${got}, the manifest ${want.sha256}; run verify`);
  if (last) yield last;
}

export class S3Target implements Target {
  readonly url: string;
  readonly bucket: string;
  readonly layout: S3Layout;
  /** Where requests go, for messages (never with credentials). */
  readonly endpoint: string;
  readonly catalog: S3Catalog;
  private readonly checksums: PartChecksums = new Map();
  private readonly partSize: number;
  private readonly concurrency: number;
  private readonly multipartThreshold: number;
  private readonly log: Logger;
  private readonly startedAt = new Date();
  private cleaned?: Promise<void>;
  private readonly settings: S3Settings;
  private connection?: Promise<S3Connection>;
  private readonly agents = s3Agents();
  private lastCatalog?: { key: string; at: number; items: StoredSegment[] };
  /** Snapshots kept in the bucket beside the segments, and what prune needs (snapshots.ts). */
  readonly snapshots: S3Snapshots = new S3Snapshots(this);

  constructor(
    location: S3Location,
    private readonly opts: S3TargetOptions,
  ) {
    const settings = opts.settings ?? {};
    ({ partSize: this.partSize, concurrency: this.concurrency, multipartThreshold: this.multipartThreshold } = checkS3Settings(settings));
    this.url = location.url;
    this.bucket = location.bucket;
    this.layout = new S3Layout(location.prefix);
    this.endpoint = describeEndpoint(settings);
    this.settings = settings;
    this.log = opts.log.child({ target: this.url });
    this.catalog = new S3Catalog({
      s3: () => this.s3(),
      bucket: this.bucket,
      layout: this.layout,
      log: this.log,
      call: (action, signal, fn) => this.call(action, signal, fn),
      getManifest: (id, signal) => this.getManifest(id, signal),
    });
    // At start, not at the first upload: a node that has nothing new to send cleans up too.
    void this.cleanStaleUploads();
  }

  static open(url: string, opts: S3TargetOptions): S3Target {
    return new S3Target(parseS3Url(url), opts);
  }

  /** The client, made when the bucket is first used (loading the SDK then). */
  s3(): Promise<S3Connection> {
    this.connection ??= loadSdk().then((sdk) => ({ sdk, client: createS3Client(sdk, this.settings, this.checksums, process.env, this.agents) }));
    return this.connection;
  }

  /** Runs one S3 call; a failure becomes one clear BackupError naming the S3 error code. */
  async call<T>(action: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw s3Error(e, { action, bucket: this.bucket, endpoint: this.endpoint, signal });
    }
  }

  private where(segmentId: string): string {
    return `segment ${segmentId} in ${this.url}`;
  }

  /**
   * Once per process: aborts this node's multipart uploads under the prefix that began before it started (left by
   * a crash or a kill). Others' uploads are theirs; a bucket lifecycle rule should expire what nobody finishes.
   */
  private cleanStaleUploads(signal?: AbortSignal): Promise<void> {
    const node = this.opts.node;
    if (!node) return Promise.resolve();
    this.cleaned ??= (async () => {
      const { sdk, client } = await this.s3();
      let keyMarker: string | undefined;
      let uploadIdMarker: string | undefined;
      let aborted = 0;
      const guard = new PageGuard(`the multipart uploads of s3://${this.bucket}`);
      do {
        const page = await client.send(
          new sdk.ListMultipartUploadsCommand({
            Bucket: this.bucket,
            Prefix: this.layout.segmentsPrefix,
            KeyMarker: keyMarker,
            UploadIdMarker: uploadIdMarker,
          }),
          { abortSignal: signal },
        );
        for (const u of page.Uploads ?? []) {
          if (!u.Key || !u.UploadId || !this.isOwnDataKey(u.Key, node)) continue;
          if (u.Initiated && u.Initiated >= this.startedAt) continue;
          await client.send(new sdk.AbortMultipartUploadCommand({ Bucket: this.bucket, Key: u.Key, UploadId: u.UploadId }), { abortSignal: signal });
          aborted++;
        }
        keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
        uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
        if (keyMarker) guard.next(`${keyMarker}\0${uploadIdMarker ?? ''}`);
      } while (keyMarker);
      if (aborted) this.log.info({ aborted }, 'aborted stale multipart uploads left by an earlier run of this node');
    })().catch((e) => {
      // Not fatal: the operation that follows reports the bucket's problem; try again next time.
      this.cleaned = undefined;
      this.log.warn(
        { err: messageOf(s3Error(e, { action: 'listing stale multipart uploads', bucket: this.bucket, endpoint: this.endpoint })) },
        'stale multipart uploads not cleaned',
      );
    });
    return this.cleaned;
  }

  /** `segments/{id}/{node}/{file}` of this node. */
  private isOwnDataKey(key: string, node: string): boolean {
    if (!key.startsWith(this.layout.segmentsPrefix)) return false;
    const rest = key.slice(this.layout.segmentsPrefix.length).split('/');
    return rest.length === 3 && rest[1] === encodeName(node);
  }

  /** Reads a manifest; undefined when the bucket has none for the id, a clear error when it does not parse. */
  async getManifest(segmentId: string, signal?: AbortSignal): Promise<KnownManifest | undefined> {
    const key = this.layout.manifestKey(segmentId);
    const { sdk, client } = await this.s3();
    let text: string;
    let etag: string;
    try {
      const res = await client.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal: signal });
      text = (await readObjectLimited(res, ANSWER_LIMITS.manifest, `the manifest of ${this.where(segmentId)} (s3://${this.bucket}/${key})`)).toString('utf8');
      etag = res.ETag ?? '';
    } catch (e) {
      if (isNotFound(e) && (e as { name?: string }).name !== 'NoSuchBucket') return undefined;
      throw s3Error(e, { action: `reading the manifest of ${segmentId}`, bucket: this.bucket, endpoint: this.endpoint, signal });
    }
    try {
      const manifest = parseManifest(JSON.parse(text), segmentId);
      if (manifest.sources.length === 0) throw new Error('it names no source, so its files cannot be found');
      return { etag, manifest };
    } catch (e) {
      throw new BackupError(
        isBackupError(e) && e.code === 'bad_segment_id' ? 'bad_segment_id' : 'target_error',
        `the manifest of ${this.where(segmentId)} (s3://${this.bucket}/${key}) is damaged: ${messageOf(e)}; run verify, and delete that object to back the segment up again`,
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
    if (!k) return undefined;
    return { digest: k.manifest.digest, sources: [...new Set(k.manifest.sources.map((s) => s.node))], size: k.manifest.size };
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
    await this.cleanStaleUploads(opts.signal);
    const { sdk, client } = await this.s3();

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
        files.push(
          await this.call(`uploading ${key}`, opts.signal, () =>
            uploadFile(f, {
              sdk,
              client,
              checksums: this.checksums,
              bucket: this.bucket,
              key,
              partSize: this.partSize,
              concurrency: this.concurrency,
              multipartThreshold: this.multipartThreshold,
              signal: opts.signal,
              onBytes: opts.onBytes,
            }),
          ),
        );
      }
      const manifest = newManifest(seg.id, parts, segment.descriptor, files, node);
      const { size: bytes, digest } = manifest;
      const key = this.layout.manifestKey(seg.id);
      if (opts.signal?.aborted) throw new BackupError('cancelled', `backup of ${seg.id} cancelled`);
      manifestSent = true;
      try {
        const res = await client.send(
          new sdk.PutObjectCommand({
            Bucket: this.bucket,
            Key: key,
            Body: JSON.stringify(manifest, null, 2),
            ContentType: 'application/json',
            IfNoneMatch: '*',
          }),
          {
            abortSignal: opts.signal,
          },
        );
        this.catalog.remember(key, { etag: res.ETag ?? '', manifest });
        this.log.info({ segmentId: seg.id, node, bytes, files: files.length }, 'segment stored');
        return { outcome: 'stored', files, digest, bytes };
      } catch (e) {
        if (!isPreconditionFailed(e)) throw e;
      }
      // A manifest appeared while the files went up: another node's (or ours, when a retry followed a lost answer).
      const winner = await this.getManifest(seg.id, opts.signal);
      if (!winner) throw new BackupError('target_error', `${this.where(seg.id)}: the manifest was refused as existing, but cannot be read`);
      if (winner.manifest.sources[0]!.node === node && winner.manifest.digest === digest) return { outcome: 'stored', files, digest, bytes };
      await this.clearCopy(dataPrefix, opts.signal);
      const outcome = await this.recordReplica(seg.id, node, digest, opts.signal);
      return { outcome, files, digest, bytes };
    } catch (e) {
      const err = s3Error(e, { action: `backing up ${seg.id}`, bucket: this.bucket, endpoint: this.endpoint, signal: opts.signal });
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
    const { sdk, client } = await this.s3();
    const prefix = this.dataPrefixOf(manifest);
    const files: SegmentFileInfo[] = [];
    for (const f of segment.files) {
      const key = `${prefix}${f.name}`;
      files.push(
        await this.call(`replacing ${key}`, opts.signal, () =>
          uploadFile(f, {
            sdk,
            client,
            checksums: this.checksums,
            bucket: this.bucket,
            key,
            partSize: this.partSize,
            concurrency: this.concurrency,
            multipartThreshold: this.multipartThreshold,
            signal: opts.signal,
            onBytes: opts.onBytes,
          }),
        ),
      );
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

  /** Adds `node` to the manifest's sources (same digest) or conflicts (different digest), unless it is there. */
  private async recordReplica(segmentId: string, node: string, digest: string, signal?: AbortSignal): Promise<PutOutcome> {
    const key = this.layout.manifestKey(segmentId);
    const { sdk, client } = await this.s3();
    for (let attempt = 1; ; attempt++) {
      const k = await this.getManifest(segmentId, signal);
      if (!k) throw new BackupError('not_found', `${this.url} holds no segment ${segmentId}`);
      const m = k.manifest;
      const identical = m.digest === digest;
      const list: SourceRecord[] = identical ? m.sources : m.conflicts;
      if (list.some((s) => s.node === node && s.digest === digest)) return identical ? 'identical' : 'conflict';
      const now = new Date().toISOString();
      list.push({ node, digest, at: now });
      m.updatedAt = now;
      try {
        const res = await client.send(
          new sdk.PutObjectCommand({ Bucket: this.bucket, Key: key, Body: JSON.stringify(m, null, 2), ContentType: 'application/json', IfMatch: k.etag }),
          { abortSignal: signal },
        );
        this.catalog.remember(key, { etag: res.ETag ?? '', manifest: m });
        if (identical) this.log.info({ segmentId, node }, 'replica recorded as another source');
        else this.log.warn({ segmentId, node, digest, stored: m.digest }, 'replica differs from the stored copy; flagged as a conflict, not stored');
        return identical ? 'identical' : 'conflict';
      } catch (e) {
        if (!isPreconditionFailed(e) || attempt >= UPDATE_ATTEMPTS)
          throw s3Error(e, { action: `updating the manifest of ${segmentId}`, bucket: this.bucket, endpoint: this.endpoint, signal });
        // Another writer changed the manifest since it was read: read it again.
      }
    }
  }

  async addSource(segmentId: string, node: string, digest: string, opts: TransferOptions = {}): Promise<PutOutcome> {
    const problem = nodeNameProblem(node);
    if (problem) throw new BackupError('bad_request', problem);
    if (!/^[0-9a-f]{64}$/.test(digest)) throw new BackupError('bad_request', 'digest must be 64 lower-case hex digits');
    return this.recordReplica(parseSegmentId(segmentId).id, node, digest, opts.signal);
  }

  async read(segmentId: string, opts: TransferOptions = {}): Promise<SegmentReader> {
    const id = parseSegmentId(segmentId).id;
    const k = await this.getManifest(id, opts.signal);
    if (!k) throw new BackupError('not_found', `${this.url} holds no segment ${id}`);
    const manifest = k.manifest;
    const prefix = this.dataPrefixOf(manifest);
    const { sdk, client } = await this.s3();
    const where = this.where(id);
    const open = async (want: SegmentFileInfo): Promise<IncomingFile> => {
      const { name, size } = want;
      const key = `${prefix}${name}`;
      try {
        const res = await client.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal: opts.signal });
        if (res.ContentLength !== undefined && res.ContentLength !== size) {
          res.Body?.transformToWebStream()
            .cancel()
            .catch(() => undefined);
          throw new BackupError('digest_mismatch', `${this.where(id)}: ${name} has ${res.ContentLength} bytes in the bucket, the manifest ${size}; run verify`);
        }
        const body = res.Body as unknown as AsyncIterable<Uint8Array>;
        return { name, size, stream: Readable.from(verifiedChunks(body, want, where), { objectMode: false }) };
      } catch (e) {
        if (isNotFound(e))
          throw new BackupError(
            'digest_mismatch',
            `${this.where(id)}: ${name} is missing from the bucket (NoSuchKey at s3://${this.bucket}/${key}); run verify`,
          );
        throw s3Error(e, { action: `reading s3://${this.bucket}/${key}`, bucket: this.bucket, endpoint: this.endpoint, signal: opts.signal });
      }
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
   * One page of the catalog (`GET /data/v1/store/segments?target=s3://…`), the shape a target sidecar answers with.
   * A first page lists the bucket; the pages that follow it within CATALOG_REUSE_MS page through that same listing,
   * so walking 10,000 segments in pages of 1,000 costs one listing, not ten.
   */
  async catalogPage(filter: ListFilter, query: CatalogQuery, opts: TransferOptions = {}): Promise<Page<StoredSegment>> {
    const { limit, cursor, onlyConflicts = false } = query;
    const key = JSON.stringify([filter.dataSource, filter.interval, filter.segmentIds, onlyConflicts]);
    const kept = this.lastCatalog;
    let items: StoredSegment[];
    if (cursor !== undefined && kept?.key === key && Date.now() - kept.at < CATALOG_REUSE_MS) items = kept.items;
    else {
      items = [];
      for await (const m of this.list(filter, opts)) {
        if (onlyConflicts && m.conflicts.length === 0) continue;
        items.push(catalogEntry(m));
      }
      items.sort((a, b) => (a.segmentId < b.segmentId ? -1 : a.segmentId > b.segmentId ? 1 : 0));
      this.lastCatalog = { key, at: Date.now(), items };
    }
    return pageSorted(
      items,
      (x) => x.segmentId,
      (x) => ({ ...x }),
      limit,
      cursor,
    );
  }

  /** Re-reads every selected segment's objects against its manifest (verify.ts). */
  verify(filter: ListFilter = {}, opts: S3VerifyOptions = {}): Promise<S3VerifyReport> {
    return verifyBucket(this, compileSelector(filter), opts);
  }

  /** Removes a node's copy of one segment: its multipart uploads in progress and its objects. */
  async clearCopy(prefix: string, signal?: AbortSignal): Promise<void> {
    const { sdk, client } = await this.s3();
    await this.call(`aborting uploads under s3://${this.bucket}/${prefix}`, signal, async () => {
      const page = await client.send(new sdk.ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: prefix }), { abortSignal: signal });
      for (const u of page.Uploads ?? [])
        if (u.Key && u.UploadId)
          await client.send(new sdk.AbortMultipartUploadCommand({ Bucket: this.bucket, Key: u.Key, UploadId: u.UploadId }), { abortSignal: signal });
    });
    await this.deletePrefix(prefix, signal);
  }

  /** Deletes every object under a prefix (a node's copy of one segment: a handful of keys). */
  async deletePrefix(prefix: string, signal?: AbortSignal): Promise<void> {
    const { sdk, client } = await this.s3();
    await this.call(`removing s3://${this.bucket}/${prefix}`, signal, async () => {
      let token: string | undefined;
      const guard = new PageGuard(`the listing of s3://${this.bucket}/${prefix}`);
      do {
        const page = await client.send(new sdk.ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }), {
          abortSignal: signal,
        });
        const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }));
        if (keys.length) {
          const res = await client.send(new sdk.DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: keys, Quiet: true } }), {
            abortSignal: signal,
          });
          const failed = res.Errors ?? [];
          if (failed.length)
            throw new BackupError('target_error', `could not delete ${failed.length} object(s) under s3://${this.bucket}/${prefix} (${failed[0]!.Code})`);
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
        if (token) guard.next(token);
      } while (token);
    });
  }

  /** Closes idle connections now and busy ones when their call ends, so a job still reading this bucket finishes. */
  close(): void {
    retireAgent(this.agents.httpAgent);
    retireAgent(this.agents.httpsAgent);
  }
}
