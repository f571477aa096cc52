/**
 * Every call the sidecar makes to Druid's own APIs (Coordinator, Overlord, Broker) goes through here: the basic-auth
 * credentials of druid.backup.druid.user/password, a timeout, no redirects (a non-leader Coordinator redirects to
 * the leader; credentials are not carried to a server this sidecar was not configured with), and an answer read with
 * a size limit, since whatever Druid sends back is input like any other.
 */
import type { Readable } from 'node:stream';
import axios from 'axios';
import { BackupError, messageOf } from '../errors.js';
import { readLimited } from '../util/limitedRead.js';

/** Druid's basic authentication (druid-basic-security): a user and its password. */
export interface DruidAuth {
  user: string;
  password: string;
}

export const DRUID_TIMEOUT_MS = 30_000;

export interface DruidAnswer {
  status: number;
  statusText: string;
  /** The body as Druid sent it (UTF-8). */
  text: string;
}

export function authorization(auth: DruidAuth | undefined): Record<string, string> {
  return auth ? { Authorization: `Basic ${Buffer.from(`${auth.user}:${auth.password}`, 'utf8').toString('base64')}` } : {};
}

/**
 * One call; resolves with any HTTP status (the caller decides what each means) and rejects only when no answer came
 * (connection refused, timeout, aborted) or the answer is larger than `limit` (`target_answer_too_large`).
 */
export async function druidCall(opts: {
  method: 'GET' | 'POST' | 'DELETE';
  url: string;
  auth?: DruidAuth;
  /** JSON: a value, or JSON text sent as it is (a config kept byte for byte as Druid wrote it). */
  body?: unknown;
  /** More headers, e.g. Druid's audit headers X-Druid-Author and X-Druid-Comment. */
  headers?: Record<string, string>;
  limit: number;
  what: string;
  signal?: AbortSignal;
  timeoutMs?: number;
}): Promise<DruidAnswer> {
  let res;
  try {
    res = await axios.request<Readable>({
      method: opts.method,
      url: opts.url,
      data: opts.body,
      headers: {
        Accept: 'application/json',
        ...(opts.body !== undefined ? { 'Content-Type': 'application/json' } : {}),
        ...opts.headers,
        ...authorization(opts.auth),
      },
      responseType: 'stream',
      timeout: opts.timeoutMs ?? DRUID_TIMEOUT_MS,
      signal: opts.signal,
      maxRedirects: 0,
      validateStatus: () => true,
      // Kept as bytes: the text is parsed by the caller, byte for byte as Druid wrote it.
      transformResponse: (d: unknown) => d,
    });
  } catch (e) {
    if (opts.signal?.aborted) throw e;
    throw new BackupError('target_unreachable', `${opts.what}: no answer from ${new URL(opts.url).origin} (${messageOf(e)})`);
  }
  const declared = Number(res.headers['content-length']);
  const buf = await readLimited(res.data, opts.limit, opts.what, Number.isFinite(declared) ? declared : undefined);
  return { status: res.status, statusText: res.statusText ?? '', text: buf.toString('utf8') };
}

/** `403 Forbidden`: a status as a short phrase, never the body (Druid's text is not put into our messages). */
export function statusPhrase(a: Pick<DruidAnswer, 'status' | 'statusText'>): string {
  return a.statusText ? `${a.status} ${a.statusText}` : `${a.status}`;
}
