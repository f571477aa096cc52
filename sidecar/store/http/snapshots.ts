/**
 * Snapshots in a target sidecar's store, through its API (`/data/v1/store/snapshots…`, server/routes/snapshots.ts).
 * What a snapshot's taker needs goes over the wire (blobs, headers, pins, the markers, the lease to wait on, the
 * holdings reports); pruning does not: a target sidecar prunes its own store (`POST /data/v1/store/prune`), so the
 * prune-only calls refuse here and say where to go. Every answer is read with a limit and checked like the local
 * store's own files.
 */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { BackupError } from '../../errors.js';
import type { Pin } from '../../snapshot/check.js';
import { MAX_HEADER_BYTES, SNAPSHOT_ID, checkSha256, checkSnapshotId, parseHeader, parsePin, sha256 } from '../../snapshot/check.js';
import type { SnapshotHeader } from '../../snapshot/model.js';
import { holdingsChunks, parseLease } from '../../snapshot/records.js';
import type { BlobBody, Holdings, HoldingsReport, Lease, PruneMarks, SnapshotStore } from '../../snapshot/store.js';
import { ANSWER_LIMITS, readLimited } from '../../util/limitedRead.js';
import type { ApiClient } from './client.js';
import { errorFromResponse } from './client.js';

export const SNAPSHOTS_PATH = '/data/v1/store/snapshots';

function ids(v: unknown, what: string): string[] {
  if (!Array.isArray(v) || v.length > 1_000_000 || !v.every((x) => typeof x === 'string' && SNAPSHOT_ID.test(x)))
    throw new BackupError('target_error', `${what} is not a list of snapshot ids`);
  return v as string[];
}

export class HttpSnapshots implements SnapshotStore {
  constructor(
    private readonly client: ApiClient,
    private readonly url: string,
  ) {}

  private pruneHere(): never {
    throw new BackupError('bad_request', `${this.url} prunes its own store: ask it (POST /data/v1/store/prune, or druid-backup prune --target ${this.url})`);
  }

  private async getOrNone<T>(path: string, max: number, what: string, signal?: AbortSignal): Promise<T | undefined> {
    const res = await this.client.raw<Readable>({ method: 'GET', url: path, responseType: 'stream', signal });
    if (res.status === 404) {
      // Read to its end (small), so the connection goes back to the pool.
      await readLimited(res.data, ANSWER_LIMITS.small, `the answer of ${this.url} to GET ${path}`);
      return undefined;
    }
    if (res.status !== 200) throw await errorFromResponse(res, this.url);
    return this.client.readJson<T>(res, max, what, signal);
  }

  private async send(
    method: 'PUT' | 'DELETE',
    path: string,
    data: unknown,
    signal?: AbortSignal,
    contentType = 'application/json',
    length?: number,
  ): Promise<number> {
    const res = await this.client.raw<Readable>({
      method,
      url: path,
      data,
      responseType: 'stream',
      signal,
      headers: data === undefined ? {} : { 'content-type': contentType, ...(length !== undefined ? { 'content-length': String(length) } : {}) },
    });
    if (res.status >= 200 && res.status < 300) {
      // Read to its end (small), so the connection goes back to the pool.
      await readLimited(res.data, ANSWER_LIMITS.small, `the answer of ${this.url} to ${method} ${path}`);
      return res.status;
    }
    throw await errorFromResponse(res, this.url);
  }

  /** A file is streamed as it is read; the target sidecar checks its bytes against the name as they arrive. */
  async putBlob(h: string, data: BlobBody, signal?: AbortSignal): Promise<'stored' | 'present'> {
    checkSha256(h);
    if (Buffer.isBuffer(data) && sha256(data) !== h) throw new BackupError('digest_mismatch', `blob ${h}: its bytes have another sha256`);
    const body = Buffer.isBuffer(data) ? data : createReadStream(data.path);
    const size = Buffer.isBuffer(data) ? data.length : data.size;
    return (await this.send('PUT', `${SNAPSHOTS_PATH}/blobs/${h}`, body, signal, 'application/octet-stream', size)) === 201 ? 'stored' : 'present';
  }

  async hasBlob(h: string, signal?: AbortSignal): Promise<boolean> {
    const res = await this.client.raw({ method: 'HEAD', url: `${SNAPSHOTS_PATH}/blobs/${checkSha256(h)}`, signal });
    if (res.status === 404) return false;
    if (res.status !== 200) throw await errorFromResponse(res, this.url);
    return true;
  }

  async getBlob(h: string, maxBytes: number, signal?: AbortSignal): Promise<Buffer> {
    const res = await this.client.raw<Readable>({ method: 'GET', url: `${SNAPSHOTS_PATH}/blobs/${checkSha256(h)}`, responseType: 'stream', signal });
    if (res.status !== 200) throw await errorFromResponse(res, this.url);
    const declared = Number(res.headers['content-length']);
    const data = await readLimited(res.data, maxBytes, `snapshot blob ${h} from ${this.url}`, Number.isFinite(declared) ? declared : undefined);
    if (sha256(data) !== h) throw new BackupError('digest_mismatch', `snapshot blob ${h} from ${this.url} has other bytes than its name says`);
    return data;
  }

