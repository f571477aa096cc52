/**
 * Step "rollback" of a cluster restore: a data source brought back to the snapshot's segments.
 *
 * 1. Within the chosen data sources and `--interval`s only, segments used now but not in the snapshot (the bad
 *    versions that overshadow it, whatever was written there after T) are marked unused through the Coordinator's
 *    `markUnused`: never deleted, each one listed in the plan. A segment that reaches beyond every interval is not
 *    touched (it holds data outside them) and is named in a warning. Without `--interval` nothing is marked unused:
 *    the plan lists what a rollback would touch, so that later, unrelated data is never touched by surprise.
 * 2. Then the snapshot's segments whose rows exist but are unused are marked used (`markUsed`, targets/coordinator.ts).
 *    Druid marks used only segments no used segment overshadows, which is why step 1 comes first. Rows missing from
 *    the metadata store are the metadata-rows step's; segments the snapshot recorded as overshadowed stay as they are.
 *
 * The plan warns when Druid's automatic kill would delete what it marks unused (`druid.coordinator.kill.on` from the
 * Coordinator's `/status/properties`, `killDataSourceWhitelist` from its dynamic config), and, asked to, takes the
 * data sources' compaction configs away while the restore runs (`suspendCompaction`), so that the Coordinator does
 * not compact the restored intervals before the check has seen them.
 */
import { BackupError, messageOf } from '../../errors.js';
import { segmentIdOfDescriptor } from '../../druid/descriptor.js';
import { parseSegmentId } from '../../druid/segmentId.js';
import type { Interval } from '../../druid/time.js';
import { parseInstant, parseInterval, periodToMillis } from '../../druid/time.js';
import { authorization, druidCall, statusPhrase } from '../druidHttp.js';
import { jsonArrayElements } from '../../snapshot/jsonArray.js';
import type { UsedSegment } from '../../snapshot/coordinator.js';
import { usedSegments } from '../../snapshot/coordinator.js';
import { markUsed } from '../../targets/coordinator.js';
import { ANSWER_LIMITS } from '../../util/limitedRead.js';
import { auditHeaders } from './audit.js';
import type { ClusterRestoreContext, ClusterRestoreStep, PlanItem, StepPlan, StepResult } from './step.js';

export const MARK_UNUSED = 'mark unused';
export const WOULD_MARK_UNUSED = 'would mark unused with --interval';
export const MARK_USED = 'mark used';
export const SUSPEND_COMPACTION = 'suspend compaction while restoring';
/** An unused segment's id is at most 1 KiB; its listing element a few KiB. */
const MAX_ELEMENT = 1024 * 1024;

interface Span {
  startMs: number;
  endMs: number;
}

/** A segment id's interval in milliseconds; throws on an id that is not one of `ds`. */
export function spanOf(id: string, ds: string): Span {
  const s = parseSegmentId(id, ds);
  return { startMs: parseInstant(s.start)!, endMs: parseInstant(s.end)! };
}

/** A segment the rollback may mark unused lies wholly inside one interval, as Druid's own markUnused by interval. */
export function containedIn(seg: Span, intervals: readonly Interval[]): boolean {
  return intervals.some((i) => i.startMs <= seg.startMs && seg.endMs <= i.endMs);
}

export function overlapsAny(seg: Span, intervals: readonly Interval[]): boolean {
  return intervals.some((i) => seg.startMs < i.endMs && i.startMs < seg.endMs);
}

/** What the rollback does to one data source, from what is used now and what the snapshot holds: pure. */
export function planDataSource(o: {
  dataSource: string;
  used: ReadonlyArray<Pick<UsedSegment, 'id' | 'size'>>;
  unused: ReadonlySet<string>;
  snapshot: ReadonlyArray<{ id: string; size: number; overshadowed: boolean }>;
  intervals: readonly Interval[];
}): { items: PlanItem[]; warnings: string[] } {
  const ds = o.dataSource;
  const inSnapshot = new Set(o.snapshot.map((s) => s.id));
  const items: PlanItem[] = [];
  const warnings: string[] = [];
  const extra = o.used.filter((u) => !inSnapshot.has(u.id)).sort((a, b) => (a.id < b.id ? -1 : 1));
  if (o.intervals.length) {
    const wider: string[] = [];
    for (const u of extra) {
      const span = spanOf(u.id, ds);
      if (containedIn(span, o.intervals))
        items.push({ action: MARK_UNUSED, subject: u.id, segments: 1, bytes: u.size, detail: `${ds}: used now, not in the snapshot` });
      else if (overlapsAny(span, o.intervals)) wider.push(u.id);
    }
    if (wider.length)
      warnings.push(
        `${ds}: ${wider.length} segment(s) used now and not in the snapshot reach beyond --interval and are left used: ${wider.slice(0, 5).join(', ')}${wider.length > 5 ? ', ...' : ''}`,
      );
  } else {
    for (const u of extra)
      items.push({ action: WOULD_MARK_UNUSED, subject: u.id, segments: 1, bytes: u.size, detail: `${ds}: used now, not in the snapshot; left used` });
  }
  const toMark = o.snapshot.filter((s) => !s.overshadowed && o.unused.has(s.id));
  if (toMark.length)
    items.push({ action: MARK_USED, subject: ds, segments: toMark.length, bytes: toMark.reduce((n, s) => n + s.size, 0), detail: 'rows present but unused' });
  return { items, warnings };
}

