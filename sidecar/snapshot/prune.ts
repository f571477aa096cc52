/**
 * Prune: the plan first (what a dry run prints), then, under the store's lease, the sweep.
 *
 * The plan: the retention policy (retention.ts) decides each snapshot; a stored segment stays while a kept snapshot
 * names it, while a node's latest holdings report (younger than HOLDINGS_FRESH_MS) lists it, or for the grace
 * period after it was last seen so (the marks the pruner keeps in the store, or the manifest's last update for a
 * segment never seen referenced). Everything else is named with its reason. A store without any snapshot loses no
 * segment: nothing there says what Druid uses.
 *
 * The sweep, safe against kill -9 at any point and against work running beside it (docs/retention.md):
 * 1. the lease, a record the store holds, created only if absent and renewed while the sweep runs;
 * 2. the marks are written (when each segment was last seen referenced), so a run killed later loses no time;
 * 3. the headers of forgotten snapshots go first (their blobs and segments are then unreferenced, as the plan says);
 * 4. segments: only when no snapshot is being written (its marker), and after the headers are listed again so that a
 *    snapshot written since the plan keeps what it names; each segment's manifest goes first;
 * 5. the files of segments a killed prune left without a manifest, and blobs no header names.
 */
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';
import { BackupError, messageOf } from '../errors.js';
import type { Target } from '../store/target.js';
import { eachLimit } from '../util/pool.js';
import { readSegmentList, snapshotIdTime } from './check.js';
import type { SnapshotHeader } from './model.js';
import type { RetentionPolicy, SnapshotVerdict } from './retention.js';
import { applyRetention, describePolicy, segmentVerdict } from './retention.js';
import type { SnapshotStore } from './store.js';

/** A node's holdings report counts as "holds it now" this long (a node reconciles far more often). */
export const HOLDINGS_FRESH_MS = 24 * 3600_000;
/** A lease left by a pruner on another host that died blocks the next for at most this long (it is renewed every third of it). */
export const LEASE_MS = 60_000;
/** Segments removed by one call (a bucket deletes them with one DeleteObjects per step; S3 takes up to 1,000 keys). */
export const REMOVE_BATCH = 50;
/** Batches removed at once: a removal is latency-bound (a bucket's small requests, a disk's fsyncs), not CPU-bound. */
export const PRUNE_CONCURRENCY = 4;

export interface PlannedSnapshot extends SnapshotVerdict {
  time: string;
  pinned: boolean;
  segments: number;
  complete: boolean;
}

export interface PlannedSegment {
  segmentId: string;
  dataSource: string;
  bytes: number;
  reason: string;
}

/** Segments a plan lists in its answer; the rest are counted (`removeCount`) and streamed to `onRemove`. */
export const LISTED_REMOVALS = 1000;

export interface PrunePlan {
  target: string;
  policy: string;
  at: string;
  snapshots: PlannedSnapshot[];
  /**
   * Segments to remove, each with why it is no longer kept: the first LISTED_REMOVALS in id order, so that the
   * answer of a plan over 100,000 segments stays small; `removeCount` counts them all.
   */
  remove: PlannedSegment[];
  /** Every segment the plan removes (`remove` lists at most LISTED_REMOVALS of them). */
  removeCount: number;
  /** Segments kept, counted by why (first reason). */
  kept: { byLatestSnapshot: number; bySnapshots: number; byNodes: number; byGracePeriod: number };
  /** Segment directories a killed prune left without a manifest. */
  orphans: string[];
  /** Blobs no kept snapshot names. */
  blobs: string[];
  bytes: { stored: number; usedByLatest: number; keptByRetention: number; prunable: number };
}

export interface PruneResult extends PrunePlan {
  dryRun: boolean;
  removed: { snapshots: number; segments: number; bytes: number; orphans: number; blobs: number };
  /** Why segments were not swept this run, when they were not. */
  deferred?: string;
}

function snapshotsOf(t: Target): SnapshotStore {
  if (!t.snapshots) throw new BackupError('bad_request', `target ${t.url} keeps no snapshots, so it cannot be pruned`);
  return t.snapshots;
}

/**
 * Every segment id each header names, read from its list blobs as they stream (each checked: sorted, of its data
 * source, its digest at the end): only the ids are kept.
 */
async function namedIds(s: SnapshotStore, h: SnapshotHeader, into: Map<string, string>, signal?: AbortSignal): Promise<void> {
  for (const ds of h.dataSources)
    for await (const seg of readSegmentList(s, ds.list, ds.name, `snapshot ${h.id}`, signal)) if (!into.has(seg.id)) into.set(seg.id, h.id);
}

