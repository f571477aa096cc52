/**
 * Exhausting a sidecar's resources, as a bad target or a caller with the token would (issue 17): a target that
 * answers with 200 MiB, ten request bodies at the body limit, hundreds of jobs, 500 connections that send part of a request
 * and stall. Real sidecars on loopback, a real (hostile) HTTP server in this process. Throughout, every sidecar's
 * peak memory (VmHWM) stays below 300 MiB and `/status/health` answers within 1 s (asked every 200 ms), and the
 * half-open connections are closed within the headers timeout.
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Job } from '../../sidecar/api.js';
import type { SampleResult } from '../../sidecar/sample/sampleCache.js';
import { writeSampleCache } from '../../sidecar/sample/sampleCache.js';
import { HISTORY, REQUEST_SUMMARY_BYTES } from '../../sidecar/services/jobs.js';
import type { HealthProbe } from '../helpers/healthProbe.js';
import { HEALTH_ADDED_MAX_MS, probeControl, probeHealth } from '../helpers/healthProbe.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { request, startSidecar, tmpDir, waitFor } from '../helpers/sidecar.js';

const MIB = 1024 * 1024;
const HUGE = 200 * MIB;
const PEAK_LIMIT_MIB = 300;
/** The default of druid.backup.http.headersTimeout. */
const HEADERS_TIMEOUT_MS = 5000;

function peakMiB(p: SidecarProcess): number {
  const status = readFileSync(`/proc/${p.proc.pid}/status`, 'utf8');
  return Math.round(Number(/^VmHWM:\s+(\d+)/m.exec(status)?.[1] ?? 0) / 1024);
}

/**
 * A target that answers with far too much: stats and manifest pages as 200 MiB of JSON made while it is sent
 * (chunked, without a length), a manifest's error as 200 MiB declared up front. Records the bytes each answer got
 * out before the client hung up.
 */
function hostileTarget(): Promise<{ url: string; sent: Array<{ path: string; bytes: number }>; close: () => Promise<void> }> {
  const sent: Array<{ path: string; bytes: number }> = [];
  const chunk = Buffer.from(`{"segmentId":"${'x'.repeat(1000)}"},`);
  const server = http.createServer((req, res) => {
    const p = (req.url ?? '').split('?', 1)[0]!;
    const stream = (status: number, head: Buffer, headers: http.OutgoingHttpHeaders) => {
      let bytes = 0;
      res.writeHead(status, headers);
      const pump = () => {
        while (bytes < HUGE) {
          const b = bytes === 0 ? head : chunk;
          bytes += b.length;
          if (!res.write(b)) return void res.once('drain', pump);
        }
        res.end(']}');
      };
      res.on('close', () => sent.push({ path: p, bytes }));
      pump();
    };
    if (p === '/data/v1/store/stats' || p === '/data/v1/store/manifests' || p === '/data/v1/store/segments')
      return stream(200, Buffer.from('{"items":['), { 'content-type': 'application/json' });
    if (p.endsWith('/manifest'))
      return stream(500, Buffer.from('{"error":{"message":"'), { 'content-type': 'application/json', 'content-length': String(HUGE + 2) });
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"code":"not_found","message":"no"}}');
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
        sent,
        close: () => {
          server.closeAllConnections();
          return new Promise((r) => server.close(() => r()));
        },
      }),
    ),
  );
}

