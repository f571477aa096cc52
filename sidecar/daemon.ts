/**
 * The sidecar daemon: builds the SidecarContext from the configuration (a source when the node has cache
 * locations, a target with `--store`, or both), serves the API, runs active backup, and shuts down cleanly:
 * stop accepting, abort transfers in flight (they stay pending and go again at the next start; a target drops a
 * half-received upload), save the state, exit.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import type { Logger } from 'pino';
import { ActiveBackup } from './backup/active.js';
import { CacheIndex } from './backup/cacheIndex.js';
import { SourceState } from './backup/state.js';
import type { SidecarConfig } from './config.js';
import { BackupError, messageOf } from './errors.js';
import { RestoreService } from './restore/service.js';
import { buildApp } from './server/app.js';
import { generateToken } from './server/auth.js';
import type { SidecarContext } from './server/context.js';
import { EventBus } from './services/events.js';
import { JobRegistry } from './services/jobs.js';
import { Bandwidth } from './services/bandwidth.js';
import { Metrics } from './services/metrics.js';
import { REQUEST_TIMEOUT_MS } from './store/http/client.js';
import { LocalStore } from './store/local/store.js';
import { captureClusterMetadata } from './cluster/metadata.js';
import { SnapshotService } from './snapshot/service.js';
import { ClusterRestoreService } from './cluster/restore/service.js';
import { setHashThread } from './util/hashThread.js';
import type { CaptureClusterMetadata } from './snapshot/take.js';
import { openTarget } from './store/open.js';
import type { Target } from './store/target.js';
import { missingNodeFlags, NODE_FLAGS } from './runtime.js';
import { TargetCache } from './targets/cache.js';
import { wireTargets } from './targets/wire.js';
import { VERSION } from './version.js';

/** In-flight requests get this long to finish at shutdown before their connections are cut. */
export const SHUTDOWN_GRACE_MS = 5000;
export const TOKEN_FILE = 'token';

export interface RunningSidecar {
  ctx: SidecarContext;
  app: FastifyInstance;
  /** The URL the API listens on (loopback when bound to all addresses). */
  url: string;
  port: number;
  /** Where a generated token was written, when none was configured. */
  tokenFile?: string;
  close(): Promise<void>;
}

export function createLogger(level: string): Logger {
  const stdout = pino.destination({ dest: 1, sync: true });
  // A stdout nobody reads any more (a pipe whose reader died) loses the log lines, but must not throw out of
  // whatever was logging, least of all the shutdown on SIGTERM.
  stdout.on('error', () => undefined);
  return pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, stdout);
}

/** The configured token, or the one in `{stateDir}/token`, generated (mode 0600) on first start. */
function resolveToken(config: SidecarConfig, log: Logger): { token: string; file?: string } {
  if (config.token) return { token: config.token };
  const file = path.join(config.stateDir, TOKEN_FILE);
  if (existsSync(file)) {
    const token = readFileSync(file, 'utf8').trim();
    if (token.length >= 16) {
      log.info({ tokenFile: file }, 'using the token in the state directory');
      return { token, file };
    }
  }
  const token = generateToken();
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  log.info({ tokenFile: file }, 'no token configured; generated one (clients read it from this file)');
  return { token, file };
}

/** The PEM files of druid.backup.tls.*: what the API serves HTTPS with, and the CA trusted for https:// targets. */
function readTls(config: SidecarConfig): { server?: { cert: Buffer; key: Buffer }; ca?: Buffer } {
  const read = (key: string, file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (e) {
      throw new BackupError('bad_config', `druid.backup.tls.${key}: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? messageOf(e)})`);
    }
  };
  const { cert, key, ca } = config.tls;
  return { server: cert && key ? { cert: read('cert', cert), key: read('key', key) } : undefined, ca: ca ? read('ca', ca) : undefined };
}

/** What the cluster side gives a sidecar that takes snapshots (sidecar/cluster/). */
export interface SnapshotExtras {
  /** Reads Druid's metadata for a snapshot; default: sidecar/cluster/metadata.ts, through Druid's own APIs. */
  captureMetadata?: CaptureClusterMetadata;
}

