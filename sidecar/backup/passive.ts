/**
 * Passive (on-demand) backup: `POST /data/v1/backup` runs this as a job. It scans the cache afresh, selects the
 * complete segments the request names, learns what the target already holds from its catalog, and sends the
 * rest with `druid.backup.workers` workers at once, each sending a large segment alone or a group of small ones.
 * A failed transfer is tried again a few times before the segment counts as failed; the job reports every
 * segment's outcome.
 */
import type { BackupRequest } from '../api.js';
import type { CachedSegment } from '../druid/scan.js';
import type { Selector } from '../druid/selector.js';
import { selects } from '../druid/selector.js';
import { messageOf } from '../errors.js';
import type { JobContext } from '../services/jobs.js';
import type { StoredSummary, Target } from '../store/target.js';
import type { RateLimit } from '../util/rateLimit.js';
import { eachWeighted } from '../util/pool.js';
import { sleep } from '../util/sleep.js';
import type { CacheIndex } from './cacheIndex.js';
import { remoteIndex } from '../store/held.js';
import { isTransient } from '../targets/faults.js';
import type { SendDeps, SendResult } from './sender.js';
import { GROUPS_PER_WORKER, SMALL_GROUP, sendSegment, workerShare } from './sender.js';
import type { SourceState } from './state.js';

/** Below this many segments, one HEAD each is cheaper than listing the target's catalog. */
const CATALOG_THRESHOLD = 20;
const ATTEMPTS = 3;
/** Most bytes of small segments one worker sends at once. */
const SMALL_GROUP_BYTES = 8 * 1024 * 1024;

/** A segment that takes a whole worker (sender.ts, `workerShare`). */
const isLarge = (s: { size: number }) => workerShare(s.size) === SMALL_GROUP;

/** The segments in units one worker sends at once: a large segment alone, small ones in groups (in the order given, a large one ahead of the small group still open). */
export function transferGroups<T extends { size: number }>(segments: readonly T[]): T[][] {
  const groups: T[][] = [];
  let group: T[] = [];
  let bytes = 0;
  for (const s of segments) {
    if (isLarge(s)) {
      groups.push([s]);
      continue;
    }
    if (group.length === SMALL_GROUP || bytes + s.size > SMALL_GROUP_BYTES) {
      groups.push(group);
      group = [];
      bytes = 0;
    }
    group.push(s);
    bytes += s.size;
  }
  if (group.length) groups.push(group);
  return groups;
}

export interface PassiveDeps extends Omit<SendDeps, 'target'> {
  cache: CacheIndex;
  state: SourceState;
  workers: number;
  /** The active-backup target, whose per-segment state this job also updates when it is the same. */
  activeTarget?: string;
  /** The bandwidth limit of the job (the node's, or the job's own lower one). */
  limit?: RateLimit;
}

