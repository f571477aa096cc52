/**
 * Snapshots in a bucket or a container (the `snapshots` capability, snapshot/store.ts), beside the segments, written
 * once against the ObjectStore primitives so that every object kind (S3, Azure Blob Storage) has them:
 *
 *   {prefix}snapshots/{id}.json          a header, written last with a create-if-absent (never overwritten)
 *   {prefix}snapshots/blobs/{sha256}     a segment list or the metadata, created if absent; checked against its name
 *                                        when written and again when read back
 *   {prefix}snapshots/pins/{id}          a pin
 *   {prefix}snapshots/writing/{id}       the marker of a snapshot being written
 *   {prefix}prune/lease                  the prune lease: created if absent, taken over or renewed or released with
 *                                        If-Match on its ETag, so two pruners never both hold it
 *   {prefix}prune/marks.json             when each unreferenced segment was last seen referenced
 *   {prefix}prune/removing/{id}          a segment being removed (its manifest is gone first): finished by the next run
 *   {prefix}holdings/{node}.json         what a node last reported holding
 *
 * Every key is made of a checked snapshot id, sha256 or an encoded name, through the one rule (`bucketKey`); every
 * object read back is read with a size limit and checked.
 */
import { createReadStream } from 'node:fs';
import { BackupError, messageOf } from '../../errors.js';
import { bucketKey } from '../../druid/paths.js';
import { parseSegmentId } from '../../druid/segmentId.js';
import type { Pin } from '../../snapshot/check.js';
import { MAX_HEADER_BYTES, SNAPSHOT_ID, checkSha256, checkSnapshotId, parseHeader, parsePin, sha256 } from '../../snapshot/check.js';
import type { SnapshotHeader } from '../../snapshot/model.js';
import { MAX_HOLDINGS_BYTES, holdingsChunks, parseHoldings, parseLease, parseMarks } from '../../snapshot/records.js';
import type { BlobBody, Holdings, HoldingsReport, Lease, PruneMarks, SnapshotStore, StoredBrief } from '../../snapshot/store.js';
import { PageGuard } from '../../util/limitedRead.js';
import { mapLimit } from '../../util/pool.js';
import { encodeName } from './layout.js';
import type { ObjectTarget } from './target.js';

const SMALL = 64 * 1024;
/** Keys per DeleteObjects (S3's limit). */
const DELETE_BATCH = 1000;
/** Requests of one removal step in flight at once (the records written, the segments' prefixes listed). */
const STEP_CONCURRENCY = 16;
const BIG = 256 * 1024 * 1024;

function json(data: Buffer, what: string): unknown {
  try {
    return JSON.parse(data.toString('utf8'));
  } catch {
    throw new BackupError('target_error', `${what} is not valid JSON`);
  }
}

function decodeKeyName(enc: string): string | undefined {
  if (enc.includes('~')) return undefined;
  try {
    return decodeURIComponent(enc);
  } catch {
    return undefined;
  }
}

export class ObjectSnapshots implements SnapshotStore {
  constructor(private readonly t: ObjectTarget) {}

  private key(rest: string, id: unknown): string {
    return bucketKey(this.t.layout.prefix, rest, id);
  }
  private blobKey(h: string): string {
    return this.key(`snapshots/blobs/${checkSha256(h)}`, h);
  }
  private headerKey(id: string): string {
    return this.key(`snapshots/${checkSnapshotId(id)}.json`, id);
  }
  private pinKey(id: string): string {
    return this.key(`snapshots/pins/${checkSnapshotId(id)}`, id);
  }
  private writingKey(id: string): string {
    return this.key(`snapshots/writing/${checkSnapshotId(id)}`, id);
  }
  private get leaseKey(): string {
    return this.key('prune/lease', 'lease');
  }
  private get marksKey(): string {
    return this.key('prune/marks.json', 'marks');
  }
  private removingKey(segmentId: string): string {
    return this.key(`prune/removing/${encodeName(segmentId)}`, segmentId);
  }
  private where(key: string): string {
    return `${this.t.store.name}/${key}`;
  }

  private async get(key: string, limit: number, signal?: AbortSignal): Promise<{ data: Buffer; etag: string } | undefined> {
    const got = await this.t.call(`reading ${this.where(key)}`, signal, () => this.t.store.read(key, limit, this.where(key), { signal }));
    return got && got !== 'unchanged' ? { data: got.body, etag: got.etag } : undefined;
  }

