/**
 * Snapshots in a local store (the `snapshots` capability, snapshot/store.ts):
 *
 *   {store}/snapshots/{id}.json          a header, written last with a create that fails when it exists
 *   {store}/snapshots/blobs/{sha256}     a segment list or the metadata, created if absent
 *   {store}/snapshots/pins/{id}          a pin
 *   {store}/prune/lease                  the prune lease: {"owner","expires"}, made with link(2), which fails when it exists
 *   {store}/prune/marks.json             when each unreferenced segment was last seen referenced
 *   {store}/holdings/{node}.json         what a node last reported holding
 *
 * Every name is a checked snapshot id, sha256 or encoded node name, joined through the one path rule (`ownPath`).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { link, mkdir, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { inside, ownPath } from '../../druid/paths.js';
import { BackupError, messageOf } from '../../errors.js';
import { fsyncDirAsync, writeFileAtomicAsync, writeFileDurable } from '../../util/atomic.js';
import { writeChunks } from '../../util/fileWriter.js';
import type { Pin } from '../../snapshot/check.js';
import { MAX_HEADER_BYTES, checkSha256, checkSnapshotId, parseHeader, parsePin, sha256 } from '../../snapshot/check.js';
import type { SnapshotHeader } from '../../snapshot/model.js';
import type { BlobBody, Holdings, HoldingsReport, Lease, PruneMarks, SnapshotStore, StoredBrief } from '../../snapshot/store.js';
import { MAX_HOLDINGS_BYTES, holdingsChunks, parseHoldings, parseLease, parseMarks } from '../../snapshot/records.js';
import { TMP_DIR, encodeName } from './layout.js';

const SNAPSHOTS = 'snapshots';
const HEADER_SUFFIX = '.json';

function isMissing(e: unknown): boolean {
  return (e as NodeJS.ErrnoException).code === 'ENOENT';
}

async function readBounded(file: string, max: number, what: string): Promise<Buffer | undefined> {
  let data: Buffer;
  try {
    data = await readFile(file);
  } catch (e) {
    if (isMissing(e)) return undefined;
    throw e;
  }
  if (data.length > max) throw new BackupError('target_answer_too_large', `${what} is larger than ${max} bytes`);
  return data;
}

function json(data: Buffer, what: string): unknown {
  try {
    return JSON.parse(data.toString('utf8'));
  } catch {
    throw new BackupError('target_error', `${what} is not valid JSON`);
  }
}

/** What the local store owns of pruning: its catalog, read in place, and removals (its index must forget them too). */
export interface SegmentRemover {
  /** The catalog's entries in id order, straight from the index. */
  summaries(): Iterable<StoredBrief>;
  removeSegment(segmentId: string): Promise<void>;
  orphans(): Promise<string[]>;
  removeOrphan(name: string): Promise<void>;
}

export class LocalSnapshots implements SnapshotStore {
  private readonly dir: string;
  private readonly blobs: string;
  private readonly pins: string;
  private readonly prune: string;
  private readonly holdings: string;
  private readonly tmp: string;

  constructor(
    readonly root: string,
    private readonly segments: SegmentRemover,
  ) {
    this.dir = ownPath(root, SNAPSHOTS);
    this.blobs = ownPath(this.dir, 'blobs');
    this.pins = ownPath(this.dir, 'pins');
    this.prune = ownPath(root, 'prune');
    this.holdings = ownPath(root, 'holdings');
    this.tmp = ownPath(root, TMP_DIR);
  }

  private async ensure(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
  }

  private blobPath(h: string): string {
    return inside(this.blobs, [checkSha256(h)], h);
  }

  private headerPath(id: string): string {
    return inside(this.dir, [`${checkSnapshotId(id)}${HEADER_SUFFIX}`], id);
  }

  private pinPath(id: string): string {
    return inside(this.pins, [checkSnapshotId(id)], id);
  }

