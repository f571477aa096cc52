/**
 * An append-only journal of JSON lines, the store of the sidecar's own records (backup state, copy records):
 * each change is one appended line; a line torn by a crash is skipped on reading; the owner rewrites the
 * journal (written aside, fsynced, renamed) when it holds far more lines than records; appends are flushed to
 * disk (fdatasync) at most once a second, so a power cut loses at most the last second of records.
 */
import { closeSync, fdatasyncSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { messageOf } from '../errors.js';
import { writeFileAtomic } from './atomic.js';

const FLUSH_MS = 1000;

export class JsonlJournal<L> {
  private fd = -1;
  private lines = 0;
  private dirty = false;
  private flushTimer?: NodeJS.Timeout;

  /** `what` names the records in log lines, e.g. "the backup state". */
  constructor(
    readonly file: string,
    private readonly log: Logger,
    private readonly what: string,
  ) {
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  }

  /** Hands every line to `apply`; a line that does not parse, or that `apply` throws on, is counted and skipped. */
  read(apply: (line: L) => void): void {
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
        apply(JSON.parse(line) as L);
      } catch {
        bad++;
      }
    }
    if (bad) this.log.warn({ file: this.file, lines: bad }, `skipped unreadable lines of ${this.what} (torn by a crash?)`);
  }

  /** Lines in the journal file, for the owner's compaction rule. */
  get lineCount(): number {
    return this.lines;
  }

  /** Replaces the journal with `lines` and reopens it for appending. */
  rewrite(lines: Iterable<L>): void {
    if (this.fd >= 0) closeSync(this.fd);
    let text = '';
    this.lines = 0;
    for (const l of lines) {
      text += `${JSON.stringify(l)}\n`;
      this.lines++;
    }
    writeFileAtomic(this.file, text, 0o600);
    this.fd = openSync(this.file, 'a', 0o600);
  }

  append(line: L): void {
    const buf = Buffer.from(`${JSON.stringify(line)}\n`);
    let off = 0;
    while (off < buf.length) off += writeSync(this.fd, buf, off);
    this.lines++;
    this.dirty = true;
    if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => this.flush(), FLUSH_MS);
      this.flushTimer.unref();
    }
  }

  flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (!this.dirty || this.fd < 0) return;
    try {
      fdatasyncSync(this.fd);
      this.dirty = false;
    } catch (e) {
      this.log.warn({ file: this.file, err: messageOf(e) }, `cannot flush ${this.what}`);
    }
  }

  close(): void {
    this.flush();
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
