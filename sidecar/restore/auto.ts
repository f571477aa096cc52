/**
 * Automatic restore. Druid writes a segment's info_dir file when it loads the segment and, on a drop, removes
 * that file first and the segment's files later; so files that vanish or change while the info file stays are a
 * loss, and info file gone first is a drop, left alone (notes/druid-facts.md).
 *
 * A sweep runs every few seconds and costs only stats: it lists info_dir, and stats the files it saw in each
 * served segment's directory the first time. A file gone, or whose size, inode or mtime changed, makes the segment
 * a suspect; a changed file is hashed against the backup's manifest (a file rewritten with the same bytes is no
 * loss). A suspect still lost after the settle time, and not being downloaded by Druid (`downloadStartMarker`),
 * is restored from the node's target, once its copies say it can be (sources.ts): a segment whose holders are all
 * unreachable waits for one to answer (probed every few seconds) until Druid takes over (its info_dir entry goes,
 * or it downloads the segment itself); one whose every reachable copy is damaged is said so and tried again later;
 * only one that no target holds is given up, and said so once. The sweep slows itself down on a large cache so it
 * never takes more than a twentieth of the time. The scrub (off by default) reads every byte of the served segments against their
 * manifests and repairs what it finds: bit rot changes no stat.
 */
import type { Dirent, Stats } from 'node:fs';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { segmentIdOfDescriptor } from '../druid/descriptor.js';
import { cacheSegmentPath } from '../druid/paths.js';
import type { CacheLocationConfig } from '../druid/scan.js';
import { DOWNLOAD_MARKER, SEGMENT_MARKERS } from '../druid/scan.js';
import type { SegmentId } from '../druid/segmentId.js';
import type { LossVerdict } from '../api.js';
import { messageOf } from '../errors.js';
import type { Manifest } from '../store/manifest.js';
import type { Target } from '../store/target.js';
import { checkSegmentDir } from '../verify/check.js';
import type { DigestMemo } from './digests.js';
import { HolderWaits, explainVerdict } from './sources.js';

export type LossReason = 'vanished' | 'damaged';
export type RepairMode = 'auto' | 'scrub';

export interface AutoRestoreOptions {
  locations: CacheLocationConfig[];
  infoDir: string;
  target: Target;
  /** This node's name in manifests: a copy this node sent that differed from the stored one is not "repaired". */
  nodeName: string;
  /** How long a loss must last before it is restored (Druid may be moving the segment). */
  settleMs: number;
  /** Period of the stat sweep. */
  checkMs: number;
  /** Period of the full re-hash; 0 is off. */
  scrubMs: number;
  memo: DigestMemo;
  log: Logger;
  /** True while a restore (manual or automatic) is installing the segment. */
  isBusy(segmentId: string): boolean;
  /** Where the copies of a lost segment are, and so what can be done (restore/sources.ts). */
  survey(segmentId: string): Promise<LossVerdict>;
  /** Restores these segments from the target into the cache; resolves when done, with a verdict for each (`restored` or why not). */
  restore(segmentIds: string[], mode: RepairMode): Promise<LossVerdict[]>;
  /** Counts a decision about a lost segment (for /metrics). */
  onVerdict?(v: LossVerdict): void;
  /** How often a holder a segment waits on is probed (default sources.ts HOLDER_PROBE_MS). */
  probeMs?: number;
  /** Counts a detected loss (for /metrics). */
  onLoss?(reason: LossReason): void;
  /** Counts a segment the scrub read, and whether it was damaged. */
  onScrubbed?(damaged: boolean): void;
}

interface SeenFile {
  size: number;
  ino: number;
  mtimeMs: number;
}

interface Served {
  segment: SegmentId;
  /** Where its files were seen complete; undefined until then. */
  dir?: string;
  files?: Map<string, SeenFile>;
  /** When the loss was first seen, and why. */
  suspect?: { since: number; reason: LossReason; why: string };
}

/** Longest the sweep waits however slow the last one was. */
const MAX_BACKOFF_MS = 60_000;
/** A segment whose restore failed (target down, backup damaged) is tried again after 5 s, doubling up to 5 min. */
const RETRY_BASE_MS = 5_000;
const RETRY_MAX_MS = 5 * 60_000;

