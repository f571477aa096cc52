/**
 * The small records the pruner keeps in a store (the lease, its marks, the nodes' holdings), checked as they are
 * read back: a store is input like any other.
 */
import { BackupError } from '../errors.js';
import { quoteId } from '../druid/paths.js';
import { parseSegmentId } from '../druid/segmentId.js';
import { parseInstant } from '../druid/time.js';
import { nodeNameProblem } from '../store/local/store.js';
import type { Holdings, HoldingsReport, Lease, PruneMarks } from './store.js';

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

/** Most segment ids in one holdings report. */
export const MAX_HOLDINGS_IDS = 10_000_000;
/** Most bytes of one holdings report, as stored (what a store reads back, at most) and as sent. */
export const MAX_HOLDINGS_BYTES = 256 * 1024 * 1024;
/** Longest element of a report sent (a segment id, quoted). */
export const MAX_HOLDINGS_ID_BYTES = 4096;

function checkHoldingsHead(node: unknown, at: unknown): void {
  const problem = nodeNameProblem(node);
  if (problem) bad('a holdings report', problem);
  if (typeof at !== 'string' || parseInstant(at) === undefined) bad('a holdings report', 'its time is not an instant');
}

/**
 * A report in chunks of about 64 KiB as its ids come, each id checked, at most MAX_HOLDINGS_IDS of them and
 * MAX_HOLDINGS_BYTES in all; a bad id fails the iteration (`target_error`) before the chunk holding it is given out.
 * `stored`: `{"node", "at", "segmentIds": [...]}`, what `parseHoldings` reads back; `ids`: the array of ids alone,
 * as it is sent to a target sidecar (the node and the time go in the request's path and query).
 * The node and the time are checked at once, before any chunk is asked for.
 */
export function holdingsChunks(h: HoldingsReport, form: 'stored' | 'ids' = 'stored'): AsyncGenerator<Buffer> {
  checkHoldingsHead(h.node, h.at);
  return chunksOf(h, form === 'stored' ? `{"node":${JSON.stringify(h.node)},"at":${JSON.stringify(h.at)},"segmentIds":[` : '[', form === 'stored' ? ']}' : ']');
}

async function* chunksOf(h: HoldingsReport, head: string, tail: string): AsyncGenerator<Buffer> {
  let out = head;
  let total = 0;
  let n = 0;
  const tooLarge = () => bad('a holdings report', `it is larger than ${MAX_HOLDINGS_BYTES} bytes`);
  for await (const raw of h.segmentIds) {
    let id: string;
    try {
      id = parseSegmentId(raw).id;
    } catch (e) {
      bad('a holdings report', (e as Error).message);
    }
    if (++n > MAX_HOLDINGS_IDS) bad('a holdings report', `it holds more than ${MAX_HOLDINGS_IDS} segment ids`);
    out += `${n > 1 ? ',' : ''}${JSON.stringify(id)}`;
    if (out.length >= 65536) {
      const b = Buffer.from(out);
      total += b.length;
      if (total > MAX_HOLDINGS_BYTES) tooLarge();
      out = '';
      yield b;
    }
  }
  const b = Buffer.from(`${out}${tail}`);
  if (total + b.length > MAX_HOLDINGS_BYTES) tooLarge();
  yield b;
}

export function parseHoldings(raw: unknown): Holdings {
  const o = raw as Record<string, unknown> | null;
  if (!o || typeof o !== 'object') bad('a holdings report', 'it is not an object');
  checkHoldingsHead(o.node, o.at);
  if (!Array.isArray(o.segmentIds) || o.segmentIds.length > MAX_HOLDINGS_IDS) bad('a holdings report', 'its segment ids are not a list');
  const segmentIds = o.segmentIds.map((id) => {
    try {
      return parseSegmentId(id).id;
    } catch (e) {
      bad('a holdings report', (e as Error).message);
    }
  });
  return { node: o.node as string, at: o.at as string, segmentIds };
}
