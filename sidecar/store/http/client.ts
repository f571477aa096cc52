/**
 * The HTTP client of a sidecar's API, used by the http target (target.ts), the CLI commands and the tests:
 * axios with keep-alive connections, the bearer token, no redirects (axios would buffer a streamed body to be
 * able to replay it), and errors mapped to `BackupError`s that say which side failed.
 */
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import type { Readable } from 'node:stream';
import axios from 'axios';
import type { AxiosInstance, AxiosRequestConfig, AxiosResponse } from 'axios';
import type { ErrorCode } from '../../errors.js';
import { BackupError, isBackupError, messageOf } from '../../errors.js';
import { ANSWER_LIMITS, readJsonLimited, readLimited } from '../../util/limitedRead.js';

/** Calls that move no segment bytes must answer within this time. */
export const REQUEST_TIMEOUT_MS = 30_000;
/** A transfer that moves no byte for this long is abandoned (the target stalled or the network died). */
export const IDLE_TIMEOUT_MS = 60_000;

export interface ClientOptions {
  token?: string;
  requestTimeoutMs?: number;
  idleTimeoutMs?: number;
  /** Connections kept per host; transfers run in parallel up to the number of workers. */
  maxSockets?: number;
  /** PEM CA certificate(s) trusted for https:// besides the system ones (druid.backup.tls.ca). */
  ca?: Buffer;
}

/** Codes a sidecar answers with that keep their meaning on the calling side. */
const PASSED_THROUGH = new Set<ErrorCode>([
  'bad_request',
  'bad_segment_id',
  'bad_interval',
  'not_found',
  'conflict',
  'digest_mismatch',
  'bad_archive',
  'payload_too_large',
  'no_space',
  'cancelled',
]);

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ECONNABORTED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
  'ECANCELED',
]);

/** Certificate problems of an https:// peer: unreachable until its CA is trusted. */
const TLS_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

export function checkBaseUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new BackupError('bad_request', `"${url.slice(0, 200)}" is not a URL (expected http://host:port)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new BackupError('bad_request', `"${url.slice(0, 200)}" is not an http:// or https:// URL`);
  if (u.username || u.password) throw new BackupError('bad_request', 'credentials do not belong in the URL; use a token');
  if (u.search || u.hash) throw new BackupError('bad_request', `"${url.slice(0, 200)}" must not have a query or fragment`);
  return u.toString().replace(/\/+$/, '');
}