/**
 * The id of one element of Druid's unused-segment listing: Druid 33 answers `DataSegmentPlus` objects
 * (`{"dataSegment": {...}, "createdDate", ...}`), older ones a DataSegment or an id. An element that names no valid
 * segment is passed over: it cannot be one the snapshot holds.
 */
export function unusedId(el: unknown): string | undefined {
  if (typeof el === 'string') return el;
  const o = el as { dataSegment?: unknown } | null;
  try {
    return segmentIdOfDescriptor(o && typeof o === 'object' && 'dataSegment' in o ? o.dataSegment : o).id;
  } catch {
    return undefined;
  }
}

/** The ids of a data source's unused segments, read streaming (Druid 33: `/metadata/datasources/{ds}/unusedSegments`). */
async function unusedIds(ctx: ClusterRestoreContext, ds: string, keep: ReadonlySet<string>): Promise<Set<string>> {
  const url = new URL(`/druid/coordinator/v1/metadata/datasources/${encodeURIComponent(ds)}/unusedSegments`, ctx.coordinator);
  const what = `the Coordinator's list of unused segments of ${ds}`;
  let res: Response;
  try {
    res = await fetch(url, { headers: { accept: 'application/json', ...authorization(ctx.auth) }, signal: ctx.signal, redirect: 'error' });
  } catch (e) {
    throw new BackupError('target_unreachable', `${what}: no answer (${messageOf(e)})`);
  }
  const out = new Set<string>();
  // A data source Druid does not know (its rows were lost) has no unused segments.
  if (res.status === 404 || res.status === 204 || !res.body) {
    await res.body?.cancel().catch(() => undefined);
    return out;
  }
  if (!res.ok) {
    await res.body.cancel().catch(() => undefined);
    throw new BackupError('target_error', `${what}: the Coordinator answered ${res.status}`);
  }
  for await (const el of jsonArrayElements(res.body, MAX_ELEMENT, what)) {
    const id = unusedId(el);
    if (id !== undefined && keep.has(id)) out.add(id);
  }
  return out;
}

/** A JSON answer of Druid read whole (small: a config, properties), or undefined when Druid has none (404, empty). */
async function druidJson(ctx: ClusterRestoreContext, urlPath: string, what: string): Promise<unknown> {
  const a = await druidCall({
    method: 'GET',
    url: new URL(urlPath, ctx.coordinator).toString(),
    auth: ctx.auth,
    signal: ctx.signal,
    limit: ANSWER_LIMITS.manifest,
    what,
  });
  if (a.status === 404 || a.status === 204 || a.text.trim() === '') return undefined;
  if (a.status !== 200) throw new BackupError('target_error', `${what}: the Coordinator answered ${statusPhrase(a)}`);
  try {
    return JSON.parse(a.text) as unknown;
  } catch {
    throw new BackupError('target_error', `${what} is not JSON`);
  }
}

/** Whether Druid's automatic kill would delete what the rollback marks unused, as a warning, or undefined. */
export function killWarning(o: { killOn?: boolean; whitelist: unknown; bufferPeriod?: string; dataSources: string[] }): string | undefined {
  if (o.killOn === false) return undefined;
  const list = Array.isArray(o.whitelist)
    ? o.whitelist.filter((x): x is string => typeof x === 'string')
    : typeof o.whitelist === 'string'
      ? o.whitelist
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean)
      : [];
  const covered = list.length === 0 ? o.dataSources : o.dataSources.filter((d) => list.includes(d));
  if (!covered.length) return undefined;
  const when = o.bufferPeriod ? ` once they have been unused for druid.coordinator.kill.bufferPeriod (${o.bufferPeriod})` : '';
  const on =
    o.killOn === undefined ? 'may be on (the Coordinator did not say whether druid.coordinator.kill.on is set)' : 'is on (druid.coordinator.kill.on=true)';
  return `Druid's automatic kill ${on} and covers ${covered.join(', ')} (killDataSourceWhitelist ${list.length ? JSON.stringify(list) : 'empty: every data source'}): segments marked unused here will be deleted from deep storage and the metadata store${when}; keep the snapshot's backups, or take them out of killDataSourceWhitelist`;
}

