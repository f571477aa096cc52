/**
 * What a target holds, listed in pages instead of asked segment by segment: a reconcile or a passive backup over
 * 10,000 segments makes about ten catalog calls, not 10,000 HEADs.
 */
import { BackupError } from '../errors.js';
import { PageGuard } from '../util/limitedRead.js';
import type { ListFilter, StoredSummary, Target, TransferOptions } from './target.js';

const PAGE = 1000;

/**
 * What the target holds, by segment id: a set answers it itself (its `held`: only segments with all their copies);
 * a target with a catalog is read page by page; any other is listed manifest by manifest.
 */
export async function remoteIndex(target: Target, filter: ListFilter = {}, opts: TransferOptions = {}): Promise<Map<string, StoredSummary>> {
  if (target.held) return target.held(filter, opts);
  const out = new Map<string, StoredSummary>();
  for await (const [id, s] of catalogEntries(target, filter, opts)) out.set(id, s);
  return out;
}

/**
 * The same as `remoteIndex`, one segment at a time, for a caller that keeps only a bit of each (a snapshot's
 * completeness over 100,000 segments): a target with a catalog is read page by page, never held whole here.
 */
export async function* catalogEntries(target: Target, filter: ListFilter = {}, opts: TransferOptions = {}): AsyncGenerator<[string, StoredSummary]> {
  if (target.held) {
    yield* await target.held(filter, opts);
    return;
  }
  if (target.catalogPage && !filter.segmentIds) {
    // The catalog carries digest and sources without the file lists of whole manifests.
    let cursor: string | undefined;
    const guard = new PageGuard(`the catalog of ${target.url}`);
    do {
      const page = await target.catalogPage({ dataSource: filter.dataSource, interval: filter.interval }, { limit: PAGE, cursor }, opts);
      if (!Array.isArray(page?.items) || page.items.length > PAGE)
        throw new BackupError('target_error', `${target.url} answered a catalog page that is not a list of at most ${PAGE} segments`);
      for (const s of page.items)
        yield [
          s.segmentId,
          {
            digest: s.digest,
            sources: s.sources,
            size: s.size,
            // The target's own verify found this copy damaged: the node holding the segment repairs it.
            ...(typeof s.damaged === 'string' && s.damaged ? { damaged: s.damaged.slice(0, 1000) } : {}),
          },
        ];
      cursor = typeof page.nextCursor === 'string' && page.nextCursor ? page.nextCursor : undefined;
      if (cursor) guard.next(cursor);
    } while (cursor);
    return;
  }
  for await (const m of target.list(filter, opts)) yield [m.segmentId, { digest: m.digest, sources: [...new Set(m.sources.map((s) => s.node))], size: m.size }];
}
