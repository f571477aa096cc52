/**
 * Packs a segment for the wire (store/target.ts): `segment.json`, each file in declared order, `digests.json`.
 * Each file is read once, in 1 MiB pieces, hashed as the pieces go out; nothing larger than a piece is held. A small
 * segment whose files offer a small read (`readSmall`) is packed whole, in one buffer of at most WHOLE_BYTES.
 * A file that grows or shrinks while read fails the stream, so a receiver never stores a torn copy.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { abortError, BackupError } from '../errors.js';
import type { Manifest, SegmentFileInfo } from '../store/manifest.js';
import { MANIFEST_NAME } from '../store/manifest.js';
import type { OutgoingSegment, TransferOptions } from '../store/target.js';
import type { DigestsTrailer, SegmentDeclaration } from './format.js';
import { DECLARATION_NAME, TRAILER_NAME, WIRE_FORMAT_VERSION } from './format.js';
import { SMALL_READ_BYTES } from '../util/readStream.js';
import { BLOCK, END_OF_ARCHIVE, entryLength, fileHeader, padding } from './tar.js';

export interface PackedSegment {
  stream: Readable;
  /** Exact length of the stream in bytes, for Content-Length. */
  length: number;
  /** Resolves with the digests once the last byte went out; rejects when the stream failed. */
  files: Promise<SegmentFileInfo[]>;
}

function trailerJson(files: SegmentFileInfo[]): Buffer {
  const t: DigestsTrailer = { files };
  return Buffer.from(JSON.stringify(t));
}

/** Largest packed segment built whole in memory, when all its files offer a small read (see `packWhole`). */
export const WHOLE_BYTES = 256 * 1024;

const grew = (seg: OutgoingSegment, f: { name: string; size: number }) =>
  new BackupError('conflict', `${seg.segmentId}/${f.name} grew while it was read (expected ${f.size} bytes); it will be sent again once it settles`);
const shrank = (seg: OutgoingSegment, f: { name: string; size: number }, read: number) =>
  new BackupError('conflict', `${seg.segmentId}/${f.name} shrank while it was read (${read} of ${f.size} bytes); it will be sent again once it settles`);

/**
 * A small segment packed at once into one buffer of its exact `length`, each file read in one call (`readSmall`),
 * hashed, and its digest pushed to `digests`. For thousands of small segments the streamed path's per-piece
 * machinery (a stream per file, a promise per piece) cost more than the bytes (the source's profile of the first
 * backup of 10,000 small segments); this holds at most WHOLE_BYTES and makes the event loop wait for those reads.
 */
function packWhole(seg: OutgoingSegment, declBody: Buffer, mtime: Date, length: number, digests: SegmentFileInfo[], opts: TransferOptions): Buffer {
  return inOneBuffer(seg.segmentId, length, mtime, (entry) => {
    entry(DECLARATION_NAME, declBody);
    for (const f of seg.files) {
      const data = f.readSmall!();
      if (data.length > f.size) throw grew(seg, f);
      if (data.length < f.size) throw shrank(seg, f, data.length);
      entry(f.name, data);
      digests.push({ name: f.name, size: f.size, sha256: createHash('sha256').update(data).digest('hex') });
      opts.onBytes?.(f.size);
    }
    entry(TRAILER_NAME, trailerJson(digests));
  });
}

/** A whole tar of exactly `length` bytes in one buffer: the entries `fill` adds, then the end of the archive. */
function inOneBuffer(segmentId: string, length: number, mtime: Date, fill: (entry: (name: string, body: Buffer) => void) => void): Buffer {
  const out = Buffer.allocUnsafe(length);
  let at = 0;
  const put = (b: Buffer) => (at += b.copy(out, at));
  fill((name, body) => {
    fileHeader(name, body.length, mtime, out, at);
    at += BLOCK;
    put(body);
    put(padding(body.length));
  });
  put(END_OF_ARCHIVE);
  if (at !== length) throw new BackupError('internal', `${segmentId} packed to ${at} bytes, not the ${length} announced`);
  return out;
}

/** An entry holding a JSON document. */
function* jsonEntry(name: string, body: Buffer, mtime: Date): Generator<Buffer> {
  yield fileHeader(name, body.length, mtime);
  yield body;
  yield padding(body.length);
}

