/**
 * Restore inside a running sidecar: plans and starts restore jobs for the API, runs the automatic restore and
 * the scrub of the node's cache, keeps one restore per segment at a time, tells active backup which segments
 * are being installed, and counts everything in /metrics. At start it removes what a crash left of restores.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Counter } from 'prom-client';
import type { Job, RestorePlan, RestoreRequest } from '../api.js';
import { BackupError, messageOf } from '../errors.js';
import type { SidecarContext } from '../server/context.js';
import type { JobContext } from '../server/jobs.js';
import type { Target } from '../store/target.js';
import type { CacheLayout } from '../druid/layout.js';
import { checkCoordinatorUrl, markUsed, planMarkUsed } from '../targets/coordinator.js';
import { resolveTarget } from '../targets/resolve.js';
import { writeFileAtomic } from '../util/atomic.js';
import type { RepairMode } from './auto.js';
import { AutoRestore } from './auto.js';
import { DigestMemo } from './digests.js';
import type { DestinationSpec, Plan } from './plan.js';
import type { RestoreEnv, RestoreHooks } from './restorer.js';
import { cleanLeftovers, executePlan, planFor } from './restorer.js';

export type RestoreMode = 'manual' | RepairMode;

class RestoreMetrics {
  readonly segments: Counter<'mode' | 'outcome'>;
  readonly bytes: Counter<'mode'>;
  readonly lost: Counter<'reason'>;
  readonly scrubbed: Counter<'outcome'>;
  constructor(ctx: SidecarContext) {
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
  }
}

export class RestoreService {
  readonly memo = new DigestMemo();
  private readonly busy = new Set<string>();
  private readonly metrics: RestoreMetrics;
  private auto?: AutoRestore;
  private unsubscribe?: () => void;
  /** The layout this node's cache had when last seen with segments: an emptied cache is restored in it. */
  private seenLayout?: CacheLayout;

  constructor(private readonly ctx: SidecarContext) {
    this.metrics = new RestoreMetrics(ctx);
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
    const target = this.ctx.targets ?? (c.target ? this.ctx.openTarget(c.target) : undefined);
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
      restore: (ids, mode) => this.repair(target, ids, mode),
      onLoss: (reason) => this.metrics.lost.inc({ reason }),
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
    await this.auto?.stop();
  }

  /** `POST /data/v1/restore`: the plan of a dry run, or the started job. Bad input and a plan that does not fit fail here, before any job. */
  async request(req: RestoreRequest): Promise<{ plan: RestorePlan } | { job: Job }> {
    const target = resolveTarget(this.ctx, req.target);
    const coordinator = this.coordinatorFor(req);
    const { plan, dest } = await planFor(req, target, this.env);
    const marking = coordinator && dest.kind === 'deep-storage' ? coordinator : undefined;
    if (req.dryRun) {
      if (!marking) return { plan: plan.plan };
      return {
        plan: {
          ...plan.plan,
          markUsed: planMarkUsed(
            marking,
            plan.items.map((i) => ({ segmentId: i.segmentId, dataSource: i.manifest.dataSource })),
          ),
        },
      };
    }
    return { job: this.startJob(plan, dest, target, { ...req }, 'manual', marking) };
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

  private startJob(plan: Plan, dest: DestinationSpec, target: Target, request: Record<string, unknown>, mode: RestoreMode, coordinator?: string): Job {
    return this.ctx.jobs.create({ type: 'restore', request, target: target.url, run: (job) => this.run(plan, dest, target, job, mode, coordinator) });
  }

  private async run(
    plan: Plan,
    dest: DestinationSpec,
    target: Target,
    job: JobContext,
    mode: RestoreMode,
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
    const out = await executePlan(plan, dest, target, this.env, job, hooks);
    this.metrics.segments.inc({ mode, outcome: 'restored' }, out.restored.length);
    this.metrics.segments.inc({ mode, outcome: 'skipped' }, out.skipped.length);
    this.metrics.segments.inc({ mode, outcome: 'failed' }, out.failed.length);
    if (mode !== 'manual') {
      for (const id of out.restored) job.log.warn({ segmentId: id, mode }, 'lost segment restored from the backup');
      for (const f of out.failed) job.log.error({ segmentId: f.segmentId, mode, err: f.message }, 'lost segment could not be restored');
    }
    const result: Record<string, unknown> = {
      plan: plan.plan.totals,
      destination: plan.plan.destination,
      restored: out.restored,
      skipped: out.skipped.length,
      failed: out.failed,
    };
    if (coordinator) {
      // Every segment now whole in deep storage, restored or already there; the failed ones stay as Druid has them.
      const whole = new Set([...out.restored, ...out.skipped]);
      const marked = await markUsed(
        planMarkUsed(
          coordinator,
          plan.items.filter((i) => whole.has(i.segmentId)).map((i) => ({ segmentId: i.segmentId, dataSource: i.manifest.dataSource })),
        ),
        job.signal,
      );
      for (const [ds, o] of Object.entries(marked.outcome)) {
        if (o.error) job.segmentFailed(undefined, `markUsed of ${ds} on ${coordinator}: ${o.error}`);
        else job.log.info({ dataSource: ds, coordinator, changed: o.changed }, 'restored segments marked used on the Coordinator');
      }
      result.markUsed = marked;
    }
    return result;
  }

  /** Restores lost or damaged segments of the cache from the node's target, as a job everyone can see. */
  private async repair(target: Target, segmentIds: string[], mode: RepairMode): Promise<string[]> {
    const req: RestoreRequest = { target: target.url, segmentIds, destination: 'cache' };
    let planned: { plan: Plan; dest: DestinationSpec };
    try {
      // Damage that kept every file's fingerprint (bit rot) must not be taken for a match: no digests from active backup here.
      planned = await planFor(req, target, { ...this.env, knownDigests: undefined });
    } catch (e) {
      this.metrics.segments.inc({ mode, outcome: 'failed' }, segmentIds.length);
      this.ctx.log.error({ segmentIds, mode, err: messageOf(e) }, 'cannot restore lost segments');
      if (e instanceof BackupError) return segmentIds;
      throw e;
    }
    const job = this.startJob(planned.plan, planned.dest, target, { ...req, automatic: mode }, mode);
    const done = await this.ctx.jobs.wait(job.id);
    const ok = new Set<string>([
      ...((done?.result?.restored as string[] | undefined) ?? []),
      ...planned.plan.plan.segments.filter((s) => s.action === 'skip').map((s) => s.segmentId),
    ]);
    return segmentIds.filter((id) => !ok.has(id));
  }
}