describe('hostile resources', () => {
  let sandbox: string;
  let sample: SampleResult;
  let hostile: Awaited<ReturnType<typeof hostileTarget>>;
  let target: SidecarProcess;
  /** Backs up to the hostile target. */
  let victim: SidecarProcess;
  /** Backs up to a real target; takes the big bodies, the many jobs and the half-open connections. */
  let busy: SidecarProcess;
  const watches: Array<{ name: string; probe: HealthProbe }> = [];
  let control: Awaited<ReturnType<typeof probeControl>>;
  const setPhase = (name: string) => watches.forEach((w) => w.probe.phase(name));
  const figures: Record<string, unknown> = {};
  /**
   * 8,000 ids of 1,000 characters: 8 MB, just below the default body limit (druid.backup.http.bodyLimit, 8 MiB). Long
   * ids rather than many short ones, so the bytes are what is tested here (parsing many ids is issue 17's
   * linear-parsing work, tested on its own).
   */
  const bigIds = Array.from(
    { length: 8_000 },
    (_, i) => `wikipedia_2024-01-01T00:00:00.000Z_2024-01-02T00:00:00.000Z_2024-06-01T00:00:00.000Z${'p'.repeat(900)}_${i + 1}`,
  );
  // Made before the health watches start, so this process is not busy while they measure.
  const bigBody = Buffer.from(JSON.stringify({ segmentIds: bigIds }));

  before(async () => {
    sandbox = tmpDir('dbk-hostile-res-');
    sample = await writeSampleCache({
      dir: path.join(sandbox, 'historical'),
      segments: 4,
      layout: 'nested',
      dataSources: ['wikipedia'],
      segmentSize: 8 * 1024,
      smooshChunkSize: 2147483647,
      seed: 17,
    });
    hostile = await hostileTarget();
    target = await startSidecar(['--store', path.join(sandbox, 'store')]);
    const env = { DRUID_BACKUP_AUTO_RESTORE: 'false' };
    victim = await startSidecar(['--config', sample.propertiesFile, '--target', hostile.url, '--node-name', 'victim'], { env });
    busy = await startSidecar(['--config', sample.propertiesFile, '--target', target.url, '--node-name', 'busy'], { token: target.token, env });
    for (const [p, name] of [
      [victim, 'victim'],
      [busy, 'busy'],
      [target, 'target'],
    ] as const) {
      // From a process of its own, so this test's own work does not count as the sidecar's latency.
      watches.push({ name, probe: probeHealth(p.url, name, 200) });
    }
    await Promise.all(watches.map((w) => w.probe.started));
    control = await probeControl(200);
  });

  after(async () => {
    await Promise.all(watches.map((w) => w.probe.stop()));
    await control?.stop();
    figures.peakMiB = { victim: peakMiB(victim), busy: peakMiB(busy), target: peakMiB(target) };
    console.log(`hostile-resources figures: ${JSON.stringify(figures)}`);
    await Promise.all([victim?.stop(), busy?.stop(), target?.stop()]);
    await hostile?.close();
  });

  test('a target answering 200 MiB: each call fails with target_answer_too_large after reading at most its limit', async () => {
    setPhase('answers');
    // The backup checks the target's stats first (a chunked answer without a length).
    const backup = await victim.request<{ error: { code: string; message: string } }>('POST', '/data/v1/backup', {});
    assert.equal(backup.status, 502, backup.text);
    assert.equal(backup.json.error.code, 'target_answer_too_large');
    assert.match(backup.json.error.message, /store\/stats is larger than 64 KiB/);

    // A restore plan lists the target's manifests, a page at a time.
    const plan = await victim.request<{ error: { code: string; message: string } }>('POST', '/data/v1/restore', { dryRun: true });
    assert.equal(plan.status, 502, plan.text);
    assert.equal(plan.json.error.code, 'target_answer_too_large');
    assert.match(plan.json.error.message, /store\/manifests is larger than 16 MiB/);

    // A manifest asked by id answers 500 with 200 MiB of error body, declared: the error says the status, no more.
    const byId = await victim.request<{ error: { code: string; message: string } }>('POST', '/data/v1/restore', {
      dryRun: true,
      segmentIds: [sample.segmentIds[0]],
    });
    assert.equal(byId.status, 502, byId.text);
    assert.equal(byId.json.error.code, 'target_error');
    assert.match(byId.json.error.message, /answered 500$/);
    assert.ok(byId.text.length < 2000, `a short error, not the body: ${byId.text.length} characters`);

    await waitFor('the hostile target to see every answer cut off', () => hostile.sent.some((s) => s.path.endsWith('/manifest')), 10_000);
    const most = Math.max(...hostile.sent.map((s) => s.bytes));
    figures.hostileAnswerMostSentMiB = Math.round((most / MIB) * 10) / 10;
    assert.ok(most < 64 * MIB, `the sidecar stopped reading early: at most ${most} bytes of an answer went out`);
    assert.equal((await victim.request('GET', '/status/health')).status, 200);
    assert.ok(peakMiB(victim) < PEAK_LIMIT_MIB, `victim peak ${peakMiB(victim)} MiB`);
  });

  test('ten request bodies at the body limit make ten jobs that keep a bounded summary; a body over it gets 413', async () => {
    setPhase('bodies');
    const body = bigBody;
    figures.bodyMB = Math.round(body.length / 1e6);
    assert.ok(body.length > 7.5 * MIB && body.length < 8 * MIB, `${body.length} bytes`);
    const jobIds: string[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await busy.request<{ jobId: string }>('POST', '/data/v1/backup', undefined, { raw: body, headers: { 'content-type': 'application/json' } });
      assert.equal(r.status, 202, r.text.slice(0, 300));
      jobIds.push(r.json.jobId);
    }
    for (const id of jobIds) await busy.waitForJob(id, 120_000);
    const job = await busy.get<Job>(`/data/v1/jobs/${jobIds[0]}`);
    assert.ok(Buffer.byteLength(JSON.stringify(job.request)) <= REQUEST_SUMMARY_BYTES, 'the job keeps a bounded summary of its request');
    assert.equal((job.request.truncated as Record<string, number>).segmentIds, bigIds.length);
    assert.deepEqual((job.request.segmentIds as string[])[0], bigIds[0]);

    const tooBig = Buffer.concat([body.subarray(0, body.length - 2), Buffer.from(`,"${'q'.repeat(MIB)}"]}`)]);
    const refused = await busy.request<{ error: { code: string } }>('POST', '/data/v1/backup', undefined, {
      raw: tooBig,
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(refused.status, 413, refused.text.slice(0, 300));
    assert.equal(refused.json.error.code, 'payload_too_large');
    figures.afterBigBodiesPeakMiB = peakMiB(busy);
    assert.ok(peakMiB(busy) < PEAK_LIMIT_MIB, `busy peak ${peakMiB(busy)} MiB`);
  });

  test('hundreds of jobs: the history stays bounded in memory and on disk, health answers throughout', async () => {
    setPhase('jobs');
    const n = HISTORY + 100;
    for (let i = 0; i < n; i += 25) {
      const batch = Array.from({ length: Math.min(25, n - i) }, () =>
        busy.request<{ jobId: string }>('POST', '/data/v1/backup', { segmentIds: [sample.segmentIds[i % sample.segmentIds.length]] }),
      );
      for (const r of await Promise.all(batch)) assert.equal(r.status, 202, r.text);
    }
    await waitFor(
      'every job to finish',
      async () => (await busy.get<{ items: Job[] }>('/data/v1/jobs')).items.every((j) => j.state !== 'queued' && j.state !== 'running'),
      120_000,
      250,
    );
    const list = await busy.get<{ items: Job[]; total: number }>('/data/v1/jobs');
    assert.ok(list.total <= HISTORY, `${list.total} jobs kept`);
    const file = path.join(busy.stateDir, 'jobs.json');
    await waitFor('jobs.json to hold the last job', () => (JSON.parse(readFileSync(file, 'utf8')) as Job[])[0]?.id === list.items[0]!.id, 10_000);
    figures.jobsJsonKiB = Math.round(statSync(file).size / 1024);
    assert.ok(statSync(file).size < 2 * MIB, `jobs.json is ${statSync(file).size} bytes`);
    assert.ok(peakMiB(busy) < PEAK_LIMIT_MIB, `busy peak ${peakMiB(busy)} MiB`);
  });

  test('500 half-open connections: dropped within the headers timeout, health answers again, memory bounded', async () => {
    setPhase('halfOpen');
    const sockets: net.Socket[] = [];
    const closedAt: number[] = [];
    const answered: string[] = [];
    const t0 = performance.now();
    const port = busy.port;
    await Promise.all(
      Array.from(
        { length: 500 },
        () =>
          new Promise<void>((resolve, reject) => {
            const s = net.connect(port, '127.0.0.1', () => {
              // A request line and some headers, then nothing: the blank line never comes.
              s.write(`GET /data/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${busy.token}\r\nX-Slow: `);
              resolve();
            });
            let got = '';
            s.on('data', (d: Buffer) => (got += d.toString('latin1')));
            s.on('error', () => undefined);
            s.on('close', () => {
              closedAt.push(performance.now() - t0);
              answered.push(got.slice(0, 12));
            });
            s.once('error', reject);
            sockets.push(s);
          }),
      ),
    );
    // While they are open the server still answers others (500 is below druid.backup.http.maxConnections).
    const during = performance.now();
    const h = await request(busy.url, null, 'GET', '/status/health', undefined);
    figures.healthDuringHalfOpenMs = Math.round(performance.now() - during);
    assert.equal(h.status, 200);

    await waitFor('every half-open connection to be closed by the sidecar', () => closedAt.length === 500, HEADERS_TIMEOUT_MS * 3, 50);
    const last = Math.max(...closedAt);
    figures.halfOpenAllClosedMs = Math.round(last);
    // The connection check runs every tenth of the timeout: all are gone by 1.1 times it, plus scheduling.
    assert.ok(last < HEADERS_TIMEOUT_MS * 1.1 + 1000, `the last half-open connection was closed after ${Math.round(last)} ms`);
    assert.ok(
      answered.every((a) => a === 'HTTP/1.1 408' || a === ''),
      `each was answered 408 or closed: ${[...new Set(answered)].join(', ')}`,
    );
    figures.halfOpenAnswered408 = answered.filter((a) => a === 'HTTP/1.1 408').length;
    assert.equal((await request(busy.url, null, 'GET', '/status/health', undefined)).status, 200);
    for (const s of sockets) s.destroy();
    figures.afterHalfOpenPeakMiB = peakMiB(busy);
    assert.ok(peakMiB(busy) < PEAK_LIMIT_MIB, `busy peak ${peakMiB(busy)} MiB`);
  });

  test('an unknown route answers 404 naming the route, not "[object Object]"', async () => {
    const r = await busy.request<{ error: { code: string; message: string } }>('GET', '/data/v1/nothing-here?x=1');
    assert.equal(r.status, 404);
    assert.deepEqual(r.json, { error: { code: 'not_found', message: 'no route GET /data/v1/nothing-here' } });
  });

  test('throughout: no sidecar exited, each peak below 300 MiB, health always within 3 s of an idle server', async () => {
    for (const p of [victim, busy, target]) assert.equal(p.proc.exitCode, null, 'still running');
    for (const p of [victim, busy, target]) assert.ok(peakMiB(p) < PEAK_LIMIT_MIB, `peak ${peakMiB(p)} MiB`);
    const health = await Promise.all(watches.map(async (w) => ({ name: w.name, ...(await w.probe.stop()) })));
    const idle = await control.stop();
    figures.slowestHealthMs = { ...Object.fromEntries(health.map((h) => [h.name, h.slowestByPhase])), idleServer: idle.slowestMs };
    assert.deepEqual(idle.failures, []);
    for (const h of health) {
      assert.deepEqual(h.failures, []);
      assert.ok(h.checks > 10, `${h.name}: ${h.checks} health checks`);
      // What the hostile load adds to the machine's own latency, seen by the same probe of a server doing nothing else.
      assert.ok(
        h.slowestMs < idle.slowestMs + HEALTH_ADDED_MAX_MS,
        `${h.name}: slowest health answer ${h.slowestMs} ms, an idle server's ${idle.slowestMs} ms`,
      );
    }
  });
});
