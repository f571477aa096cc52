/**
 * Active (continuous) backup: every complete segment of the node's cache ends up on the target.
 *
 * - Sources of work: a reconcile scan at start and every `reconcilePeriod` (the whole cache against the target's
 *   catalog, so nothing is missed while the sidecar was down or the watcher dropped events), the watcher (a new
 *   segment directory), and the persistent state (segments still pending when the sidecar stopped).
 * - The queue holds segments by id with the time of their next attempt. A segment is sent only when complete
 *   (data file present, no `downloadStartMarker`) and settled (unchanged for `settleTime`); until then it is polled.
 * - `workers` transfers run at once, a small segment's taking a part of a worker (sender.ts' `workerShare`). A target that does not answer stops all transfers and is probed with
 *   exponential backoff (capped at `retryMaxDelay`) until it answers, then work resumes where it stopped, so a
 *   target down for minutes loses nothing. Other failures retry the segment alone with the same backoff.
 */
import type { Logger } from 'pino';
import type { SidecarConfig } from '../config.js';
import type { CachedSegment } from '../druid/scan.js';
import { BackupError, isBackupError, messageOf } from '../errors.js';
import type { Bandwidth } from '../services/bandwidth.js';
import type { Metrics } from '../services/metrics.js';
import type { StoredSummary, Target } from '../store/target.js';
import type { HoldingsReport } from '../snapshot/store.js';
import type { CacheIndex } from './cacheIndex.js';
import { remoteIndex } from '../store/held.js';
import { SMALL_GROUP, sendSegment, workerShare } from './sender.js';
import { sleep } from '../util/sleep.js';
import type { SourceState } from './state.js';
import { CacheWatcher } from './watcher.js';

const FIRST_RETRY_MS = 1000;
/** How long a settled segment without an info_dir descriptor waits for Druid to write one. */
const DESCRIPTOR_WAIT_MS = 10_000;
/** A directory that stays incomplete this long is left to the next reconcile scan instead of being polled. */
const MAX_POLL_MS = 60 * 60_000;
export interface ActiveBackupDeps {
  config: SidecarConfig;
  cache: CacheIndex;
  state: SourceState;
  target: Target;
  metrics: Metrics;
  /** The node's bandwidth limits: active backup sends under the backup one. */
  bandwidth?: Bandwidth;
  log: Logger;
  /**
   * Each target the node backs up to, one by one (a set's members): those that keep snapshots are told after each
   * reconcile what the node holds, so that retention keeps a segment a node holds even when no snapshot names it.
   */
  members?: () => Target[];
}

interface QueueItem {
  id: string;
  dir: string;
  nextAt: number;
  /** When the segment was first queued (lag). */
  since: number;
  /** Queued by a reconcile, whose catalog listing says what the target holds: no HEAD needed. */
  viaReconcile: boolean;
  attempts: number;
  version: number;
}

/** A min-heap of (nextAt, id) with lazy deletion: an entry whose version is stale is skipped. */
class Schedule {
  private heap: Array<{ at: number; id: string; version: number }> = [];
  push(at: number, id: string, version: number): void {
    const h = this.heap;
    h.push({ at, id, version });
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.at <= h[i]!.at) break;
      [h[p], h[i]] = [h[i]!, h[p]!];
      i = p;
    }
  }
  peek() {
    return this.heap[0];
  }
  pop() {
    const h = this.heap;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && h[l]!.at < h[m]!.at) m = l;
        if (r < h.length && h[r]!.at < h[m]!.at) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i]!, h[m]!];
        i = m;
      }
    }
    return top;
  }
  clear(): void {
    this.heap = [];
  }
}

export interface ActiveStatus {
  target: string;
  targetUp: boolean;
  queued: number;
  running: string[];
  lastReconcile?: { at: string; durationMs: number; segments: number; queued: number };
}

