/**
 * `npm run bench`: each benchmark prints its figures and, where there is one, a ratio against a baseline run
 * in the same process. These machines are noisy: compare ratios, not absolute times.
 * Usage: npm run bench [-- name...]   (default: all)
 */
import { spawnSync } from 'node:child_process';
import { benchAzure } from './azure.js';
import { benchBackup } from './backup.js';
import { benchPrune } from './prune.js';
import { benchRestore } from './restore.js';
import { benchS3 } from './s3.js';
import { benchScan } from './scan.js';

const BENCHES: Record<string, () => Promise<void>> = {
  scan: benchScan,
  backup: benchBackup,
  restore: benchRestore,
  s3: benchS3,
  azure: benchAzure,
  prune: benchPrune,
};

async function main() {
  const names = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(BENCHES);
  // The S3 and prune benchmarks run against VersityGW, installed on first use into .cache/bin (the script says what is missing).
  if (names.some((n) => n === 's3' || n === 'prune') && spawnSync('bash', ['scripts/install-versitygw.sh'], { stdio: 'inherit' }).status !== 0)
    throw new Error('VersityGW could not be installed for the s3 benchmark: scripts/install-versitygw.sh says why above');
  for (const n of names) {
    const b = BENCHES[n];
    if (!b) throw new Error(`unknown benchmark ${n}; known: ${Object.keys(BENCHES).join(', ')}`);
    console.log(`\n## ${n}`);
    await b();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