export interface PlanOptions {
  now?: number;
  signal?: AbortSignal;
  /** Each segment to remove, as the plan finds it (all of them, where `remove` lists the first ones). */
  onRemove?: (s: PlannedSegment) => void | Promise<void>;
}

/** What the sweep needs of a plan besides its answer. */
export interface PlanState {
  /** Segment ids named by a kept snapshot (the first one naming each). */
  named: Map<string, string>;
  /** Segment ids a node reported holding recently. */
  holders: Map<string, string>;
  /** Marked segments the plan removes: their marks go. */
  unmark: Set<string>;
  headers: Map<string, SnapshotHeader>;
}

/**
 * The plan, in memory bounded by what is kept (the ids kept snapshots name and nodes hold, and the marks), not by
 * what the store holds: stored segments are read one at a time from the catalog (a local store's own index entries,
 * no manifest read: whole manifests made about 3 KB of garbage a segment, which old space kept until a full GC), and
 * those to remove go to `onRemove` as they are found.
 */
export async function planPrune(target: Target, policy: RetentionPolicy, o: PlanOptions = {}): Promise<PrunePlan & PlanState> {
  const s = snapshotsOf(target);
  const now = o.now ?? Date.now();
  const ids = await s.listSnapshots(o.signal);
  const pins = new Set(await s.listPins(o.signal));
  const headers = new Map<string, SnapshotHeader>();
  for (const id of ids) {
    const h = await s.getHeader(id, o.signal);
    if (h) headers.set(id, h);
  }
  const verdicts = applyRetention(
    [...headers.values()].map((h) => ({ id: h.id, timeMs: Date.parse(h.time) || snapshotIdTime(h.id), pinned: pins.has(h.id) })),
    policy,
  );
  // The newest snapshot is always kept (retention.ts) and read first, so a segment it names maps to its id.
  const named = new Map<string, string>();
  const latest = verdicts[0] ? headers.get(verdicts[0].id) : undefined;
  const keptBlobs = new Set<string>();
  for (const v of verdicts) {
    if (!v.keep) continue;
    const h = headers.get(v.id)!;
    keptBlobs.add(h.metadata);
    for (const d of h.dataSources) keptBlobs.add(d.list);
    await namedIds(s, h, named, o.signal);
  }
  const holders = new Map<string, string>();
  const reportedAt = new Map<string, number>();
  for (const r of await s.listHoldings(o.signal)) {
    const at = Date.parse(r.at);
    const fresh = now - at < HOLDINGS_FRESH_MS;
    for (const id of r.segmentIds) {
      if (fresh && !holders.has(id)) holders.set(id, r.node);
      reportedAt.set(id, Math.max(reportedAt.get(id) ?? 0, at));
    }
  }
  const marks = (await s.readMarks(o.signal))?.lastReferenced ?? {};
  const unmark = new Set<string>();
  const plan: PrunePlan = {
    target: target.url,
    policy: `${describePolicy(policy)}, gracePeriod ${policy.gracePeriodMs / 1000}s`,
    at: new Date(now).toISOString(),
    snapshots: verdicts.map((v) => {
      const h = headers.get(v.id)!;
      return { ...v, time: h.time, pinned: pins.has(v.id), segments: h.segments, complete: h.complete };
    }),
    remove: [],
    removeCount: 0,
    kept: { byLatestSnapshot: 0, bySnapshots: 0, byNodes: 0, byGracePeriod: 0 },
    orphans: await s.orphans(o.signal),
    blobs: (await s.listBlobs(o.signal)).filter((b) => !keptBlobs.has(b)),
    bytes: { stored: 0, usedByLatest: 0, keptByRetention: 0, prunable: 0 },
  };
  for await (const m of s.storedSegments(o.signal)) {
    plan.bytes.stored += m.size;
    const inKept = named.get(m.segmentId);
    const inLatest = latest !== undefined && inKept === latest.id;
    const heldBy = holders.get(m.segmentId);
    const marked = Object.hasOwn(marks, m.segmentId);
    const seen = Math.max(marked ? marks[m.segmentId]! : 0, reportedAt.get(m.segmentId) ?? 0, Date.parse(m.updatedAt) || 0);
    const v = segmentVerdict({ id: m.segmentId, inKeptSnapshot: inKept, heldBy, lastReferencedMs: seen }, policy, now);
    if (inLatest) {
      plan.bytes.usedByLatest += m.size;
      plan.kept.byLatestSnapshot++;
    } else if (v.keep) plan.bytes.keptByRetention += m.size;
    if (!inLatest && inKept) plan.kept.bySnapshots++;
    else if (!inLatest && heldBy) plan.kept.byNodes++;
    else if (!inLatest && v.keep) plan.kept.byGracePeriod++;
    if (!v.keep) {
      plan.bytes.prunable += m.size;
      const r = { segmentId: m.segmentId, dataSource: m.dataSource, bytes: m.size, reason: v.reason };
      if (plan.removeCount++ < LISTED_REMOVALS) plan.remove.push(r);
      if (marked) unmark.add(m.segmentId);
      await o.onRemove?.(r);
    }
  }
  return { ...plan, named, holders, unmark, headers };
}