  /** Writes `data` as a new file at `file` unless one exists: written aside, fsynced, then linked (link fails when it exists). */
  private async createOnce(file: string, data: Buffer | string): Promise<boolean> {
    await this.ensure(path.dirname(file));
    await this.ensure(this.tmp);
    const tmp = ownPath(this.tmp, `new-${process.pid}-${Math.random().toString(36).slice(2)}`);
    await writeFileDurable(tmp, data);
    try {
      await link(tmp, file);
      await fsyncDirAsync(path.dirname(file));
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e;
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async putBlob(h: string, data: BlobBody): Promise<'stored' | 'present'> {
    checkSha256(h);
    if (!Buffer.isBuffer(data)) return this.receiveBlob(h, createReadStream(data.path), data.size);
    if (sha256(data) !== h) throw new BackupError('digest_mismatch', `blob ${h}: its bytes have another sha256`);
    if (await this.hasBlob(h)) return 'present';
    return (await this.createOnce(this.blobPath(h), data)) ? 'stored' : 'present';
  }

  /**
   * A blob as it arrives (a file of its taker, or a request body), in bounded memory: written aside while hashed,
   * at most `maxBytes`, then created under its name only when the bytes are that name.
   */
  async receiveBlob(h: string, chunks: AsyncIterable<Uint8Array>, maxBytes: number): Promise<'stored' | 'present'> {
    const file = this.blobPath(h);
    if (await this.hasBlob(h)) return 'present';
    await this.ensure(path.dirname(file));
    await this.ensure(this.tmp);
    const tmp = ownPath(this.tmp, `blob-${process.pid}-${Math.random().toString(36).slice(2)}`);
    try {
      const hash = createHash('sha256');
      let size = 0;
      const written = await writeChunks(
        tmp,
        (async function* () {
          for await (const c of chunks) {
            size += c.byteLength;
            if (size > maxBytes) throw new BackupError('payload_too_large', `blob ${h} is larger than ${maxBytes} bytes`);
            hash.update(c);
            yield Buffer.from(c.buffer, c.byteOffset, c.byteLength);
          }
        })(),
      );
      await written.durable;
      if (hash.digest('hex') !== h) throw new BackupError('digest_mismatch', `blob ${h}: its bytes have another sha256`);
      try {
        await link(tmp, file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') return 'present';
        throw e;
      }
      await fsyncDirAsync(path.dirname(file));
      return 'stored';
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async hasBlob(h: string): Promise<boolean> {
    try {
      await stat(this.blobPath(h));
      return true;
    } catch (e) {
      if (isMissing(e)) return false;
      throw e;
    }
  }

  async getBlob(h: string, maxBytes: number): Promise<Buffer> {
    const data = await readBounded(this.blobPath(h), maxBytes, `snapshot blob ${h}`);
    if (!data) throw new BackupError('not_found', `the store holds no snapshot blob ${h}`);
    if (sha256(data) !== h) throw new BackupError('digest_mismatch', `snapshot blob ${h} is damaged: its bytes have another sha256`);
    return data;
  }

  async openBlob(h: string): Promise<AsyncIterable<Uint8Array>> {
    let handle;
    try {
      handle = await open(this.blobPath(h), 'r');
    } catch (e) {
      if (isMissing(e)) throw new BackupError('not_found', `the store holds no snapshot blob ${h}`);
      throw e;
    }
    return handle.createReadStream();
  }

  async listBlobs(): Promise<string[]> {
    return (await this.names(this.blobs)).filter((n) => /^[0-9a-f]{64}$/.test(n)).sort();
  }

  async deleteBlob(h: string): Promise<void> {
    await rm(this.blobPath(h), { force: true });
  }

  async putHeader(header: SnapshotHeader): Promise<void> {
    // What is written is what a reader will accept: the header goes through the same check it is read back with.
    const checked = parseHeader(JSON.parse(JSON.stringify(header)), checkSnapshotId(header.id));
    for (const b of [checked.metadata, ...checked.dataSources.map((d) => d.list)])
      if (!(await this.hasBlob(b)))
        throw new BackupError('conflict', `snapshot ${header.id} names blob ${b}, which the store does not hold; the header is not written`);
    if (!(await this.createOnce(this.headerPath(header.id), JSON.stringify(checked, null, 2))))
      throw new BackupError('conflict', `snapshot ${header.id} exists; a snapshot is never overwritten`);
  }

  async getHeader(id: string): Promise<SnapshotHeader | undefined> {
    const data = await readBounded(this.headerPath(id), MAX_HEADER_BYTES, `snapshot ${id}`);
    return data ? parseHeader(json(data, `snapshot ${id}`), id) : undefined;
  }

  private async names(dir: string): Promise<string[]> {
    try {
      return await readdir(dir);
    } catch (e) {
      if (isMissing(e)) return [];
      throw e;
    }
  }

  async listSnapshots(): Promise<string[]> {
    return (await this.names(this.dir))
      .filter((n) => n.endsWith(HEADER_SUFFIX))
      .map((n) => n.slice(0, -HEADER_SUFFIX.length))
      .filter((id) => /^\d{8}T\d{6}Z-[0-9a-f]{8}$/.test(id))
      .sort();
  }

  async forget(id: string): Promise<void> {
    await rm(this.headerPath(id), { force: true });
    await fsyncDirAsync(this.dir).catch(() => undefined);
    await rm(this.pinPath(id), { force: true });
  }

  async setPin(id: string, pin: Pin | undefined): Promise<void> {
    if (pin === undefined) {
      await rm(this.pinPath(id), { force: true });
      return;
    }
    if (!(await this.getHeader(id))) throw new BackupError('not_found', `no snapshot ${id} in ${this.root}`);
    await this.ensure(this.pins);
    await writeFileAtomicAsync(this.pinPath(id), JSON.stringify(parsePin(pin, id)));
  }

  async getPin(id: string): Promise<Pin | undefined> {
    const data = await readBounded(this.pinPath(id), MAX_HEADER_BYTES, `pin of snapshot ${id}`);
    return data ? parsePin(json(data, `pin of snapshot ${id}`), id) : undefined;
  }

  async listPins(): Promise<string[]> {
    return (await this.names(this.pins)).filter((n) => /^\d{8}T\d{6}Z-[0-9a-f]{8}$/.test(n)).sort();
  }

  private get leaseFile(): string {
    return ownPath(this.prune, 'lease');
  }

  async readLease(): Promise<Lease | undefined> {
    const data = await readBounded(this.leaseFile, 64 * 1024, 'prune lease');
    return data ? parseLease(json(data, 'prune lease')) : undefined;
  }

  /**
   * A live lease of another owner refuses; an expired one is moved aside by a rename (only one taker's rename finds
   * it), checked to be the one seen expired, and the new one is created with link(2).
   */
  async acquireLease(owner: string, ttlMs: number, _signal?: AbortSignal, deadOwner?: string): Promise<boolean> {
    await this.ensure(this.prune);
    const mine = JSON.stringify({ owner, expires: new Date(Date.now() + ttlMs).toISOString() });
    const seen = await this.readLease().catch(() => undefined);
    if (seen && seen.owner === owner) {
      await writeFileAtomicAsync(this.leaseFile, mine);
      return true;
    }
    const live = (l: Lease | undefined) => !!l && Date.parse(l.expires) > Date.now() && l.owner !== deadOwner;
    if (live(seen)) return false;
    if (seen || (await readBounded(this.leaseFile, 64 * 1024, 'prune lease'))) {
      const aside = ownPath(this.prune, `lease.stale-${process.pid}-${Math.random().toString(36).slice(2)}`);
      try {
        await rename(this.leaseFile, aside);
      } catch (e) {
        if (isMissing(e)) return false;
        throw e;
      }
      const moved = await readBounded(aside, 64 * 1024, 'prune lease');
      const movedLease = moved
        ? (() => {
            try {
              return parseLease(JSON.parse(moved.toString('utf8')));
            } catch {
              return undefined;
            }
          })()
        : undefined;
      if (live(movedLease)) {
        // Another taker renewed or took it between our read and our rename: give it back.
        await link(aside, this.leaseFile).catch(() => undefined);
        await rm(aside, { force: true });
        return false;
      }
      await rm(aside, { force: true });
    }
    return this.createOnce(this.leaseFile, mine);
  }

  async releaseLease(owner: string): Promise<void> {
    const seen = await this.readLease().catch(() => undefined);
    if (seen?.owner === owner) await unlink(this.leaseFile).catch(() => undefined);
  }

  private writingPath(id: string): string {
    return inside(ownPath(this.dir, 'writing'), [checkSnapshotId(id)], id);
  }

  async putWriting(id: string, expires: string): Promise<void> {
    await this.ensure(ownPath(this.dir, 'writing'));
    await writeFileAtomicAsync(this.writingPath(id), JSON.stringify({ owner: id, expires }));
  }

  async deleteWriting(id: string): Promise<void> {
    await rm(this.writingPath(id), { force: true });
  }

  async listWriting(): Promise<Array<{ id: string; expires: string }>> {
    const out: Array<{ id: string; expires: string }> = [];
    for (const n of await this.names(ownPath(this.dir, 'writing'))) {
      if (!/^\d{8}T\d{6}Z-[0-9a-f]{8}$/.test(n)) continue;
      const data = await readBounded(this.writingPath(n), 64 * 1024, `marker of snapshot ${n}`);
      if (!data) continue;
      const m = parseLease(json(data, `marker of snapshot ${n}`));
      if (Date.parse(m.expires) > Date.now()) out.push({ id: n, expires: m.expires });
    }
    return out;
  }

  async readMarks(): Promise<PruneMarks | undefined> {
    const data = await readBounded(ownPath(this.prune, 'marks.json'), 256 * 1024 * 1024, 'prune marks');
    return data ? parseMarks(json(data, 'prune marks')) : undefined;
  }

  async writeMarks(marks: PruneMarks): Promise<void> {
    await this.ensure(this.prune);
    await writeFileAtomicAsync(ownPath(this.prune, 'marks.json'), JSON.stringify(marks));
  }

  /** Streamed into a file beside the report, which replaces it only once whole and fsynced. */
  async putHoldings(h: HoldingsReport): Promise<void> {
    const chunks = holdingsChunks(h);
    await this.ensure(this.holdings);
    const file = ownPath(this.holdings, `${encodeName(h.node)}.json`);
    const tmp = ownPath(this.holdings, `.${encodeName(h.node)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
    try {
      await (
        await writeChunks(tmp, chunks)
      ).durable;
      await rename(tmp, file);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    await fsyncDirAsync(this.holdings);
  }

  async listHoldings(): Promise<Holdings[]> {
    const out: Holdings[] = [];
    for (const n of await this.names(this.holdings)) {
      if (!n.endsWith('.json')) continue;
      const data = await readBounded(ownPath(this.holdings, n), MAX_HOLDINGS_BYTES, `holdings ${n}`);
      if (!data) continue;
      try {
        out.push(parseHoldings(json(data, `holdings ${n}`)));
      } catch (e) {
        throw new BackupError('target_error', `holdings ${n}: ${messageOf(e)}`);
      }
    }
    return out;
  }

  async *storedSegments(): AsyncGenerator<StoredBrief> {
    yield* this.segments.summaries();
  }

  async removeSegments(segmentIds: readonly string[]): Promise<void> {
    for (const id of segmentIds) await this.segments.removeSegment(id);
  }

  orphans(): Promise<string[]> {
    return this.segments.orphans();
  }

  removeOrphan(name: string): Promise<void> {
    return this.segments.removeOrphan(name);
  }
}
