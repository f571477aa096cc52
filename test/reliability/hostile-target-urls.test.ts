/**
 * Hostile target URLs against real sidecars: `file:` URLs behind control characters or in mixed case, in bodies
 * and query strings of every route that takes a target (the directory they name stays untouched); a target that
 * is not configured (a real loopback server that records every connection: it gets none); allow-list entries
 * against look-alike URLs (403 target_not_allowed); and 10,000 distinct target URLs, after which the sidecar's
 * peak memory stays below 300 MiB and /status/health answers within a second throughout.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { SampleResult } from '../../sidecar/sample/sampleCache.js';
import { writeSampleCache } from '../../sidecar/sample/sampleCache.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { startSidecar, tmpDir } from '../helpers/sidecar.js';
import { HEALTH_ADDED_MAX_MS, probeControl, probeHealth } from '../helpers/healthProbe.js';
import { treeDiff, treeSnapshot } from './lib.js';

type ErrorBody = { error: { code: string; message: string } };

/** A loopback HTTP server that records every connection and request made to it. */
async function recorder(): Promise<{ url: string; port: number; connections: () => number; requests: string[]; close(): void }> {
  let connections = 0;
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    res.statusCode = 500;
    res.end('{"error":{"code":"internal","message":"SECRET-BODY-OF-THE-RECORDER"}}');
  });
  server.on('connection', () => connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    connections: () => connections,
    requests,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

function peakMiB(pid: number): { peak: number; rss: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { peak: Math.round(kb('VmHWM') / 1024), rss: Math.round(kb('VmRSS') / 1024) };
}

async function sample(dir: string, seed: number): Promise<SampleResult> {
  return writeSampleCache({ dir, segments: 3, layout: 'nested', dataSources: ['wikipedia'], segmentSize: 8 * 1024, smooshChunkSize: 2147483647, seed });
}

describe('hostile target URLs', () => {
  let sandbox: string;
  let victim: string;
  let cache: SampleResult;
  let target: SidecarProcess;
  let source: SidecarProcess;
  let rec: Awaited<ReturnType<typeof recorder>>;
  let allowedRec: Awaited<ReturnType<typeof recorder>>;

  before(async () => {
    sandbox = tmpDir('dbk-hostile-urls-');
    victim = path.join(sandbox, 'victim');
    // A directory an attacker would like to become a store: its .tmp and files must survive untouched.
    mkdirSync(path.join(victim, '.tmp'), { recursive: true });
    writeFileSync(path.join(victim, '.tmp', 'precious.txt'), 'not the sidecar’s to delete');
    writeFileSync(path.join(victim, 'data.bin'), 'keep me');
    cache = await sample(path.join(sandbox, 'historical'), 17);
    rec = await recorder();
    allowedRec = await recorder();
    target = await startSidecar(['--store', path.join(sandbox, 'store')]);
    source = await startSidecar(['--config', cache.propertiesFile, '--target', target.url, '--node-name', 'hostile-urls'], {
      token: target.token,
      env: { DRUID_BACKUP_AUTO_RESTORE: 'false' },
      allowedTargets: ['s3://druid-backups/prod', 'http://*.backups.example.test:8484', `${allowedRec.url}/store`],
    });
  });
  after(async () => {
    await source?.stop();
    await target?.stop();
    rec?.close();
    allowedRec?.close();
  });

  /** Every way a request names a target: bodies of backup, restore (planned and run) and verify; query strings. */
  async function nameTarget(p: SidecarProcess, t: unknown): Promise<Array<[string, { status: number; text: string; json: ErrorBody }]>> {
    const out: Array<[string, { status: number; text: string; json: ErrorBody }]> = [];
    const id = encodeURIComponent(cache.segmentIds[0]!);
    for (const [route, body] of [
      ['/data/v1/backup', { target: t }],
      ['/data/v1/backup', { target: [target.url, t] }],
      ['/data/v1/restore', { target: t, dryRun: true }],
      ['/data/v1/restore', { target: t }],
      ['/data/v1/restore', { target: [target.url, t], dryRun: true }],
      ['/data/v1/store/verify', { target: t }],
    ] as const)
      out.push([`POST ${route} ${JSON.stringify(body)}`, await p.request<ErrorBody>('POST', route, body)]);
    if (typeof t === 'string')
      for (const route of ['/data/v1/store/segments', `/data/v1/store/segments/${id}/manifest`, '/data/v1/store/stats'])
        out.push([`GET ${route}?target=${JSON.stringify(t)}`, await p.request<ErrorBody>('GET', `${route}?target=${encodeURIComponent(t)}`)]);
    return out;
  }

  test('file: URLs behind control characters, white space or in mixed case are refused; the directory stays untouched', async () => {
    const before_ = treeSnapshot(victim);
    const jobsBefore = (await source.get<{ total: number }>('/data/v1/jobs')).total;
    const urls = [
      `file://${victim}`,
      `FiLe://${victim}`,
      `FILE://localhost${victim}`,
      `fIlE:${victim}`,
      ...['\u0000', '\u0001', '\u0008', '\t', '\n', '\r', '\u000b', '\u001f', ' ', '\u007f', '\u0085', '\u00a0', '\ufeff'].flatMap((c) => [
        `${c}file://${victim}`,
        `${c}FiLe://${victim}`,
        `file://${victim}${c}`,
        `fi${c}le://${victim}`,
      ]),
    ];
    let n = 0;
    for (const t of urls)
      for (const p of [source, target])
        for (const [what, r] of await nameTarget(p, t)) {
          n++;
          assert.equal(r.status, 400, `${what}: ${r.text}`);
          assert.equal(r.json.error.code, 'bad_request', what);
        }
    assert.ok(n > 1000, `${n} requests`);
    assert.deepEqual(treeDiff(before_, treeSnapshot(victim)), [], 'the directory is as it was: nothing made, nothing emptied');
    assert.equal(readFileSync(path.join(victim, '.tmp', 'precious.txt'), 'utf8'), 'not the sidecar’s to delete');
    assert.equal((await source.get<{ total: number }>('/data/v1/jobs')).total, jobsBefore, 'no job started');
  });

  test('an unconfigured target gets 403 target_not_allowed on every route, and not even a connection', async () => {
    const jobsBefore = (await source.get<{ total: number }>('/data/v1/jobs')).total;
    for (const t of [rec.url, `${rec.url}/`, `HTTP://127.0.0.1:${rec.port}/x`, `http://localhost:${rec.port}`]) {
      for (const [what, r] of await nameTarget(source, t)) {
        if (what.startsWith('POST /data/v1/store/verify') || what.startsWith('GET ')) {
          // Only buckets are answered for or verified from here: refused before the allow list is even asked.
          assert.equal(r.status, 400, `${what}: ${r.text}`);
          continue;
        }
        assert.equal(r.status, 403, `${what}: ${r.text}`);
        assert.equal(r.json.error.code, 'target_not_allowed', what);
        assert.match(r.json.error.message, /druid\.backup\.allowedTargets \(--allowed-targets\)/, what);
      }
    }
    // Nor as the Coordinator to tell about a restore into deep storage, beside an allowed target.
    for (const dryRun of [true, false]) {
      const c = await source.request<ErrorBody>('POST', '/data/v1/restore', { target: target.url, coordinator: rec.url, destination: 'deep-storage', dryRun });
      assert.equal(c.status, 403, c.text);
      assert.equal(c.json.error.code, 'target_not_allowed');
      assert.match(c.json.error.message, /set druid\.backup\.coordinator, or add it to druid\.backup\.allowedTargets/);
    }
    assert.equal(rec.connections(), 0, `the unconfigured target got ${rec.connections()} connections: ${rec.requests.join(', ')}`);
    assert.equal((await source.get<{ total: number }>('/data/v1/jobs')).total, jobsBefore, 'no job started');
  });

  test('allow-list entries against look-alike URLs: 403 target_not_allowed; an allowed one is used, and its body is not echoed', async () => {
    const lookAlikes = [
      's3://druid-backups-evil',
      's3://druid-backups-evil/prod',
      's3://druid-backups/production',
      's3://druid-backups/pro',
      's3://druid-backups',
      's3://evil/druid-backups/prod',
      'http://backups.example.test:8484',
      'http://evilbackups.example.test:8484',
      'http://x.backups.example.test.evil.test:8484',
      'http://x.backups.example.test:8485',
      'http://x.backups.example.test',
      'https://x.backups.example.test:8484',
      `${allowedRec.url}`,
      `${allowedRec.url}/storex`,
      `${allowedRec.url}/stor`,
      `${allowedRec.url}/other/store`,
      `http://localhost:${allowedRec.port}/store`,
      `http://127.0.0.2:${allowedRec.port}/store`,
      `https://127.0.0.1:${allowedRec.port}/store`,
    ];
    for (const t of lookAlikes)
      for (const [route, body] of [
        ['/data/v1/backup', { target: t }],
        ['/data/v1/restore', { target: t, dryRun: true }],
        ['/data/v1/restore', { target: [target.url, t], dryRun: true }],
      ] as const) {
        const r = await source.request<ErrorBody>('POST', route, body);
        assert.equal(r.status, 403, `${route} ${t}: ${r.text}`);
        assert.equal(r.json.error.code, 'target_not_allowed', `${route} ${t}`);
      }
    // A bucket answered for or verified by this node: the same list decides, before the bucket is opened.
    const id = encodeURIComponent(cache.segmentIds[0]!);
    for (const t of lookAlikes.filter((u) => u.startsWith('s3://'))) {
      for (const route of ['/data/v1/store/segments', `/data/v1/store/segments/${id}/manifest`, '/data/v1/store/stats']) {
        const r = await source.request<ErrorBody>('GET', `${route}?target=${encodeURIComponent(t)}`);
        assert.equal(r.status, 403, `GET ${route}?target=${t}: ${r.text}`);
        assert.equal(r.json.error.code, 'target_not_allowed');
      }
      const v = await source.request<ErrorBody>('POST', '/data/v1/store/verify', { target: t });
      assert.equal(v.status, 403, `verify ${t}: ${v.text}`);
    }
    for (const t of [`${allowedRec.url}/store/../x`, `${allowedRec.url}/store/%2e%2e/x`, `${allowedRec.url}/store\\..\\x`]) {
      const r = await source.request<ErrorBody>('POST', '/data/v1/restore', { target: t, dryRun: true });
      assert.equal(r.status, 400, `${t}: ${r.text}`);
    }
    assert.equal(allowedRec.connections(), 0, 'no look-alike reached the server behind the allowed entry');

    // Under the allowed path: the sidecar goes there, and reports its answer by status and code, not by its text.
    const ok = await source.request<ErrorBody>('POST', '/data/v1/restore', { target: `${allowedRec.url}/store/x`, dryRun: true });
    assert.ok(allowedRec.connections() > 0, 'the allowed target was asked');
    assert.ok(
      allowedRec.requests.every((r) => r.includes('/store/x/data/v1/')),
      allowedRec.requests.join(', '),
    );
    assert.equal(ok.status, 502, ok.text);
    assert.doesNotMatch(ok.text, /SECRET-BODY-OF-THE-RECORDER/);
    assert.match(ok.json.error.message, /answered 500 internal/);
  });
});

describe('10,000 requests naming 12,000 distinct target URLs', () => {
  test('the opened targets stay bounded: peak RSS below 300 MiB, no growth, /status/health within 3 s of an idle server throughout', async () => {
    const dir = tmpDir('dbk-many-urls-');
    const cache = await sample(path.join(dir, 'historical'), 23);
    const sc = await startSidecar(['--config', cache.propertiesFile, '--node-name', 'many-urls'], {
      allowedTargets: ['*'],
      env: { DRUID_BACKUP_AUTO_RESTORE: 'false' },
    });
    const pid = sc.proc.pid!;
    const health = probeHealth(sc.url, 'many-urls', 50);
    await health.started;
    const control = await probeControl(50);
    try {
      const N = 10_000;
      const CONCURRENCY = 16;
      let next = 0;
      let afterWarmup = 0;
      const statuses = new Map<number, number>();
      // Distinct loopback addresses and paths on port 1, where nothing listens: every URL opens a target of its own.
      const urlOf = (i: number) => `http://127.0.${1 + (i % 200)}.${1 + (Math.floor(i / 200) % 250)}:1/p${i}`;
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next < N) {
            const i = next++;
            // The last 2,000 name lists of two more distinct targets each (a set: the health of its members is kept too).
            const t = i < 8000 ? urlOf(i) : [urlOf(i), urlOf(i + N)];
            const r = await sc.request<ErrorBody>('POST', '/data/v1/restore', { target: t, dryRun: true });
            statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
            if (i === 1000) afterWarmup = peakMiB(pid).rss;
          }
        }),
      );
      const m = peakMiB(pid);
      assert.deepEqual([...statuses.keys()], [502], `every dry run finds its targets unreachable: ${JSON.stringify([...statuses])}`);
      assert.ok(m.peak < 300, `peak RSS ${m.peak} MiB`);
      assert.ok(m.rss - afterWarmup < 60, `RSS grew from ${afterWarmup} to ${m.rss} MiB over 9,000 more targets`);
      const h = await health.stop();
      const c = await control.stop();
      assert.deepEqual(h.failures, []);
      assert.deepEqual(c.failures, []);
      // What the flood adds to the machine's own latency, seen by the same probe of a server that does nothing else.
      assert.ok(h.slowestMs < c.slowestMs + HEALTH_ADDED_MAX_MS, `/status/health took ${h.slowestMs} ms, an idle server's answer ${c.slowestMs} ms`);
      assert.ok(h.checks > 10, `${h.checks} health checks`);
      console.log(
        `10,000 distinct targets: peak RSS ${m.peak} MiB, RSS ${afterWarmup} -> ${m.rss} MiB, slowest /status/health ${h.slowestMs} ms (an idle server's ${c.slowestMs} ms)`,
      );
    } finally {
      await health.stop().catch(() => undefined);
      await control.stop().catch(() => undefined);
      await sc.stop();
    }
  });
});