  /** A write; `false` when its condition failed (the object exists, or changed). */
  private async put(key: string, body: Buffer | string, cond: { ifAbsent?: boolean; ifMatch?: string }, signal?: AbortSignal): Promise<boolean> {
    const r = await this.t.call(`writing ${this.where(key)}`, signal, () =>
      this.t.store.write(key, body, { ...cond, contentType: 'application/json', signal }),
    );
    return r !== 'precondition-failed';
  }

  private async del(key: string, signal?: AbortSignal): Promise<void> {
    await this.t.call(`deleting ${this.where(key)}`, signal, () => this.t.store.remove([key], signal));
  }

  /** Names (the key's rest after `prefix`) of the objects directly under `prefix`. */
  private async names(prefix: string, signal?: AbortSignal): Promise<string[]> {
    const out: string[] = [];
    const full = this.key(prefix, prefix);
    const guard = new PageGuard(`the listing of ${this.where(full)}`);
    let token: string | undefined;
    do {
      const page = await this.t.call(`listing ${this.where(full)}`, signal, () => this.t.store.list(full, { token, signal }));
      for (const o of page.objects) {
        if (!o.key.startsWith(full)) continue;
        const name = o.key.slice(full.length);
        if (name !== '' && !name.includes('/')) out.push(name);
      }
      token = page.next;
      if (token) guard.next(token);
    } while (token);
    return out;
  }

  async putBlob(h: string, data: BlobBody, signal?: AbortSignal): Promise<'stored' | 'present'> {
    checkSha256(h);
    if (Buffer.isBuffer(data)) {
      if (sha256(data) !== h) throw new BackupError('digest_mismatch', `blob ${h}: its bytes have another sha256`);
      return (await this.put(this.blobKey(h), data, { ifAbsent: true }, signal)) ? 'stored' : 'present';
    }
    // A segment list, streamed as a segment file is (bounded memory); content-addressed, so writing over a copy that
    // appeared meanwhile writes the same bytes, and the service's digest of what arrived must be the name.
    if (await this.hasBlob(h, signal)) return 'present';
    const key = this.blobKey(h);
    const file = { name: key, size: data.size, path: data.path, open: () => createReadStream(data.path) };
    const got = await this.t.call(`writing ${this.where(key)}`, signal, () => this.t.store.upload(key, file, { signal }));
    if (got.sha256 !== h) {
      await this.del(key, signal);
      throw new BackupError('digest_mismatch', `blob ${h}: its bytes have another sha256`);
    }
    return 'stored';
  }

  async hasBlob(h: string, signal?: AbortSignal): Promise<boolean> {
    const key = this.blobKey(h);
    const page = await this.t.call(`listing ${this.where(key)}`, signal, () => this.t.store.list(key, { max: 1, signal }));
    return page.objects.some((o) => o.key === key);
  }

  async getBlob(h: string, maxBytes: number, signal?: AbortSignal): Promise<Buffer> {
    const got = await this.get(this.blobKey(h), maxBytes, signal);
    if (!got) throw new BackupError('not_found', `${this.t.url} holds no snapshot blob ${h}`);
    if (sha256(got.data) !== h) throw new BackupError('digest_mismatch', `snapshot blob ${h} in ${this.t.url} is damaged: its bytes have another sha256`);
    return got.data;
  }

  async openBlob(h: string, signal?: AbortSignal): Promise<AsyncIterable<Uint8Array>> {
    const key = this.blobKey(h);
    const body = await this.t.call(`reading ${this.where(key)}`, signal, () => this.t.store.open(key, signal));
    if (!body) throw new BackupError('not_found', `${this.t.url} holds no snapshot blob ${h}`);
    const t = this.t;
    // A failure mid-stream is the service's too: one clear error naming it. A reader that stops early ends the
    // body's own iterator through `yield*`, which destroys the stream.
    return (async function* () {
      try {
        yield* body.body;
      } catch (e) {
        throw t.store.error(e, `reading ${key}`, signal);
      }
    })();
  }

  async listBlobs(signal?: AbortSignal): Promise<string[]> {
    return (await this.names('snapshots/blobs/', signal)).filter((n) => /^[0-9a-f]{64}$/.test(n)).sort();
  }

  async deleteBlob(h: string, signal?: AbortSignal): Promise<void> {
    await this.del(this.blobKey(h), signal);
  }

  async putHeader(header: SnapshotHeader, signal?: AbortSignal): Promise<void> {
    const checked = parseHeader(JSON.parse(JSON.stringify(header)), checkSnapshotId(header.id));
    for (const b of [checked.metadata, ...checked.dataSources.map((d) => d.list)])
      if (!(await this.hasBlob(b, signal)))
        throw new BackupError('conflict', `snapshot ${header.id} names blob ${b}, which ${this.t.url} does not hold; the header is not written`);
    if (!(await this.put(this.headerKey(header.id), JSON.stringify(checked, null, 2), { ifAbsent: true }, signal)))
      throw new BackupError('conflict', `snapshot ${header.id} exists in ${this.t.url}; a snapshot is never overwritten`);
  }

