/** Manifests and segment readers made from real files of a sample cache, for the restore unit tests. */
import { createReadStream, readFileSync } from 'node:fs';
import path from 'node:path';
import type { CachedSegment } from '../../../sidecar/druid/scan.js';
import { hashFile } from '../../../sidecar/restore/digests.js';
import type { Manifest } from '../../../sidecar/store/manifest.js';
import { MANIFEST_FORMAT_VERSION, segmentDigest } from '../../../sidecar/store/manifest.js';
import type { IncomingFile, SegmentReader } from '../../../sidecar/store/target.js';

export async function manifestOf(s: CachedSegment): Promise<Manifest> {
  const files = [];
  for (const f of s.files) files.push({ name: f.name, ...(await hashFile(path.join(s.dir, f.name))) });
  const now = new Date().toISOString();
  return {
    formatVersion: MANIFEST_FORMAT_VERSION,
    segmentId: s.id,
    dataSource: s.dataSource,
    interval: s.interval,
    version: s.version,
    partition: s.partition,
    descriptor: s.descriptor ?? null,
    files,
    size: files.reduce((n, f) => n + f.size, 0),
    digest: segmentDigest(files),
    sources: [{ node: 'test:8083', digest: segmentDigest(files), at: now }],
    conflicts: [],
    createdAt: now,
    updatedAt: now,
  };
}

/** Reads a segment's files back from `dir`, in manifest order (or as `names` says, to test a misbehaving target). */
export function readerFrom(dir: string, manifest: Manifest, names: string[] = manifest.files.map((f) => f.name)): SegmentReader {
  async function* files(): AsyncGenerator<IncomingFile> {
    for (const name of names) {
      const f = manifest.files.find((x) => x.name === name);
      yield { name, size: f?.size ?? 0, chunks: createReadStream(path.join(dir, name)) };
    }
  }
  return { manifest, files: files() };
}

/**
 * Like `readerFrom`, but each file comes as batches of `slice`-byte views of its bytes (as the http target's reader
 * hands on a socket's reads), `perBatch` slices a batch; `edit` may change a file's bytes on the way.
 */
export function batchedReaderFrom(
  dir: string,
  manifest: Manifest,
  slice: number,
  perBatch: number,
  edit: (name: string, bytes: Buffer) => Buffer = (_, b) => b,
): SegmentReader {
  async function* batches(bytes: Buffer): AsyncGenerator<Buffer[]> {
    for (let at = 0; at < bytes.length; at += slice * perBatch) {
      const batch: Buffer[] = [];
      for (let i = at; i < Math.min(bytes.length, at + slice * perBatch); i += slice) batch.push(bytes.subarray(i, Math.min(bytes.length, i + slice)));
      yield batch;
    }
  }
  async function* files(): AsyncGenerator<IncomingFile> {
    for (const f of manifest.files) yield { name: f.name, size: f.size, chunks: batches(edit(f.name, readFileSync(path.join(dir, f.name)))) };
  }
  return { manifest, files: files() };
}
