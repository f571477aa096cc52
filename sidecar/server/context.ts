/**
 * `SidecarContext`: everything a route module (server/routes/*.ts) may use, built once by the daemon
 * (sidecar/daemon.ts) and passed to every route module's `register(app, ctx)`.
 *
 * - `config`: the resolved configuration (config.ts): Druid's cache locations, info_dir, deep storage, and the
 *   `druid.backup.*` settings.
 * - `log`: the pino logger; use `ctx.log.child({...})` for a component.
 * - `jobs`: the job registry (jobs.ts). Long work (backup, restore, verify) runs as a job: `ctx.jobs.create({type,
 *   request, target, run})` answers at once with the job; `run(jobCtx)` gets an AbortSignal and reports progress.
 * - `events`: the event bus (events.ts); publish `segment`, `segment-removed`, `job`, `stored` events, streamed to
 *   clients by `GET /data/v1/events`.
 * - `metrics`: the Prometheus metrics (metrics.ts).
 * - `bandwidth`: the node's bandwidth limits (bandwidth.ts): `bandwidth.limit('backup' | 'restore', asked)` is the
 *   limit a transfer runs under, a job's own lower one included; a higher one is refused with 400.
 * - `store`: the local store when this sidecar is a target (`--store DIR`), else undefined.
 * - `cache`: the node's segment cache with each segment's backup state when this sidecar is a source (its
 *   runtime.properties names cache locations), else undefined. Restore marks segments it is installing with
 *   `cache.setRestoring(id, true)` so active backup leaves them alone, and calls `cache.refresh(dir)` after.
 * - `state`: the source's persistent per-segment state (file digests by fingerprint, backup records), with `cache`.
 * - `active`: active backup, when a target is configured and `druid.backup.active` is true.
 * - `restore`: the restore service (restore/service.ts): restore jobs, automatic restore, repair of damaged copies.
 * - `openTarget(url)`: the `Target` behind a URL (http(s)://, s3://), with this sidecar's credentials for it; the
 *   same object for the same URL while it stays in the bounded cache (targets/cache.ts), so connections are reused.
 *   Throws `bad_request` for a URL it cannot use and 403 `target_not_allowed` for one druid.backup.allowedTargets
 *   does not allow, before anything is opened.
 * - `targets`: the node's target, always a set (`druid.backup.targets`, or a set of one for `druid.backup.target`); `targetPool` the health of
 *   every target used through a set (sidecar/targets/). Requests resolve their `target` field with
 *   targets/resolve.ts.
 */
import type { Logger } from 'pino';
import type { ActiveBackup } from '../backup/active.js';
import type { CacheIndex } from '../backup/cacheIndex.js';
import type { SourceState } from '../backup/state.js';
import type { RestoreService } from '../restore/service.js';
import type { SidecarConfig } from '../config.js';
import type { LocalStore } from '../store/local/store.js';
import type { Target } from '../store/target.js';
import type { SnapshotService } from '../snapshot/service.js';
import type { ClusterRestoreService } from '../cluster/restore/service.js';
import type { TargetPool, TargetSet } from '../targets/set.js';
import type { Bandwidth } from '../services/bandwidth.js';
import type { EventBus } from '../services/events.js';
import type { JobRegistry } from '../services/jobs.js';
import type { Metrics } from '../services/metrics.js';

export interface SidecarContext {
  readonly config: SidecarConfig;
  readonly log: Logger;
  readonly jobs: JobRegistry;
  readonly events: EventBus;
  readonly metrics: Metrics;
  /** The node's bandwidth limits, which every transfer takes from (services/bandwidth.ts). */
  readonly bandwidth: Bandwidth;
  /** ISO time the sidecar started. */
  readonly startedAt: string;
  readonly store?: LocalStore;
  readonly cache?: CacheIndex;
  readonly state?: SourceState;
  readonly active?: ActiveBackup;
  readonly restore: RestoreService;
  readonly targets?: TargetSet;
  readonly targetPool?: TargetPool;
  openTarget(url: string): Target;
  /** Snapshots and prune (snapshot/service.ts), built by the daemon. */
  readonly snapshots?: SnapshotService;
  /** Cluster restores from snapshots (cluster/restore/service.ts), built by the daemon. */
  readonly clusterRestore?: ClusterRestoreService;
}
