/**
 * The chunk of a body being read, for the readers that take exact byte counts out of what a socket delivered (the
 * segment tar reader, archive/unpack.ts; the batch body reader, store/http/batch.ts): `cur` is what is left of the
 * current chunk, `fill` replaces it with the next one. Nothing is buffered beyond that chunk.
 */
import { abortError, BackupError, isBackupError } from '../errors.js';

const EMPTY = Buffer.alloc(0);

export class ChunkCursor {
  /** What is left of the current chunk; readers take from its front. */
  cur: Buffer = EMPTY;
  private readonly it: AsyncIterator<Buffer | string>;
  private eof = false;

  /**
   * `cutOff` turns a failure of the source (the sender went away mid-body) into the reader's error; a BackupError
   * from the source is thrown as it is, and any failure once `signal` is aborted is the abort's own error (a stall,
   * the job cancelled: `abortError`), not what the source made of it (an HTTP client's bare "canceled").
   */
  constructor(
    src: AsyncIterable<Buffer | string>,
    private readonly cutOff: (e: unknown) => BackupError,
    private readonly signal?: AbortSignal,
  ) {
    this.it = src[Symbol.asyncIterator]();
  }

  /** Replaces the (used up) current chunk with the next one; false at the end of the source. */
  async fill(): Promise<boolean> {
    if (this.eof) return false;
    if (this.signal?.aborted) throw abortError(this.signal, 'transfer cancelled');
    let r: IteratorResult<Buffer | string>;
    try {
      r = await this.it.next();
    } catch (e) {
      if (isBackupError(e)) throw e;
      if (this.signal?.aborted) throw abortError(this.signal, 'transfer cancelled');
      throw this.cutOff(e);
    }
    if (r.done) {
      this.eof = true;
      return false;
    }
    this.cur = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
    return true;
  }

  /** Drops the current chunk. */
  clear(): void {
    this.cur = EMPTY;
  }

  /** Stops reading the source (destroys a Readable). */
  async close(): Promise<void> {
    await this.it.return?.();
  }
}
