/**
 * Azure Blob Storage as an object store (object/store.ts). A segment file goes up as a block blob: read once as it
 * streams, cut into blocks of `blockSize`, each staged with its Content-MD5 (the service recomputes it and refuses a
 * block whose bytes differ) while the file's sha256 is computed for the manifest, `concurrency` blocks in flight, so
 * memory is about (concurrency + 1) × blockSize whatever the file's size. The blob exists only once its block list
 * is committed; blocks never committed are dropped by the service after a week and are never listed.
 *
 * Conditional writes are Azure's: `If-None-Match: *` (refused with 409 BlobAlreadyExists) and `If-Match` on the
 * ETag (412 ConditionNotMet). Listings come in pages of at most 5,000 by the service's own limit; every name, size
 * and ETag in them is checked by the caller.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { ContainerClient } from '@azure/storage-blob';
import { BackupError } from '../../errors.js';
import { readLimited } from '../../util/limitedRead.js';
import type { SegmentFileInfo } from '../manifest.js';
import type { FileToUpload, ObjectBody, ObjectPage, ObjectStore, UploadOptions, WriteOptions } from '../object/store.js';
import { sizeCheck } from '../object/store.js';
import type { AzureSdk, AzureSettings } from './client.js';
import { MAX_BLOCKS, checkAzureSettings, createContainerClient, describeAzureEndpoint } from './client.js';
import { azureError, azureStatus, isBlobNotFound, isConditionFailed } from './errors.js';

/** Largest page asked of a listing (the service's limit is 5,000). */
const LIST_PAGE = 1000;

/**
 * Block ids: base64 of one upload's random tag and a fixed-width number (the service wants ids of one length within a
 * blob). The tag keeps two uploads to one blob at once (a retry, a repair from another node) from staging over each
 * other's uncommitted blocks: each commit names only its own.
 */
function blockIds(): (n: number) => string {
  const tag = randomBytes(12).toString('hex');
  return (n) => Buffer.from(`${tag}-${String(n).padStart(6, '0')}`).toString('base64');
}

/** ETags in one spelling: the service quotes them in headers but not in listings, and the catalog compares them. */
function quoted(etag: string | undefined): string {
  if (!etag) return '';
  return etag.startsWith('"') ? etag : `"${etag}"`;
}

export class AzureStore implements ObjectStore {
  readonly name: string;
  readonly noun = 'container';
  readonly missingCode = 'BlobNotFound';
  readonly endpoint: string;
  private readonly blockSize: number;
  private readonly concurrency: number;
  private connection?: Promise<{ sdk: AzureSdk; client: ContainerClient }>;

  constructor(
    readonly container: string,
    private readonly settings: AzureSettings = {},
  ) {
    ({ blockSize: this.blockSize, concurrency: this.concurrency } = checkAzureSettings(settings));
    this.name = `azure://${container}`;
    this.endpoint = describeAzureEndpoint(settings);
  }

  /** The container's client, made when it is first used (loading the SDK then). */
  azure(): Promise<{ sdk: AzureSdk; client: ContainerClient }> {
    this.connection ??= createContainerClient(this.container, this.settings).catch((e) => {
      this.connection = undefined;
      throw e;
    });
    return this.connection;
  }

  error(e: unknown, action: string, signal?: AbortSignal): BackupError {
    return azureError(e, { action, container: this.container, endpoint: this.endpoint, signal });
  }

  async read(key: string, limit: number, what: string, opts: { signal?: AbortSignal; ifNoneMatch?: string } = {}) {
    const { client } = await this.azure();
    try {
      const res = await client
        .getBlobClient(key)
        .download(0, undefined, { abortSignal: opts.signal, conditions: opts.ifNoneMatch ? { ifNoneMatch: opts.ifNoneMatch } : undefined });
      const body = res.readableStreamBody as (AsyncIterable<Uint8Array> & { destroy?: () => void }) | undefined;
      return { body: body ? await readLimited(body, limit, what, res.contentLength) : Buffer.alloc(0), etag: quoted(res.etag) };
    } catch (e) {
      if (opts.ifNoneMatch !== undefined && azureStatus(e) === 304) return 'unchanged' as const;
      if (isBlobNotFound(e)) return undefined;
      throw e;
    }
  }

  async open(key: string, signal?: AbortSignal): Promise<ObjectBody | undefined> {
    const { client } = await this.azure();
    try {
      const res = await client.getBlobClient(key).download(0, undefined, { abortSignal: signal });
      const body = res.readableStreamBody as NodeJS.ReadableStream & AsyncIterable<Uint8Array> & { destroy?: () => void };
      if (!body) throw new BackupError('target_error', `${this.name}/${key}: the service answered without a body`);
      return { body, size: res.contentLength, cancel: () => body.destroy?.() };
    } catch (e) {
      if (isBlobNotFound(e)) return undefined;
      throw e;
    }
  }

