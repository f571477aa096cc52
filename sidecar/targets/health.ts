/**
 * What this node knows of each target it uses, kept per URL so every target list (the configured one and those
 * named in requests) shares it: a circuit breaker, a rolling round-trip time from real requests, and the target's
 * last stats (free bytes and quota, from `GET /data/v1/store/stats`).
 *
 * Circuit: a target that does not answer (or answers 5xx three times running) is opened: skipped until
 * `retryAt`, then probed once (half-open); an answer closes it, a failure opens it again for twice as long, up to
 * `druid.backup.retryMaxDelay`. Closing after an open circuit is news: segments short of copies go again.
 */
import { BackupError, isBackupError, messageOf } from '../errors.js';
import { cannotTakeBackups, isTargetFault } from './faults.js';
import type { StoreStats, Target, TransferOptions } from '../store/target.js';

const FIRST_BACKOFF_MS = 1000;
/** Failures other than "does not answer" (5xx, timeouts of one call) open the circuit after this many in a row. */
const FAILURES_TO_OPEN = 3;
/** Weight of a new round-trip sample in the rolling average. */
const RTT_ALPHA = 0.3;
/** Stats older than this are fetched again before a choice. */
export const STATS_TTL_MS = 5000;
const PROBE_TIMEOUT_MS = 5000;

export type CircuitState = 'closed' | 'open' | 'half-open';

export class TargetHealth {
  circuit: CircuitState = 'closed';
  failures = 0;
  lastError?: string;
  lastErrorAt?: number;
  retryAt = 0;
  private backoffMs = FIRST_BACKOFF_MS;
  rttMs?: number;
  rttSamples = 0;
  stats?: StoreStats;
  statsAt = 0;
  /** The stats answer made no sense: not used until it answers sensibly. */
  statsProblem?: string;
  /** Bytes on their way to it now. */
  inFlightBytes = 0;
  /** Bytes this process sent it. */
  sentBytes = 0;
  /** The last choice it took part in. */
  lastChoice?: { segmentId: string; chosen: boolean; reason: string; at: string };
  private probing?: Promise<void>;

  constructor(
    readonly target: Target,
    private readonly maxBackoffMs: number,
    private readonly onRecovered: (h: TargetHealth) => void,
  ) {}

  get url(): string {
    return this.target.url;
  }

  /** Usable now: circuit closed, or open with its wait over (the next call is the probe). */
  get available(): boolean {
    return !this.statsProblem && (this.circuit === 'closed' || Date.now() >= this.retryAt);
  }

  /** Why it is skipped, when it is. */
  get down(): string | undefined {
    if (this.statsProblem) return `answers nonsense stats (${this.statsProblem})`;
    if (this.circuit === 'closed' || Date.now() >= this.retryAt) return undefined;
    return `down: ${this.lastError ?? 'failed'}; next try in ${Math.ceil((this.retryAt - Date.now()) / 1000)} s`;
  }

  /** Free bytes left for new segments, as last reported (quota and disk). */
  get freeBytes(): number | undefined {
    return this.stats?.freeBytes;
  }

  rtt(ms: number): void {
    this.rttMs = this.rttMs === undefined ? ms : this.rttMs + RTT_ALPHA * (ms - this.rttMs);
    this.rttSamples++;
  }

  succeeded(): void {
    const wasOpen = this.circuit !== 'closed';
    this.circuit = 'closed';
    this.failures = 0;
    this.backoffMs = FIRST_BACKOFF_MS;
    if (wasOpen) this.onRecovered(this);
  }

  /** A call failed; returns true when the failure is the target's (it counts towards opening the circuit). */
  failed(e: unknown): boolean {
    if (!isTargetFault(e)) return false;
    this.lastError = messageOf(e).slice(0, 300);
    this.lastErrorAt = Date.now();
    this.failures++;
    const unreachable = isBackupError(e) && e.code === 'target_unreachable';
    if (this.circuit !== 'closed' || unreachable || this.failures >= FAILURES_TO_OPEN) {
      if (this.circuit !== 'closed') this.backoffMs = Math.min(this.backoffMs * 2, this.maxBackoffMs);
      this.circuit = 'open';
      this.retryAt = Date.now() + this.backoffMs;
    }
    return true;
  }

