/**
 * One flush of a whole filesystem, syncfs(2), for the store's batches of small segments: where each of a segment's
 * files, its manifest and its directories would be fsynced one by one (about seven flushes a segment, each waiting
 * for a journal commit), a batch of up to 64 segments is written, flushed once, renamed into place and flushed once
 * more (docs/performance.md has the figures).
 *
 * Node has no syncfs, so it is coreutils' `sync --file-system` (syncfs since coreutils 8.24, 2015; write-back errors
 * reported since Linux 5.8), run by one long-lived `sh` that reads a line per flush and answers `ok` or `failed`:
 * forking the sidecar itself for each flush cost 17 ms of kernel time (its page tables copied), a fork of that small
 * shell 1.6 ms. Where `sync --file-system` is missing (not Linux, an old coreutils) `probe` says so and the store
 * flushes file by file, as it does for single uploads.
 */
import { spawn, spawnSync, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';

/** The shell loop: `$0` is the directory; one line in, one flush, one line out. */
const LOOP = 'while IFS= read -r _; do if sync --file-system -- "$0"; then echo ok; else echo "failed $?"; fi; done';

/** FilesystemSync.shared's flushers, by directory. */
const shared = new Map<string, Promise<FilesystemSync | undefined>>();

export class FilesystemSync {
  /** The flush that has not started yet, shared by every caller that arrives while another one runs. */
  private next?: Promise<void>;
  private running?: Promise<void>;
  private shell?: ChildProcessByStdio<Writable, Readable, Readable>;
  /** Answers awaited from the shell, in order. */
  private readonly answers: Array<(line: string | Error) => void> = [];
  private hold?: (on: boolean) => void;

  private constructor(private readonly dir: string) {}

  /** A flusher of the filesystem holding `dir`, or why this system cannot flush one. */
  static probe(dir: string): FilesystemSync | { unavailable: string } {
    const r = spawnSync('sync', ['--file-system', '--', dir], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 });
    if (r.error) return { unavailable: r.error.message };
    if (r.status !== 0) return { unavailable: `sync --file-system exited with ${r.status}: ${r.stderr.toString().trim().slice(0, 300)}` };
    return new FilesystemSync(dir);
  }

  /**
   * Resolves once everything written to the filesystem before the call is on disk. A flush already running when
   * the call comes may have missed those writes, so the call waits for the one after it; calls that arrive together
   * share that one.
   */
  flush(): Promise<void> {
    if (this.next) return this.next;
    const after = this.running ?? Promise.resolve();
    const mine: Promise<void> = after
      .catch(() => undefined)
      .then(() => {
        this.next = undefined;
        this.running = mine;
        return this.run();
      })
      .finally(() => {
        if (this.running === mine) this.running = undefined;
      });
    this.next = mine;
    return mine;
  }

  /**
   * The flusher of `dir`'s filesystem that this process shares among its callers, probed once per directory without
   * holding the event loop (the probe is itself a flush, which may take seconds on a busy disk), or undefined where
   * this system cannot flush one (then the caller flushes file by file). Its shell ends with the process.
   */
  static shared(dir: string): Promise<FilesystemSync | undefined> {
    let p = shared.get(dir);
    if (!p) {
      p = new Promise((resolve) => {
        const child = spawn('sync', ['--file-system', '--', dir], { stdio: 'ignore' });
        child.on('error', () => resolve(undefined));
        child.on('exit', (code) => resolve(code === 0 ? new FilesystemSync(dir) : undefined));
      });
      shared.set(dir, p);
    }
    return p;
  }

  /** Ends the shell (it also ends by itself when the sidecar exits: its input closes). */
  close(): void {
    this.shell?.stdin.end();
    this.shell = undefined;
  }

  private run(): Promise<void> {
    const shell = this.started();
    return new Promise<void>((resolve, reject) => {
      this.answers.push((line) => {
        if (line === 'ok') resolve();
        else reject(new Error(`flushing the filesystem of ${this.dir} failed: ${line instanceof Error ? line.message : line}`));
      });
      this.hold?.(true);
      shell.stdin.write('flush\n');
    });
  }

  private started(): ChildProcessByStdio<Writable, Readable, Readable> {
    if (this.shell) return this.shell;
    const shell = spawn('sh', ['-c', LOOP, this.dir], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.shell = shell;
    let out = '';
    let err = '';
    shell.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      for (let i = out.indexOf('\n'); i >= 0; i = out.indexOf('\n')) {
        const line = out.slice(0, i);
        out = out.slice(i + 1);
        const why = line === 'ok' ? line : `${line}${err ? `: ${err.trim().slice(-300)}` : ''}`;
        err = '';
        this.answers.shift()?.(why);
      }
      if (this.answers.length === 0) held(false);
    });
    shell.stderr.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-1000)));
    const gone = (why: Error): void => {
      if (this.shell === shell) this.shell = undefined;
      for (const answer of this.answers.splice(0)) answer(why);
    };
    shell.on('error', gone);
    shell.on('exit', (code, signal) => gone(new Error(`the flushing shell ended (${signal ?? `exit ${code}`})`)));
    shell.stdin.on('error', () => undefined);
    // What keeps the process alive only while a flush is awaited (held), never when idle.
    const held = (on: boolean): void => {
      for (const s of [shell.stdin, shell.stdout, shell.stderr]) (s as unknown as { ref?: () => void; unref?: () => void })[on ? 'ref' : 'unref']?.();
      if (on) shell.ref();
      else shell.unref();
    };
    this.hold = held;
    held(false);
    return shell;
  }
}
