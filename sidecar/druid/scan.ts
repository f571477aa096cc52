/**
 * Scans a node's segment cache: every segment directory in every location, in either layout, with its files,
 * state and descriptor from `info_dir`. Anything that is not a segment is reported as an issue, never fatal.
 */
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import type { Dirent, Stats } from 'node:fs';
import path from 'node:path';
import type { DataSegment } from './descriptor.js';
import { segmentIdOfDescriptor } from './descriptor.js';
import type { CacheLayout } from './layout.js';
import { type NestedInterval, nestedInterval, nestedPartsKey, segmentOfNestedParts } from './layout.js';
import type { SegmentId } from './segmentId.js';
import { tryParseSegmentId } from './segmentId.js';
import { messageOf } from '../errors.js';

export const DOWNLOAD_MARKER = 'downloadStartMarker';
/** A v9 segment has `version.bin`; the v10 format (Druid 36) is the single file `druid.segment`. */
export const SEGMENT_MARKERS = ['version.bin', 'druid.segment'] as const;
/** Prefix of the sidecar's own staging directories inside a location; never a segment. */
export const STAGING_PREFIX = '.druid-backup-';

export type SegmentState = 'complete' | 'downloading' | 'incomplete';

export interface CachedFile {
  name: string;
  size: number;
  mtimeMs: number;
  ino: number;
  nlink: number;
}

export interface CachedSegment extends SegmentId {
  interval: string;
  location: string;
  dir: string;
  layout: CacheLayout;
  state: SegmentState;
  size: number;
  files: CachedFile[];
  /** Latest modification time of the directory or any of its files. */
  mtimeMs: number;
  /**
   * The directory's own inode, mtime and ctime when its entries were listed, and when (Date.now()): set only when
   * the listing was clean (files only, nothing to report), for the next scan to reuse it (see `reusableListing`).
   */
  listing?: DirListing;
  descriptor?: DataSegment;
  infoFile?: string;
}

/** An `info_dir` entry whose segment has no directory in any location: lost files, or a drop under way. */
export interface MissingSegment extends SegmentId {
  interval: string;
  descriptor: DataSegment;
  infoFile: string;
}

export interface ScanIssue {
  path: string;
  problem: string;
}

export interface CacheLocationConfig {
  path: string;
  maxSize?: number;
  freeSpacePercent?: number;
}

export interface CacheScan {
  segments: CachedSegment[];
  missing: MissingSegment[];
  issues: ScanIssue[];
  /** The layout the cache uses; `mixed` while Druid is migrating nested directories to flat names. */
  layout: CacheLayout | 'mixed' | 'empty';
  durationMs: number;
}

export interface InfoEntry {
  descriptor: DataSegment;
  file: string;
  seg: SegmentId;
}

/**
 * The scan uses synchronous calls, which cost a few microseconds each where the thread-pool round trip of the
 * async ones costs tens (10,000 segments: about 0.3 s against 2.8 s), and yields to the event loop every
 * YIELD_EVERY directories so the API stays responsive during a large scan.
 */
const YIELD_EVERY = 250;
let sinceYield = 0;
/** Whether YIELD_EVERY directories were read since the last yield (counting this one). */
function yieldDue(): boolean {
  if (++sinceYield < YIELD_EVERY) return false;
  sinceYield = 0;
  return true;
}
const yieldNow = () => new Promise<void>((r) => setImmediate(r));

function readDirSafe(dir: string, issues: ScanIssue[]): Dirent[] {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return [];
    issues.push({ path: dir, problem: `cannot read directory: ${messageOf(e)}` });
    return [];
  }
}

/** A parsed `info_dir` entry with the identity of the file it was read from. */
interface KnownInfo {
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  entry: InfoEntry;
}

/**
 * The descriptors of the last read of each `info_dir` (the few most recently read), by file name. A descriptor is
 * written once when Druid loads a segment, so a file with the same inode, size, mtime and ctime holds what was
 * parsed last time: one lstat instead of open, read, close and a JSON parse per segment on every scan. Any
 * rewrite, even in place with the same size, changes the ctime.
 */
const knownInfo = new Map<string, Map<string, KnownInfo>>();
const KNOWN_INFO_DIRS = 8;

