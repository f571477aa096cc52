// Bundles the sidecar (daemon + CLI) and the VS Code extension with esbuild: one file each, no native modules.
import { build } from 'esbuild';
import { readFileSync, chmodSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: 'linked',
  logLevel: 'warning',
  define: { __VERSION__: JSON.stringify(pkg.version) },
};

await Promise.all([
  build({
    ...common,
    entryPoints: ['sidecar/cli.ts'],
    outfile: 'dist/sidecar.js',
    banner: { js: '#!/usr/bin/env node' },
  }),
  build({
    ...common,
    entryPoints: ['extension/extension.ts'],
    outfile: 'dist/extension.js',
    external: ['vscode'],
  }),
]);
chmodSync('dist/sidecar.js', 0o755);
