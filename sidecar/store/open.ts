/**
 * `openTarget(url)`: the Target behind a URL. `http(s)://host:port` is another sidecar with a store;
 * `file:///dir` a local store directory opened in this process (for tools and tests; a running target sidecar
 * owns its directory). New kinds (s3://) add one branch here.
 */
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { BackupError } from '../errors.js';
import type { ClientOptions } from './http/client.js';
import { HttpTarget } from './http/target.js';
import { LocalStore } from './local/store.js';
import type { Target } from './target.js';

export interface OpenTargetOptions extends ClientOptions {
  log: Logger;
}

export function openTarget(url: string, opts: OpenTargetOptions): Target {
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
      throw new BackupError('bad_request', `target ${url}: unsupported scheme ${u.protocol} (use http://host:port of a target sidecar)`);
  }
}
