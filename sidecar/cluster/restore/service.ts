/**
 * `POST /data/v1/cluster/restore` on the cluster sidecar: a request checked, the snapshot found in a target, the
 * context built and every step planned (run.ts). A dry run answers the plan; otherwise a `recovery` job plans again
 * when it starts (the cluster may have changed since) and runs the steps, its progress following the plan's items,
 * its result the plan and what each step did. The HTTP route only translates.
 */
import path from 'node:path';
import type { ClusterRestorePlan, ClusterRestoreRequest, Job } from '../../api.js';
import type { SidecarConfig } from '../../config.js';
import { periodToMillis } from '../../druid/time.js';
import { BackupError } from '../../errors.js';
import { DigestMemo } from '../../restore/digests.js';
import type { JobRegistry } from '../../services/jobs.js';
import type { SnapshotHeader } from '../../snapshot/model.js';
import type { SnapshotService } from '../../snapshot/service.js';
import type { SnapshotStore } from '../../snapshot/store.js';
import type { Target } from '../../store/target.js';
import { isAllowed } from '../../targets/allow.js';
import { parseTargetUrl } from '../../targets/url.js';
import type { DeepStorageHome } from './deepStorage.js';
import { describeHome, parseDeepStorageHome } from './deepStorage.js';
import { buildContext, chooseSnapshot, planSteps, restoreSteps, runSteps } from './run.js';
import type { ClusterRestoreContext } from './step.js';

export interface ClusterRestoreDeps {
  config: SidecarConfig;
  jobs: JobRegistry;
  snapshots?: SnapshotService;
  /** The node's configured targets, as one (a set), when it has any. */
  targets?: Target;
  openTarget(url: string): Target;
}

function inside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** `deepStorage` of a request: a directory clear of the sidecar's own state and store, or a bucket it may use. */
export function checkHome(raw: string, config: Pick<SidecarConfig, 'stateDir' | 'store' | 'allowedTargets' | 'druid'>): DeepStorageHome {
  const home = parseDeepStorageHome(raw);
  if (home.kind === 'local') {
    for (const [what, p] of [
      ['state directory', config.stateDir],
      ['store', config.store],
    ] as const)
      if (p && (inside(home.directory, p) || inside(p, home.directory)))
        throw new BackupError('bad_request', `deepStorage ${home.directory} overlaps the sidecar's ${what} ${p}`);
    return home;
  }
  const url = parseTargetUrl(`s3://${home.bucket}${home.baseKey ? `/${home.baseKey}` : ''}`, 'deepStorage');
  if (home.bucket !== config.druid.storage.s3?.bucket && !isAllowed(config.allowedTargets, url))
    throw new BackupError(
      'target_not_allowed',
      `deepStorage: ${url.url} is neither this cluster's deep storage bucket (druid.storage.bucket) nor allowed by druid.backup.allowedTargets`,
    );
  return home;
}

export class ClusterRestoreService {
  constructor(private readonly d: ClusterRestoreDeps) {}

  /** The snapshots a request may choose from, and where each one's blobs and segments are read. */
  private async source(req: ClusterRestoreRequest, signal?: AbortSignal): Promise<{ header: SnapshotHeader; blobs: SnapshotStore; target: Target }> {
    if (req.target !== undefined) {
      const t = this.d.openTarget(req.target);
      if (!t.snapshots) throw new BackupError('bad_request', `${t.url} keeps no snapshots`);
      const headers: SnapshotHeader[] = [];
      for (const id of await t.snapshots.listSnapshots(signal)) {
        const h = await t.snapshots.getHeader(id, signal);
        if (h) headers.push(h);
      }
      return { header: chooseSnapshot(headers, req), blobs: t.snapshots, target: t };
    }
    if (!this.d.snapshots) throw new BackupError('bad_request', 'this sidecar reads no snapshots: name the target holding them');
    const all = await this.d.snapshots.list(signal);
    const header = chooseSnapshot(all, req);
    const holder = this.d.snapshots.holderOf(all.find((s) => s.id === header.id)!);
    return { header, blobs: holder.snapshots!, target: this.d.targets ?? holder };
  }

