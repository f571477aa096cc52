/**
 * Several targets behind the one `Target` interface, so active and passive backup, restore and automatic restore
 * work with a list as they do with one target:
 *
 * - `put` keeps the segment on `copies` distinct targets (distinct zones when zones are given): it asks every
 *   available target whether it holds the segment already, counts the good copies, and sends to the best
 *   targets for the rest (choose.ts); a transfer that fails moves on to the next target. Fewer copies than wanted
 *   is logged and left to the next reconcile, which runs at once when a target comes back (`onRecovered`).
 * - `head` and `held` answer "held" only for segments with all their copies, so the reconcile of active backup
 *   re-sends a segment short of copies.
 * - `read` reads from the nearest target holding a copy; when a copy turns out damaged or its target goes down
 *   mid-restore, `readFailed` says so and the restore reads again from another copy.
 * - `list` is the union of the targets' catalogs, nearest first.
 *
 * The health of each target (circuit, RTT, stats) lives in the pool, shared by every set this node builds, and
 * the copies each target holds in the node's copy records (copies.ts).
 */
import type { Logger } from 'pino';
import type { TargetStatus } from '../api.js';
import { remoteIndex } from '../store/held.js';
import { formatBytes } from '../druid/bytes.js';
import { abortError, BackupError, isBackupError, messageOf } from '../errors.js';
import type { Manifest, SegmentFileInfo } from '../store/manifest.js';
import { hashOutgoing, segmentDigest } from '../store/manifest.js';
import { drainVerified } from '../restore/receive.js';
import { kindOf } from '../store/kinds.js';
import type {
  BatchRead,
  CopySurvey,
  IncomingFile,
  ListFilter,
  OutgoingSegment,
  PutOutcome,
  PutResult,
  SegmentReader,
  StoredSummary,
  StoreStats,
  Target,
  TransferOptions,
} from '../store/target.js';
import { hasCapability } from '../store/target.js';
import type { Candidate, Choice } from './choose.js';
import { choose, compareCandidates, zoneKey } from './choose.js';
import type { CopyCatalog } from './copies.js';
import { OPEN_TARGETS } from './cache.js';
import { failsOver, readsElsewhere } from './faults.js';
import { TargetHealth } from './health.js';
import type { TargetSpec } from './spec.js';

/** A copy that failed a read is not read again for this long (the restore moves on to another copy). */
const BAD_COPY_MS = 10 * 60_000;

export interface PoolOptions {
  open(url: string): Target;
  catalog: CopyCatalog;
  log: Logger;
  /** This node's name: copies it sent are the ones it records. */
  node: string;
  maxBackoffMs: number;
  /** URLs of the configured targets: their health is kept for good; that of targets named in requests is not. */
  pinned?: Iterable<string>;
}

/** How often the pool looks at its targets: stale stats are fetched again, open circuits probed when due. */
const HEALTH_CHECK_MS = 1000;

/** The health of every target this node talks to through a set, by URL. */
export class TargetPool {
  /** Configured targets first, then those named in requests, least recently used first. */
  private readonly members = new Map<string, TargetHealth>();
  private readonly pinned: Set<string>;
  private readonly listeners = new Set<(url: string) => void>();
  private timer?: NodeJS.Timeout;

  constructor(readonly opts: PoolOptions) {
    this.pinned = new Set(opts.pinned ?? []);
  }

