/**
 * The catalog of a bucket (or container) without a request per segment. The manifests are the truth; they are found
 * with listing pages (1,000 keys each) over `manifests/`, which also give each manifest's ETag. Their contents
 * come from `catalog.json.gz`, an index of manifests by key and ETag kept in the bucket: an entry is used only when
 * its ETag is the one just listed, so a stale or damaged index costs requests, never a wrong answer. Manifests the
 * index lacks (new, or changed by another node) are fetched, 16 at a time, and the index is written back after a
 * complete listing, conditionally, so two writers never undo each other. Manifests this process wrote are
 * remembered until then, so a node's own backups never need fetching.
 *
 * Memory stays bounded at any size of bucket: the index is a gzipped file of lines in key order, one manifest each
 * (format 2), kept compressed (about 150 bytes a segment, at most ANSWER_LIMITS.index) and inflated a line at a time
 * while the listing, which S3 and Azure return in key order, is walked beside it; the index written back is made the
 * same way. Only a page of manifests is ever parsed at once, so pruning a bucket of 100,000 segments holds what the
 * compressed index takes, not 100,000 manifests (docs/retention.md, Memory).
 *
 * 10,000 segments: 10 list pages and one index GET (bench/s3.ts measures it).
 */
import { promisify } from 'node:util';
import { createGunzip, gzip } from 'node:zlib';
import type { Logger } from 'pino';
import { parseManifest } from '../../archive/format.js';
import type { Selector } from '../../druid/selector.js';
import { selects } from '../../druid/selector.js';
import { parseInterval } from '../../druid/time.js';
import { BackupError, messageOf } from '../../errors.js';
import { splitLines } from '../../util/lines.js';
import { ANSWER_LIMITS, PageGuard } from '../../util/limitedRead.js';
import { mapLimit } from '../../util/pool.js';
import type { Manifest } from '../manifest.js';
import type { ObjectLayout } from './layout.js';
import type { ObjectStore } from './store.js';

/** Format 2: a first line `{"formatVersion":2}`, then per manifest `["key","etag"]`, a tab, the manifest's JSON. */
export const CATALOG_FORMAT_VERSION = 2;
const LIST_PAGE = 1000;
const FETCH_PARALLEL = 16;
/** Manifests written by this process and not yet in the index (kept as text); beyond this they are fetched again when listed. */
const MAX_REMEMBERED = 20_000;
/** Asking for fewer ids than this reads their manifests directly instead of listing. */
const DIRECT_IDS = 64;
/** An index line: its key and ETag and a manifest, which ANSWER_LIMITS.manifest bounds. */
const MAX_INDEX_LINE = ANSWER_LIMITS.manifest + 4096;
/** An index inflates to at most this many times its stored size (manifests compress about tenfold): beyond, it is a bomb. */
const MAX_INFLATE_RATIO = 64;
/** The index being written is compressed in pieces of about this much (concatenated gzip members, one file). */
const GZIP_PIECE = 1024 * 1024;
const TAB = 0x09;

const gzipAsync = promisify(gzip);

export interface KnownManifest {
  etag: string;
  manifest: Manifest;
}

/** The index as stored: compressed, read a line at a time. */
interface IndexState {
  etag: string;
  gz: Buffer;
}

/** One entry of the index: its line is copied as it is into the next index when the manifest is unchanged. */
interface IndexEntry {
  key: string;
  etag: string;
  line: Buffer;
}

