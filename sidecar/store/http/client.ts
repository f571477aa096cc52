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
import { abortError, BackupError, isBackupError, messageOf } from '../../errors.js';
import { parseHttpUrl } from '../../targets/url.js';
import { retireAgent } from '../../util/agents.js';
import { ANSWER_LIMITS, readJsonLimited, readLimited } from '../../util/limitedRead.js';
import { networkCodes } from '../../util/network.js';

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
  /** Show the message of an error answer (the CLI and its own sidecar); a target's is never shown. */
  echoMessages?: boolean;
}

/**
 * Codes a sidecar answers with that keep their meaning on the calling side, each with what it means said on this
 * side (the target's own message stays in its log: nothing of a remote answer but its status and code is shown).
 */
const PASSED_THROUGH = new Map<ErrorCode, string>([
  ['bad_request', 'it refused the request'],
  ['bad_segment_id', 'it refused the segment id'],
  ['bad_interval', 'it refused the interval'],
  ['not_found', 'it does not have it'],
  ['conflict', 'it holds a differing copy or is busy with it'],
  ['digest_mismatch', 'bytes did not match their digests'],
  ['bad_archive', 'it could not read the archive'],
  ['payload_too_large', 'too large for it'],
  ['no_space', 'no room there: its disk or its druid.backup.storeQuota is full (its log says which)'],
  ['cancelled', 'cancelled'],
]);

const NETWORK_CODES = networkCodes('ERR_SOCKET_CONNECTION_TIMEOUT', 'ECANCELED');

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

/**
 * Reads and drops the rest of an answer the caller does not want (a 404's body, an empty 204): a small one to its
 * end, so that its connection goes back to the pool; a larger or broken one is destroyed with its connection.
 */
export async function discard(res: AxiosResponse<Readable>): Promise<void> {
  await readLimited(res.data, ANSWER_LIMITS.small, 'an answer not used').catch(() => undefined);
}

/** The code of a sidecar's JSON error, kept when it is a short token: nothing else of a remote answer is shown. */
const ERROR_CODE_TOKEN = /^[a-z_]{1,40}$/;

/**
 * Turns an answer with an error status into a BackupError naming the remote side by its status and error code.
 * The message of the answer is shown only with `echoMessage` (the CLI asking the operator's own sidecar): a target's
 * answer never reaches an error message, so a caller who named some server as a target cannot read its answers.
 */
export async function errorFromResponse(res: AxiosResponse, where: string, echoMessage = false): Promise<BackupError> {
  let data = res.data as unknown;
  if (data && typeof (data as Readable).pipe === 'function') data = await readSmall(data as Readable);
  const err = (data as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  return errorOfAnswer(res.status, err?.code, echoMessage ? err?.message : undefined, where);
}

/**
 * The BackupError of an error answer's status and code (a whole answer's, or one segment's in a batch answer): the
 * code is kept when it is a short token whose meaning holds on this side; the message only when given (`said`).
 */
export function errorOfAnswer(status: number, rawCode: unknown, rawMessage: unknown, where: string): BackupError {
  const code = typeof rawCode === 'string' && ERROR_CODE_TOKEN.test(rawCode) ? rawCode : undefined;
  const said = typeof rawMessage === 'string' ? `: ${rawMessage.slice(0, 1000)}` : '';
  const answer = `${status}${code ? ` ${code}` : ''}${said}`;
  if (status === 401) return new BackupError('target_error', `${where} refused the token (${answer}); check the token configured for it`);
  const meaning = code ? PASSED_THROUGH.get(code as ErrorCode) : undefined;
  if (meaning) return new BackupError(code as ErrorCode, `${where} answered ${answer}${said ? '' : ` (${meaning})`}`, status);
  return new BackupError('target_error', `${where} answered ${answer}`);
}

/** Turns a failed request (no answer) into `target_unreachable`, or `cancelled` when we aborted it. */
export function errorFromFailure(e: unknown, where: string, signal?: AbortSignal): BackupError {
  if (isBackupError(e)) return e;
  if (signal?.aborted) {
    if ((signal.reason as Error | undefined)?.name === 'TimeoutError') return new BackupError('target_unreachable', `${where} did not answer in time`);
    return abortError(signal, 'transfer cancelled');
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

/**
 * A client of another sidecar's API (the http target, the CLI): named apart from the extension's SidecarClient, which
 * speaks to the same API from VS Code with its own error handling.
 */
export class ApiClient {
  readonly http: AxiosInstance;
  readonly idleTimeoutMs: number;
  private readonly agents: [http.Agent, https.Agent];

  constructor(
    readonly baseUrl: string,
    readonly opts: ClientOptions = {},
  ) {
    this.baseUrl = parseHttpUrl(baseUrl, 'sidecar URL');
    this.idleTimeoutMs = opts.idleTimeoutMs ?? IDLE_TIMEOUT_MS;
    const agentOpts = { keepAlive: true, maxSockets: opts.maxSockets ?? 16 };
    this.agents = [
      new http.Agent(agentOpts),
      new https.Agent({ ...agentOpts, ...(opts.ca ? { ca: [...tls.rootCertificates, opts.ca.toString('utf8')] } : {}) }),
    ];
    this.http = axios.create({
      baseURL: this.baseUrl,
      headers: opts.token ? { authorization: `Bearer ${opts.token}` } : {},
      timeout: opts.requestTimeoutMs ?? REQUEST_TIMEOUT_MS,
      maxRedirects: 0,
      maxBodyLength: Infinity,
      // No limit of axios's own: with one, axios hands a streamed answer over wrapped in a stream of its own, and
      // destroying that wrapper before it was read (a 404's body, an empty answer) never reaches the socket, which
      // then stays busy in the pool for good (maxSockets such answers and every call waits). Answers are read with
      // the limits of util/limitedRead.ts instead.
      maxContentLength: -1,
      validateStatus: () => true,
      httpAgent: this.agents[0],
      httpsAgent: this.agents[1],
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
  async call<T>(
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    url: string,
    body?: unknown,
    config: AxiosRequestConfig = {},
    maxBytes: number = ANSWER_LIMITS.page,
  ): Promise<T> {
    const res = await this.raw<Readable>({ method, url, data: body, ...config, responseType: 'stream' });
    if (res.status < 200 || res.status >= 300) throw await errorFromResponse(res, this.baseUrl, this.opts.echoMessages);
    return this.readJson<T>(res, maxBytes, `the answer of ${this.baseUrl} to ${method} ${url.split('?', 1)[0]}`, config.signal as AbortSignal | undefined);
  }

  /** Reads a streamed JSON answer with a limit; an empty body (204) is undefined. */
  async readJson<T>(res: AxiosResponse<Readable>, maxBytes: number, what: string, signal?: AbortSignal): Promise<T> {
    const header = res.headers['content-length'] as string | undefined;
    const declared = header === undefined ? undefined : Number(header);
    try {
      if (declared === 0 || res.status === 204) {
        await discard(res);
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

  /** Closes the kept-alive connections; calls in flight finish first. */
  close(): void {
    for (const a of this.agents) retireAgent(a);
  }
}
