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

/** When the policy lets a snapshot go: never (pinned, no rule), at a time, or only after newer snapshots (no cadence known). */
export interface SnapshotOutlook {
  keep: boolean;
  /** Why it is kept now, each rule that keeps it, or why not (as `applyRetention` says). */
  reasons: string[];
  /** The policy, in its words (`keepLast=7, keepDaily=30`). */
  policy: string;
  /**
   * When the policy stops keeping it, if snapshots go on being taken every `cadenceMs` (the last rule keeping it
   * lapses then, and the prune after that removes it). Absent when nothing ever lets it go (pinned, no rule) or when
   * no cadence is known (a single snapshot, no period configured).
   */
  until?: string;
  /** The cadence `until` assumes, in ms. */
  cadenceMs?: number;
}

const BUCKET_END: Record<Bucketed, (ms: number) => number> = {
  keepHourly: (ms) => Math.floor(ms / 3600000) * 3600000 + 3600000,
  keepDaily: (ms) => Math.floor(ms / 86400000) * 86400000 + 86400000,
  // ISO weeks start on Monday; 1970-01-05 was one.
  keepWeekly: (ms) => {
    const week = 7 * 86400000;
    const monday = Date.UTC(1970, 0, 5);
    return monday + (Math.floor((ms - monday) / week) + 1) * week;
  },
  keepMonthly: (ms) => {
    const d = new Date(ms);
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
  },
};

/** The usual gap between snapshots: the median of the last ten gaps, when there are some. */
export function cadenceOf(timesMs: readonly number[]): number | undefined {
  const sorted = [...timesMs].sort((a, b) => b - a).slice(0, 11);
  const gaps = sorted
    .slice(1)
    .map((t, i) => sorted[i]! - t)
    .filter((g) => g > 0)
    .sort((a, b) => a - b);
  return gaps.length ? gaps[Math.floor(gaps.length / 2)] : undefined;
}

/**
 * Each snapshot's verdict now (`applyRetention`) and when the policy would stop keeping it, if snapshots go on being
 * taken every `cadenceMs` from the newest (or from now, when they stopped): snapshot j then comes at
 * `next + (j-1)·cadence`, `next = max(newest + cadence, now)`. A snapshot is kept while any rule keeps it, and each
 * rule, once it lets go, never takes it back as newer snapshots come, so the time is the latest of its rules' ends:
 * `newest` the first newer snapshot; `keepLast n` at rank r, the (n−r)th; a bucket rule of n at bucket rank q, a
 * newer snapshot in its own bucket or the (n−q)th newer bucket; `keepWithin d`, the first newer snapshot taken d
 * after it. The unit tests check this against `applyRetention` run over those future snapshots.
 */
export function retentionOutlook(
  snapshots: readonly SnapshotFacts[],
  policy: RetentionPolicy,
  o: { nowMs: number; cadenceMs?: number },
): Map<string, SnapshotOutlook> {
  const verdicts = applyRetention(snapshots, policy);
  const words = describePolicy(policy);
  const out = new Map<string, SnapshotOutlook>();
  const byId = new Map(snapshots.map((s) => [s.id, s]));
  const P = o.cadenceMs !== undefined && o.cadenceMs > 0 ? o.cadenceMs : undefined;
  const newest = verdicts[0] ? byId.get(verdicts[0].id)!.timeMs : o.nowMs;
  const next = P === undefined ? 0 : Math.max(newest + P, o.nowMs);
  /** The first future snapshot taken at or after `t`. */
  const futureAt = (t: number) => next + Math.max(0, Math.ceil((t - next) / P!)) * P!;
  // Pins use up no count and no bucket: ranks and buckets are among the others.
  const unpinned = verdicts.filter((v) => !byId.get(v.id)!.pinned);
  /** Per bucket rule: the time each newer bucket (1st, 2nd, …) gets its first future snapshot, as far as needed. */
  const newBuckets = new Map<Bucketed, number[]>();
  const bucketTimes = (rule: Bucketed, upTo: number): number[] => {
    const list = newBuckets.get(rule) ?? [];
    const of = BUCKETS.find((b) => b.rule === rule)!.of;
    const newestBucket = unpinned[0] && of(byId.get(unpinned[0].id)!.timeMs);
    let t = list.length ? BUCKET_END[rule](list[list.length - 1]!) : next;
    while (list.length < upTo) {
      const f = futureAt(t);
      if (of(f) !== newestBucket) list.push(f);
      t = BUCKET_END[rule](f);
    }
    newBuckets.set(rule, list);
    return list;
  };

  verdicts.forEach((v, i) => {
    const s = byId.get(v.id)!;
    const entry: SnapshotOutlook = { keep: v.keep, reasons: v.reasons, policy: words };
    out.set(v.id, entry);
    if (!v.keep || s.pinned || !hasRule(policy) || P === undefined) return;
    entry.cadenceMs = P;
    const ends: number[] = [];
    if (i === 0) ends.push(next);
    const rank = unpinned.findIndex((u) => u.id === v.id);
    const newer = unpinned.slice(0, rank).map((u) => byId.get(u.id)!.timeMs);
    if (policy.keepLast && rank < policy.keepLast) ends.push(next + (policy.keepLast - rank - 1) * P);
    for (const b of BUCKETS) {
      const n = policy[b.rule] ?? 0;
      if (!v.reasons.includes(`${b.word} ${b.of(s.timeMs)}`)) continue;
      const q = new Set(newer.map(b.of)).size;
      const mine = b.of(s.timeMs);
      const sameBucket = b.of(next) === mine ? next : Infinity;
      ends.push(Math.min(sameBucket, bucketTimes(b.rule, n - q)[n - q - 1]!));
    }
    if (policy.keepWithinMs !== undefined && newest - s.timeMs < policy.keepWithinMs) ends.push(futureAt(s.timeMs + policy.keepWithinMs));
    entry.until = new Date(Math.max(...ends)).toISOString();
  });
  return out;
}
