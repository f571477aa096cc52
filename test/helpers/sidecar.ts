/**
 * Test helpers for real sidecar processes (dist/sidecar.js, built by `npm run build`): start one on a free port
 * and wait until it answers, call its API with the token, read its metrics, stop or kill it. Every process
 * started here is killed when the test process exits, also after a failure.
 *
 *   const target = await startSidecar(['--store', storeDir]);
 *   const source = await startSidecar(['--config', props, '--target', target.url], { token: target.token });
 *   const r = await source.request('POST', '/data/v1/backup', { target: target.url });
 *   await source.stop();
 */
import './exitPromptly.js';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Job } from '../../sidecar/api.js';
import { SIDECAR_JS } from './cli.js';
import { NODE_FLAGS } from '../../sidecar/runtime.js';

export { SIDECAR_JS };

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

export function tmpDir(prefix = 'dbk-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function newToken(): string {
  return `test-${randomBytes(16).toString('hex')}`;
}

export interface ApiResponse<T = unknown> {
  status: number;
  headers: Headers;
  /** The body parsed as JSON when it is JSON, else undefined. */
  json: T;
  text: string;
}

export interface RequestOptions {
  headers?: Record<string, string>;
  /** Overrides the sidecar's token; `null` sends no Authorization header. */
  token?: string | null;
  /** A raw body (string or bytes) instead of JSON. */
  raw?: string | Buffer | Uint8Array;
}

/** One HTTP call; never throws for an error status. */
export async function request<T = unknown>(
  baseUrl: string,
  token: string | null,
  method: string,
  urlPath: string,
  body?: unknown,
  opts: RequestOptions = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  const tok = opts.token !== undefined ? opts.token : token;
  if (tok) headers.authorization = `Bearer ${tok}`;
  let payload: string | Buffer | Uint8Array | undefined = opts.raw;
  if (body !== undefined && payload === undefined) {
    payload = JSON.stringify(body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(baseUrl + urlPath, { method, headers, body: payload as RequestInit['body'] });
  const text = method === 'HEAD' ? '' : await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, json: json as T, text };
}

/** Polls `fn` until it returns a truthy value; fails with `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, fn: () => Promise<T> | T, timeoutMs = 20_000, intervalMs = 100): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** The sum of a metric's samples in Prometheus text, optionally only those with the given labels. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== ' ' && line[name.length] !== '{')) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

export interface StartOptions {
  /** The token to pass with --token; `null` passes none, so the sidecar generates one into {stateDir}/token. */
  token?: string | null;
  /** Port to listen on (default 0: a free one). */
  port?: number;
  /** State directory (default: a new temporary one). */
  stateDir?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Fast defaults for tests: settle time 200 ms, retry backoff capped at 1 s. Set false for production defaults. */
  fast?: boolean;
  timeoutMs?: number;
  /** Node.js flags before sidecar.js (default: NODE_FLAGS, the ones every launcher gives it). */
  nodeFlags?: readonly string[];
  /** Targets requests may name besides the configured ones (--allowed-targets); `['*']` allows any. */
  allowedTargets?: string[];
}

export class SidecarProcess {
  private out = '';
  private err = '';
  url = '';
  port = 0;
  readonly exited: Promise<number | null>;

