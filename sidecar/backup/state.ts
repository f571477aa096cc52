/**
 * The source's persistent state under `{stateDir}/backup/`: per segment, the digests of its files keyed by each
 * file's (size, mtime, inode), and where its backup stands (backed up with which digest, pending, failed with the
 * error and the next attempt). It is what makes a restart cheap: a segment whose files have the same fingerprints
 * is not hashed again, and one backed up with the same digest is not sent again.
 *
 * Stored as an append-only journal of JSON lines (`state.jsonl`), the latest line per segment winning, and
 * compacted into a fresh file (written aside, fsynced, renamed) when it holds far more lines than segments. A
 * line torn by a crash is skipped. The journal is flushed to disk (fdatasync) at most once a second, so a power
 * cut loses at most the last second of records, which the next reconcile scan redoes.
 */
import { closeSync, fdatasyncSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { CachedFile, CachedSegment } from '../druid/scan.js';
import { messageOf } from '../errors.js';
import type { SegmentFileInfo } from '../store/manifest.js';
import { segmentDigest } from '../store/manifest.js';
import { writeFileAtomic } from '../util/atomic.js';

export const STATE_FILE = 'state.jsonl';
const FORMAT = 1;
const FLUSH_MS = 1000;

/** A file as last hashed: name, size, mtimeMs, inode, sha256. */
export type FileFingerprint = [string, number, number, number, string];

export interface BackupRecord {
  target: string;
  state: 'backedUp' | 'pending' | 'failed';
  /** The segment digest backed up (backedUp) or last tried. */
  digest?: string;
  /** ISO time of the last successful backup. */
  at?: string;
  error?: string;
  /** The target holds different bytes: not retried until the local digest changes. */
  conflict?: boolean;
  attempts?: number;
  /** Epoch ms of the next attempt. */
  nextAt?: number;
  /** Epoch ms since when the segment waits to be backed up (for the lag metric). */
  since?: number;
}

export interface SegmentRecord {
  id: string;
  dir: string;
  files?: FileFingerprint[];
  digest?: string;
  backup?: BackupRecord;
}

function sameFile(fp: FileFingerprint, f: CachedFile): boolean {
  return fp[0] === f.name && fp[1] === f.size && fp[2] === f.mtimeMs && fp[3] === f.ino;
}

export class SourceState {
  private readonly records = new Map<string, SegmentRecord>();
  private readonly file: string;
  private fd = -1;
  private lines = 0;
  private dirty = false;
  private flushTimer?: NodeJS.Timeout;

  constructor(
    stateDir: string,
    private readonly log: Logger,
  ) {
    const dir = path.join(stateDir, 'backup');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.file = path.join(dir, STATE_FILE);
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
    for (const line of text.split('\n')) {
      if (!line) continue;
      try {
        const o = JSON.parse(line) as { v?: number; id?: unknown; deleted?: boolean; r?: SegmentRecord };
        if (typeof o.id !== 'string') throw new Error('no id');
        if (o.deleted) this.records.delete(o.id);
        else if (o.r && typeof o.r.dir === 'string') this.records.set(o.id, o.r);
      } catch {
        bad++;
      }
    }
    if (bad) this.log.warn({ file: this.file, lines: bad }, 'skipped unreadable state lines (torn by a crash?)');
    this.log.info({ file: this.file, segments: this.records.size }, 'backup state loaded');
  }

  private line(o: object): string {
    return `${JSON.stringify({ v: FORMAT, ...o })}\n`;
  }

  /** Rewrites the journal with one line per segment. */
  compact(): void {
    if (this.fd >= 0) closeSync(this.fd);
    const text = [...this.records.values()].map((r) => this.line({ id: r.id, r })).join('');
    writeFileAtomic(this.file, text, 0o600);
    this.lines = this.records.size;
    this.fd = openSync(this.file, 'a', 0o600);
  }

  private append(o: object): void {
    const buf = Buffer.from(this.line(o));
    let off = 0;
    while (off < buf.length) off += writeSync(this.fd, buf, off);
    this.lines++;
    this.dirty = true;
    if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => this.flush(), FLUSH_MS);
      this.flushTimer.unref();
    }
    if (this.lines > 2 * this.records.size + 10_000) this.compact();
  }

  flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (!this.dirty || this.fd < 0) return;
    try {
      fdatasyncSync(this.fd);
      this.dirty = false;
    } catch (e) {
      this.log.warn({ file: this.file, err: messageOf(e) }, 'cannot flush the backup state');
    }
  }

  get(id: string): SegmentRecord | undefined {
    return this.records.get(id);
  }

  all(): IterableIterator<SegmentRecord> {
    return this.records.values();
  }

  get size(): number {
    return this.records.size;
  }

  put(rec: SegmentRecord): void {
    this.records.set(rec.id, rec);
    this.append({ id: rec.id, r: rec });
  }

  delete(id: string): void {
    if (!this.records.delete(id)) return;
    this.append({ id, deleted: true });
  }

  /** Changes a segment's backup record (creating the segment record when needed). */
  setBackup(seg: { id: string; dir: string }, backup: BackupRecord | undefined): void {
    const old = this.records.get(seg.id);
    const rec: SegmentRecord = old && old.dir === seg.dir ? { ...old, backup } : { id: seg.id, dir: seg.dir, backup };
    this.put(rec);
  }

  /** The digests of a segment's files if every file still has the fingerprint it had when hashed, else undefined. */
  cachedDigests(seg: CachedSegment): SegmentFileInfo[] | undefined {
    const rec = this.records.get(seg.id);
    if (!rec?.files || rec.dir !== seg.dir || rec.files.length !== seg.files.length) return undefined;
    const out: SegmentFileInfo[] = [];
    for (let i = 0; i < seg.files.length; i++) {
      const fp = rec.files[i]!;
      if (!sameFile(fp, seg.files[i]!)) return undefined;
      out.push({ name: fp[0], size: fp[1], sha256: fp[4] });
    }
    return out;
  }

  /** Remembers the digests of a segment's files as read with the fingerprints in `seg`. */
  setDigests(seg: CachedSegment, files: SegmentFileInfo[]): string {
    const byName = new Map(files.map((f) => [f.name, f]));
    const fps: FileFingerprint[] = [];
    for (const f of seg.files) {
      const d = byName.get(f.name);
      if (!d || d.size !== f.size) throw new Error(`digest of ${seg.id}/${f.name} does not match its file`);
      fps.push([f.name, f.size, f.mtimeMs, f.ino, d.sha256]);
    }
    const digest = segmentDigest(files);
    const old = this.records.get(seg.id);
    this.put({ id: seg.id, dir: seg.dir, files: fps, digest, backup: old?.dir === seg.dir ? old.backup : undefined });
    return digest;
  }

  close(): void {
    this.flush();
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