export class ActiveBackup {
  private readonly queue = new Map<string, QueueItem>();
  private readonly schedule = new Schedule();
  private readonly running = new Map<string, AbortController>();
  /** Parts of workers (`workerShare`) the running transfers take; at most `workers` × SMALL_GROUP. */
  private sharesInUse = 0;
  private readonly watcher: CacheWatcher;
  private readonly log: Logger;
  private versions = 0;
  private timer?: NodeJS.Timeout;
  private timerAt = Infinity;
  private reconcileTimer?: NodeJS.Timeout;
  private gaugeTimer?: NodeJS.Timeout;
  private reconciling?: Promise<void>;
  private probing?: Promise<void>;
  private targetDown = false;
  private stopped = false;
  private readonly stopController = new AbortController();
  lastReconcile?: ActiveStatus['lastReconcile'];
  /** What the target held at the last reconcile's listing (a target only gains segments, so a stale entry costs at most a redundant upload). */
  private remote?: Map<string, StoredSummary>;

  constructor(private readonly deps: ActiveBackupDeps) {
    this.log = deps.log.child({ component: 'active-backup', target: deps.target.url });
    this.watcher = new CacheWatcher(
      deps.cache.locations,
      deps.cache.infoDir,
      { changed: (d) => this.dirChanged(d), removed: (d) => this.dirChanged(d) },
      this.log,
    );
  }

  get target(): Target {
    return this.deps.target;
  }

  private get node(): string {
    return this.deps.config.nodeName;
  }

  /** Starts watching, the first reconcile and the periodic ones; resolves once the watcher is ready. */
  async start(): Promise<void> {
    // Segments still pending from the last run go first, before the scan finds the rest.
    for (const rec of this.deps.state.all()) {
      const b = rec.backup;
      if (b && b.target === this.target.url && b.state !== 'backedUp' && !b.conflict) this.enqueue(rec.id, rec.dir, Date.now(), { since: b.since });
    }
    await this.watcher.start();
    this.reconcileSoon();
    this.reconcileTimer = setInterval(() => this.reconcileSoon(), this.deps.config.reconcileMs);
    this.gaugeTimer = setInterval(() => this.updateGauges(), 1000);
    this.gaugeTimer.unref();
    this.kick();
  }

  /** Starts a reconcile unless one runs (a target came back: segments short of copies go again). */
  reconcileSoon(): void {
    if (this.stopped || this.reconciling) return;
    this.reconciling = this.reconcile()
      .catch((e) => this.log.error({ err: messageOf(e) }, 'reconcile failed'))
      .finally(() => (this.reconciling = undefined));
  }

  /**
   * Compares the whole cache with the target and queues what the target lacks. Uses no hashing and no transfer
   * for a segment whose files have their remembered fingerprints and whose digest the target holds from this node.
   */
  async reconcile(): Promise<void> {
    const t0 = performance.now();
    const scan = await this.deps.cache.scan();
    let remote: Map<string, StoredSummary> | undefined;
    try {
      remote = await remoteIndex(this.target, {}, { signal: this.stopController.signal });
      this.remote = remote;
      this.setTargetUp(true);
    } catch (e) {
      this.log.warn({ err: messageOf(e) }, 'cannot list the target; deciding from the local state');
      if (isBackupError(e) && e.code === 'target_unreachable') this.setTargetDown();
    }
    const now = Date.now();
    let queued = 0;
    for (const seg of scan.segments) {
      if (this.stopped) return;
      if (this.running.has(seg.id) || this.deps.cache.isRestoring(seg.id)) continue;
      if (seg.state !== 'complete') {
        this.enqueue(seg.id, seg.dir, now + this.deps.config.settleMs, { viaReconcile: true });
        continue;
      }
      const rec = this.deps.state.get(seg.id);
      const digest = this.deps.state.cachedDigest(seg);
      const b = rec?.backup?.target === this.target.url ? rec.backup : undefined;
      if (digest && b?.conflict && b.digest === digest) continue;
      if (remote) {
        const r = remote.get(seg.id);
        if (digest && r && r.digest === digest && r.sources.includes(this.node)) {
          this.dequeue(seg.id);
          if (b?.state !== 'backedUp' || b.digest !== digest) this.markBackedUp(seg, digest);
          continue;
        }
      } else if (digest && b?.state === 'backedUp' && b.digest === digest) continue;
      if (!this.queue.has(seg.id)) queued++;
      this.enqueue(seg.id, seg.dir, Math.max(now, seg.mtimeMs + this.deps.config.settleMs), { viaReconcile: true });
    }
    const durationMs = performance.now() - t0;
    this.deps.metrics.reconcileSeconds.observe(durationMs / 1000);
    this.lastReconcile = { at: new Date().toISOString(), durationMs: Math.round(durationMs), segments: scan.segments.length, queued };
    this.log.info({ ...this.lastReconcile, pending: this.queue.size, targetKnown: !!remote }, 'reconciled the cache with the target');
    this.kick();
    await this.reportHoldings({
      count: scan.segments.length,
      // Read once per target, as each report is streamed: no second list of 100,000 ids.
      *[Symbol.iterator]() {
        for (const s of scan.segments) yield s.id;
      },
    });
  }