export function backupJob(req: BackupRequest, sel: Selector, target: Target, deps: PassiveDeps) {
  return async (jc: JobContext): Promise<Record<string, unknown>> => {
    // The target's catalog is asked for while the cache is scanned (each side's work hides the other's wait), unless
    // the request names too few segments to need it; a listing the scan shows unneeded is stopped.
    const listing = new AbortController();
    const stopListing = () => listing.abort(jc.signal.reason);
    jc.signal.addEventListener('abort', stopListing, { once: true });
    const early =
      sel.segmentIds && sel.segmentIds.size <= CATALOG_THRESHOLD
        ? undefined
        : remoteIndex(target, { dataSource: sel.dataSource, interval: req.interval }, { signal: listing.signal });
    early?.catch(() => undefined);
    try {
      return await run(jc, early);
    } finally {
      listing.abort();
      jc.signal.removeEventListener('abort', stopListing);
    }
  };

  async function run(jc: JobContext, early: Promise<Map<string, StoredSummary>> | undefined): Promise<Record<string, unknown>> {
    const scan = await deps.cache.scan();
    jc.throwIfCancelled();
    const chosen: CachedSegment[] = [];
    const found = new Set<string>();
    for (const s of scan.segments) {
      if (!selects(sel, s)) continue;
      found.add(s.id);
      if (s.state === 'complete' && !deps.cache.isRestoring(s.id)) chosen.push(s);
      else if (sel.segmentIds)
        jc.segmentFailed(s.id, `segment is ${deps.cache.isRestoring(s.id) ? 'being restored' : s.state} in this node's cache, not complete`);
    }
    for (const id of sel.segmentIds ?? []) if (!found.has(id)) jc.segmentFailed(id, "not in this node's cache");
    jc.setTotals(
      chosen.length,
      chosen.reduce((n, s) => n + s.size, 0),
    );
    jc.log.info({ segments: chosen.length, target: target.url }, 'backing up');
    if (deps.limit) jc.setMaxBytesPerSecond(deps.limit.bytesPerSecond);

    let remote: Map<string, StoredSummary> | undefined;
    // Asked for early whenever more than CATALOG_THRESHOLD segments can be chosen (backupJob).
    if (chosen.length > CATALOG_THRESHOLD) remote = await early;
    const counts = { stored: 0, identical: 0, sourceAdded: 0, conflicts: 0, bytesSent: 0 };
    const sendDeps: SendDeps = { ...deps, target };
    const tracksState = deps.activeTarget === undefined || deps.activeTarget === target.url;

    /** Records a segment's outcome in the source's state, unless it says so already. */
    const record = (seg: CachedSegment, r: Pick<SendResult, 'outcome' | 'digest'>): void => {
      if (!tracksState) return;
      const before = deps.state.get(seg.id)?.backup;
      const unchanged =
        before?.target === target.url && before.digest === r.digest && (r.outcome === 'conflict' ? !!before.conflict : before.state === 'backedUp');
      if (unchanged) return;
      deps.state.setBackup(
        seg,
        r.outcome === 'conflict'
          ? { target: target.url, state: 'failed', digest: r.digest, conflict: true, error: 'the target holds different bytes' }
          : { target: target.url, state: 'backedUp', digest: r.digest, at: new Date().toISOString() },
      );
      deps.cache.publish(seg.id);
    };

    // The scan is seconds old: a segment the target holds from this node with the digest its files had when last
    // read (every file's fingerprint unchanged) is done here, in one pass with no worker, no second look at the disk
    // and nothing sent. Only the rest go to the workers.
    const toSend: CachedSegment[] = [];
    let unchanged = 0;
    for (const s of chosen) {
      const held = remote?.get(s.id);
      const digest = held && held.sources.includes(deps.node) ? deps.state.cachedDigest(s) : undefined;
      if (digest === undefined || digest !== held!.digest) {
        toSend.push(s);
        continue;
      }
      unchanged++;
      jc.segmentDone('skipped');
      jc.addBytes(s.size);
      record(s, { outcome: 'identical', digest });
    }
    counts.identical += unchanged;
    if (unchanged) deps.metrics.segmentsBackedUp.inc({ outcome: 'identical' }, unchanged);

    const backupOne = async (listed: CachedSegment): Promise<void> => {
      if (jc.signal.aborted) return;
      jc.setCurrent(listed.id);
      let lastError: unknown;
      for (let attempt = 1; attempt <= ATTEMPTS && !jc.signal.aborted; attempt++) {
        let sent = 0;
        try {
          const seg = (await deps.cache.refresh(listed.dir)) ?? listed;
          const r: SendResult = await sendSegment(seg, sendDeps, {
            signal: jc.signal,
            limit: deps.limit,
            remote: remote ? (remote.get(seg.id) ?? null) : undefined,
            onBytes: (n) => {
              sent += n;
              jc.addBytes(n);
            },
          });
          if (r.outcome !== 'stored' && r.outcome !== 'conflict') jc.addBytes(seg.size - sent);
          counts.bytesSent += r.bytesSent;
          if (r.outcome === 'conflict') {
            counts.conflicts++;
            jc.segmentFailed(seg.id, 'the target holds different bytes for this segment (flagged there as a conflict)');
          } else {
            if (r.outcome === 'stored') counts.stored++;
            else if (r.outcome === 'identical') counts.identical++;
            else counts.sourceAdded++;
            jc.segmentDone(r.outcome === 'stored' ? 'done' : 'skipped');
            deps.metrics.segmentsBackedUp.inc({ outcome: r.outcome === 'stored' ? 'stored' : 'identical' });
          }
          record(seg, r);
          return;
        } catch (e) {
          lastError = e;
          jc.addBytes(-sent);
          deps.metrics.failures.inc();
          if (jc.signal.aborted || !isTransient(e) || attempt === ATTEMPTS) break;
          jc.log.info({ segmentId: listed.id, attempt, err: messageOf(e) }, 'transfer failed; trying again');
          await sleep(1000 * 2 ** (attempt - 1), jc.signal);
        }
      }
      if (!jc.signal.aborted) {
        jc.segmentFailed(listed.id, messageOf(lastError));
        if (tracksState) {
          deps.state.setBackup(listed, { target: target.url, state: 'failed', error: messageOf(lastError) });
          deps.cache.publish(listed.id);
        }
      }
    };
    // A worker sends a large segment alone or GROUPS_PER_WORKER groups of small ones (sender.ts).
    const groupWeight = (group: CachedSegment[]) => (isLarge(group[0]!) ? GROUPS_PER_WORKER : 1);
    await eachWeighted(transferGroups(toSend), deps.workers * GROUPS_PER_WORKER, groupWeight, async (group) => {
      await Promise.all(group.map(backupOne));
    });
    jc.setCurrent(undefined);
    return counts;
  }
}
