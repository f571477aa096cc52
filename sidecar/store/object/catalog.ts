/**
 * The catalog of a bucket (or container) without a request per segment. The manifests are the truth; they are found
 * with listing pages (1,000 keys each) over `manifests/`, which also give each manifest's ETag. Their contents
 * come from `catalog.json.gz`, an index of manifests by key and ETag kept in the bucket: an entry is used only when
 * its ETag is the one just listed, so a stale or damaged index costs requests, never a wrong answer. Manifests the
 * index lacks (new, or changed by another node) are fetched, 16 at a time, and the index is written back after a
 * complete listing, conditionally, so two writers never undo each other. Manifests this process wrote are
 * remembered until then, so a node's own backups never need fetching.
 *
 * 10,000 segments: 10 list pages and one index GET (bench/s3.ts measures it).
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import type { Logger } from 'pino';
import { parseManifest } from '../../archive/format.js';
import type { Selector } from '../../druid/selector.js';
import { selects } from '../../druid/selector.js';
import { parseInterval } from '../../druid/time.js';
import { messageOf } from '../../errors.js';
import { ANSWER_LIMITS, PageGuard } from '../../util/limitedRead.js';
import { mapLimit } from '../../util/pool.js';
import type { Manifest } from '../manifest.js';
import type { ObjectLayout } from './layout.js';
import type { ObjectStore } from './store.js';

export const CATALOG_FORMAT_VERSION = 1;
const LIST_PAGE = 1000;
const FETCH_PARALLEL = 16;
/** Manifests written by this process and not yet in the index; beyond this they are fetched again when listed. */
const MAX_REMEMBERED = 20_000;
/** Asking for fewer ids than this reads their manifests directly instead of listing. */
const DIRECT_IDS = 64;

export interface KnownManifest {
  etag: string;
  manifest: Manifest;
}

interface IndexState {
  etag: string;
  entries: Map<string, KnownManifest>;
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

export class ObjectCatalog {
  private index?: IndexState;
  private readonly written = new Map<string, KnownManifest>();
  /** What the last list() cost, for the benchmark and the tests. */
  lastList?: ListStats;

  constructor(private readonly d: CatalogDeps) {}

  /** Remembers a manifest this process just wrote (put, addSource), so listing it costs no GET. */
  remember(key: string, known: KnownManifest): void {
    if (this.written.size >= MAX_REMEMBERED) this.written.delete(this.written.keys().next().value!);
    this.written.delete(key);
    this.written.set(key, known);
  }

  /** Forgets a manifest this process removed (prune), so no listing answers it from memory. */
  forget(key: string): void {
    this.written.delete(key);
    this.index?.entries.delete(key);
  }

  private parseIndex(body: Buffer): Map<string, KnownManifest> {
    const out = new Map<string, KnownManifest>();
    // An index that inflates beyond its limit throws, and is not used (loadIndex).
    const json = JSON.parse(gunzipSync(body, { maxOutputLength: ANSWER_LIMITS.indexInflated }).toString('utf8')) as {
      formatVersion?: unknown;
      entries?: unknown;
    };
    if (json.formatVersion !== CATALOG_FORMAT_VERSION || !Array.isArray(json.entries)) return out;
    for (const e of json.entries as Array<{ key?: unknown; etag?: unknown; manifest?: unknown }>) {
      if (typeof e?.key !== 'string' || typeof e.etag !== 'string' || !this.d.layout.isManifestKey(e.key)) continue;
      try {
        out.set(e.key, { etag: e.etag, manifest: parseManifest(e.manifest) });
      } catch {
        // an entry that does not parse is fetched again
      }
    }
    return out;
  }

  private async loadIndex(signal: AbortSignal | undefined, stats: ListStats): Promise<void> {
    const key = this.d.layout.catalogKey;
    try {
      const got = await this.d.store.read(key, ANSWER_LIMITS.index, `the catalog index ${this.d.store.name}/${key}`, { signal, ifNoneMatch: this.index?.etag });
      if (got === 'unchanged') {
        stats.indexRead = 'unchanged';
        return;
      }
      if (!got) {
        this.index = undefined;
        return;
      }
      this.index = { etag: got.etag, entries: this.parseIndex(got.body) };
      stats.indexRead = 'fresh';
    } catch (e) {
      // The index only saves requests: without it every manifest is read.
      this.d.log.warn({ key, err: messageOf(e) }, 'catalog index unreadable; reading manifests instead');
      this.index = undefined;
    }
  }

  private async writeIndex(entries: Map<string, KnownManifest>, signal: AbortSignal | undefined): Promise<boolean> {
    const body = gzipSync(
      JSON.stringify({ formatVersion: CATALOG_FORMAT_VERSION, entries: [...entries].map(([key, v]) => ({ key, etag: v.etag, manifest: v.manifest })) }),
    );
    const prev = this.index?.etag;
    try {
      const res = await this.d.store.write(this.d.layout.catalogKey, body, {
        contentType: 'application/json',
        contentEncoding: 'gzip',
        ...(prev ? { ifMatch: prev } : { ifAbsent: true }),
        signal,
      });
      // Another node wrote a newer index: it is as good as ours, the next listing uses it.
      if (res === 'precondition-failed') return false;
      this.index = { etag: res.etag, entries };
      for (const k of entries.keys()) this.written.delete(k);
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
    const old = this.index?.entries ?? new Map<string, KnownManifest>();
    const prefix = sel.dataSource !== undefined ? this.d.layout.dataSourceManifestsPrefix(sel.dataSource) : this.d.layout.manifestsPrefix;
    const seen = new Map<string, KnownManifest>();
    let fetched = 0;
    let token: string | undefined;
    const guard = new PageGuard(`the manifest listing of ${this.d.store.name}/${prefix}`);
    do {
      const page = await this.d.call('listing manifests', signal, () => this.d.store.list(prefix, { token, max: LIST_PAGE, signal }));
      stats.listRequests++;
      token = page.next;
      if (token) guard.next(token);
      const keys = page.objects.filter((o) => this.d.layout.isManifestKey(o.key));
      const known = await mapLimit(keys, FETCH_PARALLEL, async (o) => {
        const { key, etag } = o;
        const have = this.written.get(key) ?? old.get(key);
        if (have && have.etag === etag && etag) return { key, known: have };
        const id = this.d.layout.idOfManifestKey(key);
        stats.manifestGets++;
        fetched++;
        try {
          const got = id !== undefined ? await this.d.getManifest(id, signal) : await this.getByKey(key, signal);
          return { key, known: got };
        } catch (e) {
          // A manifest that does not parse is not a backup; verify reports it by id.
          this.d.log.warn({ key, err: messageOf(e) }, 'manifest skipped in the catalog');
          return { key, known: undefined };
        }
      });
      for (const { key, known: k } of known) {
        if (!k) continue;
        seen.set(key, k);
        if (matches(sel, k.manifest)) yield k.manifest;
      }
    } while (token);

    const next = new Map<string, KnownManifest>();
    for (const [k, v] of old) if (!k.startsWith(prefix)) next.set(k, v);
    for (const [k, v] of seen) next.set(k, v);
    const changed = fetched > 0 || next.size !== old.size || [...seen].some(([k, v]) => old.get(k)?.etag !== v.etag);
    if (changed) stats.indexWritten = await this.writeIndex(next, signal);
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
