import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { TABLE_PATTERN, configTable } from '../../../scripts/config-table.js';

test("README's configuration table lists every druid.backup.* key as BACKUP_KEYS has it (npm run config-table)", () => {
  const readme = readFileSync(path.resolve(__dirname, '../../../README.md'), 'utf8');
  const m = TABLE_PATTERN.exec(readme);
  assert.ok(m, 'README.md has a <!-- config-table --> section');
  assert.equal(m[1], configTable(), 'README.md is out of date: run npm run config-table');
});
