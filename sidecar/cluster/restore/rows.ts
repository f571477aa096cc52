/**
 * The cluster-restore step "metadata-rows" (issue 22): every segment of the snapshot gets its row in Druid's metadata
 * store back.
 * - Planned from the metadata store itself, through the Coordinator: the used ids of the snapshot's intervals
 *   (`POST .../metadata/datasources/{ds}/segments`, read from the store, not the Coordinator's polled view, so a
 *   plan right after a run sees what the run wrote) and the unused ones (`.../unusedSegments`, paged).
 * - A segment without any row is inserted from its backed-up descriptor by the druid-backup extension on the leader
 *   Overlord (../register.ts), with the loadSpec the context's descriptor has (for a new cluster's deep storage, the
 *   one run.ts rewrote it to). A row that is there but unused is the rollback step's to mark used (it runs first and
 *   marks used after it marked later versions unused): this step counts it as present, so the two never both do it.
 * - Inserting bypasses task locks, so the plan refuses while a task holds an interval it would write, and the run asks
 *   again right before it writes.
 */
import { BackupError, messageOf } from '../../errors.js';
import { segmentIdOfDescriptor } from '../../druid/descriptor.js';
import { quoteId } from '../../druid/paths.js';
import { parsingsWithDataSource } from '../../druid/segmentId.js';
import type { Interval } from '../../druid/time.js';
import { overlaps } from '../../druid/time.js';
import { jsonArrayElements } from '../../snapshot/jsonArray.js';
import type { SnapshotSegment } from '../../snapshot/model.js';
import { ANSWER_LIMITS } from '../../util/limitedRead.js';
import { authorization, druidCall, statusPhrase } from '../druidHttp.js';
import type { DruidAuth } from '../druidHttp.js';
import { lockedIntervals, registerSegments } from '../register.js';
import type { ClusterRestoreContext, ClusterRestoreStep, PlanItem, StepPlan, StepResult } from './step.js';

export const ROWS_STEP = 'metadata-rows';
/** Intervals per used-ids query: a small body, and an answer of ids well below the page limit. */
const INTERVALS_BATCH = 200;
/** Unused segments per page: each a full descriptor of up to tens of KiB. */
const UNUSED_PAGE = 200;
const MAX_DESCRIPTOR_BYTES = 1024 * 1024;

export interface SegmentRows {
  /** Ids asked whose row is used. */
  used: Set<string>;
  /** Ids asked whose row is there but unused. */
  unused: Set<string>;
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

/**
 * Which of `segments` (all of `dataSource`) have a row in Druid's metadata store, used or unused, read from the store
 * through the Coordinator's metadata APIs.
 */
export async function segmentRows(o: {
  coordinator: string;
  auth?: DruidAuth;
  dataSource: string;
  segments: Array<{ id: string; interval: Interval }>;
  signal?: AbortSignal;
}): Promise<SegmentRows> {
  const asked = new Set(o.segments.map((s) => s.id));
  const out: SegmentRows = { used: new Set(), unused: new Set() };
  if (!asked.size) return out;
  const base = `${trimSlash(o.coordinator)}/druid/coordinator/v1/metadata/datasources/${encodeURIComponent(o.dataSource)}`;
  const intervals = [...new Set(o.segments.map((s) => `${s.interval.start}/${s.interval.end}`))];
  for (let i = 0; i < intervals.length; i += INTERVALS_BATCH) {
    const answer = await druidCall({
      method: 'POST',
      url: `${base}/segments`,
      auth: o.auth,
      body: intervals.slice(i, i + INTERVALS_BATCH),
      limit: ANSWER_LIMITS.page,
      what: "the Coordinator's used segment ids",
      signal: o.signal,
    });
    if (answer.status !== 200) throw new BackupError('target_error', `used segments of ${quoteId(o.dataSource)}: the Coordinator answered ${statusPhrase(answer)}`);
    for (const id of parseIdList(answer.text, o.dataSource)) if (asked.has(id)) out.used.add(id);
  }
  // One interval spanning them all narrows the unused rows read; only the ids asked are kept.
  let span = o.segments[0]!.interval;
  for (const s of o.segments) {
    if (s.interval.startMs < span.startMs) span = { ...span, start: s.interval.start, startMs: s.interval.startMs };
    if (s.interval.endMs > span.endMs) span = { ...span, end: s.interval.end, endMs: s.interval.endMs };
  }
  let last: string | undefined;
  for (;;) {
    const url = new URL(`${base}/unusedSegments`);
    url.searchParams.set('interval', `${span.start}/${span.end}`);
    url.searchParams.set('limit', String(UNUSED_PAGE));
    url.searchParams.set('sortOrder', 'ASC');
    if (last !== undefined) url.searchParams.set('lastSegmentId', last);
    const page = await unusedPage(url, o);
    for (const id of page) if (asked.has(id)) out.unused.add(id);
    if (page.length < UNUSED_PAGE) break;
    const next = page[page.length - 1]!;
    if (last !== undefined && next <= last) throw new BackupError('target_error', `the Coordinator's unused segments of ${quoteId(o.dataSource)} do not advance`);
    last = next;
  }
  return out;
}

function parseIdList(text: string, dataSource: string): string[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new BackupError('target_error', `the Coordinator's used segment ids of ${quoteId(dataSource)} are not JSON`);
  }
  if (!Array.isArray(raw) || !raw.every((x) => typeof x === 'string'))
    throw new BackupError('target_error', `the Coordinator's used segment ids of ${quoteId(dataSource)} are not a list of ids`);
  return raw as string[];
}

