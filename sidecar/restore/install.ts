/**
 * Carries out one planned segment: streams it from the target into a staging place beside its destination,
 * checks every byte against the manifest, then makes it visible with a rename and, in a cache, writes its
 * info_dir descriptor atomically. A failure or a cancel before the rename leaves the destination as it was.
 */
import { existsSync, mkdirSync, promises as fs, renameSync } from 'node:fs';
import path from 'node:path';
import type { DataSegment } from '../druid/descriptor.js';
import { BackupError, isBackupError } from '../errors.js';
import type { SegmentReader, Target } from '../store/target.js';
import { mkdirParents, removeEmptyDirs, stagingPath, swapInto, writeFileAtomic } from './atomic.js';
import type { DestinationSpec, PlannedSegment } from './plan.js';
import { isZipPath } from './plan.js';
import type { ReceiveOptions } from './receive.js';
import { fsyncDir, NOTHING_INSTALLED, plannedOf, receiveInto } from './receive.js';
import { receiveZip } from './zip.js';
import { SMALL_SEGMENT_BYTES } from '../store/target.js';
import { writeAtOnce } from '../util/fileWriter.js';
import type { FilesystemSync } from '../util/syncfs.js';

export interface InstallOptions extends ReceiveOptions {
  target: Target;
}

/** The info_dir file as Druid writes it (Jackson, compact), so a restored info_dir is byte-identical to the original. */
export function descriptorJson(d: DataSegment): string {
  return JSON.stringify(d);
}

/** The same clear sentence whichever layer caught the damage (this side's check, or the http target's download reader). */
function explain(segmentId: string, e: unknown): unknown {
  if (!isBackupError(e) || e.code !== 'digest_mismatch' || e.message.includes(NOTHING_INSTALLED)) return e;
  return new BackupError('digest_mismatch', `segment ${segmentId}: ${e.message}; ${NOTHING_INSTALLED}`);
}

function checkCancelled(signal?: AbortSignal): void {
  if (signal?.aborted) throw new BackupError('cancelled', 'restore cancelled');
}

/** Restores one segment as planned; a `skip` does nothing. */
export async function installSegment(item: PlannedSegment, dest: DestinationSpec, opts: InstallOptions): Promise<void> {
  if (item.action === 'skip') return;
  if (dest.kind === 'deep-storage') return installIntoDeepStorage(item, dest.directory, opts);
  return installIntoCache(item, dest.infoDir, opts);
}

/** A new segment (not an overwrite) whose place was taken while it was received is left as it is found. */
function refuseIfAppeared(item: PlannedSegment): void {
  if (item.action === 'restore' && existsSync(item.path)) {
    throw new BackupError('conflict', `segment ${item.segmentId} appeared at ${item.path} while it was being restored; left as it is`);
  }
}

async function installIntoCache(item: PlannedSegment, infoDir: string, opts: InstallOptions): Promise<void> {
  const location = item.location;
  if (!location) throw new BackupError('internal', `segment ${item.segmentId} was planned without a cache location`);
  let madeDirs: string[] = [];
  let installedNew = false;
  if (item.writeFiles) {
    await fs.mkdir(location, { recursive: true });
    const staging = stagingPath(location, 'restore');
    await fs.mkdir(staging, { mode: 0o755 });
    try {
      const reader = await opts.target.read(item.segmentId, { signal: opts.signal, planned: plannedOf(item.manifest) });
      await receiveInto(reader, item.manifest, staging, opts);
      checkCancelled(opts.signal);
      madeDirs = await mkdirParents(path.dirname(item.path));
      refuseIfAppeared(item);
      await swapInto(staging, item.path, location);
      installedNew = item.action === 'restore';
    } catch (e) {
      await fs.rm(staging, { recursive: true, force: true });
      await removeEmptyDirs(madeDirs);
      throw explain(item.segmentId, e);
    }
  }
  if (item.infoFile && item.manifest.descriptor) {
    try {
      await writeInfoFile(infoDir, item.infoFile, item.manifest.descriptor);
    } catch (e) {
      // Files without their descriptor would be a half restore; a new segment goes away again.
      if (installedNew) {
        await fs.rm(item.path, { recursive: true, force: true });
        await removeEmptyDirs(madeDirs);
      }
      throw e;
    }
  }
}

/** A group member's info_dir descriptor: written to `tmp`, then renamed to `file`. */
interface InfoWrite {
  tmp: string;
  file: string;
  renamed?: boolean;
}

/** A new small segment received and checked into its staging directory, nothing flushed: `commitGroup` installs it. */
export interface StagedSegment {
  item: PlannedSegment;
  staging: string;
}

/** Whether a planned segment may be installed in a group (`commitGroup`): a new one, small, into a cache. */
export function groupable(item: PlannedSegment, dest: DestinationSpec): boolean {
  return dest.kind === 'cache' && item.action === 'restore' && item.writeFiles && !!item.location && item.bytes < SMALL_SEGMENT_BYTES;
}

/**
 * Receives a new small segment into a staging directory beside its place, checked but not flushed: from `given` (a
 * part of a batch read), else read alone. Its location
 * exists (the restore made it before it grouped segments); the staging directory is made by a direct call, as the
 * files are (`writeAtOnce`).
 */
