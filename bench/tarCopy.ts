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

/** Why the verified baseline cannot run here (no `openssl`), or undefined. */
export function verifiedBaselineMissing(): string | undefined {
  const r = spawnSync('openssl', ['version'], { stdio: 'ignore' });
  return r.status === 0 ? undefined : 'openssl is not installed: the verified baseline (tar with sha256 alongside) is not measured';
}
