/**
 * The http target: another sidecar started with `--store`, spoken to over its API (store/target.ts has the wire
 * format). Segment bodies stream both ways; a transfer that moves no byte for the idle timeout is abandoned, so a
 * stalled target fails the transfer (and active backup retries it) instead of hanging a worker.
 */
import { Readable } from 'node:stream';
import { HttpSnapshots } from './snapshots.js';
import type { AxiosResponse } from 'axios';
import { API_PREFIX } from '../../api.js';
import type { Page, StoredSegment } from '../../api.js';
import { packSegment } from '../../archive/pack.js';
import { DownloadReader } from '../../archive/unpack.js';
import type { ErrorCode } from '../../errors.js';
import { BackupError } from '../../errors.js';
import { ANSWER_LIMITS, PageGuard } from '../../util/limitedRead.js';
import type { Manifest } from '../manifest.js';
import { segmentDigest } from '../manifest.js';
import type {
  CatalogQuery,
  IncomingFile,
  ListFilter,
  OutgoingSegment,
  PutOutcome,
  PutResult,
  BatchRead,
  SegmentReader,
  StoredSummary,
  StoreStats,
  Target,
  TransferOptions,
} from '../target.js';
import { SMALL_SEGMENT_BYTES } from '../target.js';
import { PutBatcher } from './batcher.js';
import { BatchBodyReader, READ_BATCH_PATH, parseReadHeader } from './batch.js';
import type { ClientOptions } from './client.js';
import { IdleWatchdog, ApiClient, discard, errorFromFailure, errorFromResponse } from './client.js';

export const TAR_CONTENT_TYPE = 'application/x-tar';
/** Header naming the node that sends a segment. */
export const NODE_HEADER = 'x-druid-backup-node';
export const DIGEST_HEADER = 'x-druid-backup-digest';
export const SOURCES_HEADER = 'x-druid-backup-sources';
export const SIZE_HEADER = 'x-druid-backup-size';
/** On HEAD: the target's verify found its copy damaged; the value says what is wrong (percent-encoded). */
export const DAMAGED_HEADER = 'x-druid-backup-damaged';
/** Largest segment a download accepts; the manifest declares the size first. */
const MAX_DOWNLOAD_BYTES = 1024 ** 4;
const LIST_PAGE = 1000;

export function segmentUrl(segmentId: string): string {
  return `${API_PREFIX}/store/segments/${encodeURIComponent(segmentId)}`;
}

/** `X-Druid-Backup-Sources`: node names, each percent-encoded, comma-separated. */
export function encodeSources(sources: string[]): string {
  return sources.map(encodeURIComponent).join(',');
}

/**
 * What a target's own verify found wrong with its copy (the damaged header of HEAD and of a refused GET): shown to
 * operators, so bounded and without control characters; the node still checks every byte it reads itself.
 */
function damagedOf(header: unknown): string | undefined {
  const text = decodeSources(typeof header === 'string' ? header : undefined)[0];
  return text ? text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, ' ').slice(0, 1000) : undefined;
}

export function decodeSources(header: string | undefined): string[] {
  if (!header) return [];
  return header
    .split(',')
    .filter(Boolean)
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });
}

export class HttpTarget implements Target {
  readonly client: ApiClient;
  readonly url: string;

  /** Snapshots in the target sidecar's store (snapshots.ts). */
  readonly snapshots: HttpSnapshots;
  private readonly batcher: PutBatcher;
  /** Set once the target answered a batch read 404 (a build without the route): single reads from then on. */
  private noReadBatch = false;

  constructor(url: string, opts: ClientOptions = {}) {
    this.client = new ApiClient(url, opts);
    this.url = this.client.baseUrl;
    this.snapshots = new HttpSnapshots(this.client, this.url);
    this.batcher = new PutBatcher(this.client, (segment, o) => this.putOne(segment, o));
  }

