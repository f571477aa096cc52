/**
 * Answers the http target does not read (a 404 manifest, an empty 200) give their connection back to the pool. An
 * answer's stream destroyed unread used to keep its socket busy for good: after `maxSockets` such answers every
 * call of that target waited until it timed out (a restore or reconcile asking for many missing manifests hung).
 * Both sides are real: a store sidecar, and a plain HTTP server on loopback for an answer no sidecar gives.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ApiClient } from '../../sidecar/store/http/client.js';
import { HttpTarget } from '../../sidecar/store/http/target.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { startSidecar, tmpDir } from '../helpers/sidecar.js';

const MISSING = 'wikipedia_2020-01-01T00:00:00.000Z_2020-01-02T00:00:00.000Z_v1';
const SOCKETS = 2;
const CALLS = 40;

/** Every socket the client's agent gave back to its pool (Node's `free` event), so reuse can be counted. */
function pooled(client: ApiClient): Set<Socket> {
  const seen = new Set<Socket>();
  (client.http.defaults.httpAgent as http.Agent).on('free', (s: Socket) => seen.add(s));
  return seen;
}

describe('unread answers give their connection back', () => {
  let store: SidecarProcess;

  before(async () => {
    store = await startSidecar(['--store', tmpDir('dbk-pool-')]);
  });

  after(async () => {
    await store?.stop();
  });

  test(`${CALLS} manifests of a missing segment through ${SOCKETS} connections`, async () => {
    const target = new HttpTarget(store.url, { token: store.token, maxSockets: SOCKETS, requestTimeoutMs: 5000 });
    const free = pooled(target.client);
    try {
      for (let i = 0; i < CALLS; i++) assert.equal(await target.manifest(MISSING), undefined, `call ${i + 1}`);
      // The connections were reused, not replaced: none was lost, none opened per call.
      assert.ok(free.size >= 1 && free.size <= SOCKETS, `${free.size} connections served ${CALLS} calls`);
      // The target still answers other calls through the same pool.
      assert.equal((await target.stats()).segments, 0);
    } finally {
      target.close();
    }
  });

  test(`${CALLS} empty answers through ${SOCKETS} connections`, async () => {
    const server = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json', 'content-length': '0' }).end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client = new ApiClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { maxSockets: SOCKETS, requestTimeoutMs: 5000 });
    const free = pooled(client);
    try {
      for (let i = 0; i < CALLS; i++) assert.equal(await client.get('/anything'), undefined, `call ${i + 1}`);
      assert.ok(free.size >= 1 && free.size <= SOCKETS, `${free.size} connections served ${CALLS} calls`);
    } finally {
      client.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
