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
import path from 'node:path';
import type { Logger } from 'pino';
import type { CachedFile, CachedSegment } from '../druid/scan.js';
import type { SegmentFileInfo } from '../store/manifest.js';
import { segmentDigest } from '../store/manifest.js';
import { JsonlJournal } from '../util/journal.js';

export const STATE_FILE = 'state.jsonl';
const FORMAT = 1;

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

/** One journal line: a segment's record, or its removal. */
interface StateLine {
  v?: number;
  id: string;
  deleted?: boolean;
  r?: SegmentRecord;
}

function sameFile(fp: FileFingerprint, f: CachedFile): boolean {
  return fp[0] === f.name && fp[1] === f.size && fp[2] === f.mtimeMs && fp[3] === f.ino;
}

export class SourceState {
  private readonly records = new Map<string, SegmentRecord>();
  private readonly journal: JsonlJournal<StateLine>;

  constructor(
    stateDir: string,
    private readonly log: Logger,
  ) {
    this.journal = new JsonlJournal(path.join(stateDir, 'backup', STATE_FILE), log, 'the backup state');
    this.journal.read((o) => {
      if (typeof o.id !== 'string') throw new Error('no id');
      if (o.deleted) this.records.delete(o.id);
      else if (o.r && typeof o.r.dir === 'string') this.records.set(o.id, o.r);
    });
    this.log.info({ file: this.journal.file, segments: this.records.size }, 'backup state loaded');
    this.compact();
  }

  /** Rewrites the journal with one line per segment. */
  compact(): void {
    this.journal.rewrite([...this.records.values()].map((r) => ({ v: FORMAT, id: r.id, r })));
  }

  private append(o: Omit<StateLine, 'v'>): void {
    this.journal.append({ v: FORMAT, ...o });
    if (this.journal.lineCount > 2 * this.records.size + 10_000) this.compact();
  }

  flush(): void {
    this.journal.flush();
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

  /** The fingerprints of a segment's files as hashed, if every file still has the one it had then, else undefined. */
  private fingerprints(seg: CachedSegment): FileFingerprint[] | undefined {
    const rec = this.records.get(seg.id);
    if (!rec?.files || rec.dir !== seg.dir || rec.files.length !== seg.files.length) return undefined;
    for (let i = 0; i < seg.files.length; i++) if (!sameFile(rec.files[i]!, seg.files[i]!)) return undefined;
    return rec.files;
  }

  /** The digests of a segment's files if every file still has the fingerprint it had when hashed, else undefined. */
  cachedDigests(seg: CachedSegment): SegmentFileInfo[] | undefined {
    const fps = this.fingerprints(seg);
    return fps && fileInfos(fps);
  }

  /**
   * The segment digest of `cachedDigests(seg)`, read from the record without building the file list or hashing
   * again: a no-change backup asks it for every segment of the node.
   */
  cachedDigest(seg: CachedSegment): string | undefined {
    const fps = this.fingerprints(seg);
    if (!fps) return undefined;
    return this.records.get(seg.id)!.digest ?? segmentDigest(fileInfos(fps));
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
    this.journal.close();
  }
}

/** A record's file fingerprints as the manifest's file entries. */
function fileInfos(fps: FileFingerprint[]): SegmentFileInfo[] {
  return fps.map((fp) => ({ name: fp[0], size: fp[1], sha256: fp[4] }));
}