/** One page of `unusedSegments`: `[{"dataSegment": {...}, "used": false, ...}]`, read streaming; the ids. */
async function unusedPage(url: URL, o: { auth?: DruidAuth; dataSource: string; signal?: AbortSignal }): Promise<string[]> {
  const what = `the Coordinator's unused segments of ${quoteId(o.dataSource)}`;
  let res: Response;
  try {
    res = await fetch(url, { headers: { accept: 'application/json', ...authorization(o.auth) }, signal: o.signal, redirect: 'error' });
  } catch (e) {
    if (o.signal?.aborted) throw new BackupError('cancelled', 'cancelled');
    throw new BackupError('target_unreachable', `${what}: no answer (${messageOf(e)})`);
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel().catch(() => undefined);
    throw new BackupError('target_error', `${what}: the Coordinator answered ${res.status}`);
  }
  const ids: string[] = [];
  for await (const el of jsonArrayElements(res.body, MAX_DESCRIPTOR_BYTES, what)) {
    let id;
    try {
      id = segmentIdOfDescriptor((el as { dataSegment?: unknown } | null)?.dataSegment);
    } catch {
      id = undefined;
    }
    if (id?.dataSource !== o.dataSource) throw new BackupError('target_error', `${what} hold an element that is not a segment of that data source`);
    ids.push(id.id);
  }
  return ids;
}


/** A segment's interval, from its id (which the snapshot checked against its data source). */
function intervalOf(s: SnapshotSegment, dataSource: string): Interval {
  const p = parsingsWithDataSource(dataSource, s.id)[0];
  if (!p) throw new BackupError('bad_request', `segment ${quoteId(s.id)} is not a segment id of ${quoteId(dataSource)}`);
  return { start: p.start, end: p.end, startMs: p.startMs, endMs: p.endMs };
}

function bytesOf(list: SnapshotSegment[]): number {
  return list.reduce((n, s) => n + s.size, 0);
}

