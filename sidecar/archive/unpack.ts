/**
 * A strict streaming reader of the two segment tar streams (store/target.ts):
 * - an upload (`PUT`): `segment.json`, the declared files in order, `digests.json`;
 * - a download (`GET`): `manifest.json`, then the manifest's files in order.
 * Only regular-file entries with the plain names declared are accepted, each exactly as long as declared; the
 * total is bounded by `maxBytes` before any file byte is read; every file is hashed as it streams (a download's large
 * one on the hashing thread, util/hashThread.ts) and checked against the trailer (upload) or the manifest (download).
 * Anything else (links, directories, paths, pax or GNU long-name headers, extra or missing entries, a truncated
 * stream, trailing data) is `bad_archive`. Nothing is buffered beyond one incoming chunk: file bytes are handed on
 * as slices of what the socket delivered.
 */
import type { Readable } from 'node:stream';
import { BackupError, messageOf } from '../errors.js';
import type { Manifest, SegmentFileInfo } from '../store/manifest.js';
import { MANIFEST_NAME } from '../store/manifest.js';
import type { SegmentDeclaration } from './format.js';
import { ChunkCursor } from '../util/chunkCursor.js';
import { fileHash } from '../util/hashThread.js';
import { checkPlanned, DECLARATION_NAME, MAX_JSON_ENTRY, TRAILER_NAME, parseDeclaration, parseJsonEntry, parseManifest, parseTrailer } from './format.js';
import { BLOCK, parseHeader, paddingFor } from './tar.js';

/** Zero bytes accepted after the end-of-archive marker (tar pads archives to 10 KiB records). */
const MAX_TRAILING_ZEROS = 20 * BLOCK;
/** Bytes of a file handed on at once. */
const BATCH = 1 << 20;
/**
 * Most slices a batch hands on as they are (a 1 MiB batch of the socket's 64 KiB reads is 16-17): a sender that
 * drips its bytes in tiny pieces gets them joined into one buffer, so the writes queued behind a batch never hold
 * more than this many buffer objects per batch.
 */
export const MAX_SLICES = 64;

/** Pulls exact byte counts out of a chunked stream. */
class ByteReader extends ChunkCursor {
  constructor(src: AsyncIterable<Buffer | string>, signal?: AbortSignal) {
    // The connection went away mid-stream (the sender died or the network cut it): a truncated archive.
    super(src, (e) => new BackupError('bad_archive', `the archive was cut off: ${messageOf(e)}`), signal);
  }

  private truncated(): never {
    throw new BackupError('bad_archive', 'the archive ends early: the upload was cut off or is not a whole segment');
  }

  async exact(n: number): Promise<Buffer> {
    if (this.cur.length >= n) {
      const out = this.cur.subarray(0, n);
      this.cur = this.cur.subarray(n);
      return out;
    }
    const parts: Buffer[] = [];
    let need = n;
    while (need > 0) {
      if (this.cur.length === 0 && !(await this.fill())) this.truncated();
      const k = Math.min(need, this.cur.length);
      parts.push(this.cur.subarray(0, k));
      this.cur = this.cur.subarray(k);
      need -= k;
    }
    return Buffer.concat(parts, n);
  }

  /**
   * Yields the next `n` bytes in batches of up to BATCH bytes, each batch the slices of what the socket delivered
   * (64 KiB at a time): handing each slice on alone would cost a write and several promise hops apiece, and gathering
   * them into one buffer would copy every byte once more (measured: 0.2 s of CPU per 2 GiB received). A batch of
   * more than MAX_SLICES slices is joined.
   */
  async *take(n: number): AsyncGenerator<Buffer[]> {
    let need = n;
    while (need > 0) {
      const want = Math.min(need, BATCH);
      const parts: Buffer[] = [];
      let size = 0;
      while (size < want) {
        if (this.cur.length === 0 && !(await this.fill())) this.truncated();
        const k = Math.min(want - size, this.cur.length);
        parts.push(this.cur.subarray(0, k));
        this.cur = this.cur.subarray(k);
        size += k;
      }
      need -= size;
      yield parts.length > MAX_SLICES ? [Buffer.concat(parts, size)] : parts;
    }
  }

