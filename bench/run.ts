/**
 * `npm run bench`: each benchmark prints its figures and, where there is one, a ratio against a baseline run
 * in the same process. These machines are noisy: compare ratios, not absolute times.
 * Usage: npm run bench [-- name...]   (default: all)
 * BENCH_ROUNDS=n runs the named benchmarks n times over; the closing table (bench/table.ts) then shows each
 * figure's median and range.
 */
import { spawnSync } from 'node:child_process';
import { benchAzure } from './azure.js';
import { benchBackup } from './backup.js';
import { benchRestore } from './restore.js';
import { benchS3 } from './s3.js';
import { benchScan } from './scan.js';
import { printTable } from './table.js';

const BENCHES: Record<string, () => Promise<void>> = { scan: benchScan, backup: benchBackup, restore: benchRestore, s3: benchS3, azure: benchAzure };

async function main() {
  const names = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(BENCHES);
  // The S3 benchmark runs against VersityGW, installed on first use into .cache/bin (the script says what is missing).
  if (names.includes('s3') && spawnSync('bash', ['scripts/install-versitygw.sh'], { stdio: 'inherit' }).status !== 0)
    throw new Error('VersityGW could not be installed for the s3 benchmark: scripts/install-versitygw.sh says why above');
  for (const n of names) if (!BENCHES[n]) throw new Error(`unknown benchmark ${n}; known: ${Object.keys(BENCHES).join(', ')}`);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 1);
  for (let round = 1; round <= rounds; round++) {
    for (const n of names) {
      console.log(`\n## ${n}${rounds > 1 ? ` (round ${round} of ${rounds})` : ''}`);
      await BENCHES[n]!();
    }
  }
  printTable();
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
