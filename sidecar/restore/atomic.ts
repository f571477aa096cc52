/**
 * Making restored bytes visible all at once. Everything is staged under a dot-prefixed name beginning with
 * `.druid-backup-` in the root of the same cache location (or deep storage directory), so the final rename is
 * atomic and Druid's scan, like ours, passes over it. Replacing a present copy moves it aside first under a
 * small journal, so a failed swap, or a crash in the middle of one, puts the old copy back.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { isInside, ownPath } from '../druid/paths.js';
import { STAGING_PREFIX } from '../druid/scan.js';
import { messageOf } from '../errors.js';
import { fsyncDir } from './receive.js';

const OLD = `${STAGING_PREFIX}old-`;

// A staging name is this process's random tag and a count: unique among the names this process makes, and unlikely
// to meet another process's. A name already taken is never written into (staging is made with mkdir or `wx`, which
// fail on it), and one random draw a name was a sixth of a small segment's staging cost in the restore's profile.
const TAG = randomBytes(6).toString('hex');
let made = 0;

export function stagingPath(root: string, kind: string, ext = ''): string {
  return ownPath(root, `${STAGING_PREFIX}${kind}-${TAG}${(made++).toString(36).padStart(4, '0')}${ext}`);
}

/** `mkdir -p` that returns the directories it made, deepest last, so a failed restore can take them away again. */
export async function mkdirParents(dir: string): Promise<string[]> {
  const missing: string[] = [];
  for (let d = path.resolve(dir); !existsSync(d); d = path.dirname(d)) {
    missing.unshift(d);
    if (path.dirname(d) === d) break;
  }
  // Direct calls: a restore of many small segments makes one or two directories a segment.
  for (const d of missing) {
    try {
      mkdirSync(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  return missing;
}

/** Removes directories made by mkdirParents that are still empty, deepest first. */
export async function removeEmptyDirs(made: readonly string[]): Promise<void> {
  for (const d of [...made].reverse()) {
    try {
      await fs.rmdir(d);
    } catch {
      return; // not empty: someone else put something there
    }
  }
}

/**
 * Moves the staged directory or file to `dest`. When `dest` exists it is moved aside to `{root}/.druid-backup-old-*`
 * under a journal first and only removed once the new copy is in place; if the swap fails it is moved back.
 */
export async function swapInto(staged: string, dest: string, root: string): Promise<void> {
  const parent = path.dirname(dest);
  if (!existsSync(dest)) {
    await fs.rename(staged, dest);
    await fsyncDir(parent);
    return;
  }
  const old = stagingPath(root, 'old');
  const journal = `${old}.json`;
  await fs.writeFile(journal, JSON.stringify({ path: dest }), { flag: 'wx' });
  await fsyncDir(root);
  await fs.rename(dest, old);
  try {
    await fs.rename(staged, dest);
  } catch (e) {
    await fs.rename(old, dest);
    await fs.rm(journal, { force: true });
    throw e;
  }
  await fsyncDir(parent);
  await fs.rm(journal, { force: true });
  await fs.rm(old, { recursive: true, force: true });
}

/** Writes a small file atomically: a dot-prefixed temporary file beside it, fsync, rename, fsync the directory. */
export async function writeFileAtomic(file: string, content: string): Promise<void> {
  const dir = path.dirname(file);
  const tmp = stagingPath(dir, 'tmp');
  try {
    const fh = await fs.open(tmp, 'wx', 0o644);
    try {
      await fh.writeFile(content);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  await fsyncDir(dir);
}

export interface Leftovers {
  removed: string[];
  /** Old copies moved back where they were, because a crash stopped their swap halfway. */
  putBack: string[];
  problems: string[];
}

/**
 * Cleans what a crash left in `root` (a cache location, an info_dir or a deep storage directory): an old copy
 * whose swap did not finish is put back when its place is empty; every other `.druid-backup-*` entry goes.
 */
export async function removeLeftovers(root: string, out: Leftovers = { removed: [], putBack: [], problems: [] }): Promise<Leftovers> {
  let names: string[];
  try {
    names = await fs.readdir(root);
  } catch {
    return out;
  }
  let mine = names.filter((n) => n.startsWith(STAGING_PREFIX));
  const moved = new Set<string>();
  for (const j of mine.filter((n) => n.startsWith(OLD) && n.endsWith('.json'))) {
    const old = path.join(root, j.slice(0, -'.json'.length));
    try {
      const { path: dest } = JSON.parse(await fs.readFile(path.join(root, j), 'utf8')) as { path?: unknown };
      // The journal is a file on disk like any other: its path is put back only inside the root it was found in.
      if (typeof dest === 'string' && path.isAbsolute(dest) && isInside(root, dest) && existsSync(old) && !existsSync(dest)) {
        await fs.mkdir(path.dirname(dest), { recursive: true });
        await fs.rename(old, dest);
        moved.add(path.basename(old));
        out.putBack.push(dest);
      }
    } catch (e) {
      out.problems.push(`${path.join(root, j)}: ${messageOf(e)}`);
    }
  }
  mine = mine.filter((n) => !moved.has(n));
  for (const n of mine) {
    const p = path.join(root, n);
    try {
      await fs.rm(p, { recursive: true, force: true });
      out.removed.push(p);
    } catch (e) {
      out.problems.push(`${p}: ${messageOf(e)}`);
    }
  }
  return out;
}
