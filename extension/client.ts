/**
 * The sidecar API client of the extension (axios). Every request is logged by method, URL, status and time, and
 * never with its token. Failures become a `SidecarRequestError` with the server's `{"error": {code, message}}`
 * when it sent one, or words for what went wrong on the way ("cannot connect", "timed out").
 * No `vscode` import, and only types from the sidecar: the extension bundle holds no server code.
 */
import axios, { type AxiosInstance, type AxiosResponse } from 'axios';
import type { Readable } from 'node:stream';
import type {
  ApiError,
  BackupRequest,
  ClusterRestorePlan,
  ClusterRestoreRequest,
  Job,
  JobAccepted,
  ListQuery,
  Manifest,
  NodeInfo,
  Page,
  RestorePlan,
  RestoreRequest,
  SegmentInfo,
  StoredSegment,
  TargetsResponse,
  VerifyRequest,
} from '../sidecar/api.js';
import type { SnapshotSummary } from '../sidecar/snapshot/service.js';
import { parseSnapshotList } from './tree/snapshots.js';
import { parseClusterPlan } from './views/clusterPlan.js';

const API = '/data/v1';
/** The largest page the API gives. */
const MAX_PAGE = 1000;

export interface ClientLog {
  info(message: string): void;
  error(message: string): void;
}

export class SidecarRequestError extends Error {
  constructor(
    /** The server's error code, or `unreachable`, `timeout`, `bad_response`. */
    readonly code: string,
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'SidecarRequestError';
  }
}

export interface ClientOptions {
  token?: string;
  timeoutMs: number;
  log: ClientLog;
  /**
   * A bucket (a target with no sidecar of its own) this client asks about: the store calls (catalog, manifest, verify) go to the
   * node with `target` set, since a bucket has no sidecar of its own and the node that backs up to it answers.
   */
  bucket?: string;
}

/** Strips a trailing slash so URLs compare and join the same way everywhere. */
export function normalizeNodeUrl(url: string): string {
  const u = new URL(url.trim());
  if (u.username || u.password) throw new Error('put the token in the token prompt, not in the URL');
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`${url} is not an http(s) URL`);
  u.search = '';
  u.hash = '';
  return u.toString().replace(/\/+$/, '');
}

export class SidecarClient {
  private readonly http: AxiosInstance;

  constructor(
    readonly url: string,
    private readonly opts: ClientOptions,
  ) {
    this.http = axios.create({
      baseURL: url,
      timeout: opts.timeoutMs,
      headers: opts.token ? { Authorization: `Bearer ${opts.token}` } : {},
      // Errors are read from the body below, whatever the status.
      validateStatus: () => true,
      maxRedirects: 0,
    });
  }

  /** A client of the same node, with the same token, that asks about `bucket` instead of the node's own store. */
  forBucket(bucket: string): SidecarClient {
    return new SidecarClient(this.url, { ...this.opts, bucket });
  }

  get bucket(): string | undefined {
    return this.opts.bucket;
  }

  node(): Promise<NodeInfo> {
    return this.json('GET', `${API}/node`);
  }

  segmentsPage(q: ListQuery): Promise<Page<SegmentInfo>> {
    return this.json('GET', `${API}/segments`, { params: q });
  }

  /** Every segment of the node's cache, a page of 1,000 at a time. */
  allSegments(q: Omit<ListQuery, 'limit' | 'cursor'> = {}, signal?: AbortSignal): Promise<SegmentInfo[]> {
    return this.all((cursor) => this.json('GET', `${API}/segments`, { params: { ...q, limit: MAX_PAGE, cursor }, signal }));
  }

  /** Every backup in the node's store (target role). */
  allStored(q: Omit<ListQuery, 'limit' | 'cursor'> = {}, signal?: AbortSignal): Promise<StoredSegment[]> {
    return this.all((cursor) => this.json('GET', `${API}/store/segments`, { params: { ...q, limit: MAX_PAGE, cursor, target: this.opts.bucket }, signal }));
  }

  /** The node's targets and the copies it keeps of each segment. */
  targets(): Promise<TargetsResponse> {
    return this.json('GET', `${API}/targets`);
  }

  async jobs(): Promise<Job[]> {
    const r = await this.json<Job[] | Page<Job>>('GET', `${API}/jobs`);
    return Array.isArray(r) ? r : r.items;
  }

  job(id: string): Promise<Job> {
    return this.json('GET', `${API}/jobs/${encodeURIComponent(id)}`);
  }

  cancelJob(id: string): Promise<unknown> {
    return this.json('DELETE', `${API}/jobs/${encodeURIComponent(id)}`);
  }

  backup(req: BackupRequest): Promise<JobAccepted> {
    return this.json('POST', `${API}/backup`, { data: req });
  }

  restorePlan(req: RestoreRequest): Promise<RestorePlan> {
    return this.json('POST', `${API}/restore`, { data: { ...req, dryRun: true } });
  }

  restore(req: RestoreRequest): Promise<JobAccepted> {
    return this.json('POST', `${API}/restore`, { data: { ...req, dryRun: false } });
  }

  verify(req: VerifyRequest = {}): Promise<JobAccepted> {
    return this.json('POST', `${API}/store/verify`, { data: this.opts.bucket ? { ...req, target: this.opts.bucket } : req });
  }

  /** The snapshots in the node's store and targets, newest first; entries that are not snapshots are dropped. */
  async snapshots(): Promise<SnapshotSummary[]> {
    return parseSnapshotList(await this.json<unknown>('GET', `${API}/snapshots`));
  }

