/**
 * What the extension knows about the configured nodes: each node's identity, its segments, its store catalog and
 * its jobs, loaded when a view first needs them and then kept current by the node's events (live.ts). Changes
 * are gathered for a short while and handed to the views in one batch, so a burst of events (a backup of
 * thousands of segments) costs a few tree refreshes, not thousands. No `vscode` import.
 */
import type { Job, NodeInfo, SegmentInfo, SidecarEvent, StoredSegment } from '../sidecar/api.js';
import type { SnapshotSummary } from '../sidecar/snapshot/service.js';
import { normalizeNodeUrl, type SidecarClient, SidecarRequestError } from './client.js';
import { GroupedIndex, type Grouping } from './tree/index.js';
import type { NodeProblem, NodeView } from './tree/rows.js';

export interface NodeConfig {
  url: string;
  name?: string;
  /** Where the Druid web console of this node's cluster is; default: the Router's port on the host of `url`. */
  consoleUrl?: string;
}

/** A console URL from the settings: http(s) only, without credentials; undefined for anything else. */
export function checkConsoleUrl(raw: string): string | undefined {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return undefined;
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.username || u.password) return undefined;
  return u.toString();
}

/** Reads `druidBackup.nodes`: URLs as strings or `{url, name?, consoleUrl?}`; bad entries are reported, not fatal. */
export function parseNodes(raw: unknown, warn: (message: string) => void): NodeConfig[] {
  const out = new Map<string, NodeConfig>();
  for (const entry of Array.isArray(raw) ? raw : []) {
    const o: Partial<NodeConfig> = typeof entry === 'string' ? { url: entry } : entry && typeof entry === 'object' ? (entry as Partial<NodeConfig>) : {};
    if (typeof o.url !== 'string') {
      warn(`druidBackup.nodes: ${JSON.stringify(entry)} has no "url"`);
      continue;
    }
    try {
      const url = normalizeNodeUrl(o.url);
      let consoleUrl: string | undefined;
      if (typeof o.consoleUrl === 'string' && o.consoleUrl) {
        consoleUrl = checkConsoleUrl(o.consoleUrl);
        if (!consoleUrl) warn(`druidBackup.nodes: the consoleUrl of ${url} is not an http:// or https:// URL; the default is used`);
      }
      out.set(url, { url, name: typeof o.name === 'string' && o.name ? o.name : undefined, consoleUrl });
    } catch (e) {
      warn(`druidBackup.nodes: ${(e as Error).message}`);
    }
  }
  return [...out.values()];
}

/**
 * The Druid web console of the node's cluster: the node's `consoleUrl` setting (http or https only), else the
 * Router's default port (8888) on the host of the node's configured URL, which is where a standard deployment serves
 * it. Never a host the server names (its `druid.host`): a server must not choose what VS Code opens.
 */
export function consoleUrlOf(n: { url: string; consoleUrl?: string }): string {
  const configured = n.consoleUrl ? checkConsoleUrl(n.consoleUrl) : undefined;
  if (configured) return configured;
  // The Router of a standard deployment speaks plain HTTP on 8888 whatever the sidecar speaks; an IPv6 hostname keeps its brackets.
  return `http://${new URL(n.url).hostname}:8888/unified-console.html`;
}

export type ViewName = 'nodes' | 'backups' | 'jobs';

/** Something changed under a node; the deeper the path, the smaller the refresh. */
export interface Change {
  view: ViewName;
  node: string;
  dataSource?: string;
  interval?: string;
  segmentId?: string;
  jobId?: string;
  /** Children were added or removed at the deepest level given (not only a row's look). */
  structural: boolean;
}

export const SEGMENT_GROUPING: Grouping<SegmentInfo> = {
  id: (s) => s.id,
  dataSource: (s) => s.dataSource,
  interval: (s) => s.interval,
  compare: (a, b) => (a.version === b.version ? a.partition - b.partition : a.version < b.version ? 1 : -1),
};