/** A batch of removals: their ids and the bytes they free. */
interface RemovalBatch {
  ids: string[];
  bytes: number;
}

/**
 * A removal as the sweep reads it back: the id and its bytes only. A batch lives as long as its removals' I/O, long
 * enough for V8 to move it to old space, where it stays until a full GC: the reasons (about 200 B each) stay out.
 */
const spoolLine = (r: PlannedSegment) => `${JSON.stringify([r.segmentId, r.bytes])}\n`;

/** The spooled removals, in batches of REMOVE_BATCH, without those a snapshot written since the plan names. */
async function* removalBatches(file: string, since: Map<string, string>): AsyncGenerator<RemovalBatch> {
  let batch: RemovalBatch = { ids: [], bytes: 0 };
  for await (const text of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
    const [id, bytes] = JSON.parse(text) as [string, number];
    if (since.has(id)) continue;
    batch.ids.push(id);
    batch.bytes += bytes;
    if (batch.ids.length === REMOVE_BATCH) {
      yield batch;
      batch = { ids: [], bytes: 0 };
    }
  }
  if (batch.ids.length) yield batch;
}

export interface PruneOptions {
  policy: RetentionPolicy;
  dryRun?: boolean;
  /** Who holds the lease (this node and process). */
  owner: string;
  log: Logger;
  signal?: AbortSignal;
  now?: () => number;
  /** Batches of segments removed at once (PRUNE_CONCURRENCY by default). */
  concurrency?: number;
  /** Called before each step of the sweep, with its name: the crash trials kill the process there. */
  onStep?: (step: string) => void;
}

/**
 * Owners are `{node}/{pid}/…`: a lease left by a process of this node and host that is gone (a pruner killed and
 * restarted) is taken over at once instead of blocking until it expires.
 */
export function leaseOwner(node: string, job: string): string {
  return `${node}/${process.pid}/${job}`;
}

async function takeOverDead(s: SnapshotStore, o: PruneOptions): Promise<boolean> {
  const l = await s.readLease(o.signal).catch(() => undefined);
  if (!l) return false;
  const [node, pid] = l.owner.split('/');
  const [myNode] = o.owner.split('/');
  if (node !== myNode || !/^\d+$/.test(pid ?? '') || Number(pid) === process.pid) return false;
  try {
    process.kill(Number(pid), 0);
    return false;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') return false;
  }
  o.log.warn({ lease: l }, 'the prune lease was left by a process of this node that is gone; taken over');
  return s.acquireLease(o.owner, LEASE_MS, o.signal, l.owner);
}