  async openBlob(h: string, signal?: AbortSignal): Promise<AsyncIterable<Uint8Array>> {
    const res = await this.client.raw<Readable>({ method: 'GET', url: `${SNAPSHOTS_PATH}/blobs/${checkSha256(h)}`, responseType: 'stream', signal });
    if (res.status !== 200) throw await errorFromResponse(res, this.url);
    return res.data;
  }

  listBlobs(): Promise<string[]> {
    return this.pruneHere();
  }

  deleteBlob(): Promise<void> {
    return this.pruneHere();
  }

  async putHeader(header: SnapshotHeader, signal?: AbortSignal): Promise<void> {
    const checked = parseHeader(JSON.parse(JSON.stringify(header)), checkSnapshotId(header.id));
    await this.send('PUT', `${SNAPSHOTS_PATH}/${checked.id}`, checked, signal);
  }

  async getHeader(id: string, signal?: AbortSignal): Promise<SnapshotHeader | undefined> {
    const raw = await this.getOrNone<unknown>(`${SNAPSHOTS_PATH}/${checkSnapshotId(id)}`, MAX_HEADER_BYTES, `snapshot ${id} from ${this.url}`, signal);
    return raw === undefined ? undefined : parseHeader(raw, id);
  }

  async listSnapshots(signal?: AbortSignal): Promise<string[]> {
    const r = await this.client.get<{ ids?: unknown }>(SNAPSHOTS_PATH, undefined, signal, ANSWER_LIMITS.page);
    return ids(r?.ids, `the snapshots of ${this.url}`).sort();
  }

  async forget(id: string, signal?: AbortSignal): Promise<void> {
    await this.send('DELETE', `${SNAPSHOTS_PATH}/${checkSnapshotId(id)}`, undefined, signal);
  }

  async setPin(id: string, pin: Pin | undefined, signal?: AbortSignal): Promise<void> {
    if (pin) await this.send('PUT', `${SNAPSHOTS_PATH}/${checkSnapshotId(id)}/pin`, parsePin(pin, id), signal);
    else await this.send('DELETE', `${SNAPSHOTS_PATH}/${checkSnapshotId(id)}/pin`, undefined, signal);
  }

  async getPin(id: string, signal?: AbortSignal): Promise<Pin | undefined> {
    const raw = await this.getOrNone<unknown>(`${SNAPSHOTS_PATH}/${checkSnapshotId(id)}/pin`, ANSWER_LIMITS.small, `pin of ${id} from ${this.url}`, signal);
    return raw === undefined ? undefined : parsePin(raw, id);
  }

  async listPins(signal?: AbortSignal): Promise<string[]> {
    const r = await this.client.get<{ pins?: unknown }>(SNAPSHOTS_PATH, undefined, signal, ANSWER_LIMITS.page);
    return ids(r?.pins, `the pins of ${this.url}`).sort();
  }

  async putWriting(id: string, expires: string, signal?: AbortSignal): Promise<void> {
    await this.send('PUT', `${SNAPSHOTS_PATH}/writing/${checkSnapshotId(id)}`, { expires }, signal);
  }

  async deleteWriting(id: string, signal?: AbortSignal): Promise<void> {
    await this.send('DELETE', `${SNAPSHOTS_PATH}/writing/${checkSnapshotId(id)}`, undefined, signal);
  }

  listWriting(): Promise<Array<{ id: string; expires: string }>> {
    return this.pruneHere();
  }

  async readLease(signal?: AbortSignal): Promise<Lease | undefined> {
    const raw = await this.getOrNone<unknown>('/data/v1/store/prune/lease', ANSWER_LIMITS.small, `the prune lease of ${this.url}`, signal);
    return raw === undefined ? undefined : parseLease(raw);
  }

  acquireLease(): Promise<boolean> {
    return this.pruneHere();
  }

  releaseLease(): Promise<void> {
    return this.pruneHere();
  }

  readMarks(): Promise<PruneMarks | undefined> {
    return this.pruneHere();
  }

  writeMarks(): Promise<void> {
    return this.pruneHere();
  }

  /** Streamed: the ids as a JSON array, written as they come; the node and the time in the path and the query. */
  async putHoldings(h: HoldingsReport, signal?: AbortSignal): Promise<void> {
    const body = Readable.from(holdingsChunks(h, 'ids'));
    await this.send('PUT', `/data/v1/store/holdings/${encodeURIComponent(h.node)}?at=${encodeURIComponent(h.at)}`, body, signal);
  }

  listHoldings(): Promise<Holdings[]> {
    return this.pruneHere();
  }

  storedSegments(): AsyncIterable<never> {
    return this.pruneHere();
  }

  removeSegments(): Promise<void> {
    return this.pruneHere();
  }

  orphans(): Promise<string[]> {
    return this.pruneHere();
  }

  removeOrphan(): Promise<void> {
    return this.pruneHere();
  }
}
