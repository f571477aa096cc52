import type { FastifyInstance } from 'fastify';
import { API_PREFIX } from '../../api.js';
import type { SegmentsResponse } from '../../api.js';
import { compileSelector } from '../../druid/selector.js';
import { BackupError, messageOf } from '../../errors.js';
import { sleep } from '../../util/sleep.js';
import type { SidecarContext } from '../context.js';
import { commonErrors, listQuery, pageSchema, segmentInfoSchema } from '../schemas.js';

/**
 * Without active backup nothing watches the cache, so the first page of a listing reads the cache again when the
 * index is older than this: segments Druid loaded since (on a node whose sidecar Druid starts, every one of them)
 * are listed, and published as events. Later pages of the listing do not scan again.
 */
const PASSIVE_LISTING_MAX_AGE_MS = 5_000;
/**
 * How long such a listing waits for that scan. A small cache is read within it and listed fresh; a huge one (100,000
 * segments take 10 s or more) is listed as it was, without keeping the caller past its timeout, and its changes
 * follow as events once the scan ends.
 */
const PASSIVE_RESCAN_WAIT_MS = 1_000;

const STATES = ['complete', 'downloading', 'incomplete', 'missing', 'damaged', 'restoring', 'backedUp', 'pending', 'failed', 'none'];

export function register(app: FastifyInstance, ctx: SidecarContext): void {
  app.get<{ Querystring: { dataSource?: string; interval?: string; state?: string; limit: number; cursor?: string } }>(
    `${API_PREFIX}/segments`,
    {
      schema: {
        summary: "Segments in this node's cache with their local state and backup state, by segment id, with filters and paging",
        querystring: {
          ...listQuery,
          properties: {
            ...listQuery.properties,
            state: {
              type: 'string',
              enum: STATES,
              description: 'a local state (complete, downloading, ...) or a backup state (backedUp, pending, failed, none)',
            },
          },
        },
        response: { 200: pageSchema(segmentInfoSchema), ...commonErrors },
      },
    },
    async (req): Promise<SegmentsResponse> => {
      if (!ctx.cache) throw new BackupError('not_found', 'this sidecar watches no segment cache (start it with --config and the node runtime.properties)');
      const q = req.query;
      const sel = compileSelector({ dataSource: q.dataSource, interval: q.interval });
      const last = ctx.cache.lastScan;
      if (!last) await ctx.cache.scan();
      else if (!ctx.active && !q.cursor && Date.now() - Date.parse(last.at) > PASSIVE_LISTING_MAX_AGE_MS) {
        const rescan = ctx.cache.scan().catch((e) => req.log.warn({ err: messageOf(e) }, 'cache scan failed'));
        const abort = new AbortController();
        await Promise.race([rescan, sleep(PASSIVE_RESCAN_WAIT_MS, abort.signal)]);
        abort.abort();
      }
      return ctx.cache.page(sel, q.state, q.limit, q.cursor);
    },
  );
}
