import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { missingNodeFlags, NODE_FLAGS, withNodeFlags } from '../../sidecar/runtime.js';
import { SIDECAR_JS } from '../helpers/cli.js';
import { startSidecar, tmpDir } from '../helpers/sidecar.js';

const ROOT = path.resolve(__dirname, '../..');
const STARTED_WITHOUT = 'node was started without';

test('every launcher gives the sidecar the same Node.js flags: the binary, the Druid extension, the README', () => {
  assert.equal(readFileSync(SIDECAR_JS, 'utf8').split('\n', 1)[0], `#!/usr/bin/env -S node ${NODE_FLAGS.join(' ')}`);

  const java = readFileSync(path.join(ROOT, 'druid-extension/src/main/java/io/github/druidbackup/AutostartPlan.java'), 'utf8');
  const list = /NODE_FLAGS = List\.of\(([^)]*)\)/.exec(java)?.[1];
  assert.ok(list, 'AutostartPlan.java declares NODE_FLAGS');
  assert.deepEqual(
    [...list.matchAll(/"([^"]*)"/g)].map((m) => m[1]),
    NODE_FLAGS,
  );

  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const runs = readme.split('\n').filter((l) => /\bnode\b.*sidecar\.js sidecar/.test(l));
  assert.ok(runs.length >= 3, 'the README shows how to start the sidecar');
  for (const line of runs) assert.ok(line.includes(`node ${NODE_FLAGS.join(' ')} `), `README line without the flags: ${line.trim()}`);
});

test('the bundle is ASCII, so V8 keeps its 4.8 MB of source at one byte per character', () => {
  for (const file of [SIDECAR_JS, path.join(ROOT, 'dist/extension.js')]) {
    const text = readFileSync(file, 'utf8');
    const at = text.search(/[^\0-\x7f]/);
    assert.equal(at, -1, `${path.basename(file)}: a non-ASCII character near ${JSON.stringify(text.slice(Math.max(0, at - 40), at + 10))}`);
  }
});

test('the binary runs through its #! line (env -S splits the flags)', () => {
  const out = execFileSync(SIDECAR_JS, ['--version'], { encoding: 'utf8' });
  assert.match(out.trim(), /^\d+\.\d+\.\d+/);
});

test("withNodeFlags adds the flags a command line lacks and keeps an operator's own value", () => {
  assert.deepEqual(withNodeFlags([]), [...NODE_FLAGS]);
  assert.deepEqual(withNodeFlags(['--inspect']), [...NODE_FLAGS, '--inspect']);
  assert.deepEqual(withNodeFlags(['--max-semi-space-size=8']), ['--initial-old-space-size=64', '--max-semi-space-size=8']);
  assert.deepEqual(withNodeFlags(['--max-semi-space-size=8', '--initial-old-space-size=16']), ['--max-semi-space-size=8', '--initial-old-space-size=16']);
  assert.deepEqual(missingNodeFlags([], ''), [...NODE_FLAGS]);
  assert.deepEqual(missingNodeFlags(['--max-semi-space-size=4'], ''), ['--initial-old-space-size=64']);
  assert.deepEqual(missingNodeFlags(['--max-semi-space-size=4'], '--initial-old-space-size=32 --trace-warnings'), []);
});

test('a sidecar started without the flags says so in one log line, and one started with them does not', async () => {
  const store = tmpDir('dbk-flags-');
  const without = await startSidecar(['--store', path.join(store, 'a')], { nodeFlags: [] });
  const withFlags = await startSidecar(['--store', path.join(store, 'b')]);
  try {
    const lines = without.logLines().filter((l) => String(l.msg).startsWith(STARTED_WITHOUT));
    assert.equal(lines.length, 1);
    assert.deepEqual(lines[0]!.missing, [...NODE_FLAGS]);
    assert.equal(
      withFlags.logLines().some((l) => String(l.msg).startsWith(STARTED_WITHOUT)),
      false,
    );
  } finally {
    await without.stop();
    await withFlags.stop();
    rmSync(store, { recursive: true, force: true });
  }
});