  /** Pins (retention never removes it) or unpins a snapshot in every target that holds it. */
  pinSnapshot(id: string, pinned: boolean): Promise<unknown> {
    return this.json(pinned ? 'PUT' : 'DELETE', `${API}/snapshots/${encodeURIComponent(id)}/pin`, pinned ? { data: {} } : {});
  }

  /** A cluster sidecar's plan of a cluster restore (issue 22): the dry run of `POST /cluster/restore`, checked. */
  async clusterRestorePlan(req: Omit<ClusterRestoreRequest, 'dryRun'>): Promise<ClusterRestorePlan> {
    return parseClusterPlan(await this.json<unknown>('POST', `${API}/cluster/restore`, { data: { ...req, dryRun: true } }));
  }

  /** Starts a cluster restore: a `recovery` job whose progress follows the plan's steps. */
  clusterRestore(req: Omit<ClusterRestoreRequest, 'dryRun'>): Promise<JobAccepted> {
    return this.json('POST', `${API}/cluster/restore`, { data: { ...req, dryRun: false } });
  }

  /** Prunes the node's store (or the bucket) by its retention: a job, whose result with `dryRun` is the plan. */
  prune(dryRun: boolean): Promise<JobAccepted> {
    return this.json('POST', `${API}/store/prune`, { data: { dryRun, ...(this.opts.bucket ? { target: this.opts.bucket } : {}) } });
  }

  /** The manifest of a stored segment (target role). */
  manifest(segmentId: string): Promise<Manifest> {
    return this.json('GET', `${API}/store/segments/${encodeURIComponent(segmentId)}/manifest`, { params: { target: this.opts.bucket } });
  }

  /** Opens `GET /data/v1/events`: a stream of server-sent events, open until `signal` aborts or the server ends it. */
  async events(signal: AbortSignal): Promise<Readable> {
    const path = `${API}/events`;
    const res = await this.request<Readable>('GET', path, { responseType: 'stream', signal, timeout: 0, headers: { Accept: 'text/event-stream' } });
    if (res.status >= 400) throw await this.failure('GET', path, res.status, await readSmall(res.data));
    return res.data;
  }

  private async all<T>(get: (cursor?: string) => Promise<Page<T>>): Promise<T[]> {
    const items: T[] = [];
    let cursor: string | undefined;
    do {
      const p = await get(cursor);
      items.push(...p.items);
      cursor = p.nextCursor;
    } while (cursor);
    return items;
  }

  private async json<T>(method: string, path: string, cfg: { params?: object; data?: unknown; signal?: AbortSignal } = {}): Promise<T> {
    const res = await this.request<unknown>(method, path, { ...cfg, responseType: 'json' });
    if (res.status >= 400) throw await this.failure(method, path, res.status, res.data);
    return res.data as T;
  }

  private async request<T>(
    method: string,
    path: string,
    cfg: { params?: object; data?: unknown; signal?: AbortSignal; responseType: 'json' | 'stream'; timeout?: number; headers?: Record<string, string> },
  ): Promise<AxiosResponse<T>> {
    const started = Date.now();
    const shown = `${method} ${this.url}${path}${cfg.params ? query(cfg.params) : ''}`;
    try {
      const res = await this.http.request<T>({ method, url: path, ...cfg });
      this.opts.log.info(`${shown} → ${res.status} (${Date.now() - started} ms)`);
      return res;
    } catch (e) {
      const err = transportError(this.url, e, this.opts.timeoutMs);
      this.opts.log.error(`${shown} → ${err.message}`);
      throw err;
    }
  }

  private async failure(method: string, path: string, status: number, body: unknown): Promise<SidecarRequestError> {
    const e = (body as Partial<ApiError> | undefined)?.error;
    const code = typeof e?.code === 'string' ? e.code : status === 401 ? 'unauthorized' : `http_${status}`;
    const why = typeof e?.message === 'string' ? e.message : status === 401 ? 'the token was rejected' : `HTTP ${status}`;
    const err = new SidecarRequestError(code, `${this.url}: ${why}`, status);
    this.opts.log.error(`${method} ${this.url}${path} → ${status} ${code}: ${why}`);
    return err;
  }
}

function query(params: object): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

function transportError(url: string, e: unknown, timeoutMs: number): SidecarRequestError {
  if (e instanceof SidecarRequestError) return e;
  if (axios.isCancel(e)) return new SidecarRequestError('cancelled', `${url}: request cancelled`);
  const err = e as { code?: string; message?: string };
  if (err.code === 'ECONNABORTED' || err.code === 'ETIMEDOUT') return new SidecarRequestError('timeout', `${url} did not answer within ${timeoutMs} ms`);
  if (err.code === 'ECONNREFUSED') return new SidecarRequestError('unreachable', `cannot connect to ${url} (connection refused)`);
  if (err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN') return new SidecarRequestError('unreachable', `cannot resolve the host of ${url}`);
  return new SidecarRequestError('unreachable', `cannot reach ${url}: ${err.message ?? String(e)}`);
}

/** The body of an error answer that came as a stream: small, parsed as JSON when it is. */
async function readSmall(stream: Readable): Promise<unknown> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of stream) {
    n += (c as Buffer).length;
    if (n > 64 * 1024) break;
    chunks.push(c as Buffer);
  }
  stream.destroy();
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
