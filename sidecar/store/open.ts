/**
 * `openTarget(url)`: the Target behind a parsed target URL (targets/url.ts). `http(s)://host:port` is another
 * sidecar with a store; `s3://bucket/prefix` a bucket and `azure://container/prefix` an Azure Blob container this
 * process talks to itself (store/s3/, store/azure/); `file:///dir` a
 * local store directory opened in this process, which only the CLI's tools parse (opening one makes a store there
 * and empties its .tmp, so nothing a request names can be one).
 */
import type { Logger } from 'pino';
import type { TargetUrl } from '../targets/url.js';
import type { ClientOptions } from './http/client.js';
import { HttpTarget } from './http/target.js';
import { LocalStore } from './local/store.js';
import type { AzureSettings } from './azure/client.js';
import { AzureTarget } from './azure/target.js';
import type { S3Settings } from './s3/client.js';
import { S3Target } from './s3/target.js';
import type { Target } from './target.js';

export interface OpenTargetOptions extends ClientOptions {
  log: Logger;
  /** Settings of s3:// targets (druid.backup.s3.*). */
  s3?: S3Settings;
  /** Settings of azure:// targets (druid.backup.azure.*). */
  azure?: AzureSettings;
  /** This sidecar's node name (an S3 target aborts this node's stale multipart uploads). */
  node?: string;
}

export function openTarget(t: TargetUrl, opts: OpenTargetOptions): Target {
  switch (t.scheme) {
    case 's3':
      return S3Target.open(t.url, { log: opts.log, settings: opts.s3, node: opts.node });
    case 'azure':
      return AzureTarget.open(t.url, { log: opts.log, settings: opts.azure });
    case 'http':
    case 'https':
      return new HttpTarget(t.url, opts);
    case 'file':
      return LocalStore.open(t.dir!, { log: opts.log });
  }
}
