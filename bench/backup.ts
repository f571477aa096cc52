/**
 * Backup throughput and cost, with real sidecar processes (dist/sidecar.js) on loopback:
 * 1. a sample cache of at least 2 GB (BENCH_BACKUP_GB) backed up by a passive job from a source sidecar to a
 *    target sidecar, against `tar -C cache -cf - . | tar -C dest -xf - && sync` on the same data, as a ratio;
 *    both write to the same disk and end with the data on it (the target fsyncs every file, tar ends with sync);
 *    and against the same tar with two sha256 passes alongside (bench/tarCopy.ts), the floor of a verified copy;
 * 2. the peak memory (VmHWM) of both sidecars;
 * 3. the first backup of 10,000 small segments, against tar (as in 1) and against bench/durableCopy.py (the same
 *    files made durable the way the store commits a batch, without the sidecars), then the time of a second,
 *    no-change backup of them (and of active backup's reconcile after a restart).
 * BENCH_BACKUP_PARTS=nochange runs part 3 only; BENCH_NOCHANGE_ROUNDS=n (3 unless set) is how many no-change
 * backups follow the first backup, each a sample of the row; BENCH_BACKUP_PARTS=throughput runs part 1 only. With BENCH_PROFILE_DIR the sidecars are
 * profiled (bench/profile.ts): the phase is the 2 GB backup, or the last no-change backup, or the first backup of
 * the small segments with BENCH_TRACE_PHASE=first (its CPU profile and, with BENCH_STRACE=1, its system calls);
 * the restore of the small segments is recorded as its own phase (smallrestore-phase.json, for cpuprofile's --phase).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Job, JobAccepted } from '../sidecar/api.js';
import { formatBytes } from '../sidecar/druid/bytes.js';
import { writeSampleCache } from '../sidecar/sample/sampleCache.js';
import { SEGMENTS_DIR } from '../sidecar/store/local/layout.js';
import type { SidecarProcess } from '../test/helpers/sidecar.js';
import { startSidecar, tmpDir, waitFor } from '../test/helpers/sidecar.js';
import { emptyDir, treeDigests } from '../test/helpers/tree.js';
import { cpuNow, cpuSince, profiled, sha256CpuSeconds, straceDuring } from './profile.js';
import { JOB_POLL_MS, largeSample } from './sample.js';
import { addRow } from './table.js';
import { reportAgainstVerified, tarCopy, verifiedTarCopy } from './tarCopy.js';

/** The floor of the store's durable commit of small segments, without the sidecars (see its docstring). */
const DURABLE_COPY = path.join(__dirname, 'durableCopy.py');

