// Writes README.md's configuration table (between <!-- config-table --> markers) from BACKUP_KEYS in
// sidecar/config.ts, the one source of the keys. test/unit/server/readme.test.ts fails when they differ.
// Usage: npm run config-table
import { readFileSync, writeFileSync } from 'node:fs';
import { BACKUP_KEYS } from '../sidecar/config.js';

export function configTable(): string {
  const rows = BACKUP_KEYS.map((k) => `| \`${k.key}\` | ${k.default ?? ''} | ${k.flag ? `\`--${k.flag}\`` : ''} | ${k.doc} |`);
  return ['| key | default | flag | what |', '|---|---|---|---|', ...rows].join('\n');
}

export const TABLE_PATTERN = /<!-- config-table -->\n([\s\S]*?)\n<!-- \/config-table -->/;

if (process.argv[1] && /config-table\.ts$/.test(process.argv[1])) {
  const readme = readFileSync('README.md', 'utf8');
  if (!TABLE_PATTERN.test(readme)) throw new Error('README.md has no <!-- config-table --> section');
  writeFileSync('README.md', readme.replace(TABLE_PATTERN, `<!-- config-table -->\n${configTable()}\n<!-- /config-table -->`));
}
