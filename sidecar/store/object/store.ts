/**
 * The few primitives the object-store logic (layout.ts, catalog.ts, verify.ts, target.ts) needs from a bucket or a
 * container: whole reads with a limit, streamed reads, conditional writes, streamed uploads, listing by prefix in
 * pages, deletes. S3 (store/s3/store.ts) and Azure Blob Storage (store/azure/store.ts) implement it; everything
 * else about a bucket target (manifest written last, the catalog index, verify, replicas and conflicts) is written
 * once against it, as restic's `Backend`.
 *
 * An implementation returns `undefined` for an object that is not there, `'precondition-failed'` for a refused
 * conditional write and `'unchanged'` for a read whose ETag still matches; every other failure is thrown as the
 * service raised it, and `error()` turns it into one clear BackupError (the caller says what it was doing).
 * Everything it hands back (keys, sizes, ETags, bodies) comes from the service and is checked by the caller.
 */
import type { Readable } from 'node:stream';
import { BackupError, isBackupError } from '../../errors.js';
import type { SegmentFileInfo } from '../manifest.js';

export interface ObjectEntry {
  key: string;
  size: number;
  etag: string;
}

export interface ObjectPage {
  objects: ObjectEntry[];
  /** The token of the next page; undefined on the last. */
  next?: string;
}

export interface ObjectBody {
  body: AsyncIterable<Uint8Array>;
  /** The length the service declared, when it did. */
  size?: number;
  /** Stops reading a body the caller will not consume. */
  cancel(): void;
}

export interface WriteOptions {
  /** Write only when no object has the key (`If-None-Match: *`). */
  ifAbsent?: boolean;
  /** Write only when the object still has this ETag (`If-Match`). */
  ifMatch?: string;
  contentType?: string;
  contentEncoding?: string;
  signal?: AbortSignal;
}

export interface FileToUpload {
  name: string;
  size: number;
  open(): Readable;
  /** The file on disk, when there is one: an implementation may read it its own way. */
  path?: string;
}

/** Checks the bytes read against the size the file had when scanned; the error says the segment goes again later. */
export function sizeCheck(file: FileToUpload): { add(n: number): void; end(): void } {
  let read = 0;
  return {
    add(n) {
      read += n;
      if (read > file.size)
        throw new BackupError('conflict', `${file.name} grew beyond its ${file.size} bytes while it was read; it will be sent again once it settles`);
    },
    end() {
      if (read !== file.size)
        throw new BackupError(
          'conflict',
          `${file.name} has ${read} bytes, not the ${file.size} it had when the segment was scanned; it will be sent again once it settles`,
        );
    },
  };
}

/**
 * The failures of a call that are no service's, for `ObjectStore.error` before it reads the service's code: one
 * already a BackupError, and a call the caller aborted (its reason, else `cancelled`); undefined for the rest.
 */
export function failureNotOfService(e: unknown, action: string, signal?: AbortSignal): BackupError | undefined {
  if (isBackupError(e)) return e;
  if (signal?.aborted) {
    const reason = signal.reason as unknown;
    return isBackupError(reason) ? reason : new BackupError('cancelled', `${action}: cancelled`);
  }
  if ((e as { name?: unknown } | undefined)?.name === 'AbortError') return new BackupError('cancelled', `${action}: cancelled`);
  return undefined;
}

export interface UploadOptions {
  signal?: AbortSignal;
  onBytes?: (n: number) => void;
}

export interface ObjectStore {
  /** `s3://bucket` or `azure://account/container`: where keys live, for messages (never with credentials). */
  readonly name: string;
  /** What the service calls a container of objects (`bucket`, `container`), for messages. */
  readonly noun: string;
  /** The service's code for a missing object (`NoSuchKey`, `BlobNotFound`), for messages. */
  readonly missingCode: string;
  /** Reads a whole object of at most `limit` bytes (`what` names it in the error). */
  read(
    key: string,
    limit: number,
    what: string,
    opts?: { signal?: AbortSignal; ifNoneMatch?: string },
  ): Promise<{ body: Buffer; etag: string } | 'unchanged' | undefined>;
  /** Opens an object to stream it. */
  open(key: string, signal?: AbortSignal): Promise<ObjectBody | undefined>;
  /** Writes a small object (a manifest, the catalog index), conditionally when asked. */
  write(key: string, body: Buffer | string, opts?: WriteOptions): Promise<{ etag: string } | 'precondition-failed'>;
  /** Uploads a segment file as it is read, in bounded memory, with the service checking a digest of what arrived. */
  upload(key: string, file: FileToUpload, opts?: UploadOptions): Promise<SegmentFileInfo>;
  /** One page of the objects whose keys start with `prefix`, in key order. */
  list(prefix: string, opts?: { token?: string; max?: number; signal?: AbortSignal }): Promise<ObjectPage>;
  /** Deletes these objects (a missing one is no error). */
  remove(keys: string[], signal?: AbortSignal): Promise<void>;
  /** Abandons uploads in progress under a prefix, when the service keeps them apart from objects (S3 multipart). */
  abortUploads?(prefix: string, signal?: AbortSignal): Promise<void>;
  /** A failure of this service as one clear BackupError naming its code and where, never a credential. */
  error(e: unknown, action: string, signal?: AbortSignal): BackupError;
  /** Releases connections; calls in flight finish. */
  close(): void;
}
