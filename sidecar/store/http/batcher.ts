/**
 * The http target's batches of small segments (batch.ts has the wire format): a small segment's `put` waits a
 * moment in a queue; the puts that arrive together (the sender runs up to SMALL_GROUP small segments per worker at
 * once) go as one `POST /data/v1/store/batch`, and each `put` settles with its own segment's outcome, as a single
 * PUT's would. A target that does not say it takes batches (its stats carry no `batch`, an older sidecar) gets
 * single PUTs; one that stops taking them (404) is sent the same segments again one by one.
 */
import { Readable } from 'node:stream';
import { packSegment } from '../../archive/pack.js';
import type { PackedSegment } from '../../archive/pack.js';
import { BackupError } from '../../errors.js';
import { ANSWER_LIMITS } from '../../util/limitedRead.js';
import { segmentDigest } from '../manifest.js';
import type { OutgoingSegment, PutResult, StoreStats, TransferOptions } from '../target.js';
import type { BatchLimits, BatchOutcome } from './batch.js';
import { BATCH_CONTENT_TYPE, BATCH_MAX_BYTES, BATCH_MAX_SEGMENTS, BATCH_PATH, encodeBatchHeader } from './batch.js';
import type { ApiClient } from './client.js';
import { IdleWatchdog, discard, errorFromFailure, errorFromResponse, errorOfAnswer } from './client.js';
import { NODE_HEADER } from './target.js';
import { API_PREFIX } from '../../api.js';

/** Pieces of a batch's body smaller than this are joined into writes of about this size. */
const JOIN_BYTES = 64 * 1024;
/** How long the first small put waits for others to join its batch: the sender's group arrives within it. */
const GATHER_MS = 2;

interface Member {
  segment: OutgoingSegment;
  opts: TransferOptions;
  packed: PackedSegment;
  /** Aborts the member's reads when its batch is abandoned. */
  abort: AbortController;
  /** The error of the member's own files (read while the batch went out), which is its alone. */
  failed?: unknown;
  touch?: () => void;
  resolve(r: PutResult): void;
  reject(e: unknown): void;
}

const OUTCOMES = new Set(['stored', 'identical', 'conflict', 'refused']);

