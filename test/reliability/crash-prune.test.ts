/**
 * Crash trials of prune on a local store (crash-prune-trial.ts says what each trial does and checks): the target
 * sidecar prunes its own store; the other node uploads and the restore reads through that sidecar, so they fail
 * while it is down and go again after its restart. The store is re-read from disk by checkStore. The sidecar keeps
 * its node name across the restart, as a deployed one does, so it takes over the lease its killed self left at once.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { HttpTarget } from '../../sidecar/store/http/target.js';
import { LocalStore } from '../../sidecar/store/local/store.js';
import { newToken, startSidecar, tmpDir } from '../helpers/sidecar.js';
import { PRUNE_ENV, crashPruneTrials, log } from './crash-prune-trial.js';
import { checkStore, verifyStoreCli } from './lib.js';

const OLD = 150;

crashPruneTrials(
  'local store',
  async () => {
    const dir = tmpDir('dbk-crashprune-');
    const token = newToken();
    const oldLeft = () => {
      const ds = path.join(dir, 'segments', 'demo');
      return existsSync(ds) ? readdirSync(ds).filter((n) => n.endsWith('_v1') && existsSync(path.join(ds, n, 'manifest.json'))).length : 0;
    };
    return {
      direct: LocalStore.open(dir, { log }),
      start: (_coordinator, port) => startSidecar(['--store', dir, '--node-name', 'target'], { token, env: PRUNE_ENV, ...(port ? { port } : {}) }),
      pruneBody: {},
      reach: (sc) => new HttpTarget(sc.url, { token }),
      throughPruner: true,
      oldLeft,
      // A local removal's first step is its manifest.
      sweeping: () => oldLeft() < OLD,
      check: async () => {
        const c = checkStore(dir);
        return { ids: new Set(c.segments.keys()), problems: c.problems };
      },
      verify: () => verifyStoreCli(dir),
      close: async () => undefined,
    };
  },
  { old: OLD, newUploads: 20, killWithinMs: 300 },
);
