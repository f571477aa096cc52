/**
 * Watches the cache locations for segment directories that appear or go away, with chokidar limited to
 * directories: nested layout down to `{dataSource}/{interval}/{version}` (whose children are the segment
 * directories), flat layout the location itself (whose children are the segment directories). No file is watched,
 * so a 100,000-segment cache costs about one inotify watch per version directory, not one per file; what happens
 * inside a segment directory (files arriving, the download marker going) is polled by active backup until the
 * segment settles, and the reconcile scan catches whatever the watcher misses (events dropped, inotify limits).
 */
import path from 'node:path';
import chokidar from 'chokidar';
import type { FSWatcher } from 'chokidar';
import type { Logger } from 'pino';
import { tryParseSegmentId } from '../druid/segmentId.js';
import { messageOf } from '../errors.js';

/** chokidar's depth of the deepest directory read and watched (the location is 0): `{ds}/{interval}/{version}`. */
const WATCH_DEPTH = 3;

export interface WatcherEvents {
  /** A directory that may be (or contain) a segment directory appeared. */
  changed(dir: string): void;
  /** A directory went away. */
  removed(dir: string): void;
}

export class CacheWatcher {
  private watcher?: FSWatcher;

  constructor(
    private readonly locations: string[],
    private readonly infoDir: string,
    private readonly on: WatcherEvents,
    private readonly log: Logger,
  ) {}

  /** Whether chokidar should skip a path: files, staging and info_dir, anything below a segment directory. */
  private ignored(p: string, stats?: { isFile(): boolean }): boolean {
    if (stats?.isFile()) return true;
    for (const location of this.locations) {
      const rel = path.relative(location, p);
      if (rel === '') return false;
      if (rel.startsWith('..') || path.isAbsolute(rel)) continue;
      const parts = rel.split(path.sep);
      if (parts[0]!.startsWith('.') || path.join(location, parts[0]!) === this.infoDir) return true;
      // Below a flat segment directory, or below a nested partition directory: files only.
      if (parts.length >= 2 && tryParseSegmentId(parts[0]!)) return true;
      return parts.length > 4;
    }
    return true;
  }

  start(): Promise<void> {
    const w = chokidar.watch(this.locations, {
      ignoreInitial: true,
      depth: WATCH_DEPTH,
      ignored: (p, stats) => this.ignored(p, stats),
      followSymlinks: false,
      persistent: true,
    });
    this.watcher = w;
    w.on('addDir', (p) => this.on.changed(p));
    w.on('unlinkDir', (p) => this.on.removed(p));
    w.on('error', (e) => this.log.warn({ err: messageOf(e) }, 'cache watcher error; the reconcile scan covers what it misses'));
    return new Promise((resolve) => w.once('ready', () => resolve()));
  }

  async close(): Promise<void> {
    await this.watcher?.close();
    this.watcher = undefined;
  }
}
