/**
 * The Node.js flags the sidecar runs with, wherever it is started: the `druid-backup` binary (its `#!` line,
 * scripts/build.mjs), the Druid extension (AutostartPlan.java), `demo`, the supervise lines in the README, the tests and
 * the benchmark. test/unit/runtime.test.ts checks that they all say the same.
 *
 * `--max-semi-space-size=1` caps V8's young generation at 1 MiB per semi-space (Node 20's default lets it grow to 16):
 * a sidecar streaming segments makes short-lived objects at a steady rate, the young generation grows to its cap and
 * stays there, and the buffers that die young are freed only when it is collected. Measured with a 2 GB segment
 * backed up to and restored from S3 six times in one process (`npm run bench -- s3`): peak RSS while backing up
 * at most 128 MiB with the flag, up to 154 MiB without; throughput within the benchmark's noise.
 *
 * `--initial-old-space-size=64` lets the old generation grow to 64 MiB before V8 starts sizing it by what survives:
 * on a heap of about 12 MiB, the socket buffers a restore receives (64 KiB each, promoted by the small young
 * generation) started a full mark-compact every 11-12 MiB, 83-90 of them per GiB restored. With it, the node
 * sidecar's CPU during `npm run bench -- restore` fell from a median 11.9 s (11.5-13.4, 4 runs) to 6.8 s (6.1-7.4,
 * 5 runs), and its wall time on the loaded machine from 50-133 s to 14-55 s; its peak RSS rose from 152-156 to
 * 161-177 MiB (docs/performance.md). It sets a starting size, not a limit, and reserves nothing up front.
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1', '--initial-old-space-size=64'];

/** `--name=value` → `--name`. */
const flagName = (flag: string) => flag.split('=')[0]!;

/** `execArgv` with each of NODE_FLAGS that it does not set already (a flag given by the operator wins). */
export function withNodeFlags(execArgv: readonly string[]): string[] {
  const given = new Set(execArgv.map(flagName));
  return [...NODE_FLAGS.filter((f) => !given.has(flagName(f))), ...execArgv];
}

/** The flags of NODE_FLAGS this process was started without (on its command line or in NODE_OPTIONS). */
export function missingNodeFlags(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): string[] {
  const given = new Set([...execArgv, ...nodeOptions.split(/\s+/)].map(flagName));
  return NODE_FLAGS.filter((f) => !given.has(flagName(f)));
}
