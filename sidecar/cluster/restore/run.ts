/**
 * A cluster restore from start to end, whoever asks (the HTTP route, the CLI through it, the tests): choose the
 * snapshot (`--snapshot`, or `--as-of`: the newest taken at or before that instant), build the context every step
 * sees, plan every step against the cluster as it is now, show the plan, refuse when any step refuses, then run
 * the steps in order, stopping at the first that fails. Every step is idempotent, so a second run plans nothing to
 * do and a run killed half-way is finished by the next.
 *
 * The steps, in order (`restoreSteps`), and why in that order:
 * 1. `deep-storage` (deepStorage.ts): the segments' files first, so no row points at a segment Druid cannot load;
 * 2. `rollback` (rollback.ts): later versions inside `--interval` marked unused, then present rows marked used
 *    (Druid marks used only what no used segment overshadows);
 * 3. `metadata-rows` (rows.ts): missing rows inserted through the Druid extension (present but unused rows are the
 *    rollback's to mark used: one step owns it, so a plan never lists it twice);
 * 4. `druid-metadata` (metadata.ts): rules, compaction, dynamic configs, supervisors (suspended), lookups;
 * 5. `check` (check.ts): every restored segment loaded and its rows those the snapshot recorded.
 * A step is one entry of that list: it plans and runs through the contract of step.ts only.
 */
import type { ClusterRestorePlan } from '../../api.js';
import { parseSegmentId } from '../../druid/segmentId.js';
import type { Interval } from '../../druid/time.js';
import { parseInstant, parseInterval } from '../../druid/time.js';
import { BackupError, messageOf } from '../../errors.js';
import type { JobContext } from '../../services/jobs.js';
import { MAX_METADATA_BYTES, readSegmentList } from '../../snapshot/check.js';
import type { ClusterMetadata, SnapshotHeader, SnapshotSegment } from '../../snapshot/model.js';
import type { SnapshotStore } from '../../snapshot/store.js';
import type { Target } from '../../store/target.js';
import type { DruidAuth } from '../druidHttp.js';
import type { CheckOptions } from './check.js';
import { checkStep } from './check.js';
import type { DeepStorageEnv, DeepStorageHome } from './deepStorage.js';
import { deepStorageStep, rewriteForNewHome } from './deepStorage.js';
import type { MetadataStepOptions } from './metadata.js';
import { druidMetadataStep } from './metadata.js';
import type { RollbackOptions } from './rollback.js';
import { rollbackStep, suspendCompaction } from './rollback.js';
import { metadataRowsStep } from './rows.js';
import type { ClusterRestoreContext, ClusterRestoreStep, StepPlan, StepResult } from './step.js';

export interface StepsOptions {
  deepStorage: DeepStorageEnv;
  rollback?: RollbackOptions;
  metadata?: MetadataStepOptions;
  check?: CheckOptions;
}

/** The steps of a cluster restore, in the order they run (see the top of this file). */
export function restoreSteps(o: StepsOptions): ClusterRestoreStep[] {
  return [deepStorageStep(o.deepStorage), rollbackStep(o.rollback), metadataRowsStep(), druidMetadataStep(o.metadata), checkStep(o.check)];
}

/**
 * The snapshot to restore: `snapshot` by id, or `asOf`, the newest taken at or before that instant (ties by id).
 * `headers` in any order.
 */
export function chooseSnapshot(headers: readonly SnapshotHeader[], o: { snapshot?: string; asOf?: string }): SnapshotHeader {
  if ((o.snapshot === undefined) === (o.asOf === undefined))
    throw new BackupError('bad_request', 'name the snapshot (--snapshot ID) or a time (--as-of TIME), one of them');
  if (o.snapshot !== undefined) {
    const h = headers.find((x) => x.id === o.snapshot);
    if (!h)
      throw new BackupError(
        'not_found',
        `snapshot ${o.snapshot} is in none of the targets: retention may have removed it (druid-backup snapshot list shows those kept)`,
      );
    return h;
  }
  const at = parseInstant(o.asOf!);
  if (at === undefined) throw new BackupError('bad_request', `--as-of ${JSON.stringify(String(o.asOf).slice(0, 100))} is not an ISO-8601 instant`);
  const before = headers.filter((h) => Date.parse(h.time) <= at).sort((a, b) => Date.parse(b.time) - Date.parse(a.time) || (a.id < b.id ? 1 : -1));
  if (!before[0]) {
    const oldest = [...headers].sort((a, b) => Date.parse(a.time) - Date.parse(b.time))[0];
    throw new BackupError(
      'not_found',
      `no snapshot was taken at or before ${o.asOf}${oldest ? `; the oldest kept is ${oldest.id} of ${oldest.time}` : ': none is kept'}`,
    );
  }
  return before[0];
}