export const STORED_GROUPING: Grouping<StoredSegment> = {
  id: (s) => s.segmentId,
  dataSource: (s) => s.dataSource,
  interval: (s) => s.interval,
  compare: (a, b) => (a.version === b.version ? a.partition - b.partition : a.version < b.version ? 1 : -1),
};

export class NodeEntry implements NodeView {
  readonly url: string;
  name?: string;
  consoleUrl?: string;
  info?: NodeView['info'];
  error?: NodeProblem;
  segments?: GroupedIndex<SegmentInfo>;
  segmentsError?: NodeProblem;
  stored?: GroupedIndex<StoredSegment>;
  storedError?: NodeProblem;
  jobs?: Job[];
  jobsError?: NodeProblem;
  /** Its snapshots (`GET /data/v1/snapshots`), once the Backups view or the timeline asked. */
  snapshots?: SnapshotSummary[];
  snapshotsError?: NodeProblem;
  /** Copies it keeps of each segment (`GET /data/v1/targets`), once the status bar asked. */
  wantedCopies?: number;
  /** Loads under way, so two views asking at once cause one request. */
  readonly loading = new Map<string, Promise<void>>();
  /** Counts resets: a load begun before one (with an old client, perhaps without the token) keeps nothing it read. */
  epoch = 0;

  constructor(
    config: NodeConfig,
    public client: SidecarClient,
    /** For a bucket: the URL of the node that answers for it. */
    readonly via?: string,
    private readonly bucketInfo?: NodeInfo,
  ) {
    this.url = config.url;
    this.name = config.name;
    this.consoleUrl = config.consoleUrl;
    this.info = bucketInfo;
  }

  /**
   * A bucket (a target with no sidecar of its own) that `source` backs up to, shown as a target: it has no sidecar, so its catalog,
   * manifests and verify jobs are asked of the source, with the source's token.
   */
  static forBucket(source: NodeEntry, bucket: string): NodeEntry {
    const info: NodeInfo = {
      name: bucket,
      version: source.info?.version ?? '',
      roles: ['target'],
      druid: { locations: [], layout: 'empty', deepStorage: { type: 's3', zip: false } },
      startedAt: source.info?.startedAt ?? '',
    };
    return new NodeEntry({ url: bucket }, source.client.forBucket(bucket), source.url, info);
  }

  /** Forgets everything loaded, so the next look asks the node again. */
  reset(): void {
    this.info =
      this.error =
      this.segments =
      this.segmentsError =
      this.stored =
      this.storedError =
      this.jobs =
      this.jobsError =
      this.snapshots =
      this.snapshotsError =
        undefined;
    this.info = this.bucketInfo;
    this.loading.clear();
    this.epoch++;
  }
}

export function problemOf(e: unknown): NodeProblem {
  if (e instanceof SidecarRequestError) return { message: e.message, code: e.code };
  return { message: e instanceof Error ? e.message : String(e) };
}

export class Cluster {
  private readonly entries = new Map<string, NodeEntry>();
  private readonly listeners = new Set<(changes: Change[]) => void>();
  private pending: Change[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly debounceMs = 200) {}

  onChange(fn: (changes: Change[]) => void): { dispose(): void } {
    this.listeners.add(fn);
    return { dispose: () => this.listeners.delete(fn) };
  }

  list(): NodeEntry[] {
    return [...this.entries.values()];
  }

  get(url: string): NodeEntry | undefined {
    return this.entries.get(url);
  }

  /**
   * Makes the configured nodes these: a node whose URL stays keeps what was loaded unless its client changed
   * (new token); returns the URLs added and removed.
   */
  setNodes(configs: NodeConfig[], clientFor: (c: NodeConfig) => SidecarClient): { added: string[]; removed: string[] } {
    const wanted = new Map(configs.map((c) => [c.url, c]));
    const removed = [...this.entries.values()].filter((e) => !e.via && !wanted.has(e.url)).map((e) => e.url);
    const added: string[] = [];
    const next = new Map<string, NodeEntry>();
    for (const [url, c] of wanted) {
      const old = this.entries.get(url);
      if (old) {
        old.name = c.name;
        old.consoleUrl = c.consoleUrl;
        next.set(url, old);
      } else {
        next.set(url, new NodeEntry(c, clientFor(c)));
        added.push(url);
      }
    }
    // Buckets stay while the node that answers for them does.
    for (const e of this.entries.values()) if (e.via && wanted.has(e.via)) next.set(e.url, e);
    this.entries.clear();
    for (const [u, e] of next) this.entries.set(u, e);
    this.syncBuckets();
    if (added.length || removed.length) this.emitAll();
    return { added, removed };
  }

