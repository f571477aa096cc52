/**
 * Taking a snapshot: what the Coordinator uses now, which of it the targets hold, and Druid's metadata, written to
 * every target that keeps snapshots: the blobs first (created once, content-addressed, so a list that did not change
 * costs nothing), the header last.
 *
 * 1. A marker "snapshot being written" goes to every target (a prune that sees it sweeps nothing, store.ts).
 * 2. The used segments are read streaming from the Coordinator and kept per data source as compact lines.
 * 3. Each target's catalog is read: a segment is backed up when any target lists a copy not marked damaged.
 * 4. The metadata is captured (`captureClusterMetadata`, sidecar/cluster/, injected); with a Broker, the rows of
 *    exactly the snapshot's segments are summed from `sys.segments.num_rows` (countRows, sidecar/cluster/rows.ts).
 * 5. Before the headers: a target whose prune lease is live is waited for, and the catalogs read again, so a
 *    header never says "backed up" of a copy a prune removed while this ran.
 * 6. Blobs, then the header, to each target; the markers go. A target that fails is reported, the others keep theirs.
 */
import type { Logger } from 'pino';
import { BackupError, messageOf } from '../errors.js';
import { remoteIndex } from '../store/held.js';
import type { Target } from '../store/target.js';
import { sleep } from '../util/sleep.js';
import { newSnapshotId, sha256 } from './check.js';
import type { DruidAuth, UsedSegment } from './coordinator.js';
import { usedSegments } from './coordinator.js';
import type { RowCounts } from '../cluster/rows.js';
import { countRows } from '../cluster/rows.js';
import type { ClusterMetadata, MissingReason, SnapshotDataSource, SnapshotHeader, SnapshotSegment } from './model.js';
import { SNAPSHOT_FORMAT } from './model.js';

export type CaptureClusterMetadata = (opts: {
  coordinator: string;
  overlord?: string;
  broker?: string;
  auth?: DruidAuth;
  dataSources?: string[];
  signal?: AbortSignal;
  log: Logger;
}) => Promise<ClusterMetadata>;

export interface TakeOptions {
  coordinator: string;
  overlord?: string;
  broker?: string;
  auth?: DruidAuth;
  /** Only these data sources; default all. */
  dataSources?: string[];
  /** Targets whose catalogs count for completeness. */
  catalogs: Target[];
  /** Targets the snapshot is written to: those with the `snapshots` capability. */
  targets: Target[];
  node: string;
  captureMetadata: CaptureClusterMetadata;
  /** Why a used segment no target holds is missing, when this node knows (its backup state); default `pending`. */
  missingReason?: (segmentId: string) => MissingReason | undefined;
  log: Logger;
  signal?: AbortSignal;
  now?: () => number;
  /** How long to wait for a prune to end before writing the header. */
  leaseWaitMs?: number;
}

export interface TakeResult {
  header: SnapshotHeader;
  written: string[];
  failed: Array<{ target: string; error: string }>;
  /** Blobs each target already held (identical lists). */
  reused: number;
}

const MARKER_MS = 60 * 60_000;

interface Entry {
  used: UsedSegment;
  /** The descriptor's JSON, kept as text (a tenth of the memory of the parsed object). */
  descriptor: string;
}

/**
 * The segments some target holds a good copy of: a copy the target's own verify marked damaged is held but does not
 * count (a restore could not use it), read from the same catalog the active backup reads (remoteIndex).
 */
async function heldIds(catalogs: Target[], dataSources: string[] | undefined, signal?: AbortSignal): Promise<Set<string>> {
  const held = new Set<string>();
  for (const t of catalogs) {
    for (const ds of dataSources?.length ? dataSources : [undefined]) {
      for (const [id, s] of await remoteIndex(t, ds ? { dataSource: ds } : {}, { signal })) if (!s.damaged) held.add(id);
    }
  }
  return held;
}