  /** Runs a small call (no segment bytes): its duration is a round-trip sample, its outcome feeds the circuit. */
  async call<T>(fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    if (this.circuit === 'open' && Date.now() >= this.retryAt) this.circuit = 'half-open';
    try {
      const v = await fn();
      this.rtt(performance.now() - t0);
      this.succeeded();
      return v;
    } catch (e) {
      this.failed(e);
      throw e;
    }
  }

  /** Runs a transfer: its outcome feeds the circuit; its duration says nothing of latency. */
  async transfer<T>(bytes: number, fn: () => Promise<T>): Promise<T> {
    if (this.circuit === 'open' && Date.now() >= this.retryAt) this.circuit = 'half-open';
    this.inFlightBytes += bytes;
    try {
      const v = await fn();
      this.succeeded();
      this.sentBytes += bytes;
      if (this.stats) this.stats = { ...this.stats, freeBytes: Math.max(0, this.stats.freeBytes - bytes) };
      return v;
    } catch (e) {
      this.failed(e);
      throw e;
    } finally {
      this.inFlightBytes -= bytes;
    }
  }

  /** Fetches the stats (the health check): when stale, or always with `force`. Never throws. */
  refresh(force = false, opts: TransferOptions = {}): Promise<void> {
    // An open circuit is probed once its wait is over; a closed one when its stats are stale.
    const due = this.circuit !== 'closed' ? Date.now() >= this.retryAt : Date.now() - this.statsAt >= STATS_TTL_MS;
    if (!force && !due) return Promise.resolve();
    this.probing ??= (async () => {
      try {
        const signal = opts.signal ? AbortSignal.any([opts.signal, AbortSignal.timeout(PROBE_TIMEOUT_MS)]) : AbortSignal.timeout(PROBE_TIMEOUT_MS);
        const s = await this.call(() => this.target.stats({ signal }));
        this.statsProblem = statsProblem(s);
        this.stats = this.statsProblem ? undefined : s;
      } catch {
        // Counted by call(); the circuit says the rest.
      } finally {
        this.statsAt = Date.now();
        this.probing = undefined;
      }
    })();
    return this.probing;
  }

  /** Checks the target answers sensible stats now, or throws a clear error naming it (requests that name targets). */
  async check(opts: TransferOptions = {}): Promise<StoreStats> {
    let s: StoreStats;
    try {
      s = await this.call(() => this.target.stats(opts));
    } catch (e) {
      throw cannotTakeBackups(this.url, e);
    } finally {
      this.statsAt = Date.now();
    }
    this.statsProblem = statsProblem(s);
    if (this.statsProblem) throw new BackupError('target_error', `target ${this.url} answers nonsense stats (${this.statsProblem}); nothing was sent to it`);
    this.stats = s;
    return s;
  }
}

function isCount(v: unknown): boolean {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** A value of a target's answer in a message: a number as it is, anything else by its type (never its text). */
function shownValue(v: unknown): string {
  if (typeof v === 'number') return String(v);
  return v === null ? 'null' : Array.isArray(v) ? 'a list' : `a ${typeof v}`;
}

/** What is wrong with a stats answer, or undefined when it makes sense. */
export function statsProblem(s: unknown): string | undefined {
  if (!s || typeof s !== 'object' || Array.isArray(s)) return 'not a JSON object';
  const o = s as Record<string, unknown>;
  for (const k of ['segments', 'bytes', 'freeBytes'] as const) if (!isCount(o[k])) return `${k} is ${shownValue(o[k])}, not a whole number ≥ 0`;
  if (o.quotaBytes !== undefined && !isCount(o.quotaBytes)) return `quotaBytes is ${shownValue(o.quotaBytes)}`;
  if (o.quotaBytes !== undefined && (o.bytes as number) > (o.quotaBytes as number) * 2 + 1024 ** 3)
    return `it holds ${o.bytes as number} bytes with a quota of ${o.quotaBytes as number}`;
  return undefined;
}
