/**
 * What every target that keeps manifests itself (the local store, a bucket or container) does the same way with the
 * copies of a segment, written once:
 * - recording another node's copy of a stored segment: the same bytes (same digest) make the node another source,
 *   different bytes a conflict, flagged and never stored over the first copy; a node already recorded with that
 *   digest changes nothing. The manifest is read, changed and written back, again when another writer came first;
 * - the catalog's summary of a stored copy (`GET /data/v1/store/segments`, HEAD) and its pages.
 */
import type { Logger } from 'pino';
import type { Page, StoredSegment } from '../api.js';
import { BackupError } from '../errors.js';
import { pageSorted } from '../services/paging.js';
import type { Manifest } from './manifest.js';
import { nodeNameProblem } from './manifest.js';
import type { CatalogQuery, PutOutcome, StoredSummary } from './target.js';

/** Attempts of a manifest read-modify-write against other writers. */
const UPDATE_ATTEMPTS = 8;

/** Where a target keeps a segment's manifest, for recordReplica. */
export interface ManifestSlot<V> {
  /** The manifest as stored now, and what `save` needs to write it only if nobody changed it since (an ETag). */
  load(): Promise<{ manifest: Manifest; version: V }>;
  /** Writes the changed manifest; false when another writer changed it since `load` (it is read again). */
  save(manifest: Manifest, version: V): Promise<boolean>;
}

/** The arguments of `addSource` as a request gives them: a node name and a segment digest. */
export function checkSource(node: string, digest: string): void {
  const problem = nodeNameProblem(node);
  if (problem) throw new BackupError('bad_request', problem);
  if (!/^[0-9a-f]{64}$/.test(digest)) throw new BackupError('bad_request', 'digest must be 64 lower-case hex digits');
}

/**
 * Adds `node` to the manifest's sources (same digest) or conflicts (different digest), unless it is there; gives
 * the outcome and the manifest as it now stands.
 */
export async function recordReplica<V>(
  slot: ManifestSlot<V>,
  o: { segmentId: string; node: string; digest: string; log: Logger; where: string },
): Promise<{ outcome: PutOutcome; manifest: Manifest }> {
  const { segmentId, node, digest, log } = o;
  for (let attempt = 1; ; attempt++) {
    const { manifest: m, version } = await slot.load();
    const identical = m.digest === digest;
    const outcome = identical ? 'identical' : 'conflict';
    const list = identical ? m.sources : m.conflicts;
    if (list.some((s) => s.node === node && s.digest === digest)) return { outcome, manifest: m };
    const now = new Date().toISOString();
    list.push({ node, digest, at: now });
    m.updatedAt = now;
    if (await slot.save(m, version)) {
      if (identical) log.info({ segmentId, node }, 'replica recorded as another source');
      else log.warn({ segmentId, node, digest, stored: m.digest }, 'replica differs from the stored copy; flagged as a conflict, not stored');
      return { outcome, manifest: m };
    }
    if (attempt >= UPDATE_ATTEMPTS)
      throw new BackupError('target_error', `${o.where}: the manifest kept changing under ${UPDATE_ATTEMPTS} attempts to update it`);
  }
}

/** What HEAD says of a stored copy, from its catalog entry. */
export function storedSummary(e: StoredSegment): StoredSummary {
  return { digest: e.digest, sources: [...e.sources], size: e.size, ...(e.damaged ? { damaged: e.damaged } : {}) };
}

/**
 * One page of a catalog: `entries` sorted by segment id, each with its catalog entry (copied, so a page never
 * shares a target's own objects); `onlyConflicts` keeps the copies some node sent different bytes of.
 */
export function catalogPageOf<T>(entries: readonly T[], entry: (e: T) => StoredSegment, query: CatalogQuery): Page<StoredSegment> {
  return pageSorted(
    query.onlyConflicts ? entries.filter((e) => entry(e).conflicts.length > 0) : entries,
    (e) => entry(e).segmentId,
    (e) => ({ ...entry(e) }),
    query.limit,
    query.cursor,
  );
}