function line(e: Entry, backedUp: boolean, missing: MissingReason | undefined, rows: number | undefined): string {
  const s: Omit<SnapshotSegment, 'descriptor'> & { descriptor: null } = {
    id: e.used.id,
    overshadowed: e.used.overshadowed,
    size: e.used.size,
    descriptor: null,
    backedUp,
    ...(missing ? { missing } : {}),
    ...(rows !== undefined ? { rows } : {}),
  };
  // The descriptor goes in as the Coordinator sent it (re-serialized once), in SnapshotSegment's field order.
  return JSON.stringify(s).replace('"descriptor":null', `"descriptor":${e.descriptor}`);
}

function build(
  byDs: Map<string, Map<string, Entry>>,
  held: Set<string>,
  missingReason: TakeOptions['missingReason'],
  counted: RowCounts | undefined,
): { dataSources: SnapshotDataSource[]; blobs: Map<string, Buffer> } {
  const blobs = new Map<string, Buffer>();
  const dataSources: SnapshotDataSource[] = [];
  for (const name of [...byDs.keys()].sort()) {
    const entries = [...byDs.get(name)!.values()].sort((a, b) => (a.used.id < b.used.id ? -1 : a.used.id > b.used.id ? 1 : 0));
    let bytes = 0;
    let rows: number | undefined = 0;
    let complete = true;
    // Each line becomes bytes at once: the list is held once, as bytes, not also as text.
    const lines: Buffer[] = [];
    let size = 0;
    for (const e of entries) {
      const backedUp = held.has(e.used.id);
      const missing = backedUp ? undefined : e.used.replication === 0 ? 'not_cached' : (missingReason?.(e.used.id) ?? 'pending');
      if (!backedUp) complete = false;
      bytes += e.used.size;
      // With a Broker, its count alone (sys.segments.num_rows); a data source's sum only when every segment has one,
      // as a short sum would fail a restore's check of a whole restore.
      const r = counted ? counted.bySegment.get(e.used.id) : e.used.rows;
      rows = rows !== undefined && r !== undefined ? rows + r : undefined;
      const b = Buffer.from(`${line(e, backedUp, missing, r)}\n`, 'utf8');
      lines.push(b);
      size += b.length;
    }
    const blob = Buffer.concat(lines, size);
    const list = sha256(blob);
    blobs.set(list, blob);
    dataSources.push({ name, segments: entries.length, bytes, ...(rows !== undefined && entries.length ? { rows } : {}), complete, list });
  }
  return { dataSources, blobs };
}

/** The Broker's row counts of exactly the snapshot's segments; when the Broker fails (logged), what the Coordinator reported. */
async function brokerRows(broker: string, byDs: Map<string, Map<string, Entry>>, o: TakeOptions): Promise<RowCounts | undefined> {
  const ids: Record<string, string[]> = {};
  for (const [ds, m] of byDs) ids[ds] = [...m.keys()];
  try {
    return await countRows(broker, ids, o.auth, o.signal);
  } catch (e) {
    if (o.signal?.aborted) throw e;
    o.log.warn({ broker, err: messageOf(e) }, 'no row counts from the Broker; the snapshot has none');
    return undefined;
  }
}

async function liveLease(t: Target, signal?: AbortSignal): Promise<boolean> {
  const l = await t.snapshots!.readLease(signal).catch(() => undefined);
  return !!l && Date.parse(l.expires) > Date.now();
}