  /** After the end-of-archive marker: only zeros, up to `limit`, then the end of the stream. */
  async expectEnd(limit: number): Promise<void> {
    let seen = 0;
    for (;;) {
      if (this.cur.length === 0 && !(await this.fill())) return;
      for (const b of this.cur) if (b !== 0) throw new BackupError('bad_archive', 'data after the end of the archive');
      seen += this.cur.length;
      this.clear();
      if (seen > limit) throw new BackupError('bad_archive', 'too much padding after the end of the archive');
    }
  }

}

export interface ReaderOptions {
  /** Upper bound of the sum of declared file sizes. */
  maxBytes: number;
  /** The segment the stream must be for (from the URL). */
  segmentId?: string;
  signal?: AbortSignal;
  onBytes?: (n: number) => void;
  /**
   * A download only: the manifest the read was planned with, already checked (`TransferOptions.planned`). The
   * download's manifest must name the same segment and digest; its files are then checked against this one's.
   */
  planned?: Manifest;
}

export interface TarFile {
  name: string;
  size: number;
  /**
   * The file's bytes in batches of slices (`ByteReader.take`); consume them before asking for the next file. Throws
   * `digest_mismatch` at the end of a download's file whose bytes do not match the manifest.
   */
  chunks: AsyncGenerator<Buffer[]>;
}

abstract class SegmentTarReader<Head> {
  protected readonly input: ByteReader;
  protected head?: Head;
  protected computed: SegmentFileInfo[] = [];
  private started = false;

  constructor(
    stream: Readable | AsyncIterable<Buffer>,
    protected readonly opts: ReaderOptions,
  ) {
    this.input = new ByteReader(stream as AsyncIterable<Buffer>, opts.signal);
  }

  protected abstract headName: string;
  /** Whether a large file's hash may go to the hashing thread: a restore's may, a backup's not. */
  protected abstract offThread: boolean;
  protected abstract parseHead(json: unknown): Head;
  protected abstract declared(head: Head): Array<{ name: string; size: number; sha256?: string }>;

  /** Reads one entry header, expecting a regular file named `name` (of `size` bytes when given). */
  protected async entry(name: string, size?: number): Promise<number> {
    const h = parseHeader(await this.input.exact(BLOCK));
    if (h.nullBlock) throw new BackupError('bad_archive', `the archive ends where "${name}" was expected`);
    if (h.type !== 'File' && h.type !== 'OldFile')
      throw new BackupError('bad_archive', `entry "${h.name.slice(0, 100)}" is a ${h.type} entry; only regular files are accepted`);
    if (h.name !== name) throw new BackupError('bad_archive', `entry "${h.name.slice(0, 100)}" where "${name}" was expected`);
    if (size !== undefined && h.size !== size) throw new BackupError('bad_archive', `entry "${name}" has ${h.size} bytes, but ${size} were declared`);
    return h.size;
  }

  protected async jsonEntry(name: string): Promise<unknown> {
    const size = await this.entry(name);
    if (size > MAX_JSON_ENTRY) throw new BackupError('bad_archive', `"${name}" is larger than ${MAX_JSON_ENTRY} bytes`);
    const body = await this.input.exact(size);
    await this.input.exact(paddingFor(size));
    return parseJsonEntry(body, name);
  }

  /** Reads and checks the first entry (`segment.json` or `manifest.json`). */
  async open(): Promise<Head> {
    if (this.head) return this.head;
    const head = this.parseHead(await this.jsonEntry(this.headName));
    const total = this.declared(head).reduce((n, f) => n + f.size, 0);
    if (total > this.opts.maxBytes)
      throw new BackupError('payload_too_large', `segment of ${total} bytes is larger than the limit of ${this.opts.maxBytes} bytes`);
    this.head = head;
    return head;
  }

  /** The declared files in order, each to be consumed before the next. */
  async *files(): AsyncGenerator<TarFile> {
    if (this.started) throw new BackupError('internal', 'files() may be read once');
    this.started = true;
    const head = await this.open();
    for (const d of this.declared(head)) {
      await this.entry(d.name, d.size);
      const consumed = { done: false };
      const chunks = this.fileChunks(d, consumed);
      yield { name: d.name, size: d.size, chunks };
      // A caller that skipped the bytes still gets a checked stream.
      if (!consumed.done) for await (const _ of chunks);
    }
  }

