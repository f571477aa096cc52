/**
 * Snapshots and prune as a service of the sidecar: which targets keep its snapshots, taking one (a job, on demand
 * or on `druid.backup.snapshotPeriod`), listing them across targets, pins and forget, and the prune of this
 * sidecar's own store or of a bucket (a job, on `druid.backup.prunePeriod`). The HTTP layer
 * (server/routes/snapshots.ts) and the CLI only translate.
 *
 * The metadata comes from `captureMetadata`, given by whoever builds the service (the daemon): the cluster side
 * (sidecar/cluster/metadata.ts, `captureClusterMetadata`) reads Druid's rules, configs, specs and lookups.
 */
import type { Logger } from 'pino';
import type { Job } from '../api.js';
import type { SidecarConfig } from '../config.js';
import { BackupError, messageOf } from '../errors.js';
import type { JobRegistry } from '../server/jobs.js';
import type { Target } from '../store/target.js';
import { checkSnapshotId } from './check.js';
import type { Pin } from './check.js';
import type { SnapshotHeader } from './model.js';
import type { PruneResult } from './prune.js';
import { prune } from './prune.js';
import type { CaptureClusterMetadata } from './take.js';
import { takeSnapshot } from './take.js';

/** A cluster sidecar (a Coordinator and no cache) snapshots every hour unless told otherwise; a node with a cache does not. */
export const CLUSTER_SNAPSHOT_MS = 3600_000;

export function snapshotPeriodMs(config: Pick<SidecarConfig, 'snapshotMs' | 'coordinator'>, o: { cluster: boolean }): number {
  if (config.snapshotMs !== undefined) return config.snapshotMs;
  return o.cluster && config.coordinator ? CLUSTER_SNAPSHOT_MS : 0;
}

export interface SnapshotSummary extends SnapshotHeader {
  pinned: boolean;
  /** The targets holding it. */
  targets: string[];
}

export interface SnapshotServiceOptions {
  config: SidecarConfig;
  log: Logger;
  jobs: JobRegistry;
  /** The targets this sidecar writes snapshots to and reads catalogs of (its configured targets, its own store). */
  targets(): Target[];
  /** The store this sidecar prunes by itself (its --store), when it has one. */
  ownStore?: Target;
  openTarget(url: string): Target;
  captureMetadata: CaptureClusterMetadata;
  /** A cluster sidecar: snapshots every hour by default. */
  cluster?: boolean;
}

export class SnapshotService {
  private timers: NodeJS.Timeout[] = [];
  private running?: Job;

  constructor(private readonly o: SnapshotServiceOptions) {}

  private keeping(): Target[] {
    const ts = this.o.targets().filter((t) => t.snapshots);
    if (!ts.length)
      throw new BackupError('bad_config', 'no target of this sidecar keeps snapshots: configure druid.backup.target(s), or start it with --store');
    return ts;
  }

  /** `POST /data/v1/snapshots`: a job taking one snapshot. */
  create(request: { dataSources?: string[] } = {}): Job {
    if (!this.o.config.coordinator) throw new BackupError('bad_config', 'a snapshot needs the Coordinator: set druid.backup.coordinator (--coordinator)');
    const targets = this.keeping();
    return this.o.jobs.create({
      type: 'snapshot',
      request: { ...request },
      run: async (job) => {
        const r = await takeSnapshot({
          coordinator: this.o.config.coordinator!,
          ...(request.dataSources?.length ? { dataSources: request.dataSources } : {}),
          catalogs: this.o.targets(),
          targets,
          node: this.o.config.nodeName,
          captureMetadata: this.o.captureMetadata,
          log: job.log,
          signal: job.signal,
        });
        job.setTotals(r.header.segments, r.header.bytes);
        for (const f of r.failed) job.error(`${f.target}: ${f.error}`);
        return { snapshot: r.header.id, complete: r.header.complete, segments: r.header.segments, written: r.written, failed: r.failed, reusedBlobs: r.reused };
      },
    });
  }