async function readKillSettings(ctx: ClusterRestoreContext): Promise<{ killOn?: boolean; whitelist: unknown; bufferPeriod?: string }> {
  const dynamic = (await druidJson(ctx, '/druid/coordinator/v1/config', "the Coordinator's dynamic config")) as
    { killDataSourceWhitelist?: unknown } | undefined;
  let props: Record<string, unknown> | undefined;
  try {
    props = (await druidJson(ctx, '/status/properties', "the Coordinator's properties")) as Record<string, unknown> | undefined;
  } catch {
    props = undefined; // unknown: warned as "may be on"
  }
  const on = props?.['druid.coordinator.kill.on'];
  const buffer = props?.['druid.coordinator.kill.bufferPeriod'];
  return {
    ...(props
      ? {
          killOn:
            String(on ?? 'false')
              .trim()
              .toLowerCase() === 'true',
        }
      : {}),
    whitelist: dynamic?.killDataSourceWhitelist,
    ...(typeof buffer === 'string' && periodToMillis(buffer) !== undefined ? { bufferPeriod: buffer } : {}),
  };
}

export interface RollbackOptions {
  /** Take the data sources' compaction configs away while the restore runs (suspendCompaction below). */
  suspendCompaction?: boolean;
}

export function rollbackStep(opts: RollbackOptions = {}): ClusterRestoreStep {
  /** Per plan: the segments to mark unused, by data source. */
  const toMarkUnused = new WeakMap<StepPlan, Record<string, string[]>>();

  async function plan(ctx: ClusterRestoreContext): Promise<StepPlan> {
    const intervals = ctx.intervals.map((i) => parseInterval(i));
    const items: PlanItem[] = [];
    const warnings: string[] = [];
    const unusedBy: Record<string, string[]> = {};
    const used = new Map<string, UsedSegment[]>();
    for await (const u of usedSegments({ coordinator: ctx.coordinator, auth: ctx.auth, dataSources: ctx.dataSources, signal: ctx.signal }))
      (used.get(u.dataSource) ?? used.set(u.dataSource, []).get(u.dataSource)!).push(u);
    for (const ds of ctx.dataSources) {
      const snapshot = ctx.segments.get(ds) ?? [];
      const usedNow = (used.get(ds) ?? []).filter((u) => !intervals.length || overlapsAny(spanOf(u.id, ds), intervals));
      const unused = await unusedIds(ctx, ds, new Set(snapshot.map((s) => s.id)));
      const p = planDataSource({ dataSource: ds, used: usedNow, unused, snapshot, intervals });
      items.push(...p.items);
      warnings.push(...p.warnings);
      const ids = p.items.filter((i) => i.action === MARK_UNUSED).map((i) => i.subject);
      if (ids.length) unusedBy[ds] = ids;
    }
    const marking = items.filter((i) => i.action === MARK_UNUSED);
    if (marking.length || items.some((i) => i.action === WOULD_MARK_UNUSED)) {
      const w = killWarning({ ...(await readKillSettings(ctx)), dataSources: [...new Set(ctx.dataSources)] });
      if (w) warnings.push(w);
    }
    if (opts.suspendCompaction) {
      for (const ds of ctx.dataSources) {
        const config = await druidJson(ctx, `/druid/coordinator/v1/config/compaction/${encodeURIComponent(ds)}`, `the compaction config of ${ds}`);
        if (config !== undefined)
          items.push({ action: SUSPEND_COMPACTION, subject: ds, detail: 'taken away before the first step, put back after the check unless a step set one' });
      }
    }
    const done = !items.some((i) => i.action === MARK_UNUSED || i.action === MARK_USED);
    const out: StepPlan = { step: 'rollback', done, items, warnings, refusals: [] };
    toMarkUnused.set(out, unusedBy);
    return out;
  }

  async function run(ctx: ClusterRestoreContext, p: StepPlan, progress: (item: PlanItem) => void): Promise<StepResult> {
    const result: StepResult = { step: p.step, items: [] };
    const headers = auditHeaders(ctx);
    const mark = async (action: 'markUsed' | 'markUnused', byDs: Record<string, string[]>) =>
      (await markUsed({ coordinator: ctx.coordinator, segments: byDs }, { auth: ctx.auth, signal: ctx.signal, action, headers, overlord: ctx.overlord }))
        .outcome;

    const unusedBy = toMarkUnused.get(p);
    if (!unusedBy) throw new BackupError('internal', 'the rollback step runs only a plan it made');
    const dsOf = new Map(Object.entries(unusedBy).flatMap(([ds, ids]) => ids.map((id) => [id, ds] as const)));
    const unusedOutcome = Object.keys(unusedBy).length ? await mark('markUnused', unusedBy) : {};
    // The snapshot's segments, marked used once nothing overshadows them; by id, so later rows are not touched.
    const usedBy: Record<string, string[]> = {};
    for (const item of p.items.filter((i) => i.action === MARK_USED)) {
      const ds = item.subject;
      const unusedNow = await unusedIds(ctx, ds, new Set((ctx.segments.get(ds) ?? []).filter((s) => !s.overshadowed).map((s) => s.id)));
      usedBy[ds] = [...unusedNow];
    }
    const usedOutcome = Object.keys(usedBy).length ? await mark('markUsed', usedBy) : {};
    for (const item of p.items) {
      let outcome: StepResult['items'][number];
      if (item.action === MARK_UNUSED) {
        const o = unusedOutcome[dsOf.get(item.subject)!];
        outcome = o?.error ? { ...item, outcome: 'failed', error: o.error } : { ...item, outcome: 'done' };
      } else if (item.action === MARK_USED) {
        const o = usedOutcome[item.subject];
        outcome = o?.error
          ? { ...item, outcome: 'failed', error: o.error }
          : { ...item, outcome: 'done', detail: `${item.detail ?? ''}; the Coordinator changed ${o?.changed ?? 0}` };
      } else outcome = { ...item, outcome: 'skipped' };
      result.items.push(outcome);
      progress(item);
    }
    return result;
  }

  return { name: 'rollback', plan, run };
}

