/**
 * What a target holds, listed in pages instead of asked segment by segment: a reconcile or a passive backup over
 * 10,000 segments makes about ten catalog calls, not 10,000 HEADs.
 */
import type { StoredSummary, Target, TransferOptions } from '../store/target.js';
import type { ListFilter } from '../store/target.js';
import { BackupError } from '../errors.js';
import { HttpTarget } from '../store/http/target.js';
import { PageGuard } from '../util/limitedRead.js';

const PAGE = 1000;

/** A target that answers the index itself: a set of targets counts a segment as held only with all its copies (targets/set.ts). */
interface IndexedTarget {
  index(filter: ListFilter, opts: TransferOptions): Promise<Map<string, StoredSummary>>;
}

export async function remoteIndex(target: Target, filter: ListFilter = {}, opts: TransferOptions = {}): Promise<Map<string, StoredSummary>> {
  if (typeof (target as Partial<IndexedTarget>).index === 'function') return (target as unknown as IndexedTarget).index(filter, opts);
  const out = new Map<string, StoredSummary>();
  if (target instanceof HttpTarget && !filter.segmentIds) {
    // The catalog carries digest and sources without the file lists of whole manifests.
    let cursor: string | undefined;
    const guard = new PageGuard(`the catalog of ${target.url}`);
    do {
      const page = await target.catalog({ dataSource: filter.dataSource, interval: filter.interval, limit: PAGE, cursor }, opts);
      if (!Array.isArray(page?.items) || page.items.length > PAGE)
        throw new BackupError('target_error', `${target.url} answered a catalog page that is not a list of at most ${PAGE} segments`);
      for (const s of page.items)
        out.set(s.segmentId, {
          digest: s.digest,
          sources: s.sources,
          size: s.size,
          // The target's own verify found this copy damaged: the node holding the segment repairs it.
          ...(typeof s.damaged === 'string' && s.damaged ? { damaged: s.damaged.slice(0, 1000) } : {}),
        });
      cursor = typeof page.nextCursor === 'string' && page.nextCursor ? page.nextCursor : undefined;
      if (cursor) guard.next(cursor);
    } while (cursor);
    return out;
  }
  for await (const m of target.list(filter, opts))
    out.set(m.segmentId, { digest: m.digest, sources: [...new Set(m.sources.map((s) => s.node))], size: m.size });
  return out;
}
