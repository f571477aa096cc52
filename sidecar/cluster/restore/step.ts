/**
 * Cluster restore (issue 22) is a plan of steps, each planned first (the dry run shows the plans) and then run in
 * order. Every step is idempotent: planned against the cluster as it is now, so a second run plans nothing to do and
 * a run killed half-way is finished by the next. This is the one contract the steps share; the command, the HTTP
 * route and the job's progress only know steps through it.
 */
import type { DruidAuth } from '../druidHttp.js';
import type { ClusterMetadata, SnapshotHeader, SnapshotSegment } from '../../snapshot/model.js';
import type { Target } from '../../store/target.js';

/** What every step sees: the snapshot chosen, what of it was chosen, and the cluster to put it back into. */
export interface ClusterRestoreContext {
  snapshot: SnapshotHeader;
  /** The snapshot's segments of the chosen data sources (and intervals), by data source. */
  segments: Map<string, SnapshotSegment[]>;
  /** The snapshot's Druid metadata (secrets redacted as they were stored). */
  metadata: ClusterMetadata;
  /** The chosen data sources. */
  dataSources: string[];
  /** `--interval`: a rollback marks unused only inside these; without any, nothing is marked unused. */
  intervals: string[];
  /** The target holding the segments' backups. */
  target: Target;
  coordinator: string;
  overlord: string;
  broker?: string;
  /** Druid's basic-auth credentials; none on a cluster without druid-basic-security. */
  auth?: DruidAuth;
  /** Who asks and why, for Druid's audit log (X-Druid-Author, X-Druid-Comment). */
  author: string;
  comment: string;
  signal?: AbortSignal;
}

/** One line of a step's plan: what will be done to what, with counts and bytes where they apply. */
export interface PlanItem {
  /** A short verb phrase: "write to deep storage", "insert rows", "mark used", "set rules", ... */
  action: string;
  /** What it acts on: a data source, a segment id, a config name. */
  subject: string;
  segments?: number;
  bytes?: number;
  /** A short diff or reason a person reads (e.g. `rules of wikipedia: 1 rule now, 2 in the snapshot`). */
  detail?: string;
}

export interface StepPlan {
  step: string;
  /** Nothing to do: the cluster already has what this step would put back. */
  done: boolean;
  items: PlanItem[];
  /** Things the operator must know before acting (a Druid version that differs, automatic kill, redacted secrets). */
  warnings: string[];
  /** Reasons the restore cannot go on (an ingestion task holds an interval, a deep-storage type not supported). */
  refusals: string[];
}

export interface StepResult {
  step: string;
  items: Array<PlanItem & { outcome: 'done' | 'skipped' | 'failed'; error?: string }>;
}

export interface ClusterRestoreStep {
  /** Stable name, shown in the plan and the job's progress: "deep-storage", "metadata-rows", "rollback", ... */
  readonly name: string;
  plan(ctx: ClusterRestoreContext): Promise<StepPlan>;
  /** Acts on its own plan; reports each item as it goes. */
  run(ctx: ClusterRestoreContext, plan: StepPlan, progress: (item: PlanItem) => void): Promise<StepResult>;
}
