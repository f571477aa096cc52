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
import { Gauge } from 'prom-client';
import type { Registry } from 'prom-client';
import type { Job } from '../api.js';
import type { SidecarConfig } from '../config.js';
import { BackupError, messageOf } from '../errors.js';
import type { SourceState } from '../backup/state.js';
import type { JobRegistry } from '../services/jobs.js';
import type { Target } from '../store/target.js';
import { checkSnapshotId } from './check.js';
import type { Pin } from './check.js';
import type { MissingReason, SnapshotHeader } from './model.js';
import type { PrunePlan, PruneResult } from './prune.js';
import { leaseOwner, planPrune, prune } from './prune.js';
import type { SnapshotOutlook } from './retention.js';
import { cadenceOf, retentionOutlook } from './retention.js';
import type { CaptureClusterMetadata } from './take.js';
import { takeSnapshot } from './take.js';

/** A cluster sidecar (a Coordinator and no cache) snapshots every hour unless told otherwise; a node with a cache does not. */
export const CLUSTER_SNAPSHOT_MS = 3600_000;

export function snapshotPeriodMs(config: Pick<SidecarConfig, 'snapshotMs' | 'coordinator'>, o: { cluster: boolean }): number {
  if (config.snapshotMs !== undefined) return config.snapshotMs;
  return o.cluster && config.coordinator ? CLUSTER_SNAPSHOT_MS : 0;
}

/** `failed` when this node's last backup of the segment failed; else the snapshot's default (pending). */
function failedHere(state: SourceState, id: string): MissingReason | undefined {
  return state.get(id)?.backup?.state === 'failed' ? 'failed' : undefined;
}

export interface SnapshotSummary extends SnapshotHeader {
  pinned: boolean;
  /** The targets holding it. */
  targets: string[];
  /**
   * What this sidecar's retention policy says of it among the snapshots of the first target listed that holds it:
   * kept and why (pinned, the rules), or not, and when it would stop being kept at the usual cadence of snapshots.
   */
  retention?: SnapshotOutlook;
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
  /** This node's backup state, when it has a cache: a used segment whose backup failed here is missing as `failed`. */
  state?: SourceState;
  /** Where the retention gauges go (the sidecar's /metrics). */
  registry?: Registry;
}

/** Stored bytes split by retention (`GET /data/v1/store/stats` `retention`, and /metrics). */
export interface RetentionFigures {
  at: string;
  stored: number;
  usedByLatest: number;
  keptByRetention: number;
  prunable: number;
  /** Bytes Druid used at the latest snapshot (its segments' sizes). */
  druidUses?: number;
  /** stored / druidUses: 1.0 holds only what Druid uses. */
  overhead?: number;
}

/** The figures are measured again (a dry-run plan, in the background) when older than this. */
const FIGURES_MS = 5 * 60_000;

export class SnapshotService {
  private timers: NodeJS.Timeout[] = [];
  private running?: Job;
  private lastFigures?: RetentionFigures;
  private measuring?: Promise<void>;

  constructor(private readonly o: SnapshotServiceOptions) {
    const registry = o.registry;
    if (!registry) return;
    const figures = () => this.figures();
    new Gauge({
      name: 'druid_backup_store_retention_bytes',
      help: "Bytes of this sidecar's store by retention: used by the latest snapshot, kept by retention (older snapshots, nodes, grace), prunable.",
      labelNames: ['kind'],
      registers: [registry],
      collect() {
        const f = figures();
        if (!f) return;
        this.set({ kind: 'used_by_latest' }, f.usedByLatest);
        this.set({ kind: 'kept_by_retention' }, f.keptByRetention);
        this.set({ kind: 'prunable' }, f.prunable);
      },
    });
    new Gauge({
      name: 'druid_backup_store_overhead_ratio',
      help: 'Bytes stored divided by the bytes Druid used at the latest snapshot (1.0: the store holds only what Druid uses).',
      registers: [registry],
      collect() {
        const f = figures();
        if (f?.overhead !== undefined) this.set(f.overhead);
      },
    });
  }

  /** The last measured figures of the own store; measures again in the background when stale. */
  figures(): RetentionFigures | undefined {
    const store = this.o.ownStore;
    if (!store) return undefined;
    const stale = !this.lastFigures || Date.now() - Date.parse(this.lastFigures.at) > FIGURES_MS;
    if (stale && !this.measuring)
      this.measuring = planPrune(store, this.o.config.retention)
        .then((p) => this.remember(p))
        .catch((e) => this.o.log.warn({ err: messageOf(e) }, 'retention figures not measured'))
        .finally(() => (this.measuring = undefined));
    return this.lastFigures;
  }

  /** Measures now (a dry-run plan of the own store). */
  async measure(): Promise<RetentionFigures | undefined> {
    if (!this.o.ownStore) return undefined;
    this.remember(await planPrune(this.o.ownStore, this.o.config.retention));
    return this.lastFigures;
  }

  private remember(p: PrunePlan & { headers?: Map<string, SnapshotHeader> }): void {
    const latest = p.snapshots[0] ? p.headers?.get(p.snapshots[0].id) : undefined;
    const druidUses = latest?.bytes;
    this.lastFigures = {
      at: p.at,
      ...p.bytes,
      ...(druidUses !== undefined ? { druidUses } : {}),
      ...(druidUses ? { overhead: Math.round((p.bytes.stored / druidUses) * 1000) / 1000 } : {}),
    };
  }

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
          ...(this.o.config.overlord ? { overlord: this.o.config.overlord } : {}),
          ...(this.o.config.broker ? { broker: this.o.config.broker } : {}),
          ...(this.o.config.druidAuth ? { auth: this.o.config.druidAuth } : {}),
          ...(request.dataSources?.length ? { dataSources: request.dataSources } : {}),
          catalogs: this.o.targets(),
          targets,
          node: this.o.config.nodeName,
          captureMetadata: this.o.captureMetadata,
          ...(this.o.state ? { missingReason: (id: string) => failedHere(this.o.state!, id) } : {}),
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
    const held: Array<{ ids: string[]; pins: Set<string> }> = [];
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
      held.push({ ids, pins });
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
    // Retention applies to the snapshots of one store: each is judged among those of the first target holding it.
    const configured = snapshotPeriodMs(this.o.config, { cluster: this.o.cluster === true });
    for (const { ids, pins } of held) {
      const facts = ids.flatMap((id) => {
        const s = by.get(id);
        return s ? [{ id, timeMs: Date.parse(s.time), pinned: pins.has(id) }] : [];
      });
      const cadenceMs = configured || cadenceOf(facts.map((f) => f.timeMs));
      const outlook = retentionOutlook(facts, this.o.config.retention, { nowMs: Date.now(), ...(cadenceMs ? { cadenceMs } : {}) });
      for (const f of facts) by.get(f.id)!.retention ??= outlook.get(f.id);
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
          owner: leaseOwner(this.o.config.nodeName, job.id),
          log: job.log,
          signal: job.signal,
        });
        job.setTotals(r.removeCount, r.bytes.prunable);
        if (target === this.o.ownStore) await this.measure().catch(() => undefined);
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