  private async *fileChunks(d: { name: string; size: number; sha256?: string }, consumed: { done: boolean }): AsyncGenerator<Buffer[]> {
    const hash = fileHash(d.size, this.offThread);
    let sha256: string;
    try {
      for await (const batch of this.input.take(d.size)) {
        let bytes = 0;
        for (const piece of batch) {
          const wait = hash.update(piece);
          if (wait) await wait;
          bytes += piece.length;
        }
        this.opts.onBytes?.(bytes);
        yield batch;
      }
      await this.input.exact(paddingFor(d.size));
      sha256 = await hash.digest();
    } finally {
      hash.dispose();
    }
    this.computed.push({ name: d.name, size: d.size, sha256 });
    consumed.done = true;
    if (d.sha256 !== undefined && d.sha256 !== sha256)
      throw new BackupError('digest_mismatch', `${this.opts.segmentId ?? 'segment'}/${d.name}: sha256 ${sha256} does not match ${d.sha256}`);
  }

  protected async end(): Promise<void> {
    const h = parseHeader(await this.input.exact(BLOCK));
    if (!h.nullBlock) throw new BackupError('bad_archive', `unexpected entry "${h.name.slice(0, 100)}" after the last declared one`);
    await this.input.expectEnd(MAX_TRAILING_ZEROS);
  }

  async close(): Promise<void> {
    await this.input.close();
  }
}

/** Reads an upload: `segment.json`, the files, then `digests.json`, checked by `finish()`. */
export class UploadReader extends SegmentTarReader<SegmentDeclaration> {
  protected headName = DECLARATION_NAME;
  protected offThread = false;
  protected parseHead(json: unknown): SegmentDeclaration {
    return parseDeclaration(json, this.opts.segmentId);
  }
  protected declared(head: SegmentDeclaration) {
    return head.files;
  }

  /** Reads the trailer and the end of the archive; returns the digests, each checked against what was received. */
  async finish(): Promise<SegmentFileInfo[]> {
    const head = await this.open();
    if (this.computed.length !== head.files.length) throw new BackupError('internal', 'finish() before every file was read');
    const trailer = parseTrailer(await this.jsonEntry(TRAILER_NAME));
    if (trailer.files.length !== head.files.length)
      throw new BackupError('bad_archive', `${TRAILER_NAME} lists ${trailer.files.length} files, ${DECLARATION_NAME} ${head.files.length}`);
    for (const [i, got] of this.computed.entries()) {
      const sent = trailer.files[i]!;
      if (sent.name !== got.name || sent.size !== got.size)
        throw new BackupError('bad_archive', `${TRAILER_NAME} entry ${i} is "${sent.name}" (${sent.size} bytes), expected "${got.name}" (${got.size} bytes)`);
      if (sent.sha256 !== got.sha256)
        throw new BackupError(
          'digest_mismatch',
          `${head.segmentId}/${got.name}: received bytes hash to ${got.sha256}, the sender read ${sent.sha256}; nothing was stored`,
        );
    }
    await this.end();
    return this.computed;
  }
}

/** Reads a download: `manifest.json`, then its files, each checked against the manifest's digest. */
export class DownloadReader extends SegmentTarReader<Manifest> {
  protected headName = MANIFEST_NAME;
  protected offThread = true;
  protected parseHead(json: unknown): Manifest {
    const planned = this.opts.planned;
    if (!planned) return parseManifest(json, this.opts.segmentId);
    // The answer names the segment asked and the planned digest; each file is then checked against the planned entry.
    const o = json && typeof json === 'object' ? (json as Record<string, unknown>) : {};
    checkPlanned({ segmentId: this.opts.segmentId ?? o.segmentId, digest: o.digest }, planned);
    checkPlanned(o, planned);
    return planned;
  }
  protected declared(head: Manifest) {
    return head.files;
  }

  async finish(): Promise<SegmentFileInfo[]> {
    await this.end();
    return this.computed;
  }
}