  /** Every snapshot of every target, newest first, with the targets holding it. */
  async list(signal?: AbortSignal): Promise<SnapshotSummary[]> {
    const by = new Map<string, SnapshotSummary>();
    for (const t of this.keeping()) {
      let ids: string[];
      let pins: Set<string>;
      try {
        ids = await t.snapshots!.listSnapshots(signal);
        pins = new Set(await t.snapshots!.listPins(signal));
      } catch (e) {
        this.o.log.warn({ target: t.url, err: messageOf(e) }, 'snapshots of this target not listed');
        continue;
      }
      for (const id of ids) {
        const known = by.get(id);
        if (known) {
          known.targets.push(t.url);
          known.pinned ||= pins.has(id);
          continue;
        }
        const h = await t.snapshots!.getHeader(id, signal);
        if (h) by.set(id, { ...h, pinned: pins.has(id), targets: [t.url] });
      }
    }
    // Newest first by time (ids of one second differ only in their random tail), then id.
    return [...by.values()].sort((a, b) => Date.parse(b.time) - Date.parse(a.time) || (a.id < b.id ? 1 : -1));
  }

  async show(id: string, signal?: AbortSignal): Promise<SnapshotSummary> {
    checkSnapshotId(id);
    const found = (await this.list(signal)).find((s) => s.id === id);
    if (!found) throw new BackupError('not_found', `no target of this sidecar holds snapshot ${id} (retention may have removed it)`);
    return found;
  }

  /** A target that holds snapshot `s` (to read its blobs from). */
  holderOf(s: SnapshotSummary): Target {
    const t = this.keeping().find((k) => s.targets.includes(k.url));
    if (!t) throw new BackupError('not_found', `no target of this sidecar holds snapshot ${s.id} now`);
    return t;
  }

  async pin(id: string, pin: Pin | undefined, signal?: AbortSignal): Promise<SnapshotSummary> {
    const s = await this.show(id, signal);
    for (const t of this.keeping()) if (s.targets.includes(t.url)) await t.snapshots!.setPin(id, pin, signal);
    return { ...s, pinned: pin !== undefined };
  }

  async forget(id: string, signal?: AbortSignal): Promise<{ forgotten: string; targets: string[] }> {
    const s = await this.show(id, signal);
    for (const t of this.keeping()) if (s.targets.includes(t.url)) await t.snapshots!.forget(id, signal);
    return { forgotten: id, targets: s.targets };
  }

  /** The store a prune request names: this sidecar's own store, or a bucket (s3://) it may use. */
  pruneTarget(url?: string): Target {
    if (url === undefined) {
      if (!this.o.ownStore) throw new BackupError('not_found', 'this sidecar keeps no store; name a bucket (target: s3://bucket/prefix) to prune');
      return this.o.ownStore;
    }
    const t = this.o.openTarget(url);
    if (!t.snapshots || t.url.startsWith('http')) throw new BackupError('bad_request', `${t.url} prunes its own store: ask it`);
    return t;
  }

  /** `POST /data/v1/store/prune`: a job; a dry run's result is the plan. */
  prune(request: { dryRun?: boolean; target?: string } = {}): Job {
    const target = this.pruneTarget(request.target);
    return this.o.jobs.create({
      type: 'prune',
      request: { ...request },
      target: target.url,
      run: async (job) => {
        const r: PruneResult = await prune(target, {
          policy: this.o.config.retention,
          dryRun: request.dryRun === true,
          owner: `${this.o.config.nodeName}/${process.pid}/${job.id}`,
          log: job.log,
          signal: job.signal,
        });
        job.setTotals(r.remove.length, r.bytes.prunable);
        return r as unknown as Record<string, unknown>;
      },
    });
  }

  /** Starts the periodic snapshot and prune, as configured. */
  start(): void {
    const every = (ms: number, what: string, fn: () => Job) => {
      if (ms <= 0) return;
      const t = setInterval(() => {
        if (this.running && (this.running.state === 'running' || this.running.state === 'queued')) return;
        try {
          this.running = fn();
        } catch (e) {
          this.o.log.warn({ err: messageOf(e) }, `periodic ${what} not started`);
        }
      }, ms);
      t.unref();
      this.timers.push(t);
    };
    every(snapshotPeriodMs(this.o.config, { cluster: this.o.cluster === true }), 'snapshot', () => this.create());
    if (this.o.ownStore) every(this.o.config.pruneMs, 'prune', () => this.prune());
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
  }
}