function statSafe(p: string): Stats | undefined {
  try {
    return lstatSync(p, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
}

function listDir(p: string): Dirent[] | undefined {
  try {
    return readdirSync(p, { withFileTypes: true });
  } catch {
    return undefined;
  }
}

export class AutoRestore {
  private readonly served = new Map<string, Served>();
  /** Lost segments the target has no backup of: said once, not asked again until their info file changes. */
  private readonly unavailable = new Set<string>();
  private readonly manifests = new Map<string, Manifest>();
  private readonly retries = new Map<string, { attempts: number; at: number }>();
  /** Lost segments whose every holder is unreachable: not on the back-off, restored as soon as one answers. */
  private readonly waits: HolderWaits;
  private timer?: NodeJS.Timeout;
  private nextAt = 0;
  private scrubTimer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private again = false;
  private stopped = true;
  private lastSweepMs = 0;

  constructor(private readonly o: AutoRestoreOptions) {
    this.waits = new HolderWaits({
      target: o.target,
      log: o.log,
      periodMs: o.probeMs,
      onAnswer: (ids) => {
        for (const id of ids) this.retries.delete(id);
        if (!this.stopped) this.schedule(0);
      },
    });
  }

  /** Lost segments waiting for a target that holds them to answer. */
  get waiting(): string[] {
    return this.waits.ids();
  }

  start(): void {
    this.stopped = false;
    this.schedule(0);
    if (this.o.scrubMs > 0)
      this.scrubTimer = setInterval(() => void this.scrub().catch((e) => this.o.log.warn({ err: messageOf(e) }, 'scrub failed')), this.o.scrubMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.waits.stop();
    clearTimeout(this.timer);
    clearInterval(this.scrubTimer);
    await this.running;
  }

  /** Asks for a sweep soon, e.g. when a watcher saw files go. */
  trigger(): void {
    if (!this.stopped) this.schedule(200);
  }

  /** Runs the next sweep in `ms` unless one is due sooner: a stream of triggers never postpones it. */
  private schedule(ms: number): void {
    const at = Date.now() + ms;
    if (this.timer && this.nextAt <= at) return;
    clearTimeout(this.timer);
    this.nextAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.tick();
    }, ms);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.sweepAndRepair()
      .catch((e) => this.o.log.warn({ err: messageOf(e) }, 'automatic restore check failed'))
      .finally(() => (this.running = undefined));
    await this.running;
    if (this.stopped) return;
    const next = Math.min(MAX_BACKOFF_MS, Math.max(this.o.checkMs, this.lastSweepMs * 20));
    // A suspect is looked at again as soon as its settle time is over.
    const suspects = [...this.served.values()].filter((s) => s.suspect).map((s) => s.suspect!.since + this.o.settleMs - Date.now());
    this.schedule(this.again ? 0 : Math.max(0, Math.min(next, ...suspects.map((w) => w + 50))));
    this.again = false;
  }

  /** One sweep; then restores every loss that outlasted the settle time. Exposed for tests and the daemon's reconcile. */
  async sweepAndRepair(): Promise<void> {
    const t0 = performance.now();
    await this.sweep();
    this.lastSweepMs = performance.now() - t0;
    const now = Date.now();
    // A wait ends when the segment is whole again (Druid re-downloaded it, or a manual restore): look() cleared it.
    for (const id of this.waits.ids()) if (!this.served.get(id)?.suspect) this.endWait(id, 'the segment is whole again');
    const due = [...this.served.entries()].filter(
      ([id, s]) =>
        s.suspect &&
        now - s.suspect.since >= this.o.settleMs &&
        !this.o.isBusy(id) &&
        !this.unavailable.has(id) &&
        !this.waits.has(id) &&
        (this.retries.get(id)?.at ?? 0) <= now,
    );
    if (due.length === 0) return;
    const ids: string[] = [];
    for (const [id, s] of due) {
      let v: LossVerdict;
      try {
        v = await this.o.survey(id);
      } catch (e) {
        this.failed(id, messageOf(e));
        continue;
      }
      if (v.case !== 'restorable') {
        this.notRestored(v, s.suspect!.why);
        continue;
      }
      this.o.log.warn(
        { segmentId: id, reason: s.suspect!.why, from: v.good, damaged: v.damaged },
        'segment lost from the cache while its info_dir entry remains; restoring it from the backup',
      );
      ids.push(id);
    }
    if (ids.length === 0) return;
    let verdicts: LossVerdict[] = ids.map((segmentId) => ({ segmentId, case: 'restorable' }));
    try {
      verdicts = await this.o.restore(ids, 'auto');
    } finally {
      const byId = new Map(verdicts.map((v) => [v.segmentId, v]));
      for (const id of ids) {
        const v = byId.get(id);
        if (v?.case === 'restored') {
          this.retries.delete(id);
          this.o.onVerdict?.(v);
        } else if (v && v.case !== 'restorable') this.notRestored(v, this.served.get(id)?.suspect?.why);
        else this.failed(id, 'the restore failed');
        // Restored ones are observed afresh (new inodes are no change); the others stay suspects since their loss.
        const s = this.served.get(id);
        if (s) this.served.set(id, { segment: s.segment, suspect: v?.case === 'restored' ? undefined : s.suspect });
      }
    }
  }

  /** A lost segment that cannot be restored now: what applies is said, counted and acted on per case. */
  private notRestored(v: LossVerdict, why: string | undefined): void {
    const id = v.segmentId;
    const detail = { segmentId: id, reason: why, case: v.case, damaged: v.damaged, unreachable: v.unreachable, waitOn: v.waitOn };
    if (v.case === 'no_backup') {
      this.unavailable.add(id);
      this.o.onVerdict?.(v);
      this.o.log.warn(detail, 'segment lost from the cache, but no target holds a backup of it; Druid will pull it from deep storage');
    } else if (v.case === 'holders_unreachable') {
      this.retries.delete(id);
      if (this.waits.wait(id, v.waitOn ?? [])) {
        this.o.onVerdict?.(v);
        this.o.log.warn(detail, `lost segment not restored: ${explainVerdict(v)}`);
      }
    } else {
      this.o.onVerdict?.(v);
      this.o.log.error(detail, `lost segment not restored: ${explainVerdict(v)}`);
      this.failed(id, explainVerdict(v));
    }
  }

  private endWait(id: string, why: string): void {
    if (!this.waits.end(id)) return;
    this.o.log.info({ segmentId: id, why }, 'lost segment no longer waits for its targets');
  }

  private failed(id: string, why: string): void {
    const r = this.retries.get(id) ?? { attempts: 0, at: 0 };
    r.attempts++;
    const wait = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (r.attempts - 1));
    r.at = Date.now() + wait;
    this.retries.set(id, r);
    this.o.log.warn({ segmentId: id, attempts: r.attempts, retryInMs: wait, err: why }, 'lost segment not restored; trying again later');
  }

  /** A restore replaced the segment's files: observe them afresh rather than take the new inodes for a change. */
  restored(id: string): void {
    const s = this.served.get(id);
    if (s) this.served.set(id, { segment: s.segment });
  }

  private async manifestOf(id: string): Promise<Manifest | undefined> {
    let m = this.manifests.get(id);
    if (!m) {
      m = await this.o.target.manifest(id);
      if (m) this.manifests.set(id, m);
    }
    return m;
  }

  /** The segment's directory, in whichever location and layout holds it. */
  private locate(seg: SegmentId): string | undefined {
    for (const loc of this.o.locations) {
      for (const layout of ['nested', 'flat'] as const) {
        const d = cacheSegmentPath(loc.path, seg, layout);
        if (statSafe(d)?.isDirectory()) return d;
      }
    }
    return undefined;
  }

  private async sweep(): Promise<void> {
    const entries = listDir(this.o.infoDir);
    if (!entries) return;
    const names = new Set(entries.filter((e) => e.isFile() && !e.name.startsWith('.')).map((e) => e.name));
    // Info file gone: a drop (or never ours to watch). Forget it, whatever its files do next.
    for (const id of this.served.keys()) if (!names.has(id)) this.forget(id);
    for (const id of names) {
      let s = this.served.get(id);
      if (!s) {
        const seg = this.readDescriptor(id);
        if (!seg) continue;
        s = { segment: seg };
        this.served.set(id, s);
      }
      if (this.o.isBusy(id)) continue;
      await this.look(id, s);
    }
  }

  private forget(id: string): void {
    this.endWait(id, 'its info_dir entry is gone (Druid dropped it)');
    this.served.delete(id);
    this.retries.delete(id);
    this.unavailable.delete(id);
    this.manifests.delete(id);
  }

  private readDescriptor(id: string): SegmentId | undefined {
    try {
      const seg = segmentIdOfDescriptor(JSON.parse(readFileSync(path.join(this.o.infoDir, id), 'utf8')));
      return seg.id === id ? seg : undefined;
    } catch {
      return undefined;
    }
  }

  private suspect(s: Served, reason: LossReason, why: string): void {
    if (s.suspect) return;
    s.suspect = { since: Date.now(), reason, why };
    this.o.onLoss?.(reason);
  }

  private async look(id: string, s: Served): Promise<void> {
    const dir = s.dir && statSafe(s.dir)?.isDirectory() ? s.dir : this.locate(s.segment);
    if (!dir) return this.suspect(s, 'vanished', 'its segment directory is gone');
    const listing = listDir(dir) ?? [];
    const names = new Set(listing.map((e) => e.name));
    // Druid is (re)loading it: its business, not a loss.
    if (names.has(DOWNLOAD_MARKER)) {
      s.suspect = undefined;
      this.endWait(id, `Druid is downloading it itself (${DOWNLOAD_MARKER})`);
      return;
    }
    if (!SEGMENT_MARKERS.some((m) => names.has(m))) return this.suspect(s, 'vanished', `${SEGMENT_MARKERS.join(' / ')} is missing`);
    if (!s.files || s.dir !== dir) {
      // First sight of it complete: what is there now is what later sweeps compare against.
      s.dir = dir;
      s.files = new Map();
      for (const e of listing) {
        const st = e.isFile() ? statSafe(path.join(dir, e.name)) : undefined;
        if (st) s.files.set(e.name, { size: st.size, ino: st.ino, mtimeMs: st.mtimeMs });
      }
      s.suspect = undefined;
      return;
    }
    const changed: string[] = [];
    for (const [name, seen] of s.files) {
      const st = statSafe(path.join(dir, name));
      if (!st) return this.suspect(s, 'vanished', `${name} is gone`);
      if (st.size !== seen.size || st.ino !== seen.ino || st.mtimeMs !== seen.mtimeMs) changed.push(name);
    }
    if (changed.length === 0) {
      if (s.suspect?.reason === 'vanished') s.suspect = undefined;
      return;
    }
    let m: Manifest | undefined;
    try {
      m = await this.manifestOf(id);
    } catch {
      // No target answers now: compare at a later sweep.
      return;
    }
    if (!m) {
      // Nothing to compare with; take the new state as it is.
      s.files = undefined;
      return;
    }
    const problems = await checkSegmentDir(m, dir, { memo: this.o.memo });
    if (problems.length) return this.suspect(s, 'damaged', problems.map((p) => p.message).join('; '));
    s.files = undefined;
    s.suspect = undefined;
  }

  /** Reads every byte of every served segment the target holds a backup of, and repairs the damaged ones. */
  async scrub(signal?: AbortSignal): Promise<{ checked: number; damaged: string[] }> {
    const damaged: string[] = [];
    let checked = 0;
    for (const [id, s] of [...this.served]) {
      if (signal?.aborted || this.stopped) break;
      if (!s.dir || !s.files || this.o.isBusy(id)) continue;
      const m = await this.manifestOf(id).catch(() => undefined);
      if (!m) continue;
      // A copy this node never held identical to the backup (only ever a flagged conflict) is not "repaired" with another node's bytes.
      if (!m.sources.some((c) => c.node === this.o.nodeName) && m.conflicts.some((c) => c.node === this.o.nodeName)) continue;
      const problems = await checkSegmentDir(m, s.dir, { memo: this.o.memo, fresh: true, signal });
      checked++;
      this.o.onScrubbed?.(problems.length > 0);
      if (problems.length === 0) continue;
      this.o.log.warn({ segmentId: id, problems: problems.map((p) => p.message) }, 'scrub found a damaged segment; restoring it from the backup');
      damaged.push(id);
    }
    const verdicts = damaged.length ? await this.o.restore(damaged, 'scrub') : [];
    for (const v of verdicts.filter((x) => x.case !== 'restored'))
      this.o.log.warn({ segmentId: v.segmentId, case: v.case }, `scrub could not repair a damaged segment (${explainVerdict(v)}); the next scrub tries again`);
    return { checked, damaged };
  }
}
