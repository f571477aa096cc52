// Runs the test suites with Node's built-in runner (TypeScript through tsx), first installing on first use, into the
// ignored .cache/, the tools the selected suites run besides npm's packages, so that `npm ci && npm test` works on a
// fresh clone. Each install script keeps what is already there and says in one line what is missing (Go, Python).
// Usage: node scripts/run-tests.mjs [--concurrency=N] [suite...]   suites: unit integration reliability e2e druid (default: unit integration reliability e2e)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
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
// The tools the suites run besides npm's packages: the S3 tests (integration, and the e2e client's bucket target)
// start VersityGW, the reliability suite fuzzes the API with Schemathesis, the e2e suite drives a real VS Code
// (code-server). Each is installed before the first group of tests that needs it. A tool that cannot be installed
// does not stop the run: the tests that need it fail, saying so, and the others still give their results.
const TOOLS = [
  { name: 'VersityGW', script: 'scripts/install-versitygw.sh', suites: ['integration', 'e2e'] },
  { name: 'Schemathesis', script: 'scripts/install-schemathesis.sh', suites: ['reliability'] },
  { name: 'code-server', script: 'scripts/install-code-server.sh', suites: ['e2e'] },
];
const suiteOf = (file) => file.split(path.sep)[1];
const tried = new Set();
const notInstalled = [];
// The e2e suite drives Chromium: it runs on its own after the others, not competing with them for the 2 cores.
const e2eDir = path.join('test', 'e2e') + path.sep;
const groups = [files.filter((f) => !f.startsWith(e2eDir)), files.filter((f) => f.startsWith(e2eDir))].filter((g) => g.length);
let status = 0;
for (const group of groups) {
  for (const tool of TOOLS) {
    if (tried.has(tool) || !group.some((f) => tool.suites.includes(suiteOf(f)))) continue;
    tried.add(tool);
    if (spawnSync('bash', [tool.script], { stdio: 'inherit' }).status !== 0) notInstalled.push(`${tool.name} (${tool.script})`);
  }
  // Each group's temporary files (the tests' caches, stores and sidecar states, made under os.tmpdir()) go under one
  // directory of its own, removed when the group passes and kept, and named, when it fails. Left in /tmp, a day of
  // runs on a developer's machine had left 5,000 directories and 8.7 GB there.
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'dbk-tests-'));
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, ...group], {
    stdio: 'inherit',
    env: { ...process.env, TMPDIR: tmp },
  });
  status ||= r.status ?? 1;
  if (r.status === 0) {
    try {
      rmSync(tmp, { recursive: true, force: true, maxRetries: 3 });
    } catch (e) {
      console.error(`run-tests: could not remove ${tmp}: ${e.message}`);
    }
  } else console.error(`run-tests: the temporary files of the tests that failed are kept in ${tmp}`);
}
// Said again at the end, where it is read: the install's own line scrolled by before the tests.
if (notInstalled.length)
  console.error(`run-tests: could not install ${notInstalled.join(', ')}; the tests that need it failed; the install's line above says why`);
process.exit(status || (notInstalled.length ? 1 : 0));