export interface CatalogDeps {
  store: ObjectStore;
  layout: ObjectLayout;
  log: Logger;
  /** Runs a call of the store, turning a failure into a BackupError that says what was being done. */
  call<T>(action: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T>;
  /** Reads one manifest, undefined when there is none. */
  getManifest(segmentId: string, signal?: AbortSignal): Promise<KnownManifest | undefined>;
}

export interface ListStats {
  listRequests: number;
  manifestGets: number;
  indexRead: 'fresh' | 'unchanged' | 'none';
  indexWritten: boolean;
}

function matches(sel: Selector, m: Manifest): boolean {
  let startMs = NaN;
  let endMs = NaN;
  try {
    ({ startMs, endMs } = parseInterval(m.interval));
  } catch {
    // a manifest's interval was checked when it was parsed
  }
  return selects(sel, { id: m.segmentId, dataSource: m.dataSource, startMs, endMs });
}

function indexLine(key: string, etag: string, manifestJson: string): Buffer {
  return Buffer.from(`${JSON.stringify([key, etag])}\t${manifestJson}\n`, 'utf8');
}

/**
 * The entries of a stored index in key order. The index comes from the bucket, so it is input: a line that does not
 * parse, or a key out of order, ends the entries there (what follows is fetched, not trusted), and so does an index
 * that inflates beyond MAX_INFLATE_RATIO times its size or has a line beyond MAX_INDEX_LINE.
 */
async function* indexEntries(gz: Buffer, isManifestKey: (k: string) => boolean): AsyncGenerator<IndexEntry> {
  const limit = Math.max(gz.length * MAX_INFLATE_RATIO, 1024 * 1024);
  let inflated = 0;
  async function* inflate(): AsyncGenerator<Uint8Array> {
    const z = createGunzip();
    z.end(gz);
    for await (const c of z as AsyncIterable<Buffer>) {
      inflated += c.length;
      if (inflated > limit) throw new BackupError('target_error', `it inflates to more than ${MAX_INFLATE_RATIO} times its size`);
      yield c;
    }
  }
  let first = true;
  let prev = '';
  for await (const line of splitLines(inflate(), MAX_INDEX_LINE, () => new BackupError('target_error', 'a line is too long'))) {
    if (first) {
      first = false;
      const head = JSON.parse(line.toString('utf8')) as { formatVersion?: unknown } | null;
      if (head?.formatVersion !== CATALOG_FORMAT_VERSION) throw new BackupError('target_error', `its format is not ${CATALOG_FORMAT_VERSION}`);
      continue;
    }
    if (line.length === 0) continue;
    const tab = line.indexOf(TAB);
    const head = tab > 0 ? (JSON.parse(line.subarray(0, tab).toString('utf8')) as unknown) : undefined;
    if (!Array.isArray(head) || head.length !== 2 || typeof head[0] !== 'string' || typeof head[1] !== 'string' || !isManifestKey(head[0]))
      throw new BackupError('target_error', 'an entry does not parse');
    const [key, etag] = head as [string, string];
    // Keys are ASCII (layout.ts percent-encodes ids), so this order is the service's byte order.
    if (key <= prev) throw new BackupError('target_error', 'its keys are out of order');
    prev = key;
    // Subarray shares the chunk, which the next read may reuse: the line is copied to be kept for the next index.
    yield { key, etag, line: Buffer.concat([line, Buffer.from('\n')]) };
  }
}

/** The next index, gzipped piece by piece as its lines come, in order; nothing once it grows beyond ANSWER_LIMITS.index. */
class IndexBuilder {
  private pieces: Buffer[] = [];
  private bytes = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private over = false;

  constructor() {
    this.add(Buffer.from(`${JSON.stringify({ formatVersion: CATALOG_FORMAT_VERSION })}\n`));
  }

  add(line: Buffer): Promise<void> | undefined {
    if (this.over) return undefined;
    this.pending.push(line);
    this.pendingBytes += line.length;
    return this.pendingBytes >= GZIP_PIECE ? this.flush() : undefined;
  }

  private async flush(): Promise<void> {
    if (!this.pendingBytes) return;
    const input = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    const piece = await gzipAsync(input);
    this.bytes += piece.length;
    if (this.bytes > ANSWER_LIMITS.index) {
      this.over = true;
      this.pieces = [];
    } else this.pieces.push(piece);
  }

  /** The whole index, or undefined when it is larger than an index may be read back. */
  async done(): Promise<Buffer | undefined> {
    await this.flush();
    return this.over ? undefined : Buffer.concat(this.pieces, this.bytes);
  }
}

/** Walks a stored index beside a listing in key order: at most one entry is read ahead. */
class IndexCursor {
  private it?: AsyncGenerator<IndexEntry>;
  private head?: IndexEntry;
  /** Why the rest of the index was not used, once it failed. */
  failure?: string;

  constructor(gz: Buffer | undefined, isManifestKey: (k: string) => boolean) {
    if (gz) this.it = indexEntries(gz, isManifestKey);
  }

  private async peek(): Promise<IndexEntry | undefined> {
    if (this.head || !this.it) return this.head;
    try {
      const r = await this.it.next();
      if (r.done) this.it = undefined;
      else this.head = r.value;
    } catch (e) {
      this.failure = messageOf(e);
      this.it = undefined;
    }
    return this.head;
  }

