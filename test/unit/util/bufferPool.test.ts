import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { BufferPool, lend, readPooled, releaseLentOnWrite } from '../../../sidecar/util/bufferPool.js';
import { tmpDir } from '../../helpers/sidecar.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const KIB = 1024;

interface Tls {
  key: Buffer;
  cert: Buffer;
}

/** A server (HTTPS when given a key) that reads each PUT slowly (a pause every 256 KiB), so the client's socket holds writes back. */
async function slowServer(tls?: Tls): Promise<{ url: string; close(): Promise<void> }> {
  const handler: http.RequestListener = (req, res) => {
    const h = createHash('sha256');
    let since = 0;
    req.on('data', (d: Buffer) => {
      h.update(d);
      since += d.length;
      if (since >= 256 * KIB) {
        since = 0;
        req.pause();
        setTimeout(() => req.resume(), 2);
      }
    });
    req.on('end', () => res.end(h.digest('hex')));
  };
  const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** PUTs `body` to `url` through a real HTTP(S) request, as the S3 SDK does (a piped stream), and returns the server's sha256. */
async function put(url: string, body: Readable, length: number, ca?: Buffer): Promise<string> {
  const options = { method: 'PUT', headers: { 'content-length': length } };
  const req = ca ? https.request(url, { ...options, ca }) : http.request(url, options);
  const answer = new Promise<string>((resolve, reject) => {
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve(text));
    });
    req.on('error', reject);
  });
  await pipeline(body, req);
  return answer;
}

/** Sends a 24 MiB file read into a pool of 64 KiB buffers; checks the bytes that arrived and how many buffers it took. */
async function sendThroughPool(tls?: Tls): Promise<void> {
  releaseLentOnWrite();
  const dir = tmpDir('dbk-pool-');
  const server = await slowServer(tls);
  try {
    const file = path.join(dir, 'data');
    const data = randomBytes(24 * 1024 * KIB + 17);
    writeFileSync(file, data);
    const pool = new BufferPool(64 * KIB, 4);
    let pieces = 0;
    async function* counted(): AsyncGenerator<Buffer> {
      for await (const piece of readPooled(file, pool)) {
        pieces++;
        yield piece;
      }
    }
    const got = await put(server.url, Readable.from(counted(), { objectMode: false }), data.length, tls?.cert);
    assert.equal(got, sha(data));
    assert.equal(pieces, Math.ceil(data.length / (64 * KIB)));
    // Each buffer came back once the socket had written it: a handful for 385 reads, not one per read.
    assert.ok(pool.allocated <= 16, `${pool.allocated} buffers allocated for ${pieces} reads`);
    assert.ok(pool.freeCount >= 1);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a file sent through a socket that is slower than the disk arrives byte for byte, its few buffers used again and again', async () => {
  await sendThroughPool();
});

test('the same over TLS (the write callback comes once the bytes are encrypted and written)', async () => {
  const dir = tmpDir('dbk-pool-tls-');
  try {
    const r = spawnSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        'key.pem',
        '-out',
        'cert.pem',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { cwd: dir, encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.error ? `openssl is not installed: this test makes its certificate with it (${r.error.message})` : r.stderr);
    await sendThroughPool({ key: readFileSync(path.join(dir, 'key.pem')), cert: readFileSync(path.join(dir, 'cert.pem')) });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a piece that never reaches a socket is never used again: every piece kept still holds its bytes', async () => {
  const dir = tmpDir('dbk-pool-');
  try {
    const file = path.join(dir, 'data');
    const data = randomBytes(10 * 4 * KIB + 5);
    writeFileSync(file, data);
    const pool = new BufferPool(4 * KIB, 4);
    const kept: Buffer[] = [];
    for await (const piece of readPooled(file, pool)) kept.push(piece);
    assert.equal(kept.length, 11);
    assert.equal(pool.allocated, 12, 'one buffer per piece, and one for the read that found the end');
    assert.equal(sha(Buffer.concat(kept)), sha(data));
    assert.deepEqual(Buffer.concat(kept), readFileSync(file));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a write to a socket that failed gives its buffer back (the bytes are never sent later); other writes are untouched', async () => {
  releaseLentOnWrite();
  const server = net.createServer((s) => s.destroy());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const pool = new BufferPool(KIB, 4);
    const socket = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    socket.on('error', () => undefined);
    socket.destroy();
    const buf = pool.take();
    const view = buf.subarray(0, 10);
    lend(view, () => pool.give(buf));
    const errors: unknown[] = [];
    await new Promise<void>((resolve) => socket.write(view, (err) => (errors.push(err), resolve())));
    assert.equal(errors.length, 1);
    assert.ok(errors[0] instanceof Error, 'the caller still hears of the failure');
    assert.equal(pool.freeCount, 1);
    // Not lent: the callback and its error as Node gives them, and no buffer comes back.
    const plain = Buffer.alloc(10);
    await new Promise<void>((resolve) => socket.write(plain, () => resolve()));
    assert.equal(pool.freeCount, 1);
  } finally {
    server.close();
  }
});

test('a pool left idle drops its free buffers, so an idle sidecar holds none', async () => {
  const pool = new BufferPool(KIB, 4, 50);
  const a = pool.take();
  const b = pool.take();
  pool.give(a);
  pool.give(b);
  pool.give(b);
  assert.equal(pool.freeCount, 2, 'a buffer given twice is kept once');
  pool.give(Buffer.alloc(KIB + 1));
  assert.equal(pool.freeCount, 2, 'a buffer of another size is not kept');
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(pool.freeCount, 0);
  pool.take();
  assert.equal(pool.allocated, 3, 'a new buffer once the free ones were dropped');
});
