/**
 * Segment selection shared by backup, restore and the store catalog: a data source, an interval the segment must
 * overlap, a list of ids; every given filter must match (AND). Input from outside is checked here, once.
 */
import { BackupError } from '../errors.js';
import { dataSourceProblem, parseSegmentId } from './segmentId.js';
import type { Interval } from './time.js';
import { overlaps, parseInterval } from './time.js';

export interface SelectorInput {
  dataSource?: string;
  interval?: string;
  segmentIds?: string[];
}

export interface Selector {
  dataSource?: string;
  interval?: Interval;
  segmentIds?: Set<string>;
}

/** Checks and compiles a selector; throws `bad_request`, `bad_interval` or `bad_segment_id` saying what is wrong. */
export function compileSelector(input: SelectorInput = {}): Selector {
  const out: Selector = {};
  if (input.dataSource !== undefined) {
    const problem = dataSourceProblem(input.dataSource);
    if (problem) throw new BackupError('bad_request', problem);
    out.dataSource = input.dataSource;
  }
  if (input.interval !== undefined) out.interval = parseInterval(input.interval);
  if (input.segmentIds !== undefined) {
    out.segmentIds = new Set();
    for (const id of input.segmentIds) out.segmentIds.add(parseSegmentId(id).id);
  }
  return out;
}

export function selects(sel: Selector, seg: { id: string; dataSource: string; startMs: number; endMs: number }): boolean {
  if (sel.dataSource !== undefined && seg.dataSource !== sel.dataSource) return false;
  if (sel.segmentIds && !sel.segmentIds.has(seg.id)) return false;
  if (sel.interval && !overlaps(sel.interval, seg)) return false;
  return true;
}

export function isEmptySelector(sel: Selector): boolean {
  return sel.dataSource === undefined && sel.interval === undefined && sel.segmentIds === undefined;
}
