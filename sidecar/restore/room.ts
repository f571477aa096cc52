/**
 * Room in a cache location, as Druid's `StorageLocation` counts it: segments may fill it up to `maxSize`, and
 * with `freeSpacePercent` the disk must keep that share of its total size free. A restore is refused before its
 * first byte when it does not fit.
 */
import { existsSync, statfsSync } from 'node:fs';
import path from 'node:path';
import { formatBytes } from '../druid/bytes.js';
import { messageOf, BackupError } from '../errors.js';

export interface Room {
  path: string;
  /** Bytes of segments already in the location, counted against maxSize. */
  used: number;
  maxSize?: number;
  /** Bytes an unprivileged writer may still put on the disk. */
  diskFree: number;
  /** Bytes Druid keeps free on the disk (total × freeSpacePercent / 100). */
  diskKeep: number;
}

/** Bytes the location takes before either limit is reached. */
export function freeBytes(r: Room): number {
  const quota = r.maxSize === undefined ? Infinity : r.maxSize - r.used;
  return Math.max(0, Math.min(quota, r.diskFree - r.diskKeep));
}

/** Whether `bytes` more fit; `replaced` bytes of an overwritten copy leave the maxSize count once the new one is in. */
export function fits(r: Room, bytes: number, replaced = 0): boolean {
  const quotaOk = r.maxSize === undefined || r.used - replaced + bytes <= r.maxSize;
  return quotaOk && r.diskFree - bytes >= r.diskKeep;
}

export function take(r: Room, bytes: number, replaced = 0): void {
  r.used += bytes - replaced;
  // The overwritten copy may share its inodes with deep storage (hard links), so removing it frees no disk.
  r.diskFree -= bytes;
}

export function describeRoom(r: Room): string {
  const free = freeBytes(r);
  const parts: string[] = [];
  if (r.maxSize !== undefined) parts.push(`maxSize ${formatBytes(r.maxSize)} with ${formatBytes(r.used)} of segments`);
  parts.push(`${formatBytes(Math.max(0, r.diskFree))} free on disk${r.diskKeep > 0 ? `, of which freeSpacePercent keeps ${formatBytes(r.diskKeep)}` : ''}`);
  return `${r.path} has ${formatBytes(free)} (${free} bytes) free (${parts.join('; ')})`;
}

/** Measures a location's disk now; `used` is the size of the segments a scan found in it. A location not made yet is measured on the disk it will be on. */
export function measureRoom(loc: { path: string; maxSize?: number; freeSpacePercent?: number }, used: number): Room {
  let st;
  let on = path.resolve(loc.path);
  while (!existsSync(on) && path.dirname(on) !== on) on = path.dirname(on);
  try {
    st = statfsSync(on);
  } catch (e) {
    throw new BackupError('bad_config', `cannot read the free space of ${loc.path}: ${messageOf(e)}`);
  }
  const total = st.blocks * st.bsize;
  return {
    path: loc.path,
    used,
    maxSize: loc.maxSize,
    diskFree: st.bavail * st.bsize,
    diskKeep: loc.freeSpacePercent ? Math.ceil((total * loc.freeSpacePercent) / 100) : 0,
  };
}
