/**
 * What the sidecar learns from the Druid service's own configuration: its cache locations, `info_dir`,
 * deep storage and identity. Read from `_common/common.runtime.properties` then the service's
 * `runtime.properties` (the later wins), as Druid layers them.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { BackupError } from '../errors.js';
import { parseHumanBytes } from './bytes.js';
import type { Properties, PropertyEntry } from './properties.js';
import type { CacheLocationConfig } from './scan.js';

export interface DruidNodeConfig {
  service?: string;
  host?: string;
  plaintextPort?: number;
  locations: CacheLocationConfig[];
  infoDir?: string;
  storage: { type: string; directory?: string; zip: boolean; s3?: DruidS3Storage };
}

/**
 * S3 deep storage as Druid's own S3 extension (druid-s3-extensions) reads it, so that a cluster restore writes where
 * and how Druid would: `druid.storage.bucket` and `druid.storage.baseKey` (where segments go), `druid.storage.sse.type`
 * (`s3`: SSE-S3, `kms`: SSE-KMS with `druid.storage.sse.kms.keyId`, `custom`: SSE-C with
 * `druid.storage.sse.custom.base64EncodedKey`), `druid.s3.accessKey`/`druid.s3.secretKey` (else the AWS SDK's default
 * chain, as Druid falls back to it), `druid.s3.endpoint.url`, `druid.s3.endpoint.signingRegion` and
 * `druid.s3.enablePathStyleAccess`. A key's value may be a password provider `{"type":"environment","variable":"X"}`
 * or `{"type":"default","password":"..."}`, as Druid allows.
 */
export interface DruidS3Storage {
  bucket?: string;
  baseKey?: string;
  sse?: { type: 's3' } | { type: 'kms'; keyId?: string } | { type: 'custom'; base64Key: string };
  credentials?: { accessKeyId: string; secretAccessKey: string };
  endpoint?: string;
  region?: string;
  pathStyle?: boolean;
}

/** A Druid password provider's value: plain text, or `{"type":"environment"|"default", ...}` JSON. */
function password(e: PropertyEntry | undefined, key: string, env: NodeJS.ProcessEnv): string | undefined {
  if (!e) return undefined;
  const v = e.value.trim();
  if (!v.startsWith('{')) return v || undefined;
  let o: { type?: unknown; variable?: unknown; password?: unknown };
  try {
    o = JSON.parse(v) as typeof o;
  } catch {
    throw new BackupError('bad_config', `${where(e, key)}: not valid JSON for a password provider`);
  }
  if (o.type === 'environment' && typeof o.variable === 'string') return env[o.variable] || undefined;
  if ((o.type === 'default' || o.type === undefined) && typeof o.password === 'string') return o.password;
  throw new BackupError('bad_config', `${where(e, key)}: only the "environment" and "default" password providers are read here`);
}

function s3Part(s3: DruidS3Storage): { s3?: DruidS3Storage } {
  return Object.keys(s3).length ? { s3 } : {};
}

export function readDruidS3Storage(props: Properties, env: NodeJS.ProcessEnv = process.env): DruidS3Storage {
  const get = (k: string) => props.get(k)?.value.trim() || undefined;
  const out: DruidS3Storage = {};
  const bucket = get('druid.storage.bucket');
  if (bucket) out.bucket = bucket;
  const baseKey = get('druid.storage.baseKey');
  if (baseKey) out.baseKey = baseKey.replace(/^\/+|\/+$/g, '');
  const sse = get('druid.storage.sse.type');
  if (sse === 's3') out.sse = { type: 's3' };
  else if (sse === 'kms') out.sse = { type: 'kms', ...(get('druid.storage.sse.kms.keyId') ? { keyId: get('druid.storage.sse.kms.keyId')! } : {}) };
  else if (sse === 'custom') {
    const base64Key = get('druid.storage.sse.custom.base64EncodedKey');
    if (!base64Key) throw new BackupError('bad_config', 'druid.storage.sse.type=custom needs druid.storage.sse.custom.base64EncodedKey');
    out.sse = { type: 'custom', base64Key };
  } else if (sse !== undefined) throw new BackupError('bad_config', `druid.storage.sse.type "${sse}" is not s3, kms or custom`);
  const accessKeyId = password(props.get('druid.s3.accessKey'), 'druid.s3.accessKey', env);
  const secretAccessKey = password(props.get('druid.s3.secretKey'), 'druid.s3.secretKey', env);
  if (accessKeyId && secretAccessKey) out.credentials = { accessKeyId, secretAccessKey };
  const endpoint = get('druid.s3.endpoint.url');
  // Druid takes an endpoint without a scheme as https (druid.s3.protocol defaults to https).
  if (endpoint) out.endpoint = /^https?:\/\//i.test(endpoint) ? endpoint : `${get('druid.s3.protocol') ?? 'https'}://${endpoint}`;
  const region = get('druid.s3.endpoint.signingRegion');
  if (region) out.region = region;
  const pathStyle = get('druid.s3.enablePathStyleAccess');
  if (pathStyle !== undefined) out.pathStyle = pathStyle.toLowerCase() === 'true';
  return out;
}

