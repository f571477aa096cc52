/**
 * `openTarget(url)`: the Target behind a URL. `http(s)://host:port` is another sidecar with a store;
 * `file:///dir` a local store directory opened in this process (for tools and tests; a running target sidecar
 * owns its directory); `s3://bucket/prefix` a bucket this process talks to itself (store/s3/).
 */
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { BackupError } from '../errors.js';
import type { ClientOptions } from './http/client.js';
import { HttpTarget } from './http/target.js';
import { LocalStore } from './local/store.js';
import type { S3Settings } from './s3/client.js';
import { S3Target } from './s3/target.js';
import { isS3Url } from './s3/url.js';
import type { Target } from './target.js';

export interface OpenTargetOptions extends ClientOptions {
  log: Logger;
  /** Settings of s3:// targets (druid.backup.s3.*). */
  s3?: S3Settings;
  /** This sidecar's node name (an S3 target aborts this node's stale multipart uploads). */
  node?: string;
}

export function openTarget(url: string, opts: OpenTargetOptions): Target {
  // Before `new URL`, which would resolve `..` in a bucket prefix instead of refusing it.
  if (isS3Url(String(url))) return S3Target.open(url, { log: opts.log, settings: opts.s3, node: opts.node });
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new BackupError('bad_request', `target "${String(url).slice(0, 200)}" is not a URL (expected http://host:port)`);
  }
  switch (u.protocol) {
    case 'http:':
    case 'https:':
      return new HttpTarget(url, opts);
    case 'file:':
      if (u.host && u.host !== 'localhost') throw new BackupError('bad_request', `target ${url}: a file:// URL names a local directory (file:///path)`);
      return LocalStore.open(fileURLToPath(u), { log: opts.log });
    default:
      throw new BackupError('bad_request', `target ${url}: unsupported scheme ${u.protocol} (use http://host:port of a target sidecar or s3://bucket/prefix)`);
  }
}