/** The snapshot's segments of the chosen intervals: those overlapping any of them (all, without intervals). */
export function selectSegments(segments: readonly SnapshotSegment[], dataSource: string, intervals: readonly Interval[]): SnapshotSegment[] {
  if (!intervals.length) return [...segments];
  return segments.filter((s) => {
    const id = parseSegmentId(s.id, dataSource);
    const start = parseInstant(id.start)!;
    const end = parseInstant(id.end)!;
    return intervals.some((i) => start < i.endMs && i.startMs < end);
  });
}

/** The metadata blob as read back from a target: a JSON object, with the fields every step relies on checked. */
export function parseMetadataBlob(data: Buffer, what: string): ClusterMetadata {
  let raw: unknown;
  try {
    raw = JSON.parse(data.toString('utf8'));
  } catch {
    throw new BackupError('target_error', `${what}: its metadata is not JSON`);
  }
  const o = raw as Partial<ClusterMetadata> | null;
  if (!o || typeof o !== 'object' || Array.isArray(o)) throw new BackupError('target_error', `${what}: its metadata is not a JSON object`);
  if (!o.offsets || typeof o.offsets !== 'object' || typeof o.offsets.captured !== 'boolean')
    throw new BackupError('target_error', `${what}: its metadata has no offsets record`);
  if (!Array.isArray(o.redacted) || !o.redacted.every((r) => typeof r === 'string'))
    throw new BackupError('target_error', `${what}: its metadata has no list of redacted paths`);
  if (o.druidVersion !== undefined && typeof o.druidVersion !== 'string') throw new BackupError('target_error', `${what}: its Druid version is not text`);
  return o as ClusterMetadata;
}

export interface ContextOptions {
  header: SnapshotHeader;
  /** Where the snapshot's blobs are read from. */
  blobs: SnapshotStore;
  /** Where its segments are read from. */
  target: Target;
  dataSources?: string[];
  intervals?: string[];
  home?: DeepStorageHome;
  coordinator: string;
  overlord: string;
  broker?: string;
  auth?: DruidAuth;
  author: string;
  comment: string;
  signal?: AbortSignal;
}

/**
 * The context every step sees. With `home` (a new cluster's deep storage), the segments' descriptors already point
 * there: the deep-storage step writes to those loadSpecs, and the metadata-rows step inserts them as they are.
 */
export async function buildContext(o: ContextOptions): Promise<ClusterRestoreContext> {
  const h = o.header;
  const what = `snapshot ${h.id}`;
  const names = h.dataSources.map((d) => d.name);
  const wanted = o.dataSources?.length ? [...new Set(o.dataSources)] : names;
  const unknown = wanted.filter((d) => !names.includes(d));
  if (unknown.length)
    throw new BackupError('not_found', `${what} has no data source ${unknown.map((u) => JSON.stringify(u)).join(', ')}; it has ${names.join(', ') || 'none'}`);
  const intervals = (o.intervals ?? []).map((i) => parseInterval(i));
  let segments = new Map<string, SnapshotSegment[]>();
  for (const d of h.dataSources.filter((x) => wanted.includes(x.name))) {
    // The chosen segments are held (every step plans from them); the list itself is read and checked as it streams.
    const list: SnapshotSegment[] = [];
    for await (const seg of readSegmentList(o.blobs, d.list, d.name, what, o.signal)) list.push(seg);
    segments.set(d.name, selectSegments(list, d.name, intervals));
  }
  if (o.home) segments = rewriteForNewHome(segments, o.home);
  const metadata = parseMetadataBlob(await o.blobs.getBlob(h.metadata, MAX_METADATA_BYTES, o.signal), what);
  return {
    snapshot: h,
    segments,
    metadata,
    dataSources: wanted,
    intervals: o.intervals ?? [],
    target: o.target,
    coordinator: o.coordinator,
    overlord: o.overlord,
    ...(o.broker ? { broker: o.broker } : {}),
    ...(o.auth ? { auth: o.auth } : {}),
    author: o.author,
    comment: o.comment,
    ...(o.signal ? { signal: o.signal } : {}),
  };
}

