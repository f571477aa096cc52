import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { startSidecar } from '../helpers/sidecar.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'dbk-cli-'));

test('sample-cache 200 then scan --json lists 200 complete segments', async () => {
  const dir = tmp();
  const w = await runCli(['sample-cache', dir, '--segments', '200']);
  assert.equal(w.code, 0, w.stderr);
  const r = await runCli(['scan', '--config', path.join(dir, 'runtime.properties'), '--json']);
  assert.equal(r.code, 0, r.stderr);
  const scan = JSON.parse(r.stdout);
  assert.equal(scan.segments.length, 200);
  assert.ok(scan.segments.every((s: { state: string }) => s.state === 'complete'));
  assert.equal(scan.issues.length, 0);
  const human = await runCli(['scan', '--config', path.join(dir, 'runtime.properties')]);
  assert.match(human.stdout, /200 segments \(200 complete\)/);
});

test('--help lists every command and each command lists its flags', async () => {
  const h = await runCli(['--help']);
  assert.equal(h.code, 0);
  for (const c of ['sample-cache', 'scan']) assert.match(h.stdout, new RegExp(`\\b${c}\\b`));
  const s = await runCli(['sample-cache', '--help']);
  for (const f of ['--segments', '--layout', '--data-sources', '--segment-size', '--seed']) assert.match(s.stdout, new RegExp(f));
});

test('bad flags and bad config files give one clear line and a non-zero status', async () => {
  const dir = tmp();
  const cases: Array<[string[], RegExp]> = [
    [['sample-cache', dir, '--segments', 'many'], /"many" is not a whole number/],
    [['sample-cache', dir, '--layout', 'sideways'], /"sideways" is not one of nested, flat/],
    [['sample-cache', dir, '--segment-size', '1x'], /"1x" is not a size/],
    [['sample-cache', dir, '--data-sources', 'a/b'], /contains "\/"/],
    [['scan'], /required option '--config <file>'/],
    [['scan', '--config', path.join(dir, 'missing.properties')], /missing\.properties: no such file/],
    [['frobnicate'], /unknown command 'frobnicate'/],
  ];
  for (const [args, re] of cases) {
    const r = await runCli(args);
    assert.notEqual(r.code, 0, args.join(' '));
    assert.match(r.stderr, re, args.join(' '));
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
  const bad = path.join(dir, 'bad.properties');
  writeFileSync(bad, 'druid.segmentCache.locations=[{"path": oops}]\n');
  const r = await runCli(['scan', '--config', bad]);
  assert.equal(r.code, 2);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  assert.match(r.stderr, /bad\.properties:1: druid\.segmentCache\.locations: not valid JSON/);
});

test('a sidecar started before Druid made its cache location: refused at once, or waited for with --wait-for-cache', async () => {
  const dir = tmp();
  const cache = path.join(dir, 'var', 'segment-cache');
  const props = path.join(dir, 'runtime.properties');
  writeFileSync(props, `druid.segmentCache.locations=[{"path":"${cache}","maxSize":1000000}]\n`);
  const refused = await runCli(['sidecar', '--config', props, '--port', '0', '--bind', '127.0.0.1', '--state-dir', path.join(dir, 'state-1')]);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /cache location .*segment-cache does not exist/);
  const bad = await runCli(['sidecar', '--config', props, '--wait-for-cache', 'soon']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--wait-for-cache "soon" is not an ISO-8601 period/);

  // As the Druid extension starts it: the Historical creates the location a moment later.
  const creating = new Promise<void>((resolve) =>
    setTimeout(() => {
      mkdirSync(cache, { recursive: true });
      resolve();
    }, 1500),
  );
  const sc = await startSidecar(['--config', props, '--wait-for-cache', 'PT60S']);
  try {
    await creating;
    const waited = sc.logLines().filter((l) => l.msg === 'waiting for Druid to create the cache location');
    assert.equal(waited.length, 1, 'said once what it waits for');
    assert.equal(waited[0]!.location, cache);
    assert.equal((await sc.request('GET', '/status/health')).status, 200);
  } finally {
    await sc.stop();
  }
});
