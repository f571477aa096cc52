/**
 * The coverage timeline's model: what the nodes (their caches) and the targets (their catalogs) say about one data
 * source → lanes, one per version, newest first, and cells, one per interval of a lane, coloured by the state of
 * the segments in it. Pure, no `vscode` and no DOM: panel.ts sends it to the webview (media/timeline.js) in its
 * compact form (`toWire`), the segments of a cell only when the page shows them (`cellDetails`); the page only
 * draws it and words the cells; the unit tests check it directly.
 */
import type { SegmentInfo, StoredSegment } from '../../sidecar/api.js';
import type { NodeView } from '../tree/rows.js';
import { nodeLabel } from '../tree/rows.js';
import { expiryWords, snapshotsOf, type SnapshotsView } from '../tree/snapshots.js';
import { copiesOf, displayState } from '../tree/state.js';

/**
 * Worst first: a cell of several partitions shows the worst. `lost`: a node's info_dir entry names it, its files are
 * gone; `backupOnly`: no node lists it, a target holds it; `cacheOnly`: on a node, in no backup.
 */
export type CellState = 'lost' | 'failed' | 'cacheOnly' | 'pending' | 'overshadowed' | 'backupOnly' | 'backedUp';
export const CELL_STATES: readonly CellState[] = ['lost', 'failed', 'cacheOnly', 'pending', 'overshadowed', 'backupOnly', 'backedUp'];

export const CELL_WORDS: Record<CellState, string> = {
  lost: 'lost from the node (backup holds it)',
  failed: 'backup failed',
  cacheOnly: 'in the cache only',
  pending: 'backup pending',
  overshadowed: 'overshadowed by a newer version',
  backupOnly: 'in the backup only',
  backedUp: 'backed up',
};

/** A segment of a cell, and where the commands find it: a node that lists it, else a target that holds it. */
export interface CellSegment {
  id: string;
  partition: number;
  size: number;
  state: CellState;
  copies: number;
  /** Nodes whose cache lists it (lost or not). */
  nodes: string[];
  /** Targets that hold it, as the nodes report (backup.targets) and as the catalogs say. */
  targets: string[];
  backedUpAt?: string;
  error?: string;
}

export interface Cell {
  /** Stable across updates: version and interval. */
  key: string;
  interval: string;
  start: number;
  end: number;
  version: string;
  state: CellState;
  /** The fewest copies among its segments that are backed up. */
  copies: number;
  size: number;
  segments: CellSegment[];
}

export interface Lane {
  version: string;
  cells: Cell[];
}

export interface Timeline {
  dataSource: string;
  start: number;
  end: number;
  lanes: Lane[];
  /** Cells per state, for the legend. */
  counts: Record<CellState, number>;
  /** Copies wanted, for the colour of "backed up with fewer copies". */
  wantedCopies: number;
  segments: number;
  /** The snapshots in the targets that name this data source, oldest first: markers at their time. */
  snapshots: SnapshotMarker[];
}

/** A snapshot drawn on the time axis: it was taken at `time` (so it can restore what was used then). */
export interface SnapshotMarker {
  id: string;
  time: number;
  pinned: boolean;
  complete: boolean;
  /** The targets that hold it. */
  targets: string[];
  /** What retention does with it, short ("expires ~2024-06-03 10:00 UTC"), when its target says. */
  expiry?: string;
  /** Retention lets it go within a day, or at the next prune. */
  expiring: boolean;
  /** Words for screen readers and the hover. */
  label: string;
}

