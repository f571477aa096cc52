/**
 * A TCP fault proxy for the reliability suite: it sits between a source sidecar and its target on loopback and
 * does to the connections what a real network and a sick target do:
 *
 * - `refuse()`: stops listening, so connecting fails with ECONNREFUSED (`accept()` listens again on the same port);
 * - `hold()`: accepts, but forwards nothing more in either direction (a stalled peer or a partition); closes are
 *   held too, so the target never learns that the source gave up; `release()` lets everything through again;
 * - `holdAtUp(n)` / `holdAtDown(n)`: forwards client-to-target (target-to-client) bytes up to exactly `n` in
 *   total, then holds: a test kills a process at that precise point of an upload (a download);
 * - `resetAtUp(n)`: once `n` client-to-target bytes went through, resets (RST) every connection, mid-stream;
 * - `failRequests(match, status, count)`: answers the next `count` matching HTTP requests with `status` itself
 *   (the target never sees them), as a target behind a load balancer answering 502/503 would.
 *
 * Requests are followed by parsing each request head on the client side and its body's framing (content-length,
 * or chunked: a streamed upload such as a holdings report), so faults and the request log apply per request even on
 * keep-alive connections; a framing it cannot follow makes it stop parsing that connection.
 */
import net from 'node:net';

export interface ProxiedRequest {
  method: string;
  path: string;
  at: number;
  /** What the proxy did: forwarded it, or answered it with a status. */
  action: 'forwarded' | number;
}

interface FailRule {
  match: (r: { method: string; path: string }) => boolean;
  status: number;
  left: number;
}

type Held = { data: Buffer } | { end: true } | { destroy: true };

const MAX_HEAD = 64 * 1024;

class Link {
  readonly upQueue: Held[] = [];
  readonly downQueue: Held[] = [];
  private head = Buffer.alloc(0);
  /** Body bytes of the current request still to come; -1 once the connection is no longer parsed. */
  private bodyLeft = 0;
  /** The chunked body being followed: a size line, a chunk's data and its CRLF, or the trailer lines after the last. */
  private chunk?: { state: 'size' | 'data' | 'trailer'; left: number; line: Buffer };
  dropping = false;

  constructor(
    readonly proxy: FaultProxy,
    readonly client: net.Socket,
    readonly upstream: net.Socket,
  ) {}

  /** Splits client bytes into request heads and bodies; returns the bytes to forward (heads held until whole). */
  parse(chunk: Buffer): Buffer[] {
    if (this.dropping) return [];
    if (this.bodyLeft < 0) return [chunk];
    const out: Buffer[] = [];
    let rest = chunk;
    while (rest.length > 0) {
      if (this.bodyLeft < 0) {
        out.push(rest);
        break;
      }
      if (this.chunk) {
        rest = this.chunkedBody(rest, out);
        continue;
      }
      if (this.bodyLeft > 0) {
        const k = Math.min(this.bodyLeft, rest.length);
        out.push(rest.subarray(0, k));
        rest = rest.subarray(k);
        this.bodyLeft -= k;
        continue;
      }
      this.head = Buffer.concat([this.head, rest]);
      rest = Buffer.alloc(0);
      const end = this.head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (this.head.length > MAX_HEAD) {
          this.bodyLeft = -1;
          out.push(this.head);
          this.head = Buffer.alloc(0);
        }
        break;
      }
      const headBytes = this.head.subarray(0, end + 4);
      rest = this.head.subarray(end + 4);
      this.head = Buffer.alloc(0);
      const text = headBytes.toString('latin1');
      const [line = ''] = text.split('\r\n', 1);
      const [method = '', path = ''] = line.split(' ');
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(text);
      const chunked = /\r\ntransfer-encoding:\s*chunked/i.test(text);
      const status = this.proxy.decide(method, path);
      if (status !== undefined) {
        this.answer(status, method === 'HEAD');
        return out;
      }
      out.push(headBytes);
      if (chunked) {
        this.chunk = { state: 'size', left: 0, line: Buffer.alloc(0) };
        continue;
      }
      this.bodyLeft = length ? Number(length[1]) : 0;
    }
    return out;
  }

  /** Forwards the next part of a chunked body; returns what is left of `rest` (the next request, after the body). */
  private chunkedBody(rest: Buffer, out: Buffer[]): Buffer {
    const c = this.chunk!;
    if (c.state === 'data') {
      const k = Math.min(c.left, rest.length);
      out.push(rest.subarray(0, k));
      c.left -= k;
      if (c.left === 0) c.state = 'size';
      return rest.subarray(k);
    }
    const nl = rest.indexOf(0x0a);
    const take = nl < 0 ? rest.length : nl + 1;
    out.push(rest.subarray(0, take));
    c.line = Buffer.concat([c.line, rest.subarray(0, take)]);
    if (nl < 0) {
      if (c.line.length > MAX_HEAD) this.stopParsing();
      return rest.subarray(take);
    }
    const line = c.line.toString('latin1').replace(/\r?\n$/, '');
    c.line = Buffer.alloc(0);
    if (c.state === 'trailer') {
      // The empty line after the trailers ends the request.
      if (line === '') this.chunk = undefined;
      return rest.subarray(take);
    }
    const size = /^[0-9a-f]+/i.exec(line);
    if (!size) {
      this.stopParsing();
      return rest.subarray(take);
    }
    const n = parseInt(size[0], 16);
    if (n === 0) c.state = 'trailer';
    else {
      c.state = 'data';
      c.left = n + 2;
    }
    return rest.subarray(take);
  }

  private stopParsing(): void {
    this.chunk = undefined;
    this.bodyLeft = -1;
  }

  private answer(status: number, head: boolean): void {
    this.dropping = true;
    const body = JSON.stringify({ error: { code: 'unavailable', message: `fault proxy: injected ${status}` } });
    this.client.end(
      `HTTP/1.1 ${status} Injected Fault\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${head ? '' : body}`,
    );
    this.upstream.destroy();
  }
}

