/**
 * Which backed-up segments a restore takes: the request's selector (druid/selector.ts), applied to a target's
 * catalog. No filter selects every segment the target holds. Ids asked for by name must all be there.
 */
import type { SegmentSelector } from '../api.js';
import type { Selector } from '../druid/selector.js';
import { compileSelector, selects } from '../druid/selector.js';
import { parseInstant } from '../druid/time.js';
import { BackupError } from '../errors.js';
import type { Manifest } from '../store/manifest.js';
import type { ListFilter } from '../store/target.js';

export type Selection = Selector;

/** Checks a selector that came from a request or flags; throws a 4xx BackupError that says what is wrong. */
export function parseSelector(s: SegmentSelector): Selection {
  if (s.segmentIds !== undefined && Array.isArray(s.segmentIds) && s.segmentIds.length === 0) {
    throw new BackupError('bad_request', 'segmentIds is empty; leave it out to select by dataSource and interval');
  }
  return compileSelector(s);
}

/** The same selection as the store's list filter, so a target can narrow the catalog before sending it. */
export function toListFilter(sel: Selection, raw: SegmentSelector): ListFilter {
  return { dataSource: sel.dataSource, interval: raw.interval, segmentIds: sel.segmentIds ? [...sel.segmentIds] : undefined };
}

/**
 * Whether the selector takes this backed-up segment. A manifest from a target whose interval is not one is taken
 * when no interval is asked for, so the planner refuses it with its reason instead of it vanishing from the restore.
 */
export function manifestSelected(sel: Selection, m: Manifest): boolean {
  const [a, b] = String(m.interval).split('/');
  const startMs = parseInstant(a ?? '');
  const endMs = parseInstant(b ?? '');
  const seg = { id: String(m.segmentId), dataSource: String(m.dataSource) };
  if (startMs === undefined || endMs === undefined) return sel.interval === undefined && selects(sel, { ...seg, startMs: 0, endMs: 0 });
  return selects(sel, { ...seg, startMs, endMs });
}

/**
 * The selected manifests, sorted by segment id. Ids asked for by name that the target does not hold are an
 * error: a restore that silently restores less than asked is worse than none.
 */
export function selectManifests(sel: Selection, catalog: Iterable<Manifest>, target: string): Manifest[] {
  const byId = new Map<string, Manifest>();
  for (const m of catalog) if (manifestSelected(sel, m)) byId.set(m.segmentId, m);
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