  constructor(
    readonly proc: ChildProcess,
    public token: string,
    readonly stateDir: string,
    readonly args: string[],
  ) {
    proc.stdout!.on('data', (d) => (this.out += d));
    proc.stderr!.on('data', (d) => (this.err += d));
    this.exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))));
    void this.exited.then(() => running.delete(proc));
  }

  /** stdout (JSON log lines) and stderr so far. */
  logs(): string {
    return this.out + this.err;
  }

  /** Parsed JSON log lines. */
  logLines(): Array<Record<string, unknown>> {
    return this.out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          return {};
        }
      });
  }

  get stdout(): string {
    return this.out;
  }

  get stderr(): string {
    return this.err;
  }

  request<T = unknown>(method: string, urlPath: string, body?: unknown, opts: RequestOptions = {}): Promise<ApiResponse<T>> {
    return request<T>(this.url, this.token, method, urlPath, body, opts);
  }

  /** GET that must answer 200; returns the JSON. */
  async get<T = unknown>(urlPath: string): Promise<T> {
    const r = await this.request<T>('GET', urlPath);
    if (r.status !== 200) throw new Error(`GET ${urlPath}: ${r.status} ${r.text}`);
    return r.json;
  }

  async metrics(): Promise<string> {
    const r = await this.request('GET', '/metrics');
    if (r.status !== 200) throw new Error(`GET /metrics: ${r.status}`);
    return r.text;
  }

  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    return metricValue(await this.metrics(), name, labels);
  }

  /** Waits for a job to finish and returns it. */
  /** Polls the job every `intervalMs` (the benchmarks poll often, so that their times are the job's, not the poll's). */
  async waitForJob(jobId: string, timeoutMs = 60_000, intervalMs = 100): Promise<Job> {
    return waitFor(
      `job ${jobId}`,
      async () => {
        const job = await this.get<Job>(`/data/v1/jobs/${jobId}`);
        return ['succeeded', 'failed', 'cancelled'].includes(job.state) ? job : undefined;
      },
      timeoutMs,
      intervalMs,
    );
  }

  /** Sends a signal (SIGTERM by default) and waits for the exit code. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<number | null> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return this.exited;
    this.proc.kill(signal);
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }

  /** kill -9: no chance to save anything. */
  async kill9(): Promise<void> {
    await this.stop('SIGKILL');
  }
}

/**
 * Starts `dist/sidecar.js sidecar ...args` on loopback and resolves once it logged its URL and answers
 * `/status/health`. Adds `--port`, `--bind 127.0.0.1`, `--token` and `--state-dir` unless `args` has them.
 */
export async function startSidecar(args: string[], opts: StartOptions = {}): Promise<SidecarProcess> {
  const token = opts.token === null ? '' : (opts.token ?? newToken());
  const has = (flag: string) => args.includes(flag);
  const stateDir = opts.stateDir ?? tmpDir('dbk-state-');
  const full = ['sidecar', ...args];
  if (!has('--port')) full.push('--port', String(opts.port ?? 0));
  if (!has('--bind')) full.push('--bind', '127.0.0.1');
  if (token && !has('--token') && !has('--token-file')) full.push('--token', token);
  if (!has('--state-dir')) full.push('--state-dir', stateDir);
  if (opts.allowedTargets && !has('--allowed-targets')) full.push('--allowed-targets', JSON.stringify(opts.allowedTargets));
  const fast = opts.fast === false ? {} : { DRUID_BACKUP_SETTLE_TIME: 'PT0.2S', DRUID_BACKUP_RETRY_MAX_DELAY: 'PT1S' };
  const proc = spawn(process.execPath, [...(opts.nodeFlags ?? NODE_FLAGS), SIDECAR_JS, ...full], {
    cwd: opts.cwd,
    env: { ...process.env, ...fast, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(proc);
  const sc = new SidecarProcess(proc, token, stateDir, args);
  let exitCode: number | null | undefined;
  void sc.exited.then((c) => (exitCode = c));
  try {
    const listening = await waitFor(
      'the sidecar to log its URL',
      () => {
        if (exitCode !== undefined) throw new Error(`sidecar exited with ${exitCode} before listening:\n${sc.logs()}`);
        return sc.logLines().find((l) => l.msg === 'sidecar listening');
      },
      opts.timeoutMs ?? 20_000,
      25,
    );
    sc.url = String(listening.url);
    sc.port = Number(listening.port);
    if (!token && typeof listening.tokenFile === 'string') sc.token = readFileSync(listening.tokenFile, 'utf8').trim();
    await waitFor('/status/health', async () => (await request(sc.url, null, 'GET', '/status/health')).status === 200, 10_000, 25);
    return sc;
  } catch (e) {
    proc.kill('SIGKILL');
    throw e instanceof Error && exitCode !== undefined ? e : new Error(`${String(e)}\n${sc.logs()}`);
  }
}
