// Builds the Druid extension (druid-extension/, Maven) into dist/druid-extension/druid-backup/: the jar beside
// sidecar.js, a folder ready to drop into Druid's extensions/ directory. Expects dist/sidecar.js (npm run build).
//
// Usage: node scripts/build-druid-extension.mjs [--test]
//   --test   also run the Java unit tests (Surefire)
// Also writes dist/druid-extension-test/druid-backup-test-auth/, a test-only extension for the cluster tests.
// Maven's output is shown only when it fails; MVN names the Maven command (default: mvn).
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const moduleDir = path.join(root, 'druid-extension');
const outDir = path.join(root, 'dist', 'druid-extension', 'druid-backup');
const testOutDir = path.join(root, 'dist', 'druid-extension-test', 'druid-backup-test-auth');
const runTests = process.argv.includes('--test');
const unknown = process.argv.slice(2).filter((a) => a !== '--test');
if (unknown.length) fail(`unknown argument ${unknown.join(' ')} (usage: build-druid-extension.mjs [--test])`);

function fail(message) {
  console.error(`build-druid-extension: ${message}`);
  process.exit(1);
}

const { version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const sidecar = path.join(root, 'dist', 'sidecar.js');
if (!existsSync(sidecar)) fail('dist/sidecar.js is missing: run npm run build first');

const t0 = Date.now();
const mvn = process.env.MVN || 'mvn';
const args = ['-B', '-q', '-f', path.join(moduleDir, 'pom.xml'), `-Drevision=${version}`, 'package'];
if (!runTests) args.push('-DskipTests');
const r = spawnSync(mvn, args, { cwd: moduleDir, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
if (r.error) fail(`cannot run ${mvn} (${r.error.code ?? r.error.message}); Maven 3 and Java 17 build the extension`);
// Maven 3.8 prints bare colour resets even in batch mode; anything else is worth showing.
const output = `${r.stdout}${r.stderr}`.replace(/\u001b\[0m/g, '').trim();
if (r.status !== 0) {
  console.error(output);
  fail(`Maven failed (exit ${r.status}); the Surefire reports are in druid-extension/target/surefire-reports/`);
}
if (output) console.log(output);

const jar = `druid-backup-${version}.jar`;
const testJar = `druid-backup-${version}-test-auth.jar`;
for (const dir of [outDir, testOutDir]) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
}
copyFileSync(path.join(moduleDir, 'target', jar), path.join(outDir, jar));
copyFileSync(sidecar, path.join(outDir, 'sidecar.js'));
if (existsSync(`${sidecar}.map`)) copyFileSync(`${sidecar}.map`, path.join(outDir, 'sidecar.js.map'));
copyFileSync(path.join(moduleDir, 'src', 'main', 'node', 'parent-watch.cjs'), path.join(outDir, 'parent-watch.cjs'));
copyFileSync(path.join(moduleDir, 'target', testJar), path.join(testOutDir, testJar));

let tests = '';
if (runTests) {
  const reports = path.join(moduleDir, 'target', 'surefire-reports');
  let run = 0;
  for (const f of readdirSync(reports).filter((n) => n.endsWith('.txt'))) {
    const m = /Tests run: (\d+)/.exec(readFileSync(path.join(reports, f), 'utf8'));
    run += m ? Number(m[1]) : 0;
  }
  tests = `, ${run} Java unit tests passed`;
}
const kb = (f) => `${Math.round(statSync(f).size / 1024)} KiB`;
console.log(
  `druid-extension: ${path.relative(root, outDir)}/ (${jar} ${kb(path.join(outDir, jar))}, sidecar.js ${kb(sidecar)})` +
    `${tests} in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
);
