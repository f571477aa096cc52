import type { Command } from 'commander';
import { BACKUP_KEYS, loadSidecarConfig } from '../config.js';
import { createLogger, startSidecar } from '../daemon.js';
import type { RunningSidecar } from '../daemon.js';
import { MissingCacheLocation } from '../druid/nodeConfig.js';
import { periodToMillis } from '../druid/time.js';
import { BackupError, messageOf } from '../errors.js';
import type { SidecarConfig } from '../config.js';

function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

export function register(program: Command): void {
  const cmd = program
    .command('sidecar')
    .description(
      'run the sidecar daemon beside a Druid data node: back up its cache to --target (source), keep backups in --store (target), or both; or beside the Coordinator with --coordinator and no cache (the cluster sidecar)',
    )
    .option('--config <file>', "the Druid service's runtime.properties (its druid.segmentCache.locations make this sidecar a source)")
    .option('--common <file>', 'the common.runtime.properties (default: ../_common/ beside --config)')
    .option(
      '--wait-for-cache <period>',
      "how long to wait for a cache location that does not exist yet (ISO-8601, e.g. PT5M), as Druid creates its locations when the Historical starts; the Druid extension starts its sidecar with it. Default: refuse at once",
    );
  // Every druid.backup.* key with a flag, documented as in the configuration table.
  for (const k of BACKUP_KEYS) if (k.flag) cmd.option(`--${k.flag} <value>`, `${k.doc} (${k.key})`);
  cmd.action(async (o: Record<string, string | undefined>) => {
    const flags: Record<string, string | undefined> = {};
    for (const k of BACKUP_KEYS) if (k.flag) flags[k.flag] = o[camel(k.flag)];
    const config = await loadWaitingForCache(() => loadSidecarConfig({ configFile: o.config, commonFile: o.common, flags }), o.waitForCache);
    const log = createLogger(config.logLevel);
    let running: RunningSidecar;
    try {
      running = await startSidecar(config, log);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE')
        throw new BackupError('bad_config', `port ${config.port} on ${config.bindAddress} is already in use (set --port or druid.backup.port)`);
      if (code === 'EACCES') throw new BackupError('bad_config', `not allowed to listen on port ${config.port} (${messageOf(e)})`);
      throw e;
    }
    let signals = 0;
    const stop = (signal: string) => {
      if (++signals > 1) process.exit(1);
      log.info({ signal }, 'signal received');
      running.close().then(
        () => process.exit(0),
        (e) => {
          log.error({ err: messageOf(e) }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    await new Promise<never>(() => undefined);
  });
}

/** How often a sidecar waiting for its cache location looks again. */
const CACHE_POLL_MS = 500;

/**
 * Loads the configuration, and while a cache location does not exist yet, for at most `waitFor` (an ISO-8601
 * period), waits for it and loads again; says once what it waits for. Any other problem, or the time up, is the
 * configuration's own error.
 */
async function loadWaitingForCache(load: () => SidecarConfig, waitFor: string | undefined): Promise<SidecarConfig> {
  const waitMs = waitFor === undefined ? 0 : periodToMillis(waitFor);
  if (waitMs === undefined) throw new BackupError('bad_request', `--wait-for-cache ${JSON.stringify(waitFor)} is not an ISO-8601 period such as PT5M`);
  const until = Date.now() + waitMs;
  let said: string | undefined;
  for (;;) {
    try {
      return load();
    } catch (e) {
      if (!(e instanceof MissingCacheLocation) || Date.now() >= until) throw e;
      if (said !== e.path) {
        said = e.path;
        createLogger('info').info({ location: e.path, until: new Date(until).toISOString() }, 'waiting for Druid to create the cache location');
      }
      await new Promise((r) => setTimeout(r, CACHE_POLL_MS));
    }
  }
}