function sameInfoFile(k: KnownInfo, st: { ino: number; size: number; mtimeMs: number; ctimeMs: number }): boolean {
  return k.ino === st.ino && k.size === st.size && k.mtimeMs === st.mtimeMs && k.ctimeMs === st.ctimeMs;
}

/** Reads every descriptor in `info_dir`, keyed by segment id. Unreadable or foreign files become issues. */
export async function readInfoDir(infoDir: string, issues: ScanIssue[] = []): Promise<Map<string, InfoEntry>> {
  const entries = readDirSafe(infoDir, issues);
  const before = knownInfo.get(infoDir);
  const now = new Map<string, KnownInfo>();
  const out = new Map<string, InfoEntry>();
  for (const e of entries) {
    if (yieldDue()) await yieldNow();
    const file = childPath(infoDir, e.name);
    if (e.name.startsWith('.')) continue;
    if (!e.isFile()) {
      issues.push({ path: file, problem: 'not a regular file in info_dir' });
      continue;
    }
    try {
      const st = lstatSync(file, { throwIfNoEntry: false });
      if (!st) continue; // dropped while we read
      const k = infoFileEntry(file, e.name, st, before?.get(e.name));
      if (typeof k === 'string') {
        issues.push({ path: file, problem: k });
        continue;
      }
      now.set(e.name, k);
      out.set(k.entry.seg.id, k.entry);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') continue; // dropped while we read
      issues.push({ path: file, problem: `not a segment descriptor: ${messageOf(err)}` });
    }
  }
  rememberInfoDir(infoDir, now);
  return out;
}

/**
 * The entry of the `info_dir` file `file` (named `name`, of lstat `st`): `last` itself when the file is the one it
 * was read from, else read and parsed anew. A descriptor of another segment comes back as the problem to report;
 * a read or a parse that fails throws.
 */
function infoFileEntry(file: string, name: string, st: Stats, last: KnownInfo | undefined): KnownInfo | string {
  if (last && sameInfoFile(last, st)) return last;
  const descriptor = JSON.parse(readFileSync(file, 'utf8')) as DataSegment;
  const seg = segmentIdOfDescriptor(descriptor);
  if (seg.id !== name) return `info file names ${name} but its descriptor is segment ${seg.id}`;
  return { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, entry: { descriptor, file, seg } };
}

/** Keeps `known` as what was last read of `infoDir`, the most recent of the KNOWN_INFO_DIRS kept. */
function rememberInfoDir(infoDir: string, known: Map<string, KnownInfo>): void {
  knownInfo.delete(infoDir);
  knownInfo.set(infoDir, known);
  if (knownInfo.size > KNOWN_INFO_DIRS) knownInfo.delete(knownInfo.keys().next().value!);
}

/**
 * One `info_dir` file's descriptor, by the rule of `readInfoDir`: parsed again only when its file changed, else the
 * entry read last. Undefined when the file is absent, unreadable, or holds another segment's descriptor.
 */
export function readInfoFile(infoDir: string, name: string): InfoEntry | undefined {
  const file = childPath(infoDir, name);
  try {
    const st = lstatSync(file, { throwIfNoEntry: false });
    if (!st?.isFile()) return undefined;
    const known = knownInfo.get(infoDir);
    const k = infoFileEntry(file, name, st, known?.get(name));
    if (typeof k === 'string') return undefined;
    if (known) known.set(name, k);
    else rememberInfoDir(infoDir, new Map([[name, k]]));
    return k.entry;
  } catch {
    return undefined;
  }
}

/**
 * The segment with the descriptor and file of its `info_dir` entry (none when `entry` is undefined): `s` itself when
 * it has them already, else a copy when `s` is `kept` (an object a holder keeps and compares, never changed in
 * place), else `s` updated.
 */
export function withInfo(s: CachedSegment, entry: InfoEntry | undefined, kept: CachedSegment | undefined): CachedSegment {
  if (s.descriptor === entry?.descriptor && s.infoFile === entry?.file) return s;
  const out = s === kept ? { ...s } : s;
  if (entry) {
    out.descriptor = entry.descriptor;
    out.infoFile = entry.file;
  } else {
    delete out.descriptor;
    delete out.infoFile;
  }
  return out;
}

