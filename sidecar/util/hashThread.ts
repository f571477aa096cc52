/**
 * sha256 of a restored file's bytes as they stream, on a second thread when the file is large.
 *
 * A restore of 2 GiB kept the node sidecar's one JavaScript thread busy most of the time, sha256 1.5-2.0 s of it. A
 * file of `OFF_THREAD_MIN` bytes or more that a restore receives is therefore hashed by a worker thread: its bytes
 * are copied into slots of `SLOT` bytes (the copy costs about a quarter of the hash) that are transferred to the
 * worker, which hashes them and transfers them back to be used again. Smaller files are hashed in place: for them a
 * message costs more than the hash. Only restores from a sidecar use it (an outage waits for them): a backup runs on
 * a node that serves queries, where a second busy core, and the copy, cost more than they give; a restore from an
 * object store was no quicker with it, and its sidecar kept 7 MiB more afterwards (docs/performance.md).
 *
 * Memory is bounded: each hash holds at most one slot it is filling, and at most `MAX_IN_FLIGHT` slots wait for the
 * worker; a hash that would send one more waits for a slot to come back (the socket behind it then waits too). When
 * no hash is open the free slots are dropped, and after IDLE_MS the worker is stopped: a sidecar between restores
 * holds neither.
 * The worker keeps no bytes, only each hash's state. If it fails, every hash it held fails (`internal`: nothing
 * is taken as verified on a guess) and the next hash starts a new worker.
 */
import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { BackupError, messageOf } from '../errors.js';

/** Files of at least this many bytes are hashed on the worker. */
export const OFF_THREAD_MIN = 1 << 20;
/** Bytes a message carries to the worker: a message costs about 0.1 ms, so 4 MiB make it 2-3 % of the hash. */
export const SLOT = 4 << 20;
/** Slots sent to the worker and not yet back; a hash waits for one beyond this. */
export const MAX_IN_FLIGHT = 2;
/** Free slots kept for the next hash while any hash is open; all are dropped when none is. */
const KEEP = MAX_IN_FLIGHT + 2;
/** With no hash open for this long, the worker is stopped (its heap is about 10 MiB); the next hash starts one. */
export const IDLE_MS = 1000;