/** One marker per snapshot that names `dataSource`, however many targets hold it (its targets are merged). */
export function snapshotMarkers(dataSource: string, nodes: ReadonlyArray<NodeView & SnapshotsView>, now: number): SnapshotMarker[] {
  const byId = new Map<string, SnapshotMarker>();
  const retention = new Map<string, string>();
  for (const n of nodes) {
    for (const s of snapshotsOf(n) ?? []) {
      const time = Date.parse(s.time);
      if (!Number.isFinite(time) || !s.dataSources.some((d) => d.name === dataSource)) continue;
      const known = byId.get(s.id);
      if (known) {
        for (const t of s.targets) if (!known.targets.includes(t)) known.targets.push(t);
        known.pinned ||= s.pinned;
        continue;
      }
      const expiry = expiryWords(s, now);
      byId.set(s.id, {
        id: s.id,
        time,
        pinned: s.pinned,
        complete: s.complete,
        targets: [...s.targets],
        ...(expiry ? { expiry: expiry.short } : {}),
        expiring: !!expiry?.soon,
        label: '',
      });
      if (expiry) retention.set(s.id, expiry.long);
    }
  }
  const markers = [...byId.values()].sort((a, b) => a.time - b.time || (a.id < b.id ? -1 : 1));
  for (const m of markers) {
    m.targets.sort();
    const kept = retention.get(m.id);
    m.label = `Snapshot ${m.id}, taken ${new Date(m.time).toISOString()}${m.complete ? '' : ', incomplete'}${m.pinned ? ', pinned' : ''}, in ${m.targets.join(', ')}${kept ? `. ${kept}` : ''}`;
  }
  return markers;
}

function parseInterval(interval: string): { start: number; end: number } | undefined {
  const [a, b] = interval.split('/');
  const start = Date.parse(a ?? '');
  const end = Date.parse(b ?? '');
  return Number.isFinite(start) && Number.isFinite(end) && start < end ? { start, end } : undefined;
}

interface Gathered {
  id: string;
  interval: string;
  version: string;
  partition: number;
  size: number;
  onNodes: Array<{ node: NodeView; s: SegmentInfo }>;
  stored: Array<{ target: NodeView; s: StoredSegment }>;
}

/** Merged [start, end) ranges, sorted, for "is this interval covered by newer versions". */
function merge(ranges: Array<[number, number]>): Array<[number, number]> {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: Array<[number, number]> = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
    else out.push([r[0], r[1]]);
  }
  return out;
}

function covered(merged: Array<[number, number]>, start: number, end: number): boolean {
  let lo = 0;
  let hi = merged.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const m = merged[mid]!;
    if (m[1] <= start) lo = mid + 1;
    else if (m[0] > start) hi = mid - 1;
    else return m[1] >= end;
  }
  return false;
}

function segmentState(g: Gathered, overshadowed: boolean): { state: CellState; copies: number; targets: string[]; at?: string; error?: string } {
  const targets = new Set<string>();
  let copies = 0;
  let at: string | undefined;
  let error: string | undefined;
  let lost = false;
  let failed = false;
  let pending = false;
  for (const { s } of g.onNodes) {
    for (const t of s.backup.targets ?? (s.backup.state === 'backedUp' && s.backup.target ? [s.backup.target] : [])) targets.add(t);
    copies = Math.max(copies, copiesOf(s));
    if (s.backup.at && (!at || s.backup.at > at)) at = s.backup.at;
    const d = displayState(s);
    if (d === 'lost') lost = true;
    if (s.backup.state === 'failed') {
      failed = true;
      error ??= s.backup.error;
    }
    if (s.backup.state === 'pending') pending = true;
  }
  for (const { target, s } of g.stored) if (!s.damaged) targets.add(target.url);
  copies = Math.max(copies, g.stored.filter((x) => !x.s.damaged).length);
  let state: CellState;
  if (lost) state = 'lost';
  else if (g.onNodes.length === 0) state = 'backupOnly';
  else if (overshadowed) state = 'overshadowed';
  else if (failed) state = 'failed';
  else if (pending) state = 'pending';
  else state = copies > 0 ? 'backedUp' : 'cacheOnly';
  return { state, copies, targets: [...targets].sort(), at, error };
}

/**
 * The timeline of `dataSource` from every loaded node: sources give their cache's segments, targets their catalog.
 * A segment in several places is one segment: its replicas and copies are counted, not drawn twice.
 */
