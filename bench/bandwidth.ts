/**
 * The bandwidth limit (druid.backup.maxBytesPerSecond) and what a query feels, with real sidecars on loopback:
 * 1. the rate a 2 GiB backup job achieves under a limit of 50 MB/s (BENCH_LIMIT_MBPS), against the limit;
 * 2. the latency (p50, p99) of 4 KiB random reads with O_DIRECT from a file on the cache's disk (so never from the
 *    page cache; bench/readLatency.py), one every 2 ms as queries would, with no backup running, while the same
 *    backup runs without a limit, and while it runs with the limit. The sample's pages are dropped from the page
 *    cache before each backup (posix_fadvise), so the backup reads the disk as it would on a node.
 * Figures, not thresholds: the machine is shared, so compare the three rows of one run.
 */
import type { ChildProcess } from 'node:child_process';
import { execFileSync, spawn } from 'node:child_process';
import { createWriteStream, readdirSync, rmSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Job, JobAccepted } from '../sidecar/api.js';
import { formatBytes } from '../sidecar/druid/bytes.js';
import type { SampleResult } from '../sidecar/sample/sampleCache.js';
import { startSidecar, tmpDir } from '../test/helpers/sidecar.js';
import { JOB_POLL_MS, largeSample } from './sample.js';
import { addRow } from './table.js';

const LIMIT = Number(process.env.BENCH_LIMIT_MBPS ?? 50) * 1e6;
const HELPER = path.join(__dirname, 'readLatency.py');
const PROBE_BYTES = 256 * 1024 * 1024;

interface Latency {
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

function filesBelow(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name));
}

function startProbe(file: string): { proc: ChildProcess; result: Promise<Latency> } {
  const proc = spawn('python3', [HELPER, 'probe', file], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  const result = once(proc, 'exit').then(() => JSON.parse(out) as Latency);
  return { proc, result };
}

async function stopProbe(p: { proc: ChildProcess; result: Promise<Latency> }): Promise<Latency> {
  p.proc.kill('SIGTERM');
  return p.result;
}

/** A backup job of the whole sample to a fresh target, its pages dropped first; with `limit` bytes/s as the node's limit. */
async function backup(sample: SampleResult, root: string, limit?: number): Promise<{ job: Job; seconds: number; waited: number }> {
  const store = path.join(root, `store-${limit ?? 'unlimited'}`);
  execFileSync('python3', [HELPER, 'evict', ...filesBelow(sample.location)]);
  const target = await startSidecar(['--store', store], { fast: false });
  const source = await startSidecar(['--config', sample.propertiesFile, '--node-name', 'bench-bandwidth'], {
    token: target.token,
    fast: false,
    allowedTargets: [target.url],
    env: limit ? { DRUID_BACKUP_MAX_BYTES_PER_SECOND: String(limit) } : {},
  });
  try {
    const r = await source.request<JobAccepted>('POST', '/data/v1/backup', { target: target.url });
    if (r.status !== 202) throw new Error(`backup refused: ${r.text}`);
    const job = await source.waitForJob(r.json.jobId, 30 * 60_000, JOB_POLL_MS);
    if (job.state !== 'succeeded') throw new Error(`backup ${job.state}: ${JSON.stringify(job.errors.slice(0, 3))}`);
    const waited = await source.metric('druid_backup_throttled_seconds_total', { direction: 'backup' });
    return { job, seconds: (Date.parse(job.finishedAt!) - Date.parse(job.startedAt!)) / 1000, waited };
  } finally {
    await source.stop();
    await target.stop();
    rmSync(store, { recursive: true, force: true });
  }
}

export async function benchBandwidth(): Promise<void> {
  const sample = await largeSample();
  const root = tmpDir('dbk-bench-bandwidth-');
  try {
    // The file the "queries" read, on the same disk as the cache.
    const probeFile = path.join(root, 'probe.bin');
    const out = createWriteStream(probeFile);
    for (let i = 0; i < PROBE_BYTES; i += 1 << 20) if (!out.write(randomBytes(1 << 20))) await once(out, 'drain');
    out.end();
    await once(out, 'finish');
    execFileSync('sync');

    const rows: Array<{ what: string; lat: Latency; rate?: number }> = [];
    let p = startProbe(probeFile);
    await new Promise((r) => setTimeout(r, 10_000));
    rows.push({ what: 'no backup running', lat: await stopProbe(p) });

    for (const limit of [undefined, LIMIT]) {
      p = startProbe(probeFile);
      const { job, seconds, waited } = await backup(sample, root, limit);
      const lat = await stopProbe(p);
      const rate = job.progress.bytesDone / seconds;
      rows.push({ what: limit ? `backup limited to ${limit / 1e6} MB/s` : 'backup without a limit', lat, rate });
      if (limit) {
        addRow({
          figure: `backup rate under a ${limit / 1e6} MB/s limit`,
          unit: 'MB/s',
          value: rate / 1e6,
          baseline: { what: 'the limit', value: limit / 1e6 },
          goal: { min: 0.9, max: 1.1 },
        });
        const off = ((rate - limit) / limit) * 100;
        console.log(
          `limit ${limit / 1e6} MB/s: a ${formatBytes(job.progress.bytesDone)} backup achieved ${(rate / 1e6).toFixed(1)} MB/s ` +
            `(${off >= 0 ? '+' : ''}${off.toFixed(1)} % of the limit; goal within ±10 %) in ${seconds.toFixed(1)} s; ` +
            `its ${job.progress.maxBytesPerSecond === limit ? 'workers' : 'workers (limit not shown in the job!)'} waited ${waited.toFixed(1)} s on the limit`,
        );
      }
    }
    for (const r of rows.slice(1))
      addRow({
        figure: `p99 of 4 KiB random reads during a ${r.what}`,
        unit: 'ms',
        value: r.lat.p99Ms,
        baseline: { what: 'no backup running', value: rows[0]!.lat.p99Ms },
      });
    console.log(`4 KiB O_DIRECT random reads from ${formatBytes(statSync(probeFile).size)} on the cache's disk, one every 2 ms:`);
    for (const r of rows)
      console.log(
        `  ${r.what.padEnd(30)} p50 ${r.lat.p50Ms.toFixed(2).padStart(7)} ms  p99 ${r.lat.p99Ms.toFixed(2).padStart(7)} ms  ` +
          `max ${r.lat.maxMs.toFixed(1).padStart(7)} ms  (${r.lat.count} reads)${r.rate ? `  backup at ${(r.rate / 1e6).toFixed(1)} MB/s` : ''}`,
      );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