export async function stageIntoCache(item: PlannedSegment, opts: InstallOptions, given?: SegmentReader): Promise<StagedSegment> {
  const location = item.location;
  if (!location) throw new BackupError('internal', `segment ${item.segmentId} was planned without a cache location`);
  const staging = stagingPath(location, 'restore');
  mkdirSync(staging, { mode: 0o755 });
  try {
    const reader = given ?? (await opts.target.read(item.segmentId, { signal: opts.signal, planned: plannedOf(item.manifest) }));
    await receiveInto(reader, item.manifest, staging, opts, false);
    return { item, staging };
  } catch (e) {
    await fs.rm(staging, { recursive: true, force: true });
    throw explain(item.segmentId, e);
  }
}

/**
 * Installs staged small segments together under the rule of a single install (every byte on disk before the rename
 * that makes a segment visible; its info_dir descriptor only after it), with each filesystem flushed once for all
 * where each segment would flush its files and directories one by one (seven waits for the disk a segment):
 * 1. one flush of each cache location's filesystem: every staged byte is on disk;
 * 2. the renames into place (a segment that appeared meanwhile is a conflict, left as it is);
 * 3. the info_dir descriptors written beside their place, then one flush of every filesystem involved (the renames
 *    and those bytes), then renamed into place and info_dir's filesystem flushed once more.
 * A failed flush fails every segment it covered, and takes away what of them was made visible. Returns each
 * segment's error, or undefined when it is installed. `flusher` gives the flusher of a directory's filesystem. The
 * renames and directories are direct calls, as the staged files are: the event loop waits for a group's metadata
 * operations (a few milliseconds), where a round trip through the thread pool for each cost more than the operation.
 */
export async function commitGroup(
  staged: readonly StagedSegment[],
  infoDir: string,
  flusher: (dir: string) => FilesystemSync,
  signal?: AbortSignal,
): Promise<unknown[]> {
  const errors: unknown[] = staged.map(() => undefined);
  const visible: Array<{ i: number; madeDirs: string[]; info?: InfoWrite }> = [];
  const flushAll = (dirs: Iterable<string>) => Promise.all([...new Set(dirs)].map((d) => flusher(d).flush()));
  const failAll = async (e: unknown) => {
    for (const v of visible) {
      if (v.info) await fs.rm(v.info.renamed ? v.info.file : v.info.tmp, { force: true });
      await fs.rm(staged[v.i]!.item.path, { recursive: true, force: true });
      await removeEmptyDirs(v.madeDirs);
      errors[v.i] = e;
    }
    visible.length = 0;
  };
  try {
    await flushAll(staged.map((s) => s.item.location!));
  } catch (e) {
    await Promise.all(staged.map((s) => fs.rm(s.staging, { recursive: true, force: true })));
    return staged.map(() => e);
  }
  for (const [i, { item, staging }] of staged.entries()) {
    let madeDirs: string[] = [];
    try {
      checkCancelled(signal);
      madeDirs = await mkdirParents(path.dirname(item.path));
      refuseIfAppeared(item);
      renameSync(staging, item.path);
      visible.push({ i, madeDirs });
    } catch (e) {
      await fs.rm(staging, { recursive: true, force: true });
      await removeEmptyDirs(madeDirs);
      errors[i] = explain(item.segmentId, e);
    }
  }
  try {
    const infos: InfoWrite[] = [];
    for (const v of visible) {
      const { item } = staged[v.i]!;
      if (!item.infoFile || !item.manifest.descriptor || existsSync(item.infoFile)) continue;
      if (!infos.length) mkdirSync(infoDir, { recursive: true });
      v.info = { tmp: stagingPath(infoDir, 'tmp'), file: item.infoFile };
      infos.push(v.info);
      writeAtOnce(v.info.tmp, descriptorJson(item.manifest.descriptor));
    }
    await flushAll([...visible.map((v) => staged[v.i]!.item.location!), ...(infos.length ? [infoDir] : [])]);
    for (const info of infos) {
      renameSync(info.tmp, info.file);
      info.renamed = true;
    }
    if (infos.length) await flusher(infoDir).flush();
  } catch (e) {
    await failAll(e);
  }
  return errors;
}

/** Writes a segment's info_dir descriptor when it has none; an info file Druid wrote is Druid's and stays as it is. */
export async function writeInfoFile(infoDir: string, file: string, descriptor: DataSegment): Promise<void> {
  if (existsSync(file)) return;
  await fs.mkdir(infoDir, { recursive: true });
  await writeFileAtomic(file, descriptorJson(descriptor));
}

async function installIntoDeepStorage(item: PlannedSegment, directory: string, opts: InstallOptions): Promise<void> {
  const zip = isZipPath(item.path);
  await fs.mkdir(directory, { recursive: true });
  const staging = stagingPath(directory, 'restore', zip ? '.zip' : '');
  let madeDirs: string[] = [];
  try {
    const reader = await opts.target.read(item.segmentId, { signal: opts.signal, planned: plannedOf(item.manifest) });
    if (zip) {
      await receiveZip(reader, item.manifest, staging, opts);
    } else {
      await fs.mkdir(staging, { mode: 0o755 });
      await receiveInto(reader, item.manifest, staging, opts);
    }
    checkCancelled(opts.signal);
    madeDirs = await mkdirParents(path.dirname(item.path));
    if (zip) {
      // rename(2) replaces a file atomically; an old index.zip's inode (maybe a hard link) is left untouched.
      await fs.rename(staging, item.path);
      await fsyncDir(path.dirname(item.path));
    } else {
      await swapInto(staging, item.path, directory);
    }
  } catch (e) {
    await fs.rm(staging, { recursive: true, force: true });
    await removeEmptyDirs(madeDirs);
    throw explain(item.segmentId, e);
  }
}