function peakRss(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

async function backup(source: SidecarProcess, target: SidecarProcess): Promise<{ ms: number; job: Job; cpu: string }> {
  const cpu0 = [cpuNow(source.proc.pid!), cpuNow(target.proc.pid!)] as const;
  const t0 = performance.now();
  const r = await source.request<JobAccepted>('POST', '/data/v1/backup', { target: target.url });
  if (r.status !== 202) throw new Error(`backup refused: ${r.text}`);
  const job = await source.waitForJob(r.json.jobId, 30 * 60_000, JOB_POLL_MS);
  const ms = performance.now() - t0;
  if (job.state !== 'succeeded') throw new Error(`backup ${job.state}: ${JSON.stringify(job.errors.slice(0, 3))}`);
  const cpu = `CPU used: source sidecar ${cpuSince(source.proc.pid!, cpu0[0])}, target sidecar ${cpuSince(target.proc.pid!, cpu0[1])}`;
  return { ms, job, cpu };
}

async function throughput(): Promise<void> {
  const gb = Number(process.env.BENCH_BACKUP_GB ?? 2);
  const root = tmpDir('dbk-bench-backup-');
  try {
    // The 2 GB sample shared with bench/restore.ts, made once per run (bench/sample.ts).
    const sample = await largeSample(gb);

    const dest = path.join(root, 'tar-dest');
    mkdirSync(dest);
    const { ms: tarMs, cpu: tarCpu } = tarCopy(sample.location, dest);
    rmSync(dest, { recursive: true, force: true });
    // Both sides hash every byte (the source to name what it sends, the target to check it): the same copy with two
    // sha256 passes alongside is the floor of a verified copy (bench/tarCopy.ts).
    mkdirSync(dest);
    const verified = verifiedTarCopy(sample.location, dest, 2);
    rmSync(dest, { recursive: true, force: true });
    execFileSync('sync');

    const target = await startSidecar(['--store', path.join(root, 'store')], { fast: false, ...profiled('backup-target') });
    const source = await startSidecar(['--config', sample.propertiesFile, '--node-name', 'bench-historical'], {
      token: target.token,
      fast: false,
      allowedTargets: [target.url],
      ...profiled('backup-source'),
    });
    try {
      const { ms, job, cpu } = await straceDuring({ 'backup-source': source.proc.pid!, 'backup-target': target.proc.pid! }, () => backup(source, target));
      const mbps = (job.progress.bytesDone / 1e6 / ms) * 1000;
      console.log(
        `backup through two sidecars: ${(ms / 1000).toFixed(2)} s (${mbps.toFixed(0)} MB/s); tar | tar && sync: ${(tarMs / 1000).toFixed(2)} s; ratio ${(ms / tarMs).toFixed(2)}x; ${cpu}`,
      );
      // Both sides hash every byte (the source to name what it sends, the target to check it).
      console.log(
        `CPU of tar | tar && sync: ${tarCpu.toFixed(2)} s; sha256 of the ${formatBytes(job.progress.bytesDone)} alone: ${sha256CpuSeconds(job.progress.bytesDone).toFixed(2)} s per side`,
      );
      addRow({
        figure: `backup of the same ${formatBytes(job.progress.bytesDone)} through two sidecars, vs tar | tar && sync`,
        unit: 's',
        value: ms / 1000,
        baseline: { what: 'tar | tar && sync', value: tarMs / 1000 },
        goal: { max: 1.2 },
      });
      reportAgainstVerified(
        'backup',
        `backup of the same ${formatBytes(job.progress.bytesDone)}, vs the same tar with two sha256 passes alongside`,
        ms,
        verified,
        'two sha256 passes',
      );
      console.log(`peak memory (VmHWM): source sidecar ${formatBytes(peakRss(source.proc.pid!))}, target sidecar ${formatBytes(peakRss(target.proc.pid!))}`);
    } finally {
      await source.stop();
      await target.stop();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

async function noChange(): Promise<void> {
  const root = tmpDir('dbk-bench-nochange-');
  try {
    const sample = await writeSampleCache({
      dir: path.join(root, 'historical'),
      segments: 10_000,
      layout: 'nested',
      dataSources: ['wikipedia', 'web_logs', 'kttm'],
      segmentSize: 1024,
      smooshChunkSize: 2147483647,
      seed: 2,
    });
    // Baseline of the first backup: the same files copied by tar onto the same disk, then synced.
    const dest = path.join(root, 'tar-dest');
    mkdirSync(dest);
    const { ms: tarMs } = tarCopy(sample.location, dest);
    // The same files copied under the store's rule for a batch (written, one syncfs, renamed, one syncfs; no hash,
    // no HTTP): what the disk costs for a segment visible only once it is on disk (bench/durableCopy.py).
    const durableMs = Number(execFileSync('python3', [DURABLE_COPY, sample.location, path.join(root, 'durable-dest')], { encoding: 'utf8' }).trim()) * 1000;
    // Both copies stay until the end: deleting 60,000 inodes here would slow the store's file creation that follows
    // (on ext4 without a journal, as here, new inodes skip recently freed ones by a scan: docs/performance.md).

    const target = await startSidecar(['--store', path.join(root, 'store')], { fast: false, ...profiled('nochange-target') });
    const args = ['--config', sample.propertiesFile, '--node-name', 'bench-historical'];
    const stateDir = path.join(root, 'source-state');
    let source = await startSidecar(args, { token: target.token, stateDir, fast: false, allowedTargets: [target.url], ...profiled('nochange-source') });
    try {
      const procs = { 'nochange-source': source.proc.pid!, 'nochange-target': target.proc.pid! };
      const traceFirst = process.env.BENCH_TRACE_PHASE === 'first';
      const first = traceFirst ? await straceDuring(procs, () => backup(source, target)) : await backup(source, target);
      const requests = async (method: string, route: string) => target.metric('druid_backup_http_requests_total', { method, route });
      console.log(
        `first backup's uploads: ${await requests('POST', '/data/v1/store/batch')} batch requests, ${await requests('PUT', '/data/v1/store/segments/:id')} single PUTs`,
      );
      // The figure is the job's own run (startedAt to finishedAt), not the client's 100 ms polling of it.
      let second!: Awaited<ReturnType<typeof backup>> & { jobMs: number };
      // A no-change backup is what runs every period: the row has each of several in a row (the first one, right
      // after the first backup, has been the slowest: its CPU is higher, and falls over the next ones).
      for (let round = 1, rounds = Number(process.env.BENCH_NOCHANGE_ROUNDS ?? 3); round <= rounds; round++) {
        const b = traceFirst ? await backup(source, target) : await straceDuring(procs, () => backup(source, target));
        second = { ...b, jobMs: Date.parse(b.job.finishedAt!) - Date.parse(b.job.startedAt!) };
        if (b.job.progress.segmentsSkipped !== 10_000) throw new Error(`the no-change backup did not skip everything: ${JSON.stringify(b.job.progress)}`);
        console.log(`no-change backup ${round}/${rounds}: job ${second.jobMs} ms, client ${b.ms.toFixed(0)} ms; ${b.cpu}`);
        addRow({ figure: 'no-change backup of 10,000 segments (each of several in a row)', unit: 's', value: second.jobMs / 1000, goal: { max: 0.5 } });
      }
      const p = second.job.progress;
      console.log(
        `10,000 segments: first backup ${(first.ms / 1000).toFixed(2)} s (tar | tar && sync: ${(tarMs / 1000).toFixed(2)} s; ratio ${(first.ms / tarMs).toFixed(2)}x; the durable copy of bench/durableCopy.py: ${(durableMs / 1000).toFixed(2)} s); second, no-change backup ${(second.jobMs / 1000).toFixed(2)} s (job's own time; ${(second.ms / 1000).toFixed(2)} s as the client polled it; ${p.segmentsSkipped} skipped, nothing hashed or sent); first backup's ${first.cpu}; no-change backup's ${second.cpu}`,
      );
      addRow({
        figure: 'first backup of 10,000 small segments, vs tar | tar && sync',
        unit: 's',
        value: first.ms / 1000,
        baseline: { what: 'tar | tar && sync', value: tarMs / 1000 },
        goal: { max: 2 },
      });
      addRow({
        figure: 'first backup of 10,000 small segments, vs the durable copy of bench/durableCopy.py',
        unit: 's',
        value: first.ms / 1000,
        baseline: { what: 'durable copy, 64 segments a syncfs', value: durableMs / 1000 },
      });
      await source.stop();
      // Active backup after a restart: the reconcile scan against the target's catalog.
      source = await startSidecar([...args, '--target', target.url], { token: target.token, stateDir, fast: false, allowedTargets: [target.url] });
      const line = await waitFor('the reconcile', () => source.logLines().find((l) => l.msg === 'reconciled the cache with the target'), 120_000);
      console.log(`active backup restart over 10,000 backed-up segments: reconcile ${line.durationMs} ms, ${line.queued} queued`);
      await source.stop();
      source = await startSidecar(args, { token: target.token, fast: false, allowedTargets: [target.url], ...profiled('smallrestore-node') });
      await restoreSmall(source, target, sample.location, path.join(root, 'store', SEGMENTS_DIR));
    } finally {
      await source.stop();
      await target.stop();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/**
 * The restore of the 10,000 small segments into the emptied cache (what a node of a cluster that ingests from streams
 * waits on after losing its disk), against tar of the store's files into the same location and `sync`. The restored
 * tree must be the original, byte for byte.
 */
async function restoreSmall(node: SidecarProcess, target: SidecarProcess, location: string, stored: string): Promise<void> {
  const original = treeDigests(location);
  emptyDir(location);
  const { ms: tarMs } = tarCopy(stored, location);
  emptyDir(location);
  execFileSync('sync');
  const cpu0 = [cpuNow(node.proc.pid!), cpuNow(target.proc.pid!)] as const;
  const t0 = performance.now();
  const job = await straceDuring(
    { 'smallrestore-node': node.proc.pid!, 'smallrestore-target': target.proc.pid! },
    async () => {
      const r = await node.request<JobAccepted>('POST', '/data/v1/restore', { target: target.url });
      if (r.status !== 202) throw new Error(`restore refused: ${r.text}`);
      const j = await node.waitForJob(r.json.jobId, 30 * 60_000, JOB_POLL_MS);
      execFileSync('sync');
      return j;
    },
    'smallrestore-phase',
  );
  const ms = performance.now() - t0;
  if (job.state !== 'succeeded') throw new Error(`restore ${job.state}: ${JSON.stringify(job.errors.slice(0, 3))}`);
  const restored = treeDigests(location);
  const differ = [...original].filter(([f, d]) => restored.get(f) !== d).length + [...restored.keys()].filter((f) => !original.has(f)).length;
  if (differ) throw new Error(`the restored cache differs from the original in ${differ} files`);
  console.log(
    `restore of ${job.progress.segmentsDone} small segments into the emptied cache: ${(ms / 1000).toFixed(2)} s (tar | tar && sync of the store's files: ${(tarMs / 1000).toFixed(2)} s; ratio ${(ms / tarMs).toFixed(2)}x); CPU used: node sidecar ${cpuSince(node.proc.pid!, cpu0[0])}, target sidecar ${cpuSince(target.proc.pid!, cpu0[1])}; restored tree byte-identical (${restored.size} files)`,
  );
  addRow({
    figure: `restore of ${job.progress.segmentsDone.toLocaleString('en-US')} small segments into an empty cache, vs tar | tar && sync`,
    unit: 's',
    value: ms / 1000,
    baseline: { what: 'tar | tar && sync', value: tarMs / 1000 },
    goal: { max: 2 },
  });
}

export async function benchBackup(): Promise<void> {
  console.log(`(${os.cpus().length} cores, load average ${os.loadavg()[0]!.toFixed(1)})`);
  const parts = process.env.BENCH_BACKUP_PARTS?.split(',');
  if (!parts || parts.includes('throughput')) await throughput();
  if (!parts || parts.includes('nochange')) await noChange();
}
