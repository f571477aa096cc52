/**
 * The token bucket and the node's bandwidth limits. Rates are asserted as upper bounds over seconds of bytes (the
 * burst a full bucket allows is a tenth of a second), so a loaded machine, which only slows things, cannot fail them;
 * "it was limited" is that the takers had to wait.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { isBackupError } from '../../../sidecar/errors.js';
import { Bandwidth } from '../../../sidecar/services/bandwidth.js';
import { Metrics } from '../../../sidecar/services/metrics.js';
import { limited, RateLimit, TokenBucket } from '../../../sidecar/util/rateLimit.js';
import { metricValue } from '../../helpers/sidecar.js';

const MIB = 1024 * 1024;

/** Takes `total` bytes in `chunk`-sized pieces from `workers` takers at once; returns the seconds it took. */
async function drain(limit: RateLimit, total: number, chunk: number, workers: number): Promise<number> {
  let left = total;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (left > 0) {
        const n = Math.min(chunk, left);
        left -= n;
        await limit.take(n);
      }
    }),
  );
  return (performance.now() - t0) / 1000;
}

test('one bucket shared by four takers holds them together to its rate', async () => {
  const rate = 32 * MIB;
  let waited = 0;
  const limit = new RateLimit([new TokenBucket(rate)], (ms) => (waited += ms));
  const total = 64 * MIB;
  const seconds = await drain(limit, total, MIB, 4);
  const achieved = total / seconds;
  assert.ok(achieved <= rate * 1.1, `${(achieved / MIB).toFixed(1)} MiB/s through a ${rate / MIB} MiB/s limit`);
  // Four takers each at the full rate would have needed a quarter of the time: they waited for each other.
  assert.ok(waited > 1000, `the takers waited ${waited.toFixed(0)} ms in all`);
});

test("a job's bucket below the node's sets the job's pace, and the node's rate holds for the job and another transfer together", async () => {
  const node = new TokenBucket(32 * MIB);
  const job = new RateLimit([new TokenBucket(8 * MIB), node]);
  const other = new RateLimit([node]);
  assert.equal(job.bytesPerSecond, 8 * MIB);
  const t0 = performance.now();
  const [jobSeconds] = await Promise.all([drain(job, 16 * MIB, MIB, 2), drain(other, 48 * MIB, MIB, 2)]);
  const allSeconds = (performance.now() - t0) / 1000;
  assert.ok((16 * MIB) / jobSeconds <= 8 * MIB * 1.1, `job: ${(16 / jobSeconds).toFixed(1)} MiB/s through its 8 MiB/s limit`);
  assert.ok((64 * MIB) / allSeconds <= 32 * MIB * 1.1, `together: ${(64 / allSeconds).toFixed(1)} MiB/s through the node's 32 MiB/s`);
});

test('a limited stream passes every byte, in order, no faster than its limit', async () => {
  const data = Buffer.alloc(6 * MIB, 7);
  data.writeUInt32BE(0xdeadbeef, 3 * MIB);
  const rate = 4 * MIB;
  const src = Readable.from(
    (function* () {
      for (let i = 0; i < data.length; i += 256 * 1024) yield data.subarray(i, i + 256 * 1024);
    })(),
  );
  const t0 = performance.now();
  const out: Buffer[] = [];
  for await (const c of limited(src, new RateLimit([new TokenBucket(rate)]))) out.push(c as Buffer);
  const seconds = (performance.now() - t0) / 1000;
  assert.ok(Buffer.concat(out).equals(data));
  assert.ok(data.length / seconds <= rate * 1.1, `${(data.length / seconds / MIB).toFixed(2)} MiB/s through ${rate / MIB} MiB/s`);
  assert.equal(limited(src, undefined), src, 'no limit: the stream itself');
});

test("the node's limits: off by default, a job's own lower one taken, a higher or malformed one refused with 400", () => {
  const metrics = new Metrics();
  const off = new Bandwidth({}, metrics);
  assert.deepEqual(off.limits(), { backup: null, restore: null });
  assert.equal(off.limit('backup'), undefined);
  assert.equal(off.limit('restore', 5_000_000)?.bytesPerSecond, 5_000_000, 'without a node limit any job limit is lower');

  const on = new Bandwidth({ backup: 50_000_000, restore: 20_000_000 }, new Metrics());
  assert.deepEqual(on.limits(), { backup: 50_000_000, restore: 20_000_000 });
  assert.equal(on.limit('backup')?.bytesPerSecond, 50_000_000);
  assert.equal(on.limit('backup', 10_000_000)?.bytesPerSecond, 10_000_000);
  assert.equal(on.limit('restore', 20_000_000)?.bytesPerSecond, 20_000_000, 'the same as the node is allowed');
  const refused = (f: () => unknown, re: RegExp) =>
    assert.throws(f, (e: unknown) => isBackupError(e) && e.status === 400 && re.test(e.message), `expected 400 matching ${re}`);
  refused(() => on.limit('restore', 20_000_001), /above this node's restore limit of 20000000 bytes per second \(druid\.backup\.restore\.maxBytesPerSecond\)/);
  refused(() => on.limit('backup', 60_000_000), /above this node's backup limit of 50000000.*druid\.backup\.maxBytesPerSecond/);
  refused(() => on.limit('backup', 0), /at least 1/);
  refused(() => on.limit('backup', 1.5), /whole number/);
});

test('the limits and the time waited show in the metrics', async () => {
  const metrics = new Metrics();
  const bw = new Bandwidth({ backup: 8 * MIB }, metrics);
  const text = await metrics.registry.metrics();
  assert.equal(metricValue(text, 'druid_backup_max_bytes_per_second', { direction: 'backup' }), 8 * MIB);
  assert.equal(metricValue(text, 'druid_backup_max_bytes_per_second', { direction: 'restore' }), 0);
  await drain(bw.limit('backup')!, 4 * MIB, MIB, 2);
  const waited = metricValue(await metrics.registry.metrics(), 'druid_backup_throttled_seconds_total', { direction: 'backup' });
  assert.ok(waited > 0.2, `waited ${waited} s`);
});