export function packSegment(seg: OutgoingSegment, opts: TransferOptions = {}): PackedSegment {
  const mtime = new Date();
  const declaration: SegmentDeclaration = {
    formatVersion: WIRE_FORMAT_VERSION,
    segmentId: seg.segmentId,
    descriptor: seg.descriptor,
    files: seg.files.map((f) => ({ name: f.name, size: f.size })),
  };
  const declBody = Buffer.from(JSON.stringify(declaration));
  // The trailer's length does not depend on the digests' values (64 hex digits each).
  const trailerLength = trailerJson(seg.files.map((f) => ({ name: f.name, size: f.size, sha256: '0'.repeat(64) }))).length;
  const length = entryLength(declBody.length) + seg.files.reduce((n, f) => n + entryLength(f.size), 0) + entryLength(trailerLength) + END_OF_ARCHIVE.length;

  let resolve!: (f: SegmentFileInfo[]) => void;
  let reject!: (e: unknown) => void;
  const files = new Promise<SegmentFileInfo[]>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  files.catch(() => undefined);

  let ended = false;
  const whole = length <= WHOLE_BYTES && seg.files.every((f) => f.readSmall);
  async function* generate(): AsyncGenerator<Buffer> {
    const digests: SegmentFileInfo[] = [];
    if (whole) {
      if (opts.signal?.aborted) throw abortError(opts.signal, 'transfer cancelled');
      yield packWhole(seg, declBody, mtime, length, digests, opts);
      ended = true;
      resolve(digests);
      return;
    }
    yield* jsonEntry(DECLARATION_NAME, declBody, mtime);
    for (const f of seg.files) {
      yield fileHeader(f.name, f.size, mtime);
      const hash = createHash('sha256');
      let read = 0;
      const input = f.open();
      try {
        for await (const chunk of input as AsyncIterable<Buffer>) {
          if (opts.signal?.aborted) throw abortError(opts.signal, 'transfer cancelled');
          read += chunk.length;
          if (read > f.size) throw grew(seg, f);
          hash.update(chunk);
          opts.onBytes?.(chunk.length);
          yield chunk;
        }
      } finally {
        input.destroy();
      }
      if (read !== f.size) throw shrank(seg, f, read);
      yield padding(f.size);
      digests.push({ name: f.name, size: f.size, sha256: hash.digest('hex') });
    }
    yield* jsonEntry(TRAILER_NAME, trailerJson(digests), mtime);
    yield END_OF_ARCHIVE;
    ended = true;
    resolve(digests);
  }

  const stream = Readable.from(generate(), { objectMode: false, highWaterMark: 1 << 20 });
  stream.on('error', (e) => reject(e));
  // Made only when needed: an error's stack costs more than a small segment's packing (the source's profile).
  stream.on('close', () => {
    if (!ended) reject(new BackupError('cancelled', 'the segment stream was closed before its end'));
  });
  return { stream, length, files };
}

/**
 * Packs a stored segment for `GET /data/v1/store/segments/{id}`: `manifest.json`, then each file in manifest order.
 * The receiver checks every file against the manifest's digests. With `readSmall`, a segment that packs to at most
 * WHOLE_BYTES, its files each at most SMALL_READ_BYTES, is read in place and packed in one buffer, as `packWhole`
 * does for a backup: a restore of thousands of small segments otherwise spent most of the target's CPU on a
 * stream per file (bench/backup.ts, the restore of 10,000 small segments).
 */
export function packStored(
  manifest: Manifest,
  open: (name: string) => Readable,
  opts: TransferOptions = {},
  readSmall?: (name: string, size: number) => Buffer,
): PackedSegment {
  const mtime = new Date(manifest.updatedAt || Date.now());
  const body = Buffer.from(JSON.stringify(manifest));
  const length = entryLength(body.length) + manifest.files.reduce((n, f) => n + entryLength(f.size), 0) + END_OF_ARCHIVE.length;
  const larger = (f: SegmentFileInfo) => new BackupError('digest_mismatch', `stored file ${manifest.segmentId}/${f.name} is larger than its manifest says`);
  const smaller = (f: SegmentFileInfo) => new BackupError('digest_mismatch', `stored file ${manifest.segmentId}/${f.name} is smaller than its manifest says`);
  const whole = readSmall && length <= WHOLE_BYTES && manifest.files.every((f) => f.size <= SMALL_READ_BYTES);
  async function* generate(): AsyncGenerator<Buffer> {
    if (whole) {
      if (opts.signal?.aborted) throw abortError(opts.signal, 'transfer cancelled');
      yield inOneBuffer(manifest.segmentId, length, mtime, (entry) => {
        entry(MANIFEST_NAME, body);
        for (const f of manifest.files) {
          const data = readSmall(f.name, f.size);
          if (data.length > f.size) throw larger(f);
          if (data.length < f.size) throw smaller(f);
          entry(f.name, data);
          opts.onBytes?.(f.size);
        }
      });
      return;
    }
    yield* jsonEntry(MANIFEST_NAME, body, mtime);
    for (const f of manifest.files) {
      yield fileHeader(f.name, f.size, mtime);
      let read = 0;
      const input = open(f.name);
      try {
        for await (const chunk of input as AsyncIterable<Buffer>) {
          if (opts.signal?.aborted) throw abortError(opts.signal, 'transfer cancelled');
          read += chunk.length;
          if (read > f.size) throw larger(f);
          opts.onBytes?.(chunk.length);
          yield chunk;
        }
      } finally {
        input.destroy();
      }
      if (read !== f.size) throw smaller(f);
      yield padding(f.size);
    }
    yield END_OF_ARCHIVE;
  }
  return { stream: Readable.from(generate(), { objectMode: false, highWaterMark: 1 << 20 }), length, files: Promise.resolve(manifest.files) };
}
