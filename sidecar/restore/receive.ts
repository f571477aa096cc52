/**
 * Receives a segment read back from a target and checks every byte against its manifest while streaming: each
 * file's size and sha256, no file missing, none extra, none twice. Nothing here makes a segment visible; the
 * callers write into a staging place and rename only after this returned.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { Readable } from 'node:stream';
import { checkPlanned } from '../archive/format.js';
import { inside } from '../druid/paths.js';
import { BackupError } from '../errors.js';
import type { Manifest, SegmentFileInfo } from '../store/manifest.js';
import type { FileChunk, IncomingFile, SegmentReader } from '../store/target.js';
import { gathered, writeAtOnce, writeChunks } from '../util/fileWriter.js';
import { SMALL_READ_BYTES } from '../util/readStream.js';
import type { RateLimit } from '../util/rateLimit.js';

export interface ReceiveOptions {
  signal?: AbortSignal;
  onBytes?: (n: number) => void;
  /** The bandwidth limit the received bytes pass under. */
  limit?: RateLimit;
}

export const NOTHING_INSTALLED = "the backup's copy does not match its manifest (run verify on the target), nothing was installed";

/** Raised when received bytes are not the manifest's: the store's copy is damaged, or the transfer was. */
export function mismatch(segmentId: string, file: string, what: string): BackupError {
  return new BackupError('digest_mismatch', `segment ${segmentId}: ${file} ${what}; ${NOTHING_INSTALLED}`);
}

/** `TransferOptions.planned` for a read of the one segment `planned` names: its reader checks the answer against it. */
export function plannedOf(planned: Manifest): (segmentId: string) => Manifest | undefined {
  return (id) => (id === planned.segmentId ? planned : undefined);
}

/** Checks that a target answered with the segment that was planned, then yields each file with its manifest entry. */
export async function* expectedFiles(reader: SegmentReader, planned: Manifest): AsyncGenerator<{ file: IncomingFile; want: SegmentFileInfo }> {
  checkPlanned(reader.manifest, planned);
  const wanted = new Map(planned.files.map((f) => [f.name, f]));
  for await (const file of reader.files) {
    const want = wanted.get(file.name);
    if (!want) {
      await file.chunks[Symbol.asyncIterator]().return?.();
      throw mismatch(planned.segmentId, file.name, 'was sent but is not in the manifest (or was sent twice)');
    }
    wanted.delete(file.name);
    yield { file, want };
  }
  if (wanted.size) throw mismatch(planned.segmentId, [...wanted.keys()].join(', '), 'was not sent');
}

/**
 * The chunks of a received file, checked against its manifest entry: fails past the size, short of it, or (unless
 * the reader already checks it, `readerVerifies`) on a sha256 that differs. A batch is passed on as it came, for the
 * file writer to write without joining it.
 */
async function* checkedChunks(
  segmentId: string,
  file: IncomingFile,
  want: SegmentFileInfo,
  opts: ReceiveOptions,
  readerVerifies: boolean,
): AsyncGenerator<FileChunk> {
  const hash = readerVerifies ? undefined : createHash('sha256');
  let bytes = 0;
  for await (const chunk of file.chunks) {
    if (opts.signal?.aborted) throw new BackupError('cancelled', 'restore cancelled');
    const pieces = Buffer.isBuffer(chunk) ? [chunk] : chunk;
    let n = 0;
    for (const piece of pieces) n += piece.length;
    bytes += n;
    if (bytes > want.size) throw mismatch(segmentId, want.name, `is longer than the ${want.size} bytes of the manifest`);
    if (hash) for (const piece of pieces) hash.update(piece);
    await opts.limit?.take(n, opts.signal);
    yield chunk;
    opts.onBytes?.(n);
  }
  if (bytes !== want.size) throw mismatch(segmentId, want.name, `has ${bytes} bytes, the manifest ${want.size}`);
  const got = hash?.digest('hex');
  if (got !== undefined && got !== want.sha256) throw mismatch(segmentId, want.name, `has sha256 ${got}, the manifest ${want.sha256}`);
}

/**
 * Writes one file with `wx` (never into an existing file: cache files may be hard links to deep storage) and fsyncs
 * it; the disk writes while the next bytes arrive (util/fileWriter.ts). With `flush` false it is only written and
 * closed (a small one by direct calls, `writeAtOnce`): the caller flushes the filesystem. The sha256 is computed here
 * unless the reader already checks it (`SegmentReader.verified`).
 */
async function writeFileVerified(
  segmentId: string,
  file: IncomingFile,
  want: SegmentFileInfo,
  dest: string,
  opts: ReceiveOptions,
  readerVerifies: boolean,
  flush: boolean,
): Promise<void> {
  const chunks = checkedChunks(segmentId, file, want, opts, readerVerifies);
  if (!flush && want.size <= SMALL_READ_BYTES) return writeAtOnce(dest, await gathered(chunks));
  await (await writeChunks(dest, chunks, { flush })).durable;
}

/**
 * A received file as a stream of buffers, checked as `checkedChunks` checks (hashed here whatever the reader checks):
 * for a consumer that takes a stream, the zips of restore/zip.ts and cluster/restore/deepStorage.ts. The stream
 * fails before it ends when the bytes are not the manifest's.
 */
export function checkedStream(segmentId: string, file: IncomingFile, want: SegmentFileInfo, opts: ReceiveOptions = {}): Readable {
  async function* buffers(): AsyncGenerator<Buffer> {
    for await (const chunk of checkedChunks(segmentId, file, want, opts, false)) {
      if (Buffer.isBuffer(chunk)) yield chunk;
      else yield* chunk;
    }
  }
  return Readable.from(buffers(), { objectMode: false });
}

/**
 * Receives every file of a segment into `dir` (which must exist and be empty) and fsyncs each file and the directory;
 * with `flush` false nothing is flushed (a group of small segments flushes the filesystem once, restore/install.ts).
 */
export async function receiveInto(reader: SegmentReader, planned: Manifest, dir: string, opts: ReceiveOptions = {}, flush = true): Promise<void> {
  for await (const { file, want } of expectedFiles(reader, planned)) {
    await writeFileVerified(planned.segmentId, file, want, inside(dir, [want.name], planned.segmentId), opts, reader.verified === true, flush);
  }
  if (flush) await fsyncDir(dir);
}

/**
 * Reads a whole copy back and checks every byte against its manifest, writing nothing: a repaired copy counts as
 * good only after this. `digest` is the one the copy must have.
 */
export async function drainVerified(reader: SegmentReader, digest: string, signal?: AbortSignal): Promise<void> {
  const m = reader.manifest;
  if (m.digest !== digest) throw new BackupError('digest_mismatch', `segment ${m.segmentId}: the copy's manifest has digest ${m.digest}, not ${digest}`);
  for await (const { file, want } of expectedFiles(reader, m)) {
    // Hashed here whatever the reader checks: a repaired copy is taken for good only on this side's word.
    for await (const chunk of checkedChunks(m.segmentId, file, want, { signal }, false)) void chunk;
  }
}

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
