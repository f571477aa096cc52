/**
 * Restore inside a running sidecar: plans and starts restore jobs for the API, runs the automatic restore and
 * the scrub of the node's cache, keeps one restore per segment at a time, tells active backup which segments
 * are being installed, and counts everything in /metrics. At start it removes what a crash left of restores.
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { Counter, Gauge } from 'prom-client';
import { selectSnapshot } from '../snapshot/restore.js';
import type { SnapshotService } from '../snapshot/service.js';
import type { Job, LossVerdict, RestorePlan, RestoreRequest } from '../api.js';
import { BackupError, messageOf } from '../errors.js';
import type { CacheIndex } from '../backup/cacheIndex.js';
import type { SourceState } from '../backup/state.js';
import type { SidecarConfig } from '../config.js';
import type { EventBus } from '../services/events.js';
import type { JobContext, JobRegistry } from '../services/jobs.js';
import type { Bandwidth } from '../services/bandwidth.js';
import type { Metrics } from '../services/metrics.js';
import type { Target } from '../store/target.js';
import type { CacheLayout } from '../druid/layout.js';
import { checkCoordinatorUrl, druidAuthFor, markUsed, planMarkUsed } from '../targets/coordinator.js';
import type { NodeTargets } from '../targets/resolve.js';
import { resolveTarget } from '../targets/resolve.js';
import { writeFileAtomic } from '../util/atomic.js';
import { readStream } from '../util/readStream.js';
import { checkSegmentDir } from '../verify/check.js';
import type { RepairMode } from './auto.js';
import { AutoRestore } from './auto.js';
import { DigestMemo } from './digests.js';
import type { DestinationSpec, Plan } from './plan.js';
import type { RestoreEnv, RestoreHooks } from './restorer.js';
import { plannedOf, receiveInto } from './receive.js';
import { cleanLeftovers, executePlan, planFor } from './restorer.js';
import { HolderWaits, decide, explainVerdict, surveyCopies } from './sources.js';

export type RestoreMode = 'manual' | RepairMode;

/** What the restore service uses of the node: built once by the daemon (daemon.ts), which starts and stops it. */
export interface RestoreDeps extends NodeTargets {
  readonly config: SidecarConfig;
  readonly jobs: JobRegistry;
  readonly events: EventBus;
  readonly metrics: Metrics;
  /** The node's bandwidth limits: every restore receives under the restore one (and a job's own lower one). */
  readonly bandwidth: Bandwidth;
  /** The node's segment cache and per-segment state, when it is a source. */
  readonly cache?: CacheIndex;
  readonly state?: SourceState;
  /** Where a restore from a snapshot finds it. */
  readonly snapshots?: SnapshotService;
}

/**
 * How often the node looks for damaged copies it knows of (a failed read, a target's own verify learned at the
 * reconcile) to repair. Cheap when there are none: one walk of the copy records.
 */
const REPAIR_PERIOD_MS = 10_000;

class RestoreMetrics {
  readonly segments: Counter<'mode' | 'outcome'>;
  readonly bytes: Counter<'mode'>;
  readonly lost: Counter<'reason'>;
  readonly scrubbed: Counter<'outcome'>;
  readonly verdicts: Counter<'case'>;
  readonly repairs: Counter<'outcome'>;
  constructor(ctx: RestoreDeps, waiting: () => number) {
    const registers = [ctx.metrics.registry];
    this.segments = new Counter({
      name: 'druid_backup_segments_restored_total',
      help: 'Segments restored, by mode (manual, auto, scrub) and outcome (restored, skipped, failed).',
      labelNames: ['mode', 'outcome'],
      registers,
    });
    this.bytes = new Counter({
      name: 'druid_backup_bytes_restored_total',
      help: 'Segment bytes restored from targets, verified against their manifests.',
      labelNames: ['mode'],
      registers,
    });
    this.lost = new Counter({
      name: 'druid_backup_segments_lost_total',
      help: 'Served segments found lost from the cache (files vanished or damaged while the info_dir entry remained).',
      labelNames: ['reason'],
      registers,
    });
    this.scrubbed = new Counter({
      name: 'druid_backup_segments_scrubbed_total',
      help: 'Segments the scrub re-read against their backed-up digests, by outcome (ok, damaged).',
      labelNames: ['outcome'],
      registers,
    });
    this.verdicts = new Counter({
      name: 'druid_backup_lost_segment_verdicts_total',
      help: 'Decisions about lost segments, by case: restored; holders_unreachable (waits for a holder to answer); copies_damaged (every reachable copy failed its digests); no_backup (no target holds it).',
      labelNames: ['case'],
      registers,
    });
    this.repairs = new Counter({
      name: 'druid_backup_copies_repaired_total',
      help: 'Damaged copies on targets replaced from a good copy and verified clean (repaired), or not (failed).',
      labelNames: ['outcome'],
      registers,
    });
    new Gauge({
      name: 'druid_backup_lost_segments_waiting',
      help: 'Lost segments waiting for a target that holds a good copy to answer.',
      registers,
      collect() {
        this.set(waiting());
      },
    });
  }
}