export async function startSidecar(config: SidecarConfig, log: Logger = createLogger(config.logLevel), extra: SnapshotExtras = {}): Promise<RunningSidecar> {
  mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
  const { token, file: tokenFile } = resolveToken(config, log);
  const tls = readTls(config);
  const events = new EventBus();
  const metrics = new Metrics();
  setHashThread(config.hashThread);
  const bandwidth = new Bandwidth(config.maxBytesPerSecond, metrics);
  const jobs = new JobRegistry({ stateDir: config.stateDir, events, log });
  const store = config.store
    ? LocalStore.open(config.store, { log: log.child({ component: 'store' }), metrics, events, quotaBytes: config.storeQuota, flush: config.storeFlush })
    : undefined;
  const isSource = config.druid.locations.length > 0;
  const state = isSource ? new SourceState(config.stateDir, log) : undefined;
  const cache = state ? new CacheIndex({ config, state, events, log }) : undefined;

  const opened = new TargetCache({
    allowed: config.allowedTargets,
    pinned: [...(config.target ? [config.target] : []), ...(config.targets ?? []).map((t) => t.url)],
    open: (t) =>
      openTarget(t, {
        log,
        token: config.targetToken ?? token,
        maxSockets: config.workers * 2 + 2,
        idleTimeoutMs: config.stallMs,
        requestTimeoutMs: Math.min(REQUEST_TIMEOUT_MS, config.stallMs),
        ca: tls.ca,
        settings: config.kindSettings,
        node: config.nodeName,
      }),
  });
  const open = (url: string): Target => opened.get(url);
  const wired = wireTargets({ config, open, log, metrics, cache, state });
  const activeTarget = wired.set;
  const active =
    cache && state && activeTarget && config.active
      ? new ActiveBackup({ config, cache, state, target: activeTarget, metrics, bandwidth, log, members: () => activeTarget.specs.map((sp) => open(sp.url)) })
      : undefined;
  // A target back from an outage (or with room again): segments short of copies go again now, not at the next period.
  if (active) wired.pool.onRecovered(() => active.reconcileSoon());
  const snapshotTargets = (): Target[] => [...(wired.set ? wired.set.specs.map((sp) => open(sp.url)) : []), ...(store ? [store] : [])];
  const snapshots = new SnapshotService({
    config,
    log: log.child({ component: 'snapshots' }),
    jobs,
    targets: snapshotTargets,
    ownStore: store,
    openTarget: open,
    captureMetadata: extra.captureMetadata ?? captureClusterMetadata,
    // A cluster sidecar (a Coordinator, no cache) snapshots every hour unless druid.backup.snapshotPeriod says otherwise.
    cluster: config.role === 'cluster',
    ...(state ? { state } : {}),
    registry: metrics.registry,
  });
  const services = { config, log, jobs, events, metrics, bandwidth, cache, state, targets: wired.set, targetPool: wired.pool, openTarget: open, snapshots };
  // Both background services start here: restore first (it cleans what a crashed restore left before anything
  // is served), active backup once the API listens.
  const restore = new RestoreService(services);
  await restore.start();
  const clusterRestore = new ClusterRestoreService({ config, jobs, snapshots, ...(wired.set ? { targets: wired.set } : {}), openTarget: open });
  const ctx: SidecarContext = { ...services, startedAt: new Date().toISOString(), store, active, restore, clusterRestore };

  let app: FastifyInstance;
  try {
    app = await buildApp(ctx, { token, https: tls.server, limits: config.http });
    await app.listen({ port: config.port, host: config.bindAddress });
  } catch (e) {
    await restore.stop();
    throw e;
  }
  const addr = app.server.address();
  if (!addr || typeof addr === 'string') throw new BackupError('internal', 'the API has no TCP address');
  const host =
    config.bindAddress === '0.0.0.0' || config.bindAddress === '::'
      ? '127.0.0.1'
      : config.bindAddress.includes(':')
        ? `[${config.bindAddress}]`
        : config.bindAddress;
  const url = `${tls.server ? 'https' : 'http'}://${host}:${addr.port}`;
  const roles = [...(cache ? ['source'] : []), ...(store ? ['target'] : []), ...(config.role === 'cluster' ? ['cluster'] : [])];
  log.info(
    {
      url,
      port: addr.port,
      roles,
      node: config.nodeName,
      version: VERSION,
      target: activeTarget?.url,
      store: store?.root,
      stateDir: config.stateDir,
      tokenFile,
    },
    'sidecar listening',
  );
  const missing = missingNodeFlags();
  if (missing.length)
    log.info(
      { missing, nodeFlags: NODE_FLAGS },
      `node was started without ${missing.join(' ')}: the sidecar works, but uses about 25 MB more memory while it streams (start it as druid-backup, or node ${NODE_FLAGS.join(' ')} sidecar.js)`,
    );

  snapshots.start();
  if (active) await active.start();
  else if (cache) void cache.scan().catch((e) => log.warn({ err: messageOf(e) }, 'cache scan failed'));

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      log.info('shutting down');
      const grace = setTimeout(() => app.server.closeAllConnections(), SHUTDOWN_GRACE_MS);
      snapshots.stop();
      await active?.stop();
      await jobs.close(SHUTDOWN_GRACE_MS);
      await app.close();
      await restore.stop();
      clearTimeout(grace);
      state?.close();
      wired.close();
      opened.close();
      log.info('stopped');
    })());
  return { ctx, app, url, port: addr.port, tokenFile, close };
}
