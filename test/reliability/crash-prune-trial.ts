/**
 * The crash trial of prune, one for every kind of store (crash-prune.test.ts: a local store behind its target
 * sidecar; crash-prune-s3.test.ts: a bucket on VersityGW pruned by a sidecar configured with it). Each trial:
 * - seeds a store of `old` days: v1 (named by the older snapshot only) and v2 (named by the newest);
 * - starts the pruning sidecar (keepLast=1, gracePeriod PT0S) and its prune, while another node reports holding
 *   new segments (v3) and uploads them, and a restore reads every kept segment (v2) and checks its bytes;
 * - kill -9 the pruning sidecar at a seeded moment, restarts it, lets the other node send again what failed, and
 *   prunes again until one finishes (a lease left by the killed one is taken over or expires).
 * After: nothing kept is lost (every v2 and v3 segment is stored whole, each file hashing to its manifest, and a
 * restore of each gives back its bytes), the next prune finished the work (no v1, no older snapshot, no
 * half-removed segment), the newest snapshot and its blobs are intact, and the store's own verify finds nothing
 * wrong. RELIABILITY_TRIALS (default 3) and RELIABILITY_SEED (default 1) choose the trials.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import type { Job } from '../../sidecar/api.js';
import type { OutgoingSegment, Target } from '../../sidecar/store/target.js';
import type { SnapshotStore } from '../../sidecar/snapshot/store.js';
import { takeSnapshot } from '../../sidecar/snapshot/take.js';
import { mapLimit } from '../../sidecar/util/pool.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { waitFor } from '../helpers/sidecar.js';
import { seeded } from './lib.js';

export const TRIALS = Number(process.env.RELIABILITY_TRIALS ?? 3);
export const FIRST_SEED = Number(process.env.RELIABILITY_SEED ?? 1);
export const log = pino({ level: 'silent' });
/** The pruning sidecar's retention: only the newest snapshot, no grace. */
export const PRUNE_ENV = { DRUID_BACKUP_RETENTION_KEEP_LAST: '1', DRUID_BACKUP_RETENTION_GRACE_PERIOD: 'PT0S' };