/** A directory entry's path: names read from a directory hold no separator, so no normalising `path.join`. */
function childPath(dir: string, name: string): string {
  return dir.endsWith(path.sep) ? dir + name : dir + path.sep + name;
}

/**
 * Whether a directory read finds what `previous` (its last read) holds: then the scan keeps that object instead of
 * a new one, so a scan of an unchanged cache leaves only short-lived garbage. A new object per segment per scan
 * outlives V8's 1 MiB young generation (sidecar/runtime.ts) and is freed by the old generation's collector: at
 * 10,000 segments that was a third of a no-change backup's CPU.
 */
function sameRead(previous: CachedSegment, dir: string, layout: CacheLayout, state: SegmentState, mtimeMs: number, files: CachedFile[]): boolean {
  if (previous.dir !== dir || previous.layout !== layout || previous.state !== state || previous.mtimeMs !== mtimeMs) return false;
  if (previous.files.length !== files.length) return false;
  for (let i = 0; i < files.length; i++) {
    const a = previous.files[i]!;
    const b = files[i]!;
    if (a.name !== b.name || a.size !== b.size || a.mtimeMs !== b.mtimeMs || a.ino !== b.ino || a.nlink !== b.nlink) return false;
  }
  return true;
}

export interface DirListing {
  ino: number;
  mtimeMs: number;
  ctimeMs: number;
  at: number;
}

/**
 * How long after a directory's last change its listing must have been read to be reused: a change within the same
 * tick of the filesystem's clock as the one before it leaves mtime and ctime as they were, so a listing read within
 * that tick might miss it (git's "racy" entries). A second is many ticks of any clock.
 */
const SETTLED_MS = 1000;

/**
 * Whether the names of `previous`'s files are still the directory's entries: adding, removing or renaming an entry
 * (Druid's downloadStartMarker included) changes the directory's mtime and ctime, so a directory whose inode, mtime
 * and ctime are those of a clean listing read well after its last change holds the same entries, and need not be
 * listed again (one system call instead of four, and no objects made per entry). Its files are still lstat'ed one by
 * one: a file changed in place shows only in its own mtime.
 */
function reusableListing(previous: CachedSegment | undefined, dir: string, st: { ino: number; mtimeMs: number; ctimeMs: number }): boolean {
  const l = previous?.listing;
  return (
    !!l &&
    previous!.dir === dir &&
    previous!.state === 'complete' &&
    l.ino === st.ino &&
    l.mtimeMs === st.mtimeMs &&
    l.ctimeMs === st.ctimeMs &&
    settled(l)
  );
}

const settled = (l: DirListing) => l.at - Math.max(l.mtimeMs, l.ctimeMs) > SETTLED_MS;

/** Whether two listings are of the same state of the directory, and both reusable or neither. */
function sameListing(a: DirListing | undefined, b: DirListing | undefined): boolean {
  return a === b || (!!a && !!b && a.ino === b.ino && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && settled(a) === settled(b));
}

/**
 * The common case of a rescan, decided without building anything: a segment whose listing is reused (so its names
 * are those of `previous`, complete) and whose every file lstats as `previous` recorded it (a regular file of the
 * same size, mtime, inode and link count). Anything else, a failed lstat included, is for the full read.
 */
function filesUnchanged(dir: string, previous: CachedSegment, dirMtimeMs: number): boolean {
  let mtimeMs = dirMtimeMs;
  try {
    for (const f of previous.files) {
      const st = lstatSync(childPath(dir, f.name), { throwIfNoEntry: false });
      if (!st?.isFile() || st.size !== f.size || st.mtimeMs !== f.mtimeMs || st.ino !== f.ino || st.nlink !== f.nlink) return false;
      if (st.mtimeMs > mtimeMs) mtimeMs = st.mtimeMs;
    }
  } catch {
    return false;
  }
  return mtimeMs === previous.mtimeMs;
}

/**
 * Reads one segment directory: its files, sizes and state. Given `previous`, the segment as last read, it returns
 * that same object when nothing it records has changed.
 */
export async function readSegmentDir(
  location: string,
  dir: string,
  seg: SegmentId,
  layout: CacheLayout,
  issues: ScanIssue[] = [],
  previous?: CachedSegment,
): Promise<CachedSegment | undefined> {
  if (yieldDue()) await yieldNow();
  return readSegmentDirNow(location, dir, seg, layout, issues, previous);
}

