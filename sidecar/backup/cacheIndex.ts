/**
 * The source's view of its node's segment cache: the segments found by the last full scan, kept current by
 * single-directory refreshes (the watcher, a transfer about to start, restore), each joined with its backup state
 * from SourceState. It answers `GET /data/v1/segments` and publishes `segment` / `segment-removed` events when a
 * segment's local or backup state changes.
 */
import path from 'node:path';
import type { Logger } from 'pino';
import type { BackupState, Page, SegmentInfo } from '../api.js';
import type { CacheLayout } from '../druid/layout.js';
import { segmentOfNestedParts } from '../druid/layout.js';
import type { CacheScan, CachedSegment, MissingSegment } from '../druid/scan.js';
import { readInfoFile, readSegmentDir, scanCache, withInfo } from '../druid/scan.js';
import type { SegmentId } from '../druid/segmentId.js';
import { tryParseSegmentId } from '../druid/segmentId.js';
import type { Selector } from '../druid/selector.js';
import { selects } from '../druid/selector.js';
import type { SidecarConfig } from '../config.js';
import type { EventBus } from '../services/events.js';
import { pageSorted } from '../services/paging.js';
import type { SourceState } from './state.js';

export interface CacheIndexOptions {
  config: SidecarConfig;
  state: SourceState;
  events: EventBus;
  log: Logger;
}

export class CacheIndex {
  private readonly segments = new Map<string, CachedSegment>();
  private missing = new Map<string, MissingSegment>();
  private readonly restoring = new Set<string>();
  private scanning?: Promise<CacheScan>;
  /** Ids of segments and missing segments, sorted, for paging; undefined when the set changed. */
  private sortedIds?: string[];
  layout: CacheScan['layout'] = 'empty';
  lastScan?: { at: string; durationMs: number; issues: number };
  readonly locations: string[];
  readonly infoDir: string;

  constructor(private readonly opts: CacheIndexOptions) {
    this.locations = opts.config.druid.locations.map((l) => path.resolve(l.path));
    this.infoDir = path.resolve(opts.config.druid.infoDir ?? path.join(this.locations[0] ?? '.', 'info_dir'));
  }

  /** A full scan of every location; concurrent callers share one scan. */
  scan(): Promise<CacheScan> {
    this.scanning ??= this.doScan().finally(() => (this.scanning = undefined));
    return this.scanning;
  }

  private async doScan(): Promise<CacheScan> {
    // Given the segments it holds, the scan returns an unchanged one as the object held (scanCache's `previous`).
    const scan = await scanCache({ locations: this.opts.config.druid.locations, infoDir: this.infoDir, previous: (id) => this.segments.get(id) });
    const seen = new Set<string>();
    for (const s of scan.segments) {
      seen.add(s.id);
      this.update(s);
    }
    for (const id of [...this.segments.keys()]) if (!seen.has(id)) this.remove(id);
    this.missing = new Map(scan.missing.map((m) => [m.id, m]));
    this.sortedIds = undefined;
    this.layout = scan.layout;
    this.lastScan = { at: new Date().toISOString(), durationMs: scan.durationMs, issues: scan.issues.length };
    for (const i of scan.issues.slice(0, 20)) this.opts.log.debug(i, 'cache scan issue');
    return scan;
  }

  /** The segment a directory inside a location stands for, or undefined when it is not a segment directory. */
  segmentOfDir(dir: string): { location: string; seg: SegmentId; layout: CacheLayout } | undefined {
    const where = this.placeOf(dir);
    if (!where) return undefined;
    const { location, parts } = where;
    if (parts.length === 1) {
      const flat = tryParseSegmentId(parts[0]!);
      if (!flat) return undefined;
      // An id ending in `_<n>` may end in a partition or a version: the descriptor in info_dir decides.
      return { location, seg: readInfoFile(this.infoDir, flat.id)?.seg ?? flat, layout: 'flat' };
    }
    if (parts.length === 4 && !tryParseSegmentId(parts[0]!)) {
      const seg = segmentOfNestedParts(parts[0]!, parts[1]!, parts[2]!, parts[3]!);
      return seg ? { location, seg, layout: 'nested' } : undefined;
    }
    return undefined;
  }

  /** The location a directory is below and its path parts there; undefined outside them, in a hidden directory or in info_dir. */
  private placeOf(dir: string): { location: string; parts: string[] } | undefined {
    const abs = path.resolve(dir);
    for (const location of this.locations) {
      const rel = path.relative(location, abs);
      if (!rel || rel.startsWith('..') || path.isAbsolute(rel)) continue;
      const parts = rel.split(path.sep);
      if (parts[0]!.startsWith('.') || path.join(location, parts[0]!) === this.infoDir) return undefined;
      return { location, parts };
    }
    return undefined;
  }

