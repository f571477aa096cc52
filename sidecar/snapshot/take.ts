/**
 * Taking a snapshot: what the Coordinator uses now, which of it the targets hold, and Druid's metadata, written to
 * every target that keeps snapshots: the blobs first (created once, content-addressed, so a list that did not change
 * costs nothing), the header last.
 *
 * 1. A marker "snapshot being written" goes to every target (a prune that sees it sweeps nothing, store.ts).
 * 2. The used segments are read streaming from the Coordinator into a spool file; only their ids stay in memory.
 * 3. Each target's catalog is read page by page: a segment is backed up when any target lists a copy not marked
 *    damaged (one bit per used segment).
 * 4. The metadata is captured (`captureClusterMetadata`, sidecar/cluster/, injected); with a Broker, the rows of
 *    exactly the snapshot's segments are summed from `sys.segments.num_rows` (countRows, sidecar/cluster/rows.ts).
 * 5. Before the headers: a target whose prune lease is live is waited for, and the catalogs read again, so a
 *    header never says "backed up" of a copy a prune removed while this ran.
 * 6. Each list blob is written to a file from the spool in id order, hashed as it goes; blobs (streamed from those
 *    files), then the header, to each target; the markers go. A target that fails is reported, the others keep theirs.
 * Memory: about 150 bytes per used segment (its id and two offsets; measured), never a descriptor or a whole list.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { BackupError, messageOf } from '../errors.js';
import { catalogEntries } from '../store/held.js';
import type { Target } from '../store/target.js';
import { writeChunks } from '../util/fileWriter.js';
import { sleep } from '../util/sleep.js';
import { newSnapshotId, sha256 } from './check.js';
import type { DruidAuth } from './coordinator.js';
import { usedSegments } from './coordinator.js';
import type { RowCounts } from '../cluster/rows.js';
import { countRows } from '../cluster/rows.js';
import type { ClusterMetadata, MissingReason, SnapshotDataSource, SnapshotHeader, SnapshotSegment } from './model.js';
import type { BlobBody, BlobFile } from './store.js';
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

/**
 * The used segments of one data source while a snapshot is taken: in memory only each id and where its record lies
 * in the spool file (about 150 bytes a segment at 100,000 segments, measured), the descriptors on disk.
 */
interface Collected {
  ids: string[];
  at: number[];
  len: number[];
  /** After `sortCollected`: ids ascending, one record each; `backedUp` set by `markHeld`. */
  backedUp?: Uint8Array;
}

/** A used segment as spooled: what its snapshot line needs besides whether it is backed up. */
interface Spooled {
  id: string;
  overshadowed: boolean;
  size: number;
  replication?: number;
  rows?: number;
  descriptor: unknown;
}

/**
 * Reads the Coordinator's used segments into `spool` (one JSON line each, the descriptor as the Coordinator sent it,
 * re-serialized once) and returns, per data source, the ids and where each record lies.
 */
async function spoolUsed(o: TakeOptions, spool: string): Promise<{ byDs: Map<string, Collected>; count: number }> {
  const byDs = new Map<string, Collected>();
  for (const ds of o.dataSources ?? []) byDs.set(ds, { ids: [], at: [], len: [] });
  let count = 0;
  let offset = 0;
  async function* lines(): AsyncGenerator<Buffer> {
    for await (const u of usedSegments({ coordinator: o.coordinator, auth: o.auth, dataSources: o.dataSources, signal: o.signal })) {
      let c = byDs.get(u.dataSource);
      if (!c) byDs.set(u.dataSource, (c = { ids: [], at: [], len: [] }));
      const rec: Spooled = {
        id: u.id,
        overshadowed: u.overshadowed,
        size: u.size,
        ...(u.replication !== undefined ? { replication: u.replication } : {}),
        ...(u.rows !== undefined ? { rows: u.rows } : {}),
        descriptor: u.descriptor,
      };
      const b = Buffer.from(`${JSON.stringify(rec)}\n`, 'utf8');
      c.ids.push(u.id);
      c.at.push(offset);
      c.len.push(b.length);
      offset += b.length;
      count++;
      yield b;
    }
  }
  await (await writeChunks(spool, lines())).durable;
  return { byDs, count };
}

/** Sorts a data source's records by id; a Coordinator that repeats an id counts once (its last record). */
function sortCollected(c: Collected): void {
  const order = Array.from(c.ids.keys()).sort((a, b) => (c.ids[a]! < c.ids[b]! ? -1 : c.ids[a]! > c.ids[b]! ? 1 : a - b));
  const ids: string[] = [];
  const at: number[] = [];
  const len: number[] = [];
  for (let k = 0; k < order.length; k++) {
    const i = order[k]!;
    if (k + 1 < order.length && c.ids[order[k + 1]!] === c.ids[i]) continue;
    ids.push(c.ids[i]!);
    at.push(c.at[i]!);
    len.push(c.len[i]!);
  }
  c.ids = ids;
  c.at = at;
  c.len = len;
}