  /**
   * Health checks in the background, so a target that goes down is skipped before a transfer finds out and one
   * that comes back is noticed (and segments short of copies go again) without waiting for the next reconcile.
   */
  start(): void {
    this.timer ??= setInterval(() => {
      for (const h of this.members.values()) void h.refresh(false);
    }, HEALTH_CHECK_MS);
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  get catalog(): CopyCatalog {
    return this.opts.catalog;
  }

  member(url: string): TargetHealth {
    let h = this.members.get(url);
    if (!h) {
      h = new TargetHealth(this.opts.open(url), this.opts.maxBackoffMs, (r) => {
        this.opts.log.info({ target: r.url }, 'target answers again; segments short of copies go again');
        for (const l of this.listeners) l(r.url);
      });
      this.members.set(url, h);
      // As the opened targets (cache.ts): naming thousands of targets in requests keeps the health of a few.
      if (this.members.size - this.pinned.size > OPEN_TARGETS)
        for (const old of this.members.keys())
          if (!this.pinned.has(old)) {
            this.members.delete(old);
            break;
          }
    } else if (!this.pinned.has(url)) {
      this.members.delete(url);
      this.members.set(url, h);
    }
    return h;
  }

  /** Called when a target whose circuit was open answers again. */
  onRecovered(fn: (url: string) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}

export interface SetOptions {
  copies: number;
  localZone?: string;
  log: Logger;
}

interface Member {
  spec: TargetSpec;
  h: TargetHealth;
}

export class TargetSet implements Target {
  readonly url: string;
  readonly putDecidesHeld = true;
  private readonly members: Member[];
  private readonly badCopies = new Map<string, Map<string, number>>();
  private readonly lastRead = new Map<string, string>();

  constructor(
    readonly pool: TargetPool,
    readonly specs: TargetSpec[],
    readonly opts: SetOptions,
  ) {
    this.members = specs.map((spec) => ({ spec, h: pool.member(spec.url) }));
    this.url = specs.map((s) => s.url).join(',');
  }

  get copies(): number {
    return this.opts.copies;
  }

  private get catalog(): CopyCatalog {
    return this.pool.catalog;
  }

  private member(url: string): Member {
    const m = this.members.find((x) => x.spec.url === url);
    if (!m) throw new BackupError('internal', `${url} is not one of the targets ${this.url}`);
    return m;
  }

  private candidates(): Candidate[] {
    return this.members.map(({ spec, h }) => ({
      url: spec.url,
      zone: spec.zone,
      weight: spec.weight,
      available: h.available,
      down: h.down,
      freeBytes: h.freeBytes,
      inFlightBytes: h.inFlightBytes,
      rttMs: h.rttMs,
      sentBytes: h.sentBytes,
    }));
  }

  /** Distinct places (zones) among these targets. */
  private places(urls: Iterable<string>): number {
    return new Set([...urls].map((u) => zoneKey(this.member(u).spec))).size;
  }

  /** Health checks of every target whose stats are stale (all of them with `force`). */
  async refresh(force = false, opts: TransferOptions = {}): Promise<void> {
    await Promise.all(this.members.map((m) => m.h.refresh(force, opts)));
  }

  /**
   * Before a job: every target of a list named in a request must answer sensible stats (a wrong URL fails here,
   * before anything is sent); the configured set needs at least one that does.
   */
  async check(all: boolean, opts: TransferOptions = {}): Promise<void> {
    const results = await Promise.allSettled(this.members.map((m) => m.h.check(opts)));
    const failed = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    if (all && failed.length) throw failed[0];
    if (failed.length === this.members.length)
      throw this.noneAnswers(failed, `none of the targets can take backups: ${failed.map((e) => messageOf(e)).join('; ')}`);
  }

  /**
   * The error when no target answered: a set of one (the node's `druid.backup.target`) fails as its target did, with
   * that target's own code (an answer too large, a bucket refusing credentials); a larger set says none answers.
   */
  private noneAnswers(failed: unknown[], message: string): unknown {
    if (this.members.length === 1 && failed.length === 1) return failed[0];
    return new BackupError('target_unreachable', message);
  }

  /** Which targets hold the segment now, asked of every available one; throws when none answers. */
  private async lookup(id: string, opts: TransferOptions): Promise<Map<string, StoredSummary>> {
    const found = new Map<string, StoredSummary>();
    let answered = 0;
    const errors: string[] = [];
    const failed: unknown[] = [];
    await Promise.all(
      this.members.map(async ({ spec, h }) => {
        if (!h.available) {
          errors.push(`${spec.url}: ${h.down}`);
          return;
        }
        try {
          const s = await h.call(() => h.target.head(id, opts));
          answered++;
          if (s) found.set(spec.url, s);
          else this.catalog.lost(id, spec.url);
        } catch (e) {
          errors.push(`${spec.url}: ${messageOf(e)}`);
          failed.push(e);
        }
      }),
    );
    if (opts.signal?.aborted) throw abortError(opts.signal);
    if (answered === 0) throw this.noneAnswers(failed, `none of the targets answers (${errors.join('; ')})`);
    return found;
  }

  /** The copies that agree: the digest most targets hold, and which targets hold it. */
  private agreeing(found: Map<string, StoredSummary>): { digest: string; urls: string[] } | undefined {
    const byDigest = new Map<string, string[]>();
    for (const [url, s] of found) byDigest.set(s.digest, [...(byDigest.get(s.digest) ?? []), url]);
    let best: { digest: string; urls: string[] } | undefined;
    for (const [digest, urls] of byDigest) if (!best || urls.length > best.urls.length) best = { digest, urls };
    return best;
  }

  async head(segmentId: string, opts: TransferOptions = {}): Promise<StoredSummary | undefined> {
    const found = await this.lookup(segmentId, opts);
    const good = this.agreeing(found);
    if (!good || this.places(good.urls) < this.copies) return undefined;
    const summaries = good.urls.map((u) => found.get(u)!);
    const sources = summaries[0]!.sources.filter((s) => summaries.every((x) => x.sources.includes(s)));
    return { digest: good.digest, sources, size: summaries[0]!.size };
  }

  async manifest(segmentId: string, opts: TransferOptions = {}): Promise<Manifest | undefined> {
    let lastError: unknown;
    let answered = false;
    for (const url of this.readOrder(segmentId)) {
      const { h } = this.member(url);
      try {
        const m = await h.call(() => h.target.manifest(segmentId, opts));
        answered = true;
        if (m) return m;
      } catch (e) {
        if (opts.signal?.aborted) throw e;
        lastError = e;
      }
    }
    if (!answered) {
      // Nobody answered: that is no "not held", whatever the reason (every holder down, every copy set aside).
      throw lastError ?? new BackupError('target_unreachable', `no target of ${this.url} that may hold ${segmentId} can be asked now`);
    }
    return undefined;
  }

  /**
   * Where the copies of a segment are: asks every target that can be asked (a have-it check), and sorts them into
   * good, damaged (per the copy records or the target's own verify), absent and unreachable.
   */
  async survey(segmentId: string, opts: TransferOptions = {}): Promise<CopySurvey> {
    const held = this.catalog.get(segmentId)?.copies;
    const out: CopySurvey = { good: [], damaged: [], unreachable: [], absent: [] };
    await Promise.all(
      this.members.map(async ({ spec, h }) => {
        const url = spec.url;
        const holder = held?.has(url) ?? false;
        if (!h.available) {
          out.unreachable.push({ target: url, why: h.down ?? 'down', holder });
          return;
        }
        try {
          const s = await h.call(() => h.target.head(segmentId, opts));
          if (!s) {
            this.catalog.lost(segmentId, url);
            out.absent.push(url);
            return;
          }
          this.catalog.holds(segmentId, url, s.digest);
          if (s.damaged) this.catalog.damaged(segmentId, url, s.damaged);
          const d = this.catalog.get(segmentId)?.copies.get(url)?.damaged;
          if (d) out.damaged.push({ target: url, problem: d.problem });
          else out.good.push(url);
        } catch (e) {
          if (opts.signal?.aborted) throw e;
          out.unreachable.push({ target: url, why: messageOf(e), holder });
        }
      }),
    );
    return out;
  }

  /** Asks one target whether it answers now, whatever its back-off (a lost segment waits on it). */
  async probe(url: string, opts: TransferOptions = {}): Promise<boolean> {
    const { h } = this.member(url);
    await h.refresh(true, opts);
    return h.circuit === 'closed' && !h.statsProblem;
  }

  /**
   * Replaces every damaged copy of a segment on an available target with `seg`, whose bytes have `digest` (the
   * manifest's), then reads each back with every digest checked; only then is the copy good again in the records.
   */
  async repair(
    seg: OutgoingSegment,
    digest: string,
    opts: TransferOptions = {},
  ): Promise<{ repaired: string[]; failed: Array<{ target: string; error: string }> }> {
    const id = seg.segmentId;
    const bytes = seg.files.reduce((n, f) => n + f.size, 0);
    const out = { repaired: [] as string[], failed: [] as Array<{ target: string; error: string }> };
    const mine = new Set(this.specs.map((s) => s.url));
    for (const d of this.catalog.damagedCopies(id)) {
      if (!mine.has(d.target)) continue;
      const { h } = this.member(d.target);
      if (!h.available) {
        out.failed.push({ target: d.target, error: h.down ?? 'down' });
        continue;
      }
      try {
        const r = await h.transfer(bytes, () => h.target.put(seg, { ...opts, replace: true }));
        if (r.digest !== digest) throw new BackupError('digest_mismatch', `the bytes sent have digest ${r.digest}, the manifest ${digest}`);
        const reader = await h.transfer(0, () => h.target.read(id, { signal: opts.signal }));
        await drainVerified(reader, digest, opts.signal);
        this.catalog.holds(id, d.target, digest, true);
        this.badCopies.get(id)?.delete(d.target);
        out.repaired.push(d.target);
      } catch (e) {
        if (opts.signal?.aborted) throw e;
        out.failed.push({ target: d.target, error: messageOf(e) });
      }
    }
    return out;
  }

  private recordChoice(segmentId: string, choice: Choice): void {
    const at = new Date().toISOString();
    for (const [url, reason] of choice.reasons) this.member(url).h.lastChoice = { segmentId, chosen: choice.chosen.includes(url), reason, at };
  }

  async put(seg: OutgoingSegment, opts: TransferOptions = {}): Promise<PutResult> {
    const id = seg.segmentId;
    const bytes = seg.files.reduce((n, f) => n + f.size, 0);
    const found = await this.lookup(id, opts);
    let files: SegmentFileInfo[] | undefined;
    let digest: string | undefined;
    const holders: string[] = [];
    if (found.size > 0) {
      // Some targets hold it: our digest says whether their copies count (known to the sender, else read here once).
      files = seg.digests ? await seg.digests(opts.signal) : await hashOutgoing(seg, opts.signal);
      digest = segmentDigest(files);
      const differing: string[] = [];
      for (const [url, s] of found) {
        if (s.digest !== digest) {
          differing.push(url);
          continue;
        }
        holders.push(url);
        this.catalog.holds(id, url, digest);
        if (!s.sources.includes(seg.node)) {
          const { h } = this.member(url);
          await h
            .call(() => h.target.addSource(id, seg.node, digest!, opts))
            .then(() => (sourceAdded = true))
            .catch((e: unknown) => this.opts.log.warn({ segmentId: id, target: url, err: messageOf(e) }, 'cannot record this node as a source'));
        }
      }
      if (holders.length === 0) {
        // Another node's different bytes are there: send them to one holder so it flags the replica, as one target would.
        const { h } = this.member(differing[0]!);
        return h.transfer(bytes, () => h.target.put(seg, opts));
      }
    }
    let outcome: PutOutcome = 'identical';
    let sourceAdded = false;
    let sent = 0;
    let lastError: unknown;
    const tried = new Set<string>();
    let choice: Choice | undefined;
    while (this.places(holders) < this.copies) {
      if (opts.signal?.aborted) throw abortError(opts.signal);
      await this.refresh(false, opts);
      choice = choose(this.candidates(), { bytes, copies: this.copies, localZone: this.opts.localZone, holders, exclude: tried });
      this.recordChoice(id, choice);
      // A set of one (druid.backup.target) sends as that target alone always did: there is nothing to choose, and
      // the target's own answer (507 no_space, its quota) is the error, not a skip decided here from its last stats.
      const url = this.members.length === 1 ? (tried.size === 0 ? this.members[0]!.spec.url : undefined) : choice.chosen[0];
      if (!url) break;
      tried.add(url);
      const { h } = this.member(url);
      try {
        const r = await h.transfer(bytes, () => h.target.put(seg, opts));
        sent += r.bytes;
        files ??= r.files;
        digest ??= r.digest;
        if (r.outcome === 'conflict') {
          this.opts.log.warn({ segmentId: id, target: url }, 'the target holds different bytes for this segment; flagged there, not counted as a copy');
          continue;
        }
        holders.push(url);
        this.catalog.holds(id, url, r.digest, true);
        if (r.outcome === 'stored') outcome = 'stored';
      } catch (e) {
        if (opts.signal?.aborted || !failsOver(e)) throw e;
        lastError = e;
        if (isBackupError(e) && e.code === 'no_space') void h.refresh(true);
        this.opts.log.warn({ segmentId: id, target: url, err: messageOf(e) }, 'transfer failed; trying the next target');
      }
    }
    if (holders.length === 0) {
      const why = choice ? [...choice.reasons].map(([u, r]) => `${u}: ${r}`).join('; ') : '';
      if (lastError && (this.members.length === 1 || !(isBackupError(lastError) && lastError.code === 'no_space'))) throw lastError;
      const full = this.candidates().some((c) => c.available);
      throw new BackupError(full ? 'no_space' : 'target_unreachable', `no target can take segment ${id} (${formatBytes(bytes)}): ${why}`);
    }
    if (this.places(holders) < this.copies)
      this.opts.log.warn(
        { segmentId: id, copies: holders.length, wanted: this.copies, targets: holders },
        'segment kept on fewer targets than druid.backup.copies; it goes again when a target comes back or has room',
      );
    return { outcome, files: files!, digest: digest!, bytes: sent, ...(outcome === 'identical' && sourceAdded ? { sourceAdded } : {}) };
  }

  async addSource(segmentId: string, node: string, digest: string, opts: TransferOptions = {}): Promise<PutOutcome> {
    const found = await this.lookup(segmentId, opts);
    let outcome: PutOutcome = 'identical';
    for (const [url, s] of found) {
      if (s.digest !== digest || s.sources.includes(node)) continue;
      const { h } = this.member(url);
      const r = await h.call(() => h.target.addSource(segmentId, node, digest, opts));
      if (r !== 'identical') outcome = r;
    }
    return outcome;
  }

  private isBad(segmentId: string, url: string): boolean {
    const at = this.badCopies.get(segmentId)?.get(url);
    return at !== undefined && Date.now() - at < BAD_COPY_MS;
  }

  /** Targets to read a segment from, best first: available ones, those known to hold it first, nearest first. */
  private readOrder(segmentId: string): string[] {
    const held = this.catalog.get(segmentId)?.copies;
    const cands = this.candidates().filter((c) => c.available && !this.isBad(segmentId, c.url) && !held?.get(c.url)?.damaged);
    cands.sort(
      (a, b) =>
        Number(held?.has(b.url) ?? false) - Number(held?.has(a.url) ?? false) ||
        compareCandidates({ ...a, sentBytes: 0 }, { ...b, sentBytes: 0 }, this.opts.localZone),
    );
    return cands.map((c) => c.url);
  }

  async read(segmentId: string, opts: TransferOptions = {}): Promise<SegmentReader> {
    let lastError: unknown;
    for (const url of this.readOrder(segmentId)) {
      const { h } = this.member(url);
      try {
        const reader = await h.transfer(0, () => h.target.read(segmentId, opts));
        return this.watched(segmentId, url, reader);
      } catch (e) {
        if (opts.signal?.aborted || !readsElsewhere(e)) throw e;
        lastError = e;
        this.markBad(segmentId, url, e);
      }
    }
    throw lastError ?? new BackupError('target_unreachable', `no available target holds a readable copy of ${segmentId} (${this.url})`);
  }

  /**
   * A restore's group read in as few exchanges as the copies allow: each segment goes with the others whose copy
   * `read` would take first (the same target), in one batch read of that target where it offers one; the readers
   * are watched as `read`'s are (a copy that fails is marked bad, one read whole is recorded). A segment no batch
   * brings (its target reads one at a time, or its batch failed) is left to the caller, who reads it alone through
   * `read`, from whichever copy is then best.
   */
  async readBatch(segmentIds: readonly string[], opts: TransferOptions = {}): Promise<AsyncIterable<BatchRead> | undefined> {
    const byTarget = new Map<string, string[]>();
    for (const id of segmentIds) {
      const url = this.readOrder(id)[0];
      if (url === undefined || !hasCapability(this.member(url).h.target, 'readBatch')) continue;
      const ids = byTarget.get(url);
      if (ids) ids.push(id);
      else byTarget.set(url, [id]);
    }
    if (!byTarget.size) return undefined;
    const batches = async function* (this: TargetSet): AsyncGenerator<BatchRead> {
      for (const [url, ids] of byTarget) {
        if (opts.signal?.aborted) return;
        const { h } = this.member(url);
        try {
          const parts = await h.transfer(0, () => h.target.readBatch!(ids, opts));
          if (!parts) continue;
          for await (const part of parts) {
            if (!part.reader) {
              if (readsElsewhere(part.error)) this.markBad(part.segmentId, url, part.error);
              yield part;
              continue;
            }
            yield { segmentId: part.segmentId, reader: this.watched(part.segmentId, url, part.reader) };
          }
        } catch (e) {
          if (!opts.signal?.aborted) this.opts.log.warn({ target: url, segments: ids.length, err: messageOf(e) }, 'a batch read failed; its segments are read again, each from the best copy');
          throw e;
        }
      }
    };
    return batches.call(this);
  }

  private markBad(segmentId: string, url: string, e: unknown): void {
    let m = this.badCopies.get(segmentId);
    if (!m) this.badCopies.set(segmentId, (m = new Map()));
    m.set(url, Date.now());
    // A copy that failed its digests is still "held" by its target: recorded as damaged, to be replaced. (A stream
    // cut mid-transfer is no damage of the copy: it reads as a bad archive or an unreachable target.)
    if (isBackupError(e) && e.code === 'digest_mismatch') this.catalog.damaged(segmentId, url, messageOf(e));
    if (isBackupError(e) && e.code === 'not_found') this.catalog.lost(segmentId, url);
    this.opts.log.warn({ segmentId, target: url, err: messageOf(e) }, 'cannot read this copy; another copy will be used');
  }

  /**
   * The reader of `url`'s copy, recorded as the one last read (what `readFailed` marks), with its end recorded (the
   * copy verified, the segment restored from it) and its failure noted.
   */
  private watched(segmentId: string, url: string, reader: SegmentReader): SegmentReader {
    this.lastRead.set(segmentId, url);
    return { ...reader, files: this.watchedFiles(segmentId, url, reader) };
  }

  private async *watchedFiles(segmentId: string, url: string, reader: SegmentReader): AsyncGenerator<IncomingFile> {
    try {
      for await (const f of reader.files) yield f;
    } catch (e) {
      this.markBad(segmentId, url, e);
      throw e;
    }
    this.catalog.holds(segmentId, url, reader.manifest.digest, reader.verified === true);
    this.catalog.restored(segmentId, url);
    this.badCopies.delete(segmentId);
  }

  /**
   * A restore of the segment failed after `read`: the copy it read is set aside; true when another copy can be
   * tried (the restore then calls `read` again).
   */
  readFailed(segmentId: string, e: unknown): boolean {
    if (!readsElsewhere(e)) return false;
    const url = this.lastRead.get(segmentId);
    if (url && !this.isBad(segmentId, url)) this.markBad(segmentId, url, e);
    return this.readOrder(segmentId).length > 0;
  }

  async *list(filter: ListFilter = {}, opts: TransferOptions = {}): AsyncGenerator<Manifest> {
    const seen = new Set<string>();
    let answered = 0;
    const errors: string[] = [];
    const failed: unknown[] = [];
    for (const url of this.readOrder('')) {
      const { h } = this.member(url);
      try {
        for await (const m of h.target.list(filter, opts)) {
          if (seen.has(m.segmentId)) continue;
          seen.add(m.segmentId);
          yield m;
        }
        answered++;
        h.succeeded();
      } catch (e) {
        if (opts.signal?.aborted) throw e;
        h.failed(e);
        errors.push(`${url}: ${messageOf(e)}`);
        failed.push(e);
      }
    }
    if (answered === 0) throw this.noneAnswers(failed, `none of the targets answers (${errors.join('; ') || 'all are down'})`);
  }

  async stats(opts: TransferOptions = {}): Promise<StoreStats> {
    await this.refresh(true, opts);
    const up = this.members.filter((m) => m.h.available && m.h.stats);
    if (up.length === 0)
      throw new BackupError(
        'target_unreachable',
        `none of the targets answers (${this.members.map((m) => `${m.spec.url}: ${m.h.down ?? 'no stats'}`).join('; ')})`,
      );
    const sum = (f: (s: StoreStats) => number) => up.reduce((n, m) => Math.min(Number.MAX_SAFE_INTEGER, n + f(m.h.stats!)), 0);
    return { segments: sum((s) => s.segments), bytes: sum((s) => s.bytes), freeBytes: sum((s) => s.freeBytes) };
  }

  /**
   * What the targets hold, for the reconcile of active backup: a segment counts as held only with all its copies
   * (agreeing digests on enough distinct targets), so one short of copies is queued and sent again.
   */
  async held(filter: ListFilter = {}, opts: TransferOptions = {}): Promise<Map<string, StoredSummary>> {
    const per = new Map<string, Map<string, StoredSummary>>();
    const errors: string[] = [];
    const failed: unknown[] = [];
    await Promise.all(
      this.members.map(async ({ spec, h }) => {
        if (!h.available) return;
        try {
          const idx = await remoteIndex(h.target, filter, opts);
          h.succeeded();
          for (const [id, s] of idx) {
            if (!s.sources.includes(this.pool.opts.node)) continue;
            let m = per.get(id);
            if (!m) per.set(id, (m = new Map()));
            m.set(spec.url, s);
            this.catalog.holds(id, spec.url, s.digest);
            if (s.damaged) this.catalog.damaged(id, spec.url, s.damaged);
          }
          if (!filter.dataSource && !filter.interval && !filter.segmentIds)
            for (const id of [...this.catalog.ids()]) if (!idx.has(id)) this.catalog.lost(id, spec.url);
        } catch (e) {
          h.failed(e);
          errors.push(`${spec.url}: ${messageOf(e)}`);
          failed.push(e);
        }
      }),
    );
    if (errors.length === this.members.length || this.members.every((m) => !m.h.available))
      throw this.noneAnswers(failed, `none of the targets answers (${errors.join('; ') || 'all are down'})`);
    const out = new Map<string, StoredSummary>();
    for (const [id, found] of per) {
      const good = this.agreeing(found);
      if (!good || this.places(good.urls) < this.copies) continue;
      const summaries = good.urls.map((u) => found.get(u)!);
      out.set(id, {
        digest: good.digest,
        sources: summaries[0]!.sources.filter((s) => summaries.every((x) => x.sources.includes(s))),
        size: summaries[0]!.size,
      });
    }
    return out;
  }

  /** Good copies of a segment on available targets of this set, per the copy records. */
  copiesOf(segmentId: string, digest?: string): { copies: number; targets: string[] } {
    const held = this.catalog.get(segmentId)?.copies;
    if (!held) return { copies: 0, targets: [] };
    const mine = new Set(this.specs.map((s) => s.url));
    const targets = [...held].filter(([u, r]) => mine.has(u) && !r.damaged && (!digest || r.digest === digest)).map(([u]) => u);
    return { copies: targets.length, targets };
  }

  /** The copies of a segment on targets of this set known damaged. */
  damagedCopies(segmentId: string): Array<{ target: string; problem: string; at: string }> {
    const mine = new Set(this.specs.map((s) => s.url));
    return this.catalog.damagedCopies(segmentId).filter((d) => mine.has(d.target));
  }

  /** True when the segment has fewer good copies on available targets, in distinct zones, than wanted. */
  underReplicated(segmentId: string, digest?: string): boolean {
    const { targets } = this.copiesOf(segmentId, digest);
    if (targets.length === 0 && this.damagedCopies(segmentId).length === 0) return false;
    // A target counts once it answers (circuit closed), not merely because its back-off let the next call through.
    return this.places(targets.filter((u) => this.member(u).h.circuit === 'closed' && !this.member(u).h.statsProblem)) < this.copies;
  }

  /** Every target with its state, space, RTT and its last choice (GET /data/v1/targets). */
  describe(): TargetStatus[] {
    const counts = new Map<string, number>();
    for (const id of this.catalog.ids()) for (const u of this.catalog.get(id)!.copies.keys()) counts.set(u, (counts.get(u) ?? 0) + 1);
    return this.members.map(({ spec, h }) => ({
      url: spec.url,
      kind: kindOf(spec.url).name,
      ...(spec.zone ? { zone: spec.zone } : {}),
      weight: spec.weight,
      state: h.statsProblem ? 'invalid' : h.circuit !== 'closed' ? 'down' : h.stats ? 'up' : 'unknown',
      circuit: h.circuit,
      ...(h.stats ? { freeBytes: h.stats.freeBytes, storedBytes: h.stats.bytes, segments: h.stats.segments } : {}),
      ...(h.stats?.quotaBytes !== undefined ? { quotaBytes: h.stats.quotaBytes } : {}),
      ...(h.rttMs !== undefined ? { rttMs: Math.round(h.rttMs * 10) / 10 } : {}),
      failures: h.failures,
      ...(h.lastError ? { lastError: h.lastError } : {}),
      ...(h.circuit !== 'closed' ? { retryAt: new Date(h.retryAt).toISOString() } : {}),
      copies: counts.get(spec.url) ?? 0,
      ...(h.lastChoice ? { lastChoice: h.lastChoice } : {}),
    }));
  }
}
