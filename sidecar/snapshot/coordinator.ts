/**
 * The used segments of a Druid 33 cluster as its Coordinator reports them:
 * `GET /druid/coordinator/v1/metadata/segments?includeOvershadowedStatus&includeRealtimeSegments[&datasources=…]`
 * answers one JSON array of `{"overshadowed","replicationFactor","numRows","realtime", …DataSegment fields}`
 * (/work/shared/notes/druid-metadata.md). It is read streaming (jsonArray.ts), one element at a time, each checked
 * (its id must be one Druid could make) before it is kept. Realtime segments are not published, so not in any
 * backup: they are left out.
 */
import type { DruidAuth } from '../cluster/druidHttp.js';
import { druidStream, statusPhrase } from '../cluster/druidHttp.js';
import { BackupError, messageOf } from '../errors.js';
import type { DataSegment } from '../druid/descriptor.js';
import { segmentIdOfDescriptor } from '../druid/descriptor.js';
import { quoteId } from '../druid/paths.js';
import { jsonArrayElements } from './jsonArray.js';

/** One descriptor of a segment: shard specs of a few KiB, never a MiB. */
export const MAX_DESCRIPTOR_BYTES = 1024 * 1024;
const STATUS_FIELDS = new Set(['overshadowed', 'replicationFactor', 'numRows', 'realtime']);

export interface UsedSegment {
  id: string;
  dataSource: string;
  overshadowed: boolean;
  size: number;
  /** The Coordinator's replicationFactor: 0 for a segment no Historical is to load ("query from deep storage"). */
  replication?: number;
  rows?: number;
  descriptor: DataSegment;
}

export type { DruidAuth };

export async function* usedSegments(o: { coordinator: string; auth?: DruidAuth; dataSources?: string[]; signal?: AbortSignal }): AsyncGenerator<UsedSegment> {
  const url = new URL('/druid/coordinator/v1/metadata/segments', o.coordinator);
  url.search = 'includeOvershadowedStatus&includeRealtimeSegments';
  for (const ds of o.dataSources ?? []) url.searchParams.append('datasources', ds);
  const what = `the Coordinator's list of used segments`;
  // Through the one Druid client (credentials, no redirects, a timeout), read as it arrives.
  const res = await druidStream({ method: 'GET', url: url.toString(), auth: o.auth, what, signal: o.signal }).catch((e: unknown) => {
    if (o.signal?.aborted) throw new BackupError('cancelled', 'cancelled');
    throw e;
  });
  if (res.status !== 200) {
    res.body.destroy();
    throw new BackupError('target_error', `the Coordinator ${o.coordinator} answered ${statusPhrase(res)} to the list of used segments`);
  }
  for await (const el of jsonArrayElements(res.body, MAX_DESCRIPTOR_BYTES, what)) {
    if (!el || typeof el !== 'object' || Array.isArray(el)) throw new BackupError('target_error', `${what} holds an element that is not an object`);
    const e = el as Record<string, unknown>;
    if (e.realtime === true) continue;
    const descriptor: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(e)) if (!STATUS_FIELDS.has(k)) descriptor[k] = v;
    let seg;
    try {
      seg = segmentIdOfDescriptor(descriptor);
    } catch (err) {
      throw new BackupError('target_error', `${what} holds a segment that is refused: ${messageOf(err)}`);
    }
    if (o.dataSources?.length && !o.dataSources.includes(seg.dataSource))
      throw new BackupError('target_error', `${what} holds ${quoteId(seg.id)}, of a data source not asked for`);
    const size = typeof e.size === 'number' && Number.isSafeInteger(e.size) && e.size >= 0 ? e.size : 0;
    yield {
      id: seg.id,
      dataSource: seg.dataSource,
      overshadowed: e.overshadowed === true,
      size,
      ...(typeof e.replicationFactor === 'number' ? { replication: e.replicationFactor } : {}),
      ...(typeof e.numRows === 'number' && Number.isSafeInteger(e.numRows) && e.numRows >= 0 ? { rows: e.numRows } : {}),
      descriptor: descriptor as DataSegment,
    };
  }
}