  close(): void {
    this.batcher.close();
    this.client.close();
  }

  async head(segmentId: string, opts: TransferOptions = {}): Promise<StoredSummary | undefined> {
    const res = await this.client.raw({ method: 'HEAD', url: segmentUrl(segmentId), signal: opts.signal });
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw await errorFromResponse(res, this.url);
    const digest = String(res.headers[DIGEST_HEADER] ?? '');
    if (!/^[0-9a-f]{64}$/.test(digest)) throw new BackupError('target_error', `${this.url} answered HEAD without a valid ${DIGEST_HEADER}`);
    const damaged = damagedOf(res.headers[DAMAGED_HEADER]);
    return {
      digest,
      sources: decodeSources(res.headers[SOURCES_HEADER] as string | undefined),
      size: Number(res.headers[SIZE_HEADER] ?? 0),
      ...(damaged ? { damaged } : {}),
    };
  }

  async manifest(segmentId: string, opts: TransferOptions = {}): Promise<Manifest | undefined> {
    const res = await this.client.raw<Readable>({ method: 'GET', url: `${segmentUrl(segmentId)}/manifest`, responseType: 'stream', signal: opts.signal });
    if (res.status === 404) {
      await discard(res);
      return undefined;
    }
    if (res.status !== 200) throw await errorFromResponse(res, this.url);
    return this.client.readJson<Manifest>(res, ANSWER_LIMITS.manifest, `the manifest of ${segmentId} from ${this.url}`, opts.signal);
  }

  /**
   * The JSON answer of a PUT or POST read with the small limit when it is one the caller inspects (2xx, 409); any
   * other status is left as a stream for errorFromResponse.
   */
  private async answer<T>(res: AxiosResponse<Readable>, what: string, signal?: AbortSignal): Promise<AxiosResponse<T | undefined>> {
    if ((res.status >= 200 && res.status < 300) || res.status === 409)
      return { ...res, data: await this.client.readJson<T>(res, ANSWER_LIMITS.small, what, signal) };
    return res as unknown as AxiosResponse<T | undefined>;
  }

  /** A small segment goes in a batch when the target takes them (batcher.ts); a repair or a large one by itself. */
  async put(segment: OutgoingSegment, opts: TransferOptions = {}): Promise<PutResult> {
    const size = segment.files.reduce((n, f) => n + f.size, 0);
    if (!opts.replace && size < SMALL_SEGMENT_BYTES) return this.batcher.put(segment, opts);
    return this.putOne(segment, opts);
  }

  /** One segment, one PUT. */
  private async putOne(segment: OutgoingSegment, opts: TransferOptions = {}): Promise<PutResult> {
    const watchdog = new IdleWatchdog(this.client.idleTimeoutMs, `sending ${segment.segmentId} to ${this.url}`, opts.signal);
    const packed = packSegment(segment, {
      signal: watchdog.signal,
      onBytes: (n) => {
        watchdog.touch();
        opts.onBytes?.(n);
      },
    });
    let streamError: unknown;
    packed.stream.on('error', (e) => (streamError = e));
    try {
      const sent = await this.client.raw<Readable>({
        method: 'PUT',
        url: segmentUrl(segment.segmentId) + (opts.replace ? '?replace=true' : ''),
        data: packed.stream,
        headers: { 'content-type': TAR_CONTENT_TYPE, 'content-length': String(packed.length), [NODE_HEADER]: segment.node },
        responseType: 'stream',
        signal: watchdog.signal,
        // The transfer is bounded by the idle watchdog, not by a total time.
        timeout: 0,
      });
      const res = await this.answer<{ outcome?: PutOutcome; error?: { code: string } }>(
        sent,
        `the answer of ${this.url} to the upload of ${segment.segmentId}`,
        watchdog.signal,
      );
      if (streamError) throw streamError;
      let outcome: PutOutcome;
      if (res.status === 201) outcome = 'stored';
      else if (res.status === 200) outcome = 'identical';
      else if (res.status === 409 && res.data?.error?.code === 'conflict') outcome = 'conflict';
      else throw await errorFromResponse(res, this.url);
      const files = await packed.files;
      return { outcome, files, digest: segmentDigest(files), bytes: files.reduce((n, f) => n + f.size, 0) };
    } catch (e) {
      packed.stream.destroy();
      throw streamError && !watchdog.signal.aborted ? streamError : errorFromFailure(e, this.url, watchdog.signal);
    } finally {
      watchdog.stop();
    }
  }

