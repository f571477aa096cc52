/**
 * Putting lost segment rows back into Druid's metadata store (issue 22): the client of the druid-backup extension's
 * `POST /druid-ext/druid-backup/v1/segments` on the leader Overlord (druid-extension/SegmentRowsResource.java), which
 * calls Druid's own `commitSegments` in-process, the way the removed `insert-segment-to-db` tool did. That call skips
 * ids already present (their used flag is set apart, by the Coordinator's markUsed) and does not consult task locks,
 * so a caller first asks `lockedIntervals` and refuses while a task holds an interval it would write.
 */
import { BackupError } from '../errors.js';
import type { DataSegment } from '../druid/descriptor.js';
import { parseInterval } from '../druid/time.js';
import type { Interval } from '../druid/time.js';
import { quoteId } from '../druid/paths.js';
import { ANSWER_LIMITS } from '../util/limitedRead.js';
import type { DruidAuth } from './druidHttp.js';
import { druidCall, statusPhrase } from './druidHttp.js';

/** Served by the druid-backup extension on the Overlord. */
export const SEGMENTS_PATH = '/druid-ext/druid-backup/v1/segments';
/** Segments per call, as the extension takes them (SegmentRowsResource.MAX_SEGMENTS). */
export const REGISTER_BATCH = 500;

export interface RegisterResult {
  /** Rows written now. */
  inserted: string[];
  /** Ids whose row was already there (used or not): left as they were. */
  present: string[];
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

/**
 * Writes the rows the metadata store lacks of `segments`, all of data source `dataSource`, in batches. Each id asked
 * comes back under exactly one of `inserted` and `present`, or the answer is refused. Throws on any refusal: 404 (the
 * extension is not loaded there), 403 (WRITE on STATE and on the data source are both needed), 503 (not the leader).
 */
export async function registerSegments(o: {
  overlord: string;
  auth?: DruidAuth;
  dataSource: string;
  segments: Array<{ id: string; descriptor: DataSegment }>;
  signal?: AbortSignal;
}): Promise<RegisterResult> {
  const out: RegisterResult = { inserted: [], present: [] };
  for (let i = 0; i < o.segments.length; i += REGISTER_BATCH) {
    const batch = o.segments.slice(i, i + REGISTER_BATCH);
    for (const s of batch)
      if (s.descriptor.dataSource !== o.dataSource) throw new BackupError('bad_request', `segment ${quoteId(s.id)} is not of data source ${quoteId(o.dataSource)}`);
    const answer = await druidCall({
      method: 'POST',
      url: `${trimSlash(o.overlord)}${SEGMENTS_PATH}`,
      auth: o.auth,
      body: { dataSource: o.dataSource, segments: batch.map((s) => s.descriptor) },
      limit: ANSWER_LIMITS.page,
      what: "the Overlord's answer to inserting segment rows",
      signal: o.signal,
    });
    if (answer.status === 404)
      throw new BackupError(
        'target_error',
        `the Overlord ${o.overlord} answered 404 to ${SEGMENTS_PATH}: load the druid-backup extension on the Overlord (or the Coordinator running it); Druid itself has no API that writes segment rows`,
      );
    if (answer.status === 403 || answer.status === 401)
      throw new BackupError('forbidden', `the Overlord refused to insert rows of ${quoteId(o.dataSource)} (${statusPhrase(answer)}): it needs WRITE on STATE and on the data source`);
    if (answer.status === 503) throw new BackupError('target_error', `the Overlord ${o.overlord} is not the leader (503): name the leader Overlord`);
    if (answer.status !== 200) throw new BackupError('target_error', `inserting rows of ${quoteId(o.dataSource)}: the Overlord answered ${statusPhrase(answer)}`);
    const r = parseRegisterAnswer(answer.text, o.dataSource, batch.map((s) => s.id));
    out.inserted.push(...r.inserted);
    out.present.push(...r.present);
  }
  return out;
}

/** The extension's answer, checked: every id asked, each under exactly one of inserted and present, nothing else. */
export function parseRegisterAnswer(text: string, dataSource: string, asked: string[]): RegisterResult {
  const bad = (what: string) => new BackupError('target_error', `the Overlord's answer to inserting rows of ${quoteId(dataSource)} ${what}`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw bad('is not JSON');
  }
  const o = (raw ?? {}) as Record<string, unknown>;
  const list = (v: unknown) => (Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined);
  const inserted = list(o.inserted);
  const present = list(o.present);
  if (o.dataSource !== dataSource || !inserted || !present) throw bad('is not {"dataSource", "inserted": [ids], "present": [ids]} of that data source');
  const want = new Set(asked);
  const seen = new Set<string>();
  for (const id of [...inserted, ...present]) {
    if (!want.has(id)) throw bad(`names ${quoteId(id)}, which was not asked`);
    if (seen.has(id)) throw bad(`names ${quoteId(id)} twice`);
    seen.add(id);
  }
  if (seen.size !== want.size) throw bad(`leaves out ${want.size - seen.size} of the ids asked`);
  return { inserted, present };
}

/**
 * The intervals tasks hold locks on, per data source (`POST /druid/indexer/v1/lockedIntervals/v2` on the Overlord):
 * every lock of every task whatever its priority, since writing rows under any of them bypasses it.
 */
export async function lockedIntervals(o: { overlord: string; auth?: DruidAuth; dataSources: string[]; signal?: AbortSignal }): Promise<Map<string, Interval[]>> {
  const out = new Map<string, Interval[]>();
  if (!o.dataSources.length) return out;
  const answer = await druidCall({
    method: 'POST',
    url: `${trimSlash(o.overlord)}/druid/indexer/v1/lockedIntervals/v2`,
    auth: o.auth,
    // The lowest priority there is: a lock held by any task counts.
    body: o.dataSources.map((datasource) => ({ datasource, priority: -2147483648 })),
    limit: ANSWER_LIMITS.page,
    what: "the Overlord's locked intervals",
    signal: o.signal,
  });
  if (answer.status !== 200) throw new BackupError('target_error', `the Overlord answered ${statusPhrase(answer)} to the locked intervals`);
  return parseLockedIntervals(answer.text, new Set(o.dataSources));
}

/** `{"ds": ["start/end", ...]}`, checked: only data sources asked, every interval one Druid could write. */
export function parseLockedIntervals(text: string, asked: Set<string>): Map<string, Interval[]> {
  const bad = (what: string) => new BackupError('target_error', `the Overlord's locked intervals ${what}`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw bad('are not JSON');
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw bad('are not an object of intervals by data source');
  const out = new Map<string, Interval[]>();
  for (const [ds, list] of Object.entries(raw as Record<string, unknown>)) {
    if (!asked.has(ds)) throw bad(`name ${quoteId(ds)}, which was not asked`);
    if (!Array.isArray(list)) throw bad(`of ${quoteId(ds)} are not a list`);
    out.set(
      ds,
      list.map((t) => {
        try {
          return parseInterval(t as string);
        } catch {
          throw bad(`of ${quoteId(ds)} hold something that is not an interval`);
        }
      }),
    );
  }
  return out;
}
