/**
 * The node's record of copies: per segment, every target that holds it (with the digest it holds), when that copy
 * was last verified (the target checked every digest as it received the segment, or a restore read it back with
 * every digest checked), and when the segment was last restored and from where. It is what `GET /data/v1/segments`
 * and `GET /data/v1/targets` show and what finds segments short of copies.
 *
 * Kept in `{stateDir}/targets/copies.jsonl`, an append-only journal (the latest line per segment and target
 * wins), compacted when it holds far more lines than records, flushed at most once a second, as the backup state
 * is. A torn last line is skipped; the next reconcile learns the rest again from the targets.
 */
import path from 'node:path';
import type { Logger } from 'pino';
import { JsonlJournal } from '../util/journal.js';

export const COPIES_FILE = 'copies.jsonl';

export interface CopyRecord {
  digest: string;
  /** ISO time the target last confirmed every digest of this copy. */
  verifiedAt?: string;
  /** ISO time this node last saw the copy listed or answered by the target. */
  seenAt: string;
  /**
   * The copy failed its digests when read (or the target's own verify flagged it): it still says "held", so only
   * a replace that verifies clean takes this away. Until then it is no good copy.
   */
  damaged?: { at: string; problem: string };
}

export interface SegmentCopies {
  copies: Map<string, CopyRecord>;
  restoredAt?: string;
  restoredFrom?: string;
}

type Line = { id: string; t: string; r?: CopyRecord } | { id: string; restoredAt: string; from: string };

export class CopyCatalog {
  private readonly segments = new Map<string, SegmentCopies>();
  private readonly journal: JsonlJournal<Line>;

  constructor(stateDir: string, log: Logger) {
    this.journal = new JsonlJournal(path.join(stateDir, 'targets', COPIES_FILE), log, 'the copy records');
    this.journal.read((l) => this.apply(l));
    this.compact();
  }

  private apply(l: Line): void {
    if (typeof l.id !== 'string') throw new Error('no id');
    const s = this.entry(l.id);
    if ('restoredAt' in l) {
      s.restoredAt = l.restoredAt;
      s.restoredFrom = l.from;
    } else if (l.r) s.copies.set(l.t, l.r);
    else s.copies.delete(l.t);
    if (s.copies.size === 0 && !s.restoredAt) this.segments.delete(l.id);
  }

  private entry(id: string): SegmentCopies {
    let s = this.segments.get(id);
    if (!s) {
      s = { copies: new Map() };
      this.segments.set(id, s);
    }
    return s;
  }

  private *allLines(): Generator<Line> {
    for (const [id, s] of this.segments) {
      for (const [t, r] of s.copies) yield { id, t, r };
      if (s.restoredAt) yield { id, restoredAt: s.restoredAt, from: s.restoredFrom ?? '' };
    }
  }

  private compact(): void {
    this.journal.rewrite(this.allLines());
  }

  private append(l: Line): void {
    this.apply(l);
    this.journal.append(l);
    if (this.journal.lineCount > 4 * this.segments.size + 10_000) this.compact();
  }

  flush(): void {
    this.journal.flush();
  }

  get(id: string): SegmentCopies | undefined {
    return this.segments.get(id);
  }

  ids(): IterableIterator<string> {
    return this.segments.keys();
  }

  /** The target holds the segment with `digest`; `verified` when it just checked every digest. */
  holds(id: string, target: string, digest: string, verified = false): void {
    const old = this.segments.get(id)?.copies.get(target);
    const now = new Date().toISOString();
    // A copy seen again unchanged is not worth a line; its seen time is refreshed in memory only.
    if (old && old.digest === digest && !verified) {
      old.seenAt = now;
      return;
    }
    const verifiedAt = verified ? now : old?.digest === digest ? old.verifiedAt : undefined;
    // A listing or a have-it answer says nothing of the bytes: a damaged copy stays damaged until verified clean.
    const damaged = !verified && old?.digest === digest ? old.damaged : undefined;
    this.append({ id, t: target, r: { digest, seenAt: now, ...(verifiedAt ? { verifiedAt } : {}), ...(damaged ? { damaged } : {}) } });
  }

  /** The target's copy failed its digests: kept as held (the target still says so) but damaged, to be replaced. */
  damaged(id: string, target: string, problem: string, digest?: string): void {
    const old = this.segments.get(id)?.copies.get(target);
    const d = old?.digest ?? digest;
    if (!d) return;
    if (old?.damaged?.problem === problem) return;
    const now = new Date().toISOString();
    this.append({ id, t: target, r: { digest: d, seenAt: old?.seenAt ?? now, damaged: { at: now, problem: problem.slice(0, 500) } } });
    // Rare, and what a repair after a crash starts from: on disk at once, not at the next flush.
    this.journal.flush();
  }

  /** The targets whose copy of the segment is known damaged, with what is wrong. */
  damagedCopies(id: string): Array<{ target: string; problem: string; at: string }> {
    const s = this.segments.get(id);
    if (!s) return [];
    return [...s.copies].filter(([, r]) => r.damaged).map(([target, r]) => ({ target, ...r.damaged! }));
  }

  /** The target no longer holds the segment (it answered that it does not, or its copy failed its digests). */
  lost(id: string, target: string): void {
    if (this.segments.get(id)?.copies.has(target)) this.append({ id, t: target });
  }

  restored(id: string, from: string): void {
    this.append({ id, restoredAt: new Date().toISOString(), from });
  }

  close(): void {
    this.journal.close();
  }
}
