/**
 * Restore throughput, with real sidecar processes (dist/sidecar.js) on loopback: the large sample cache
 * (bench/sample.ts, at least 2 GB) is backed up to a target sidecar, the node's cache is emptied, and a restore
 * job brings it back (every file streamed from the target, sha256-checked against its manifest, fsynced, renamed
 * into place with its info_dir file); then `sync`. Baseline: `tar -C store -cf - . | tar -C cache -xf - && sync`
 * of the same files from the store into the same cache location, and the same with the sha256 of every byte taken
 * alongside (bench/tarCopy.ts), the floor of a verified copy. Both read the store from a page cache warmed
 * by the backup, and both end with every byte on disk. Prints the ratio and the node sidecar's peak memory.
 * The sample cache is left as it was found.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Job, JobAccepted } from '../sidecar/api.js';
import { formatBytes } from '../sidecar/druid/bytes.js';
import { SEGMENTS_DIR } from '../sidecar/store/local/layout.js';
import { startSidecar, tmpDir } from '../test/helpers/sidecar.js';
import { emptyDir, treeDigests } from '../test/helpers/tree.js';
import { cpuNow, cpuSeconds, cpuSince, profiled, sha256CpuSeconds, straceDuring } from './profile.js';
import { JOB_POLL_MS, largeSample } from './sample.js';
import { addRow } from './table.js';
import { reportAgainstVerified, tarCopy, verifiedTarCopy } from './tarCopy.js';

function peakRss(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

export async function benchRestore(): Promise<void> {
  console.log(`(${os.cpus().length} cores, load average ${os.loadavg()[0]!.toFixed(1)})`);
  const sample = await largeSample();
  const root = tmpDir('dbk-bench-restore-');
  const target = await startSidecar(['--store', path.join(root, 'store')], { fast: false, ...profiled('restore-target') });
  const node = await startSidecar(['--config', sample.propertiesFile, '--node-name', 'bench-historical'], {
    token: target.token,
    fast: false,
    ...profiled('restore-node'),
    allowedTargets: [target.url],
  });
  try {
    const b = await node.request<JobAccepted>('POST', '/data/v1/backup', { target: target.url });
    const backedUp = await node.waitForJob(b.json.jobId, 30 * 60_000);
    if (backedUp.state !== 'succeeded') throw new Error(`backup ${backedUp.state}: ${JSON.stringify(backedUp.errors.slice(0, 3))}`);
    const original = treeDigests(sample.location);

    // Baseline: the store's files copied into the emptied cache location by tar, then synced.
    // Then the same with the sha256 of every byte taken alongside (bench/tarCopy.ts): the floor of a verified copy.
    const stored = path.join(root, 'store', SEGMENTS_DIR);
    emptyDir(sample.location);
    const { ms: tarMs, cpu: tarCpu } = tarCopy(stored, sample.location);
    emptyDir(sample.location);
    const verified = verifiedTarCopy(stored, sample.location, 1);
    emptyDir(sample.location);
    execFileSync('sync');

    // The blocking tar above may have outlasted the server's keep-alive: a POST on the closed connection would fail
    // ("other side closed"), so a GET, which may, takes the stale connection out of the client's pool first.
    await node.request('GET', '/status/health').catch(() => undefined);
    const cpu0 = [cpuNow(node.proc.pid!), cpuNow(target.proc.pid!)] as const;
    const seconds0 = [cpuSeconds(node.proc.pid!), cpuSeconds(target.proc.pid!)];
    const { job, ms } = await straceDuring({ 'restore-node': node.proc.pid!, 'restore-target': target.proc.pid! }, async () => {
      const r0 = performance.now();
      const res = await node.request<JobAccepted>('POST', '/data/v1/restore', { target: target.url });
      if (res.status !== 202) throw new Error(`restore refused: ${res.text}`);
      const job: Job = await node.waitForJob(res.json.jobId, 30 * 60_000, JOB_POLL_MS);
      execFileSync('sync');
      return { job, ms: performance.now() - r0 };
    });
    const [nodeCpu, targetCpu] = [cpuSince(node.proc.pid!, cpu0[0]), cpuSince(target.proc.pid!, cpu0[1])];
    const usedSeconds = cpuSeconds(node.proc.pid!) - seconds0[0]! + cpuSeconds(target.proc.pid!) - seconds0[1]!;
    if (job.state !== 'succeeded') throw new Error(`restore ${job.state}: ${JSON.stringify(job.errors.slice(0, 3))}`);
    const same = JSON.stringify([...treeDigests(sample.location)]) === JSON.stringify([...original]);
    if (!same) throw new Error('the restored cache differs from the original');
    const mbps = (job.progress.bytesDone / 1e6 / ms) * 1000;
    console.log(
      `restore of ${job.progress.segmentsDone} segments (${formatBytes(job.progress.bytesDone)}) from a target sidecar into the emptied cache: ${(ms / 1000).toFixed(2)} s (${mbps.toFixed(0)} MB/s); tar | tar && sync: ${(tarMs / 1000).toFixed(2)} s; ratio ${(ms / tarMs).toFixed(2)}x; restored tree byte-identical`,
    );
    addRow({
      figure: `restore of ${formatBytes(job.progress.bytesDone)} (${job.progress.segmentsDone} segments) from a target sidecar into an empty cache, vs tar | tar && sync`,
      unit: 's',
      value: ms / 1000,
      baseline: { what: 'tar | tar && sync', value: tarMs / 1000 },
      goal: { max: 1.3 },
    });
    reportAgainstVerified(
      'restore',
      `restore of ${formatBytes(job.progress.bytesDone)} from a target sidecar, vs the same tar with sha256 alongside`,
      ms,
      verified,
      'the sha256 of every byte',
    );
    // What bounds it: the CPU both processes used against what the two cores could give in that time, beside
    // the baseline's CPU and the part verification alone costs (sha256 of every byte on the node).
    const cores = os.cpus().length;
    console.log(
      `CPU used during the restore: node sidecar ${nodeCpu}, target sidecar ${targetCpu} (${Math.round((usedSeconds / ((ms / 1000) * cores)) * 100)} % of ${cores} cores over the restore); tar | tar && sync: ${tarCpu.toFixed(2)} s; sha256 of the ${formatBytes(job.progress.bytesDone)} alone: ${sha256CpuSeconds(job.progress.bytesDone).toFixed(2)} s`,
    );
    console.log(`peak memory (VmHWM): node sidecar ${formatBytes(peakRss(node.proc.pid!))}, target sidecar ${formatBytes(peakRss(target.proc.pid!))}`);
  } finally {
    await node.stop();
    await target.stop();
    rmSync(root, { recursive: true, force: true });
  }
}