export async function takeSnapshot(o: TakeOptions): Promise<TakeResult> {
  const now = o.now ?? Date.now;
  const targets = o.targets.filter((t) => t.snapshots);
  if (!targets.length) throw new BackupError('bad_config', 'no configured target keeps snapshots (a target sidecar, a local store or a bucket)');
  const t0 = now();
  const id = newSnapshotId(t0);
  const markerExpires = new Date(t0 + MARKER_MS).toISOString();
  const marked: Target[] = [];
  const failed: Array<{ target: string; error: string }> = [];
  for (const t of targets) {
    try {
      await t.snapshots!.putWriting(id, markerExpires, o.signal);
      marked.push(t);
    } catch (e) {
      failed.push({ target: t.url, error: messageOf(e) });
    }
  }
  if (!marked.length) throw new BackupError('target_error', `no target took snapshot ${id}: ${failed.map((f) => `${f.target}: ${f.error}`).join('; ')}`);
  try {
    const byDs = new Map<string, Map<string, Entry>>();
    for (const ds of o.dataSources ?? []) byDs.set(ds, new Map());
    let count = 0;
    for await (const u of usedSegments({ coordinator: o.coordinator, auth: o.auth, dataSources: o.dataSources, signal: o.signal })) {
      let m = byDs.get(u.dataSource);
      if (!m) byDs.set(u.dataSource, (m = new Map()));
      m.set(u.id, { used: u, descriptor: JSON.stringify(u.descriptor) });
      count++;
    }
    o.log.info({ snapshot: id, segments: count, dataSources: byDs.size }, 'used segments read from the Coordinator');
    let held = await heldIds(o.catalogs, o.dataSources, o.signal);
    const metadata = await o.captureMetadata({
      coordinator: o.coordinator,
      ...(o.overlord ? { overlord: o.overlord } : {}),
      ...(o.broker ? { broker: o.broker } : {}),
      ...(o.auth ? { auth: o.auth } : {}),
      ...(o.dataSources ? { dataSources: o.dataSources } : {}),
      signal: o.signal,
      log: o.log,
    });
    // A prune running now may remove copies counted above: wait for it to end, then count again.
    const waitUntil = now() + (o.leaseWaitMs ?? 10 * 60_000);
    let waited = false;
    for (const t of marked) {
      while (await liveLease(t, o.signal)) {
        if (now() > waitUntil) throw new BackupError('conflict', `a prune of ${t.url} still runs; snapshot ${id} was not written`);
        waited = true;
        await sleep(500, o.signal);
        if (o.signal?.aborted) throw new BackupError('cancelled', `snapshot ${id} cancelled`);
      }
    }
    if (waited) held = await heldIds(o.catalogs, o.dataSources, o.signal);
    const counted = o.broker ? await brokerRows(o.broker, byDs, o) : undefined;
    const { dataSources, blobs } = build(byDs, held, o.missingReason, counted);
    const metaBlob = Buffer.from(JSON.stringify(metadata), 'utf8');
    const metaSha = sha256(metaBlob);
    blobs.set(metaSha, metaBlob);
    const header: SnapshotHeader = {
      formatVersion: SNAPSHOT_FORMAT,
      id,
      time: new Date(t0).toISOString(),
      node: o.node,
      dataSources,
      segments: dataSources.reduce((n, d) => n + d.segments, 0),
      bytes: dataSources.reduce((n, d) => n + d.bytes, 0),
      complete: dataSources.every((d) => d.complete),
      metadata: metaSha,
    };
    const written: string[] = [];
    let reused = 0;
    for (const t of marked) {
      try {
        for (const [h, data] of blobs) if ((await t.snapshots!.putBlob(h, data, o.signal)) === 'present') reused++;
        await t.snapshots!.putHeader(header, o.signal);
        written.push(t.url);
      } catch (e) {
        if (o.signal?.aborted) throw e;
        failed.push({ target: t.url, error: messageOf(e) });
        o.log.warn({ snapshot: id, target: t.url, err: messageOf(e) }, 'snapshot not written to this target');
      }
    }
    if (!written.length)
      throw new BackupError('target_error', `snapshot ${id} was written to no target: ${failed.map((f) => `${f.target}: ${f.error}`).join('; ')}`);
    o.log.info({ snapshot: id, segments: header.segments, complete: header.complete, targets: written.length, reusedBlobs: reused }, 'snapshot written');
    return { header, written, failed, reused };
  } finally {
    for (const t of marked) await t.snapshots!.deleteWriting(id).catch(() => undefined);
  }
}