export class RestoreService {
  readonly memo = new DigestMemo();
  private readonly busy = new Set<string>();
  private readonly metrics: RestoreMetrics;
  private auto?: AutoRestore;
  private unsubscribe?: () => void;
  /** Failed segments of manual restores asked with `retry`, waiting for a holder to answer, with the wait they are in. */
  private readonly manualWaits = new Map<string, HolderWaits>();
  private repairing?: Promise<void>;
  private repairTimer?: NodeJS.Timeout;
  /** The layout this node's cache had when last seen with segments: an emptied cache is restored in it. */
  private seenLayout?: CacheLayout;

  constructor(private readonly ctx: RestoreDeps) {
    this.metrics = new RestoreMetrics(ctx, () => (this.auto?.waiting.length ?? 0) + this.manualWaits.size);
  }

  get env(): RestoreEnv {
    const c = this.ctx.config;
    const layout = c.restoreLayout === 'auto' ? (this.seenLayout ?? 'auto') : c.restoreLayout;
    const state = this.ctx.state;
    return {
      druid: c.druid,
      stateDir: c.stateDir,
      store: c.store,
      layout,
      workers: c.workers,
      memo: this.memo,
      knownDigests: state ? (seg) => state.cachedDigests(seg) : undefined,
    };
  }

  private get layoutFile(): string {
    return path.join(this.ctx.config.stateDir, 'cache-layout');
  }

  private rememberLayout(layout: CacheLayout): void {
    if (layout === this.seenLayout) return;
    this.seenLayout = layout;
    try {
      writeFileAtomic(this.layoutFile, layout);
    } catch (e) {
      this.ctx.log.warn({ err: messageOf(e) }, 'cannot remember the cache layout');
    }
  }

  get automatic(): AutoRestore | undefined {
    return this.auto;
  }

  async start(): Promise<void> {
    const log = this.ctx.log.child({ component: 'restore' });
    const left = await cleanLeftovers(this.env);
    if (left.putBack.length) log.warn({ putBack: left.putBack }, 'a restore was interrupted while swapping; the previous copies were put back');
    if (left.removed.length) log.info({ removed: left.removed.length }, 'removed staging left by an interrupted restore');
    for (const p of left.problems) log.warn({ problem: p }, 'cannot clean restore staging');
    const c = this.ctx.config;
    try {
      const l = readFileSync(this.layoutFile, 'utf8').trim();
      if (l === 'nested' || l === 'flat') this.seenLayout = l;
    } catch {
      // never seen a segment yet
    }
    const layouts = this.ctx.events.subscribe((e) => {
      if (e.type === 'segment' && e.segment.state === 'complete') this.rememberLayout(e.segment.layout);
    });
    this.unsubscribe = layouts;
    const target = this.ctx.targets;
    this.startRepairs();
    if (!c.autoRestore || !target || c.druid.locations.length === 0) return;
    this.auto = new AutoRestore({
      locations: c.druid.locations,
      infoDir: this.env.druid.infoDir ?? `${c.druid.locations[0]!.path}/info_dir`,
      target,
      nodeName: c.nodeName,
      settleMs: c.settleMs,
      checkMs: c.autoRestoreCheckMs,
      scrubMs: c.scrubMs,
      memo: this.memo,
      log,
      isBusy: (id) => this.busy.has(id),
      survey: async (id) => decide(id, await surveyCopies(target, id)),
      restore: (ids, mode) => this.repair(target, ids, mode),
      onVerdict: (v) => this.metrics.verdicts.inc({ case: v.case }),
      onLoss: (reason) => {
        this.metrics.lost.inc({ reason });
        // Listed at once as missing, with its copies (GET /data/v1/segments), not only at the next full scan.
        this.ctx.cache?.scan().catch((e) => log.debug({ err: messageOf(e) }, 'cache scan failed'));
      },
      onScrubbed: (damaged) => this.metrics.scrubbed.inc({ outcome: damaged ? 'damaged' : 'ok' }),
    });
    this.auto.start();
    // The cache watcher's news of a segment directory gone or changed: look at once rather than at the next sweep.
    const losses = this.ctx.events.subscribe((e) => {
      if (e.type === 'segment-removed' || (e.type === 'segment' && (e.segment.state === 'incomplete' || e.segment.state === 'missing'))) this.auto?.trigger();
    });
    this.unsubscribe = () => {
      layouts();
      losses();
    };
    log.info({ target: target.url, checkMs: c.autoRestoreCheckMs, scrubMs: c.scrubMs }, 'automatic restore on');
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    clearInterval(this.repairTimer);
    for (const w of this.manualWaits.values()) w.stop();
    await this.auto?.stop();
    await this.repairing;
  }