/** An error body that came as a stream, at most `ANSWER_LIMITS.small` of it: JSON when it parses, else its text. */
async function readSmall(stream: Readable): Promise<unknown> {
  let buf: Buffer;
  try {
    buf = await readLimited(stream, ANSWER_LIMITS.small, 'the error body');
  } catch {
    // An error body too large or cut off says nothing more than its status.
    return undefined;
  }
  const text = buf.toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Turns an answer with an error status into a BackupError naming the remote side. */
export async function errorFromResponse(res: AxiosResponse, where: string): Promise<BackupError> {
  let data = res.data as unknown;
  if (data && typeof (data as Readable).pipe === 'function') data = await readSmall(data as Readable);
  const err = (data as { error?: { code?: string; message?: string } } | undefined)?.error;
  const code = err?.code as ErrorCode | undefined;
  const message = err?.message ?? (typeof data === 'string' && data ? data.slice(0, 300) : `HTTP ${res.status}`);
  if (res.status === 401) return new BackupError('target_error', `${where} refused the token (401: ${message}); check the token configured for it`);
  if (code && PASSED_THROUGH.has(code)) return new BackupError(code, `${where}: ${message}`, res.status);
  return new BackupError('target_error', `${where} answered ${res.status}: ${message}`);
}

/** Turns a failed request (no answer) into `target_unreachable`, or `cancelled` when we aborted it. */
export function errorFromFailure(e: unknown, where: string, signal?: AbortSignal): BackupError {
  if (isBackupError(e)) return e;
  if (signal?.aborted) {
    const reason = signal.reason as unknown;
    if (isBackupError(reason)) return reason;
    if ((reason as Error | undefined)?.name === 'TimeoutError') return new BackupError('target_unreachable', `${where} did not answer in time`);
    return new BackupError('cancelled', 'transfer cancelled');
  }
  const code = (e as { code?: string }).code;
  const cause = (e as { cause?: { code?: string } }).cause?.code;
  if (code === 'ECONNABORTED' && /timeout/i.test(messageOf(e)))
    return new BackupError('target_unreachable', `${where} did not answer in time (${messageOf(e)})`);
  if (code && TLS_CODES.has(code))
    return new BackupError('target_unreachable', `${where}: its TLS certificate is not trusted (${code}); give its CA with druid.backup.tls.ca (--tls-ca)`);
  if ((code && NETWORK_CODES.has(code)) || (cause && NETWORK_CODES.has(cause)) || axios.isAxiosError(e)) {
    return new BackupError('target_unreachable', `${where} is unreachable (${code ?? cause ?? messageOf(e)})`);
  }
  return new BackupError('target_error', `${where}: ${messageOf(e)}`);
}

/** Resets a timer on every sign of progress; aborts the transfer when none came for `ms`. */
export class IdleWatchdog {
  private timer?: NodeJS.Timeout;
  readonly controller = new AbortController();
  private readonly forward = () => this.controller.abort(this.outer?.reason);
  constructor(
    private readonly ms: number,
    private readonly what: string,
    private readonly outer?: AbortSignal,
  ) {
    if (outer?.aborted) this.controller.abort(outer.reason);
    // Removed by stop(): a job's signal outlives thousands of transfers.
    else outer?.addEventListener('abort', this.forward, { once: true });
    this.touch();
  }
  get signal(): AbortSignal {
    return this.controller.signal;
  }
  touch(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(
      () => this.controller.abort(new BackupError('target_unreachable', `${this.what}: no progress for ${Math.round(this.ms / 1000)} s; transfer abandoned`)),
      this.ms,
    );
    this.timer.unref();
  }
  stop(): void {
    clearTimeout(this.timer);
    this.outer?.removeEventListener('abort', this.forward);
  }
}

export class SidecarClient {
  readonly http: AxiosInstance;
  readonly idleTimeoutMs: number;

  constructor(
    readonly baseUrl: string,
    readonly opts: ClientOptions = {},
  ) {
    this.baseUrl = checkBaseUrl(baseUrl);
    this.idleTimeoutMs = opts.idleTimeoutMs ?? IDLE_TIMEOUT_MS;
    const agentOpts = { keepAlive: true, maxSockets: opts.maxSockets ?? 16 };
    this.http = axios.create({
      baseURL: this.baseUrl,
      headers: opts.token ? { authorization: `Bearer ${opts.token}` } : {},
      timeout: opts.requestTimeoutMs ?? REQUEST_TIMEOUT_MS,
      maxRedirects: 0,
      maxBodyLength: Infinity,
      maxContentLength: Infinity,
      validateStatus: () => true,
      httpAgent: new http.Agent(agentOpts),
      httpsAgent: new https.Agent({ ...agentOpts, ...(opts.ca ? { ca: [...tls.rootCertificates, opts.ca.toString('utf8')] } : {}) }),
      // A proxy from the environment must not see segment bytes or the token unless configured on purpose.
      proxy: false,
    });
  }

  /** Sends a request; resolves with the response of any status, rejects only when there was no answer. */
  async raw<T = unknown>(config: AxiosRequestConfig): Promise<AxiosResponse<T>> {
    try {
      return await this.http.request<T>(config);
    } catch (e) {
      throw errorFromFailure(e, this.baseUrl, config.signal as AbortSignal | undefined);
    }
  }

  /**
   * A JSON call that must answer 2xx; anything else becomes a BackupError. The answer is read as a stream and at
   * most `maxBytes` of it (default: a page), so a target that answers with more fails the call instead of filling
   * the heap.
   */
  async call<T>(method: 'GET' | 'POST' | 'DELETE', url: string, body?: unknown, config: AxiosRequestConfig = {}, maxBytes: number = ANSWER_LIMITS.page): Promise<T> {
    const res = await this.raw<Readable>({ method, url, data: body, ...config, responseType: 'stream' });
    if (res.status < 200 || res.status >= 300) throw await errorFromResponse(res, this.baseUrl);
    return this.readJson<T>(res, maxBytes, `the answer of ${this.baseUrl} to ${method} ${url.split('?', 1)[0]}`, config.signal as AbortSignal | undefined);
  }

  /** Reads a streamed JSON answer with a limit; an empty body (204) is undefined. */
  async readJson<T>(res: AxiosResponse<Readable>, maxBytes: number, what: string, signal?: AbortSignal): Promise<T> {
    const header = res.headers['content-length'] as string | undefined;
    const declared = header === undefined ? undefined : Number(header);
    try {
      if (declared === 0 || res.status === 204) {
        res.data.destroy();
        return undefined as T;
      }
      return await readJsonLimited<T>(res.data, maxBytes, what, Number.isFinite(declared) ? declared : undefined);
    } catch (e) {
      throw errorFromFailure(e, this.baseUrl, signal);
    }
  }

  get<T>(url: string, params?: Record<string, unknown>, signal?: AbortSignal, maxBytes?: number): Promise<T> {
    return this.call<T>('GET', url, undefined, { params, signal }, maxBytes);
  }

  post<T>(url: string, body: unknown, signal?: AbortSignal): Promise<T> {
    return this.call<T>('POST', url, body, { signal });
  }

  delete<T>(url: string): Promise<T> {
    return this.call<T>('DELETE', url);
  }
}
