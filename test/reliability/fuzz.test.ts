/**
 * The API fuzzed from its own /openapi.json with Schemathesis (installed into .cache/schemathesis by
 * scripts/install-schemathesis.sh, which `npm test` runs first): a source and a target sidecar each get a seeded run
 * of generated requests, valid and invalid, with the token. No answer may be a 5xx or carry a stack trace
 * (fuzz/dbk_hooks.py keeps every request on this machine: targets are the test's own, restores dry runs). Where
 * Schemathesis is not installed the file fails, saying so.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { writeSampleCache } from '../../sidecar/sample/sampleCache.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { startSidecar, tmpDir } from '../helpers/sidecar.js';
import { treeDiff, treeSnapshot } from './lib.js';

const ST = path.resolve(__dirname, '../../.cache/schemathesis/bin/st');
/** Seconds of fuzzing per sidecar (scripts/soak.sh gives it longer). */
const SECONDS = Number(process.env.RELIABILITY_FUZZ_SECONDS ?? 20);
if (!existsSync(ST))
  throw new Error(
    `Schemathesis is not installed at ${ST}: npm test installs it on first use; run scripts/install-schemathesis.sh to install it or see what is missing (it needs Python 3.11+ with venv)`,
  );

function fuzz(p: SidecarProcess, target: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const args = ['run', `${p.url}/openapi.json`, '-H', `Authorization: Bearer ${p.token}`, '--checks', 'not_a_server_error,no_stack_trace'];
    // One worker: hypothesis describes strategies with ast.parse, which CPython 3.11 does not survive in threads.
    args.push('--max-examples', '8', '--max-time', String(SECONDS), '--seed', '1', '-w', '1', '--no-color', '--suppress-health-check', 'all');
    // In a directory of its own: Schemathesis keeps a crash cache (.schemathesis/) in its working directory, which would
    // litter the clone and replay one run's failures in the next.
    const child = spawn(ST, args, {
      cwd: tmpDir('dbk-fuzz-st-'),
      env: { ...process.env, DBK_FUZZ_TARGET: target, SCHEMATHESIS_HOOKS: 'dbk_hooks', PYTHONPATH: path.join(__dirname, 'fuzz') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('close', (code) => resolve({ code, out }));
  });
}

describe('the API fuzzed from /openapi.json with Schemathesis', () => {
  let target: SidecarProcess;
  let source: SidecarProcess;
  let cache: string;
  let cacheBefore: Map<string, string>;

  before(async () => {
    const sample = await writeSampleCache({
      dir: path.join(tmpDir('dbk-fuzz-'), 'historical'),
      segments: 3,
      layout: 'nested',
      dataSources: ['wikipedia'],
      segmentSize: 8 * 1024,
      smooshChunkSize: 2147483647,
      seed: 111,
    });
    cache = path.dirname(sample.location);
    target = await startSidecar(['--store', path.join(tmpDir('dbk-fuzz-store-'), 'store')]);
    source = await startSidecar(['--config', sample.propertiesFile, '--target', target.url, '--node-name', 'fuzzed'], {
      token: target.token,
      env: { DRUID_BACKUP_AUTO_RESTORE: 'false' },
    });
    cacheBefore = treeSnapshot(cache);
  });
  after(async () => {
    await source?.stop();
    await target?.stop();
  });

  for (const which of ['target', 'source'] as const)
    test(`the ${which} answers every generated request without a 5xx or a stack trace`, async () => {
      const r = await fuzz(which === 'target' ? target : source, target.url);
      const summary = /(\d+) generated, .*$/m.exec(r.out)?.[0] ?? '';
      console.log(`schemathesis on the ${which}: ${summary}`);
      assert.equal(r.code, 0, r.out.slice(-6000));
      assert.match(summary, /generated/);
    });

  test('the fuzzing changed nothing in the cache', () => {
    assert.deepEqual(treeDiff(cacheBefore, treeSnapshot(cache)), []);
  });
});
