/**
 * Watches the cache locations for segment directories that appear or go away. Only the directories that hold
 * segment directories are watched (one inotify watch each, none per file): a location, and in the nested layout
 * each `{dataSource}`, `{interval}` and `{version}` directory. What happens inside a segment directory (files
 * arriving, the download marker going) is polled by active backup until the segment settles.
 *
 * Every directory is watched BEFORE it is read, so a subdirectory made at any moment (Druid's `mkdir -p` of a new
 * data source's partition directory, loading threads making sibling intervals at once, `cp -r`) is either in the
 * read or raises an event, and is itself watched: nothing below a new directory is missed, now or later. (chokidar
 * reads a new directory first and watches it after, so a subdirectory made in between was never reported nor
 * watched, and later segments below it waited for the reconcile scan.) The reconcile scan still covers what no
 * watcher can see: events lost to an inotify queue overflow, a watch refused at the inotify limit.
 */
import type { FSWatcher } from 'node:fs';
import { watch } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { tryParseSegmentId } from '../druid/segmentId.js';
import { messageOf } from '../errors.js';

export interface WatcherEvents {
  /** A segment directory appeared (or an entry of it changed name): read it. */
  changed(dir: string): void;
  /** A directory went away. */
  removed(dir: string): void;
}

/** What a directory at a level below a location is: 0 = a child of the location. */
type Kind = 'segment' | 'parent' | 'skip';

interface Watched {
  watcher: FSWatcher;
  /** Of the directory watched: one of the same name with another inode is a new directory. */
  ino: number;
}

export class CacheWatcher {
  /** Watched directories (locations and parents of segment directories), by absolute path. */
  private readonly dirs = new Map<string, Watched>();
  private closed = false;
  private warnedLimit = false;

  constructor(
    private readonly locations: string[],
    private readonly infoDir: string,
    private readonly on: WatcherEvents,
    private readonly log: Logger,
  ) {}

  /**
   * A directory named `name` at `level` (0: in a location): a segment directory (flat at level 0, nested at 3),
   * a parent of segment directories (nested data source, interval, version), or neither (staging, info_dir).
   */
  private kind(parent: string, level: number, name: string): Kind {
    if (level === 0) {
      if (name.startsWith('.') || path.join(parent, name) === this.infoDir) return 'skip';
      return tryParseSegmentId(name) ? 'segment' : 'parent';
    }
    return level < 3 ? 'parent' : 'segment';
  }

  /** Watches every location and the parents of segment directories below it; resolves once all are watched. */
  async start(): Promise<void> {
    await Promise.all(this.locations.map((l) => this.watchDir(path.resolve(l), -1, true)));
  }

  /**
   * Watches `dir` (a location at level -1, or a parent of segment directories), then reads it: each child is
   * reported unless `initial` (the reconcile at start covers what was there), and each parent child is watched.
   */
  private async watchDir(dir: string, level: number, initial: boolean): Promise<void> {
    if (this.closed) return;
    let watcher: FSWatcher;
    try {
      const st = await lstat(dir);
      if (!st.isDirectory() || this.closed || this.dirs.get(dir)?.ino === st.ino) return;
      // Gone and made again under the same name: the old watch saw its own directory go.
      if (this.dirs.has(dir)) this.unwatch(dir);
      watcher = watch(dir, { persistent: true }, (_event, name) => this.event(dir, level, name));
      this.dirs.set(dir, { watcher, ino: st.ino });
    } catch (e) {
      this.cannotWatch(dir, e);
      return;
    }
    watcher.on('error', (e) => {
      this.unwatch(dir);
      this.cannotWatch(dir, e);
    });
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (e) {
      this.cannotWatch(dir, e);
      return;
    }
    await Promise.all(names.map((n) => this.child(dir, level + 1, n, initial)));
  }

  private cannotWatch(dir: string, e: unknown): void {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || this.closed) return;
    // At the inotify limit every further directory fails the same way: said once.
    if (code === 'ENOSPC' || code === 'EMFILE') {
      if (this.warnedLimit) return;
      this.warnedLimit = true;
    }
    this.log.warn({ dir, err: messageOf(e) }, 'cannot watch a cache directory; the reconcile scan covers what it misses');
  }

  /** An entry of watched `dir` was created, removed or renamed; fs.watch names it (or not, on overflow). */
  private event(dir: string, level: number, name: string | Buffer | null): void {
    if (this.closed) return;
    if (name === null) {
      // No name: re-read the directory and report what is there (a repeat is harmless to active backup).
      void readdir(dir).then(
        (names) => Promise.all(names.map((n) => this.child(dir, level + 1, n, false))),
        () => undefined,
      );
      return;
    }
    void this.child(dir, level + 1, String(name), false);
  }

  /** Looks at one entry of a watched directory: reports it and watches it as its kind says. */
  private async child(parent: string, level: number, name: string, initial: boolean): Promise<void> {
    const kind = this.kind(parent, level, name);
    const p = path.join(parent, name);
    if (kind === 'skip' || this.closed) return;
    if (initial) {
      // At start nothing is reported, so only parents need a look (watchDir's).
      if (kind === 'parent') await this.watchDir(p, level, true);
      return;
    }
    const st = await lstat(p).catch(() => undefined);
    if (this.closed) return;
    if (!st) {
      if (kind === 'parent') this.unwatch(p);
      this.on.removed(p);
      return;
    }
    if (!st.isDirectory()) return;
    if (kind === 'parent' && this.dirs.get(p)?.ino === st.ino) return;
    this.on.changed(p);
    if (kind === 'parent') await this.watchDir(p, level, false);
  }

  /** Stops watching `dir` and every watched directory below it. */
  private unwatch(dir: string): void {
    for (const [d, w] of this.dirs) {
      if (d === dir || d.startsWith(dir + path.sep)) {
        w.watcher.close();
        this.dirs.delete(d);
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.dirs.values()) w.watcher.close();
    this.dirs.clear();
  }
}
