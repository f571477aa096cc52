// Packages the VS Code extension as a .vsix with @vscode/vsce (npm run package; the e2e test installs the result).
// vsce walks every file under its working directory before applying .vscodeignore, and this repository holds
// hundreds of thousands (.cache/code-server, the Druid jars): so the files that go into the .vsix are staged in a
// temporary directory and packaged there. Usage: node scripts/package-extension.mjs [--out FILE_OR_DIR]
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const i = process.argv.indexOf('--out');
const out = path.resolve(i > 0 ? process.argv[i + 1] : path.join(root, 'dist') + path.sep);
if (!existsSync(path.join(root, 'dist/extension.js'))) {
  console.error('package-extension: dist/extension.js is missing: run npm run build first');
  process.exit(1);
}
const stage = mkdtempSync(path.join(os.tmpdir(), 'dbk-vsix-'));
try {
  for (const f of ['package.json', 'README.md', 'LICENSE', '.vscodeignore', 'dist/extension.js', 'media']) {
    if (existsSync(path.join(root, f))) cpSync(path.join(root, f), path.join(stage, f), { recursive: true });
  }
  const vsce = path.join(root, 'node_modules/@vscode/vsce/vsce');
  // No repository to point relative README links at: they stay as written.
  const args = ['package', '--no-dependencies', '--skip-license', '--allow-missing-repository', '--no-rewrite-relative-links', '--out', out];
  const r = spawnSync(process.execPath, [vsce, ...args], { cwd: stage, stdio: 'inherit' });
  process.exitCode = r.status ?? 1;
} finally {
  rmSync(stage, { recursive: true, force: true });
}