export async function prune(target: Target, o: PruneOptions): Promise<PruneResult> {
  const s = snapshotsOf(target);
  const now = o.now ?? Date.now;
  const removed = { snapshots: 0, segments: 0, bytes: 0, orphans: 0, blobs: 0 };
  if (o.dryRun) {
    const { named: _n, holders: _k, unmark: _u, headers: _h, ...plan } = await planPrune(target, o.policy, { now: now(), signal: o.signal });
    return { ...plan, dryRun: true, removed };
  }
  if (!(await s.acquireLease(o.owner, LEASE_MS, o.signal)) && !(await takeOverDead(s, o))) {
    const l = await s.readLease(o.signal).catch(() => undefined);
    throw new BackupError('conflict', `another prune of ${target.url} holds its lease${l ? ` (${l.owner}, until ${l.expires})` : ''}; try again later`);
  }
  let renewedAt = now();
  // One renewal at a time, however many removals finish meanwhile.
  let renewing: Promise<void> | undefined;
  const renew = (): Promise<void> => {
    if (now() - renewedAt < LEASE_MS / 3) return Promise.resolve();
    renewing ??= (async () => {
      if (!(await s.acquireLease(o.owner, LEASE_MS, o.signal))) throw new BackupError('conflict', `the prune lease of ${target.url} was lost; stopping`);
      renewedAt = now();
    })().finally(() => (renewing = undefined));
    return renewing;
  };
  const step = (name: string) => {
    o.onStep?.(name);
    if (o.signal?.aborted) throw new BackupError('cancelled', 'prune cancelled');
  };
  // The segments to remove go to a file as the plan finds them, and the sweep reads them back one at a time.
  let work: string | undefined;
  try {
    const t = now();
    work = await mkdtemp(path.join(tmpdir(), 'druid-backup-prune-'));
    const removals = path.join(work, 'remove');
    const out = createWriteStream(removals);
    const failed = new Promise<never>((_, reject) => out.once('error', reject));
    failed.catch(() => undefined);
    const { named, holders, unmark, headers, ...plan } = await planPrune(target, o.policy, {
      now: t,
      signal: o.signal,
      onRemove: async (r) => {
        if (!out.write(spoolLine(r))) await Promise.race([once(out, 'drain'), failed]);
      },
    });
    out.end();
    await Promise.race([once(out, 'finish'), failed]);
    step('marks');
    const prev = (await s.readMarks(o.signal))?.lastReferenced ?? {};
    const lastReferenced: Record<string, number> = Object.create(null) as Record<string, number>;
    for (const [id, ms] of Object.entries(prev)) if (!unmark.has(id)) lastReferenced[id] = ms;
    for (const id of named.keys()) lastReferenced[id] = t;
    for (const id of holders.keys()) lastReferenced[id] = t;
    await s.writeMarks({ at: t, lastReferenced }, o.signal);
    for (const v of plan.snapshots) {
      if (v.keep) continue;
      step('forget');
      await s.forget(v.id, o.signal);
      removed.snapshots++;
      await renew();
    }
    // What a killed prune left half-removed (no manifest: invisible already) is finished whatever else happens.
    for (const name of plan.orphans) {
      step('orphan');
      await s.removeOrphan(name, o.signal);
      removed.orphans++;
    }
    const writing = await s.listWriting(o.signal);
    let deferred: string | undefined;
    if (!headers.size) {
      // Nothing says what Druid uses: a store that never had a snapshot keeps every segment.
      deferred = 'the store holds no snapshot, so nothing says which segments Druid uses; no segment is removed';
    } else if (writing.length) {
      deferred = `snapshot ${writing.map((w) => w.id).join(', ')} is being written; segments and blobs are swept at the next run`;
      o.log.info({ target: target.url, writing }, deferred);
    } else {
      // A snapshot written since the plan keeps every segment and blob it names.
      const since = new Map<string, string>();
      const newBlobs = new Set<string>();
      for (const id of await s.listSnapshots(o.signal)) {
        if (headers.has(id)) continue;
        const h = await s.getHeader(id, o.signal);
        if (!h) continue;
        newBlobs.add(h.metadata);
        for (const d of h.dataSources) newBlobs.add(d.list);
        await namedIds(s, h, since, o.signal);
      }
      // Removals are independent (each removes its own manifest first) and, in a bucket, a few small requests each:
      // they go in batches (one request per step of a batch), several batches at once, read from the spool as they
      // go so that only the batches under way are held. The first failure starts no new batch, and is thrown once
      // those under way end, so none runs after the lease is released.
      await eachLimit(removalBatches(removals, since), o.concurrency ?? PRUNE_CONCURRENCY, async (batch) => {
        step('segment');
        await s.removeSegments(batch.ids, o.signal);
        removed.segments += batch.ids.length;
        removed.bytes += batch.bytes;
        await renew();
      });
      for (const b of plan.blobs) {
        if (newBlobs.has(b)) continue;
        step('blob');
        await s.deleteBlob(b, o.signal);
        removed.blobs++;
      }
    }
    o.log.info({ target: target.url, ...removed }, 'prune finished');
    return { ...plan, dryRun: false, removed, ...(deferred ? { deferred } : {}) };
  } catch (e) {
    o.log.warn({ target: target.url, err: messageOf(e) }, 'prune stopped');
    throw e;
  } finally {
    await s.releaseLease(o.owner).catch(() => undefined);
    if (work) await rm(work, { recursive: true, force: true });
  }
}
