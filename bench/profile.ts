/**
 * Profiling the sidecars of a benchmark, off unless asked: with BENCH_PROFILE_DIR set, each sidecar a benchmark
 * starts through `profiled()` runs with `--cpu-prof` (its .cpuprofile is written into that directory when it
 * stops); with BENCH_STRACE=1 as well, `straceDuring()` instead attaches `strace -c -f` to the given processes for
 * one phase and writes a syscall summary per process there. Read the profiles with `node --import tsx bench/cpuprofile.ts DIR/*.cpuprofile`.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { NODE_FLAGS } from '../sidecar/runtime.js';

const dir = process.env.BENCH_PROFILE_DIR;

/**
 * CPU seconds (user + system, all threads) a process has used so far. On a shared machine a phase's wall time
 * mostly measures the other tenants; the CPU it cost does not.
 */
export function cpuSeconds(pid: number): number {
  const { user, system } = cpuSplit(pid);
  return user + system;
}

/** CPU seconds a process has used so far in user space and in the kernel (its syscalls: copies, page cache, sockets). */
export function cpuSplit(pid: number): { user: number; system: number } {
  // Fields after the command's closing parenthesis: state is the 3rd field of the line, utime the 14th, stime the 15th.
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 };
}

/** `user + kernel` CPU seconds and minor page faults of a process so far. */
export function cpuNow(pid: number): { user: number; system: number; faults: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return { ...cpuSplit(pid), faults: Number(fields[7]) };
}

/** What a process used since an earlier `cpuNow`: CPU seconds, the kernel's part, and page faults (each one a trip into the kernel). */
export function cpuSince(pid: number, s0: { user: number; system: number; faults: number }): string {
  const s = cpuNow(pid);
  return `${(s.user - s0.user + s.system - s0.system).toFixed(2)} s (${(s.system - s0.system).toFixed(2)} s kernel, ${s.faults - s0.faults} page faults)`;
}

/**
 * CPU seconds (user + system) of this process's children that have ended: read before and after a baseline run
 * by execFileSync (tar | tar), it gives the CPU the baseline cost, to set beside the sidecars'.
 */
export function endedChildrenCpuSeconds(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

/**
 * CPU seconds one core of this machine takes to sha256 `bytes` with Node's crypto (measured on 256 MiB): the part of
 * a transfer's CPU that verification alone costs, whatever the code around it does.
 */
export function sha256CpuSeconds(bytes: number): number {
  const block = Buffer.alloc(1 << 20, 0x5a);
  const h = createHash('sha256');
  const t0 = process.cpuUsage();
  for (let i = 0; i < 256; i++) h.update(block);
  h.digest();
  const used = process.cpuUsage(t0);
  return ((used.user + used.system) / 1e6) * (bytes / (256 * block.length));
}

/**
 * Node flags for a sidecar named `name` (the profile file's prefix): NODE_FLAGS, plus --cpu-prof when profiling
 * without strace (the profiler's sampling signals would fill strace's counts).
 */
export function profiled(name: string): { nodeFlags: readonly string[] } {
  const extra = (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  if (!dir || process.env.BENCH_STRACE) return { nodeFlags: [...NODE_FLAGS, ...extra] };
  mkdirSync(dir, { recursive: true });
  return { nodeFlags: [...NODE_FLAGS, ...extra, '--cpu-prof', `--cpu-prof-dir=${path.resolve(dir)}`, `--cpu-prof-name=${name}.cpuprofile`] };
}

/**
 * Runs `phase` with `strace -c -f` attached to each process when BENCH_STRACE is set too (strace slows the
 * processes down, so a run measures either syscalls or CPU); the summaries go to DIR/{name}.strace. The phase's
 * start and end (CLOCK_MONOTONIC, in µs, the clock of a .cpuprofile's timestamps) go to DIR/phase.json, so that
 * bench/cpuprofile.ts counts only the samples taken during it.
 */
export async function straceDuring<T>(procs: Record<string, number>, phase: () => Promise<T>, name = 'phase'): Promise<T> {
  if (!dir) return phase();
  mkdirSync(dir, { recursive: true });
  const us = () => Number(process.hrtime.bigint() / 1000n);
  const start = us();
  const withStrace = !!process.env.BENCH_STRACE;
  if (!withStrace) {
    try {
      return await phase();
    } finally {
      writeFileSync(path.join(dir, `${name}.json`), JSON.stringify({ start, end: us() }));
    }
  }
  const tracers: ChildProcess[] = Object.entries(procs).map(([name, pid]) =>
    spawn('strace', ['-c', '-f', '-o', path.resolve(dir, `${name}.strace`), '-p', String(pid)], { stdio: 'ignore' }),
  );
  await new Promise((r) => setTimeout(r, 500)); // strace attaches to every thread
  try {
    return await phase();
  } finally {
    writeFileSync(path.join(dir, `${name}.json`), JSON.stringify({ start, end: us() }));
    await Promise.all(
      tracers.map(
        (t) =>
          new Promise<void>((resolve) => {
            t.on('exit', () => resolve());
            t.kill('SIGINT');
          }),
      ),
    );
  }
}
