/**
 * The job registry: backup, restore and verify jobs run here, whatever starts them. A job is created with a type,
 * a summary of the request that started it (bounded in bytes: a request naming 100,000 segments keeps the first
 * few and their count) and a run function; the run function gets a `JobContext` with an AbortSignal (set
 * by `DELETE /data/v1/jobs/{id}` or shutdown) and calls to report progress and per-segment errors. Every change is
 * published as a `job` event (throttled while bytes flow); the newest `HISTORY` jobs are kept in memory and in
 * `{stateDir}/jobs.json`, so a client can still read a job's outcome after the sidecar restarted. A job that was
 * running when the sidecar stopped is read back as failed, with the reason. The file is written on the thread pool,
 * changes of a moment coalesced into one write, so saving never stalls the server.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Job, JobProgress, JobState, JobType } from '../api.js';
import { BackupError, messageOf } from '../errors.js';
import { writeFileAtomicAsync } from '../util/atomic.js';
import type { EventBus } from './events.js';

/** Jobs kept (in memory and on disk) once finished. */
export const HISTORY = 200;
/** Per-job errors kept: a job over 100,000 segments against a dead target must not grow without bound. */
export const MAX_ERRORS = 1000;
/** Bytes of error messages kept per job (its count of failed segments stays exact). */
export const MAX_ERROR_BYTES = 64 * 1024;
/** What a job keeps of its request, in bytes of JSON. */
export const REQUEST_SUMMARY_BYTES = 4096;
/** A string in a request summary or an error is cut to this many characters (a segment id runs to 1024). */
const MAX_TEXT = 1100;
/** The history file is written at most this often. */
const PERSIST_DELAY_MS = 200;
/** Progress events of one job are published at most this often; state changes go out at once. */
const EVENT_INTERVAL_MS = 250;

export const JOB_ID_PATTERN = '^[a-z]+-[0-9a-z]+-[0-9a-f]{8}$';

export interface JobContext {
  readonly id: string;
  readonly signal: AbortSignal;
  readonly log: Logger;
  /** Sets the totals once the job knows what it will do. */
  setTotals(segments: number, bytes: number): void;
  /** Bytes moved (sent, received or verified), for the progress bar. */
  addBytes(n: number): void;
  /** The segment worked on now (undefined when between segments). */
  setCurrent(segmentId?: string): void;
  /** The bandwidth limit the job's transfers run under, shown in its progress. */
  setMaxBytesPerSecond(bytesPerSecond: number): void;
  segmentDone(outcome: 'done' | 'skipped'): void;
  segmentFailed(segmentId: string | undefined, message: string): void;
  /** An error that belongs to no one segment; the job ends as failed. */
  error(message: string): void;
  /** Throws `cancelled` when the job was cancelled, so loops stop between segments. */
  throwIfCancelled(): void;
}

/** What a job returns: put in `Job.result` (e.g. the bad segments of a verify job). */
export type JobRun = (ctx: JobContext) => Promise<Record<string, unknown> | void>;

export interface CreateJobOptions {
  type: JobType;
  request: Record<string, unknown>;
  target?: string;
  run: JobRun;
}

interface Entry {
  job: Job;
  abort: AbortController;
  done?: Promise<void>;
  lastEvent: number;
  eventTimer?: NodeJS.Timeout;
}

function clip(s: string): string {
  return s.length > MAX_TEXT ? `${s.slice(0, MAX_TEXT)}…` : s;
}

/** A value of a request as kept: strings cut, anything else kept when its JSON is short. */
function clipValue(v: unknown): { value: unknown; bytes: number } | undefined {
  const value = typeof v === 'string' ? clip(v) : v;
  const json = JSON.stringify(value);
  if (json === undefined || (typeof value !== 'string' && json.length > MAX_TEXT)) return undefined;
  return { value, bytes: Buffer.byteLength(json) };
}

