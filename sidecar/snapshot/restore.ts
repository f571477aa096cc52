/**
 * Restore from a snapshot: exactly the segments the snapshot names, of the chosen data sources, and every one of
 * them that no target holds any more (retention removed it, or it was never backed up) named with why: never
 * skipped in silence. A restore with such segments is refused (the plan of a dry run lists them); restoring the
 * rest is asked for by naming them (`segmentIds`).
 */
import { BackupError } from '../errors.js';
import type { Target } from '../store/target.js';
import { readSegmentList } from './check.js';
import type { SnapshotService } from './service.js';

export interface SnapshotSelection {
  snapshot: string;
  segmentIds: string[];
  missing: Array<{ segmentId: string; reason: string }>;
}

export async function selectSnapshot(
  service: SnapshotService | undefined,
  target: Target,
  o: { snapshot: string; dataSource?: string; segmentIds?: string[]; signal?: AbortSignal },
): Promise<SnapshotSelection> {
  if (!service) throw new BackupError('bad_request', 'this sidecar reads no snapshots');
  const s = await service.show(o.snapshot, o.signal).catch((e: unknown) => {
    if (e instanceof BackupError && e.code === 'not_found')
      throw new BackupError(
        'not_found',
        `snapshot ${o.snapshot} is in none of this sidecar's targets: retention may have removed it (druid-backup snapshot list shows those kept)`,
      );
    throw e;
  });
  const holder = service.holderOf(s);
  const chosen = s.dataSources.filter((d) => o.dataSource === undefined || d.name === o.dataSource);
  if (o.dataSource !== undefined && chosen.length === 0)
    throw new BackupError(
      'not_found',
      `snapshot ${s.id} has no data source ${JSON.stringify(o.dataSource)}; it has ${s.dataSources.map((d) => d.name).join(', ') || 'none'}`,
    );
  const only = o.segmentIds?.length ? new Set(o.segmentIds) : undefined;
  const named: Array<{ id: string; note?: string }> = [];
  for (const d of chosen) {
    for await (const seg of readSegmentList(holder.snapshots!, d.list, d.name, `snapshot ${s.id}`, o.signal)) {
      if (only && !only.has(seg.id)) continue;
      named.push({ id: seg.id, ...(seg.backedUp ? {} : { note: `it was not backed up when the snapshot was taken (${seg.missing ?? 'unknown'})` }) });
    }
  }
  const held = new Set<string>();
  for await (const m of target.list({ segmentIds: named.map((n) => n.id) }, { signal: o.signal })) held.add(m.segmentId);
  const missing = named
    .filter((n) => !held.has(n.id))
    .map((n) => ({ segmentId: n.id, reason: n.note ?? `named by snapshot ${s.id}, but no target holds it any more: retention removed it` }));
  return { snapshot: s.id, segmentIds: named.filter((n) => held.has(n.id)).map((n) => n.id), missing };
}