/** Every step planned against the cluster as it is now; nothing changes. */
export async function planSteps(steps: readonly ClusterRestoreStep[], ctx: ClusterRestoreContext): Promise<{ plan: ClusterRestorePlan; plans: StepPlan[] }> {
  const plans: StepPlan[] = [];
  for (const s of steps) {
    try {
      plans.push(await s.plan(ctx));
    } catch (e) {
      if (ctx.signal?.aborted) throw e;
      // A step that cannot even plan refuses the restore, saying why; the others' plans are still shown.
      plans.push({ step: s.name, done: false, items: [], warnings: [], refusals: [`the ${s.name} step could not plan: ${messageOf(e)}`] });
    }
  }
  const h = ctx.snapshot;
  return {
    plans,
    plan: {
      snapshot: { id: h.id, time: h.time, complete: h.complete },
      target: ctx.target.url,
      dataSources: ctx.dataSources,
      intervals: ctx.intervals,
      steps: plans.map((p) => ({ step: p.step, done: p.done, items: p.items, warnings: p.warnings, refusals: p.refusals })),
      refused: plans.some((p) => p.refusals.length > 0),
    },
  };
}

export interface RunOutcome {
  results: StepResult[];
  /** Steps not run because an earlier one failed. */
  notRun: string[];
  problems: string[];
}

/**
 * Runs a plan that refuses nothing, step by step in order; the job's progress follows the plan's items. Stops at
 * the first step with a failed item. With `suspend`, the data sources' compaction configs are taken away first and
 * put back at the end (rollback.ts `suspendCompaction`).
 */
export async function runSteps(
  steps: readonly ClusterRestoreStep[],
  ctx: ClusterRestoreContext,
  plans: readonly StepPlan[],
  job: Pick<JobContext, 'setTotals' | 'setCurrent' | 'segmentDone' | 'segmentFailed' | 'addBytes' | 'error' | 'throwIfCancelled'>,
  o: { suspendCompaction?: boolean } = {},
): Promise<RunOutcome> {
  if (plans.some((p) => p.refusals.length)) throw new BackupError('conflict', `the plan refuses: ${plans.flatMap((p) => p.refusals).join('; ')}`);
  const items = plans.flatMap((p) => p.items);
  job.setTotals(
    items.length,
    items.reduce((n, i) => n + (i.bytes ?? 0), 0),
  );
  const out: RunOutcome = { results: [], notRun: [], problems: [] };
  const resume = o.suspendCompaction ? await suspendCompaction(ctx, ctx.dataSources) : undefined;
  try {
    for (const [i, step] of steps.entries()) {
      job.throwIfCancelled();
      const p = plans[i]!;
      if (out.results.some((r) => r.items.some((x) => x.outcome === 'failed'))) {
        out.notRun.push(step.name);
        continue;
      }
      job.setCurrent(step.name);
      const r = await step.run(ctx, p, (item) => job.setCurrent(`${step.name}: ${item.action} ${item.subject}`));
      for (const x of r.items) {
        if (x.outcome === 'failed') job.segmentFailed(undefined, `${step.name}: ${x.action} ${x.subject}: ${x.error ?? 'failed'}`);
        else {
          job.segmentDone(x.outcome === 'done' ? 'done' : 'skipped');
          if (x.outcome === 'done' && x.bytes) job.addBytes(x.bytes);
        }
      }
      out.results.push(r);
    }
  } finally {
    if (resume) for (const problem of await resume()) out.problems.push(problem);
  }
  for (const problem of out.problems) job.error(problem);
  if (out.notRun.length) job.error(`not run, an earlier step failed: ${out.notRun.join(', ')}`);
  job.setCurrent(undefined);
  return out;
}