export class PutBatcher {
  private limits?: Promise<BatchLimits | undefined>;
  private queue: Member[] = [];
  private bytes = 0;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly client: ApiClient,
    /** The single PUT, for a target without batches and for a segment alone. */
    private readonly single: (segment: OutgoingSegment, opts: TransferOptions) => Promise<PutResult>,
  ) {}

  /** Sends a small segment: in a batch when the target takes batches, else by a single PUT. */
  async put(segment: OutgoingSegment, opts: TransferOptions): Promise<PutResult> {
    const limits = await this.limitsOf(opts.signal);
    if (!limits) return this.single(segment, opts);
    const abort = new AbortController();
    let m!: Member;
    const packed = packSegment(segment, {
      signal: abort.signal,
      onBytes: (n) => {
        m.touch?.();
        opts.onBytes?.(n);
      },
    });
    if (packed.length > limits.maxBytes) return this.single(segment, opts);
    return new Promise<PutResult>((resolve, reject) => {
      m = { segment, opts, packed, abort, resolve, reject };
      const first = this.queue[0];
      if (first && (first.segment.node !== segment.node || this.queue.length >= limits.maxSegments || this.bytes + packed.length > limits.maxBytes))
        this.flush();
      this.queue.push(m);
      this.bytes += packed.length;
      if (this.queue.length >= limits.maxSegments) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), GATHER_MS);
    });
  }

  /** Sends what waits now (the client is closing). */
  close(): void {
    if (this.queue.length) this.flush();
  }

  /**
   * The target's batch limits, asked once (its stats); those it advertises are input: anything but sane numbers
   * means no batches, and no more than this side's own limits are used.
   */
  private limitsOf(signal?: AbortSignal): Promise<BatchLimits | undefined> {
    this.limits ??= this.client.get<StoreStats>(`${API_PREFIX}/store/stats`, undefined, signal, ANSWER_LIMITS.small).then(
      (s) => {
        const b = s?.batch;
        if (!b || !Number.isSafeInteger(b.maxSegments) || !Number.isSafeInteger(b.maxBytes) || b.maxSegments < 2 || b.maxBytes < 1) return undefined;
        return { maxSegments: Math.min(b.maxSegments, BATCH_MAX_SEGMENTS), maxBytes: Math.min(b.maxBytes, BATCH_MAX_BYTES) };
      },
      () => {
        // Not known yet (the target is down or the call was cancelled): asked again by the next put.
        this.limits = undefined;
        return undefined;
      },
    );
    return this.limits;
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const members = this.queue;
    this.queue = [];
    this.bytes = 0;
    void this.send(members);
  }

  /** Sends each member by a single PUT (a batch of one, or a target that no longer takes batches). */
  private resend(members: Member[]): void {
    for (const m of members) {
      m.abort.abort();
      this.single(m.segment, m.opts).then(m.resolve, m.reject);
    }
  }

  private async send(all: Member[]): Promise<void> {
    const members: Member[] = [];
    for (const m of all) {
      if (m.opts.signal?.aborted) {
        m.abort.abort();
        m.reject(errorFromFailure(new Error('aborted'), this.client.baseUrl, m.opts.signal));
      } else members.push(m);
    }
    if (members.length <= 1) return this.resend(members);
    const url = this.client.baseUrl;
    const watchdog = new IdleWatchdog(this.client.idleTimeoutMs, `sending a batch of ${members.length} segments to ${url}`);
    const stop = () => {
      for (const m of members) m.abort.abort(watchdog.signal.reason);
    };
    watchdog.signal.addEventListener('abort', stop, { once: true });
    for (const m of members) m.touch = () => watchdog.touch();
    const header = encodeBatchHeader(members.map((m) => ({ segmentId: m.segment.segmentId, length: m.packed.length })));
    // The small pieces of the segments' tars (headers, small files, padding) go out joined, up to JOIN_BYTES at a
    // time: written one by one, each was a socket write of its own (the source's profile).
    async function* body(): AsyncGenerator<Buffer> {
      let held: Buffer[] = [header];
      let heldBytes = header.length;
      const joined = (): Buffer => {
        const b = Buffer.concat(held, heldBytes);
        held = [];
        heldBytes = 0;
        return b;
      };
      for (const m of members) {
        try {
          for await (const chunk of m.packed.stream as AsyncIterable<Buffer>) {
            if (chunk.length >= JOIN_BYTES) {
              if (held.length) yield joined();
              yield chunk;
            } else {
              held.push(chunk);
              heldBytes += chunk.length;
              if (heldBytes >= JOIN_BYTES) yield joined();
            }
          }
        } catch (e) {
          m.failed = e;
          throw e;
        }
      }
      if (held.length) yield joined();
    }
    try {
      const res = await this.client.raw<Readable>({
        method: 'POST',
        url: BATCH_PATH,
        data: Readable.from(body(), { objectMode: false }),
        headers: {
          'content-type': BATCH_CONTENT_TYPE,
          'content-length': String(members.reduce((n, m) => n + m.packed.length, header.length)),
          [NODE_HEADER]: members[0]!.segment.node,
        },
        responseType: 'stream',
        signal: watchdog.signal,
        // Bounded by the idle watchdog, as a single upload.
        timeout: 0,
      });
      if (res.status === 404) {
        await discard(res);
        this.limits = Promise.resolve(undefined);
        return this.resend(members);
      }
      if (res.status !== 200) throw await errorFromResponse(res, url);
      const answer = await this.client.readJson<{ results?: unknown }>(res, ANSWER_LIMITS.manifest, `the answer of ${url} to a batch upload`, watchdog.signal);
      const results = answer?.results;
      if (!Array.isArray(results) || results.length !== members.length)
        throw new BackupError('target_error', `${url} answered a batch of ${members.length} segments without one outcome for each`);
      const settled: Array<() => Promise<void>> = [];
      for (const [i, m] of members.entries()) {
        const r = results[i] as Partial<BatchOutcome> | null;
        if (!r || r.segmentId !== m.segment.segmentId || !OUTCOMES.has(String(r.outcome)))
          throw new BackupError('target_error', `${url} answered a batch with outcome ${i} not that of ${m.segment.segmentId}`);
        settled.push(async () => {
          if (r.outcome === 'refused') {
            const { status, error } = r as Partial<Extract<BatchOutcome, { outcome: 'refused' }>>;
            return m.reject(errorOfAnswer(Number.isSafeInteger(status) ? status! : 502, error?.code, undefined, url));
          }
          const files = await m.packed.files;
          m.resolve({ outcome: r.outcome as PutResult['outcome'], files, digest: segmentDigest(files), bytes: files.reduce((n, f) => n + f.size, 0) });
        });
      }
      for (const s of settled) await s();
    } catch (e) {
      stop();
      // A member whose own files failed (grown, gone) broke the batch: it gets its error, the others go again alone.
      const culprits = members.filter((m) => m.failed !== undefined);
      if (culprits.length && !watchdog.signal.aborted) {
        for (const m of culprits) m.reject(m.failed);
        return this.resend(members.filter((m) => m.failed === undefined));
      }
      const err = errorFromFailure(e, url, watchdog.signal);
      for (const m of members) m.reject(err);
    } finally {
      watchdog.stop();
      watchdog.signal.removeEventListener('abort', stop);
    }
  }
}