/**
 * What a job keeps of its request: at most `maxBytes` of JSON. Scalars are kept (strings cut); a list keeps its
 * first items while room lasts, and `truncated` maps each list cut short to its full length, so a client can still
 * say "100,000 segments". A field too large to keep at all is named in `truncated` with -1.
 */
export function summarizeRequest(request: Record<string, unknown>, maxBytes = REQUEST_SUMMARY_BYTES): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const truncated: Record<string, number> = {};
  // Room held back for `truncated` itself: a few fields, each a name and a count.
  let room = maxBytes - 256;
  const entries = Object.entries(request);
  // Scalars first, so a long list cannot crowd out the data source or the target.
  entries.sort(([, a], [, b]) => Number(Array.isArray(a)) - Number(Array.isArray(b)));
  for (const [k, v] of entries) {
    const keyBytes = Buffer.byteLength(JSON.stringify(clip(k))) + 2;
    if (Array.isArray(v)) {
      const kept: unknown[] = [];
      let bytes = keyBytes + 2;
      for (const item of v) {
        const c = clipValue(item);
        if (!c || bytes + c.bytes + 1 > room) break;
        kept.push(c.value);
        bytes += c.bytes + 1;
      }
      out[clip(k)] = kept;
      room -= bytes;
      if (kept.length < v.length) truncated[clip(k)] = v.length;
      continue;
    }
    const c = clipValue(v);
    if (!c || keyBytes + c.bytes > room) {
      if (Object.keys(truncated).length < 8) truncated[clip(k)] = -1;
      continue;
    }
    out[clip(k)] = c.value;
    room -= keyBytes + c.bytes;
  }
  if (Object.keys(truncated).length) out.truncated = truncated;
  return out;
}

function emptyProgress(): JobProgress {
  return { segmentsTotal: 0, segmentsDone: 0, segmentsSkipped: 0, segmentsFailed: 0, bytesTotal: 0, bytesDone: 0 };
}

function isFinished(state: JobState): boolean {
  return state === 'succeeded' || state === 'failed' || state === 'cancelled';
}

export class JobRegistry {
  private readonly entries = new Map<string, Entry>();
  private readonly file?: string;
  private persistTimer?: NodeJS.Timeout;
  /** The write in flight, and whether a change came after it began (one more write follows). */
  private writing?: Promise<void>;
  private dirty = false;
  private closed = false;

  constructor(private readonly opts: { stateDir?: string; events: EventBus; log: Logger }) {
    if (opts.stateDir) {
      mkdirSync(opts.stateDir, { recursive: true });
      this.file = path.join(opts.stateDir, 'jobs.json');
      this.load();
    }
  }

  private load(): void {
    let jobs: Job[];
    try {
      jobs = JSON.parse(readFileSync(this.file!, 'utf8')) as Job[];
      if (!Array.isArray(jobs)) throw new Error('not a list of jobs');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
        this.opts.log.warn({ file: this.file, err: messageOf(e) }, 'job history unreadable; starting with none');
      return;
    }
    // Oldest first, so the map keeps creation order.
    for (const job of jobs.reverse()) {
      if (!job || typeof job.id !== 'string') continue;
      if (!isFinished(job.state)) {
        job.state = 'failed';
        job.finishedAt = job.finishedAt ?? new Date().toISOString();
        job.errors = [...(job.errors ?? []), { message: 'the sidecar stopped while this job ran; start it again' }];
      }
      this.entries.set(job.id, { job, abort: new AbortController(), lastEvent: 0 });
    }
  }

  /** Creates the job and starts it at once; the returned job is a snapshot. */
  create(o: CreateJobOptions): Job {
    if (this.closed) throw new BackupError('conflict', 'the sidecar is shutting down; no new jobs');
    const now = Date.now();
    const id = `${o.type}-${now.toString(36)}-${randomBytes(4).toString('hex')}`;
    const job: Job = {
      id,
      type: o.type,
      state: 'queued',
      target: o.target,
      request: summarizeRequest(o.request),
      progress: emptyProgress(),
      errors: [],
      createdAt: new Date(now).toISOString(),
    };
    const entry: Entry = { job, abort: new AbortController(), lastEvent: 0 };
    this.entries.set(id, entry);
    this.trim();
    this.changed(entry, true);
    entry.done = this.run(entry, o.run);
    return structuredClone(job);
  }