export function descriptor(day: number, version: string) {
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
const idOf = (day: number, version: string) => descriptor(day, version).identifier;
const daysTo = (n: number) => Array.from({ length: n }, (_, d) => d);

function files(day: number, version: string): Array<{ name: string; data: Buffer }> {
  return [
    { name: 'version.bin', data: Buffer.from([0, 0, 0, 9]) },
    { name: '00000.smoosh', data: Buffer.from(`segment ${day} ${version}`) },
  ];
}

export function seg(day: number, version: string, node: string): OutgoingSegment {
  return {
    segmentId: idOf(day, version),
    descriptor: descriptor(day, version),
    node,
    files: files(day, version).map((f) => ({ name: f.name, size: f.data.length, open: () => Readable.from([f.data]) })),
  };
}

/** Reads a segment back as a restore does and checks every byte against what was uploaded. */
async function restoreOne(t: Target, day: number, version: string): Promise<void> {
  const r = await t.read(idOf(day, version));
  const want = files(day, version);
  let i = 0;
  for await (const f of r.files) {
    const h = createHash('sha256');
    for await (const c of f.chunks) for (const piece of Buffer.isBuffer(c) ? [c] : c) h.update(piece);
    assert.equal(f.name, want[i]?.name, `file ${i} of ${idOf(day, version)}`);
    assert.equal(h.digest('hex'), createHash('sha256').update(want[i]!.data).digest('hex'), `${idOf(day, version)}/${f.name} restored byte-identical`);
    i++;
  }
  assert.equal(i, want.length, `every file of ${idOf(day, version)} restored`);
}

/** One store under trial, as a kind of target has it. */
export interface TrialStore {
  /** The store, opened directly, for seeding and for reading back snapshots at the end. */
  direct: Target & { snapshots: SnapshotStore };
  /** Starts the pruning sidecar (on `port` when it is restarted after the kill); `coordinator` answers used segments. */
  start(coordinator: string, port?: number): Promise<SidecarProcess>;
  /** The body of `POST /data/v1/store/prune` that prunes this store. */
  pruneBody: Record<string, unknown>;
  /** How the other node and the restore reach the store while `sc` is the pruning sidecar. */
  reach(sc: SidecarProcess): Target & { snapshots: SnapshotStore };
  /** True when that way goes through the pruning sidecar (so it fails while the sidecar is down). */
  throughPruner: boolean;
  /** How many v1 manifests are left (a cheap look, polled to time the kill). */
  oldLeft(): number;
  /** Whether the sweep has begun removing segments (a cheap look, polled to time the kill). */
  sweeping(): boolean;
  /** The store re-read independently of the sidecar: its whole segments by id, and what is partial or damaged. */
  check(): Promise<{ ids: Set<string>; problems: string[] }>;
  /** The store's own verify (the CLI), when it has one. */
  verify(): Promise<{ status: number | null; output: string } | undefined>;
  close(): Promise<void>;
}

export interface TrialOptions {
  /** Days of stored segments (v1 and v2 of each). */
  old: number;
  /** Segments the other node uploads during the prune. */
  newUploads: number;
  /** The kill comes a seeded time in [0, killWithinMs) after the prune started or after its sweep began. */
  killWithinMs: number;
}

export function crashPruneTrials(kind: string, open: () => Promise<TrialStore>, o: TrialOptions): void {
  describe(`crashes (${kind}): kill -9 the pruning sidecar at random points while a node backs up and a restore reads (${TRIALS} trials from seed ${FIRST_SEED})`, () => {
    let used: number[] = [];
    let server: http.Server;
    let coordinator = '';
    const results: Array<{ seed: number; killed: string; killedAfterMs: number; removedBeforeKill: number; readsBeforeKill: number; finishedBy: string }> = [];

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
      console.log(JSON.stringify({ crashPrune: kind, results }));
    });

    for (let i = 0; i < TRIALS; i++) {
      const seed = FIRST_SEED + i;
      test(`seed ${seed}`, async () => {
        const rnd = seeded(seed);
        const ts = await open();
        try {
          const store = ts.direct;
          const metadata = async () => ({ offsets: { captured: false as const, reason: 'test' }, redacted: [] });
          await mapLimit(daysTo(o.old), 8, (d) => store.put(seg(d, 'v1', 'h1')));
          used = [];
          const older = await takeSnapshot({ coordinator, catalogs: [store], targets: [store], node: 'c', captureMetadata: metadata, log });
          await mapLimit(daysTo(o.old), 8, (d) => store.put(seg(d, 'v2', 'h1')));
          used = Array.from({ length: o.old }, (_, d) => d);
          const newest = await takeSnapshot({ coordinator, catalogs: [store], targets: [store], node: 'c', captureMetadata: metadata, log });
          assert.notEqual(older.header.id, newest.header.id);

          let sc = await ts.start(coordinator);
          const port = Number(new URL(sc.url).port);
          let killed = false;
          const days = Array.from({ length: o.newUploads }, (_, k) => 1000 + k);
          const holdings = () => ({ node: 'h2', at: new Date().toISOString(), segmentIds: days.map((d) => idOf(d, 'v3')) });
          const node = ts.reach(sc);
          // The other node: reports what it holds, then uploads it, while the prune runs.
          const uploads = (async () => {
            await node.snapshots.putHoldings(holdings());
            for (const d of days) {
              try {
                await node.put(seg(d, 'v3', 'h2'));
              } catch (e) {
                // Only the pruning sidecar's death may fail an upload; it is sent again after the restart.
                if (!(ts.throughPruner && killed)) throw e;
              }
            }
          })();
          // A restore reading every kept segment while the prune runs: each read is whole and byte-identical.
          let readsBeforeKill = 0;
          const reads = (async () => {
            for (let d = 0; d < o.old; d++) {
              try {
                await restoreOne(node, d, 'v2');
                if (!killed) readsBeforeKill++;
              } catch (e) {
                if (!(ts.throughPruner && killed)) throw e;
              }
            }
          })();
          const started = await sc.request<{ jobId: string }>('POST', '/data/v1/store/prune', ts.pruneBody);
          assert.equal(started.status, 202, started.text);
          // The moment: one trial in four while the prune plans (a seeded time), the others a seeded time after its
          // sweep began its first removal (so the kill lands among its removals, whatever the store's speed).
          const t0 = Date.now();
          const beforeSweep = rnd() < 0.25;
          const delay = Math.floor(rnd() * o.killWithinMs);
          if (!beforeSweep) await waitFor('the sweep to begin', () => ts.sweeping() || undefined, 120_000, 2);
          await new Promise((r) => setTimeout(r, delay));
          const killedAfterMs = Date.now() - t0;
          killed = true;
          await sc.kill9();
          const removedBeforeKill = o.old - ts.oldLeft();
          await uploads;
          await reads;
          node.close?.();
          sc = await ts.start(coordinator, port);
          const again = ts.reach(sc);
          // Whatever the other node could not send while the pruner was down, it sends now (its reconcile would).
          await again.snapshots.putHoldings(holdings());
          for (const d of days) await again.put(seg(d, 'v3', 'h2'));
          // The next prune finishes (a lease left by the killed one is taken over, or expires).
          const finish = async (): Promise<Job> => {
            const r = await sc.request<{ jobId: string }>('POST', '/data/v1/store/prune', ts.pruneBody);
            assert.equal(r.status, 202, r.text);
            return waitFor(
              'the prune job',
              async () => {
                const j = await sc.get<Job>(`/data/v1/jobs/${r.json.jobId}`);
                return j.state === 'running' || j.state === 'queued' ? undefined : j;
              },
              120_000,
            );
          };
          let job = await finish();
          let finishedBy = 'the next prune';
          if (job.state !== 'succeeded') {
            // The killed prune's lease is still live: it says so, and expires within its term.
            assert.match(JSON.stringify(job.errors), /holds its lease/);
            const lease = await ts.direct.snapshots.readLease();
            finishedBy = 'the prune after the lease expired';
            await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(lease?.expires ?? '') - Date.now() || 0) + 100));
            job = await finish();
          }
          assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
          // Restores succeed: every kept segment and every segment of the other node reads back whole.
          await mapLimit(daysTo(o.old), 8, (d) => restoreOne(again, d, 'v2'));
          await mapLimit(days, 8, (d) => restoreOne(again, d, 'v3'));
          again.close?.();
          await sc.stop();

          const check = await ts.check();
          assert.deepEqual(check.problems, [], 'no half-removed or damaged segment');
          for (let d = 0; d < o.old; d++) assert.ok(check.ids.has(idOf(d, 'v2')), `kept segment of day ${d} (v2) is stored`);
          for (const d of days) assert.ok(check.ids.has(idOf(d, 'v3')), `the other node's segment of day ${d} is stored`);
          assert.equal([...check.ids].filter((id) => id.endsWith('_v1')).length, 0, 'every old version is gone');
          assert.deepEqual(await ts.direct.snapshots.listSnapshots(), [newest.header.id]);
          for (const b of [newest.header.metadata, ...newest.header.dataSources.map((x) => x.list)]) await ts.direct.snapshots.getBlob(b, 1e8);
          const v = await ts.verify();
          if (v) assert.equal(v.status, 0, v.output);
          results.push({
            seed,
            killed: beforeSweep ? `${delay} ms after the prune began` : `${delay} ms into the sweep`,
            killedAfterMs,
            removedBeforeKill,
            readsBeforeKill,
            finishedBy,
          });
        } finally {
          await ts.close();
        }
      });
    }
  });
}
