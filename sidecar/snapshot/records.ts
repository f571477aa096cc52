/**
 * The small records the pruner keeps in a store (the lease, its marks, the nodes' holdings), checked as they are
 * read back: a store is input like any other.
 */
import { BackupError } from '../errors.js';
import { quoteId } from '../druid/paths.js';
import { parseSegmentId } from '../druid/segmentId.js';
import { parseInstant } from '../druid/time.js';
import { nodeNameProblem } from '../store/local/store.js';
import type { Holdings, Lease, PruneMarks } from './store.js';

function bad(what: string, problem: string): never {
  throw new BackupError('target_error', `${what} is refused: ${problem}`);
}

export function parseLease(raw: unknown): Lease {
  const o = raw as Record<string, unknown> | null;
  if (
    !o ||
    typeof o !== 'object' ||
    typeof o.owner !== 'string' ||
    o.owner.length > 500 ||
    typeof o.expires !== 'string' ||
    parseInstant(o.expires) === undefined
  )
    bad('the prune lease', 'it is not {"owner", "expires"}');
  return { owner: o.owner as string, expires: o.expires as string };
}

export function parseMarks(raw: unknown): PruneMarks {
  const o = raw as Record<string, unknown> | null;
  if (
    !o ||
    typeof o !== 'object' ||
    !Number.isSafeInteger(o.at) ||
    !o.lastReferenced ||
    typeof o.lastReferenced !== 'object' ||
    Array.isArray(o.lastReferenced)
  )
    bad('the prune marks', 'they are not {"at", "lastReferenced"}');
  const lastReferenced: Record<string, number> = Object.create(null) as Record<string, number>;
  for (const [id, t] of Object.entries(o.lastReferenced as Record<string, unknown>)) {
    if (!Number.isSafeInteger(t)) bad('the prune marks', `the mark of ${quoteId(id)} is not a time`);
    lastReferenced[id] = t as number;
  }
  return { at: o.at as number, lastReferenced };
}

export function parseHoldings(raw: unknown): Holdings {
  const o = raw as Record<string, unknown> | null;
  if (!o || typeof o !== 'object') bad('a holdings report', 'it is not an object');
  const problem = nodeNameProblem(o.node);
  if (problem) bad('a holdings report', problem);
  if (typeof o.at !== 'string' || parseInstant(o.at) === undefined) bad('a holdings report', 'its time is not an instant');
  if (!Array.isArray(o.segmentIds) || o.segmentIds.length > 10_000_000) bad('a holdings report', 'its segment ids are not a list');
  const segmentIds = o.segmentIds.map((id) => {
    try {
      return parseSegmentId(id).id;
    } catch (e) {
      bad('a holdings report', (e as Error).message);
    }
  });
  return { node: o.node as string, at: o.at, segmentIds };
}
