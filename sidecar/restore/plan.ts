/**
 * The restore planner: pure. From the selected manifests, what the destination already holds and the room it
 * has, it decides per segment whether to restore it, skip it (present with the manifest's exact bytes) or
 * overwrite it (present but different), where it goes, and refuses a plan that does not fit before any byte
 * is written. The shell (restorer.ts) gathers the inputs and carries the plan out.
 */
import path from 'node:path';
import type { RestoreDestination, RestorePlan, RestorePlanItem } from '../api.js';
import { formatBytes } from '../druid/bytes.js';
import type { CacheLayout } from '../druid/layout.js';
import { cacheSegmentPath, checkSegmentParts, deepStoragePath, infoFilePath, quoteId } from '../druid/paths.js';
import type { SegmentId } from '../druid/segmentId.js';
import { segmentIdOf } from '../druid/segmentId.js';
import { BackupError, isBackupError, messageOf } from '../errors.js';
import type { Manifest } from '../store/manifest.js';
import { segmentFileNameProblem } from '../store/manifest.js';
import type { Room } from './room.js';
import { describeRoom, fits, take } from './room.js';

/** A file the destination already holds; `sha256` is there when names and sizes matched, so hashing was worth it. */
export interface PresentFile {
  name: string;
  size: number;
  sha256?: string;
}

/** What the destination holds of a segment now. */
export interface PresentCopy {
  /** The segment directory, `index/` directory or `index.zip`. */
  path: string;
  /** The cache location it sits in (cache destinations). */
  location?: string;
  /** Its files; undefined when they cannot be compared without unpacking (an `index.zip`). */
  files?: PresentFile[];
  /** Bytes it takes now. */
  size: number;
  /** Druid is downloading it right now (`downloadStartMarker`). */
  downloading?: boolean;
}

/** Where a restore writes: a node's cache (or a directory laid out like one), or its local deep storage. */
export type DestinationSpec =
  | { kind: 'cache'; name: RestoreDestination; layout: CacheLayout; infoDir: string; rooms: Room[] }
  | { kind: 'deep-storage'; name: RestoreDestination; directory: string; room: Room };

export interface PlannedSegment extends RestorePlanItem {
  manifest: Manifest;
  segment: SegmentId;
  /** Cache location it goes to (cache destinations). */
  location?: string;
  /** The info_dir file to write (cache destinations, when the backup has a descriptor). */
  infoFile?: string;
  /** False when the files are already right and only the info_dir descriptor is missing. */
  writeFiles: boolean;
  /** Bytes to transfer. */
  bytes: number;
  /** Bytes of the present copy an overwrite replaces. */
  replaced: number;
}

export interface PlanInput {
  target: string;
  destination: DestinationSpec;
  manifests: Manifest[];
  /** Keyed by segment id. */
  present: Map<string, PresentCopy>;
  /** Segment ids whose info_dir descriptor exists (cache destinations). */
  infoFiles?: Set<string>;
}

export interface Plan {
  plan: RestorePlan;
  items: PlannedSegment[];
  /** Segments whose manifest or paths were refused: each fails with its reason, the rest of the restore goes on. */
  refused: Array<{ segmentId: string; message: string }>;
}

/** Checks a manifest that came from a target before anything is written from it. */
export function checkManifest(m: Manifest, target: string): SegmentId {
  const bad = (msg: string) => new BackupError('target_error', `target ${target}: manifest of ${quoteId(m?.segmentId)} ${msg}`);
  if (!m || typeof m !== 'object' || typeof m.segmentId !== 'string' || !Array.isArray(m.files)) throw bad('is malformed');
  const [start, end, ...rest] = String(m.interval).split('/');
  // The path rule first: a target's fields that could name a path outside a root are refused as such.
  checkSegmentParts({ id: m.segmentId, dataSource: m.dataSource, start: start ?? '', end: end ?? '', version: m.version, partition: m.partition });
  let seg: SegmentId;
  try {
    if (!start || !end || rest.length) throw new Error();
    seg = segmentIdOf({ dataSource: m.dataSource, start, end, version: m.version, partition: m.partition });
  } catch {
    throw bad('has no valid dataSource, interval, version and partition');
  }
  if (seg.id !== m.segmentId) throw bad(`names segment ${quoteId(seg.id)} in its fields`);
  const names = new Set<string>();
  for (const f of m.files) {
    const problem = segmentFileNameProblem(f?.name);
    if (problem) throw bad(`lists a bad file: ${problem}`);
    if (names.has(f.name)) throw bad(`lists ${f.name} twice`);
    if (!Number.isSafeInteger(f.size) || f.size < 0 || typeof f.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(f.sha256))
      throw bad(`has no valid size and sha256 for ${f.name}`);
    names.add(f.name);
  }
  if (m.files.length === 0) throw bad('lists no files');
  return seg;
}

