/**
 * The sidecar's configuration, the way Druid extensions are configured: `druid.backup.*` keys in the node's
 * `runtime.properties` (or `_common/common.runtime.properties`), overridden by environment variables
 * (`DRUID_BACKUP_STATE_DIR` for `druid.backup.stateDir`) and then by command-line flags. An unknown
 * `druid.backup.*` key is an error, so a typo never silently falls back to a default.
 */
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BackupError, messageOf } from './errors.js';
import { formatBytes, parseHumanBytes } from './druid/bytes.js';
import type { DruidNodeConfig } from './druid/nodeConfig.js';
import { readDruidNodeConfig } from './druid/nodeConfig.js';
import type { Properties } from './druid/properties.js';
import { mergeProperties, readPropertiesFile } from './druid/properties.js';
import { periodToMillis } from './druid/time.js';
import { KINDS, kindKeys, kindSettings, servedKinds } from './store/kinds.js';
import type { RetentionPolicy } from './snapshot/retention.js';
import { policyFromSettings } from './snapshot/retention.js';
import type { TargetSpec } from './targets/spec.js';
import { checkCopies, parseTargetsSetting } from './targets/spec.js';
import type { AllowList } from './targets/allow.js';
import { parseAllowEntry, parseAllowList } from './targets/allow.js';
import { parseHttpUrl, parseTargetUrl } from './targets/url.js';
import type { DruidAuth } from './cluster/druidHttp.js';

export type KeyType = 'string' | 'int' | 'bool' | 'duration' | 'path' | 'url' | 'target' | 'size' | 'secret';

export interface KeySpec {
  key: string;
  type: KeyType;
  default?: string;
  /** The command-line flag that overrides it, without dashes. */
  flag?: string;
  min?: number;
  max?: number;
  /** The values a string key accepts. */
  choices?: string[];
  doc: string;
}

/** Where the credentials that go with a key's URL come from: its target kind's (else the token settings, targets/url.ts). */
function credentialsOf(spec: KeySpec): string | undefined {
  return KINDS.find((k) => k.keys?.includes(spec))?.credentialsFrom;
}

export const PREFIX = 'druid.backup.';

/**
 * The cluster sidecar's default port: beside a Coordinator it may share a host with a Historical's sidecar (8484)
 * and the demo's target (8485).
 */
export const CLUSTER_PORT = 8486;

/**
 * What a sidecar is for: `node` beside a Druid data node (a cache to back up) or a target (a store), `cluster` beside
 * the Coordinator (a Coordinator, no cache, no store): it reads the cluster's state for snapshots.
 */
export type SidecarRole = 'node' | 'cluster';

/** The cluster sidecar's default state directory, apart from a Historical's sidecar's (druid.backup.stateDir). */
export const CLUSTER_STATE_DIR = 'var/druid-backup-cluster';

