/**
 * Crash trials of prune: kill -9 the target sidecar at a seeded moment of its prune while another node backs up to
 * it (uploads of new segments, over HTTP, with its holdings report), then restart it and prune again. After:
 * - nothing kept is lost: every segment the newest snapshot names and every segment the other node holds is
 *   stored whole (each file hashing to its manifest), and the newest snapshot with its blobs is intact;
 * - the next prune finished the work: no old version, no older snapshot, no half-removed segment (a directory
 *   without its manifest) is left, and the store's own verify finds nothing wrong.
 * RELIABILITY_TRIALS (default 3) and RELIABILITY_SEED (default 1) choose the trials.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import type { Job } from '../../sidecar/api.js';
import { HttpTarget } from '../../sidecar/store/http/target.js';
import { LocalStore } from '../../sidecar/store/local/store.js';
import type { OutgoingSegment } from '../../sidecar/store/target.js';
import { takeSnapshot } from '../../sidecar/snapshot/take.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { newToken, startSidecar, tmpDir, waitFor } from '../helpers/sidecar.js';
import { checkStore, seeded, verifyStoreCli } from './lib.js';

const TRIALS = Number(process.env.RELIABILITY_TRIALS ?? 3);
const FIRST_SEED = Number(process.env.RELIABILITY_SEED ?? 1);
const OLD = 150;
const NEW_UPLOADS = 20;
const log = pino({ level: 'silent' });

function descriptor(day: number, version: string) {
  const start = new Date(Date.UTC(2024, 0, 1) + day * 86400000).toISOString();
  const end = new Date(Date.UTC(2024, 0, 1) + (day + 1) * 86400000).toISOString();
  const body = `segment ${day} ${version}`;
  return {
    dataSource: 'demo',
    interval: `${start}/${end}`,
    version,
    loadSpec: { type: 'local', path: `/var/druid/segments/demo/${day}/${version}/0/index/` },
    shardSpec: { type: 'numbered', partitionNum: 0, partitions: 1 },
    binaryVersion: 9,
    size: 4 + body.length,
    identifier: `demo_${start}_${end}_${version}`,
  };
}

function seg(day: number, version: string, node: string): OutgoingSegment {
  const b = Buffer.from(`segment ${day} ${version}`);
  const v = Buffer.from([0, 0, 0, 9]);
  return {
    segmentId: descriptor(day, version).identifier,
    descriptor: descriptor(day, version),
    node,
    files: [
      { name: 'version.bin', size: 4, open: () => Readable.from([v]) },
      { name: '00000.smoosh', size: b.length, open: () => Readable.from([b]) },
    ],
  };
}

describe(`crashes: kill -9 the pruning sidecar at random points while a node backs up (${TRIALS} trials from seed ${FIRST_SEED})`, () => {
  let used: number[] = [];
  let server: http.Server;
  let coordinator = '';
  const results: Array<{ seed: number; killedAfterMs: number; removedBeforeKill: number; finishedBy: string }> = [];

  before(async () => {
    server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(used.map((d) => ({ overshadowed: false, replicationFactor: 1, numRows: null, realtime: false, ...descriptor(d, 'v2') }))));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    coordinator = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.close();
    console.log(JSON.stringify({ crashPrune: results }));
  });

  for (let i = 0; i < TRIALS; i++) {
    const seed = FIRST_SEED + i;
    test(`seed ${seed}`, async () => {
      const rnd = seeded(seed);
      const dir = tmpDir('dbk-crashprune-');
      // A store of OLD days: v1 (named by the older snapshot only) and v2 (named by the newest).
      const store = LocalStore.open(dir, { log });
      const metadata = async () => ({ offsets: { captured: false, reason: 'test' }, redacted: [] });
      for (let d = 0; d < OLD; d++) await store.put(seg(d, 'v1', 'h1'));
      used = [];
      const older = await takeSnapshot({ coordinator, catalogs: [store], targets: [store], node: 'c', captureMetadata: metadata, log });
      for (let d = 0; d < OLD; d++) await store.put(seg(d, 'v2', 'h1'));
      used = Array.from({ length: OLD }, (_, d) => d);
      const newest = await takeSnapshot({ coordinator, catalogs: [store], targets: [store], node: 'c', captureMetadata: metadata, log });
      assert.notEqual(older.header.id, newest.header.id);

      const token = newToken();
      const env = { DRUID_BACKUP_RETENTION_KEEP_LAST: '1', DRUID_BACKUP_RETENTION_GRACE_PERIOD: 'PT0S' };
      let target: SidecarProcess = await startSidecar(['--store', dir], { token, env });
      const port = Number(new URL(target.url).port);
      // The other node: reports what it holds, then uploads it, while the prune runs.
      const node = new HttpTarget(target.url, { token });
      const uploads = (async () => {
        const days = Array.from({ length: NEW_UPLOADS }, (_, k) => 1000 + k);
        await node.snapshots.putHoldings({ node: 'h2', at: new Date().toISOString(), segmentIds: days.map((d) => descriptor(d, 'v3').identifier) });
        const done: number[] = [];
        for (const d of days) {
          try {
            await node.put(seg(d, 'v3', 'h2'));
            done.push(d);
          } catch {
            // the target was killed: this upload is sent again after the restart
          }
        }
        return days;
      })();
      const started = await target.request<{ jobId: string }>('POST', '/data/v1/store/prune', {});
      assert.equal(started.status, 202, started.text);
      const killedAfterMs = Math.floor(rnd() * 400);
      await new Promise((r) => setTimeout(r, killedAfterMs));
      await target.kill9();
      const removedBeforeKill = OLD - [...checkStore(dir).segments.keys()].filter((id) => id.endsWith('_v1')).length;
      const days = await uploads;
      target = await startSidecar(['--store', dir], { token, env, port });
      const again = new HttpTarget(target.url, { token });
      // Whatever the other node could not send while the target was down, it sends now (its reconcile would).
      await again.snapshots.putHoldings({ node: 'h2', at: new Date().toISOString(), segmentIds: days.map((d) => descriptor(d, 'v3').identifier) });
      for (const d of days) await again.put(seg(d, 'v3', 'h2'));
      // The next prune finishes (a lease left by the killed one is its owner's: it expires; the new owner waits for it).
      const finish = async (): Promise<Job> => {
        const r = await target.request<{ jobId: string }>('POST', '/data/v1/store/prune', {});
        assert.equal(r.status, 202, r.text);
        return waitFor('the prune job', async () => {
          const j = await target.get<Job>(`/data/v1/jobs/${r.json.jobId}`);
          return j.state === 'running' || j.state === 'queued' ? undefined : j;
        });
      };
      let job = await finish();
      let finishedBy = 'the next prune';
      if (job.state !== 'succeeded') {
        // The killed prune's lease is still live: it says so, and expires within its term.
        assert.match(JSON.stringify(job.errors), /holds its lease/);
        const lease = await target.get<{ expires: string }>('/data/v1/store/prune/lease');
        finishedBy = 'the prune after the lease expired';
        await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(lease.expires) - Date.now()) + 100));
        job = await finish();
      }
      assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
      again.close();
      node.close();
      await target.stop();

      const check = checkStore(dir);
      assert.deepEqual(check.problems, [], 'no half-removed or damaged segment');
      const ids = new Set(check.segments.keys());
      for (let d = 0; d < OLD; d++) assert.ok(ids.has(descriptor(d, 'v2').identifier), `kept segment of day ${d} (v2) is stored`);
      for (const d of days) assert.ok(ids.has(descriptor(d, 'v3').identifier), `the other node's segment of day ${d} is stored`);
      assert.equal([...ids].filter((id) => id.endsWith('_v1')).length, 0, 'every old version is gone');
      const reopened = LocalStore.open(dir, { log });
      assert.deepEqual(await reopened.snapshots.listSnapshots(), [newest.header.id]);
      for (const b of [newest.header.metadata, ...newest.header.dataSources.map((x) => x.list)]) await reopened.snapshots.getBlob(b, 1e8);
      const v = await verifyStoreCli(dir);
      if (v) assert.equal(v.status, 0, v.output);
      results.push({ seed, killedAfterMs, removedBeforeKill, finishedBy });
    });
  }
});
