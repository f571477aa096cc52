/**
 * Bandwidth limits as token buckets. A bucket refills at `bytesPerSecond` and holds at most a tenth of a second of
 * it, so a transfer that was idle cannot burst: the bytes flow evenly, chunk after chunk, as a node's queries want
 * its disk. Every transfer of a kind on the node takes from the same bucket, so the limit holds across all workers;
 * a job with its own lower limit takes from its bucket too, and each chunk waits for the slower of the two.
 *
 * A take never refuses: it books the bytes (the bucket may go below zero) and waits until the bucket is back at
 * zero. Concurrent takers therefore queue in the order they booked, and over any stretch of time no more than
 * `bytesPerSecond` × seconds + the small burst pass.
 */
import { Transform } from 'node:stream';
import type { Readable, TransformCallback } from 'node:stream';
import { sleep } from './sleep.js';

/** The most a full bucket holds, in seconds of its rate: the largest burst after a pause. */
const BURST_SECONDS = 0.1;

export class TokenBucket {
  private tokens: number;
  private last = performance.now();

  constructor(readonly bytesPerSecond: number) {
    this.tokens = this.capacity;
  }

  private get capacity(): number {
    return this.bytesPerSecond * BURST_SECONDS;
  }

  /** Books `n` bytes; returns how many ms to wait before sending them. */
  reserve(n: number): number {
    const now = performance.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) * this.bytesPerSecond) / 1000);
    this.last = now;
    this.tokens -= n;
    return this.tokens >= 0 ? 0 : (-this.tokens * 1000) / this.bytesPerSecond;
  }
}

/** The buckets a transfer takes from (the node's, a job's own), and a hook told how long each wait was. */
export class RateLimit {
  constructor(
    private readonly buckets: TokenBucket[],
    private readonly onWait?: (ms: number) => void,
  ) {}

  /** The limit in effect: the lowest of the buckets'. */
  get bytesPerSecond(): number {
    return Math.min(...this.buckets.map((b) => b.bytesPerSecond));
  }

  /** Waits until `n` more bytes may pass, or until `signal` aborts (the transfer's own abort then ends it). */
  async take(n: number, signal?: AbortSignal): Promise<void> {
    let ms = 0;
    for (const b of this.buckets) ms = Math.max(ms, b.reserve(n));
    if (ms <= 0) return;
    this.onWait?.(ms);
    await sleep(ms, signal);
  }
}

/** Lets bytes through as the limit allows. */
class Throttle extends Transform {
  constructor(
    private readonly limit: RateLimit,
    private readonly signal?: AbortSignal,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.limit.take(chunk.length, this.signal).then(() => cb(null, chunk), cb);
  }
}

/** `stream` slowed to `limit` (itself when there is none); an error of `stream` ends the result with it. */
export function limited(stream: Readable, limit: RateLimit | undefined, signal?: AbortSignal): Readable {
  if (!limit) return stream;
  const t = new Throttle(limit, signal);
  stream.on('error', (e) => t.destroy(e));
  t.on('close', () => stream.destroy());
  return stream.pipe(t);
}