  async getHeader(id: string, signal?: AbortSignal): Promise<SnapshotHeader | undefined> {
    const got = await this.get(this.headerKey(id), MAX_HEADER_BYTES, signal);
    return got ? parseHeader(json(got.data, `snapshot ${id}`), id) : undefined;
  }

  async listSnapshots(signal?: AbortSignal): Promise<string[]> {
    return (await this.names('snapshots/', signal))
      .filter((n) => n.endsWith('.json'))
      .map((n) => n.slice(0, -5))
      .filter((id) => SNAPSHOT_ID.test(id))
      .sort();
  }

  async forget(id: string, signal?: AbortSignal): Promise<void> {
    await this.del(this.headerKey(id), signal);
    await this.del(this.pinKey(id), signal);
  }

  async setPin(id: string, pin: Pin | undefined, signal?: AbortSignal): Promise<void> {
    if (!pin) return this.del(this.pinKey(id), signal);
    if (!(await this.getHeader(id, signal))) throw new BackupError('not_found', `no snapshot ${id} in ${this.t.url}`);
    await this.put(this.pinKey(id), JSON.stringify(parsePin(pin, id)), {}, signal);
  }

  async getPin(id: string, signal?: AbortSignal): Promise<Pin | undefined> {
    const got = await this.get(this.pinKey(id), SMALL, signal);
    return got ? parsePin(json(got.data, `pin of snapshot ${id}`), id) : undefined;
  }

  async listPins(signal?: AbortSignal): Promise<string[]> {
    return (await this.names('snapshots/pins/', signal)).filter((n) => SNAPSHOT_ID.test(n)).sort();
  }

  async putWriting(id: string, expires: string, signal?: AbortSignal): Promise<void> {
    await this.put(this.writingKey(id), JSON.stringify({ owner: id, expires }), {}, signal);
  }

  async deleteWriting(id: string, signal?: AbortSignal): Promise<void> {
    await this.del(this.writingKey(id), signal);
  }

  async listWriting(signal?: AbortSignal): Promise<Array<{ id: string; expires: string }>> {
    const out: Array<{ id: string; expires: string }> = [];
    for (const n of await this.names('snapshots/writing/', signal)) {
      if (!SNAPSHOT_ID.test(n)) continue;
      const got = await this.get(this.writingKey(n), SMALL, signal);
      if (!got) continue;
      const m = parseLease(json(got.data, `marker of snapshot ${n}`));
      if (Date.parse(m.expires) > Date.now()) out.push({ id: n, expires: m.expires });
    }
    return out;
  }

  async readLease(signal?: AbortSignal): Promise<Lease | undefined> {
    const got = await this.get(this.leaseKey, SMALL, signal);
    return got ? parseLease(json(got.data, 'prune lease')) : undefined;
  }

  async acquireLease(owner: string, ttlMs: number, signal?: AbortSignal, deadOwner?: string): Promise<boolean> {
    const body = JSON.stringify({ owner, expires: new Date(Date.now() + ttlMs).toISOString() });
    const got = await this.get(this.leaseKey, SMALL, signal);
    if (!got) return this.put(this.leaseKey, body, { ifAbsent: true }, signal);
    let seen: Lease | undefined;
    try {
      seen = parseLease(json(got.data, 'prune lease'));
    } catch {
      seen = undefined;
    }
    if (seen && seen.owner !== owner && seen.owner !== deadOwner && Date.parse(seen.expires) > Date.now()) return false;
    // Renewal, or the takeover of an expired (or unreadable) lease: only if it is still the object just read.
    return this.put(this.leaseKey, body, { ifMatch: got.etag }, signal);
  }

  async releaseLease(owner: string, signal?: AbortSignal): Promise<void> {
    const got = await this.get(this.leaseKey, SMALL, signal);
    if (!got) return;
    const seen = parseLease(json(got.data, 'prune lease'));
    if (seen.owner === owner) await this.put(this.leaseKey, JSON.stringify({ owner, expires: new Date(0).toISOString() }), { ifMatch: got.etag }, signal);
  }

  async readMarks(signal?: AbortSignal): Promise<PruneMarks | undefined> {
    const got = await this.get(this.marksKey, BIG, signal);
    return got ? parseMarks(json(got.data, 'prune marks')) : undefined;
  }