/** Every `druid.backup.*` key the sidecar accepts. The README's configuration table is generated from it. */
export const BACKUP_KEYS: KeySpec[] = [
  { key: 'druid.backup.port', type: 'int', default: '8484', flag: 'port', min: 0, max: 65535, doc: 'HTTP port of the sidecar API (0 picks a free port).' },
  {
    key: 'druid.backup.bindAddress',
    type: 'string',
    default: '0.0.0.0',
    flag: 'bind',
    doc: 'Address the API listens on. A sidecar the Druid extension autostarts listens on 127.0.0.1 unless this is set (a node that is also a target, or that VS Code reaches directly, sets it).',
  },
  { key: 'druid.backup.tls.cert', type: 'path', flag: 'tls-cert', doc: 'PEM certificate (with its chain) the API serves HTTPS with; needs tls.key.' },
  { key: 'druid.backup.tls.key', type: 'path', flag: 'tls-key', doc: 'PEM private key of tls.cert.' },
  {
    key: 'druid.backup.tls.ca',
    type: 'path',
    flag: 'tls-ca',
    doc: 'PEM CA certificate(s) trusted, besides the system ones, when this sidecar calls https:// targets.',
  },
  { key: 'druid.backup.token', type: 'secret', flag: 'token', doc: 'Bearer token every API call but /status/health must carry. Prefer tokenFile.' },
  {
    key: 'druid.backup.tokenFile',
    type: 'path',
    flag: 'token-file',
    doc: 'File holding the bearer token. Without token or tokenFile, one is generated into {stateDir}/token.',
  },
  {
    key: 'druid.backup.target',
    type: 'target',
    flag: 'target',
    doc: `Where active backup streams every complete segment: ${servedKinds()}.`,
  },
  {
    key: 'druid.backup.targets',
    type: 'string',
    flag: 'targets',
    doc: 'Several targets instead of one, as a JSON list of URLs or {"url","zone","weight"} objects; each segment goes to the best available one (or to `copies` of them), see "Several targets".',
  },
  {
    key: 'druid.backup.allowedTargets',
    type: 'string',
    flag: 'allowed-targets',
    doc: 'Targets a request may name besides druid.backup.target(s), as a JSON list of URLs: same scheme, port and host (*.example.com: its subdomains), the path a prefix at a "/" (s3://bucket/prod allows s3://bucket/prod/x); ["*"] allows any (a lab). Anything else is refused with 403 target_not_allowed before a byte is sent.',
  },
  {
    key: 'druid.backup.copies',
    type: 'int',
    default: '1',
    flag: 'copies',
    min: 1,
    max: 16,
    doc: 'On how many distinct targets of druid.backup.targets (distinct zones when zones are given) each segment is kept.',
  },
  { key: 'druid.backup.zone', type: 'string', flag: 'zone', doc: "This node's zone: among targets equally near, one in the same zone is preferred." },
  {
    key: 'druid.backup.coordinator',
    type: 'url',
    flag: 'coordinator',
    doc: `The Druid Coordinator (http://coordinator:8081): after a restore into deep storage, the restored segments are marked used there so the cluster loads them again. A sidecar with a Coordinator and neither a segment cache nor a store is the cluster sidecar (snapshots; default port ${CLUSTER_PORT}).`,
  },
  {
    key: 'druid.backup.overlord',
    type: 'url',
    flag: 'overlord',
    doc: "The Druid Overlord, where snapshots read supervisor specs and the Overlord's dynamic config (default: druid.backup.coordinator, when it runs the Overlord).",
  },
  {
    key: 'druid.backup.broker',
    type: 'url',
    flag: 'broker',
    doc: "A Druid Broker (http://broker:8082): snapshots count each data source's rows from sys.segments there; without it they hold no row counts.",
  },
  {
    key: 'druid.backup.druid.user',
    type: 'string',
    doc: "User of Druid's basic authentication, sent with every call the sidecar makes to Druid (Coordinator, Overlord, Broker); needs druid.backup.druid.password.",
  },
  {
    key: 'druid.backup.druid.password',
    type: 'secret',
    doc: 'Password of druid.backup.druid.user: a value or a Druid PasswordProvider such as {"type":"environment","variable":"DRUID_BACKUP_DRUID_PASSWORD"}.',
  },
  { key: 'druid.backup.store', type: 'path', flag: 'store', doc: 'Directory where this sidecar keeps backups it receives (makes it a target).' },
  {
    key: 'druid.backup.storeQuota',
    type: 'size',
    flag: 'store-quota',
    min: 0,
    doc: 'Most bytes of segments the store may hold (e.g. 500GiB); uploads beyond it are refused and sources see it in /data/v1/store/stats. Default: the disk.',
  },
  {
    key: 'druid.backup.storeBatch',
    type: 'bool',
    default: 'true',
    doc: 'Offer sources the batch upload (POST /data/v1/store/batch: up to 64 small segments in one request, committed together). Off: single PUTs only, as an older target.',
  },
  {
    key: 'druid.backup.storeFlush',
    type: 'string',
    default: 'filesystem',
    choices: ['filesystem', 'files'],
    doc: "How the store makes a batch durable before its segments become visible: filesystem (one syncfs of the store's filesystem before the renames and one after, by `sync --file-system`; file by file where that is missing) or files (each file and directory fsynced, as single uploads are).",
  },
  {
    key: 'druid.backup.stateDir',
    type: 'path',
    default: 'var/druid-backup',
    flag: 'state-dir',
    doc: `Where the sidecar keeps its queue, digests and job history; never inside a cache location. The cluster sidecar's default is ${CLUSTER_STATE_DIR}.`,
  },
  {
    key: 'druid.backup.nodeName',
    type: 'string',
    flag: 'node-name',
    doc: 'Name of this node in manifests and logs (default: druid.host:druid.plaintextPort, else the host name).',
  },
  { key: 'druid.backup.active', type: 'bool', default: 'true', doc: 'Back up every complete segment continuously when a target is set.' },
  { key: 'druid.backup.settleTime', type: 'duration', default: 'PT2S', doc: 'How long a segment directory must stay unchanged before it is sent.' },
  { key: 'druid.backup.reconcilePeriod', type: 'duration', default: 'PT5M', doc: 'Period of the full cache scan that catches whatever the watcher missed.' },
  { key: 'druid.backup.workers', type: 'int', default: '2', min: 1, max: 64, doc: 'Segments transferred at once; small ones (under 1 MiB) go up to 64 to a worker (up to two such groups to a worker of a backup job or a restore), their commits sharing flushes (on the target for a backup, in the cache for a restore).' },
  {
    key: 'druid.backup.maxBytesPerSecond',
    type: 'size',
    min: 1,
    doc: "Most bytes per second backup reads from the cache to send (e.g. 50m), across all workers, active backup and jobs alike, evenly (a token bucket); a job may ask for a lower limit (maxBytesPerSecond), never a higher. Default: no limit. Protects the node's queries.",
  },
  {
    key: 'druid.backup.restore.maxBytesPerSecond',
    type: 'size',
    min: 1,
    doc: 'Most bytes per second restore receives into this node (manual and automatic restores alike), as druid.backup.maxBytesPerSecond does for backup. Default: no limit.',
  },
  {
    key: 'druid.backup.restore.hashThread',
    type: 'bool',
    default: 'true',
    doc: 'Hash the files of 1 MiB and more that a restore receives from a sidecar on a second thread while they stream, so that checking every byte takes less of the restore; false hashes them on the main thread, as backups and restores from S3 or Azure do.',
  },
  {
    key: 'druid.backup.retryMaxDelay',
    type: 'duration',
    default: 'PT1M',
    doc: 'Longest wait between attempts of a failed transfer and between probes of a target that does not answer (backoff doubles from 1 s up to this).',
  },
  {
    key: 'druid.backup.stallTimeout',
    type: 'duration',
    default: 'PT1M',
    doc: 'A transfer that moves no byte for this long is abandoned and retried (the target stalled or the network died); a target drops an upload that stays silent this long.',
  },
  {
    key: 'druid.backup.targetToken',
    type: 'secret',
    flag: 'target-token',
    doc: "Bearer token of the target sidecar (default: this sidecar's own token). Prefer targetTokenFile.",
  },
  { key: 'druid.backup.targetTokenFile', type: 'path', flag: 'target-token-file', doc: "File holding the target sidecar's bearer token." },
  {
    key: 'druid.backup.logLevel',
    type: 'string',
    default: 'info',
    flag: 'log-level',
    choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace'],
    doc: 'Level of the JSON log lines on stdout.',
  },
  {
    key: 'druid.backup.autoRestore',
    type: 'bool',
    default: 'true',
    doc: 'Restore from the target, by itself, a segment whose files vanish or change while its info_dir entry remains (a segment whose info file goes first is a Druid drop, left alone).',
  },
  {
    key: 'druid.backup.autoRestoreCheckPeriod',
    type: 'duration',
    default: 'PT3S',
    doc: 'Period of the cheap stat-only check that finds lost segments (slowed down by itself on a large cache).',
  },
  {
    key: 'druid.backup.scrubPeriod',
    type: 'duration',
    default: 'PT0S',
    doc: 'Period of the scrub that re-reads every byte of the served segments against their backed-up digests and repairs damage; PT0S is off (the default: it reads the whole cache).',
  },
  {
    key: 'druid.backup.snapshotPeriod',
    type: 'duration',
    doc: 'Period of the snapshots this sidecar takes of the cluster (the Coordinator is druid.backup.coordinator); PT0S is off. Default: PT1H on a cluster sidecar, off on a node with a cache.',
  },
  {
    key: 'druid.backup.prunePeriod',
    type: 'duration',
    default: 'PT0S',
    doc: "Period of the prune of this sidecar's store by the retention policy (druid.backup.retention.*); PT0S is off.",
  },
  { key: 'druid.backup.retention.keepLast', type: 'int', min: 0, doc: 'Retention: keep the newest n snapshots.' },
  { key: 'druid.backup.retention.keepHourly', type: 'int', min: 0, doc: 'Retention: keep the newest snapshot of each of the last n hours that have one.' },
  { key: 'druid.backup.retention.keepDaily', type: 'int', min: 0, doc: 'Retention: keep the newest snapshot of each of the last n days (UTC) that have one.' },
  { key: 'druid.backup.retention.keepWeekly', type: 'int', min: 0, doc: 'Retention: keep the newest snapshot of each of the last n ISO weeks that have one.' },
  { key: 'druid.backup.retention.keepMonthly', type: 'int', min: 0, doc: 'Retention: keep the newest snapshot of each of the last n months that have one.' },
  {
    key: 'druid.backup.retention.keepWithin',
    type: 'string',
    doc: 'Retention: keep every snapshot taken within this ISO-8601 period (e.g. P7D) of the newest one. Pinned snapshots and the newest are always kept; with no rule set, every snapshot is.',
  },
  {
    key: 'druid.backup.retention.gracePeriod',
    type: 'string',
    default: 'P7D',
    doc: 'Retention: how long a stored segment stays after no kept snapshot names it and no node reports holding it.',
  },
  {
    key: 'druid.backup.restoreLayout',
    type: 'string',
    default: 'auto',
    choices: ['auto', 'nested', 'flat'],
    doc: 'Layout of segments restored into an empty cache: auto (the layout the sidecar last saw in this cache, else nested as Druid up to 34 writes), nested or flat (Druid 35+); a cache with segments keeps its own.',
  },
  // Each target kind's own keys (druid.backup.<kind>.*), from the registry (store/kinds.ts).
  ...kindKeys(),
  // Limits of the API's HTTP server: a caller, or many, cannot exhaust memory, connections or the event loop.
  {
    key: 'druid.backup.http.bodyLimit',
    type: 'size',
    default: '8MiB',
    min: 1024,
    max: 1024 ** 3,
    doc: 'Largest JSON request body; larger ones get 413. 8 MiB holds about 80,000 segment ids of usual length (select more by data source and interval), and ten such bodies back to back keep the sidecar below 300 MiB. Segment uploads stream and are bounded by their declared size instead.',
  },
  {
    key: 'druid.backup.http.maxConnections',
    type: 'int',
    default: '1024',
    min: 1,
    max: 1_000_000,
    doc: 'Connections the API serves at once; one beyond is closed as it opens.',
  },
  {
    key: 'druid.backup.http.headersTimeout',
    type: 'duration',
    default: 'PT5S',
    doc: "Time a request's headers may take to arrive; a connection that sends part of a request and stalls is answered 408 and closed within it.",
  },
  {
    key: 'druid.backup.http.requestTimeout',
    type: 'duration',
    default: 'PT0S',
    doc: 'Time a whole request may take to arrive; PT0S is none (the default: an upload of a large segment can take hours, and one that stays silent is dropped after stallTimeout).',
  },
  {
    key: 'druid.backup.http.keepAliveTimeout',
    type: 'duration',
    default: 'PT72S',
    doc: "How long an idle keep-alive connection stays open for its next request (longer than the usual 60 s of load balancers and clients' pools, so they close first and never reuse a connection as it closes); each counts toward maxConnections.",
  },
  // The Druid extension's keys (druid-extension/): both read the same runtime.properties.
  {
    key: 'druid.backup.sidecar.url',
    type: 'url',
    doc: `Where the Druid extension calls this node's sidecar (its default: http://127.0.0.1:8484; on a Coordinator, the cluster sidecar's http://127.0.0.1:${CLUSTER_PORT}). Without druid.backup.port the sidecar listens on this URL's port.`,
  },
  {
    key: 'druid.backup.sidecar.token',
    type: 'secret',
    doc: 'Token the Druid extension sends: a value or a Druid PasswordProvider such as {"type":"environment","variable":"BACKUP_SIDECAR_TOKEN"}. The sidecar uses it when token and tokenFile are not set.',
  },
  {
    key: 'druid.backup.sidecar.autostart',
    type: 'bool',
    doc: 'Druid extension: start the sidecar as a child of the Druid service (default: when sidecar.js is in the extension folder, node is on the PATH and the node has a segment cache or is a Coordinator, whose cluster sidecar reads druid.backup.coordinator, else that Coordinator itself).',
  },
  { key: 'druid.backup.sidecar.node', type: 'string', doc: 'Druid extension: the Node.js executable that autostart runs (default: node on the PATH).' },
  {
    key: 'druid.backup.sidecar.connectTimeout',
    type: 'duration',
    doc: 'Druid extension: how long it waits to connect to the sidecar before answering 503 (default: PT5S).',
  },
];

