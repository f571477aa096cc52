/**
 * The retention policy, a pure function: which snapshots a target keeps, and which segments (restic's and Kopia's
 * policy words, `druid.backup.retention.*`).
 *
 * Snapshots, newest first (by time, then id), each tested against every rule:
 * - `keepLast n`: the n newest;
 * - `keepHourly|Daily|Weekly|Monthly n`: the newest snapshot of each of the n most recent hours (days, ISO weeks,
 *   months; UTC) that have a snapshot, as restic counts buckets: a bucket without a snapshot does not use up one of n;
 * - `keepWithin d`: every snapshot taken less than d before the newest one (not before now: a target whose
 *   snapshots stopped keeps them, instead of losing them all one by one as time passes);
 * - a pinned snapshot is always kept and does not use up any count, so pins never make a rule keep fewer.
 * Two rules of safety beyond restic's: the newest snapshot is always kept (the most common complaint about every
 * tool: a policy that deleted the latest backup), and a policy with no rule at all keeps everything (an unset
 * policy never deletes). Every snapshot carries the reasons it is kept, or why it is not.
 *
 * Segments: a stored segment is kept while a kept snapshot names it, while any node reports holding it, or for
 * `gracePeriod` after it stopped being either (measured from the last time it was seen referenced, which the
 * pruner records).
 */
import { periodToMillis, parsePeriod } from '../druid/time.js';
import { BackupError } from '../errors.js';

export interface RetentionPolicy {
  keepLast?: number;
  keepHourly?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  /** Milliseconds. */
  keepWithinMs?: number;
  /** Milliseconds a segment stays after nothing references it any more. */
  gracePeriodMs: number;
}

export const DEFAULT_GRACE_MS = 7 * 24 * 3600 * 1000;

export interface SnapshotFacts {
  id: string;
  /** ms since the epoch */
  timeMs: number;
  pinned: boolean;
}

export interface SnapshotVerdict {
  id: string;
  keep: boolean;
  /** Why it is kept (each rule that keeps it), or why not. */
  reasons: string[];
}

type Bucketed = 'keepHourly' | 'keepDaily' | 'keepWeekly' | 'keepMonthly';

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** The ISO week of `d` (UTC) as `YYYY-Www`: weeks start on Monday, week 1 holds the year's first Thursday. */
export function isoWeek(ms: number): string {
  const d = new Date(ms);
  const day = (d.getUTCDay() + 6) % 7;
  const thursday = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() - day + 3));
  const year = thursday.getUTCFullYear();
  const week = 1 + Math.floor((thursday.getTime() - Date.UTC(year, 0, 1)) / (7 * 86400000));
  return `${year}-W${pad(week)}`;
}

const BUCKETS: Array<{ rule: Bucketed; word: string; of: (ms: number) => string }> = [
  { rule: 'keepHourly', word: 'hourly', of: (ms) => new Date(ms).toISOString().slice(0, 13) },
  { rule: 'keepDaily', word: 'daily', of: (ms) => new Date(ms).toISOString().slice(0, 10) },
  { rule: 'keepWeekly', word: 'weekly', of: isoWeek },
  { rule: 'keepMonthly', word: 'monthly', of: (ms) => new Date(ms).toISOString().slice(0, 7) },
];

export function hasRule(p: RetentionPolicy): boolean {
  return [p.keepLast, p.keepHourly, p.keepDaily, p.keepWeekly, p.keepMonthly].some((n) => (n ?? 0) > 0) || p.keepWithinMs !== undefined;
}

function formatMs(ms: number): string {
  if (ms % 86400000 === 0) return `P${ms / 86400000}D`;
  if (ms % 3600000 === 0) return `PT${ms / 3600000}H`;
  return `PT${ms / 1000}S`;
}

