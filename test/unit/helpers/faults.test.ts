/**
 * The fault proxy of the reliability suite follows requests on a keep-alive connection past a chunked body (a
 * streamed upload, such as a node's holdings report): a fault meant for the request after it must still apply.
 * Before it followed chunked bodies it stopped parsing such a connection, and network.test.ts '5xx answers' lost
 * an injected 500 to a request sent on it.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { FaultProxy } from '../../helpers/faults.js';

test('a fault applies to the request that follows a chunked upload on the same connection', async () => {
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    let bytes = 0;
    req.on('data', (c: Buffer) => (bytes += c.length));
    req.on('end', () => {
      seen.push(`${req.method} ${req.url} ${bytes}`);
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const proxy = await FaultProxy.start((server.address() as AddressInfo).port);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  after(async () => {
    agent.destroy();
    await proxy.close();
    server.close();
  });
  const send = (method: string, path: string, chunks: string[] = []) =>
    new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: proxy.port, method, path, agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      });
      req.on('error', reject);
      // Written in pieces with no length: Node sends them chunked; a chunk's size line split across writes too.
      for (const c of chunks) req.write(c);
      req.end();
    });
  proxy.failRequests((r) => r.method === 'PUT' && r.path === '/after', 503, 1);
  const report = ['{"ids":[', '"a",'.repeat(5000), '"b"]}'];
  assert.equal(await send('PUT', '/holdings', report), 200);
  assert.equal(await send('GET', '/between'), 200);
  assert.equal(await send('PUT', '/after', ['x']), 503, 'the fault reaches the request after the chunked one');
  assert.equal(await send('PUT', '/after', ['y']), 200);
  assert.deepEqual(
    proxy.requests.map((r) => `${r.method} ${r.path} ${r.action}`),
    ['PUT /holdings forwarded', 'GET /between forwarded', 'PUT /after 503', 'PUT /after forwarded'],
  );
  assert.deepEqual(seen, [`PUT /holdings ${report.join('').length}`, 'GET /between 0', 'PUT /after 1']);
});

test("an injected answer reaches a client still sending its body: the proxy closes only once the client has read it", async () => {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const proxy = await FaultProxy.start((server.address() as AddressInfo).port);
  after(async () => {
    await proxy.close();
    server.close();
  });
  const piece = Buffer.alloc(64 * 1024, 1);
  const put = () =>
    new Promise<string>((resolve) => {
      const req = http.request({ host: '127.0.0.1', port: proxy.port, method: 'PUT', path: '/big', agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(String(res.statusCode)));
      });
      req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      // A body the proxy never forwards, still being written when its answer comes back: the head and a first
      // piece go out, then the client is busy for a while (as a sidecar hashing is), so that the answer, and a
      // reset if one is sent, have both arrived when its next write runs, from a timer, before it reads.
      let left = 64;
      const more = () => {
        while (left > 0 && !req.destroyed) {
          left--;
          if (!req.write(piece)) return void req.once('drain', more);
        }
        if (!req.destroyed) req.end();
      };
      req.once('socket', (socket) =>
        socket.once('connect', () => {
          req.write(piece);
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
          setTimeout(more, 0);
        }),
      );
    });
  proxy.failRequests((r) => r.path === '/big', 503, 10);
  const got: string[] = [];
  for (let i = 0; i < 10; i++) got.push(await put());
  assert.deepEqual(got, Array(10).fill('503'), 'every client read the answer, none a reset');
});
