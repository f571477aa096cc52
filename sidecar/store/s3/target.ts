/**
 * `s3://bucket/prefix`: a bucket as a target (object/target.ts holds the logic every object store shares; store.ts
 * speaks S3). What is S3's own: the multipart uploads a crashed run of this node left, aborted once at start.
 */
import type { Logger } from 'pino';
import { PageGuard } from '../../util/limitedRead.js';
import { messageOf } from '../../errors.js';
import { encodeName } from '../object/layout.js';
import { ObjectSnapshots } from '../object/snapshots.js';
import { ObjectTarget } from '../object/target.js';
import type { S3Settings } from './client.js';
import type { S3Connection } from './sdk.js';
import { S3Store } from './store.js';
import type { S3Location } from './url.js';
import { parseS3Url } from './url.js';

export interface S3TargetOptions {
  log: Logger;
  settings?: S3Settings;
  /** This sidecar's node name: whose stale multipart uploads are aborted at start. */
  node?: string;
}

export class S3Target extends ObjectTarget {
  declare readonly store: S3Store;
  readonly bucket: string;
  /** Where requests go, for messages (never with credentials). */
  readonly endpoint: string;
  private readonly startedAt = new Date();
  private cleaned?: Promise<void>;
  /** Snapshots kept in the bucket beside the segments, and what prune needs (object/snapshots.ts). */
  readonly snapshots: ObjectSnapshots = new ObjectSnapshots(this);

  constructor(
    location: S3Location,
    private readonly opts: S3TargetOptions,
  ) {
    const store = new S3Store(location.bucket, opts.settings);
    super({ url: location.url, prefix: location.prefix, store, log: opts.log });
    this.bucket = location.bucket;
    this.endpoint = store.endpoint;
    // At start, not at the first upload: a node that has nothing new to send cleans up too.
    void this.cleanStaleUploads();
  }

  static open(url: string, opts: S3TargetOptions): S3Target {
    return new S3Target(parseS3Url(url), opts);
  }

  /** The client, made when the bucket is first used (loading the SDK then). */
  s3(): Promise<S3Connection> {
    return this.store.s3();
  }

  /**
   * Once per process: aborts this node's multipart uploads under the prefix that began before it started (left by
   * a crash or a kill). Others' uploads are theirs; a bucket lifecycle rule should expire what nobody finishes.
   */
  protected override beforePut(signal?: AbortSignal): Promise<void> {
    return this.cleanStaleUploads(signal);
  }

  private cleanStaleUploads(signal?: AbortSignal): Promise<void> {
    const node = this.opts.node;
    if (!node) return Promise.resolve();
    this.cleaned ??= (async () => {
      const { sdk, client } = await this.store.s3();
      let keyMarker: string | undefined;
      let uploadIdMarker: string | undefined;
      let aborted = 0;
      const guard = new PageGuard(`the multipart uploads of s3://${this.store.bucket}`);
      do {
        const page = await client.send(
          new sdk.ListMultipartUploadsCommand({
            Bucket: this.store.bucket,
            Prefix: this.layout.segmentsPrefix,
            KeyMarker: keyMarker,
            UploadIdMarker: uploadIdMarker,
          }),
          { abortSignal: signal },
        );
        for (const u of page.Uploads ?? []) {
          if (!u.Key || !u.UploadId || !this.isOwnDataKey(u.Key, node)) continue;
          if (u.Initiated && u.Initiated >= this.startedAt) continue;
          await client.send(new sdk.AbortMultipartUploadCommand({ Bucket: this.store.bucket, Key: u.Key, UploadId: u.UploadId }), { abortSignal: signal });
          aborted++;
        }
        keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
        uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
        if (keyMarker) guard.next(`${keyMarker}\0${uploadIdMarker ?? ''}`);
      } while (keyMarker);
      if (aborted) this.log.info({ aborted }, 'aborted stale multipart uploads left by an earlier run of this node');
    })().catch((e) => {
      // Not fatal: the operation that follows reports the bucket's problem; try again next time.
      this.cleaned = undefined;
      this.log.warn({ err: messageOf(this.store.error(e, 'listing stale multipart uploads')) }, 'stale multipart uploads not cleaned');
    });
    return this.cleaned;
  }

  /** `segments/{id}/{node}/{file}` of this node. */
  private isOwnDataKey(key: string, node: string): boolean {
    if (!key.startsWith(this.layout.segmentsPrefix)) return false;
    const rest = key.slice(this.layout.segmentsPrefix.length).split('/');
    return rest.length === 3 && rest[1] === encodeName(node);
  }
}