export function envName(key: string): string {
  return (
    'DRUID_BACKUP_' +
    key
      .slice(PREFIX.length)
      .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
      .replace(/\./g, '_')
      .toUpperCase()
  );
}

export interface SidecarConfig {
  /** The properties files read, in order. */
  files: string[];
  druid: DruidNodeConfig;
  port: number;
  bindAddress: string;
  /** The token, or undefined when one must be generated into {stateDir}/token. */
  token?: string;
  target?: string;
  /** druid.backup.targets: several targets, each segment kept on `copies` of them. */
  targets?: TargetSpec[];
  /** The targets a request may name: druid.backup.allowedTargets plus target and targets (targets/allow.ts). */
  allowedTargets: AllowList;
  copies: number;
  zone?: string;
  coordinator?: string;
  /** druid.backup.overlord, else the Coordinator. */
  overlord?: string;
  broker?: string;
  /** Basic-auth credentials for every call to Druid's APIs. */
  druidAuth?: DruidAuth;
  role: SidecarRole;
  store?: string;
  storeQuota?: number;
  /** The store offers the batch upload route (store/http/batch.ts). */
  storeBatch: boolean;
  storeFlush: 'filesystem' | 'files';
  stateDir: string;
  nodeName: string;
  active: boolean;
  settleMs: number;
  reconcileMs: number;
  workers: number;
  /** A restore's large files hashed on a second thread (util/hashThread.ts). */
  hashThread: boolean;
  /** Bandwidth limits in bytes per second (services/bandwidth.ts); unset: none. */
  maxBytesPerSecond: { backup?: number; restore?: number };
  retryMaxMs: number;
  /** A transfer or upload without progress for this long is abandoned. */
  stallMs: number;
  /** PEM files: the API serves HTTPS with cert and key; ca is trusted for https:// targets. */
  tls: { cert?: string; key?: string; ca?: string };
  /** Token for the target sidecar; undefined means this sidecar's own token. */
  targetToken?: string;
  logLevel: string;
  autoRestore: boolean;
  autoRestoreCheckMs: number;
  /** 0 when the scrub is off. */
  scrubMs: number;
  restoreLayout: 'auto' | 'nested' | 'flat';
  /** The settings of each target kind, by kind name, read from its keys (store/kinds.ts). */
  kindSettings: Record<string, unknown>;
  /** druid.backup.snapshotPeriod when set (0: off); unset, the kind of sidecar decides (snapshot/schedule.ts). */
  snapshotMs?: number;
  /** 0 when the periodic prune is off. */
  pruneMs: number;
  /** druid.backup.retention.*, checked (snapshot/retention.ts). */
  retention: RetentionPolicy;
  /** Limits of the API's HTTP server (druid.backup.http.*). */
  http: HttpLimits;
}