/** Why a present copy differs from the manifest, or undefined when it holds exactly the manifest's bytes. */
export function difference(manifest: Manifest, files: readonly PresentFile[]): string | undefined {
  const have = new Map(files.map((f) => [f.name, f]));
  const problems: string[] = [];
  for (const want of manifest.files) {
    const f = have.get(want.name);
    if (!f) problems.push(`${want.name} missing`);
    else if (f.size !== want.size) problems.push(`${want.name} has ${f.size} bytes, the backup ${want.size}`);
    else if (f.sha256 !== want.sha256) problems.push(f.sha256 ? `${want.name} differs` : `${want.name} not compared`);
    have.delete(want.name);
  }
  for (const extra of have.keys()) problems.push(`${extra} not in the backup`);
  if (problems.length === 0) return undefined;
  return problems.length > 3 ? `${problems.slice(0, 3).join('; ')}; and ${problems.length - 3} more` : problems.join('; ');
}

/** Where a manifest's segment goes in local deep storage (paths.ts: its loadSpec path, confined to `directory`). */
export function deepStoragePathOf(m: Manifest, segment: SegmentId, directory: string): string {
  return deepStoragePath(segment, m.descriptor?.loadSpec, directory);
}

export function isZipPath(p: string): boolean {
  return p.toLowerCase().endsWith('.zip');
}

function compare(m: Manifest, copy: PresentCopy): { match: boolean; reason?: string } {
  if (!copy.files) return { match: false, reason: `${path.basename(copy.path)} exists; replaced by the verified backup` };
  const diff = difference(m, copy.files);
  return diff ? { match: false, reason: diff } : { match: true };
}

/**
 * What refuses one segment rather than the whole plan: a malformed manifest, an id or loadSpec that could name no
 * path inside its root, a loadSpec this node's deep storage cannot take.
 */
const REFUSALS = new Set(['target_error', 'bad_segment_id', 'bad_request']);