  async writeMarks(marks: PruneMarks, signal?: AbortSignal): Promise<void> {
    await this.put(this.marksKey, JSON.stringify(marks), {}, signal);
  }

  /**
   * One object, replaced whole (a PUT): the report is gathered from its checked chunks first, at most
   * MAX_HOLDINGS_BYTES, and a report that fails a check writes nothing.
   */
  async putHoldings(h: HoldingsReport, signal?: AbortSignal): Promise<void> {
    const parts: Buffer[] = [];
    for await (const c of holdingsChunks(h)) parts.push(c);
    await this.put(this.key(`holdings/${encodeName(h.node)}.json`, h.node), Buffer.concat(parts), {}, signal);
  }

  async listHoldings(signal?: AbortSignal): Promise<Holdings[]> {
    const out: Holdings[] = [];
    for (const n of await this.names('holdings/', signal)) {
      if (!n.endsWith('.json')) continue;
      const got = await this.get(this.key(`holdings/${n}`, n), MAX_HOLDINGS_BYTES, signal);
      if (!got) continue;
      try {
        out.push(parseHoldings(json(got.data, `holdings ${n}`)));
      } catch (e) {
        throw new BackupError('target_error', `holdings ${n} in ${this.t.url}: ${messageOf(e)}`);
      }
    }
    return out;
  }

  async *storedSegments(signal?: AbortSignal): AsyncGenerator<StoredBrief> {
    for await (const m of this.t.list({}, { signal })) yield { segmentId: m.segmentId, dataSource: m.dataSource, size: m.size, updatedAt: m.updatedAt };
  }

  /**
   * For each segment a record that it is being removed, then its manifest (from then on no listing, catalog or
   * restore sees it), then its files, then the record: each step for the whole batch before the next, with one
   * DeleteObjects per step (and one listing per segment, of its own prefix), so a batch costs about two requests a
   * segment instead of five. Killed in between, the records name what the next prune finishes.
   */
  async removeSegments(segmentIds: readonly string[], signal?: AbortSignal): Promise<void> {
    const ids = [...new Set(segmentIds.map((s) => parseSegmentId(s).id))];
    const at = new Date().toISOString();
    await mapLimit(ids, STEP_CONCURRENCY, (id) => this.put(this.removingKey(id), JSON.stringify({ segmentId: id, at }), {}, signal));
    const manifests = ids.map((id) => this.t.layout.manifestKey(id));
    await this.delMany(manifests, signal);
    for (const k of manifests) this.t.catalog.forget(k);
    const files = (await mapLimit(ids, STEP_CONCURRENCY, (id) => this.filesToDelete(this.t.layout.segmentPrefix(id), signal))).flat();
    await this.delMany(files, signal);
    await this.delMany(
      ids.map((id) => this.removingKey(id)),
      signal,
    );
  }

  /**
   * The keys of a segment's files, to delete with the batch: one listing page (a segment has a handful). A prefix
   * that holds more than a page is deleted here, page by page, so a batch never holds more than a page a segment.
   */
  private async filesToDelete(prefix: string, signal?: AbortSignal): Promise<string[]> {
    const page = await this.t.call(`listing ${this.where(prefix)}`, signal, () => this.t.store.list(prefix, { signal }));
    if (page.next) {
      await this.t.deletePrefix(prefix, signal);
      return [];
    }
    return page.objects.map((o) => o.key).filter((k) => k.startsWith(prefix));
  }

  /** Deletes keys with as few requests as the service allows (DeleteObjects takes up to DELETE_BATCH). */
  private async delMany(keys: readonly string[], signal?: AbortSignal): Promise<void> {
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const chunk = keys.slice(i, i + DELETE_BATCH);
      await this.t.call(`deleting ${chunk.length} object(s) in ${this.t.store.name}`, signal, () => this.t.store.remove(chunk, signal));
    }
  }

  async orphans(signal?: AbortSignal): Promise<string[]> {
    const out: string[] = [];
    for (const n of await this.names('prune/removing/', signal)) {
      const id = decodeKeyName(n);
      if (id !== undefined && encodeName(id) === n) out.push(id);
    }
    return out.sort();
  }

  /** Finishes the removal of a segment a killed prune began: only while its manifest is still gone. */
  async removeOrphan(segmentId: string, signal?: AbortSignal): Promise<void> {
    const id = parseSegmentId(segmentId).id;
    if (!(await this.t.getManifest(id, signal))) await this.t.deletePrefix(this.t.layout.segmentPrefix(id), signal);
    await this.del(this.removingKey(id), signal);
  }
}