/** readSegmentDir without the yield: the scan's walk yields itself, and makes no promise a segment. */
function readSegmentDirNow(
  location: string,
  dir: string,
  seg: SegmentId,
  layout: CacheLayout,
  issues: ScanIssue[],
  previous: CachedSegment | undefined,
): CachedSegment | undefined {
  const dirStat = lstatSync(dir, { throwIfNoEntry: false });
  if (!dirStat?.isDirectory()) return undefined;
  const reuse = reusableListing(previous, dir, dirStat);
  if (reuse && previous!.layout === layout && filesUnchanged(dir, previous!, dirStat.mtimeMs)) return previous;
  const listedAt = Date.now();
  const issuesBefore = issues.length;
  const names = reuse ? previous!.files.map((f) => f.name) : readDirSafe(dir, issues);
  const files: CachedFile[] = [];
  let marker = false;
  let mtimeMs = dirStat.mtimeMs;
  for (const e of names) {
    const name = typeof e === 'string' ? e : e.name;
    const p = childPath(dir, name);
    if (name === DOWNLOAD_MARKER) {
      marker = true;
      continue;
    }
    if (typeof e !== 'string' && !e.isFile()) {
      issues.push({ path: p, problem: e.isDirectory() ? 'unexpected directory inside a segment' : 'not a regular file inside a segment' });
      continue;
    }
    try {
      const st = lstatSync(p, { throwIfNoEntry: false });
      if (!st) continue; // removed while we read
      if (!st.isFile()) issues.push({ path: p, problem: 'not a regular file inside a segment' });
      else {
        files.push({ name, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, nlink: st.nlink });
        if (st.mtimeMs > mtimeMs) mtimeMs = st.mtimeMs;
      }
    } catch (err) {
      issues.push({ path: p, problem: `cannot stat: ${messageOf(err)}` });
    }
  }
  files.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const hasData = files.some((f) => (SEGMENT_MARKERS as readonly string[]).includes(f.name));
  const state: SegmentState = marker ? 'downloading' : hasData ? 'complete' : 'incomplete';
  const clean = issues.length === issuesBefore && files.length === names.length;
  // A reused listing is kept as it was: the entries it names are the directory's still.
  const listing = reuse ? previous!.listing : clean ? { ino: dirStat.ino, mtimeMs: dirStat.mtimeMs, ctimeMs: dirStat.ctimeMs, at: listedAt } : undefined;
  if (previous && sameRead(previous, dir, layout, state, mtimeMs, files) && (reuse || sameListing(previous.listing, listing))) return previous;
  // The id's fields by name: `seg` may be a segment of the last scan, whose other fields are not this read's.
  return {
    id: seg.id,
    dataSource: seg.dataSource,
    start: seg.start,
    end: seg.end,
    startMs: seg.startMs,
    endMs: seg.endMs,
    version: seg.version,
    partition: seg.partition,
    interval: `${seg.start}/${seg.end}`,
    location,
    dir,
    layout,
    state,
    size: files.reduce((n, f) => n + f.size, 0),
    files,
    mtimeMs,
    ...(listing ? { listing } : {}),
  };
}

/**
 * Walks a nested data source directory, handing each segment directory to `visit` as it is found. A directory where
 * the last scan found a segment (`previous`) is that segment: the same four path parts make the same id, so they
 * are not parsed again.
 */