function where(e: PropertyEntry, key: string): string {
  return `${e.file}:${e.line}: ${key}`;
}

export function parseLocations(entry: PropertyEntry, key = 'druid.segmentCache.locations', baseDir = process.cwd()): CacheLocationConfig[] {
  let json: unknown;
  try {
    json = JSON.parse(entry.value);
  } catch (e) {
    throw new BackupError('bad_config', `${where(entry, key)}: not valid JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(json)) throw new BackupError('bad_config', `${where(entry, key)}: must be a JSON list of {"path": ..., "maxSize": ...}`);
  return json.map((loc: unknown, i) => {
    if (!loc || typeof loc !== 'object' || Array.isArray(loc)) throw new BackupError('bad_config', `${where(entry, key)}: entry ${i} is not an object`);
    const o = loc as Record<string, unknown>;
    if (typeof o.path !== 'string' || o.path.trim() === '') throw new BackupError('bad_config', `${where(entry, key)}: entry ${i} has no "path"`);
    const out: CacheLocationConfig = { path: path.resolve(baseDir, o.path) };
    if (o.maxSize !== undefined && o.maxSize !== null) {
      if (typeof o.maxSize !== 'string' && typeof o.maxSize !== 'number')
        throw new BackupError('bad_config', `${where(entry, key)}: entry ${i} "maxSize" must be a number or a size like "300g"`);
      out.maxSize = parseHumanBytes(o.maxSize, `${where(entry, key)}: entry ${i} maxSize`);
    }
    if (o.freeSpacePercent !== undefined && o.freeSpacePercent !== null) {
      if (typeof o.freeSpacePercent !== 'number' || o.freeSpacePercent < 0 || o.freeSpacePercent > 100) {
        throw new BackupError('bad_config', `${where(entry, key)}: entry ${i} "freeSpacePercent" must be a number from 0 to 100`);
      }
      out.freeSpacePercent = o.freeSpacePercent;
    }
    return out;
  });
}

/**
 * A cache location that does not exist (yet): a Historical creates its locations when it starts, so a sidecar started
 * beside it (by the Druid extension, or by the same supervise file) may be a moment early (`--wait-for-cache`).
 */
export class MissingCacheLocation extends BackupError {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super('bad_config', message);
  }
}

/** Reads the node's Druid settings; `requireCache` makes a missing or absent cache location an error. */
export function readDruidNodeConfig(props: Properties, opts: { requireCache: boolean; baseDir?: string; configFile?: string }): DruidNodeConfig {
  const baseDir = opts.baseDir ?? process.cwd();
  const get = (k: string) => props.get(k);
  const locEntry = get('druid.segmentCache.locations');
  let locations: CacheLocationConfig[] = [];
  if (locEntry) {
    locations = parseLocations(locEntry, 'druid.segmentCache.locations', baseDir);
    if (opts.requireCache) {
      for (const l of locations) {
        if (!existsSync(l.path))
          throw new MissingCacheLocation(l.path, `${where(locEntry, 'druid.segmentCache.locations')}: cache location ${l.path} does not exist`);
        if (!statSync(l.path).isDirectory())
          throw new BackupError('bad_config', `${where(locEntry, 'druid.segmentCache.locations')}: cache location ${l.path} is not a directory`);
      }
    }
  }
  if (opts.requireCache && locations.length === 0) {
    throw new BackupError(
      'bad_config',
      `${opts.configFile ?? 'configuration'}: druid.segmentCache.locations is not set or empty, so this node has no segment cache to back up`,
    );
  }
  const infoEntry = get('druid.segmentCache.infoDir');
  const infoDir = infoEntry?.value ? path.resolve(baseDir, infoEntry.value) : locations[0] ? path.join(locations[0].path, 'info_dir') : undefined;
  const portEntry = get('druid.plaintextPort');
  let plaintextPort: number | undefined;
  if (portEntry) {
    plaintextPort = Number(portEntry.value);
    if (!Number.isInteger(plaintextPort) || plaintextPort < 1 || plaintextPort > 65535)
      throw new BackupError('bad_config', `${where(portEntry, 'druid.plaintextPort')}: "${portEntry.value}" is not a port number`);
  }
  const storageDir = get('druid.storage.storageDirectory')?.value;
  const zip = get('druid.storage.zip');
  return {
    service: get('druid.service')?.value,
    host: get('druid.host')?.value,
    plaintextPort,
    locations,
    infoDir,
    storage: {
      type: get('druid.storage.type')?.value || 'local',
      directory: storageDir ? path.resolve(baseDir, storageDir) : undefined,
      zip: zip ? zip.value.trim().toLowerCase() === 'true' : false,
      // Only where Druid's S3 keys are set: a node with local deep storage reads as before.
      ...s3Part(readDruidS3Storage(props)),
    },
  };
}