  /** Each entry before `key` (all of them when undefined), taken from the index; then the entry of `key`, if any. */
  async upTo(key: string | undefined, before: (e: IndexEntry) => Promise<void> | undefined): Promise<IndexEntry | undefined> {
    for (let e = await this.peek(); e; e = await this.peek()) {
      if (key !== undefined && e.key >= key) return e.key === key ? this.take() : undefined;
      this.take();
      await before(e);
    }
    return undefined;
  }

  private take(): IndexEntry | undefined {
    const e = this.head;
    this.head = undefined;
    return e;
  }

  close(): void {
    void this.it?.return(undefined);
  }
}

export class ObjectCatalog {
  private index?: IndexState;
  /** Manifests this process wrote, as their JSON: a parsed manifest takes several times its text's memory. */
  private readonly written = new Map<string, { etag: string; json: string }>();
  /** What the last list() cost, for the benchmark and the tests. */
  lastList?: ListStats;

  constructor(private readonly d: CatalogDeps) {}

  /** Remembers a manifest this process just wrote (put, addSource), so listing it costs no GET. */
  remember(key: string, known: KnownManifest): void {
    if (this.written.size >= MAX_REMEMBERED) this.written.delete(this.written.keys().next().value!);
    this.written.delete(key);
    this.written.set(key, { etag: known.etag, json: JSON.stringify(known.manifest) });
  }

  /** Forgets a manifest this process removed (prune); the index's entry of it goes at the next listing, which lacks its key. */
  forget(key: string): void {
    this.written.delete(key);
  }

  private async loadIndex(signal: AbortSignal | undefined, stats: ListStats): Promise<void> {
    const key = this.d.layout.catalogKey;
    try {
      const got = await this.d.store.read(key, ANSWER_LIMITS.index, `the catalog index ${this.d.store.name}/${key}`, { signal, ifNoneMatch: this.index?.etag });
      if (got === 'unchanged') {
        stats.indexRead = 'unchanged';
        return;
      }
      this.index = got ? { etag: got.etag, gz: got.body } : undefined;
      if (got) stats.indexRead = 'fresh';
    } catch (e) {
      // The index only saves requests: without it every manifest is read.
      this.d.log.warn({ key, err: messageOf(e) }, 'catalog index unreadable; reading manifests instead');
      this.index = undefined;
    }
  }

  private async writeIndex(gz: Buffer, signal: AbortSignal | undefined): Promise<boolean> {
    const prev = this.index?.etag;
    try {
      const res = await this.d.store.write(this.d.layout.catalogKey, gz, {
        contentType: 'application/json',
        contentEncoding: 'gzip',
        ...(prev ? { ifMatch: prev } : { ifAbsent: true }),
        signal,
      });
      // Another node wrote a newer index: it is as good as ours, the next listing uses it.
      if (res === 'precondition-failed') return false;
      this.index = { etag: res.etag, gz };
      return true;
    } catch (e) {
      this.d.log.warn({ err: messageOf(e) }, 'catalog index not written');
      return false;
    }
  }

  /** Every manifest matching `sel`, in key order. */
  async *list(sel: Selector, signal?: AbortSignal): AsyncGenerator<Manifest> {
    const stats: ListStats = { listRequests: 0, manifestGets: 0, indexRead: 'none', indexWritten: false };
    this.lastList = stats;
    if (sel.segmentIds && sel.segmentIds.size < DIRECT_IDS) {
      for (const id of [...sel.segmentIds].sort()) {
        stats.manifestGets++;
        const k = await this.d.getManifest(id, signal);
        if (k && matches(sel, k.manifest)) yield k.manifest;
      }
      return;
    }
    await this.loadIndex(signal, stats);
    const isManifestKey = (k: string) => this.d.layout.isManifestKey(k);
    const cursor = new IndexCursor(this.index?.gz, isManifestKey);
    try {
      yield* this.walk(sel, cursor, stats, signal);
    } finally {
      cursor.close();
    }
  }