  /**
   * Shows each bucket (a target the node answers for) a node backs up to as a target answered by that node, and drops buckets no node
   * names any more. Called whenever a node's identity is read.
   */
  syncBuckets(): void {
    const wanted = new Map<string, NodeEntry>();
    for (const e of this.entries.values()) {
      const t = e.info?.target;
      // The node says what kind its target is: the extension never reads a kind from a URL's scheme.
      if (!e.via && t && e.info?.targetKind?.answeredByNode && !wanted.has(t)) wanted.set(t, e);
    }
    let changed = false;
    for (const e of [...this.entries.values()]) {
      if (e.via && wanted.get(e.url)?.url !== e.via) {
        this.entries.delete(e.url);
        changed = true;
      }
    }
    for (const [bucket, source] of wanted) {
      if (!this.entries.has(bucket)) {
        this.entries.set(bucket, NodeEntry.forBucket(source, bucket));
        changed = true;
      }
    }
    if (changed) this.emit({ view: 'backups', node: '', structural: true });
  }

  /** Drops what was loaded (one node or all) and tells the views, which load again as they are looked at. */
  reload(url?: string): void {
    for (const e of url ? [this.entries.get(url)].filter((x) => x !== undefined) : this.entries.values()) e.reset();
    if (url) for (const view of ['nodes', 'backups', 'jobs'] as const) this.emit({ view, node: url, structural: true });
    else this.emitAll();
  }

  /** Replaces a node's client (its token changed) and reloads it. */
  replaceClient(url: string, client: SidecarClient): void {
    const e = this.entries.get(url);
    if (!e) return;
    e.client = client;
    for (const b of this.entries.values()) {
      if (b.via !== url) continue;
      b.client = client.forBucket(b.url);
      this.reload(b.url);
    }
    this.reload(url);
  }

  ensureInfo(e: NodeEntry): Promise<void> {
    if (e.info || e.error) return Promise.resolve();
    return this.once(
      e,
      'info',
      () => e.client.node(),
      (v) => {
        e.info = v;
        this.syncBuckets();
      },
      (p) => {
        e.error = p;
        this.syncBuckets();
      },
    );
  }

  ensureSegments(e: NodeEntry): Promise<void> {
    return this.ensureInfo(e).then(() => {
      if (e.error || e.segments || e.segmentsError || !e.info?.roles.includes('source')) return;
      return this.once(
        e,
        'segments',
        () => e.client.allSegments(),
        (v) => (e.segments = GroupedIndex.of(SEGMENT_GROUPING, v)),
        (p) => (e.segmentsError = p),
      );
    });
  }

  ensureStored(e: NodeEntry): Promise<void> {
    return this.ensureInfo(e).then(() => {
      if (e.error || e.stored || e.storedError || !e.info?.roles.includes('target')) return;
      return this.once(
        e,
        'stored',
        () => e.client.allStored(),
        (v) => (e.stored = GroupedIndex.of(STORED_GROUPING, v)),
        (p) => (e.storedError = p),
      );
    });
  }

  ensureSnapshots(e: NodeEntry): Promise<void> {
    return this.ensureInfo(e).then(() => {
      if (e.error || e.snapshots || e.snapshotsError || !e.info?.roles.includes('target')) return;
      return this.once(
        e,
        'snapshots',
        () => e.client.snapshots(),
        (v) => (e.snapshots = v),
        (p) => (e.snapshotsError = p),
      );
    });
  }

