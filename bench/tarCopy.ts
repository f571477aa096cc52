/**
 * The baselines of the large transfers: `tar -C src -cf - . | tar -C dest -xf - && sync`, and the same copy with
 * the sha256 of every byte taken alongside it, the verification a transfer of ours cannot skip (a restore checks
 * each file against its manifest on the node; a backup names each file on the source and checks it on the target).
 *
 * The hashes are `openssl dgst -sha256` of the source's files, one process per hash, started with the copy and
 * waited for before the `sync`: the copy on one core and a hash on the other, with no extra copy of the data (a
 * `tee` into the hash would add two). It is the floor of a verified copy on this machine: the same OpenSSL sha256
 * Node's crypto uses (with the CPU's SHA extensions where it has them), none of our code. coreutils' `sha256sum`
 * is not used: without those extensions it was 7x slower here.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { endedChildrenCpuSeconds } from './profile.js';
import { addRow } from './table.js';

export interface TarCopy {
  ms: number;
  /** CPU seconds of every process of the copy (and of its hashes). */
  cpu: number;
}

/** `tar | tar && sync` of `src`'s files into the existing directory `dest`, with `hashes` sha256 passes beside it. */
export function tarCopy(src: string, dest: string, hashes = 0): TarCopy {
  const hash = `find . -type f -print0 | xargs -0 -r openssl dgst -sha256 > /dev/null`;
  const script = [
    `cd "$1" || exit 1`,
    ...Array.from({ length: hashes }, () => `(${hash}) & `),
    `tar -cf - . | tar -C "$2" -xf - || exit 1`,
    'for p in $(jobs -p); do wait "$p" || exit 1; done',
    'sync',
  ].join('\n');
  execFileSync('sync');
  const cpu0 = endedChildrenCpuSeconds();
  const t0 = performance.now();
  execFileSync('bash', ['-c', script, 'tarCopy', src, dest]);
  return { ms: performance.now() - t0, cpu: endedChildrenCpuSeconds() - cpu0 };
}

/** The copy with `passes` sha256 passes beside it, or why it cannot run here (no `openssl`). */
export function verifiedTarCopy(src: string, dest: string, passes: number): TarCopy | string {
  if (spawnSync('openssl', ['version'], { stdio: 'ignore' }).status !== 0)
    return 'openssl is not installed: the verified baseline (tar with sha256 alongside) is not measured';
  return tarCopy(src, dest, passes);
}

/**
 * Prints `what` (a restore, a backup) against the verified copy and adds its row (no goal: it shows what bounds the
 * row against plain tar), or prints why that copy was not measured.
 */
export function reportAgainstVerified(what: string, figure: string, ms: number, verified: TarCopy | string, passes: string): void {
  if (typeof verified === 'string') {
    console.log(verified);
    return;
  }
  console.log(
    `tar | tar && sync with ${passes} alongside: ${(verified.ms / 1000).toFixed(2)} s (${verified.cpu.toFixed(2)} s of CPU); the ${what}'s ratio to it ${(ms / verified.ms).toFixed(2)}x`,
  );
  addRow({ figure, unit: 's', value: ms / 1000, baseline: { what: `tar | tar && sync, ${passes} alongside`, value: verified.ms / 1000 } });
}
