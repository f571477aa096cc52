/**
 * Uploads one segment file as it is read. A file up to `multipartThreshold` goes as one streamed PUT whose sha256,
 * computed as it is read, goes as a trailing `x-amz-checksum-sha256`, which the server verifies: no
 * part is held in memory, and a server that keeps objects as files (VersityGW) writes the bytes once. Segment
 * files are at most 2 GiB (Druid's smoosh chunks), within S3's 5 GiB for one PUT, and a node sends several
 * segments at once, so one stream per file loses no parallelism. A larger file goes through `@aws-sdk/lib-storage`
 * as a multipart upload with `concurrency` parts in flight, so memory is about (concurrency + 1) × partSize.
 *
 * A single PUT reads the file into pooled buffers that are used again once the socket has written them
 * (util/bufferPool.ts): V8 frees dead buffers late, and a new one per read left 20-35 MiB of them in memory.
 *
 * For a single PUT, the file's sha256 is computed here once, as it is read: it goes into the manifest and, through
 * `bodyDigests`, to the SDK as the trailing checksum, and is compared with the checksum the server reports having
 * stored. For a multipart upload, the bytes are hashed twice while they stream
 * by: the whole file (for the manifest) and each part, whose sha256 goes out as the part's `x-amz-checksum-sha256`
 * (client.ts) and is verified by the server; the checksum S3 returns at the end (`sha256(part digests)-N`, or the
 * part's own for a file of one part) is compared with ours, so a server that assembled anything else is caught
 * before the manifest is written. A file that changes size while read fails the upload; a failed or cancelled
 * upload is aborted.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { BackupError } from '../../errors.js';
import { BufferPool, readPooled } from '../../util/bufferPool.js';
import { READ_CHUNK } from '../../util/readStream.js';
import type { SegmentFileInfo } from '../manifest.js';
import type { FileToUpload } from '../object/store.js';
import { sizeCheck } from '../object/store.js';
import type { PartChecksums } from './client.js';
import type { Sdk } from './sdk.js';

export interface UploadFileOptions {
  sdk: Sdk;
  client: S3Client;
  checksums: PartChecksums;
  bucket: string;
  key: string;
  partSize: number;
  concurrency: number;
  /** Files larger than this go as multipart uploads; others as one streamed PUT. */
  multipartThreshold: number;
  signal?: AbortSignal;
  onBytes?: (n: number) => void;
}

/**
 * The read buffers of single PUTs, shared by all uploads: each goes back to the pool once the request's socket has
 * written it (createS3Client turns that on: releaseLentOnWrite), so a 2 GB file goes up with 3 buffers of 1 MiB
 * instead of 2,000. 16 kept free at most (about four uploads at once), none after 30 s without an upload.
 */
const READ_POOL = new BufferPool(READ_CHUNK, 16);

/** The checksum S3 reports for an object uploaded in parts with these sha256 digests (hex). */
export function expectedChecksum(partDigests: readonly string[]): string {
  if (partDigests.length === 1) return Buffer.from(partDigests[0]!, 'hex').toString('base64');
  const h = createHash('sha256');
  for (const d of partDigests) h.update(Buffer.from(d, 'hex'));
  return `${h.digest('base64')}-${partDigests.length}`;
}

/**
 * The sha256 of each body putFile streams, computed as it is read, which the client's `streamHasher` (client.ts)
 * gives the SDK for the trailing checksum: the bytes are hashed once on this side, not once here and once by the SDK.
 */
export const bodyDigests = new WeakMap<Readable, Promise<Uint8Array>>();

export async function uploadFile(file: FileToUpload, o: UploadFileOptions): Promise<SegmentFileInfo> {
  return file.size <= o.multipartThreshold ? putFile(file, o) : multipartFile(file, o);
}