  /** `POST /data/v1/restore`: the plan of a dry run, or the started job. Bad input and a plan that does not fit fail here, before any job. */
  async request(asked: RestoreRequest): Promise<{ plan: RestorePlan } | { job: Job }> {
    // A job's own limit above the node's is refused before anything is planned.
    this.ctx.bandwidth.limit('restore', asked.maxBytesPerSecond);
    const target = resolveTarget(this.ctx, asked.target);
    const coordinator = this.coordinatorFor(asked);
    // From a snapshot: exactly its segments; those no target holds are named, never skipped in silence.
    const fromSnapshot = asked.snapshot
      ? await selectSnapshot(this.ctx.snapshots, target, { snapshot: asked.snapshot, dataSource: asked.dataSource, segmentIds: asked.segmentIds })
      : undefined;
    const req: RestoreRequest = fromSnapshot ? { ...asked, segmentIds: fromSnapshot.segmentIds } : asked;
    if (fromSnapshot && fromSnapshot.missing.length && !req.dryRun)
      throw new BackupError(
        'conflict',
        `snapshot ${fromSnapshot.snapshot} names ${fromSnapshot.missing.length} segment(s) no target holds (${fromSnapshot.missing
          .slice(0, 3)
          .map((m) => `${m.segmentId}: ${m.reason}`)
          .join(
            '; ',
          )}${fromSnapshot.missing.length > 3 ? '; …' : ''}); nothing was restored. The dry run lists them all; restore the others by naming them (segmentIds)`,
      );
    if (fromSnapshot && fromSnapshot.segmentIds.length === 0) {
      // An empty list selects nothing here (to a selector it would mean "every segment").
      if (!req.dryRun || !fromSnapshot.missing.length)
        throw new BackupError('not_found', `snapshot ${fromSnapshot.snapshot} names no segment of the chosen data sources`);
      return {
        plan: {
          target: target.url,
          destination: req.destination ?? 'cache',
          segments: [],
          totals: { segments: 0, bytes: 0, restore: 0, skip: 0, overwrite: 0 },
          snapshot: { id: fromSnapshot.snapshot, missing: fromSnapshot.missing },
        },
      };
    }
    const { plan, dest } = await planFor(req, target, this.env);
    const marking = coordinator && dest.kind === 'deep-storage' ? coordinator : undefined;
    if (req.dryRun) {
      const snapshot = fromSnapshot ? { snapshot: { id: fromSnapshot.snapshot, missing: fromSnapshot.missing } } : {};
      if (!marking) return { plan: { ...plan.plan, ...snapshot } };
      return {
        plan: {
          ...plan.plan,
          ...snapshot,
          markUsed: planMarkUsed(
            marking,
            plan.items.map((i) => ({ segmentId: i.segmentId, dataSource: i.manifest.dataSource })),
          ),
        },
      };
    }
    return { job: this.startJob(plan, dest, target, { ...asked }, 'manual', marking) };
  }

