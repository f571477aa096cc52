/**
 * Step "check", last of a cluster restore (Medusa's verify, for Druid): it changes nothing. It waits until the
 * Coordinator reports every restored segment loaded (served by a Historical: `GET
 * /druid/coordinator/v1/datasources/{ds}/segments/{id}` answers 200 with its servers), then, where a Broker is
 * configured, compares each segment's `sys.segments.num_rows` with the rows the snapshot recorded (cluster/rows.ts).
 * The job succeeds only when they match; otherwise the step fails saying what differs. Segments the snapshot
 * recorded as overshadowed are not expected to load (Druid drops them) and are left out.
 * After a rollback (`--interval`), it also waits until no segment the snapshot lacks, lying wholly inside those
 * intervals, is served any more: until the Historicals drop what the rollback marked unused, a newer bad version
 * still overshadows the restored one in every query, though the restored segment is loaded.
 */
import { BackupError, messageOf } from '../../errors.js';
import { mapLimit } from '../../util/pool.js';
import { ANSWER_LIMITS } from '../../util/limitedRead.js';
import { sleep } from '../../util/sleep.js';
import type { Interval } from '../../druid/time.js';
import { parseInterval } from '../../druid/time.js';
import { druidCall } from '../druidHttp.js';
import { countRows } from '../rows.js';
import { containedIn, spanOf } from './rollback.js';
import type { ClusterRestoreContext, ClusterRestoreStep, PlanItem, StepPlan, StepResult } from './step.js';

export const CHECK = 'check loaded and rows';
export const DEFAULT_CHECK_TIMEOUT_MS = 10 * 60_000;
const POLL_MS = 2000;
const SHOWN = 10;

export interface CheckOptions {
  /** How long to wait for Druid to load every segment and know its rows. */
  timeoutMs?: number;
}

/** The segments a check expects served, by data source: the snapshot's, but those it recorded overshadowed. */
export function expected(ctx: Pick<ClusterRestoreContext, 'segments' | 'dataSources'>): Map<string, Array<{ id: string; rows?: number }>> {
  const out = new Map<string, Array<{ id: string; rows?: number }>>();
  for (const ds of ctx.dataSources) {
    const list = (ctx.segments.get(ds) ?? []).filter((s) => !s.overshadowed).map((s) => ({ id: s.id, ...(s.rows !== undefined ? { rows: s.rows } : {}) }));
    if (list.length) out.set(ds, list);
  }
  return out;
}

/** What differs between the rows recorded and Druid's, one line each (at most a few, then a count). */
export function rowDifferences(want: Map<string, Array<{ id: string; rows?: number }>>, got: Map<string, number>): string[] {
  const lines: string[] = [];
  for (const [, list] of want)
    for (const s of list) {
      if (s.rows === undefined) continue;
      const have = got.get(s.id);
      if (have === undefined) lines.push(`${s.id}: the Broker knows no row count`);
      else if (have !== s.rows) lines.push(`${s.id}: ${s.rows} rows in the snapshot, ${have} in Druid`);
    }
  return lines;
}

function shown(lines: string[]): string {
  return lines.length > SHOWN ? `${lines.slice(0, SHOWN).join('; ')}; and ${lines.length - SHOWN} more` : lines.join('; ');
}

async function served(ctx: ClusterRestoreContext, ds: string, id: string): Promise<boolean> {
  const a = await druidCall({
    method: 'GET',
    url: new URL(`/druid/coordinator/v1/datasources/${encodeURIComponent(ds)}/segments/${encodeURIComponent(id)}`, ctx.coordinator).toString(),
    auth: ctx.auth,
    signal: ctx.signal,
    limit: ANSWER_LIMITS.manifest,
    what: `the Coordinator's answer about ${id}`,
  });
  if (a.status !== 200) return false;
  try {
    const servers = (JSON.parse(a.text) as { servers?: unknown })?.servers;
    return Array.isArray(servers) && servers.length > 0;
  } catch {
    return false;
  }
}

/**
 * The served segments of `ds` a rollback over `ctx.intervals` took away (wholly inside one, not in the snapshot), from
 * the Coordinator's view of what the cluster serves (`GET /druid/coordinator/v1/datasources/{ds}/segments`).
 */