  async addSource(segmentId: string, node: string, digest: string, opts: TransferOptions = {}): Promise<PutOutcome> {
    const sent = await this.client.raw<Readable>({
      method: 'POST',
      url: `${segmentUrl(segmentId)}/sources`,
      data: { node, digest },
      responseType: 'stream',
      signal: opts.signal,
    });
    const res = await this.answer<{ outcome?: PutOutcome; error?: { code: string } }>(sent, `the answer of ${this.url} to a sources update`, opts.signal);
    if (res.status === 200) return 'identical';
    if (res.status === 409 && res.data?.error?.code === 'conflict') return 'conflict';
    throw await errorFromResponse(res, this.url);
  }

  async read(segmentId: string, opts: TransferOptions = {}): Promise<SegmentReader> {
    const watchdog = new IdleWatchdog(this.client.idleTimeoutMs, `reading ${segmentId} from ${this.url}`, opts.signal);
    const res = await this.client
      .raw<Readable>({ method: 'GET', url: segmentUrl(segmentId), responseType: 'stream', signal: watchdog.signal, timeout: 0 })
      .catch((e) => {
        watchdog.stop();
        throw e;
      });
    if (res.status !== 200) {
      watchdog.stop();
      const damaged = res.status === 422 ? damagedOf(res.headers[DAMAGED_HEADER]) : undefined;
      if (damaged) {
        await discard(res);
        throw new BackupError('digest_mismatch', `${this.url} holds a damaged copy of ${segmentId}: its verify found ${damaged}`);
      }
      throw await errorFromResponse(res, this.url);
    }
    const reader = new DownloadReader(res.data, {
      maxBytes: MAX_DOWNLOAD_BYTES,
      segmentId,
      planned: opts.planned?.(segmentId),
      signal: watchdog.signal,
      onBytes: (n) => {
        watchdog.touch();
        opts.onBytes?.(n);
      },
    });
    let manifest: Manifest;
    try {
      manifest = await reader.open();
    } catch (e) {
      watchdog.stop();
      res.data.destroy();
      throw errorFromFailure(e, this.url, watchdog.signal);
    }
    const url = this.url;
    async function* files(): AsyncGenerator<IncomingFile> {
      try {
        for await (const f of reader.files()) {
          yield { name: f.name, size: f.size, chunks: f.chunks };
        }
        await reader.finish();
      } catch (e) {
        throw errorFromFailure(e, url, watchdog.signal);
      } finally {
        watchdog.stop();
        res.data.destroy();
      }
    }
    return { manifest, files: files(), verified: true };
  }