  private async run(entry: Entry, run: JobRun): Promise<void> {
    const { job, abort } = entry;
    const log = this.opts.log.child({ job: job.id, type: job.type });
    let fatal = false;
    let errorBytes = 0;
    let droppedNoted = false;
    /** Keeps an error while the job's count and bytes of errors allow; false when it was dropped. */
    const keepError = (segmentId: string | undefined, message: string): boolean => {
      const e = segmentId ? { segmentId: clip(segmentId), message: clip(message) } : { message: clip(message) };
      const bytes = (e.segmentId?.length ?? 0) + e.message.length + 32;
      if (job.errors.length >= MAX_ERRORS || errorBytes + bytes > MAX_ERROR_BYTES) return false;
      errorBytes += bytes;
      job.errors.push(e);
      return true;
    };
    const ctx: JobContext = {
      id: job.id,
      signal: abort.signal,
      log,
      setTotals: (segments, bytes) => {
        job.progress.segmentsTotal = segments;
        job.progress.bytesTotal = bytes;
        this.changed(entry, false);
      },
      addBytes: (n) => {
        job.progress.bytesDone += n;
        this.changed(entry, false);
      },
      setCurrent: (segmentId) => {
        job.progress.current = segmentId;
        this.changed(entry, false);
      },
      setMaxBytesPerSecond: (bytesPerSecond) => {
        job.progress.maxBytesPerSecond = bytesPerSecond;
        this.changed(entry, false);
      },
      segmentDone: (outcome) => {
        if (outcome === 'done') job.progress.segmentsDone++;
        else job.progress.segmentsSkipped++;
        this.changed(entry, false);
      },
      segmentFailed: (segmentId, message) => {
        job.progress.segmentsFailed++;
        // The log line goes with the kept error: 100,000 unknown ids must not write 100,000 lines while the loop waits.
        if (keepError(segmentId, message)) log.warn({ segmentId: clip(segmentId ?? ''), err: clip(message) }, 'segment failed');
        else if (!droppedNoted) {
          droppedNoted = true;
          log.warn({ kept: job.errors.length }, 'more segments failed: counted in the job, not kept or logged one by one');
        }
        this.changed(entry, false);
      },
      error: (message) => {
        fatal = true;
        keepError(undefined, message);
        this.changed(entry, false);
      },
      throwIfCancelled: () => {
        if (abort.signal.aborted) throw new BackupError('cancelled', 'the job was cancelled');
      },
    };
    // Let create() answer before the job does any work.
    await new Promise<void>((r) => setImmediate(r));
    if (abort.signal.aborted) {
      this.finish(entry, 'cancelled');
      return;
    }
    job.state = 'running';
    job.startedAt = new Date().toISOString();
    this.changed(entry, true);
    log.info({ request: job.request }, 'job started');
    try {
      const result = await run(ctx);
      if (result) job.result = result;
      this.finish(entry, abort.signal.aborted ? 'cancelled' : fatal || job.progress.segmentsFailed > 0 ? 'failed' : 'succeeded');
    } catch (e) {
      if (abort.signal.aborted) this.finish(entry, 'cancelled');
      else {
        // The reason the job failed is kept even when the errors before it filled the budget.
        if (job.errors.length < MAX_ERRORS) job.errors.push({ message: clip(messageOf(e)) });
        if (!(e instanceof BackupError)) log.error({ err: e }, 'job crashed');
        this.finish(entry, 'failed');
      }
    }
  }

