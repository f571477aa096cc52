/**
 * Which backed-up segments a restore takes: the request's selector, checked as outside input, applied to a
 * target's catalog. All given filters must match (AND); no filter selects every segment the target holds.
 */
import type { SegmentSelector } from '../api.js';
import { dataSourceProblem, parseSegmentId } from '../druid/segmentId.js';
import type { Interval } from '../druid/time.js';
import { overlaps, parseInterval, parseInstant } from '../druid/time.js';
import { BackupError } from '../errors.js';
import type { Manifest } from '../store/manifest.js';
import type { ListFilter } from '../store/target.js';

export const MAX_SEGMENT_IDS = 10_000;

export interface Selection {
  dataSource?: string;
  interval?: Interval;
  segmentIds?: Set<string>;
}

/** Checks a selector that came from a request or flags; throws a 4xx BackupError that says what is wrong. */
export function parseSelector(s: SegmentSelector): Selection {
  const out: Selection = {};
  if (s.dataSource !== undefined) {
    if (typeof s.dataSource !== 'string') throw new BackupError('bad_request', 'dataSource must be a string');
    const problem = dataSourceProblem(s.dataSource);
    if (problem) throw new BackupError('bad_request', problem);
    out.dataSource = s.dataSource;
  }
  if (s.interval !== undefined) out.interval = parseInterval(s.interval);
  if (s.segmentIds !== undefined) {
    if (!Array.isArray(s.segmentIds)) throw new BackupError('bad_request', 'segmentIds must be a list of segment ids');
    if (s.segmentIds.length === 0) throw new BackupError('bad_request', 'segmentIds is empty; leave it out to select by dataSource and interval');
    if (s.segmentIds.length > MAX_SEGMENT_IDS)
      throw new BackupError('bad_request', `segmentIds lists ${s.segmentIds.length} ids; at most ${MAX_SEGMENT_IDS} at once`);
    out.segmentIds = new Set(s.segmentIds.map((id) => parseSegmentId(id).id));
  }
  return out;
}

/** The same selection as the store's list filter, so a target can narrow the catalog before sending it. */
export function toListFilter(sel: Selection, raw: SegmentSelector): ListFilter {
  return { dataSource: sel.dataSource, interval: raw.interval, segmentIds: sel.segmentIds ? [...sel.segmentIds] : undefined };
}

function intervalOf(m: Manifest): { startMs: number; endMs: number } | undefined {
  const [a, b] = m.interval.split('/');
  const startMs = a ? parseInstant(a) : undefined;
  const endMs = b ? parseInstant(b) : undefined;
  return startMs === undefined || endMs === undefined ? undefined : { startMs, endMs };
}

export function selects(sel: Selection, m: Manifest): boolean {
  if (sel.dataSource !== undefined && m.dataSource !== sel.dataSource) return false;
  if (sel.segmentIds && !sel.segmentIds.has(m.segmentId)) return false;
  if (sel.interval) {
    const iv = intervalOf(m);
    if (!iv || !overlaps(iv, sel.interval)) return false;
  }
  return true;
}

/**
 * The selected manifests, sorted by segment id. Ids asked for by name that the target does not hold are an
 * error: a restore that silently restores less than asked is worse than none.
 */
export function selectManifests(sel: Selection, catalog: Iterable<Manifest>, target: string): Manifest[] {
  const byId = new Map<string, Manifest>();
  for (const m of catalog) if (selects(sel, m)) byId.set(m.segmentId, m);
  if (sel.segmentIds) {
    const absent = [...sel.segmentIds].filter((id) => !byId.has(id));
    if (absent.length) {
      const more = absent.length > 3 ? ` and ${absent.length - 3} more` : '';
      const narrowed = sel.dataSource !== undefined || sel.interval !== undefined ? ' that matches the given dataSource and interval' : '';
      throw new BackupError('not_found', `target ${target} holds no backup${narrowed} of ${absent.slice(0, 3).join(', ')}${more}`);
    }
  }
  return [...byId.values()].sort((a, b) => (a.segmentId < b.segmentId ? -1 : a.segmentId > b.segmentId ? 1 : 0));
}
