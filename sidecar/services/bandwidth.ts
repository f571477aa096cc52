/**
 * The node's bandwidth limits (druid.backup.maxBytesPerSecond for backup, druid.backup.restore.maxBytesPerSecond
 * for restore; both off by default), shared by every transfer of their kind on the node: active backup, backup
 * and restore jobs, automatic restore. A job may ask for a lower limit of its own, never a higher one.
 */
import { BackupError } from '../errors.js';
import { RateLimit, TokenBucket } from '../util/rateLimit.js';
import type { Metrics } from './metrics.js';

export type Direction = 'backup' | 'restore';
const DIRECTIONS: Direction[] = ['backup', 'restore'];
const KEYS: Record<Direction, string> = { backup: 'druid.backup.maxBytesPerSecond', restore: 'druid.backup.restore.maxBytesPerSecond' };

export class Bandwidth {
  private readonly node: Partial<Record<Direction, TokenBucket>> = {};

  constructor(
    limits: Partial<Record<Direction, number>>,
    private readonly metrics: Metrics,
  ) {
    for (const d of DIRECTIONS) {
      const rate = limits[d];
      if (rate) this.node[d] = new TokenBucket(rate);
      metrics.maxBytesPerSecond.set({ direction: d }, rate ?? 0);
    }
  }

  /** The node's limits in bytes per second, null when off (GET /data/v1/node). */
  limits(): Record<Direction, number | null> {
    return { backup: this.node.backup?.bytesPerSecond ?? null, restore: this.node.restore?.bytesPerSecond ?? null };
  }

  /**
   * The limit transfers of `direction` run under: the node's, and a job's own `asked` one besides (each chunk waits
   * for the slower). Undefined when neither is set. Refuses (400) an `asked` limit above the node's.
   */
  limit(direction: Direction, asked?: number): RateLimit | undefined {
    const node = this.node[direction];
    if (asked !== undefined) {
      if (!Number.isSafeInteger(asked) || asked < 1)
        throw new BackupError('bad_request', 'maxBytesPerSecond must be a whole number of bytes per second, at least 1');
      if (node && asked > node.bytesPerSecond)
        throw new BackupError(
          'bad_request',
          `maxBytesPerSecond ${asked} is above this node's ${direction} limit of ${node.bytesPerSecond} bytes per second (${KEYS[direction]}); a job may ask for a lower limit, never a higher one`,
        );
    }
    const buckets = [...(asked !== undefined ? [new TokenBucket(asked)] : []), ...(node ? [node] : [])];
    if (buckets.length === 0) return undefined;
    return new RateLimit(buckets, (ms) => this.metrics.throttledSeconds.inc({ direction }, ms / 1000));
  }
}