export function planRestore(input: PlanInput): Plan {
  const { target } = input;
  // Rooms are counted down while placing; the caller's stay as measured.
  const dest =
    input.destination.kind === 'cache'
      ? { ...input.destination, rooms: input.destination.rooms.map((r) => ({ ...r })) }
      : { ...input.destination, measured: input.destination.room };
  const items: PlannedSegment[] = [];
  const needRoom: PlannedSegment[] = [];
  const refused: Plan['refused'] = [];
  for (const m of input.manifests) {
    let segment: SegmentId;
    let deepPath = '';
    let infoFile: string | undefined;
    try {
      segment = checkManifest(m, target);
      if (dest.kind === 'deep-storage') deepPath = deepStoragePathOf(m, segment, dest.directory);
      else if (m.descriptor) infoFile = infoFilePath(dest.infoDir, segment);
    } catch (e) {
      if (!isBackupError(e) || !REFUSALS.has(e.code)) throw e;
      refused.push({ segmentId: typeof m?.segmentId === 'string' ? m.segmentId : String(m?.segmentId), message: messageOf(e) });
      continue;
    }
    const copy = input.present.get(m.segmentId);
    const base = { segmentId: m.segmentId, size: m.size, manifest: m, segment };
    if (dest.kind === 'deep-storage') {
      const p = deepPath;
      if (!copy) {
        needRoom.push({ ...base, action: 'restore', path: p, writeFiles: true, bytes: m.size, replaced: 0 });
        continue;
      }
      const c = compare(m, copy);
      if (c.match) items.push({ ...base, action: 'skip', reason: 'present with the backed-up bytes', path: p, writeFiles: false, bytes: 0, replaced: 0 });
      else needRoom.push({ ...base, action: 'overwrite', reason: c.reason, path: p, writeFiles: true, bytes: m.size, replaced: copy.size });
      continue;
    }
    if (!copy) {
      needRoom.push({ ...base, action: 'restore', path: '', infoFile, writeFiles: true, bytes: m.size, replaced: 0 });
      continue;
    }
    if (copy.downloading) {
      items.push({
        ...base,
        action: 'skip',
        reason: 'Druid is downloading it now (downloadStartMarker)',
        path: copy.path,
        location: copy.location,
        writeFiles: false,
        bytes: 0,
        replaced: 0,
      });
      continue;
    }
    const c = compare(m, copy);
    const hasInfo = input.infoFiles?.has(m.segmentId) ?? false;
    if (c.match && (hasInfo || !infoFile)) {
      items.push({
        ...base,
        action: 'skip',
        reason: 'present with the backed-up bytes',
        path: copy.path,
        location: copy.location,
        writeFiles: false,
        bytes: 0,
        replaced: 0,
      });
    } else if (c.match) {
      items.push({
        ...base,
        action: 'restore',
        reason: 'files match; writes the missing info_dir descriptor',
        path: copy.path,
        location: copy.location,
        infoFile,
        writeFiles: false,
        bytes: 0,
        replaced: 0,
      });
    } else {
      needRoom.push({
        ...base,
        action: 'overwrite',
        reason: c.reason,
        path: copy.path,
        location: copy.location,
        infoFile,
        writeFiles: true,
        bytes: m.size,
        replaced: copy.size,
      });
    }
  }
  if (dest.kind === 'deep-storage') {
    const needed = needRoom.reduce((n, s) => n + s.bytes, 0);
    if (!fits(dest.room, needed)) throw noSpace([dest.measured], needed, needRoom.length, 'deep storage');
  } else {
    assignLocations(dest, needRoom, input.destination.kind === 'cache' ? input.destination.rooms : []);
  }
  items.push(...needRoom);
  items.sort((a, b) => (a.segmentId < b.segmentId ? -1 : a.segmentId > b.segmentId ? 1 : 0));
  const count = (a: RestorePlanItem['action']) => items.filter((s) => s.action === a).length;
  return {
    items,
    refused,
    plan: {
      target,
      destination: dest.name,
      segments: items.map(({ segmentId, size, action, reason, path: p }) =>
        reason ? { segmentId, size, action, reason, path: p } : { segmentId, size, action, path: p },
      ),
      ...(refused.length ? { refused: refused.map(({ segmentId, message }) => ({ segmentId, reason: message })) } : {}),
      totals: {
        segments: items.length,
        bytes: items.reduce((n, s) => n + s.bytes, 0),
        restore: count('restore'),
        skip: count('skip'),
        overwrite: count('overwrite'),
      },
    },
  };
}

function noSpace(rooms: Room[], needed: number, segments: number, what: string): BackupError {
  const where = rooms.map((r) => describeRoom(r)).join('; ');
  return new BackupError(
    'no_space',
    `not enough room in the ${what}: the restore needs ${formatBytes(needed)} (${needed} bytes) for ${segments} segment${segments === 1 ? '' : 's'}; ${where}`,
  );
}

/**
 * Places each new segment in a cache location with room, the least used first (Druid's default
 * `leastBytesUsed` strategy); an overwrite stays where the present copy is. Larger segments are placed first.
 */
function assignLocations(dest: Extract<DestinationSpec, { kind: 'cache' }>, items: PlannedSegment[], measured: Room[]): void {
  const byPath = new Map(dest.rooms.map((r) => [r.path, r]));
  // Errors describe the rooms as measured, not as counted down while placing.
  const asMeasured = (r: Room) => measured.find((m) => m.path === r.path) ?? r;
  const needed = items.reduce((n, s) => n + s.bytes, 0);
  for (const s of [...items].sort((a, b) => b.bytes - a.bytes)) {
    let room: Room | undefined;
    if (s.location) {
      room = byPath.get(s.location);
      if (room && !fits(room, s.bytes, s.replaced)) throw noSpace([asMeasured(room)], needed, items.length, `cache location ${room.path}`);
    } else {
      room = dest.rooms.filter((r) => fits(r, s.bytes)).sort((a, b) => a.used - b.used)[0];
      if (!room) throw noSpace(dest.rooms.map(asMeasured), needed, items.length, 'cache');
      s.location = room.path;
      s.path = cacheSegmentPath(room.path, s.segment, dest.layout);
    }
    if (room) take(room, s.bytes, s.replaced);
  }
}
