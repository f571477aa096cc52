/**
 * S3 as an object store (object/store.ts): the AWS SDK's commands behind the primitives the bucket logic uses. The
 * client is made, and the SDK loaded, when the bucket is first used (sdk.ts). Uploads are upload.ts's (a streamed PUT
 * with a trailing sha256, or a multipart upload with a sha256 per part), which the server verifies.
 */
import { BackupError } from '../../errors.js';
import type { SegmentFileInfo } from '../manifest.js';
import type { FileToUpload, ObjectBody, ObjectPage, ObjectStore, UploadOptions, WriteOptions } from '../object/store.js';
import type { PartChecksums, S3Settings } from './client.js';
import { checkS3Settings, createS3Client, describeEndpoint, readObjectLimited, s3Agents } from './client.js';
import { retireAgent } from '../../util/agents.js';
import { isNotFound, isPreconditionFailed, s3Error, s3Status } from './errors.js';
import type { S3Connection } from './sdk.js';
import { loadSdk } from './sdk.js';
import { uploadFile } from './upload.js';

export class S3Store implements ObjectStore {
  readonly name: string;
  readonly noun = 'bucket';
  readonly missingCode = 'NoSuchKey';
  /** Where requests go, for messages (never with credentials). */
  readonly endpoint: string;
  private readonly checksums: PartChecksums = new Map();
  private readonly partSize: number;
  private readonly concurrency: number;
  private readonly multipartThreshold: number;
  private connection?: Promise<S3Connection>;
  private readonly agents = s3Agents();

  constructor(
    readonly bucket: string,
    private readonly settings: S3Settings = {},
  ) {
    ({ partSize: this.partSize, concurrency: this.concurrency, multipartThreshold: this.multipartThreshold } = checkS3Settings(settings));
    this.name = `s3://${bucket}`;
    this.endpoint = describeEndpoint(settings);
  }

  /** The client, made when the bucket is first used (loading the SDK then). */
  s3(): Promise<S3Connection> {
    this.connection ??= loadSdk().then((sdk) => ({ sdk, client: createS3Client(sdk, this.settings, this.checksums, process.env, this.agents) }));
    return this.connection;
  }

  error(e: unknown, action: string, signal?: AbortSignal): BackupError {
    return s3Error(e, { action, bucket: this.bucket, endpoint: this.endpoint, signal });
  }

  async read(key: string, limit: number, what: string, opts: { signal?: AbortSignal; ifNoneMatch?: string } = {}) {
    const { sdk, client } = await this.s3();
    try {
      const res = await client.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key: key, IfNoneMatch: opts.ifNoneMatch }), { abortSignal: opts.signal });
      const body = await readObjectLimited(res, limit, what);
      return { body, etag: res.ETag ?? '' };
    } catch (e) {
      if (opts.ifNoneMatch !== undefined && s3Status(e) === 304) return 'unchanged' as const;
      if (isNotFound(e) && (e as { name?: string }).name !== 'NoSuchBucket') return undefined;
      throw e;
    }
  }

  async open(key: string, signal?: AbortSignal): Promise<ObjectBody | undefined> {
    const { sdk, client } = await this.s3();
    try {
      const res = await client.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal: signal });
      return {
        body: res.Body as unknown as AsyncIterable<Uint8Array>,
        size: res.ContentLength,
        cancel: () =>
          void res.Body?.transformToWebStream()
            .cancel()
            .catch(() => undefined),
      };
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async write(key: string, body: Buffer | string, opts: WriteOptions = {}): Promise<{ etag: string } | 'precondition-failed'> {
    const { sdk, client } = await this.s3();
    try {
      const res = await client.send(
        new sdk.PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: body,
          ContentType: opts.contentType,
          ContentEncoding: opts.contentEncoding,
          IfNoneMatch: opts.ifAbsent ? '*' : undefined,
          IfMatch: opts.ifMatch,
        }),
        { abortSignal: opts.signal },
      );
      return { etag: res.ETag ?? '' };
    } catch (e) {
      if (isPreconditionFailed(e)) return 'precondition-failed';
      throw e;
    }
  }

  async upload(key: string, file: FileToUpload, opts: UploadOptions = {}): Promise<SegmentFileInfo> {
    const { sdk, client } = await this.s3();
    return uploadFile(file, {
      sdk,
      client,
      checksums: this.checksums,
      bucket: this.bucket,
      key,
      partSize: this.partSize,
      concurrency: this.concurrency,
      multipartThreshold: this.multipartThreshold,
      signal: opts.signal,
      onBytes: opts.onBytes,
    });
  }

  async list(prefix: string, opts: { token?: string; max?: number; signal?: AbortSignal } = {}): Promise<ObjectPage> {
    const { sdk, client } = await this.s3();
    const page = await client.send(new sdk.ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: opts.token, MaxKeys: opts.max }), {
      abortSignal: opts.signal,
    });
    return {
      objects: (page.Contents ?? []).filter((o) => o.Key).map((o) => ({ key: o.Key!, size: o.Size ?? 0, etag: o.ETag ?? '' })),
      next: page.IsTruncated ? page.NextContinuationToken : undefined,
    };
  }

  async remove(keys: string[], signal?: AbortSignal): Promise<void> {
    const { sdk, client } = await this.s3();
    const res = await client.send(new sdk.DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }), {
      abortSignal: signal,
    });
    const failed = res.Errors ?? [];
    if (failed.length) throw new BackupError('target_error', `could not delete ${failed.length} object(s) in s3://${this.bucket} (${failed[0]!.Code})`);
  }

  async abortUploads(prefix: string, signal?: AbortSignal): Promise<void> {
    const { sdk, client } = await this.s3();
    const page = await client.send(new sdk.ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: prefix }), { abortSignal: signal });
    for (const u of page.Uploads ?? [])
      if (u.Key && u.UploadId)
        await client.send(new sdk.AbortMultipartUploadCommand({ Bucket: this.bucket, Key: u.Key, UploadId: u.UploadId }), { abortSignal: signal });
  }

  close(): void {
    retireAgent(this.agents.httpAgent);
    retireAgent(this.agents.httpsAgent);
  }
}