export interface HttpLimits {
  bodyLimit: number;
  maxConnections: number;
  headersTimeoutMs: number;
  /** 0: none. */
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
}

export interface LoadOptions {
  /** The Druid service's runtime.properties (optional for a target-only sidecar). */
  configFile?: string;
  /** Defaults to `../_common/common.runtime.properties` beside the service's directory, when it exists. */
  commonFile?: string;
  flags?: Record<string, string | undefined>;
  env?: NodeJS.ProcessEnv;
  /** Base directory of relative paths, as Druid resolves them against its working directory. */
  baseDir?: string;
}

interface Resolved {
  value: string;
  source: string;
}

function fail(source: string, msg: string): never {
  throw new BackupError('bad_config', `${source}: ${msg}`);
}

/** Finds `_common/common.runtime.properties` for a service file at `conf/druid/<service>/runtime.properties`. */
export function defaultCommonFile(configFile: string): string | undefined {
  const candidate = path.join(path.dirname(path.resolve(configFile)), '..', '_common', 'common.runtime.properties');
  return existsSync(candidate) ? candidate : undefined;
}

/** A secret given inline or in a file (trimmed); undefined when neither is set. */
function readSecret(inline: string | undefined, file: string | undefined, key: string): string | undefined {
  if (inline === '') fail(key, 'is empty');
  if (inline) return inline;
  if (!file) return undefined;
  let v: string;
  try {
    v = readFileSync(file, 'utf8').trim();
  } catch (e) {
    fail(`${key}File`, `cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? e})`);
  }
  if (!v) fail(`${key}File`, `${file} is empty`);
  return v;
}