async function rolledBackStillServed(ctx: ClusterRestoreContext, ds: string, intervals: readonly Interval[]): Promise<string[]> {
  const a = await druidCall({
    method: 'GET',
    url: new URL(`/druid/coordinator/v1/datasources/${encodeURIComponent(ds)}/segments`, ctx.coordinator).toString(),
    auth: ctx.auth,
    signal: ctx.signal,
    limit: ANSWER_LIMITS.indexInflated,
    what: `the Coordinator's served segments of ${ds}`,
  });
  // 204 (Druid's answer for a data source it serves nothing of) or 404: nothing is served.
  if (a.status === 204 || a.status === 404) return [];
  if (a.status !== 200) throw new BackupError('target_error', `the Coordinator answered ${a.status} for the served segments of ${ds}`);
  const ids = JSON.parse(a.text) as unknown;
  if (!Array.isArray(ids)) throw new BackupError('target_error', `the Coordinator's served segments of ${ds} are not a list`);
  const inSnapshot = new Set((ctx.segments.get(ds) ?? []).map((s) => s.id));
  const out: string[] = [];
  for (const id of ids) {
    if (typeof id !== 'string' || inSnapshot.has(id)) continue;
    let span;
    try {
      span = spanOf(id, ds);
    } catch {
      continue;
    }
    if (containedIn(span, intervals)) out.push(id);
  }
  return out;
}

export function checkStep(opts: CheckOptions = {}): ClusterRestoreStep {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS;

  async function plan(ctx: ClusterRestoreContext): Promise<StepPlan> {
    const items: PlanItem[] = [];
    const warnings: string[] = [];
    for (const [ds, list] of expected(ctx)) {
      const counted = list.filter((s) => s.rows !== undefined);
      const rows = counted.reduce((n, s) => n + s.rows!, 0);
      items.push({
        action: CHECK,
        subject: ds,
        segments: list.length,
        detail: !ctx.broker
          ? 'loaded only (no Broker configured)'
          : counted.length
            ? `${rows} rows recorded for ${counted.length} segment(s)${counted.length < list.length ? `; ${list.length - counted.length} without a count: loaded only` : ''}`
            : 'loaded only (the snapshot recorded no row counts)',
      });
    }
    if (!ctx.broker) warnings.push('no Broker is configured (druid.backup.broker): the check waits for the segments to load and compares no rows');
    // It changes nothing: a plan with only a check is a cluster that has what the snapshot holds.
    return { step: 'check', done: true, items, warnings, refusals: [] };
  }

  async function run(ctx: ClusterRestoreContext, p: StepPlan, progress: (item: PlanItem) => void): Promise<StepResult> {
    const want = expected(ctx);
    const deadline = Date.now() + timeoutMs;
    const pending = new Map([...want].map(([ds, list]) => [ds, new Set(list.map((s) => s.id))]));
    const problems = new Map<string, string>();
    for (;;) {
      for (const [ds, ids] of pending) {
        await mapLimit([...ids], 4, async (id) => {
          if (await served(ctx, ds, id).catch(() => false)) ids.delete(id);
        });
        if (!ids.size) pending.delete(ds);
      }
      if (!pending.size || Date.now() > deadline || ctx.signal?.aborted) break;
      await sleep(POLL_MS, ctx.signal);
    }
    if (ctx.signal?.aborted) throw new BackupError('cancelled', 'cluster restore cancelled');
    for (const [ds, ids] of pending) problems.set(ds, `${ids.size} segment(s) not loaded after ${Math.round(timeoutMs / 1000)} s: ${shown([...ids])}`);
    const intervals = ctx.intervals.map((i) => parseInterval(i));
    if (intervals.length)
      for (const ds of want.keys()) {
        if (problems.has(ds)) continue;
        let still: string[] = [];
        for (;;) {
          still = await rolledBackStillServed(ctx, ds, intervals).catch((e: unknown) => [`(the Coordinator did not answer: ${messageOf(e)})`]);
          if (!still.length || Date.now() > deadline || ctx.signal?.aborted) break;
          await sleep(POLL_MS, ctx.signal);
        }
        if (still.length)
          problems.set(ds, `${still.length} segment(s) marked unused are still served after ${Math.round(timeoutMs / 1000)} s: ${shown(still)}`);
      }
    if (ctx.broker) {
      for (const [ds, list] of want) {
        if (problems.has(ds) || !list.some((s) => s.rows !== undefined)) continue;
        const one = new Map([[ds, list]]);
        let diff: string[] = [];
        // The Broker learns a loaded segment's row count a little after it is served.
        for (;;) {
          try {
            const counts = await countRows(ctx.broker, { [ds]: list.map((s) => s.id) }, ctx.auth, ctx.signal);
            diff = rowDifferences(one, counts.bySegment);
          } catch (e) {
            diff = [`the Broker did not answer: ${messageOf(e)}`];
          }
          if (!diff.length || Date.now() > deadline || ctx.signal?.aborted) break;
          await sleep(POLL_MS, ctx.signal);
        }
        if (diff.length) problems.set(ds, `rows differ from the snapshot: ${shown(diff)}`);
      }
    }
    const result: StepResult = { step: p.step, items: [] };
    for (const item of p.items) {
      const problem = problems.get(item.subject);
      result.items.push(problem ? { ...item, outcome: 'failed', error: problem } : { ...item, outcome: 'done' });
      progress(item);
    }
    return result;
  }

  return { name: 'check', plan, run };
}
