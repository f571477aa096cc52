/**
 * Row counts of a snapshot's segments, from the Broker's `sys.segments.num_rows` for exactly those ids (a
 * `COUNT(*)` would include realtime rows and segments outside the snapshot), so a restore can be checked against
 * them. Ids go as SQL parameters, never into the query text, in batches.
 */
import { BackupError } from '../errors.js';
import { ANSWER_LIMITS } from '../util/limitedRead.js';
import type { DruidAuth } from './druidHttp.js';
import { druidCall, statusPhrase } from './druidHttp.js';

/** Ids per query: one small statement each, and an answer well below the page limit. */
export const ROWS_BATCH = 500;

export interface RowCounts {
  /** The rows of each segment whose count the Broker knows. */
  bySegment: Map<string, number>;
  /** Per data source: the sum over `counted` segments; `unknown` segments had no count (so the sum is short). */
  byDataSource: Record<string, { rows: number; counted: number; unknown: number }>;
}

interface Row {
  segment_id: string;
  num_rows: number | null;
  is_available: number | boolean | null;
}

export async function countRows(broker: string, segments: Record<string, string[]>, auth?: DruidAuth, signal?: AbortSignal): Promise<RowCounts> {
  const url = `${broker.replace(/\/+$/, '')}/druid/v2/sql`;
  const bySegment = new Map<string, number>();
  const byDataSource: RowCounts['byDataSource'] = {};
  for (const [ds, list] of Object.entries(segments)) {
    const ids = [...new Set(list)];
    const sum = (byDataSource[ds] = { rows: 0, counted: 0, unknown: 0 });
    for (let i = 0; i < ids.length; i += ROWS_BATCH) {
      const batch = ids.slice(i, i + ROWS_BATCH);
      const answer = await druidCall({
        method: 'POST',
        url,
        auth,
        signal,
        limit: ANSWER_LIMITS.page,
        what: "the Broker's sys.segments answer",
        body: {
          query: `SELECT segment_id, num_rows, is_available FROM sys.segments WHERE segment_id IN (${batch.map(() => '?').join(', ')})`,
          parameters: batch.map((value) => ({ type: 'VARCHAR', value })),
          resultFormat: 'object',
        },
      });
      if (answer.status !== 200) throw new BackupError('target_error', `row counts: the Broker answered ${statusPhrase(answer)}`);
      for (const row of parseRows(answer.text, new Set(batch))) {
        // Druid reports 0 for a segment whose count it has not gathered; a served segment's 0 is real (a tombstone).
        const known = row.num_rows !== null && (row.num_rows > 0 || row.is_available === 1 || row.is_available === true);
        if (!known || bySegment.has(row.segment_id)) continue;
        bySegment.set(row.segment_id, row.num_rows!);
        sum.rows += row.num_rows!;
        sum.counted++;
      }
    }
    sum.unknown = ids.length - sum.counted;
  }
  return { bySegment, byDataSource };
}

/** The Broker's answer, checked: a list of rows, each about one of the ids asked. */
export function parseRows(text: string, asked: Set<string>): Row[] {
  let rows: unknown;
  try {
    rows = JSON.parse(text);
  } catch {
    throw new BackupError('target_error', "row counts: the Broker's answer is not valid JSON");
  }
  if (!Array.isArray(rows)) throw new BackupError('target_error', "row counts: the Broker's answer is not a list of rows");
  return rows.map((r: unknown, i) => {
    const o = (r ?? {}) as Record<string, unknown>;
    const bad = (what: string) => new BackupError('target_error', `row counts: row ${i} of the Broker's answer ${what}`);
    if (typeof o.segment_id !== 'string' || !asked.has(o.segment_id)) throw bad('is not about a segment that was asked');
    if (o.num_rows !== null && (typeof o.num_rows !== 'number' || !Number.isSafeInteger(o.num_rows) || o.num_rows < 0)) throw bad('has no row count');
    const a = o.is_available;
    if (a !== null && a !== undefined && typeof a !== 'number' && typeof a !== 'boolean') throw bad('has a bad is_available');
    return { segment_id: o.segment_id, num_rows: o.num_rows, is_available: (a ?? null) as Row['is_available'] };
  });
}