/**
 * A secret given the way Druid takes passwords (`druid.backup.sidecar.token`, `druid.backup.druid.password`): a plain
 * value, or a Druid PasswordProvider of type `default` or `environment` (the others exist in Druid's JVM only).
 * `otherwise` says what to use instead for another type.
 */
function passwordProvider(r: Resolved | undefined, env: NodeJS.ProcessEnv, otherwise: string): { value: string; source: string } | undefined {
  if (!r) return undefined;
  const raw = r.value.trim();
  if (raw === '') fail(r.source, 'is empty');
  if (!raw.startsWith('{')) return { value: raw, source: r.source };
  let provider: unknown;
  try {
    provider = JSON.parse(raw);
  } catch (e) {
    fail(r.source, `not valid JSON (${(e as Error).message})`);
  }
  const p = (provider ?? {}) as Record<string, unknown>;
  const type = p.type ?? 'default';
  if (type === 'default' && typeof p.password === 'string' && p.password !== '') return { value: p.password, source: r.source };
  if (type === 'environment' && typeof p.variable === 'string' && p.variable !== '') {
    const value = env[p.variable];
    if (!value) fail(r.source, `environment variable ${p.variable} is not set or empty`);
    return { value, source: r.source };
  }
  fail(
    r.source,
    `the sidecar reads a value, {"type":"default","password":...} or {"type":"environment","variable":...}; for type ${JSON.stringify(type)} ${otherwise}`,
  );
}