  /**
   * Re-reads one segment directory (after a watcher event, before a transfer, after a restore). Returns the
   * segment, or undefined when the directory is gone or is not a segment (a gone segment is removed).
   */
  async refresh(dir: string): Promise<CachedSegment | undefined> {
    const where = this.segmentOfDir(dir);
    if (!where) return undefined;
    // Given the segment as last read, an unchanged one comes back as that object (no new long-lived garbage per
    // transfer) and its directory is listed only if it changed (scan.ts `reusableListing`).
    const known = this.segments.get(where.seg.id);
    const read = await readSegmentDir(where.location, path.resolve(dir), where.seg, where.layout, [], known);
    if (!read) {
      if (known && known.dir === path.resolve(dir)) this.remove(where.seg.id);
      return undefined;
    }
    // The one held is never changed in place: update() compares it with what it had.
    const s = withInfo(read, readInfoFile(this.infoDir, read.id), known);
    this.update(s);
    return s;
  }

  private update(s: CachedSegment): void {
    const old = this.segments.get(s.id);
    if (!old) this.sortedIds = undefined;
    this.segments.set(s.id, s);
    this.missing.delete(s.id);
    if (
      !old ||
      old.state !== s.state ||
      old.size !== s.size ||
      old.mtimeMs !== s.mtimeMs ||
      old.files.length !== s.files.length ||
      !!old.infoFile !== !!s.infoFile
    )
      this.publish(s.id);
  }

  private remove(id: string): void {
    if (!this.segments.delete(id)) return;
    this.sortedIds = undefined;
    this.opts.state.delete(id);
    // Files gone while info_dir still names the segment: Druid believes it serves it, so it is lost (what automatic
    // restore repairs), listed and published as `missing`. A drop or a balancer move deletes the info_dir entry first.
    const info = readInfoFile(this.infoDir, id);
    if (info) {
      const { seg, descriptor } = info;
      this.missing.set(id, { ...seg, interval: `${seg.start}/${seg.end}`, descriptor, infoFile: info.file });
      this.publish(id);
      return;
    }
    this.opts.events.publish({ type: 'segment-removed', segmentId: id });
  }

  /** Publishes the segment's current info (after its local or backup state changed). */
  publish(id: string): void {
    const info = this.info(id);
    if (info) this.opts.events.publish({ type: 'segment', segment: info });
  }

  get(id: string): CachedSegment | undefined {
    return this.segments.get(id);
  }

  all(): CachedSegment[] {
    return [...this.segments.values()];
  }

  /** Marks a segment being installed by restore: active backup leaves it alone and it shows as `restoring`. */
  setRestoring(id: string, on: boolean): void {
    if (on) this.restoring.add(id);
    else this.restoring.delete(id);
    this.publish(id);
  }

  isRestoring(id: string): boolean {
    return this.restoring.has(id);
  }

  /** With several targets (sidecar/targets/): the good copies of a segment and the targets holding them. */
  copiesOf?: (id: string) => Pick<SegmentInfo['backup'], 'copies' | 'targets' | 'damagedCopies'>;

  backupOf(id: string): SegmentInfo['backup'] {
    const b = this.opts.state.get(id)?.backup;
    // A segment lost from the cache has no backup record any more, but its copies on the targets are still news.
    if (!b) return { state: 'none', ...this.copiesOf?.(id) };
    const state: BackupState = b.state;
    return {
      state,
      target: b.target,
      ...this.copiesOf?.(id),
      ...(b.at ? { at: b.at } : {}),
      ...(b.digest && b.state === 'backedUp' ? { digest: b.digest } : {}),
      ...(b.error ? { error: b.error } : {}),
    };
  }

  info(id: string): SegmentInfo | undefined {
    const s = this.segments.get(id);
    if (s) {
      return {
        id: s.id,
        dataSource: s.dataSource,
        interval: s.interval,
        version: s.version,
        partition: s.partition,
        size: s.size,
        files: s.files.map((f) => ({ name: f.name, size: f.size })),
        layout: s.layout,
        state: this.restoring.has(id) ? 'restoring' : s.state,
        hasInfoFile: !!s.infoFile,
        backup: this.backupOf(id),
      };
    }
    const m = this.missing.get(id);
    if (!m) return undefined;
    return {
      id: m.id,
      dataSource: m.dataSource,
      interval: m.interval,
      version: m.version,
      partition: m.partition,
      size: 0,
      files: [],
      layout: this.layout === 'flat' ? 'flat' : 'nested',
      state: this.restoring.has(id) ? 'restoring' : 'missing',
      hasInfoFile: true,
      backup: this.backupOf(id),
    };
  }

  /**
   * One page of `list(sel, state)` by id: the filter runs on cheap fields, and infos are built for the page only,
   * so a listing of a 100,000-segment cache stays fast and small.
   */
  page(sel: Selector, state: string | undefined, limit: number, cursor?: string): Page<SegmentInfo> {
    this.sortedIds ??= [...new Set([...this.segments.keys(), ...this.missing.keys()])].sort();
    const matched = this.sortedIds.filter((id) => {
      const s = this.segments.get(id) ?? this.missing.get(id);
      if (!s || !selects(sel, s)) return false;
      if (!state) return true;
      const local = this.restoring.has(id) ? 'restoring' : (this.segments.get(id)?.state ?? 'missing');
      return local === state || (this.opts.state.get(id)?.backup?.state ?? 'none') === state;
    });
    return pageSorted(
      matched,
      (id) => id,
      (id) => this.info(id)!,
      limit,
      cursor,
    );
  }
}
