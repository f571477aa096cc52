/**
 * Test helper around scripts/druid-dev-cluster.sh: a real Apache Druid cluster (ZooKeeper,
 * Coordinator+Overlord, Broker, Historical, Indexer) on this machine. Node built-ins only.
 *
 *   import { startCluster, ingest, sql, stopService, startService, historicalLog, stopCluster } from './cluster.js';
 *   configureCluster({ DRUID_PORT_OFFSET: '100', DRUID_BACKUP_SIDECAR_CMD: 'node dist/sidecar.js sidecar ...' });
 *   await startCluster();            // fetches the jars on first use, waits until every service is healthy
 *   await ingest();                  // { c: 39244, s: ... } once the Historical serves every row
 *   await sql('SELECT COUNT(*) AS c FROM wikipedia');
 *   await stopService('historical'); await startService('historical');
 *   loadedOnStartup(historicalLog({ sinceLastStart: true }));   // [6]: served from its cache
 *   await stopCluster();
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLUSTER_SCRIPT = path.join(REPO_ROOT, 'scripts', 'druid-dev-cluster.sh');

/**
 * Variables the script reads: DRUID_VERSION, DRUID_DEV_HOME, DRUID_PORT_OFFSET, DRUID_EXTENSIONS_DIR,
 * DRUID_COMMON_EXTRA, DRUID_HISTORICAL_EXTRA, DRUID_BACKUP_SIDECAR_CMD, DRUID_START_TIMEOUT, ...
 * The configuration is written by startCluster(): set them before it.
 */
export type ClusterEnv = Record<string, string | undefined>;

/** Paths and ports of the cluster, as printed by `druid-dev-cluster.sh env`. */
export interface DruidEnv {
  DRUID_VERSION: string;
  DRUID_HOME: string;
  DRUID_LIB_DIR: string;
  DRUID_CONF_DIR: string;
  DRUID_COMMON_CONF_DIR: string;
  DRUID_HISTORICAL_CONF_DIR: string;
  DRUID_HISTORICAL_RUNTIME_PROPERTIES: string;
  DRUID_SUPERVISE_CONF: string;
  DRUID_SEGMENT_CACHE_DIR: string;
  DRUID_INFO_DIR: string;
  DRUID_DEEP_STORAGE_DIR: string;
  DRUID_LOG_DIR: string;
  DRUID_RUN_DIR: string;
  DRUID_HISTORICAL_LOG: string;
  DRUID_DATA_SOURCE: string;
  DRUID_COORDINATOR_URL: string;
  DRUID_OVERLORD_URL: string;
  DRUID_BROKER_URL: string;
  DRUID_HISTORICAL_URL: string;
  DRUID_INDEXER_URL: string;
  [key: string]: string;
}

let overrides: ClusterEnv = {};

/** Sets the variables every later call passes to the script (over process.env). */
export function configureCluster(env: ClusterEnv): void {
  overrides = { ...env };
}

function scriptEnv(): NodeJS.ProcessEnv {
  const merged: NodeJS.ProcessEnv = { ...process.env };
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) delete merged[k];
    else merged[k] = v;
  }
  return merged;
}

/** Runs the script; resolves with its stdout. Its progress (stderr) is copied to ours unless quiet. */
export function runScript(args: string[], opts: { quiet?: boolean } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [CLUSTER_SCRIPT, ...args], {
      cwd: REPO_ROOT,
      env: scriptEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      err += d;
      if (!opts.quiet) process.stderr.write(d);
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve(out);
      else reject(new Error(`druid-dev-cluster.sh ${args.join(' ')} failed (${signal ?? code}):\n${err.slice(-4000)}`));
    });
  });
}

/** Writes the configuration, starts every service and waits until all are healthy. */
export async function startCluster(): Promise<DruidEnv> {
  await runScript(['start']);
  return env();
}

/** Stops every service (SIGTERM, then SIGKILL after a timeout). */
export async function stopCluster(): Promise<void> {
  await runScript(['stop']);
}

/** Stops one supervised service (zk, coordinator, broker, historical, indexer, backup). */
export async function stopService(name: string): Promise<void> {
  await runScript(['stop-service', name]);
}

/** Starts one supervised service again and waits until it is healthy (the Historical: cache initialized). */
export async function startService(name: string): Promise<void> {
  await runScript(['start-service', name]);
}

/** Ingests the generated wikipedia data set (39,244 rows) and waits until it is served: the SQL answer. */
export async function ingest(): Promise<{ c: number; s: number }> {
  const out = (await runScript(['ingest'])).trim().split('\n');
  const rows = JSON.parse(out[out.length - 1] ?? '[]') as Array<{
    c: number;
    s: number;
  }>;
  if (!rows[0]) throw new Error(`ingest printed no answer: ${out.join('\n')}`);
  return rows[0];
}

/** An error answer of the Broker's SQL API, e.g. 400 "Object 'wikipedia' not found" while nothing serves it. */
export class SqlError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`SQL answered ${status}: ${body.slice(0, 500)}`);
    this.name = 'SqlError';
  }
}

/** SQL through the Broker; the rows as objects. */
export async function sql<T = Record<string, unknown>>(query: string, context?: Record<string, unknown>): Promise<T[]> {
  const res = await fetch(`${env().DRUID_BROKER_URL}/druid/v2/sql`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ query, ...(context ? { context } : {}) }),
    signal: AbortSignal.timeout(60_000),
  });
  const body = await res.text();
  if (!res.ok) throw new SqlError(res.status, body);
  return JSON.parse(body) as T[];
}

/** Paths and ports, parsed from `druid-dev-cluster.sh env` (lines KEY='value'). */
export function env(): DruidEnv {
  const out = execFileSync('bash', [CLUSTER_SCRIPT, 'env'], {
    env: scriptEnv(),
    encoding: 'utf8',
  });
  const vars: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const m = /^([A-Z0-9_]+)='(.*)'$/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) vars[m[1]] = m[2].replaceAll(`'\\''`, `'`);
  }
  return vars as DruidEnv;
}

/** The Historical's log; with sinceLastStart only what its latest start wrote. */
export function historicalLog(opts: { sinceLastStart?: boolean } = {}): string {
  const file = env().DRUID_HISTORICAL_LOG;
  if (!existsSync(file)) return '';
  const text = readFileSync(file, 'utf8');
  if (!opts.sinceLastStart) return text;
  const at = text.lastIndexOf('==== supervise: started historical');
  return at < 0 ? text : text.slice(at);
}

/** The N of every "Loaded [N] segments on startup" line in a Historical log (Druid's SegmentBootstrapper). */
export function loadedOnStartup(log: string): number[] {
  return [...log.matchAll(/Loaded \[(\d+)\] segments on startup/g)].map((m) => Number(m[1]));
}