  /**
   * The failed segments of a manual restore asked with `retry`: those waiting for a holder go again, as a new job
   * of the same request, as soon as one answers.
   */
  private retryLater(target: Target, req: RestoreRequest, verdicts: LossVerdict[], log: JobContext['log']): void {
    const waiting = verdicts.filter((v) => v.case === 'holders_unreachable');
    if (waiting.length === 0) return;
    const waits = new HolderWaits({
      target,
      log,
      onAnswer: (ids) => {
        for (const id of ids) this.manualWaits.delete(id);
        waits.stop();
        this.request({ ...req, segmentIds: ids }).catch((e) => log.error({ segmentIds: ids, err: messageOf(e) }, 'cannot restore the segments again'));
      },
    });
    for (const v of waiting) {
      // A later request for the same segment replaces its earlier wait.
      this.manualWaits.get(v.segmentId)?.end(v.segmentId);
      waits.wait(v.segmentId, v.waitOn ?? []);
      this.manualWaits.set(v.segmentId, waits);
    }
  }

  /** Why each failed segment is not back, from its copies; the restored ones say so. */
  private async verdictsOf(target: Target, restored: string[], failed: string[], signal?: AbortSignal): Promise<LossVerdict[]> {
    const out: LossVerdict[] = restored.map((segmentId) => {
      const from = this.ctx.targetPool?.catalog.get(segmentId)?.restoredFrom;
      return { segmentId, case: 'restored', ...(from ? { from } : {}) };
    });
    for (const id of failed) {
      try {
        out.push(decide(id, await surveyCopies(target, id, { signal })));
      } catch (e) {
        out.push({ segmentId: id, case: 'holders_unreachable', unreachable: [{ target: target.url, why: messageOf(e) }], waitOn: [target.url] });
      }
    }
    return out;
  }

  /** The Coordinator to tell about a restore into deep storage: the request's, else druid.backup.coordinator, unless markUsed is false. */
  private coordinatorFor(req: RestoreRequest): string | undefined {
    if (req.markUsed === false) return undefined;
    const deep = req.destination === 'deep-storage';
    if ((req.markUsed || req.coordinator) && !deep)
      throw new BackupError('bad_request', 'markUsed and coordinator apply to a restore into deep storage ("destination": "deep-storage")');
    const c = req.coordinator !== undefined ? checkCoordinatorUrl(req.coordinator, 'coordinator', this.ctx.config) : this.ctx.config.coordinator;
    if (req.markUsed && !c) throw new BackupError('bad_request', 'markUsed needs the Coordinator: give "coordinator" or set druid.backup.coordinator');
    return deep ? c : undefined;
  }

  private startJob(
    plan: Plan,
    dest: DestinationSpec,
    target: Target,
    request: RestoreRequest & Record<string, unknown>,
    mode: RestoreMode,
    coordinator?: string,
  ): Job {
    return this.ctx.jobs.create({ type: 'restore', request, target: target.url, run: (job) => this.run(plan, dest, target, job, mode, request, coordinator) });
  }

