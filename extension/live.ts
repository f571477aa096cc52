/**
 * Live updates: one `GET /data/v1/events` stream per node, parsed as server-sent events and applied to the
 * cluster model. A stream that fails or ends is opened again after a growing, jittered delay (1 s doubling to
 * 30 s), reset once a stream is up; after a reconnect the node is read again, since events may have been missed
 * while it was down, and so is a node first read while it was down or failing. No `vscode` import.
 */
import { createParser } from 'eventsource-parser';
import type { SidecarEvent } from '../sidecar/api.js';
import type { ClientLog } from './client.js';
import type { Cluster, NodeEntry } from './cluster.js';

export interface Backoff {
  baseMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: Backoff = { baseMs: 1000, maxMs: 30_000 };

/** The wait before reconnect attempt `attempt` (0-based): exponential, capped, with ±20% jitter so nodes spread out. */
export function backoffDelay(attempt: number, b: Backoff = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const raw = Math.min(b.maxMs, b.baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(raw * (0.8 + 0.4 * random()));
}

const EVENT_TYPES = new Set(['segment', 'segment-removed', 'job', 'stored']);

/** Parses one event's data; undefined for anything that is not a known event (a newer server's, a keep-alive). */
export function parseEvent(data: string): SidecarEvent | undefined {
  try {
    const e = JSON.parse(data) as { type?: unknown };
    return e && typeof e === 'object' && typeof e.type === 'string' && EVENT_TYPES.has(e.type) ? (e as SidecarEvent) : undefined;
  } catch {
    return undefined;
  }
}

class NodeStream {
  private readonly abort = new AbortController();
  private attempt = 0;
  private connections = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly entry: NodeEntry,
    private readonly cluster: Cluster,
    private readonly log: ClientLog,
    private readonly backoff: Backoff,
  ) {
    void this.run();
  }

  private async run(): Promise<void> {
    if (this.abort.signal.aborted) return;
    const url = this.entry.url;
    try {
      const stream = await this.entry.client.events(this.abort.signal);
      // Read the node again after a reconnect (events may have been missed), and when the stream comes up after
      // failed tries or what was read of the node failed: it answers now, and its rows should not stay in error.
      const reread = this.connections++ > 0 || this.attempt > 0 || this.entry.error !== undefined;
      this.attempt = 0;
      if (reread) this.cluster.reload(url);
      this.log.info(`events of ${url}: connected`);
      const parser = createParser({
        onEvent: (m) => {
          const ev = parseEvent(m.data);
          if (ev) this.cluster.apply(url, ev);
        },
      });
      stream.setEncoding('utf8');
      for await (const chunk of stream) parser.feed(chunk as string);
      if (!this.abort.signal.aborted) this.log.info(`events of ${url}: the node closed the stream`);
    } catch (e) {
      if (this.abort.signal.aborted) return;
      this.log.error(`events of ${url}: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (this.abort.signal.aborted) return;
    const wait = backoffDelay(this.attempt++, this.backoff);
    this.log.info(`events of ${url}: reconnecting in ${(wait / 1000).toFixed(1)} s`);
    this.timer = setTimeout(() => void this.run(), wait);
  }

  close(): void {
    this.abort.abort();
    if (this.timer) clearTimeout(this.timer);
  }
}

/** Keeps one stream open per configured node while live updates are on. */
export class LiveUpdates {
  private readonly streams = new Map<string, { entry: NodeEntry; client: NodeEntry['client']; stream: NodeStream }>();

  constructor(
    private readonly cluster: Cluster,
    private readonly log: ClientLog,
    private readonly backoff: Backoff = DEFAULT_BACKOFF,
  ) {}

  /** Opens streams for new nodes (or nodes with a new client) and closes those of nodes that went. */
  sync(enabled: boolean): void {
    // Buckets have no stream: their node's events tell of their backups.
    const wanted = enabled ? this.cluster.list().filter((e) => !e.via) : [];
    const keep = new Set<string>();
    for (const entry of wanted) {
      const s = this.streams.get(entry.url);
      if (s && s.entry === entry && s.client === entry.client) {
        keep.add(entry.url);
        continue;
      }
      s?.stream.close();
      this.streams.set(entry.url, { entry, client: entry.client, stream: new NodeStream(entry, this.cluster, this.log, this.backoff) });
      keep.add(entry.url);
    }
    for (const [url, s] of this.streams) {
      if (!keep.has(url)) {
        s.stream.close();
        this.streams.delete(url);
      }
    }
  }

  dispose(): void {
    for (const s of this.streams.values()) s.stream.close();
    this.streams.clear();
  }
}