export function buildTimeline(dataSource: string, nodes: ReadonlyArray<NodeView & SnapshotsView>, wantedCopies = 1, now = Date.now()): Timeline {
  const steps = timelineSteps(dataSource, nodes, wantedCopies, now);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/** Segments or cells handled between two pauses of `timelineSteps`. */
const STEP = 1000;

/**
 * `buildTimeline` in steps: it pauses (yields) after every `STEP` segments or cells, so that the extension host,
 * which builds the timeline of 10,000 segments while VS Code creates its webview, can answer VS Code between steps
 * (built in one go, it held the webview's creation back until it was done).
 */
export function* timelineSteps(dataSource: string, nodes: ReadonlyArray<NodeView & SnapshotsView>, wantedCopies = 1, now = Date.now()): Generator<void, Timeline> {
  let done = 0;
  const byId = new Map<string, Gathered>();
  const gather = (id: string, interval: string, version: string, partition: number, size: number): Gathered => {
    let g = byId.get(id);
    if (!g) {
      g = { id, interval, version, partition, size, onNodes: [], stored: [] };
      byId.set(id, g);
    }
    if (size > g.size) g.size = size;
    return g;
  };
  for (const n of nodes) {
    for (const s of n.segments?.itemsOf(dataSource) ?? []) {
      gather(s.id, s.interval, s.version, s.partition, s.size).onNodes.push({ node: n, s });
      if (++done % STEP === 0) yield;
    }
    for (const s of n.stored?.itemsOf(dataSource) ?? []) {
      gather(s.segmentId, s.interval, s.version, s.partition, s.size).stored.push({ target: n, s });
      if (++done % STEP === 0) yield;
    }
  }

  // Group by version, then by interval; each interval's text parsed once (the partitions of a time chunk share it).
  const times = new Map<string, { start: number; end: number } | undefined>();
  const timesOf = (interval: string) => {
    if (!times.has(interval)) times.set(interval, parseInterval(interval));
    return times.get(interval);
  };
  const versions = new Map<string, Map<string, Gathered[]>>();
  for (const g of byId.values()) {
    if (!timesOf(g.interval)) continue;
    let lane = versions.get(g.version);
    if (!lane) versions.set(g.version, (lane = new Map()));
    const list = lane.get(g.interval);
    if (list) list.push(g);
    else lane.set(g.interval, [g]);
  }
  const order = [...versions.keys()].sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
  const counts = Object.fromEntries(CELL_STATES.map((s) => [s, 0])) as Record<CellState, number>;
  const lanes: Lane[] = [];
  let newer: Array<[number, number]> = [];
  let start = Infinity;
  let end = -Infinity;
  for (const version of order) {
    const lane = versions.get(version)!;
    const ranges: Array<[number, number]> = [];
    const cells: Cell[] = [];
    for (const [interval, group] of lane) {
      const t = timesOf(interval)!;
      ranges.push([t.start, t.end]);
      start = Math.min(start, t.start);
      end = Math.max(end, t.end);
      const over = covered(newer, t.start, t.end);
      const segments: CellSegment[] = group
        .sort((a, b) => a.partition - b.partition)
        .map((g) => {
          const st = segmentState(g, over);
          return {
            id: g.id,
            partition: g.partition,
            size: g.size,
            state: st.state,
            copies: st.copies,
            nodes: g.onNodes.map((x) => x.node.url),
            targets: st.targets,
            ...(st.at ? { backedUpAt: st.at } : {}),
            ...(st.error ? { error: st.error } : {}),
          };
        });
      const state = CELL_STATES.find((s) => segments.some((x) => x.state === s))!;
      const backed = segments.filter((x) => x.copies > 0);
      const copies = backed.length ? Math.min(...backed.map((x) => x.copies)) : 0;
      const size = segments.reduce((a, x) => a + x.size, 0);
      counts[state]++;
      cells.push({
        key: cellKey(version, interval),
        interval,
        start: t.start,
        end: t.end,
        version,
        state,
        copies,
        size,
        segments,
      });
      if (++done % STEP === 0) yield;
    }
    cells.sort((a, b) => a.start - b.start);
    lanes.push({ version, cells });
    newer = merge([...newer, ...ranges]);
  }
  if (!Number.isFinite(start)) {
    start = 0;
    end = 0;
  }
  return { dataSource, start, end, lanes, counts, wantedCopies, segments: byId.size, snapshots: snapshotMarkers(dataSource, nodes, now) };
}

/** A cell's key: its version and interval, as JSON (media/timeline.js builds the same from the wire form). */
export function cellKey(version: string, interval: string): string {
  return JSON.stringify([version, interval]);
}

/**
 * The timeline as it travels to the page. 10,000 segments as objects made a 4 MB message, slow to send through the
 * webview and to parse: here a cell is `CELL_FIELDS.length` numbers in its lane's flat array (its state an index in
 * `states`, its start and its length in `unit`s from `start`, the unit the largest that divides them all, an hour
 * for hourly segments: short numbers; its interval -1 when it reads as `isoInterval` of its times, the way Druid
 * writes intervals, which the page writes again; else an index in `intervals`), and its segments stay in the
 * extension until the page asks for them (`cellDetails`).
 */
export interface WireTimeline {
  dataSource: string;
  start: number;
  end: number;
  wantedCopies: number;
  segments: number;
  counts: Record<CellState, number>;
  snapshots: SnapshotMarker[];
  states: readonly CellState[];
  /** ms per unit of the cells' start and length. */
  unit: number;
  intervals: string[];
  lanes: Array<{ version: string; cells: number[] }>;
}

/** The numbers of a cell in a lane's array, in this order. */
export const CELL_FIELDS = ['interval', 'start', 'length', 'state', 'copies', 'size', 'segments'] as const;

/** An interval of ms times as Druid writes it (ISO 8601 in UTC, with ms); media/timeline.js writes it the same way. */
export function isoInterval(start: number, end: number): string {
  return `${new Date(start).toISOString()}/${new Date(end).toISOString()}`;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

export function toWire(tl: Timeline): WireTimeline {
  let unit = 0;
  for (const lane of tl.lanes) for (const c of lane.cells) unit = gcd(gcd(unit, c.start - tl.start), c.end - c.start);
  unit ||= 1;
  const intervals: string[] = [];
  const intervalIndex = new Map<string, number>();
  const stateIndex = new Map(CELL_STATES.map((s, i) => [s, i]));
  const lanes = tl.lanes.map((lane) => {
    const cells: number[] = [];
    for (const c of lane.cells) {
      let i = c.interval === isoInterval(c.start, c.end) ? -1 : intervalIndex.get(c.interval);
      if (i === undefined) {
        i = intervals.push(c.interval) - 1;
        intervalIndex.set(c.interval, i);
      }
      cells.push(i, (c.start - tl.start) / unit, (c.end - c.start) / unit, stateIndex.get(c.state)!, c.copies, c.size, c.segments.length);
    }
    return { version: lane.version, cells };
  });
  const { dataSource, start, end, wantedCopies, segments, counts, snapshots } = tl;
  return { dataSource, start, end, wantedCopies, segments, counts, snapshots, states: CELL_STATES, unit, intervals, lanes };
}

/** The segments of a cell as the page's hover lists them: the first `max`, and how many more there are. */
export function cellDetails(cell: Cell, max = 8): { key: string; segments: CellSegment[]; more: number } {
  return { key: cell.key, segments: cell.segments.slice(0, max), more: Math.max(0, cell.segments.length - max) };
}

/** Where the tree commands find a segment of a cell: a node's row when a node lists it, else a target's row. */
export function segmentRef(
  dataSource: string,
  cell: Pick<Cell, 'interval'>,
  s: CellSegment,
): { view: 'nodes' | 'backups'; kind: 'segment' | 'storedSegment'; node: string; dataSource: string; interval: string; segmentId: string } | undefined {
  const node = s.nodes[0];
  if (node) return { view: 'nodes', kind: 'segment', node, dataSource, interval: cell.interval, segmentId: s.id };
  const target = s.targets[0];
  if (target) return { view: 'backups', kind: 'storedSegment', node: target, dataSource, interval: cell.interval, segmentId: s.id };
  return undefined;
}

/** The names of the nodes, for the hover. */
export function nodeNames(nodes: readonly NodeView[]): Record<string, string> {
  return Object.fromEntries(nodes.map((n) => [n.url, nodeLabel(n)]));
}