  /**
   * Tells each target that keeps snapshots what this node holds now (the whole scan, complete or not: a segment
   * being replaced must not be pruned under it). A target that does not take the report is logged and told again
   * at the next reconcile; its prune then counts the last report it has, which ages out (prune.ts).
   */
  private async reportHoldings(segmentIds: Iterable<string> & { count: number }): Promise<void> {
    const report: HoldingsReport = { node: this.node, at: new Date().toISOString(), segmentIds };
    for (const t of this.deps.members?.() ?? []) {
      if (this.stopped || !t.snapshots) continue;
      try {
        await t.snapshots.putHoldings(report, this.stopController.signal);
        this.log.debug({ member: t.url, segments: segmentIds.count }, 'reported holdings');
      } catch (e) {
        this.log.warn({ member: t.url, err: messageOf(e) }, 'cannot report what this node holds to the target');
      }
    }
  }

  /** A segment directory appeared, changed or went away: read it and queue it, or forget it. */
  private dirChanged(dir: string): void {
    if (this.stopped) return;
    void this.deps.cache.refresh(dir).then(
      (seg) => {
        if (seg && !this.running.has(seg.id)) this.enqueue(seg.id, seg.dir, Math.max(Date.now(), seg.mtimeMs + this.deps.config.settleMs));
        else if (!seg) {
          const where = this.deps.cache.segmentOfDir(dir);
          if (where) this.dequeue(where.seg.id);
        }
      },
      (e) => this.log.debug({ dir, err: messageOf(e) }, 'cannot read a changed directory'),
    );
  }

  /**
   * Queues a segment for an attempt at `at`. A segment the watcher found is new here and may be arriving on other
   * replicas at the same moment, so it is asked about with HEAD; one queued by a reconcile uses its listing.
   */
  private enqueue(id: string, dir: string, at: number, o: { since?: number; viaReconcile?: boolean } = {}): void {
    const old = this.queue.get(id);
    const version = ++this.versions;
    const viaReconcile = o.viaReconcile ?? false;
    const item: QueueItem = old
      ? { ...old, dir, nextAt: Math.min(old.nextAt, at), version, viaReconcile: old.viaReconcile && viaReconcile }
      : { id, dir, nextAt: at, since: o.since ?? Date.now(), attempts: 0, version, viaReconcile };
    this.queue.set(id, item);
    this.schedule.push(item.nextAt, id, version);
    if (!old) {
      const rec = this.deps.state.get(id);
      if (rec?.backup?.state !== 'pending' || rec.backup.target !== this.target.url)
        this.deps.state.setBackup({ id, dir }, { target: this.target.url, state: 'pending', since: item.since });
      this.deps.cache.publish(id);
    }
    this.kick();
  }

  private reschedule(item: QueueItem, at: number): void {
    item.nextAt = at;
    item.version = ++this.versions;
    this.queue.set(item.id, item);
    this.schedule.push(at, item.id, item.version);
  }

  private dequeue(id: string): void {
    this.queue.delete(id);
  }