export class FaultProxy {
  private readonly server: net.Server;
  private readonly links = new Set<Link>();
  private rules: FailRule[] = [];
  private holding = false;
  private holdAt = Infinity;
  private holdReached?: () => void;
  private holdDownAt = Infinity;
  private holdDownReached?: () => void;
  private resetAt = Infinity;
  private resetDone?: () => void;
  port = 0;
  /** Client-to-target bytes forwarded so far. */
  bytesUp = 0;
  bytesDown = 0;
  connections = 0;
  readonly requests: ProxiedRequest[] = [];

  private constructor(
    private upstreamPort: number,
    private readonly host: string,
  ) {
    this.server = net.createServer((c) => this.onConnection(c));
  }

  static async start(upstreamPort: number, host = '127.0.0.1'): Promise<FaultProxy> {
    const p = new FaultProxy(upstreamPort, host);
    await p.listen(0);
    return p;
  }

  get url(): string {
    return `http://${this.host}:${this.port}`;
  }

  /** Points new connections at another port (a restarted target). */
  setUpstream(port: number): void {
    this.upstreamPort = port;
  }

  private listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, this.host, () => {
        this.server.off('error', reject);
        this.port = (this.server.address() as net.AddressInfo).port;
        resolve();
      });
    });
  }

  /** The status to answer a request with, or undefined to forward it; logs the request. */
  decide(method: string, path: string): number | undefined {
    const rule = this.rules.find((r) => r.left > 0 && r.match({ method, path }));
    if (rule) rule.left--;
    this.requests.push({ method, path, at: Date.now(), action: rule ? rule.status : 'forwarded' });
    return rule?.status;
  }

  private onConnection(client: net.Socket): void {
    this.connections++;
    const upstream = net.connect(this.upstreamPort, this.host);
    const link = new Link(this, client, upstream);
    this.links.add(link);
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
    client.on('data', (chunk: Buffer) => {
      for (const part of link.parse(chunk)) this.up(link, part);
    });
    upstream.on('data', (chunk: Buffer) => this.down(link, { data: chunk }));
    client.on('end', () => this.up(link, { end: true }));
    client.on('close', () => this.up(link, { destroy: true }));
    upstream.on('end', () => this.down(link, { end: true }));
    // A link that answered a request itself closes its client side only once the client has read the answer and
    // closed: destroying it with the client's body unread would send a reset, which may reach the client before the
    // answer does (as a server that answers early must linger, RFC 9112 9.6).
    upstream.on('close', () => {
      if (!link.dropping) this.down(link, { destroy: true });
    });
  }

  /** Client-to-target: forwards, holds or splits at the hold or reset point. */
  private up(link: Link, item: Held | Buffer): void {
    const held: Held = Buffer.isBuffer(item) ? { data: item } : item;
    if (this.holding || link.upQueue.length > 0) {
      link.upQueue.push(held);
      return;
    }
    if ('data' in held) {
      let data = held.data;
      const limit = Math.min(this.holdAt, this.resetAt);
      if (this.bytesUp + data.length >= limit) {
        const k = limit - this.bytesUp;
        this.write(link.upstream, data.subarray(0, k));
        this.bytesUp += k;
        data = data.subarray(k);
        if (this.bytesUp >= this.resetAt) {
          this.resetAt = Infinity;
          this.resetAll();
          this.resetDone?.();
          return;
        }
        this.holdAt = Infinity;
        this.holding = true;
        if (data.length) link.upQueue.push({ data });
        this.holdReached?.();
        return;
      }
      this.bytesUp += data.length;
      this.write(link.upstream, data);
    } else this.apply(link.upstream, held, link);
  }

  private down(link: Link, held: Held): void {
    if (this.holding || link.downQueue.length > 0) {
      link.downQueue.push(held);
      return;
    }
    if ('data' in held) {
      let data = held.data;
      if (this.bytesDown + data.length >= this.holdDownAt) {
        const k = this.holdDownAt - this.bytesDown;
        this.write(link.client, data.subarray(0, k));
        this.bytesDown += k;
        data = data.subarray(k);
        this.holdDownAt = Infinity;
        this.holding = true;
        if (data.length) link.downQueue.push({ data });
        this.holdDownReached?.();
        return;
      }
      this.bytesDown += data.length;
      this.write(link.client, data);
    } else this.apply(link.client, held, link);
  }

  private write(s: net.Socket, data: Buffer): void {
    if (!s.destroyed && s.writable) s.write(data);
  }

  private apply(s: net.Socket, held: Held, link: Link): void {
    if ('end' in held) {
      if (!s.destroyed) s.end();
    } else if ('destroy' in held) {
      s.destroy();
      if (link.client.destroyed && link.upstream.destroyed) this.links.delete(link);
    }
  }

  private resetAll(): void {
    for (const l of this.links) {
      l.client.resetAndDestroy();
      l.upstream.resetAndDestroy();
      l.upQueue.length = 0;
      l.downQueue.length = 0;
    }
    this.links.clear();
  }

  /** Stops listening: new connections are refused; open ones go on. */
  async refuse(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      // close() waits for open connections; refusing new ones is what counts.
      setImmediate(resolve);
    });
  }

  /** Listens again on the same port. */
  async accept(): Promise<void> {
    if (this.server.listening) return;
    for (let i = 0; ; i++) {
      try {
        await this.listen(this.port);
        return;
      } catch (e) {
        if (i > 50) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** Forwards nothing more, in either direction, on open and new connections, until `release()`. */
  hold(): void {
    this.holding = true;
  }

  /** Forwards client-to-target bytes up to `n` in total, then holds; resolves when that point is reached. */
  holdAtUp(n: number): Promise<void> {
    this.holdAt = n;
    return new Promise((resolve) => {
      this.holdReached = resolve;
      if (this.bytesUp >= n) {
        this.holdAt = Infinity;
        this.holding = true;
        resolve();
      }
    });
  }

  /** Forwards target-to-client bytes up to `n` in total (a download, a restore), then holds; resolves there. */
  holdAtDown(n: number): Promise<void> {
    this.holdDownAt = n;
    return new Promise((resolve) => {
      this.holdDownReached = resolve;
      if (this.bytesDown >= n) {
        this.holdDownAt = Infinity;
        this.holding = true;
        resolve();
      }
    });
  }

  /** Resets every open connection once `n` client-to-target bytes went through; resolves when it did. */
  resetAtUp(n: number): Promise<void> {
    this.resetAt = n;
    return new Promise((resolve) => (this.resetDone = resolve));
  }

  /** Lets everything held go through, in order, and forwards from now on. */
  release(): void {
    this.holding = false;
    this.holdAt = Infinity;
    this.holdDownAt = Infinity;
    for (const link of [...this.links]) {
      const up = link.upQueue.splice(0);
      const down = link.downQueue.splice(0);
      for (const h of up) this.up(link, h);
      for (const h of down) this.down(link, h);
    }
  }

  /** Answers the next `count` requests that match with `status` instead of forwarding them. */
  failRequests(match: (r: { method: string; path: string }) => boolean, status: number, count = Infinity): void {
    this.rules.push({ match, status, left: count });
  }

  clearFaults(): void {
    this.rules = [];
    this.resetAt = Infinity;
    this.release();
  }

  /** Cuts every open connection (keep-alive ones included), so the next requests open new ones. */
  dropConnections(): void {
    for (const l of this.links) {
      l.client.destroy();
      l.upstream.destroy();
    }
    this.links.clear();
  }

  async close(): Promise<void> {
    this.dropConnections();
    if (this.server.listening) await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
