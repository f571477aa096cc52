/**
 * Backs up one segment to a target, sending bytes only when the target lacks them:
 * - the target does not hold the segment: one PUT, the files read once and hashed as they stream;
 * - it holds it: the local digest (cached by file fingerprint, else computed by reading the files) is compared
 *   with the target's; identical costs no transfer (at most a call recording this node as another source);
 *   different bytes are sent so the target flags the replica as a conflict.
 * The digests read are remembered, so the next pass over an unchanged segment reads nothing.
 */
import path from 'node:path';
import type { Logger } from 'pino';
import type { CachedSegment } from '../druid/scan.js';
import { BackupError } from '../errors.js';
import type { Metrics } from '../services/metrics.js';
import { hashOutgoing, segmentDigest } from '../store/manifest.js';
import type { SegmentFileInfo } from '../store/manifest.js';
import type { OutgoingSegment, StoredSummary, Target } from '../store/target.js';
import { GROUPS_PER_WORKER, SMALL_GROUP, SMALL_SEGMENT_BYTES } from '../store/target.js';
import type { RateLimit } from '../util/rateLimit.js';
import { limited } from '../util/rateLimit.js';
import { SMALL_READ_BYTES, readFileForSending, readSmallFile } from '../util/readStream.js';
import type { SourceState } from './state.js';

/**
 * Segments below SMALL_SEGMENT_BYTES are sent several at once by one worker, up to SMALL_GROUP of them: a small
 * segment's transfer is mostly waits on the target's disk (its files and manifest made durable before the rename
 * that makes it visible), and uploads committed together share those flushes, so a group costs about what one
 * segment does (bench/backup.ts, the first backup of 10,000 small segments). The puts of small segments that run at
 * once reach a target sidecar that takes batches as one request, committed together (store/http/batcher.ts). A
 * group is as large as a batch may be (BATCH_MAX_SEGMENTS, store/http/batch.ts), so each group is a batch of its
 * own: measured on the first backup of 10,000 small segments, 14.3 s at 64 a group against 21.2 s at 16.
 *
 * A backup job's worker sends one large segment or GROUPS_PER_WORKER groups of small ones at once
 * (backup/passive.ts): while one group's batch is committed on the target (two flushes of its filesystem, 7-35 ms
 * each), the next is read and sent. With two workers that is four batches in flight, at most 8 MiB each; large
 * segments still go two at a time (docs/performance.md).
 */
export { GROUPS_PER_WORKER, SMALL_GROUP, SMALL_SEGMENT_BYTES };

/** The part of a worker a segment's transfer takes, in 1/SMALL_GROUP of a worker: 1 for a small one, a whole worker else. */
export function workerShare(size: number): number {
  return size < SMALL_SEGMENT_BYTES ? 1 : SMALL_GROUP;
}

export type SendOutcome = 'stored' | 'identical' | 'source-added' | 'conflict';

export interface SendResult {
  outcome: SendOutcome;
  digest: string;
  /** Bytes of segment files sent (0 unless stored or conflict). */
  bytesSent: number;
}

export interface SendDeps {
  target: Target;
  node: string;
  state: SourceState;
  metrics: Metrics;
  log: Logger;
}

export interface SendOptions {
  signal?: AbortSignal;
  onBytes?: (n: number) => void;
  /** What the target holds, when already known from a catalog listing: null = not held. */
  remote?: StoredSummary | null;
  /** The bandwidth limit every read of the segment's files runs under. */
  limit?: RateLimit;
}

/** The segment as it goes out, with its digests read at most once (remembered by fingerprint for the next pass). */
function outgoing(seg: CachedSegment, deps: SendDeps, opts: SendOptions): OutgoingSegment {
  const out: OutgoingSegment = {
    segmentId: seg.id,
    descriptor: seg.descriptor ?? null,
    node: deps.node,
    files: seg.files.map((f) => {
      const file = path.join(seg.dir, f.name);
      return {
        name: f.name,
        size: f.size,
        path: file,
        open: () => limited(readFileForSending(file, f.size), opts.limit, opts.signal),
        ...(f.size <= SMALL_READ_BYTES && !opts.limit ? { readSmall: () => readSmallFile(file, f.size) } : {}),
      };
    }),
  };
  let known: Promise<SegmentFileInfo[]> | undefined;
  out.digests = (signal) =>
    (known ??= (async () => {
      const cached = deps.state.cachedDigests(seg);
      if (cached) return cached;
      const files = await hashOutgoing(out, signal);
      deps.metrics.segmentsHashed.inc();
      deps.state.setDigests(seg, files);
      return files;
    })());
  return out;
}

export async function sendSegment(seg: CachedSegment, deps: SendDeps, opts: SendOptions = {}): Promise<SendResult> {
  if (seg.state !== 'complete') throw new BackupError('conflict', `segment ${seg.id} is ${seg.state}, not complete`);
  const { target, node, state } = deps;
  const out = outgoing(seg, deps, opts);
  // "Already held?" is decided once per segment: by the catalog listing when given, else by the target's put when it
  // decides that itself (a set asks each member there), else by one HEAD here.
  const remote = opts.remote !== undefined ? opts.remote : target.putDecidesHeld ? null : await target.head(seg.id, { signal: opts.signal });
  if (remote) {
    const files = await out.digests!(opts.signal);
    const digest = segmentDigest(files);
    if (digest === remote.digest) {
      if (remote.sources.includes(node)) return { outcome: 'identical', digest, bytesSent: 0 };
      const outcome = await target.addSource(seg.id, node, digest, { signal: opts.signal });
      if (outcome === 'identical') return { outcome: 'source-added', digest, bytesSent: 0 };
    }
    // Different bytes: sent, so the target keeps the evidence and flags the replica.
  }
  const r = await target.put(out, { signal: opts.signal, onBytes: opts.onBytes });
  deps.metrics.bytesSent.inc(r.bytes);
  state.setDigests(seg, r.files);
  if (r.outcome === 'conflict')
    deps.log.warn({ segmentId: seg.id, digest: r.digest }, 'the target holds different bytes for this segment; flagged there as a conflict');
  return { outcome: r.sourceAdded ? 'source-added' : r.outcome, digest: r.digest, bytesSent: r.bytes };
}
