/**
 * Bad input around several targets (issue 10), with real processes: an unknown target URL, a list with a target
 * twice, more copies than targets or zones, a target answering nonsense stats, bad druid.backup.targets settings:
 * each a clear error, and nothing sent anywhere. And markUsed after a restore into deep storage, against a small
 * HTTP server standing in for the Druid Coordinator (the check against a real Coordinator is pending).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { JobAccepted, RestorePlan, StoreCatalogResponse } from '../../sidecar/api.js';
import type { SampleResult } from '../../sidecar/sample/sampleCache.js';
import { writeSampleCache } from '../../sidecar/sample/sampleCache.js';
import { runCli } from '../helpers/cli.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { newToken, startSidecar, tmpDir } from '../helpers/sidecar.js';
import { treeDigests } from '../helpers/tree.js';

const SEGMENTS = 4;

async function listen(server: http.Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

async function deadUrl(): Promise<string> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return `http://127.0.0.1:${port}`;
}

describe('bad input with several targets: a clear error, nothing sent', () => {
  const token = newToken();
  let cache: SampleResult;
  let good: SidecarProcess;
  let other: SidecarProcess;
  let source: SidecarProcess;
  let nonsense: http.Server;
  let nonsenseUrl: string;
  const nonsenseCalls: string[] = [];

  before(async () => {
    const root = tmpDir('dbk-targets-input-');
    cache = await writeSampleCache({
      dir: path.join(root, 'historical'),
      segments: SEGMENTS,
      layout: 'nested',
      dataSources: ['wikipedia'],
      segmentSize: 16 * 1024,
      smooshChunkSize: 8 * 1024,
      seed: 5,
    });
    good = await startSidecar(['--store', path.join(root, 'good')], { token });
    other = await startSidecar(['--store', path.join(root, 'other')], { token });
    // Answers stats no store could have; any other call is recorded, and must never come.
    nonsense = http.createServer((req, res) => {
      if (req.url?.startsWith('/data/v1/store/stats')) {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ segments: 3, bytes: 10, freeBytes: -5 }));
        return;
      }
      nonsenseCalls.push(`${req.method} ${req.url}`);
      res.statusCode = 500;
      res.end();
    });
    nonsenseUrl = await listen(nonsense);
    // Any target may be named: the lists below mix good targets with dead and nonsense ones.
    source = await startSidecar(['--config', cache.propertiesFile], { token, allowedTargets: ['*'], env: { DRUID_BACKUP_AUTO_RESTORE: 'false' } });
  });
  after(async () => {
    await source?.stop();
    await good?.stop();
    await other?.stop();
    nonsense?.close();
  });

  async function held(t: SidecarProcess): Promise<number> {
    return (await t.get<StoreCatalogResponse>('/data/v1/store/segments')).total;
  }

  test('each bad request is refused before any byte is sent', async () => {
    const dead = await deadUrl();
    const cases: Array<[Record<string, unknown>, number, string, RegExp]> = [
      [{ target: [good.url, dead] }, 502, 'target_unreachable', new RegExp(`${dead.replace(/[.:/]/g, '\\$&')}.*unreachable`)],
      [{ target: [good.url, `${good.url}/`] }, 400, 'bad_request', /is listed twice/],
      [{ target: [good.url, other.url], copies: 3 }, 400, 'bad_request', /copies is 3 but only 2 targets are given/],
      [
        {
          target: [
            { url: good.url, zone: 'z1' },
            { url: other.url, zone: 'z1' },
          ],
          copies: 2,
        },
        400,
        'bad_request',
        /only 1 distinct zones/,
      ],
      [{ target: [good.url, nonsenseUrl] }, 502, 'target_error', /answers nonsense stats \(freeBytes is -5/],
      [{ target: [good.url, 'ftp://x'] }, 400, 'bad_request', /only http:\/\/ and https:\/\/ targets/],
      [{ target: [good.url, { url: other.url, weight: -1 }] }, 400, 'bad_request', /weight is a number above 0/],
      [{ target: [good.url, { url: other.url, rack: 'r1' }] }, 400, 'bad_request', /unknown field "rack"/],
      [{ target: [] }, 400, 'bad_request', /target/],
      [{}, 400, 'bad_request', /no target given and none configured/],
    ];
    for (const [body, status, code, re] of cases) {
      const r = await source.request<{ error: { code: string; message: string } }>('POST', '/data/v1/backup', body);
      assert.equal(r.status, status, `${JSON.stringify(body)}: ${r.text}`);
      assert.equal(r.json.error.code, code, JSON.stringify(body));
      assert.match(r.json.error.message, re, JSON.stringify(body));
    }
    assert.equal(await held(good), 0, 'nothing sent to the good target');
    assert.equal(await held(other), 0, 'nothing sent to the other target');
    assert.deepEqual(nonsenseCalls, [], 'only stats asked of the nonsense target');
  });

  test('bad druid.backup.targets settings stop the sidecar with one clear line', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--targets', 'http://a:8484'], /druid.backup.targets: not valid JSON/],
      [['--targets', '["http://a:8484", "http://a:8484/"]'], /http:\/\/a:8484 is listed twice/],
      [['--targets', '["http://a:8484", "http://b:8484"]', '--copies', '3'], /copies is 3 but only 2 targets are given/],
      [['--targets', '["http://a:8484"]', '--target', 'http://b:8484'], /druid.backup.target is set too/],
      [['--target', 'http://b:8484', '--copies', '2'], /there is only one target; list them in druid.backup.targets/],
    ];
    for (const [args, re] of cases) {
      const r = await runCli(['sidecar', '--config', cache.propertiesFile, '--port', '0', '--state-dir', tmpDir(), '--token', token, ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, re, args.join(' '));
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
  });

  test('a list of targets in the request: the nearest takes each segment; a restore from the list is byte-identical', async () => {
    const original = treeDigests(cache.location);
    const r = await source.request<JobAccepted>('POST', '/data/v1/backup', { target: [good.url, other.url] });
    assert.equal(r.status, 202, r.text);
    assert.equal((await source.waitForJob(r.json.jobId)).state, 'succeeded');
    assert.equal((await held(good)) + (await held(other)), SEGMENTS, 'one copy of each segment');
    rmSync(path.join(cache.location, 'info_dir'), { recursive: true, force: true });
    for (const n of readdirSync(cache.location)) rmSync(path.join(cache.location, n), { recursive: true, force: true });
    const back = await source.request<JobAccepted>('POST', '/data/v1/restore', { target: [good.url, other.url] });
    assert.equal(back.status, 202, back.text);
    assert.equal((await source.waitForJob(back.json.jobId)).state, 'succeeded');
    assert.deepEqual(treeDigests(cache.location), original);
  });
});

describe('markUsed on the Coordinator after a restore into deep storage', () => {
  const token = newToken();
  let cache: SampleResult;
  let target: SidecarProcess;
  let source: SidecarProcess;
  let coordinator: http.Server;
  let coordinatorUrl: string;
  const calls: Array<{ path: string; body: { segmentIds: string[] } }> = [];

  before(async () => {
    const root = tmpDir('dbk-targets-markused-');
    cache = await writeSampleCache({
      dir: path.join(root, 'historical'),
      segments: SEGMENTS,
      layout: 'nested',
      dataSources: ['wikipedia', 'web_logs'],
      segmentSize: 16 * 1024,
      smooshChunkSize: 8 * 1024,
      seed: 9,
    });
    coordinator = http.createServer((req, res) => {
      let text = '';
      req.on('data', (d) => (text += d));
      req.on('end', () => {
        const body = JSON.parse(text) as { segmentIds: string[] };
        calls.push({ path: `${req.method} ${req.url}`, body });
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ numChangedSegments: body.segmentIds.length }));
      });
    });
    coordinatorUrl = await listen(coordinator);
    target = await startSidecar(['--store', path.join(root, 'store')], { token });
    source = await startSidecar(['--config', cache.propertiesFile, '--target', target.url, '--coordinator', coordinatorUrl], {
      token,
      env: { DRUID_BACKUP_AUTO_RESTORE: 'false' },
    });
    for (;;) {
      if ((await target.get<StoreCatalogResponse>('/data/v1/store/segments')).total === SEGMENTS) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  after(async () => {
    await source?.stop();
    await target?.stop();
    coordinator?.close();
  });

  test('a dry run shows what would be marked and calls nothing; the restore marks every segment used, per data source', async () => {
    rmSync(cache.deepStorage, { recursive: true, force: true });
    const dry = await source.request<RestorePlan>('POST', '/data/v1/restore', { destination: 'deep-storage', dryRun: true });
    assert.equal(dry.status, 200, dry.text);
    assert.equal(dry.json.markUsed?.coordinator, coordinatorUrl);
    const planned = Object.values(dry.json.markUsed!.segments).flat().sort();
    assert.deepEqual(planned, [...cache.segmentIds].sort());
    assert.equal(calls.length, 0, 'a dry run calls nothing');

    const cli = await runCli(['restore', '--node', source.url, '--token', token, '--destination', 'deep-storage', '--dry-run']);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, new RegExp(`would mark \\d+ segments of wikipedia used on the Coordinator ${coordinatorUrl}`));

    const r = await source.request<JobAccepted>('POST', '/data/v1/restore', { destination: 'deep-storage' });
    assert.equal(r.status, 202, r.text);
    const job = await source.waitForJob(r.json.jobId);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
    // Asked of the Overlord's API (the Coordinator runs it here): Druid 33's Coordinator fails its forwarded markUsed.
    assert.deepEqual(calls.map((c) => c.path).sort(), [
      'POST /druid/indexer/v1/datasources/web_logs/markUsed',
      'POST /druid/indexer/v1/datasources/wikipedia/markUsed',
    ]);
    assert.deepEqual(calls.flatMap((c) => c.body.segmentIds).sort(), [...cache.segmentIds].sort());
    assert.deepEqual((job.result as { markUsed: { outcome: Record<string, unknown> } }).markUsed.outcome.wikipedia, {
      changed: calls.find((c) => c.path.includes('wikipedia'))!.body.segmentIds.length,
    });
  });

  test('markUsed is refused for a restore into the cache, and can be turned off', async () => {
    const bad = await source.request<{ error: { message: string } }>('POST', '/data/v1/restore', { markUsed: true, dryRun: true });
    assert.equal(bad.status, 400);
    assert.match(bad.json.error.message, /apply to a restore into deep storage/);
    const off = await source.request<RestorePlan>('POST', '/data/v1/restore', { destination: 'deep-storage', markUsed: false, dryRun: true });
    assert.equal(off.status, 200);
    assert.equal(off.json.markUsed, undefined);
  });
});
