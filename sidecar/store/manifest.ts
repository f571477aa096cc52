/**
 * The manifest of a backed-up segment: what `manifest.json` holds in a store directory (and the manifest object
 * in a bucket). An operator can restore by hand from it: the files sit beside it as plain files, each with its
 * size and sha256.
 */
import { createHash } from 'node:crypto';
import type { DataSegment } from '../druid/descriptor.js';

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