/** Which snapshots the policy keeps; the answer lists them newest first. */
export function applyRetention(snapshots: readonly SnapshotFacts[], policy: RetentionPolicy): SnapshotVerdict[] {
  const sorted = [...snapshots].sort((a, b) => b.timeMs - a.timeMs || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  const any = hasRule(policy);
  let last = policy.keepLast ?? 0;
  const left: Record<Bucketed, number> = {
    keepHourly: policy.keepHourly ?? 0,
    keepDaily: policy.keepDaily ?? 0,
    keepWeekly: policy.keepWeekly ?? 0,
    keepMonthly: policy.keepMonthly ?? 0,
  };
  const lastBucket: Partial<Record<Bucketed, string>> = {};
  const newest = sorted[0]?.timeMs;
  return sorted.map((s, i) => {
    const reasons: string[] = [];
    if (s.pinned) reasons.push('pinned');
    if (i === 0) reasons.push('newest');
    if (!any) reasons.push('no retention rule is set');
    if (!s.pinned) {
      if (last > 0) {
        reasons.push(`last ${(policy.keepLast ?? 0) - last + 1} of ${policy.keepLast}`);
        last--;
      }
      for (const b of BUCKETS) {
        const bucket = b.of(s.timeMs);
        if (left[b.rule] > 0 && lastBucket[b.rule] !== bucket) {
          reasons.push(`${b.word} ${bucket}`);
          lastBucket[b.rule] = bucket;
          left[b.rule]--;
        }
      }
    }
    if (policy.keepWithinMs !== undefined && newest !== undefined && newest - s.timeMs < policy.keepWithinMs)
      reasons.push(`within ${formatMs(policy.keepWithinMs)} of the newest`);
    if (reasons.length) return { id: s.id, keep: true, reasons };
    return { id: s.id, keep: false, reasons: [`no rule keeps it (${describePolicy(policy)})`] };
  });
}

export function describePolicy(p: RetentionPolicy): string {
  const parts: string[] = [];
  if (p.keepLast) parts.push(`keepLast=${p.keepLast}`);
  for (const b of BUCKETS) if (p[b.rule]) parts.push(`${b.rule}=${p[b.rule]}`);
  if (p.keepWithinMs !== undefined) parts.push(`keepWithin=${formatMs(p.keepWithinMs)}`);
  return parts.length ? parts.join(', ') : 'no rule';
}

export type SegmentVerdict = { keep: true; reason: string } | { keep: false; reason: string };

/**
 * Whether a stored segment stays. `lastReferencedMs` is the last time it was seen named by a kept snapshot or held
 * by a node (or stored, for a segment never seen referenced); `nowMs` the time of the decision.
 */
export function segmentVerdict(
  s: { id: string; inKeptSnapshot?: string; heldBy?: string; lastReferencedMs: number },
  policy: Pick<RetentionPolicy, 'gracePeriodMs'>,
  nowMs: number,
): SegmentVerdict {
  if (s.inKeptSnapshot) return { keep: true, reason: `named by kept snapshot ${s.inKeptSnapshot}` };
  if (s.heldBy) return { keep: true, reason: `held by node ${s.heldBy}` };
  const age = nowMs - s.lastReferencedMs;
  if (age < policy.gracePeriodMs)
    return {
      keep: true,
      reason: `in its grace period (${formatMs(policy.gracePeriodMs)}) until ${new Date(s.lastReferencedMs + policy.gracePeriodMs).toISOString()}`,
    };
  return {
    keep: false,
    reason: `no kept snapshot names it, no node reports holding it, and it has not been referenced since ${new Date(s.lastReferencedMs).toISOString()} (grace period ${formatMs(policy.gracePeriodMs)})`,
  };
}

/** The policy from `druid.backup.retention.*` values as typed by the config (counts, periods as text). */
export function policyFromSettings(s: {
  keepLast?: number;
  keepHourly?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  keepWithin?: string;
  gracePeriod?: string;
}): RetentionPolicy {
  const period = (key: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined;
    const p = parsePeriod(v);
    const ms = periodToMillis(v);
    if (!p) throw new BackupError('bad_config', `druid.backup.retention.${key}: ${JSON.stringify(v)} is not an ISO-8601 period such as P7D`);
    // Months and years have no fixed length: taken as 31 and 366 days, which keeps more, never less.
    return ms ?? (p.years * 366 + p.months * 31) * 86400000 + p.millis;
  };
  for (const k of ['keepLast', 'keepHourly', 'keepDaily', 'keepWeekly', 'keepMonthly'] as const) {
    const n = s[k];
    if (n !== undefined && (!Number.isSafeInteger(n) || n < 0)) throw new BackupError('bad_config', `druid.backup.retention.${k}: ${n} is not a count`);
  }
  return {
    ...(s.keepLast !== undefined ? { keepLast: s.keepLast } : {}),
    ...(s.keepHourly !== undefined ? { keepHourly: s.keepHourly } : {}),
    ...(s.keepDaily !== undefined ? { keepDaily: s.keepDaily } : {}),
    ...(s.keepWeekly !== undefined ? { keepWeekly: s.keepWeekly } : {}),
    ...(s.keepMonthly !== undefined ? { keepMonthly: s.keepMonthly } : {}),
    ...(s.keepWithin !== undefined ? { keepWithinMs: period('keepWithin', s.keepWithin) } : {}),
    gracePeriodMs: period('gracePeriod', s.gracePeriod) ?? DEFAULT_GRACE_MS,
  };
}