  private async run(
    plan: Plan,
    dest: DestinationSpec,
    target: Target,
    job: JobContext,
    mode: RestoreMode,
    request: RestoreRequest,
    coordinator?: string,
  ): Promise<Record<string, unknown>> {
    const hooks: RestoreHooks = {
      claim: (id) => {
        if (this.busy.has(id)) return false;
        this.busy.add(id);
        this.ctx.cache?.setRestoring(id, true);
        return true;
      },
      release: (id) => {
        this.busy.delete(id);
        this.ctx.cache?.setRestoring(id, false);
      },
      installed: (item) => {
        this.metrics.bytes.inc({ mode }, item.bytes);
        this.auto?.restored(item.segmentId);
        if (dest.kind === 'cache') this.ctx.cache?.refresh(item.path).catch((e) => job.log.debug({ err: messageOf(e) }, 'cache index refresh failed'));
      },
    };
    const limit = this.ctx.bandwidth.limit('restore', request.maxBytesPerSecond);
    if (limit) job.setMaxBytesPerSecond(limit.bytesPerSecond);
    const out = await executePlan(plan, dest, target, this.env, job, hooks, limit);
    this.metrics.segments.inc({ mode, outcome: 'restored' }, out.restored.length);
    this.metrics.segments.inc({ mode, outcome: 'skipped' }, out.skipped.length);
    this.metrics.segments.inc({ mode, outcome: 'failed' }, out.failed.length);
    const result: Record<string, unknown> = {
      plan: plan.plan.totals,
      destination: plan.plan.destination,
      restored: out.restored,
      skipped: out.skipped.length,
      failed: out.failed,
    };
    const retry = request.retry === true;
    if (mode !== 'manual' || retry) {
      // Each segment's case, from its copies: the job says which applied, as the log does.
      const verdicts = await this.verdictsOf(
        target,
        out.restored,
        out.failed.map((f) => f.segmentId),
        job.signal,
      );
      const errors = new Map(out.failed.map((f) => [f.segmentId, f.message]));
      for (const v of verdicts) {
        if (v.case === 'restored') job.log.warn({ segmentId: v.segmentId, mode, case: v.case, from: v.from }, 'lost segment restored from the backup');
        else
          job.log.error(
            { segmentId: v.segmentId, mode, case: v.case, err: errors.get(v.segmentId), damaged: v.damaged, waitOn: v.waitOn },
            `lost segment could not be restored: ${explainVerdict(v)}`,
          );
      }
      result.outcomes = verdicts;
      if (mode === 'manual') this.retryLater(target, request, verdicts, job.log);
    }
    // A segment now whole in the cache is a good source for any copy of it found damaged on the way.
    if (dest.kind === 'cache' && out.restored.length && plan.plan.destination === 'cache') void this.repairCopies(out.restored);
    if (coordinator) {
      // Every segment now whole in deep storage, restored or already there; the failed ones stay as Druid has them.
      const whole = new Set([...out.restored, ...out.skipped]);
      const marked = await markUsed(
        planMarkUsed(
          coordinator,
          plan.items.filter((i) => whole.has(i.segmentId)).map((i) => ({ segmentId: i.segmentId, dataSource: i.manifest.dataSource })),
        ),
        {
          auth: druidAuthFor(coordinator, this.ctx.config),
          signal: job.signal,
          // Druid 33's Coordinator answers its forwarded markUsed with a 500: ask the Overlord (the configured one for
          // the configured Coordinator; else the Coordinator's host, which serves the Overlord's API when it runs it).
          overlord: coordinator === this.ctx.config.coordinator ? (this.ctx.config.overlord ?? coordinator) : coordinator,
        },
      );
      for (const [ds, o] of Object.entries(marked.outcome)) {
        if (o.error) job.segmentFailed(undefined, `markUsed of ${ds} on ${coordinator}: ${o.error}`);
        else job.log.info({ dataSource: ds, coordinator, changed: o.changed }, 'restored segments marked used on the Coordinator');
      }
      result.markUsed = marked;
    }
    return result;
  }

  /** Restores lost or damaged segments of the cache from the node's target, as a job everyone can see; a verdict for each. */
  private async repair(target: Target, segmentIds: string[], mode: RepairMode): Promise<LossVerdict[]> {
    const req: RestoreRequest = { target: target.url, segmentIds, destination: 'cache' };
    let planned: { plan: Plan; dest: DestinationSpec };
    try {
      // Damage that kept every file's fingerprint (bit rot) must not be taken for a match: no digests from active backup here.
      planned = await planFor(req, target, { ...this.env, knownDigests: undefined });
    } catch (e) {
      if (!(e instanceof BackupError)) throw e;
      this.metrics.segments.inc({ mode, outcome: 'failed' }, segmentIds.length);
      const verdicts = await this.verdictsOf(target, [], segmentIds);
      for (const v of verdicts)
        this.ctx.log.error({ segmentId: v.segmentId, mode, case: v.case, err: messageOf(e) }, `cannot restore a lost segment: ${explainVerdict(v)}`);
      return verdicts;
    }
    const job = this.startJob(planned.plan, planned.dest, target, { ...req, automatic: mode }, mode);
    const done = await this.ctx.jobs.wait(job.id);
    const verdicts = new Map(((done?.result?.outcomes as LossVerdict[] | undefined) ?? []).map((v) => [v.segmentId, v]));
    for (const s of planned.plan.plan.segments.filter((x) => x.action === 'skip')) verdicts.set(s.segmentId, { segmentId: s.segmentId, case: 'restored' });
    return segmentIds.map((id) => verdicts.get(id) ?? { segmentId: id, case: 'restorable' });
  }

