// Runs the test suites with Node's built-in runner (TypeScript through tsx).
// Usage: node scripts/run-tests.mjs [--concurrency=N] [suite...]   suites: unit integration reliability e2e druid (default: unit integration reliability e2e)
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const args = process.argv.slice(2);
const concurrency = (args.find((a) => a.startsWith('--concurrency=')) ?? '--concurrency=2').split('=')[1];
const named = args.filter((a) => !a.startsWith('--'));
const suites = named.length ? named : ['unit', 'integration', 'reliability', 'e2e'];
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
// The e2e suite drives a real VS Code (code-server) in Chromium: it runs on its own after the others, so it does not
// compete with them for the 2 cores, once scripts/install-code-server.sh has installed what it needs.
const e2eDir = path.join('test', 'e2e') + path.sep;
const groups = [files.filter((f) => !f.startsWith(e2eDir)), files.filter((f) => f.startsWith(e2eDir))].filter((g) => g.length);
let status = 0;
for (const group of groups) {
  if (group[0].startsWith(e2eDir)) {
    const setup = spawnSync('bash', ['scripts/install-code-server.sh'], { stdio: 'inherit' });
    if (setup.status !== 0) {
      status ||= setup.status ?? 1;
      continue;
    }
  }
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, ...group], { stdio: 'inherit' });
  status ||= r.status ?? 1;
}
process.exit(status);