/** One streamed PUT with a trailing sha256 checksum. The SDK never retries a streamed body: the caller retries. */
async function putFile(file: FileToUpload, o: UploadFileOptions): Promise<SegmentFileInfo> {
  const whole = createHash('sha256');
  const source: AsyncIterable<Buffer> = file.path ? readPooled(file.path, READ_POOL) : (file.open() as AsyncIterable<Buffer>);
  const size = sizeCheck(file);
  // The SDK pipes the body into the request through streams of its own, and pipes do not pass errors on: a body
  // that failed would go unheard (an unhandled stream error) and the request would wait for its timeout. So a read
  // that fails (a file that changed, a disk error) aborts the request, never more bytes than declared having gone,
  // and ends the body quietly; its error is the one reported.
  const failed = new AbortController();
  let bodyError: unknown;
  // Settled only when the whole file was read: on a failure the request is aborted, and a rejected digest would only
  // make the SDK destroy its chunked stream with an error nobody listens to any more.
  let resolveDigest!: (d: Buffer) => void;
  const digest = new Promise<Buffer>((resolve) => (resolveDigest = resolve));
  async function* hashed(): AsyncGenerator<Buffer> {
    try {
      for await (const chunk of source) {
        size.add(chunk.length);
        whole.update(chunk);
        o.onBytes?.(chunk.length);
        yield chunk;
      }
      size.end();
      resolveDigest(whole.digest());
    } catch (e) {
      bodyError = e;
      failed.abort(e);
    }
  }
  const signal = o.signal ? AbortSignal.any([o.signal, failed.signal]) : failed.signal;
  let body: Readable | undefined;
  try {
    if (o.signal?.aborted) throw new BackupError('cancelled', `upload of ${file.name} cancelled`);
    body = Readable.from(hashed(), { objectMode: false });
    bodyDigests.set(body, digest);
    const result = await o.client.send(
      new o.sdk.PutObjectCommand({ Bucket: o.bucket, Key: o.key, Body: body, ContentLength: file.size, ChecksumAlgorithm: 'SHA256' }),
      { abortSignal: signal },
    );
    const sha256 = (await digest).toString('hex');
    const want = Buffer.from(sha256, 'hex').toString('base64');
    if (result.ChecksumSHA256 !== undefined && result.ChecksumSHA256 !== want) {
      throw new BackupError('digest_mismatch', `the server stored ${o.key} with checksum ${result.ChecksumSHA256}, but the bytes sent have ${want}`);
    }
    return { name: file.name, size: file.size, sha256 };
  } catch (e) {
    // Ends hashed(), which closes the source (a read stream is destroyed as well, should it not have started).
    body?.destroy();
    if (source instanceof Readable) source.destroy();
    throw bodyError ?? e;
  }
}

async function multipartFile(file: FileToUpload, o: UploadFileOptions): Promise<SegmentFileInfo> {
  const parts: string[] = [];
  const mapKey = `${o.bucket}/${o.key}`;
  o.checksums.set(mapKey, parts);
  const whole = createHash('sha256');
  const source = file.open();
  const { partSize } = o;

  async function* hashed(): AsyncGenerator<Buffer> {
    let part = createHash('sha256');
    let inPart = 0;
    const size = sizeCheck(file);
    for await (const chunk of source as AsyncIterable<Buffer>) {
      size.add(chunk.length);
      whole.update(chunk);
      for (let off = 0; off < chunk.length;) {
        const n = Math.min(partSize - inPart, chunk.length - off);
        part.update(off === 0 && n === chunk.length ? chunk : chunk.subarray(off, off + n));
        inPart += n;
        off += n;
        if (inPart === partSize) {
          parts.push(part.digest('hex'));
          part = createHash('sha256');
          inPart = 0;
        }
      }
      // Each part's digest is complete before lib-storage, which reads past the part's end, sends it.
      yield chunk;
    }
    size.end();
    if (inPart > 0 || parts.length === 0) parts.push(part.digest('hex'));
  }

  const upload = new o.sdk.Upload({
    client: o.client,
    params: { Bucket: o.bucket, Key: o.key, Body: Readable.from(hashed(), { objectMode: false }), ContentLength: file.size, ChecksumAlgorithm: 'SHA256' },
    partSize,
    queueSize: o.concurrency,
  });
  let reported = 0;
  upload.on('httpUploadProgress', (p) => {
    const loaded = p.loaded ?? 0;
    if (loaded > reported) {
      o.onBytes?.(loaded - reported);
      reported = loaded;
    }
  });
  const onAbort = () => void upload.abort();
  o.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    if (o.signal?.aborted) throw new BackupError('cancelled', `upload of ${file.name} cancelled`);
    const result = (await upload.done()) as { ChecksumSHA256?: string };
    const sha256 = whole.digest('hex');
    const want = expectedChecksum(parts);
    if (result.ChecksumSHA256 !== undefined && result.ChecksumSHA256 !== want) {
      throw new BackupError('digest_mismatch', `the server stored ${o.key} with checksum ${result.ChecksumSHA256}, but the bytes sent have ${want}`);
    }
    return { name: file.name, size: file.size, sha256 };
  } catch (e) {
    source.destroy();
    // lib-storage aborts a failed multipart upload itself, but not once `done()` has returned on a cancel.
    if (upload.uploadId)
      await o.client.send(new o.sdk.AbortMultipartUploadCommand({ Bucket: o.bucket, Key: o.key, UploadId: upload.uploadId })).catch(() => undefined);
    throw e;
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
    o.checksums.delete(mapKey);
  }
}
