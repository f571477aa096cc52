/**
 * The manifest of a backed-up segment: what `manifest.json` holds in a store directory (and the manifest object
 * in a bucket). An operator can restore by hand from it: the files sit beside it as plain files, each with its
 * size and sha256.
 */
import { createHash } from 'node:crypto';
import type { StoredSegment } from '../api.js';
import type { DataSegment } from '../druid/descriptor.js';
import type { SegmentId } from '../druid/segmentId.js';
import { BackupError } from '../errors.js';
import type { OutgoingSegment } from './target.js';

export const MANIFEST_FORMAT_VERSION = 1;
export const MANIFEST_NAME = 'manifest.json';

export interface SegmentFileInfo {
  name: string;
  size: number;
  /** Lower-case hex sha256 of the file's bytes. */
  sha256: string;
}

/** A node that sent this segment, and what it sent. */
export interface SourceRecord {
  node: string;
  digest: string;
  at: string;
}

export interface Manifest {
  formatVersion: typeof MANIFEST_FORMAT_VERSION;
  segmentId: string;
  dataSource: string;
  /** `start/end` as in the segment id. */
  interval: string;
  version: string;
  partition: number;
  /** The DataSegment JSON from the node's info_dir, when it had one. */
  descriptor: DataSegment | null;
  files: SegmentFileInfo[];
  /** Sum of the file sizes. */
  size: number;
  /** `segmentDigest(files)`: equal digests mean byte-identical segments. */
  digest: string;
  sources: SourceRecord[];
  /** Replicas from other nodes whose bytes differ from the stored copy: flagged, never stored over it. */
  conflicts: SourceRecord[];
  createdAt: string;
  updatedAt: string;
}

/** A node name as carried in `X-Druid-Backup-Node` and in a manifest's sources. */
export function nodeNameProblem(node: unknown): string | undefined {
  if (typeof node !== 'string' || node.length === 0 || node.length > 255) return 'node name must be 1 to 255 characters';
  if (!/^[\x21-\x7e]+$/.test(node)) return 'node name must be printable ASCII without spaces';
  return undefined;
}

/** A name a segment file may have: Druid writes `version.bin`, `meta.smoosh`, `00000.smoosh`, `factory.json`, `druid.segment`. */
export function segmentFileNameProblem(name: string): string | undefined {
  if (typeof name !== 'string' || name.length === 0 || name.length > 255) return 'file name must be 1 to 255 characters';
  if (name === '.' || name === '..' || !/^[A-Za-z0-9._-]+$/.test(name)) return `file name "${name.slice(0, 100)}" is not a plain segment file name`;
  if (name === MANIFEST_NAME) return `a segment file may not be named ${MANIFEST_NAME}`;
  return undefined;
}

/** The digest of a whole segment: sha256 over `name\tsize\tsha256\n` lines sorted by name. */
export function segmentDigest(files: readonly SegmentFileInfo[]): string {
  const h = createHash('sha256');
  for (const f of [...files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) h.update(`${f.name}\t${f.size}\t${f.sha256}\n`);
  return h.digest('hex');
}

/**
 * Reads and hashes the files of a segment to send, sending nothing. A file that is not the size declared changed
 * while it was read: a `conflict`, tried again once it settles.
 */
export async function hashOutgoing(segment: Pick<OutgoingSegment, 'segmentId' | 'files'>, signal?: AbortSignal): Promise<SegmentFileInfo[]> {
  const files: SegmentFileInfo[] = [];
  for (const f of segment.files) {
    const h = createHash('sha256');
    let n = 0;
    for await (const chunk of f.open() as AsyncIterable<Buffer>) {
      if (signal?.aborted) throw new BackupError('cancelled', `backup of ${segment.segmentId} cancelled`);
      h.update(chunk);
      n += chunk.length;
    }
    if (n !== f.size)
      throw new BackupError('conflict', `${segment.segmentId}/${f.name} changed size while it was read; it will be tried again once it settles`);
    files.push({ name: f.name, size: n, sha256: h.digest('hex') });
  }
  return files;
}

/** The manifest of a segment's first copy on a target, sent by `node` with these files. */
export function newManifest(
  segmentId: string,
  parts: SegmentId,
  descriptor: DataSegment | null,
  files: SegmentFileInfo[],
  node: string,
  now = new Date().toISOString(),
): Manifest {
  const digest = segmentDigest(files);
  return {
    formatVersion: MANIFEST_FORMAT_VERSION,
    segmentId,
    dataSource: parts.dataSource,
    interval: `${parts.start}/${parts.end}`,
    version: parts.version,
    partition: parts.partition,
    descriptor,
    files,
    size: files.reduce((n, f) => n + f.size, 0),
    digest,
    sources: [{ node, digest, at: now }],
    conflicts: [],
    createdAt: now,
    updatedAt: now,
  };
}

/** A stored segment as a catalog lists it (`GET /data/v1/store/segments`): its manifest without the file list. */
export function catalogEntry(m: Manifest): StoredSegment {
  return {
    segmentId: m.segmentId,
    dataSource: m.dataSource,
    interval: m.interval,
    version: m.version,
    partition: m.partition,
    size: m.size,
    fileCount: m.files.length,
    digest: m.digest,
    sources: [...new Set(m.sources.map((s) => s.node))],
    conflicts: [...new Set(m.conflicts.map((s) => s.node))],
    createdAt: m.createdAt,
    updatedAt: m.updatedAt,
  };
}