  private finish(entry: Entry, state: JobState): void {
    const { job } = entry;
    job.state = state;
    job.progress.current = undefined;
    job.finishedAt = new Date().toISOString();
    this.opts.log.info({ job: job.id, state, progress: job.progress, errors: job.errors.length }, 'job finished');
    this.changed(entry, true);
  }

  private changed(entry: Entry, now: boolean): void {
    const publish = () => {
      entry.lastEvent = Date.now();
      entry.eventTimer = undefined;
      this.opts.events.publish({ type: 'job', job: structuredClone(entry.job) });
    };
    if (now) {
      clearTimeout(entry.eventTimer);
      publish();
      this.schedulePersist();
      return;
    }
    if (entry.eventTimer) return;
    const wait = EVENT_INTERVAL_MS - (Date.now() - entry.lastEvent);
    if (wait <= 0) publish();
    else entry.eventTimer = setTimeout(publish, wait);
  }

  /** Drops the oldest finished jobs beyond HISTORY. */
  private trim(): void {
    let excess = this.entries.size - HISTORY;
    for (const [id, e] of this.entries) {
      if (excess <= 0) break;
      if (isFinished(e.job.state)) {
        this.entries.delete(id);
        excess--;
      }
    }
  }

  /** A write soon; changes until then, or while a write runs, go into the next one. */
  private schedulePersist(): void {
    if (!this.file) return;
    if (this.writing) {
      this.dirty = true;
      return;
    }
    if (this.persistTimer) return;
    this.persistTimer = setTimeout(() => {
      this.persistTimer = undefined;
      void this.persist();
    }, PERSIST_DELAY_MS);
  }

  /** Writes the history on the thread pool; one write at a time, then one more if something changed meanwhile. */
  private persist(): Promise<void> {
    if (!this.file) return Promise.resolve();
    if (this.writing) {
      this.dirty = true;
      return this.writing;
    }
    this.dirty = false;
    const file = this.file;
    this.writing = writeFileAtomicAsync(file, JSON.stringify(this.list()))
      .catch((e) => this.opts.log.warn({ file, err: messageOf(e) }, 'cannot save the job history'))
      .finally(() => {
        this.writing = undefined;
        if (this.dirty && !this.closed) this.schedulePersist();
      });
    return this.writing;
  }

  /** Newest first; optionally only jobs of one type or state. */
  list(filter: { type?: JobType; state?: JobState } = {}): Job[] {
    const out: Job[] = [];
    for (const e of this.entries.values()) {
      if (filter.type && e.job.type !== filter.type) continue;
      if (filter.state && e.job.state !== filter.state) continue;
      out.push(structuredClone(e.job));
    }
    return out.reverse();
  }

  get(id: string): Job | undefined {
    const e = this.entries.get(id);
    return e ? structuredClone(e.job) : undefined;
  }

  /** Asks the job to stop; it ends as `cancelled` once its run function returns. Cancelling a finished job changes nothing. */
  cancel(id: string): Job {
    const e = this.entries.get(id);
    if (!e) throw new BackupError('not_found', `no job ${id}`);
    if (!isFinished(e.job.state)) e.abort.abort(new BackupError('cancelled', 'the job was cancelled'));
    return structuredClone(e.job);
  }

  /** Resolves when the job has finished (for tests and shutdown). */
  async wait(id: string): Promise<Job | undefined> {
    await this.entries.get(id)?.done;
    return this.get(id);
  }

  /** Cancels every running job, waits for them to stop (at most `timeoutMs`) and saves the history. */
  async close(timeoutMs = 5000): Promise<void> {
    this.closed = true;
    const running = [...this.entries.values()].filter((e) => !isFinished(e.job.state));
    for (const e of running) e.abort.abort(new BackupError('cancelled', 'the sidecar is shutting down'));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(running.map((e) => e.done)), new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
    for (const e of this.entries.values()) clearTimeout(e.eventTimer);
    clearTimeout(this.persistTimer);
    this.persistTimer = undefined;
    await this.writing;
    await this.persist();
  }
}