/** The port: druid.backup.port when it is set, else the port of druid.backup.sidecar.url, where the extension calls. */
function sidecarPort(port: number, portSource: string, url: string | undefined): number {
  if (url === undefined) return port;
  const u = new URL(url);
  const urlPort = u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
  if (portSource.startsWith('default of ')) return urlPort;
  // Both in the same configuration files but different: the extension would call a port nobody listens on.
  if (portSource.endsWith(': druid.backup.port') && port !== urlPort)
    fail(portSource, `${port} differs from the port of druid.backup.sidecar.url (${url}), where the Druid extension calls`);
  return port;
}

export function loadSidecarConfig(opts: LoadOptions = {}): SidecarConfig {
  const env = opts.env ?? process.env;
  const flags = opts.flags ?? {};
  const baseDir = opts.baseDir ?? process.cwd();
  const files: string[] = [];
  const sets: Properties[] = [];
  if (opts.configFile) {
    const common = opts.commonFile ?? defaultCommonFile(opts.configFile);
    if (common) {
      sets.push(readPropertiesFile(common));
      files.push(path.resolve(common));
    }
    sets.push(readPropertiesFile(opts.configFile));
    files.push(path.resolve(opts.configFile));
  } else if (opts.commonFile) {
    sets.push(readPropertiesFile(opts.commonFile));
    files.push(path.resolve(opts.commonFile));
  }
  const props = mergeProperties(...sets);
  const known = new Map(BACKUP_KEYS.map((k) => [k.key, k]));
  for (const [key, entry] of props) {
    if (key.startsWith(PREFIX) && !known.has(key)) {
      const near = BACKUP_KEYS.find((k) => k.key.toLowerCase() === key.toLowerCase());
      fail(
        `${entry.file}:${entry.line}: ${key}`,
        `unknown key${near ? ` (did you mean ${near.key}?)` : ''}; known keys: ${BACKUP_KEYS.map((k) => k.key.slice(PREFIX.length)).join(', ')}`,
      );
    }
  }

  const resolve = (spec: KeySpec): Resolved | undefined => {
    const flag = spec.flag ? flags[spec.flag] : undefined;
    if (flag !== undefined) return { value: flag, source: `--${spec.flag}` };
    const ev = env[envName(spec.key)];
    if (ev !== undefined && ev !== '') return { value: ev, source: `environment ${envName(spec.key)}` };
    const p = props.get(spec.key);
    if (p) return { value: p.value.trim(), source: `${p.file}:${p.line}: ${spec.key}` };
    if (spec.default !== undefined) return { value: spec.default, source: `default of ${spec.key}` };
    return undefined;
  };
  const typed = (key: string): string | number | boolean | undefined => {
    const spec = known.get(key)!;
    const r = resolve(spec);
    if (!r) return undefined;
    const v = r.value;
    switch (spec.type) {
      case 'int': {
        if (!/^-?\d+$/.test(v)) fail(r.source, `"${v}" is not a whole number`);
        const n = Number(v);
        if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) fail(r.source, `${n} is outside ${spec.min}..${spec.max}`);
        return n;
      }
      case 'bool':
        if (!/^(true|false)$/i.test(v)) fail(r.source, `"${v}" is not true or false`);
        return v.toLowerCase() === 'true';
      case 'duration': {
        const ms = /^\d+$/.test(v) ? Number(v) : periodToMillis(v);
        if (ms === undefined) fail(r.source, `"${v}" is not a duration (an ISO-8601 period such as PT30S or PT5M, or milliseconds)`);
        return ms;
      }
      case 'path':
        if (v === '') fail(r.source, 'path is empty');
        return path.resolve(baseDir, v);
      case 'url':
      case 'target':
        try {
          return spec.type === 'url' ? parseHttpUrl(v, r.source, credentialsOf(spec)) : parseTargetUrl(v, r.source).url;
        } catch (e) {
          throw new BackupError('bad_config', messageOf(e));
        }
      case 'size': {
        let n: number;
        try {
          n = parseHumanBytes(v);
        } catch (e) {
          fail(r.source, messageOf(e).replace(/^size: /, ''));
        }
        if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max))
          fail(r.source, `${v} is outside ${formatBytes(spec.min ?? 0)}..${formatBytes(spec.max ?? Infinity)}`);
        return n;
      }
      default:
        if (spec.choices && !spec.choices.includes(v)) fail(r.source, `"${v}" is not one of ${spec.choices.join(', ')}`);
        return v;
    }
  };

  const store = typed('druid.backup.store') as string | undefined;
  const coordinator = typed('druid.backup.coordinator') as string | undefined;
  if (!store && !opts.configFile && !coordinator)
    fail(
      'configuration',
      "nothing to do: give --config with the node's runtime.properties to back up its cache, --store for a target, or --coordinator for the cluster sidecar",
    );
  const hasCache = props.has('druid.segmentCache.locations');
  // A Coordinator and no cache nor store: the cluster sidecar beside the Coordinator, which has no cache to require.
  const role: SidecarRole = coordinator && !store && !hasCache ? 'cluster' : 'node';
  const druid = readDruidNodeConfig(props, { requireCache: role === 'node' && (!store || hasCache), baseDir, configFile: opts.configFile });

  // Beside a Historical's sidecar on the same host and working directory, the cluster sidecar keeps its own state.
  const stateDir =
    role === 'cluster' && resolve(known.get('druid.backup.stateDir')!)!.source.startsWith('default of ')
      ? path.resolve(baseDir, CLUSTER_STATE_DIR)
      : (typed('druid.backup.stateDir') as string);
  for (const loc of druid.locations) {
    const rel = path.relative(loc.path, stateDir);
    if (rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel)))
      fail('druid.backup.stateDir', `${stateDir} is inside the cache location ${loc.path}; Druid owns its cache, keep the sidecar's state elsewhere`);
  }

  let token = typed('druid.backup.token') as string | undefined;
  const tokenFile = typed('druid.backup.tokenFile') as string | undefined;
  if (token === '') fail('druid.backup.token', 'token is empty');
  if (!token && tokenFile) {
    try {
      token = readFileSync(tokenFile, 'utf8').trim();
    } catch (e) {
      fail(`druid.backup.tokenFile`, `cannot read ${tokenFile} (${(e as NodeJS.ErrnoException).code ?? e})`);
    }
    if (!token) fail('druid.backup.tokenFile', `${tokenFile} is empty`);
  }
  const extensionToken = passwordProvider(resolve(known.get('druid.backup.sidecar.token')!), env, 'give it druid.backup.token or druid.backup.tokenFile');
  if (token && extensionToken && token !== extensionToken.value)
    fail(extensionToken.source, 'differs from druid.backup.token: the Druid extension would be refused; set only one of them');
  token ??= extensionToken?.value;
  if (token && token.length < 16) fail('druid.backup.token', 'token is shorter than 16 characters; use a long random value (openssl rand -hex 32)');

  const portSource = resolve(known.get('druid.backup.port')!)!.source;
  const port = sidecarPort(
    role === 'cluster' && portSource.startsWith('default of ') ? CLUSTER_PORT : (typed('druid.backup.port') as number),
    portSource,
    typed('druid.backup.sidecar.url') as string | undefined,
  );
  const tls = {
    cert: typed('druid.backup.tls.cert') as string | undefined,
    key: typed('druid.backup.tls.key') as string | undefined,
    ca: typed('druid.backup.tls.ca') as string | undefined,
  };
  if (!tls.cert !== !tls.key)
    fail(tls.cert ? 'druid.backup.tls.cert' : 'druid.backup.tls.key', 'HTTPS needs both druid.backup.tls.cert and druid.backup.tls.key');
  for (const [k, file] of Object.entries(tls)) if (file && !existsSync(file)) fail(`druid.backup.tls.${k}`, `${file} does not exist`);

  function httpLimits(): HttpLimits {
    const limits: HttpLimits = {
      bodyLimit: typed('druid.backup.http.bodyLimit') as number,
      maxConnections: typed('druid.backup.http.maxConnections') as number,
      headersTimeoutMs: typed('druid.backup.http.headersTimeout') as number,
      requestTimeoutMs: typed('druid.backup.http.requestTimeout') as number,
      keepAliveTimeoutMs: typed('druid.backup.http.keepAliveTimeout') as number,
    };
    if (limits.headersTimeoutMs < 100) fail('druid.backup.http.headersTimeout', 'is below 100 ms; a request could not arrive');
    // Node refuses a headers timeout longer than the request timeout, and the headers are part of the request.
    if (limits.requestTimeoutMs > 0 && limits.requestTimeoutMs < limits.headersTimeoutMs)
      fail('druid.backup.http.requestTimeout', `is shorter than druid.backup.http.headersTimeout (${limits.headersTimeoutMs} ms)`);
    return limits;
  }

  function druidAuth(): DruidAuth | undefined {
    const user = typed('druid.backup.druid.user') as string | undefined;
    const password = passwordProvider(resolve(known.get('druid.backup.druid.password')!), env, 'give it the password itself or {"type":"environment",...}');
    if (user === '') fail('druid.backup.druid.user', 'is empty');
    if (!user !== !password)
      fail(
        user ? 'druid.backup.druid.user' : 'druid.backup.druid.password',
        "Druid's basic authentication needs both druid.backup.druid.user and druid.backup.druid.password",
      );
    if (user?.includes(':')) fail('druid.backup.druid.user', 'contains ":", which basic authentication cannot carry in a user name');
    return user && password ? { user, password: password.value } : undefined;
  }

  function retentionPolicy(): RetentionPolicy {
    const n = (k: string) => typed(`druid.backup.retention.${k}`) as number | undefined;
    try {
      return policyFromSettings({
        keepLast: n('keepLast'),
        keepHourly: n('keepHourly'),
        keepDaily: n('keepDaily'),
        keepWeekly: n('keepWeekly'),
        keepMonthly: n('keepMonthly'),
        keepWithin: typed('druid.backup.retention.keepWithin') as string | undefined,
        gracePeriod: typed('druid.backup.retention.gracePeriod') as string | undefined,
      });
    } catch (e) {
      throw new BackupError('bad_config', messageOf(e));
    }
  }

  const host = druid.host;
  const nodeName = (typed('druid.backup.nodeName') as string | undefined) ?? (host ? `${host}:${druid.plaintextPort ?? 8083}` : `${os.hostname()}:${port}`);

  const target = typed('druid.backup.target') as string | undefined;
  const copies = typed('druid.backup.copies') as number;
  const targetsSetting = resolve(known.get('druid.backup.targets')!);
  let targets: TargetSpec[] | undefined;
  if (targetsSetting) {
    const where = targetsSetting.source;
    try {
      targets = parseTargetsSetting(targetsSetting.value, 'druid.backup.targets');
      checkCopies(copies, targets, 'druid.backup.copies');
    } catch (e) {
      fail(where, messageOf(e));
    }
    if (target) fail(where, 'druid.backup.target is set too; give one target or a list of them, not both');
  } else if (copies > 1) fail('druid.backup.copies', `is ${copies}, but there is only one target; list them in druid.backup.targets`);
  const allowedSetting = resolve(known.get('druid.backup.allowedTargets')!);
  let allowedTargets: AllowList = allowedSetting ? parseAllowList(allowedSetting.value, allowedSetting.source) : [];
  if (allowedTargets !== '*')
    allowedTargets = [
      ...allowedTargets,
      ...[...(target ? [target] : []), ...(targets ?? []).map((t) => t.url)].map((u) => parseAllowEntry(u, 'druid.backup.target')),
    ];

  return {
    files,
    druid,
    port,
    bindAddress: typed('druid.backup.bindAddress') as string,
    token,
    target,
    targets,
    allowedTargets,
    copies,
    zone: typed('druid.backup.zone') as string | undefined,
    coordinator,
    overlord: (typed('druid.backup.overlord') as string | undefined) ?? coordinator,
    broker: typed('druid.backup.broker') as string | undefined,
    druidAuth: druidAuth(),
    role,
    store,
    storeQuota: typed('druid.backup.storeQuota') as number | undefined,
    storeBatch: typed('druid.backup.storeBatch') as boolean,
    storeFlush: typed('druid.backup.storeFlush') as 'filesystem' | 'files',
    stateDir,
    nodeName,
    active: typed('druid.backup.active') as boolean,
    settleMs: typed('druid.backup.settleTime') as number,
    reconcileMs: typed('druid.backup.reconcilePeriod') as number,
    workers: typed('druid.backup.workers') as number,
    hashThread: typed('druid.backup.restore.hashThread') as boolean,
    maxBytesPerSecond: {
      backup: typed('druid.backup.maxBytesPerSecond') as number | undefined,
      restore: typed('druid.backup.restore.maxBytesPerSecond') as number | undefined,
    },
    retryMaxMs: Math.max(100, typed('druid.backup.retryMaxDelay') as number),
    stallMs: Math.max(100, typed('druid.backup.stallTimeout') as number),
    tls,
    targetToken: readSecret(
      typed('druid.backup.targetToken') as string | undefined,
      typed('druid.backup.targetTokenFile') as string | undefined,
      'druid.backup.targetToken',
    ),
    logLevel: typed('druid.backup.logLevel') as string,
    autoRestore: typed('druid.backup.autoRestore') as boolean,
    autoRestoreCheckMs: Math.max(100, typed('druid.backup.autoRestoreCheckPeriod') as number),
    scrubMs: typed('druid.backup.scrubPeriod') as number,
    restoreLayout: typed('druid.backup.restoreLayout') as SidecarConfig['restoreLayout'],
    kindSettings: kindSettings(typed),
    ...(typed('druid.backup.snapshotPeriod') !== undefined ? { snapshotMs: typed('druid.backup.snapshotPeriod') as number } : {}),
    pruneMs: typed('druid.backup.prunePeriod') as number,
    retention: retentionPolicy(),
    http: httpLimits(),
  };
}