  /**
   * Several small segments in one answer (`POST /data/v1/store/batch/read`, store/http/batch.ts): each segment asked
   * for comes back in the order asked, as a reader checked as `read`'s is, or as the error the target gave for it.
   * Consume each reader before taking the next. Undefined when the target does not offer the route (an older build:
   * then use `read`); a broken answer fails the iteration, and what it had not yielded is for `read` too.
   */
  async readBatch(segmentIds: readonly string[], opts: TransferOptions = {}): Promise<AsyncGenerator<BatchRead> | undefined> {
    if (this.noReadBatch) return undefined;
    const watchdog = new IdleWatchdog(this.client.idleTimeoutMs, `reading ${segmentIds.length} segments from ${this.url}`, opts.signal);
    const res = await this.client
      .raw<Readable>({ method: 'POST', url: READ_BATCH_PATH, data: { segmentIds }, responseType: 'stream', signal: watchdog.signal, timeout: 0 })
      .catch((e) => {
        watchdog.stop();
        throw e;
      });
    if (res.status !== 200) {
      watchdog.stop();
      // The route itself answers 200 whatever it holds: a 404 is a target without it.
      if (res.status === 404) {
        await discard(res);
        this.noReadBatch = true;
        return undefined;
      }
      throw await errorFromResponse(res, this.url);
    }
    const url = this.url;
    const body = new BatchBodyReader(res.data);
    async function* parts(): AsyncGenerator<BatchRead> {
      try {
        const entries = parseReadHeader(await body.line(), segmentIds, url);
        for (const e of entries) {
          if (!('length' in e)) {
            yield { segmentId: e.segmentId, error: new BackupError(e.error.code as ErrorCode, `${url}: ${e.error.message}`, e.status) };
            continue;
          }
          const reader = new DownloadReader(body.part(e.length), {
            maxBytes: e.length,
            segmentId: e.segmentId,
            planned: opts.planned?.(e.segmentId),
            signal: watchdog.signal,
            onBytes: (n) => {
              watchdog.touch();
              opts.onBytes?.(n);
            },
          });
          const manifest = await reader.open();
          async function* files(): AsyncGenerator<IncomingFile> {
            for await (const f of reader.files()) yield { name: f.name, size: f.size, chunks: f.chunks };
            await reader.finish();
          }
          yield { segmentId: e.segmentId, reader: { manifest, files: files(), verified: true } };
          await body.skipPart();
        }
        await body.end();
      } catch (e) {
        throw errorFromFailure(e, url, watchdog.signal);
      } finally {
        watchdog.stop();
        res.data.destroy();
      }
    }
    return parts();
  }

  async *list(filter: ListFilter = {}, opts: TransferOptions = {}): AsyncGenerator<Manifest> {
    if (filter.segmentIds) {
      for (const id of filter.segmentIds) {
        const m = await this.manifest(id, opts);
        if (m && (!filter.dataSource || m.dataSource === filter.dataSource)) yield m;
      }
      return;
    }
    let cursor: string | undefined;
    const guard = new PageGuard(`the manifest listing of ${this.url}`);
    do {
      const page = await this.client.get<Page<Manifest>>(
        `${API_PREFIX}/store/manifests`,
        { dataSource: filter.dataSource, interval: filter.interval, limit: LIST_PAGE, cursor },
        opts.signal,
        ANSWER_LIMITS.page,
      );
      if (!Array.isArray(page?.items) || page.items.length > LIST_PAGE)
        throw new BackupError('target_error', `${this.url} answered a manifest page that is not a list of at most ${LIST_PAGE} manifests`);
      yield* page.items;
      cursor = typeof page.nextCursor === 'string' && page.nextCursor ? page.nextCursor : undefined;
      if (cursor) guard.next(cursor);
    } while (cursor);
  }

  /** One page of the target's catalog (`GET /data/v1/store/segments`). */
  catalogPage(filter: ListFilter, query: CatalogQuery, opts: TransferOptions = {}): Promise<Page<StoredSegment>> {
    const q = {
      dataSource: filter.dataSource,
      interval: filter.interval,
      limit: query.limit,
      cursor: query.cursor,
      ...(query.onlyConflicts ? { state: 'conflict' } : {}),
    };
    return this.client.get<Page<StoredSegment>>(`${API_PREFIX}/store/segments`, q, opts.signal, ANSWER_LIMITS.page);
  }

  stats(opts: TransferOptions = {}): Promise<StoreStats> {
    return this.client.get<StoreStats>(`${API_PREFIX}/store/stats`, undefined, opts.signal, ANSWER_LIMITS.small);
  }
}
