/**
 * Writes a stream of chunks into a new file at the speed of the disk, with bounded memory:
 * - chunks are gathered into batches of BATCH bytes and written with one `writev` each (no copy into a bigger
 *   buffer), at explicit positions;
 * - one batch is written on the thread pool while the next one is gathered, so the caller keeps reading its socket
 *   (and hashing) instead of waiting for each write: memory is at most two batches;
 * - every FLUSH_EVERY bytes an `fdatasync` is started in the background (one at a time), so the disk writes the file
 *   while it is still arriving and the final `fsync` has little left to do.
 * `close()` waits for every write and for the final fsync; `abort()` waits for what is in flight, then closes.
 */
import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';

/** Bytes written at once. */
const BATCH = 1 << 20;
/** Buffers written at once at most (IOV_MAX on Linux). */
const MAX_BUFFERS = 1024;
/** Bytes after which the written part of the file is flushed to disk in the background. */
const FLUSH_EVERY = 64 << 20;

export class PipelinedFileWriter {
  private batch: Buffer[] = [];
  private batchBytes = 0;
  /** Where the next batch goes. */
  private position = 0;
  /** The write in flight: it never rejects (its failure is kept in `failure`). */
  private writing: Promise<void> = Promise.resolve();
  private flushing: Promise<void> = Promise.resolve();
  private unflushed = 0;
  private failure: unknown;
  private closed = false;

  private constructor(private readonly fh: FileHandle) {}

  /** Creates `file` (`wx`: never into an existing file, which may be a hard link to deep storage). */
  static async create(file: string, mode = 0o644): Promise<PipelinedFileWriter> {
    return new PipelinedFileWriter(await open(file, 'wx', mode));
  }

  /** Takes a chunk (kept by reference until written: the caller must not reuse it); resolves once it may send more. */
  async write(chunk: Buffer): Promise<void> {
    if (this.closed) throw new Error('write after the file was closed');
    this.throwIfFailed();
    if (!chunk.length) return;
    this.batch.push(chunk);
    this.batchBytes += chunk.length;
    if (this.batchBytes >= BATCH || this.batch.length >= MAX_BUFFERS) await this.sendBatch();
  }

  /** Writes what is left, fsyncs and closes the file; throws the first write error. */
  async close(): Promise<void> {
    try {
      await this.sendBatch();
      await this.writing;
      this.throwIfFailed();
      await this.flushing;
      this.throwIfFailed();
      await this.fh.sync();
    } finally {
      await this.abort();
    }
  }

  /** Waits for what is in flight and closes the file without flushing it (the caller removes it). */
  async abort(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.batch = [];
    await this.writing;
    await this.flushing;
    await this.fh.close();
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  /** Waits for the write in flight, then starts writing the gathered batch. */
  private async sendBatch(): Promise<void> {
    await this.writing;
    this.throwIfFailed();
    if (!this.batchBytes) return;
    const bufs = this.batch;
    const bytes = this.batchBytes;
    const at = this.position;
    this.batch = [];
    this.batchBytes = 0;
    this.position += bytes;
    this.writing = this.writeAll(bufs, at, bytes).then(
      () => this.afterWrite(bytes),
      (e: unknown) => {
        this.failure ??= e;
      },
    );
  }

  private async writeAll(bufs: Buffer[], at: number, bytes: number): Promise<void> {
    let done = 0;
    while (done < bytes) {
      const { bytesWritten } = await this.fh.writev(done ? remaining(bufs, done) : bufs, at + done);
      if (bytesWritten <= 0) throw new Error('the disk accepted no bytes');
      done += bytesWritten;
    }
  }

  private afterWrite(bytes: number): void {
    this.unflushed += bytes;
    if (this.unflushed < FLUSH_EVERY) return;
    this.unflushed = 0;
    this.flushing = this.flushing.then(() =>
      this.fh.datasync().catch((e: unknown) => {
        this.failure ??= e;
      }),
    );
  }
}

/** The buffers of `bufs` after its first `skip` bytes (after a short write). */
function remaining(bufs: Buffer[], skip: number): Buffer[] {
  const out: Buffer[] = [];
  for (const b of bufs) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    out.push(skip ? b.subarray(skip) : b);
    skip = 0;
  }
  return out;
}
