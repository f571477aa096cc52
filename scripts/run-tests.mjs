// Runs the test suites with Node's built-in runner (TypeScript through tsx).
// Usage: node scripts/run-tests.mjs [--concurrency=N] [suite...]   suites: unit integration e2e druid (default: unit integration)
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const args = process.argv.slice(2);
const concurrency = (args.find((a) => a.startsWith('--concurrency=')) ?? '--concurrency=2').split('=')[1];
const named = args.filter((a) => !a.startsWith('--'));
const suites = named.length ? named : ['unit', 'integration'];
const files = [];
const walk = (dir) => {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of entries.sort()) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.ts')) files.push(p);
  }
};
for (const s of suites) walk(path.join('test', s));
if (files.length === 0) {
  console.error(`no test files under ${suites.map((s) => `test/${s}`).join(', ')}`);
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