async function collectNested(
  dsDir: string,
  dataSource: string,
  issues: ScanIssue[],
  previous: ((id: string) => CachedSegment | undefined) | undefined,
  visit: (dir: string, seg: SegmentId) => void,
): Promise<void> {
  for (const iv of readDirSafe(dsDir, issues)) {
    if (yieldDue()) await yieldNow();
    const ivPath = childPath(dsDir, iv.name);
    if (!iv.isDirectory()) {
      issues.push({ path: ivPath, problem: 'stray file where an interval directory was expected' });
      continue;
    }
    // Parsed once for every segment under it, and only when one of them is not known from the last scan.
    let interval: NestedInterval | undefined | null = null;
    for (const ver of readDirSafe(ivPath, issues)) {
      const verPath = childPath(ivPath, ver.name);
      if (!ver.isDirectory()) {
        issues.push({ path: verPath, problem: 'stray file where a version directory was expected' });
        continue;
      }
      for (const part of readDirSafe(verPath, issues)) {
        const partPath = childPath(verPath, part.name);
        const last = part.isDirectory() ? previous?.(nestedPartsKey(dataSource, iv.name, ver.name, part.name)) : undefined;
        let seg: SegmentId | undefined = last?.dir === partPath ? last : undefined;
        if (!seg && part.isDirectory()) {
          if (interval === null) interval = nestedInterval(iv.name);
          seg = segmentOfNestedParts(dataSource, interval, ver.name, part.name);
        }
        if (!seg) {
          issues.push({
            path: partPath,
            problem: part.isDirectory()
              ? `not a segment directory (expected ${dataSource}/<start>_<end>/<version>/<partitionNum>)`
              : 'stray file where a partition directory was expected',
          });
          continue;
        }
        if (yieldDue()) await yieldNow();
        visit(partPath, seg);
      }
    }
  }
}

/**
 * Scans every location. `infoDir` defaults to `{first location}/info_dir`, as in Druid. `previous` gives the
 * segments as the last scan found them, by id: an unchanged one is returned as that same object (treat the
 * segments as read-only).
 */
export async function scanCache(opts: {
  locations: CacheLocationConfig[];
  infoDir?: string;
  previous?: (id: string) => CachedSegment | undefined;
}): Promise<CacheScan> {
  const t0 = performance.now();
  const issues: ScanIssue[] = [];
  const infoDir = path.resolve(opts.infoDir ?? path.join(opts.locations[0]?.path ?? '.', 'info_dir'));
  // Segment directories are read as the walk finds them, so that what a scan makes and drops (ids, paths) dies
  // young. A flat name waits for info_dir, read after the walk: `ds_..._v_1` may end in a partition or in
  // the version, and the descriptor decides. `found` keeps the walk's order, which decides the copy kept of a
  // segment found twice.
  const found: Array<CachedSegment | undefined> = [];
  const flats: Array<{ slot: number; location: string; dir: string; seg: SegmentId }> = [];
  const read = (location: string, dir: string, seg: SegmentId, layout: CacheLayout) =>
    readSegmentDirNow(location, dir, seg, layout, issues, opts.previous?.(seg.id));
  for (const loc of opts.locations) {
    const location = path.resolve(loc.path);
    for (const e of readDirSafe(location, issues)) {
      const p = childPath(location, e.name);
      if (p === infoDir || e.name.startsWith('.')) continue;
      if (!e.isDirectory()) {
        issues.push({ path: p, problem: 'stray file in the cache location' });
        continue;
      }
      const flat = tryParseSegmentId(e.name);
      if (flat) flats.push({ slot: found.push(undefined) - 1, location, dir: p, seg: flat });
      else
        await collectNested(p, e.name, issues, opts.previous, (dir, seg) => {
          found.push(read(location, dir, seg, 'nested'));
        });
    }
  }
  const info = await readInfoDir(infoDir, issues);
  for (const c of flats) {
    if (yieldDue()) await yieldNow();
    found[c.slot] = read(c.location, c.dir, info.get(c.seg.id)?.seg ?? c.seg, 'flat');
  }
  const segments: CachedSegment[] = [];
  const seen = new Set<string>();
  for (const one of found) {
    if (!one) continue;
    if (seen.has(one.id)) {
      issues.push({ path: one.dir, problem: `segment ${one.id} is present in more than one place; this copy is ignored` });
      continue;
    }
    seen.add(one.id);
    segments.push(withInfo(one, info.get(one.id), opts.previous?.(one.id)));
  }
  const missing: MissingSegment[] = [];
  for (const [id, entry] of info) {
    if (!seen.has(id)) missing.push({ ...entry.seg, interval: `${entry.seg.start}/${entry.seg.end}`, descriptor: entry.descriptor, infoFile: entry.file });
  }
  segments.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  missing.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const layouts = new Set(segments.map((s) => s.layout));
  const layout = layouts.size === 0 ? 'empty' : layouts.size === 2 ? 'mixed' : [...layouts][0]!;
  return { segments, missing, issues, layout, durationMs: performance.now() - t0 };
}