/** Where `id` is in the sorted `ids`, or -1. */
function indexOf(ids: string[], id: string): number {
  let lo = 0;
  let hi = ids.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const m = ids[mid]!;
    if (m === id) return mid;
    if (m < id) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

/**
 * Marks the used segments some target holds a good copy of: a copy the target's own verify marked damaged is held
 * but does not count (a restore could not use it), read from the same catalog the active backup reads, page by page
 * (catalogEntries): one bit a used segment is kept, not the catalog.
 */
async function markHeld(catalogs: Target[], byDs: Map<string, Collected>, signal?: AbortSignal): Promise<void> {
  for (const c of byDs.values()) c.backedUp = new Uint8Array(c.ids.length);
  for (const t of catalogs) {
    for (const [ds, c] of byDs) {
      if (!c.ids.length) continue;
      for await (const [id, s] of catalogEntries(t, { dataSource: ds }, { signal })) {
        if (s.damaged) continue;
        const i = indexOf(c.ids, id);
        if (i >= 0) c.backedUp![i] = 1;
      }
    }
  }
}

function line(e: Spooled, backedUp: boolean, missing: MissingReason | undefined, rows: number | undefined): string {
  const s: Omit<SnapshotSegment, 'descriptor'> & { descriptor: null } = {
    id: e.id,
    overshadowed: e.overshadowed,
    size: e.size,
    descriptor: null,
    backedUp,
    ...(missing ? { missing } : {}),
    ...(rows !== undefined ? { rows } : {}),
  };
  // The descriptor goes in as it was spooled, in SnapshotSegment's field order.
  return JSON.stringify(s).replace('"descriptor":null', `"descriptor":${JSON.stringify(e.descriptor)}`);
}

interface BuiltList extends SnapshotDataSource {
  file: BlobFile;
}

/**
 * Each data source's list blob, written into `dir` line by line from the spool in id order and hashed as it goes:
 * neither the list nor its descriptors are ever whole in memory.
 */
async function build(
  spool: string,
  dir: string,
  byDs: Map<string, Collected>,
  missingReason: TakeOptions['missingReason'],
  counted: RowCounts | undefined,
): Promise<BuiltList[]> {
  const out: BuiltList[] = [];
  const fh = await open(spool, 'r');
  try {
    for (const name of [...byDs.keys()].sort()) {
      const c = byDs.get(name)!;
      let bytes = 0;
      let rows: number | undefined = 0;
      let complete = true;
      let size = 0;
      const hash = createHash('sha256');
      const file = path.join(dir, `list-${out.length}`);
      async function* lines(): AsyncGenerator<Buffer> {
        for (let i = 0; i < c.ids.length; i++) {
          const raw = Buffer.alloc(c.len[i]!);
          const { bytesRead } = await fh.read(raw, 0, raw.length, c.at[i]!);
          if (bytesRead !== raw.length) throw new BackupError('internal', `the snapshot's spool file ${spool} was cut short`);
          const e = JSON.parse(raw.toString('utf8')) as Spooled;
          const backedUp = c.backedUp![i] === 1;
          const missing = backedUp ? undefined : e.replication === 0 ? 'not_cached' : (missingReason?.(e.id) ?? 'pending');
          if (!backedUp) complete = false;
          bytes += e.size;
          // With a Broker, its count alone (sys.segments.num_rows); a data source's sum only when every segment has
          // one, as a short sum would fail a restore's check of a whole restore.
          const r = counted ? counted.bySegment.get(e.id) : e.rows;
          rows = rows !== undefined && r !== undefined ? rows + r : undefined;
          const b = Buffer.from(`${line(e, backedUp, missing, r)}\n`, 'utf8');
          hash.update(b);
          size += b.length;
          yield b;
        }
      }
      await (await writeChunks(file, lines())).durable;
      out.push({
        name,
        segments: c.ids.length,
        bytes,
        ...(rows !== undefined && c.ids.length ? { rows } : {}),
        complete,
        list: hash.digest('hex'),
        file: { path: file, size },
      });
    }
  } finally {
    await fh.close();
  }
  return out;
}

/** The Broker's row counts of exactly the snapshot's segments; when the Broker fails (logged), what the Coordinator reported. */
async function brokerRows(broker: string, byDs: Map<string, Collected>, o: TakeOptions): Promise<RowCounts | undefined> {
  const ids: Record<string, string[]> = {};
  for (const [ds, c] of byDs) ids[ds] = c.ids;
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
  let work: string | undefined;
  try {
    // The used segments are spooled to a private temporary directory, removed whatever happens.
    work = await mkdtemp(path.join(tmpdir(), 'druid-backup-snapshot-'));
    const spool = path.join(work, 'used');
    const { byDs, count } = await spoolUsed(o, spool);
    for (const c of byDs.values()) sortCollected(c);
    o.log.info({ snapshot: id, segments: count, dataSources: byDs.size }, 'used segments read from the Coordinator');
    await markHeld(o.catalogs, byDs, o.signal);
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
    if (waited) await markHeld(o.catalogs, byDs, o.signal);
    const counted = o.broker ? await brokerRows(o.broker, byDs, o) : undefined;
    const built = await build(spool, work, byDs, o.missingReason, counted);
    const dataSources: SnapshotDataSource[] = built.map(({ file: _f, ...d }) => d);
    const blobs = new Map<string, BlobBody>(built.map((d) => [d.list, d.file]));
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
    if (work) await rm(work, { recursive: true, force: true });
  }
}