  private async prepare(req: ClusterRestoreRequest, signal?: AbortSignal) {
    const c = this.d.config;
    if (!c.coordinator) throw new BackupError('bad_config', 'a cluster restore needs the Coordinator: set druid.backup.coordinator (--coordinator)');
    const home = req.deepStorage !== undefined ? checkHome(req.deepStorage, c) : undefined;
    const checkMs = req.checkTimeout !== undefined ? periodToMillis(req.checkTimeout) : undefined;
    if (req.checkTimeout !== undefined && (checkMs === undefined || checkMs <= 0))
      throw new BackupError('bad_request', `checkTimeout ${JSON.stringify(req.checkTimeout)} is not an ISO-8601 period`);
    const { header, blobs, target } = await this.source(req, signal);
    const ctx: ClusterRestoreContext = await buildContext({
      header,
      blobs,
      target,
      ...(req.dataSources ? { dataSources: req.dataSources } : {}),
      ...(req.intervals ? { intervals: req.intervals } : {}),
      ...(home ? { home } : {}),
      coordinator: c.coordinator,
      overlord: c.overlord ?? c.coordinator,
      ...(c.broker ? { broker: c.broker } : {}),
      ...(c.druidAuth ? { auth: c.druidAuth } : {}),
      author: `druid-backup on ${c.nodeName}`,
      comment: `cluster restore from snapshot ${header.id}${req.intervals?.length ? ` in ${req.intervals.join(', ')}` : ''}${home ? ` into ${describeHome(home)}` : ''}`,
      ...(signal ? { signal } : {}),
    });
    const steps = restoreSteps({
      deepStorage: { storage: c.druid.storage, ...(home ? { home } : {}), memo: new DigestMemo(), workers: c.workers },
      rollback: { suspendCompaction: req.suspendCompaction === true },
      // Cluster-wide settings (default rules, dynamic configs, lookups) only when the whole snapshot is restored.
      metadata: { clusterWide: !req.dataSources?.length, ...(req.secrets ? { secrets: req.secrets } : {}) },
      ...(checkMs ? { check: { timeoutMs: checkMs } } : {}),
    });
    return { ctx, steps };
  }

  /** A dry run: the plan, nothing changed. */
  async plan(req: ClusterRestoreRequest, signal?: AbortSignal): Promise<ClusterRestorePlan> {
    const { ctx, steps } = await this.prepare(req, signal);
    return (await planSteps(steps, ctx)).plan;
  }

  /** The job; its request is checked (the snapshot found) before it is answered. */
  async start(req: ClusterRestoreRequest): Promise<Job> {
    // Two restores planning against the same cluster would each act on a plan the other makes stale.
    const running = [...this.d.jobs.list({ type: 'recovery', state: 'running' }), ...this.d.jobs.list({ type: 'recovery', state: 'queued' })];
    if (running.length) throw new BackupError('conflict', `cluster restore ${running[0]!.id} is running: wait for it (druid-backup jobs) or cancel it`);
    await this.prepare(req);
    return this.d.jobs.create({
      type: 'recovery',
      // The secrets' paths only: their values are never kept in the job (nor its log, nor the state directory).
      request: { ...req, ...(req.secrets ? { secrets: Object.keys(req.secrets) } : {}) },
      run: async (job) => {
        const { ctx, steps } = await this.prepare(req, job.signal);
        const { plan, plans } = await planSteps(steps, ctx);
        if (plan.refused) {
          for (const s of plan.steps) for (const r of s.refusals) job.error(`${s.step}: ${r}`);
          return { plan };
        }
        const out = await runSteps(steps, ctx, plans, job, { suspendCompaction: req.suspendCompaction === true });
        return { snapshot: ctx.snapshot.id, plan, results: out.results, notRun: out.notRun, problems: out.problems };
      },
    });
  }
}