/** The worker: one sha256 state per hash id, each slot hashed and sent back. Plain CommonJS, run with `eval`. */
const WORKER_CODE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hashes = new Map();
parentPort.on('message', (m) => {
  if (m.op === 'update') {
    let h = hashes.get(m.id);
    if (!h) hashes.set(m.id, (h = createHash('sha256')));
    h.update(new Uint8Array(m.buf, 0, m.len));
    parentPort.postMessage({ free: m.buf }, [m.buf]);
  } else if (m.op === 'digest') {
    const h = hashes.get(m.id) ?? createHash('sha256');
    hashes.delete(m.id);
    parentPort.postMessage({ id: m.id, hex: h.digest('hex') });
  } else if (m.op === 'drop') {
    hashes.delete(m.id);
  }
});
`;

/** A sha256 fed piece by piece. `update` returns a promise only when the caller must wait before the next piece. */
export interface StreamHash {
  update(piece: Buffer): Promise<void> | undefined;
  /** The hex digest of every byte given; the hash is spent. */
  digest(): Promise<string>;
  /** Forgets a hash that will not be finished (a failed or abandoned transfer); harmless after `digest`. */
  dispose(): void;
}

class InlineHash implements StreamHash {
  private readonly h = createHash('sha256');
  update(piece: Buffer): undefined {
    this.h.update(piece);
    return undefined;
  }
  digest(): Promise<string> {
    return Promise.resolve(this.h.digest('hex'));
  }
  dispose(): void {}
}

interface Pending {
  resolve: (hex: string) => void;
  reject: (e: Error) => void;
}

/** The worker and its slots; one per process (`hashThread`). */
export class HashThread {
  private worker: Worker | undefined;
  /** Bumped when a worker is replaced: a hash begun on an earlier one cannot finish. */
  private generation = 0;
  private nextId = 1;
  /** Whether the worker keeps the process alive: only while it owes an answer (a slot or a digest). */
  private referenced = false;
  private readonly pending = new Map<number, Pending>();
  private readonly free: ArrayBuffer[] = [];
  private readonly waiting: Array<(slot: ArrayBuffer) => void> = [];
  private idleTimer: NodeJS.Timeout | undefined;
  /** Hashes begun on the worker and neither digested nor disposed. */
  private open = 0;
  /** Slots at the worker now, the most there were at once, and all sent (for tests). */
  inFlight = 0;
  maxInFlight = 0;
  sent = 0;
  /** Slots allocated, for tests: a worker that sends them back lets a long stream use a few. */
  allocated = 0;

  /** A hash for a file of `size` bytes: on the worker from OFF_THREAD_MIN, else in place. */
  hash(size: number): StreamHash {
    if (size < OFF_THREAD_MIN) return new InlineHash();
    if (!this.start()) return new InlineHash();
    this.open++;
    return new ThreadHash(this, this.nextId++, this.generation);
  }

  private start(): Worker | undefined {
    if (this.worker) return this.worker;
    let w: Worker;
    try {
      // No inherited flags (a loader such as tsx, heap sizes): the worker runs plain code.
      w = new Worker(WORKER_CODE, { eval: true, execArgv: [], env: {}, stdout: false, stderr: false });
    } catch {
      return undefined;
    }
    const generation = ++this.generation;
    w.on('message', (m: { free?: ArrayBuffer; id?: number; hex?: string }) => {
      if (generation !== this.generation) return;
      if (m.free) this.slotBack(m.free);
      if (m.id !== undefined) {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        p?.resolve(m.hex!);
      }
      this.reference();
    });
    const fail = (why: string) => {
      if (generation !== this.generation || this.worker !== w) return;
      this.worker = undefined;
      this.generation++;
      const e = new BackupError('internal', `the hashing thread stopped (${why}); the transfer is not taken as verified`);
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
      this.referenced = false;
      this.open = 0;
      // The slots it held are gone; whoever waits for one gets a new one.
      this.allocated -= this.inFlight;
      this.inFlight = 0;
      for (const give of this.waiting.splice(0)) give(this.newSlot());
    };
    w.on('error', (e) => fail(messageOf(e)));
    w.on('exit', (code) => fail(`exit code ${code}`));
    w.unref();
    this.worker = w;
    return w;
  }

  /** Stops the worker (tests; a process may also just exit, the worker does not keep it alive when idle). */
  async close(): Promise<void> {
    const w = this.worker;
    if (w) await w.terminate();
  }

  /** The worker now, for the tests that stop it mid-hash. */
  get current(): Worker | undefined {
    return this.worker;
  }

  isCurrent(generation: number): boolean {
    return generation === this.generation && this.worker !== undefined;
  }

  private newSlot(): ArrayBuffer {
    this.allocated++;
    return new ArrayBuffer(SLOT);
  }

  /** A slot to fill, or undefined when MAX_IN_FLIGHT are at the worker (then `waitSlot`). */
  takeSlot(): ArrayBuffer | undefined {
    if (this.inFlight >= MAX_IN_FLIGHT) return undefined;
    return this.free.pop() ?? this.newSlot();
  }

  waitSlot(): Promise<ArrayBuffer> {
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  giveSlot(slot: ArrayBuffer): void {
    if (this.open > 0 && this.free.length < KEEP) this.free.push(slot);
    else this.allocated--;
  }

  private slotBack(slot: ArrayBuffer): void {
    this.inFlight--;
    const next = this.waiting.shift();
    if (next) next(slot);
    else this.giveSlot(slot);
  }

  send(id: number, slot: ArrayBuffer, len: number): void {
    this.inFlight++;
    this.sent++;
    if (this.inFlight > this.maxInFlight) this.maxInFlight = this.inFlight;
    this.worker!.postMessage({ op: 'update', id, buf: slot, len }, [slot]);
    this.reference();
  }

  askDigest(id: number): Promise<string> {
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker!.postMessage({ op: 'digest', id });
      this.reference();
    });
  }

  drop(id: number, generation: number): void {
    if (!this.isCurrent(generation)) return;
    this.worker!.postMessage({ op: 'drop', id });
  }

  /** Refs the worker while it owes an answer, so that a digest asked for is awaited; unrefs it when idle. */
  private reference(): void {
    const owed = this.inFlight > 0 || this.pending.size > 0;
    if (owed === this.referenced || !this.worker) return;
    this.referenced = owed;
    if (owed) this.worker.ref();
    else this.worker.unref();
  }

  /** A hash was digested or disposed: with none open, the free slots go, and the worker after IDLE_MS. */
  closed(generation: number): void {
    if (generation !== this.generation) return;
    this.open--;
    if (this.open > 0) return;
    this.allocated -= this.free.length;
    this.free.length = 0;
    if (this.idleTimer) this.idleTimer.refresh();
    else this.idleTimer = setTimeout(() => this.stopIdle(), IDLE_MS).unref();
  }

  private stopIdle(): void {
    this.idleTimer = undefined;
    const w = this.worker;
    if (!w || this.open > 0) return;
    if (this.inFlight > 0 || this.pending.size > 0) {
      this.idleTimer = setTimeout(() => this.stopIdle(), IDLE_MS).unref();
      return;
    }
    // Taken out first, so that its exit is not taken for a failure.
    this.worker = undefined;
    this.generation++;
    this.referenced = false;
    void w.terminate();
  }
}

class ThreadHash implements StreamHash {
  private slot: ArrayBuffer | undefined;
  private view: Buffer | undefined;
  private used = 0;
  private done = false;

  constructor(
    private readonly thread: HashThread,
    private readonly id: number,
    private readonly generation: number,
  ) {}

  update(piece: Buffer): Promise<void> | undefined {
    let off = 0;
    while (off < piece.length) {
      if (!this.slot) {
        const slot = this.thread.takeSlot();
        if (!slot) {
          const rest = piece.subarray(off);
          return this.thread.waitSlot().then((s) => {
            this.fill(s);
            return this.update(rest);
          });
        }
        this.fill(slot);
      }
      const k = Math.min(piece.length - off, SLOT - this.used);
      piece.copy(this.view!, this.used, off, off + k);
      this.used += k;
      off += k;
      if (this.used === SLOT) this.flush();
    }
    return undefined;
  }

  private fill(slot: ArrayBuffer): void {
    this.slot = slot;
    this.view = Buffer.from(slot);
    this.used = 0;
  }

  private flush(): void {
    const slot = this.slot!;
    this.slot = this.view = undefined;
    if (this.thread.isCurrent(this.generation)) this.thread.send(this.id, slot, this.used);
    else this.thread.giveSlot(slot);
    this.used = 0;
  }

  async digest(): Promise<string> {
    if (this.done) throw new BackupError('internal', 'digest() of a spent hash');
    this.done = true;
    if (!this.thread.isCurrent(this.generation)) throw new BackupError('internal', 'the hashing thread stopped; the transfer is not taken as verified');
    if (this.used > 0) this.flush();
    else if (this.slot) this.thread.giveSlot(this.slot);
    this.slot = this.view = undefined;
    const hex = this.thread.askDigest(this.id);
    this.thread.closed(this.generation);
    return hex;
  }

  dispose(): void {
    if (this.done) return;
    this.done = true;
    if (this.slot) this.thread.giveSlot(this.slot);
    this.slot = this.view = undefined;
    this.thread.drop(this.id, this.generation);
    this.thread.closed(this.generation);
  }
}

let shared: HashThread | undefined;
let enabled = true;

/** `druid.backup.restore.hashThread`: false hashes every file in place. */
export function setHashThread(on: boolean): void {
  enabled = on;
}

/** The process's hashing thread. */
export function hashThread(): HashThread {
  return (shared ??= new HashThread());
}

/** A sha256 for a file of `size` bytes: a restore's from a sidecar (`offThread`) may go to the hashing thread. */
export function fileHash(size: number, offThread: boolean): StreamHash {
  return offThread && enabled ? hashThread().hash(size) : new InlineHash();
}
