/**
 * Read buffers that are used again once a socket has written them.
 *
 * Streaming a file the usual way allocates a new buffer for every read; a backup of a 2 GB segment makes two
 * thousand 1 MiB buffers, and V8 frees dead ones only when its external memory grows by tens of MiB, so that much
 * garbage sits in the sidecar's memory while it sends (measured: 20-35 MiB above the few buffers actually in flight).
 * Here a file is read into buffers taken from a pool, and each piece handed on is *lent*: its buffer goes back to
 * the pool when a socket's write callback reports the piece written (releaseLentOnWrite), which Node calls once the
 * kernel has the bytes, or once a failed socket dropped the write, never to send it. A piece that never reaches a
 * socket as it is (copied, split, or sent elsewhere) is never given back and is left to the garbage collector like
 * any buffer: a buffer is used again only after a completed write, never on a guess.
 */
import { open } from 'node:fs/promises';
import net from 'node:net';

export class BufferPool {
  private readonly free: Buffer[] = [];
  private idleTimer: NodeJS.Timeout | undefined;
  /** Buffers allocated, for tests and the benchmark: a pool whose lent buffers come back allocates few. */
  allocated = 0;

  /**
   * @param size bytes per buffer
   * @param keep free buffers kept at most; more go to the garbage collector
   * @param idleMs after this long without a `take`, the free buffers are dropped: an idle sidecar holds none
   */
  constructor(
    readonly size: number,
    private readonly keep: number,
    private readonly idleMs = 30_000,
  ) {}

  take(): Buffer {
    this.touch();
    const b = this.free.pop();
    if (b) return b;
    this.allocated++;
    return Buffer.allocUnsafeSlow(this.size);
  }

  give(b: Buffer): void {
    this.touch();
    if (b.length === this.size && this.free.length < this.keep && !this.free.includes(b)) this.free.push(b);
  }

  get freeCount(): number {
    return this.free.length;
  }

  private touch(): void {
    if (this.idleTimer) this.idleTimer.refresh();
    else this.idleTimer = setTimeout(() => this.drop(), this.idleMs).unref();
  }

  private drop(): void {
    this.free.length = 0;
    this.idleTimer = undefined;
  }
}

/** Lent views and how each goes back: a view is released at most once. */
const lent = new WeakMap<object, () => void>();

/** Marks `view` as lent: `release` runs once a socket has written it (see releaseLentOnWrite). */
export function lend(view: Buffer, release: () => void): void {
  lent.set(view, release);
}

type WriteCallback = (err?: Error | null) => void;
type Write = (chunk: unknown, encoding?: BufferEncoding | WriteCallback, cb?: WriteCallback) => boolean;
let installed = false;

/**
 * Makes every socket of this process (TCP and TLS: `tls.TLSSocket` is a `net.Socket`) give back the lent buffers
 * written to it, once the write has completed: the write callback runs when the kernel has the bytes (or when a
 * failed socket dropped the write, never to send it). Chunks that were not lent are written exactly as before.
 * It is done on `net.Socket.prototype` because the AWS SDK makes its sockets itself (a one-off agent for a PUT that
 * waits for `100 Continue`), and Node 20 announces a client request on its diagnostics channel only once it has
 * ended. Idempotent.
 */
export function releaseLentOnWrite(): void {
  if (installed) return;
  installed = true;
  const write = net.Socket.prototype.write as Write;
  net.Socket.prototype.write = function (this: net.Socket, chunk: unknown, encoding?: BufferEncoding | WriteCallback, cb?: WriteCallback): boolean {
    const release = typeof chunk === 'object' && chunk !== null ? lent.get(chunk) : undefined;
    if (!release) return write.call(this, chunk, encoding, cb);
    lent.delete(chunk as object);
    const done = typeof encoding === 'function' ? encoding : cb;
    return write.call(this, chunk, typeof encoding === 'function' ? undefined : encoding, (err?: Error | null) => {
      release();
      done?.(err);
    });
  } as net.Socket['write'];
}

/**
 * Reads `file` from start to end (however long it is now: the caller checks the size) into buffers of `pool`,
 * each piece a lent view of one of them. A piece must not be kept: its bytes are overwritten once a socket
 * has written it.
 */
export async function* readPooled(file: string, pool: BufferPool): AsyncGenerator<Buffer> {
  const fh = await open(file, 'r');
  try {
    for (let pos = 0; ;) {
      const buf = pool.take();
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) {
        pool.give(buf);
        return;
      }
      pos += bytesRead;
      const view = buf.subarray(0, bytesRead);
      lend(view, () => pool.give(buf));
      yield view;
    }
  } finally {
    await fh.close();
  }
}