  /**
   * The listing under the selection's prefix beside the index: an entry whose ETag is the one listed gives the
   * manifest, any other is fetched; the next index gets every listed manifest and the index's entries outside the
   * prefix, in key order. It is written only when it differs and the listing came in key order.
   */
  private async *walk(sel: Selector, cursor: IndexCursor, stats: ListStats, signal?: AbortSignal): AsyncGenerator<Manifest> {
    const prefix = sel.dataSource !== undefined ? this.d.layout.dataSourceManifestsPrefix(sel.dataSource) : this.d.layout.manifestsPrefix;
    const next = new IndexBuilder();
    let changed = false;
    let ordered = true;
    let last = '';
    const fromWritten: string[] = [];
    // An entry of the index that is not listed: kept when outside the prefix, dropped (its manifest is gone) inside it.
    const passed = (e: IndexEntry): Promise<void> | undefined => {
      if (e.key.startsWith(prefix)) {
        changed = true;
        return undefined;
      }
      return next.add(e.line);
    };
    let token: string | undefined;
    const guard = new PageGuard(`the manifest listing of ${this.d.store.name}/${prefix}`);
    do {
      const page = await this.d.call('listing manifests', signal, () => this.d.store.list(prefix, { token, max: LIST_PAGE, signal }));
      stats.listRequests++;
      token = page.next;
      if (token) guard.next(token);
      const wanted: Array<{ key: string; etag: string; entry?: IndexEntry; json?: string }> = [];
      for (const { key, etag } of page.objects) {
        if (!this.d.layout.isManifestKey(key)) continue;
        if (key <= last) ordered = false;
        const entry = ordered ? await cursor.upTo(key, passed) : undefined;
        last = key;
        const mine = this.written.get(key);
        if (entry && entry.etag === etag && etag) wanted.push({ key, etag, entry });
        else if (mine && mine.etag === etag && etag) {
          fromWritten.push(key);
          changed = true;
          wanted.push({ key, etag, json: mine.json });
        } else wanted.push({ key, etag });
      }
      const known = await mapLimit(wanted, FETCH_PARALLEL, async (w): Promise<{ line?: Buffer; manifest?: Manifest; etag: string }> => {
        try {
          const json = w.entry ? w.entry.line.subarray(w.entry.line.indexOf(TAB) + 1).toString('utf8') : w.json;
          const manifest = json !== undefined ? parseManifest(JSON.parse(json)) : undefined;
          // An entry is the manifest of its own key, or it is read again.
          if (manifest && this.d.layout.manifestKey(manifest.segmentId) === w.key) return { line: w.entry?.line, manifest, etag: w.etag };
        } catch {
          // an entry that does not parse is fetched as if the index lacked it
        }
        changed = true;
        stats.manifestGets++;
        const id = this.d.layout.idOfManifestKey(w.key);
        try {
          const got = id !== undefined ? await this.d.getManifest(id, signal) : await this.getByKey(w.key, signal);
          return { manifest: got?.manifest, etag: got?.etag ?? w.etag };
        } catch (e) {
          // A manifest that does not parse is not a backup; verify reports it by id.
          this.d.log.warn({ key: w.key, err: messageOf(e) }, 'manifest skipped in the catalog');
          return { etag: w.etag };
        }
      });
      for (const [i, { line, manifest, etag }] of known.entries()) {
        if (!manifest) continue;
        await next.add(line ?? indexLine(wanted[i]!.key, etag, JSON.stringify(manifest)));
        if (matches(sel, manifest)) yield manifest;
      }
    } while (token);
    if (!ordered) {
      this.d.log.warn({ prefix }, 'the listing of manifests came out of key order; the catalog index is not written');
      return;
    }
    await cursor.upTo(undefined, passed);
    if (cursor.failure) {
      changed = true;
      this.d.log.warn({ key: this.d.layout.catalogKey, err: cursor.failure }, 'catalog index partly unusable; the manifests it lacked were read');
    }
    if (!changed) return;
    const gz = await next.done();
    if (!gz) {
      this.d.log.warn({ limit: ANSWER_LIMITS.index }, 'the catalog index would be larger than an index may be; not written, so listings read every manifest');
      return;
    }
    stats.indexWritten = await this.writeIndex(gz, signal);
    if (stats.indexWritten) for (const k of fromWritten) this.written.delete(k);
  }

  /** A manifest whose key does not spell its id (a cut name): read by key, the id taken from its contents. */
  private async getByKey(key: string, signal?: AbortSignal): Promise<KnownManifest | undefined> {
    const got = await this.d.store.read(key, ANSWER_LIMITS.manifest, `${this.d.store.name}/${key}`, { signal });
    if (!got || got === 'unchanged') return undefined;
    const m = parseManifest(JSON.parse(got.body.toString('utf8')));
    if (this.d.layout.manifestKey(m.segmentId) !== key) return undefined;
    return { etag: got.etag, manifest: m };
  }
}
