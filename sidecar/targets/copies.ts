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
import { closeSync, fdatasyncSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { messageOf } from '../errors.js';
import { writeFileAtomic } from '../util/atomic.js';

export const COPIES_FILE = 'copies.jsonl';
const FLUSH_MS = 1000;

export interface CopyRecord {
  digest: string;
  /** ISO time the target last confirmed every digest of this copy. */
  verifiedAt?: string;
  /** ISO time this node last saw the copy listed or answered by the target. */
  seenAt: string;
}

export interface SegmentCopies {
  copies: Map<string, CopyRecord>;
  restoredAt?: string;
  restoredFrom?: string;
}

type Line = { id: string; t: string; r?: CopyRecord } | { id: string; restoredAt: string; from: string };

export class CopyCatalog {
  private readonly segments = new Map<string, SegmentCopies>();
  private readonly file: string;
  private fd = -1;
  private lines = 0;
  private dirty = false;
  private flushTimer?: NodeJS.Timeout;

  constructor(
    stateDir: string,
    private readonly log: Logger,
  ) {
    const dir = path.join(stateDir, 'targets');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.file = path.join(dir, COPIES_FILE);
    this.load();
    this.compact();
  }

  private load(): void {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      return;
    }
    let bad = 0;
    for (const l of text.split('\n')) {
      if (!l) continue;
      try {
        this.apply(JSON.parse(l) as Line);
      } catch {
        bad++;
      }
    }
    if (bad) this.log.warn({ file: this.file, lines: bad }, 'skipped unreadable lines of the copy records (torn by a crash?)');
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
    if (this.fd >= 0) closeSync(this.fd);
    let text = '';
    this.lines = 0;
    for (const l of this.allLines()) {
      text += `${JSON.stringify(l)}\n`;
      this.lines++;
    }
    writeFileAtomic(this.file, text, 0o600);
    this.fd = openSync(this.file, 'a', 0o600);
  }

  private append(l: Line): void {
    this.apply(l);
    const buf = Buffer.from(`${JSON.stringify(l)}\n`);
    let off = 0;
    while (off < buf.length) off += writeSync(this.fd, buf, off);
    this.lines++;
    this.dirty = true;
    if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => this.flush(), FLUSH_MS);
      this.flushTimer.unref();
    }
    if (this.lines > 4 * this.segments.size + 10_000) this.compact();
  }

  flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (!this.dirty || this.fd < 0) return;
    try {
      fdatasyncSync(this.fd);
      this.dirty = false;
    } catch (e) {
      this.log.warn({ file: this.file, err: messageOf(e) }, 'cannot flush the copy records');
    }
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
    this.append({ id, t: target, r: { digest, seenAt: now, ...(verifiedAt ? { verifiedAt } : {}) } });
  }

  /** The target no longer holds the segment (it answered that it does not, or its copy failed its digests). */
  lost(id: string, target: string): void {
    if (this.segments.get(id)?.copies.has(target)) this.append({ id, t: target });
  }

  restored(id: string, from: string): void {
    this.append({ id, restoredAt: new Date().toISOString(), from });
  }

  close(): void {
    this.flush();
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
