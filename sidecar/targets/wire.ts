/**
 * The daemon's side of target sets: the pool of target health and the copy records every set shares, the node's
 * target (always one set: `druid.backup.targets`, or a set of one for `druid.backup.target`), and the gauges of a
 * configured list in /metrics.
 */
import { Gauge } from 'prom-client';
import type { Logger } from 'pino';
import type { CacheIndex } from '../backup/cacheIndex.js';
import type { SourceState } from '../backup/state.js';
import type { SidecarConfig } from '../config.js';
import type { Metrics } from '../services/metrics.js';
import type { Target } from '../store/target.js';
import { CopyCatalog } from './copies.js';
import { TargetPool, TargetSet } from './set.js';

export interface TargetWiring {
  pool: TargetPool;
  /** The node's target: what active backup, automatic restore and a request naming no target use. */
  set?: TargetSet;
  close(): void;
}

export function wireTargets(opts: {
  config: SidecarConfig;
  open(url: string): Target;
  log: Logger;
  metrics: Metrics;
  cache?: CacheIndex;
  state?: SourceState;
}): TargetWiring {
  const { config, log, cache, state } = opts;
  const catalog = new CopyCatalog(config.stateDir, log.child({ component: 'copies' }));
  const pool = new TargetPool({
    open: opts.open,
    catalog,
    log: log.child({ component: 'targets' }),
    node: config.nodeName,
    maxBackoffMs: config.retryMaxMs,
    pinned: [...(config.target ? [config.target] : []), ...(config.targets ?? []).map((t) => t.url)],
  });
  // The node's target is worked out here once: every user of it (daemon, restore, routes) takes this set.
  const specs = config.targets ?? (config.target ? [{ url: config.target, weight: 1 }] : undefined);
  const set = specs
    ? new TargetSet(pool, specs, { copies: config.targets ? config.copies : 1, localZone: config.zone, log: log.child({ component: 'targets' }) })
    : undefined;
  // Only the configured targets are watched in the background; lists named in requests are checked when used.
  if (set) pool.start();
  if (set && config.targets && cache) {
    cache.copiesOf = (id) => {
      const { copies, targets } = set.copiesOf(id, state?.get(id)?.digest);
      const damaged = set.damagedCopies(id);
      return { copies, targets, ...(damaged.length ? { damagedCopies: damaged } : {}) };
    };
    new Gauge({
      name: 'druid_backup_segments_under_replicated',
      help: 'Segments of the cache (or with a copy found damaged) kept on fewer available good copies (distinct zones) than druid.backup.copies.',
      registers: [opts.metrics.registry],
      collect() {
        let n = 0;
        // A segment lost from the cache still counts while one of its copies is damaged: it is short of a good copy.
        for (const id of catalog.ids()) if ((cache.get(id) || set.damagedCopies(id).length) && set.underReplicated(id, state?.get(id)?.digest)) n++;
        this.set(n);
      },
    });
    new Gauge({
      name: 'druid_backup_target_available',
      help: 'Per target of druid.backup.targets: 1 when it is used, 0 while its circuit is open.',
      labelNames: ['target'] as const,
      registers: [opts.metrics.registry],
      collect() {
        for (const t of set.describe()) this.set({ target: t.url }, t.state === 'down' || t.state === 'invalid' ? 0 : 1);
      },
    });
  }
  return {
    pool,
    set,
    close: () => {
      pool.close();
      catalog.close();
    },
  };
}
