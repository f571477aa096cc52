/**
 * `GroupedIndex`: the segments of one node (or the backups of one target) grouped data source → interval →
 * segment, kept up to date one event at a time. The views ask it for one level at a time, so a node with
 * 100,000 segments costs one sorted list per expanded level, not a tree of everything. Pure: no `vscode`.
 */
import { parseInstant } from '../../sidecar/druid/time.js';

export interface Grouping<T> {
  id(t: T): string;
  dataSource(t: T): string;
  interval(t: T): string;
  /** Order of the segments of one interval. */
  compare(a: T, b: T): number;
}

/** Newest interval first, as Druid's console lists them; ordered by instant, so odd years (eternity) sort right. */
export function compareIntervalsNewestFirst(a: string, b: string): number {
  const sa = parseInstant(a.split('/')[0] ?? '') ?? 0;
  const sb = parseInstant(b.split('/')[0] ?? '') ?? 0;
  if (sa !== sb) return sb - sa;
  return a < b ? 1 : a > b ? -1 : 0;
}

interface Group<T> {
  intervals: Map<string, Map<string, T>>;
  sortedIntervals?: string[];
}

export class GroupedIndex<T> {
  private readonly byId = new Map<string, T>();
  private readonly groups = new Map<string, Group<T>>();
  private sortedDataSources?: string[];
  private readonly sortedSegments = new Map<string, T[]>();

  constructor(private readonly g: Grouping<T>) {}

  static of<T>(g: Grouping<T>, items: Iterable<T>): GroupedIndex<T> {
    const index = new GroupedIndex(g);
    for (const t of items) index.upsert(t);
    return index;
  }

  get size(): number {
    return this.byId.size;
  }

  get(id: string): T | undefined {
    return this.byId.get(id);
  }

  values(): IterableIterator<T> {
    return this.byId.values();
  }

  /** Adds or replaces an item. Returns the item it replaced. */
  upsert(t: T): T | undefined {
    const id = this.g.id(t);
    const old = this.byId.get(id);
    if (old && (this.g.dataSource(old) !== this.g.dataSource(t) || this.g.interval(old) !== this.g.interval(t))) this.remove(id);
    const ds = this.g.dataSource(t);
    const iv = this.g.interval(t);
    let group = this.groups.get(ds);
    if (!group) {
      group = { intervals: new Map() };
      this.groups.set(ds, group);
      this.sortedDataSources = undefined;
    }
    let segs = group.intervals.get(iv);
    if (!segs) {
      segs = new Map();
      group.intervals.set(iv, segs);
      group.sortedIntervals = undefined;
    }
    segs.set(id, t);
    this.byId.set(id, t);
    this.sortedSegments.delete(key(ds, iv));
    return old;
  }

  remove(id: string): T | undefined {
    const t = this.byId.get(id);
    if (t === undefined) return undefined;
    this.byId.delete(id);
    const ds = this.g.dataSource(t);
    const iv = this.g.interval(t);
    const group = this.groups.get(ds);
    const segs = group?.intervals.get(iv);
    segs?.delete(id);
    this.sortedSegments.delete(key(ds, iv));
    if (group && segs && segs.size === 0) {
      group.intervals.delete(iv);
      group.sortedIntervals = undefined;
      if (group.intervals.size === 0) {
        this.groups.delete(ds);
        this.sortedDataSources = undefined;
      }
    }
    return t;
  }

  dataSources(): string[] {
    this.sortedDataSources ??= [...this.groups.keys()].sort((a, b) => a.localeCompare(b, 'en'));
    return this.sortedDataSources;
  }

  intervals(dataSource: string): string[] {
    const group = this.groups.get(dataSource);
    if (!group) return [];
    group.sortedIntervals ??= [...group.intervals.keys()].sort(compareIntervalsNewestFirst);
    return group.sortedIntervals;
  }

  segments(dataSource: string, interval: string): T[] {
    const k = key(dataSource, interval);
    let sorted = this.sortedSegments.get(k);
    if (!sorted) {
      const segs = this.groups.get(dataSource)?.intervals.get(interval);
      if (!segs) return [];
      sorted = [...segs.values()].sort(this.g.compare);
      this.sortedSegments.set(k, sorted);
    }
    return sorted;
  }

  /** Every item of a data source (or of one of its intervals), for summaries. */
  *itemsOf(dataSource: string, interval?: string): IterableIterator<T> {
    const group = this.groups.get(dataSource);
    if (!group) return;
    if (interval !== undefined) {
      const segs = group.intervals.get(interval);
      if (segs) yield* segs.values();
      return;
    }
    for (const segs of group.intervals.values()) yield* segs.values();
  }
}

function key(dataSource: string, interval: string): string {
  return `${dataSource}\u0000${interval}`;
}