export function metadataRowsStep(): ClusterRestoreStep {
  /** Per plan: the segments to insert, by data source. */
  const planned = new WeakMap<StepPlan, Map<string, SnapshotSegment[]>>();

  async function plan(ctx: ClusterRestoreContext): Promise<StepPlan> {
    const items: PlanItem[] = [];
    const warnings: string[] = [];
    const refusals: string[] = [];
    const work = new Map<string, SnapshotSegment[]>();
    const dataSources = [...ctx.dataSources].sort();
    const locks = await lockedIntervals({ overlord: ctx.overlord, auth: ctx.auth, dataSources, signal: ctx.signal });
    for (const ds of dataSources) {
      const segments = ctx.segments.get(ds) ?? [];
      if (!segments.length) continue;
      const withInterval = segments.map((s) => ({ s, id: s.id, interval: intervalOf(s, ds) }));
      const rows = await segmentRows({ coordinator: ctx.coordinator, auth: ctx.auth, dataSource: ds, segments: withInterval, signal: ctx.signal });
      const insert: SnapshotSegment[] = [];
      const noDescriptor: string[] = [];
      for (const { s } of withInterval) {
        if (rows.used.has(s.id) || rows.unused.has(s.id)) continue;
        if (!s.descriptor) noDescriptor.push(s.id);
        else insert.push(s);
      }
      if (noDescriptor.length)
        refusals.push(
          `${noDescriptor.length} segment(s) of ${quoteId(ds)} have no row in the metadata store and the snapshot kept no descriptor to write one from (e.g. ${quoteId(noDescriptor[0]!)})`,
        );
      const touched = insert.map((s) => intervalOf(s, ds));
      const held = (locks.get(ds) ?? []).filter((l) => touched.some((t) => overlaps(l, t)));
      if (held.length)
        refusals.push(
          `a task holds a lock on ${held.map((l) => `${l.start}/${l.end}`).join(', ')} of ${quoteId(ds)}: writing rows there would bypass it; wait for the task to end (or stop it) and plan again`,
        );
      if (insert.length) {
        items.push({
          action: 'insert rows',
          subject: ds,
          segments: insert.length,
          bytes: bytesOf(insert),
          detail: `${insert.length} of the snapshot's ${segments.length} segments have no row in the metadata store: written from their backed-up descriptors by the druid-backup extension on the Overlord`,
        });
        work.set(ds, insert);
      }
    }
    const p: StepPlan = { step: ROWS_STEP, done: items.length === 0, items, warnings, refusals };
    planned.set(p, work);
    return p;
  }

  async function run(ctx: ClusterRestoreContext, p: StepPlan, progress: (item: PlanItem) => void): Promise<StepResult> {
    const result: StepResult = { step: ROWS_STEP, items: [] };
    const work = planned.get(p) ?? planned.get((p = await plan(ctx)))!;
    if (p.refusals.length) {
      for (const item of p.items) result.items.push({ ...item, outcome: 'skipped', error: p.refusals.join('; ') });
      return result;
    }
    for (const item of p.items) {
      const insert = work.get(item.subject);
      if (!insert) continue;
      progress(item);
      try {
        // Asked again right before writing: a task may have taken a lock since the plan.
        const locks = await lockedIntervals({ overlord: ctx.overlord, auth: ctx.auth, dataSources: [item.subject], signal: ctx.signal });
        const touched = insert.map((s) => intervalOf(s, item.subject));
        const held = (locks.get(item.subject) ?? []).filter((l) => touched.some((t) => overlaps(l, t)));
        if (held.length) throw new BackupError('conflict', `a task took a lock on ${held.map((l) => `${l.start}/${l.end}`).join(', ')} since the plan`);
        const r = await registerSegments({
          overlord: ctx.overlord,
          auth: ctx.auth,
          dataSource: item.subject,
          segments: insert.map((s) => ({ id: s.id, descriptor: s.descriptor! })),
          signal: ctx.signal,
        });
        result.items.push({
          ...item,
          outcome: 'done',
          detail: `${r.inserted.length} row(s) written${r.present.length ? `, ${r.present.length} already there` : ''}`,
        });
      } catch (e) {
        if (ctx.signal?.aborted) throw e;
        result.items.push({ ...item, outcome: 'failed', error: messageOf(e) });
      }
    }
    return result;
  }

  return { name: ROWS_STEP, plan, run };
}