  /** Looks for damaged copies now and then (and at start: a repair a crash cut short is finished). */
  private startRepairs(): void {
    const set = this.ctx.targets;
    if (!set) return;
    // What a crash left of a repair's staging is no copy of anything.
    rmSync(this.repairStaging, { recursive: true, force: true });
    const pass = () => {
      const ids = [...set.pool.catalog.ids()].filter((id) => set.damagedCopies(id).length > 0);
      if (ids.length) void this.repairCopies(ids);
    };
    // Once the cache is known, so a segment it holds is repaired from it rather than downloaded.
    (this.ctx.cache?.scan() ?? Promise.resolve()).then(pass).catch((e) => this.ctx.log.warn({ err: messageOf(e) }, 'cannot look for damaged copies to repair'));
    this.repairTimer = setInterval(pass, Math.max(REPAIR_PERIOD_MS, this.ctx.config.autoRestoreCheckMs));
    this.repairTimer.unref();
  }

  private get repairStaging(): string {
    return path.join(this.ctx.config.stateDir, 'repair');
  }

  /**
   * Replaces the damaged copies of these segments on the node's targets, then has each read back and verified.
   * The bytes come from the node's cache when its files are exactly the manifest's (read in full here), else from
   * a good copy on another target, received (every digest checked) into a staging directory under the state
   * directory first.
   */
  repairCopies(segmentIds: string[]): Promise<void> {
    const set = this.ctx.targets;
    if (!set) return Promise.resolve();
    const run = async () => {
      const log = this.ctx.log.child({ component: 'repair' });
      for (const id of segmentIds) {
        const damaged = set.damagedCopies(id);
        if (damaged.length === 0 || this.busy.has(id)) continue;
        let staging: string | undefined;
        const cached = this.ctx.cache?.get(id);
        // No good copy recorded and none here: nothing to repair from (a restore says so); looked at again next pass.
        if (!cached && set.copiesOf(id).copies === 0) continue;
        try {
          const m = await set.manifest(id);
          if (!m) continue;
          let dir = cached?.dir;
          let from = 'the cache';
          if (!dir || (await checkSegmentDir(m, dir, { memo: this.memo, fresh: true })).length > 0) {
            mkdirSync(this.repairStaging, { recursive: true, mode: 0o700 });
            staging = await mkdtemp(path.join(this.repairStaging, 'segment-'));
            const reader = await set.read(id, { planned: plannedOf(m) });
            await receiveInto(reader, m, staging);
            dir = staging;
            from = 'a good copy on another target';
          }
          log.warn({ segmentId: id, targets: damaged.map((d) => d.target), problems: damaged.map((d) => d.problem), from }, 'repairing damaged copies');
          const src = dir;
          const r = await set.repair(
            {
              segmentId: id,
              descriptor: m.descriptor,
              node: this.ctx.config.nodeName,
              files: m.files.map((f) => {
                const file = path.join(src, f.name);
                return { name: f.name, size: f.size, path: file, open: () => readStream(file, f.size) };
              }),
            },
            m.digest,
          );
          this.metrics.repairs.inc({ outcome: 'repaired' }, r.repaired.length);
          this.metrics.repairs.inc({ outcome: 'failed' }, r.failed.length);
          for (const t of r.repaired) log.warn({ segmentId: id, target: t }, 'damaged copy replaced and verified clean');
          for (const f of r.failed) log.error({ segmentId: id, target: f.target, err: f.error }, 'damaged copy not repaired; tried again later');
        } catch (e) {
          log.error({ segmentId: id, err: messageOf(e) }, 'damaged copies not repaired; tried again later');
        } finally {
          if (staging) await rm(staging, { recursive: true, force: true });
        }
      }
    };
    const next = (this.repairing ?? Promise.resolve()).then(run);
    const tail: Promise<void> = next.finally(() => {
      if (this.repairing === tail) this.repairing = undefined;
    });
    this.repairing = tail;
    return tail;
  }
}