/**
 * Takes the compaction configs of the data sources away (remembering each as Druid returned it) and answers the
 * function that puts them back: each one only where no config exists by then (a step that restored the snapshot's
 * own config wins). Called by the orchestration around every step when `suspendCompaction` is asked.
 */
export async function suspendCompaction(ctx: ClusterRestoreContext, dataSources: string[]): Promise<() => Promise<string[]>> {
  const saved = new Map<string, unknown>();
  const headers = auditHeaders(ctx);
  const url = (ds: string) => new URL(`/druid/coordinator/v1/config/compaction/${encodeURIComponent(ds)}`, ctx.coordinator).toString();
  for (const ds of dataSources) {
    const config = await druidJson(ctx, `/druid/coordinator/v1/config/compaction/${encodeURIComponent(ds)}`, `the compaction config of ${ds}`);
    if (config === undefined) continue;
    const a = await druidCall({
      method: 'DELETE',
      url: url(ds),
      auth: ctx.auth,
      headers,
      signal: ctx.signal,
      limit: ANSWER_LIMITS.small,
      what: `removing the compaction config of ${ds}`,
    });
    if (a.status < 200 || a.status >= 300) throw new BackupError('target_error', `suspending compaction of ${ds}: the Coordinator answered ${statusPhrase(a)}`);
    saved.set(ds, config);
  }
  return async () => {
    const problems: string[] = [];
    for (const [ds, config] of saved) {
      try {
        const now = await druidJson(ctx, `/druid/coordinator/v1/config/compaction/${encodeURIComponent(ds)}`, `the compaction config of ${ds}`);
        if (now !== undefined) continue;
        const a = await druidCall({
          method: 'POST',
          url: new URL('/druid/coordinator/v1/config/compaction', ctx.coordinator).toString(),
          body: config,
          auth: ctx.auth,
          headers,
          limit: ANSWER_LIMITS.small,
          what: `putting back the compaction config of ${ds}`,
        });
        if (a.status < 200 || a.status >= 300) throw new Error(`the Coordinator answered ${statusPhrase(a)}`);
      } catch (e) {
        problems.push(`the compaction config of ${ds} was not put back (${messageOf(e)}): it was ${JSON.stringify(config)}`);
      }
    }
    return problems;
  };
}
