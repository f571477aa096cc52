// Bundles the sidecar (daemon + CLI) and the VS Code extension with esbuild: one file each, no native modules.
import { build } from 'esbuild';
import { existsSync, readFileSync, readdirSync, writeFileSync, chmodSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

// What a target kind's SDK needs of the bundler, said in the kind's own folder (sidecar/store/<kind>/bundle.mjs,
// exporting `alias`), so that adding a kind touches no line here.
const kindsDir = new URL('../sidecar/store/', import.meta.url);
const alias = {};
for (const d of readdirSync(kindsDir, { withFileTypes: true })) {
  const file = new URL(`${d.name}/bundle.mjs`, kindsDir);
  if (d.isDirectory() && existsSync(file)) Object.assign(alias, (await import(file.href)).alias);
}

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: 'linked',
  logLevel: 'warning',
  define: { __VERSION__: JSON.stringify(pkg.version) },
  alias,
};

await Promise.all([
  build({
    ...common,
    entryPoints: ['sidecar/cli.ts'],
    outfile: 'dist/sidecar.js',
    // The flags of sidecar/runtime.ts NODE_FLAGS (test/unit/runtime.test.ts checks they match); `env -S` splits them.
    banner: { js: '#!/usr/bin/env -S node --max-semi-space-size=1 --initial-old-space-size=64' },
  }),
  build({
    ...common,
    entryPoints: ['extension/extension.ts'],
    outfile: 'dist/extension.js',
    external: ['vscode'],
  }),
]);
// esbuild escapes non-ASCII characters in code but keeps comments as written, and a few bundled comments (ours and
// the SDK's dependencies') hold characters such as '…'. One such character makes V8 keep the whole 4.8 MB source as
// a two-byte string: 9.7 MiB of the sidecar's memory for its whole life instead of 4.8. They are escaped here (each
// code unit as \uXXXX); only in comments, where that changes nothing, and the build stops if one is found elsewhere.
const inComment = (line, at) => {
  const before = line.slice(0, at);
  return before.includes('//') || /^\s*(\*|\/\*|\(\*)/.test(line);
};
for (const file of ['dist/sidecar.js', 'dist/extension.js']) {
  const lines = readFileSync(file, 'utf8').split('\n');
  let changed = false;
  lines.forEach((line, i) => {
    lines[i] = line.replace(/[^\0-\x7f]/g, (c, at) => {
      if (!inComment(line, at)) throw new Error(`${file}:${i + 1}: a non-ASCII character outside a comment: ${line.trim().slice(0, 120)}`);
      changed = true;
      return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
    });
  });
  if (changed) writeFileSync(file, lines.join('\n'));
}
chmodSync('dist/sidecar.js', 0o755);