  async write(key: string, body: Buffer | string, opts: WriteOptions = {}): Promise<{ etag: string } | 'precondition-failed'> {
    const { client } = await this.azure();
    const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    try {
      const res = await client.getBlockBlobClient(key).upload(bytes, bytes.length, {
        abortSignal: opts.signal,
        // Small and whole, sent in one request: the service checks the MD5 against what arrived, and keeps it.
        blobHTTPHeaders: {
          blobContentType: opts.contentType,
          blobContentEncoding: opts.contentEncoding,
          blobContentMD5: createHash('md5').update(bytes).digest(),
        },
        conditions: opts.ifAbsent ? { ifNoneMatch: '*' } : opts.ifMatch ? { ifMatch: opts.ifMatch } : undefined,
      });
      return { etag: quoted(res.etag) };
    } catch (e) {
      if (isConditionFailed(e)) return 'precondition-failed';
      throw e;
    }
  }

  /**
   * Stages the file's blocks as it is read and commits them. A failure aborts the blocks in flight; the blob is then
   * not there (or still the one before), since only a commit makes it.
   */
  async upload(key: string, file: FileToUpload, opts: UploadOptions = {}): Promise<SegmentFileInfo> {
    const { client } = await this.azure();
    const blob = client.getBlockBlobClient(key);
    if (Math.ceil(file.size / this.blockSize) > MAX_BLOCKS)
      throw new BackupError('bad_config', `${file.name}: ${file.size} bytes need more than ${MAX_BLOCKS} blocks of druid.backup.azure.blockSize; raise it`);
    const failed = new AbortController();
    const signal = opts.signal ? AbortSignal.any([opts.signal, failed.signal]) : failed.signal;
    const whole = createHash('sha256');
    const size = sizeCheck(file);
    const ids: string[] = [];
    const blockId = blockIds();
    const inFlight = new Set<Promise<void>>();
    let firstError: unknown;
    const stage = (block: Buffer) => {
      const id = blockId(ids.length);
      ids.push(id);
      const p = blob
        .stageBlock(id, block, block.length, { abortSignal: signal, transactionalContentMD5: createHash('md5').update(block).digest() })
        .then(() => opts.onBytes?.(block.length))
        .catch((e: unknown) => {
          firstError ??= e;
          failed.abort(e);
        })
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
    };
    const source = file.open();
    try {
      let block = Buffer.allocUnsafe(Math.min(this.blockSize, Math.max(file.size, 1)));
      let fill = 0;
      for await (const c of source as AsyncIterable<Buffer>) {
        if (signal.aborted) break;
        size.add(c.length);
        whole.update(c);
        for (let off = 0; off < c.length;) {
          const n = Math.min(block.length - fill, c.length - off);
          c.copy(block, fill, off, off + n);
          fill += n;
          off += n;
          if (fill === block.length) {
            stage(block);
            fill = 0;
            block = Buffer.allocUnsafe(this.blockSize);
            while (inFlight.size >= this.concurrency) await Promise.race(inFlight);
          }
        }
      }
      if (!signal.aborted) {
        size.end();
        if (fill > 0) stage(block.subarray(0, fill));
      }
      await Promise.all(inFlight);
      if (firstError !== undefined || signal.aborted) throw firstError ?? signal.reason ?? new BackupError('cancelled', `upload of ${file.name} cancelled`);
      await blob.commitBlockList(ids, { abortSignal: signal });
      return { name: file.name, size: file.size, sha256: whole.digest('hex') };
    } catch (e) {
      failed.abort(e);
      source.destroy();
      await Promise.all(inFlight);
      throw firstError ?? e;
    }
  }

  async list(prefix: string, opts: { token?: string; max?: number; signal?: AbortSignal } = {}): Promise<ObjectPage> {
    const { client } = await this.azure();
    const pages = client.listBlobsFlat({ prefix, abortSignal: opts.signal }).byPage({ continuationToken: opts.token, maxPageSize: Math.min(opts.max ?? LIST_PAGE, LIST_PAGE) });
    const { value } = await pages.next();
    if (!value) return { objects: [] };
    const objects = [];
    for (const b of value.segment?.blobItems ?? []) {
      const size = b.properties?.contentLength;
      if (typeof b.name !== 'string' || !b.name.startsWith(prefix)) continue;
      objects.push({ key: b.name, size: typeof size === 'number' && Number.isSafeInteger(size) && size >= 0 ? size : -1, etag: quoted(b.properties?.etag) });
    }
    return { objects, next: value.continuationToken || undefined };
  }

  async remove(keys: string[], signal?: AbortSignal): Promise<void> {
    const { client } = await this.azure();
    for (const key of keys) await client.getBlobClient(key).deleteIfExists({ abortSignal: signal });
  }

  /** Forgets the client; the SDK's connection pool is shared by every client of the process and stays. */
  close(): void {
    this.connection = undefined;
  }
}