  /** Starts transfers while workers are free and items are due; arms the timer for the next due item. */
  private kick(): void {
    if (this.stopped) return;
    const now = Date.now();
    while (!this.targetDown) {
      const top = this.schedule.peek();
      if (!top || top.at > now) break;
      const item = this.queue.get(top.id);
      if (!item || item.version !== top.version || this.running.has(item.id)) {
        this.schedule.pop();
        continue;
      }
      // Not yet in the index (a new directory the watcher saw): counted as large until read.
      const share = workerShare(this.deps.cache.get(item.id)?.size ?? Infinity);
      if (this.sharesInUse + share > this.deps.config.workers * SMALL_GROUP) break;
      this.schedule.pop();
      void this.process(item, share);
    }
    this.armTimer();
  }

  private armTimer(): void {
    let top = this.schedule.peek();
    while (top && this.queue.get(top.id)?.version !== top.version) {
      this.schedule.pop();
      top = this.schedule.peek();
    }
    if (!top || this.targetDown) return;
    if (top.at >= this.timerAt && this.timer) return;
    clearTimeout(this.timer);
    this.timerAt = top.at;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.timerAt = Infinity;
        this.kick();
      },
      Math.max(0, top.at - Date.now()),
    );
  }

  private backoff(attempts: number): number {
    return Math.min(this.deps.config.retryMaxMs, FIRST_RETRY_MS * 2 ** Math.max(0, attempts - 1));
  }

  private async process(item: QueueItem, share: number): Promise<void> {
    const abort = new AbortController();
    this.running.set(item.id, abort);
    this.sharesInUse += share;
    const stopListener = () => abort.abort(new BackupError('cancelled', 'the sidecar is shutting down'));
    this.stopController.signal.addEventListener('abort', stopListener, { once: true });
    try {
      const seg = await this.deps.cache.refresh(item.dir);
      const now = Date.now();
      if (!seg) {
        this.dequeue(item.id);
        return;
      }
      if (this.deps.cache.isRestoring(seg.id)) {
        this.reschedule(item, now + this.deps.config.settleMs);
        return;
      }
      if (seg.state !== 'complete') {
        if (now - item.since > MAX_POLL_MS) {
          this.log.info({ segmentId: seg.id, state: seg.state }, 'segment stayed incomplete for an hour; leaving it to the reconcile scan');
          this.dequeue(seg.id);
        } else this.reschedule(item, now + Math.max(250, this.deps.config.settleMs / 2));
        return;
      }
      const settledAt = seg.mtimeMs + this.deps.config.settleMs;
      if (now < settledAt) {
        this.reschedule(item, settledAt);
        return;
      }
      // Druid writes the info_dir descriptor only once it has loaded the segment, seconds after the files
      // (2.07 s seen on a loaded machine): wait a bounded time for it, since a backup without a descriptor
      // cannot be restored into a cache Druid loads at start.
      if (!seg.descriptor && now < settledAt + DESCRIPTOR_WAIT_MS) {
        this.reschedule(item, Math.min(settledAt + DESCRIPTOR_WAIT_MS, now + 500));
        return;
      }
      await this.send(seg, item, abort.signal);
    } finally {
      this.stopController.signal.removeEventListener('abort', stopListener);
      this.running.delete(item.id);
      this.sharesInUse -= share;
      this.kick();
    }
  }

  private async send(seg: CachedSegment, item: QueueItem, signal: AbortSignal): Promise<void> {
    try {
      const remote = item.viaReconcile && this.remote ? (this.remote.get(seg.id) ?? null) : undefined;
      const t0 = performance.now();
      const r = await sendSegment(
        seg,
        { target: this.target, node: this.node, state: this.deps.state, metrics: this.deps.metrics, log: this.log },
        { signal, remote, limit: this.deps.bandwidth?.limit('backup') },
      );
      this.setTargetUp(true);
      this.dequeue(seg.id);
      if (r.outcome === 'conflict') {
        this.deps.state.setBackup(seg, {
          target: this.target.url,
          state: 'failed',
          digest: r.digest,
          conflict: true,
          error: 'the target holds different bytes for this segment (flagged there as a conflict)',
        });
        this.deps.cache.publish(seg.id);
        return;
      }
      this.deps.metrics.segmentsBackedUp.inc({ outcome: r.outcome === 'stored' ? 'stored' : 'identical' });
      this.markBackedUp(seg, r.digest);
      // How long sending took and how long the segment waited since it was queued: the backup's lag, explained.
      const sendMs = Math.round(performance.now() - t0);
      this.log.info({ segmentId: seg.id, outcome: r.outcome, bytes: r.bytesSent, sendMs, lagMs: Date.now() - item.since }, 'segment backed up');
    } catch (e) {
      if (this.stopped) return;
      const err = messageOf(e);
      this.deps.metrics.failures.inc();
      if (isBackupError(e) && e.code === 'target_unreachable') {
        // Not the segment's fault: it goes again as soon as the target answers.
        this.reschedule(item, Date.now());
        this.deps.state.setBackup(seg, { target: this.target.url, state: 'pending', since: item.since, error: err });
        this.setTargetDown();
      } else {
        // The listing said the target held it, the target says not: ask it directly next time.
        if (isBackupError(e) && e.code === 'not_found') item.viaReconcile = false;
        item.attempts++;
        const delay = this.backoff(item.attempts);
        this.reschedule(item, Date.now() + delay);
        this.deps.state.setBackup(seg, {
          target: this.target.url,
          state: 'failed',
          since: item.since,
          error: err,
          attempts: item.attempts,
          nextAt: Date.now() + delay,
        });
        this.log.warn({ segmentId: seg.id, err, attempts: item.attempts, retryInMs: delay }, 'backup failed; will retry');
      }
      this.deps.cache.publish(seg.id);
    }
  }

  private markBackedUp(seg: { id: string; dir: string }, digest: string): void {
    this.deps.state.setBackup(seg, { target: this.target.url, state: 'backedUp', digest, at: new Date().toISOString() });
    this.deps.cache.publish(seg.id);
  }

  private setTargetUp(up: boolean): void {
    this.deps.metrics.targetUp.set(up ? 1 : 0);
  }

  private setTargetDown(): void {
    this.setTargetUp(false);
    if (this.targetDown || this.stopped) return;
    this.targetDown = true;
    for (const c of this.running.values()) c.abort(new BackupError('target_unreachable', 'the target stopped answering'));
    this.log.warn('target unreachable; transfers paused until it answers again');
    this.probing ??= this.probe().finally(() => (this.probing = undefined));
  }

  private async probe(): Promise<void> {
    let delay = FIRST_RETRY_MS;
    while (this.targetDown && !this.stopped) {
      await sleep(delay, this.stopController.signal);
      if (this.stopped) return;
      try {
        await this.target.stats({ signal: this.stopController.signal });
        this.targetDown = false;
        this.setTargetUp(true);
        this.log.info('target answers again; resuming transfers');
        this.kick();
      } catch (e) {
        delay = Math.min(delay * 2, this.deps.config.retryMaxMs);
        this.log.debug({ err: messageOf(e), nextProbeMs: delay }, 'target still unreachable');
      }
    }
  }

  private updateGauges(): void {
    let oldest = Infinity;
    for (const item of this.queue.values()) if (item.since < oldest) oldest = item.since;
    this.deps.metrics.queueDepth.set(this.queue.size);
    this.deps.metrics.lag.set(oldest === Infinity ? 0 : Math.max(0, (Date.now() - oldest) / 1000));
  }

  status(): ActiveStatus {
    return {
      target: this.target.url,
      targetUp: !this.targetDown,
      queued: this.queue.size,
      running: [...this.running.keys()],
      lastReconcile: this.lastReconcile,
    };
  }

  /** Stops watching and scheduling, aborts transfers in flight (they stay pending in the state) and waits for them. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.stopController.abort(new BackupError('cancelled', 'the sidecar is shutting down'));
    clearTimeout(this.timer);
    clearInterval(this.reconcileTimer);
    clearInterval(this.gaugeTimer);
    await this.watcher.close();
    const deadline = Date.now() + 5000;
    while (this.running.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await this.reconciling;
    this.schedule.clear();
  }
}