  ensureJobs(e: NodeEntry): Promise<void> {
    return this.ensureInfo(e).then(() => {
      if (e.error || e.jobs || e.jobsError) return;
      return this.once(
        e,
        'jobs',
        () => e.client.jobs(),
        (v) => (e.jobs = v),
        (p) => (e.jobsError = p),
      );
    });
  }

  /** Applies one event of a node's stream to what is loaded; what is not loaded yet will be read fresh. */
  apply(url: string, ev: SidecarEvent): void {
    const e = this.entries.get(url);
    if (!e) return;
    switch (ev.type) {
      case 'segment': {
        if (!e.segments) return;
        const s = ev.segment;
        const old = e.segments.upsert(s);
        const moved = old && (old.dataSource !== s.dataSource || old.interval !== s.interval);
        this.segmentChanged(url, s.dataSource, s.interval, s.id, !old || !!moved);
        if (old && moved) this.segmentChanged(url, old.dataSource, old.interval, old.id, true);
        return;
      }
      case 'segment-removed': {
        const old = e.segments?.remove(ev.segmentId);
        if (old) this.segmentChanged(url, old.dataSource, old.interval, old.id, true);
        return;
      }
      case 'stored': {
        if (!e.stored) return;
        const s = ev.segment;
        const old = e.stored.upsert(s);
        this.emit({ view: 'backups', node: url, dataSource: s.dataSource, interval: s.interval, segmentId: s.segmentId, structural: !old });
        return;
      }
      case 'job': {
        if (!e.jobs) return;
        const i = e.jobs.findIndex((j) => j.id === ev.job.id);
        if (i >= 0) e.jobs[i] = ev.job;
        else e.jobs.unshift(ev.job);
        this.emit({ view: 'jobs', node: url, jobId: ev.job.id, structural: i < 0 });
        return;
      }
    }
  }

  /** Records a job's latest state got by polling, as if its event had come. */
  jobSeen(url: string, job: Job): void {
    this.apply(url, { type: 'job', job });
  }

  private segmentChanged(node: string, dataSource: string, interval: string, segmentId: string, structural: boolean): void {
    this.emit({ view: 'nodes', node, dataSource, interval, segmentId, structural });
  }

  /**
   * Runs one load of a node at a time and keeps its answer (or its failure); when it ends, the views that show what it
   * loaded are told. A load the node was reset during (a new token, a reconnect, Refresh) keeps nothing and tells no
   * view: its answer may come from the old client, and the reset has told the views already. Other nodes' loads are
   * not touched by it.
   */
  private once<T>(
    e: NodeEntry,
    what: 'info' | 'segments' | 'stored' | 'jobs' | 'snapshots',
    fetch: () => Promise<T>,
    keep: (value: T) => void,
    fail: (problem: NodeProblem) => void,
  ): Promise<void> {
    const running = e.loading.get(what);
    if (running) return running;
    const epoch = e.epoch;
    const settle = (record: () => void) => {
      if (e.loading.get(what) === done) e.loading.delete(what);
      if (e.epoch !== epoch) return;
      record();
      const views: Record<typeof what, readonly ViewName[]> = {
        info: ['nodes', 'backups', 'jobs'],
        segments: ['nodes'],
        stored: ['backups'],
        snapshots: ['backups'],
        jobs: ['jobs'],
      };
      for (const view of views[what]) this.emit({ view, node: e.url, structural: true });
    };
    const done: Promise<void> = fetch().then(
      (value) => settle(() => keep(value)),
      (err: unknown) => settle(() => fail(problemOf(err))),
    );
    e.loading.set(what, done);
    return done;
  }

  private emitAll(): void {
    for (const view of ['nodes', 'backups', 'jobs'] as const) this.emit({ view, node: '', structural: true });
  }

  private emit(c: Change): void {
    this.pending.push(c);
    this.timer ??= setTimeout(() => this.flush(), this.debounceMs);
  }

  /** Hands the gathered changes to the views now. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.pending;
    this.pending = [];
    if (batch.length) for (const fn of this.listeners) fn(batch);
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.listeners.clear();
  }
}
