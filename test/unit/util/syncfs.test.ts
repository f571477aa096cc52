import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { FilesystemSync } from '../../../sidecar/util/syncfs.js';
import { tmpDir } from '../../helpers/sidecar.js';

const ROOT = path.resolve(__dirname, '../../..');

/** The real `sync --file-system` of coreutils, on this machine's disk. */
test('FilesystemSync flushes the filesystem of a directory with the real sync', async () => {
  const dir = tmpDir('dbk-syncfs-');
  try {
    const fs = FilesystemSync.probe(dir);
    assert.ok(fs instanceof FilesystemSync, JSON.stringify(fs));
    writeFileSync(path.join(dir, 'a'), 'bytes');
    await fs.flush();
    await Promise.all([fs.flush(), fs.flush(), fs.flush()]);
    fs.close();
    const missing = FilesystemSync.probe(path.join(dir, 'no-such-dir'));
    assert.ok(!(missing instanceof FilesystemSync));
    assert.match(missing.unavailable, /no-such-dir/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * A `sync` of the test's own, first on PATH, that logs each call, takes 150 ms and fails while a file says so: what
 * the store relies on is how many flushes run, when, and what a failure does, which the real one cannot show.
 */
function withLoggingSync(dir: string): { calls: () => string[]; restore: () => void } {
  const bin = path.join(dir, 'bin');
  mkdirSync(bin);
  const log = path.join(dir, 'calls.log');
  writeFileSync(log, '');
  writeFileSync(
    path.join(bin, 'sync'),
    `#!/bin/sh\necho "start $*" >> "${log}"\nsleep 0.15\nif [ -e "${dir}/fail" ]; then echo "sync: error syncing '$3': Input/output error" >&2; echo "end" >> "${log}"; exit 1; fi\necho "end" >> "${log}"\n`,
  );
  chmodSync(path.join(bin, 'sync'), 0o755);
  const before = process.env.PATH;
  process.env.PATH = `${bin}:${before}`;
  return {
    calls: () => readFileSync(log, 'utf8').split('\n').filter(Boolean),
    restore: () => (process.env.PATH = before),
  };
}

/** Runs `body` with a FilesystemSync of a fresh directory whose `sync` is the logging one, and cleans up after. */
async function withFakeSync(body: (fs: FilesystemSync, dir: string, calls: () => string[]) => Promise<void>): Promise<void> {
  const dir = tmpDir('dbk-syncfs-');
  const fake = withLoggingSync(dir);
  try {
    const fs = FilesystemSync.probe(dir);
    assert.ok(fs instanceof FilesystemSync);
    await body(fs, dir, fake.calls);
    fs.close();
  } finally {
    fake.restore();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('FilesystemSync: calls during a flush share the next one, which starts after them; a failure is a clear error and the next flush works', () =>
  withFakeSync(async (fs, dir, calls) => {
    const probes = calls().length;
    const first = fs.flush();
    await new Promise((r) => setTimeout(r, 50));
    // Arrived while the first runs: it may have missed their writes, so they wait for one more, together.
    const during = [fs.flush(), fs.flush(), fs.flush(), fs.flush()];
    let firstDone = false;
    void first.then(() => (firstDone = true));
    await Promise.all(during);
    assert.ok(firstDone);
    assert.deepEqual(calls().slice(probes), ['start --file-system -- ' + dir, 'end', 'start --file-system -- ' + dir, 'end']);

    writeFileSync(path.join(dir, 'fail'), '');
    await assert.rejects(fs.flush(), (e: Error) => e.message.includes(`flushing the filesystem of ${dir} failed: failed 1: sync: error syncing`) && e.message.includes('Input/output error'));
    rmSync(path.join(dir, 'fail'));
    await fs.flush();
  }));

test('FilesystemSync: its shell killed, the flush waiting on it fails and the next one starts a new shell', () =>
  withFakeSync(async (fs, dir) => {
    await fs.flush();
    const waiting = fs.flush();
    await new Promise((r) => setTimeout(r, 50));
    const shells = spawnSync('pgrep', ['-f', `^sh -c while IFS= read .* ${dir}$`]);
    const pids = shells.stdout.toString().trim().split('\n').filter(Boolean);
    assert.equal(pids.length, 1, `one shell for this directory: ${shells.stdout}`);
    process.kill(Number(pids[0]), 'SIGKILL');
    await assert.rejects(waiting, /the flushing shell ended \(SIGKILL\)/);
    await fs.flush();
  }));

test('FilesystemSync: an idle shell does not keep a process alive, an awaited flush does', () => {
  const dir = tmpDir('dbk-syncfs-');
  try {
    const script = `
      const { FilesystemSync } = require(${JSON.stringify(path.join(ROOT, 'sidecar/util/syncfs.ts'))});
      const fs = FilesystemSync.probe(${JSON.stringify(dir)});
      fs.flush().then(() => fs.flush()).then(() => console.log('flushed'));
    `;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: ROOT, timeout: 30_000, encoding: 'utf8' });
    assert.equal(r.signal, null, `the process did not end by itself: ${r.stderr}`);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'flushed');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
