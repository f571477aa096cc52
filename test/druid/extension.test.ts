/**
 * The Druid extension on a real Apache Druid cluster (issue 12): druid-backup in the loadList of every service,
 * the sidecar started by the Historical itself, the API called on Druid's own ports.
 *
 * One cluster (scripts/druid-dev-cluster.sh, port offset 100 unless DRUID_PORT_OFFSET says otherwise) serves every
 * test below, in order; the wikipedia data set gives the Historical its segments. Two target sidecars started
 * here keep the backups. The test-only extension druid-backup-test-auth installs Druid authentication that sends a
 * request carrying X-Test-Identity to an authorizer that refuses everything, and leaves all other traffic alone.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { createParser } from 'eventsource-parser';
import { normalizeNodeUrl, SidecarClient, SidecarRequestError } from '../../extension/client.js';
import { parseEvent } from '../../extension/live.js';
import type { SidecarEvent } from '../../sidecar/api.js';
import { HttpTarget } from '../../sidecar/store/http/target.js';
import { configureCluster, ingest, REPO_ROOT, startCluster, startService, stopCluster, stopService } from './cluster.js';
import type { DruidEnv } from './cluster.js';

const run = promisify(execFile);
const VERSION = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const SIDECAR_JS = path.join(REPO_ROOT, 'dist', 'sidecar.js');
const TOKEN = randomBytes(24).toString('hex');
const TOKEN_VARIABLE = 'DBK_EXTENSION_TEST_TOKEN';
const DENIED = { 'X-Test-Identity': 'mallory' };
const GiB = 1024 ** 3;

let tmp: string;
let druidHome: string;
let druid: DruidEnv;
let sidecarUrl: string;
/** Ports of the target sidecars started below, picked first: the Historical's sidecar allows exactly these. */
let targetPorts: number[];
const targets: Array<{ url: string; proc: ChildProcess }> = [];
const started: ChildProcess[] = [];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

interface Answer {
  status: number;
  body: string;
  json: () => Record<string, unknown>;
  headers: Headers;
}

async function call(method: string, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(url, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(120_000),
  });
  const text = await res.text();
  return { status: res.status, body: text, json: () => JSON.parse(text) as Record<string, unknown>, headers: res.headers };
}

/** A sidecar with a store, started here: a backup target. */
async function startTarget(name: string, port: number): Promise<string> {
  const dir = path.join(tmp, name);
  const proc = spawn(
    process.execPath,
    [
      SIDECAR_JS,
      'sidecar',
      '--store',
      path.join(dir, 'store'),
      '--state-dir',
      path.join(dir, 'state'),
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--token',
      TOKEN,
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const url = `http://127.0.0.1:${port}`;
  targets.push({ url, proc });
  await waitFor(`target ${name}`, async () => ((await fetch(`${url}/status/health`)).ok ? true : undefined), 30_000);
  return url;
}

async function storedIds(target: string): Promise<string[]> {
  const a = await call('GET', `${target}/data/v1/store/segments?limit=1000`, undefined, { authorization: `Bearer ${TOKEN}` });
  assert.equal(a.status, 200, a.body);
  return (a.json().items as Array<{ segmentId: string }>).map((s) => s.segmentId).sort();
}

/** The segments the Historical believes it serves: its info_dir. */
function servedIds(): string[] {
  return readdirSync(druid.DRUID_INFO_DIR).sort();
}

async function waitForJob(jobUrl: string): Promise<Record<string, unknown>> {
  return waitFor(`job ${jobUrl}`, async () => {
    const a = await call('GET', jobUrl);
    assert.equal(a.status, 200, a.body);
    const job = a.json();
    return ['succeeded', 'failed', 'cancelled'].includes(job.state as string) ? job : undefined;
  });
}

function historicalPid(): number {
  return Number(readFileSync(path.join(druid.DRUID_RUN_DIR, 'historical.pid'), 'utf8').trim());
}

/** Children of `pid` running sidecar.js. */
function sidecarChildren(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid && readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('sidecar.js')) out.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

const alive = (pid: number) => existsSync(`/proc/${pid}`) && !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));

/** Used heap of the Historical's JVM in bytes, from one `jstat -gc` line (survivors + eden + old generation). */
function heapUsed(line: string, header: string[]): number {
  const v = line.trim().split(/\s+/).map(Number);
  const at = (name: string) => v[header.indexOf(name)] ?? 0;
  return (at('S0U') + at('S1U') + at('EU') + at('OU')) * 1024;
}

async function heapAfterGc(pid: number): Promise<number> {
  await run('jcmd', [String(pid), 'GC.run']);
  const { stdout } = await run('jstat', ['-gc', String(pid)]);
  const [header, line] = stdout.trim().split('\n');
  return heapUsed(line!, header!.trim().split(/\s+/));
}

/** Samples the JVM's used heap every 200 ms until stopped; one jstat process, not one per sample. */
function sampleHeap(pid: number): { stop: () => Promise<number[]> } {
  const proc = spawn('jstat', ['-gc', String(pid), '200'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const samples: number[] = [];
  let header: string[] | undefined;
  let rest = '';
  proc.stdout.setEncoding('utf8').on('data', (d: string) => {
    rest += d;
    const lines = rest.split('\n');
    rest = lines.pop() ?? '';
    for (const l of lines) {
      if (l.includes('S0C')) header = l.trim().split(/\s+/);
      else if (header && l.trim()) samples.push(heapUsed(l, header));
    }
  });
  return {
    stop: () =>
      new Promise((resolve) => {
        proc.once('close', () => resolve(samples));
        proc.kill();
      }),
  };
}

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

describe('druid-backup as a Druid extension', { concurrency: false, timeout: 1_800_000 }, () => {
  before(async () => {
    assert.ok(existsSync(SIDECAR_JS), 'dist/sidecar.js: run npm run build');
    execFileSync(process.execPath, [path.join(REPO_ROOT, 'scripts', 'build-druid-extension.mjs')], { stdio: 'inherit' });
    tmp = mkdtempSync(path.join(os.tmpdir(), 'dbk-ext-'));
    const extensions = path.join(tmp, 'extensions');
    mkdirSync(extensions);
    cpSync(path.join(REPO_ROOT, 'dist', 'druid-extension', 'druid-backup'), path.join(extensions, 'druid-backup'), { recursive: true });
    cpSync(path.join(REPO_ROOT, 'dist', 'druid-extension-test', 'druid-backup-test-auth'), path.join(extensions, 'druid-backup-test-auth'), {
      recursive: true,
    });
    sidecarUrl = `http://127.0.0.1:${await freePort()}`;
    targetPorts = [await freePort(), await freePort(), await freePort()];
    // Where .ci/run looks for a cluster left running when a test process is killed.
    mkdirSync(path.join(REPO_ROOT, '.cache'), { recursive: true });
    druidHome = mkdtempSync(path.join(REPO_ROOT, '.cache', 'druid-roundtrip-extension-'));
    const portOffset = Number(process.env.DRUID_PORT_OFFSET ?? '100');
    configureCluster({
      DRUID_PORT_OFFSET: String(portOffset),
      DRUID_DEV_HOME: druidHome,
      DRUID_EXTENSIONS_DIR: extensions,
      DRUID_BACKUP_SIDECAR_CMD: undefined,
      [TOKEN_VARIABLE]: TOKEN,
      DRUID_COMMON_EXTRA: [
        'druid.auth.authenticatorChain=["testHeader","allowAll"]',
        'druid.auth.authenticator.testHeader.type=testHeader',
        'druid.auth.authenticator.testHeader.authorizerName=deny',
        'druid.auth.authenticator.allowAll.type=allowAll',
        'druid.auth.authorizers=["allowAll","deny"]',
        'druid.auth.authorizer.allowAll.type=allowAll',
        'druid.auth.authorizer.deny.type=testDeny',
        'druid.server.http.allowedHttpMethods=["HEAD"]',
      ].join('\n'),
      // No autostart line: the default starts the sidecar, since sidecar.js is in the extension folder.
      DRUID_HISTORICAL_EXTRA: [
        `druid.backup.sidecar.url=${sidecarUrl}`,
        `druid.backup.sidecar.token={"type":"environment","variable":"${TOKEN_VARIABLE}"}`,
        `druid.backup.stateDir=${tmp}/historical-sidecar`,
        `druid.backup.store=${tmp}/historical-store`,
        'druid.backup.bindAddress=127.0.0.1',
        // The targets the calls below name (through this Historical and through the Coordinator's fan-out).
        // And the Historical's own Druid URL, which VS Code offers as a target (scripts/druid-dev-cluster.sh: 8083 + offset).
        `druid.backup.allowedTargets=${JSON.stringify([...targetPorts, 8083 + portOffset].map((p) => `http://127.0.0.1:${p}`))}`,
        // The restore below is the one asked for, not the sidecar's own repair.
        'druid.backup.autoRestore=false',
      ].join('\n'),
    });
    druid = await startCluster();
    const answer = await ingest();
    assert.equal(answer.c, 39_244);
  });

  after(async () => {
    for (const p of started) p.kill();
    try {
      if (druid) await stopCluster();
    } finally {
      for (const t of targets) t.proc.kill();
      if (!process.env.DBK_KEEP_TMP) {
        if (tmp) rmSync(tmp, { recursive: true, force: true });
        if (druidHome) rmSync(druidHome, { recursive: true, force: true });
      }
    }
  });

  test('GET /status on the Historical lists druid-backup with its version', async () => {
    const status = (await call('GET', `${druid.DRUID_HISTORICAL_URL}/status`)).json();
    const modules = status.modules as Array<{ name: string; artifact?: string; version?: string }>;
    const ours = modules.filter((m) => m.artifact === 'druid-backup');
    assert.deepEqual(
      ours.map((m) => m.name).sort(),
      ['io.github.druidbackup.CoordinatorModule', 'io.github.druidbackup.DataNodeModule', 'io.github.druidbackup.OverlordModule'],
      JSON.stringify(modules),
    );
    for (const m of ours) assert.equal(m.version, VERSION);
  });

  test('the Historical started its sidecar, with its own configuration and the token', async () => {
    const children = await waitFor('the autostarted sidecar', () => {
      const c = sidecarChildren(historicalPid());
      return c.length === 1 ? c : undefined;
    });
    assert.equal(children.length, 1);
    assert.match(readFileSync(`/proc/${children[0]}/cmdline`, 'utf8'), new RegExp(`--config\0${druid.DRUID_HISTORICAL_RUNTIME_PROPERTIES}`));
    assert.doesNotMatch(readFileSync(`/proc/${children[0]}/cmdline`, 'utf8'), new RegExp(TOKEN), 'the token is not on the command line');
    const node = (await call('GET', `${druid.DRUID_HISTORICAL_URL}/data/v1/node`)).json();
    assert.deepEqual([...(node.roles as string[])].sort(), ['source', 'target']);
    assert.equal((node.druid as { service?: string }).service, 'druid/historical');
    const direct = await call('GET', `${sidecarUrl}/data/v1/node`);
    assert.equal(direct.status, 401, 'the sidecar itself still wants its token');
  });

  test("the seed's call on the Historical's port: POST :8083/data/v1/backup backs up every segment it serves", async () => {
    const target = await startTarget('target-1', targetPorts[0]!);
    const events = await fetch(`${druid.DRUID_HISTORICAL_URL}/data/v1/events`, { signal: AbortSignal.timeout(300_000) });
    assert.equal(events.status, 200);
    assert.match(events.headers.get('content-type') ?? '', /text\/event-stream/);

    const accepted = await call('POST', `${druid.DRUID_HISTORICAL_URL}/data/v1/backup`, { target });
    assert.equal(accepted.status, 202, accepted.body);
    const jobId = accepted.json().jobId as string;
    assert.ok(jobId);

    // The job's events arrive through Druid while it runs: the proxy streams, it does not wait for the end.
    const reader = events.body!.getReader();
    let seen = '';
    await waitFor('a job event through the Historical', async () => {
      const { value, done } = await reader.read();
      if (done) throw new Error('the event stream ended');
      seen += Buffer.from(value).toString('utf8');
      return seen.includes(jobId) ? true : undefined;
    });
    await reader.cancel();

    const job = await waitForJob(`${druid.DRUID_HISTORICAL_URL}/data/v1/jobs/${jobId}`);
    assert.equal(job.state, 'succeeded', JSON.stringify(job));
    const served = servedIds();
    assert.ok(served.length >= 5, `the Historical serves ${served.length} segments`);
    assert.deepEqual(await storedIds(target), served);

    const stored = await call('HEAD', `${druid.DRUID_HISTORICAL_URL}/data/v1/store/segments/${encodeURIComponent(served[0]!)}`);
    assert.equal(stored.status, 404, 'HEAD reaches the sidecar (this node keeps no copy of it)');
  });

  test('POST :8081/data/v1/backup on the Coordinator backs up the cluster through every Historical', async () => {
    const target = await startTarget('target-2', targetPorts[1]!);
    const served = servedIds();
    const accepted = await call('POST', `${druid.DRUID_COORDINATOR_URL}/data/v1/backup`, { target, dataSource: 'wikipedia' });
    assert.equal(accepted.status, 202, accepted.body);
    const body = accepted.json() as { jobId: string; nodes: Array<{ node: string; jobId?: string; segments: number }> };
    assert.match(body.jobId, /^cluster-/);
    assert.deepEqual(
      body.nodes.map((n) => [n.node, n.segments]),
      [[`localhost:${druid.DRUID_HISTORICAL_PORT}`, served.length]],
    );
    const job = await waitForJob(`${druid.DRUID_COORDINATOR_URL}/data/v1/jobs/${body.jobId}`);
    assert.equal(job.state, 'succeeded', JSON.stringify(job));
    const progress = job.progress as { segmentsTotal: number; segmentsDone: number; segmentsSkipped: number };
    assert.equal(progress.segmentsTotal, served.length);
    assert.equal(progress.segmentsDone + progress.segmentsSkipped, served.length);
    assert.deepEqual(await storedIds(target), served);

    const list = (await call('GET', `${druid.DRUID_COORDINATOR_URL}/data/v1/jobs`)).json() as { items: Array<{ id: string }> };
    assert.ok(list.items.some((j) => j.id === body.jobId));
    const cancelled = await call('DELETE', `${druid.DRUID_COORDINATOR_URL}/data/v1/jobs/${body.jobId}`);
    assert.equal(cancelled.status, 200, cancelled.body);
    assert.equal(cancelled.json().state, 'succeeded', 'a finished job stays as it ended');
    assert.equal((await call('GET', `${druid.DRUID_COORDINATOR_URL}/data/v1/jobs/cluster-nope`)).status, 404);
    const none = await call('POST', `${druid.DRUID_COORDINATOR_URL}/data/v1/backup`, { target, dataSource: 'koalas' });
    assert.equal(none.status, 404);
    assert.match(none.json().error ? JSON.stringify(none.json().error) : '', /no Historical serves a segment matching dataSource koalas/);
    const bad = await call('POST', `${druid.DRUID_COORDINATOR_URL}/data/v1/backup`, { target, interval: 'yesterday' });
    assert.equal(bad.status, 400, bad.body);
  });

  test("a restore through the Historical's port puts back a deleted segment byte-identical", async () => {
    const target = targets[0]!.url;
    const id = servedIds()[0]!;
    const descriptor = JSON.parse(readFileSync(path.join(druid.DRUID_INFO_DIR, id), 'utf8')) as {
      dataSource: string;
      interval: string;
      version: string;
      shardSpec: { partitionNum: number };
    };
    const dir = path.join(
      druid.DRUID_SEGMENT_CACHE_DIR,
      descriptor.dataSource,
      descriptor.interval.replace('/', '_'),
      descriptor.version,
      String(descriptor.shardSpec.partitionNum),
    );
    const digest = (f: string) =>
      createHash('sha256')
        .update(readFileSync(path.join(dir, f)))
        .digest('hex');
    const files = readdirSync(dir).sort();
    const before = Object.fromEntries(files.map((f) => [f, digest(f)]));
    rmSync(dir, { recursive: true });

    const accepted = await call('POST', `${druid.DRUID_HISTORICAL_URL}/data/v1/restore`, { target, segmentIds: [id] });
    assert.equal(accepted.status, 202, accepted.body);
    const job = await waitForJob(`${druid.DRUID_HISTORICAL_URL}/data/v1/jobs/${accepted.json().jobId as string}`);
    assert.equal(job.state, 'succeeded', JSON.stringify(job));
    assert.deepEqual(readdirSync(dir).sort(), files);
    assert.deepEqual(Object.fromEntries(files.map((f) => [f, digest(f)])), before);

    const plan = await call('POST', `${druid.DRUID_COORDINATOR_URL}/data/v1/restore`, { target, segmentIds: [id], dryRun: true });
    assert.equal(plan.status, 200, plan.body);
    const p = plan.json() as { segments: Array<{ segmentId: string; node: string }> };
    assert.deepEqual(
      p.segments.map((s) => [s.segmentId, s.node]),
      [[id, `localhost:${druid.DRUID_HISTORICAL_PORT}`]],
    );
  });

  test("Druid's authorization guards every call: the denying authorizer gets 403 and nothing runs", async () => {
    const target = targets[0]!.url;
    const jobsBefore = (await call('GET', `${druid.DRUID_HISTORICAL_URL}/data/v1/jobs`)).json().total;
    const clusterJobsBefore = (await call('GET', `${druid.DRUID_COORDINATOR_URL}/data/v1/jobs`)).json().total;
    for (const [method, url, body] of [
      ['POST', `${druid.DRUID_HISTORICAL_URL}/data/v1/backup`, { target }],
      ['POST', `${druid.DRUID_HISTORICAL_URL}/data/v1/restore`, { target, segmentIds: [servedIds()[0]] }],
      ['GET', `${druid.DRUID_HISTORICAL_URL}/data/v1/segments`, undefined],
      ['DELETE', `${druid.DRUID_HISTORICAL_URL}/data/v1/jobs/x`, undefined],
      ['POST', `${druid.DRUID_COORDINATOR_URL}/data/v1/backup`, { target }],
      ['GET', `${druid.DRUID_COORDINATOR_URL}/data/v1/jobs`, undefined],
      ['GET', `${druid.DRUID_COORDINATOR_URL}/druid-ext/druid-backup/v1/offsets?dataSource=wikipedia`, undefined],
    ] as const) {
      const a = await call(method, url, body, DENIED);
      assert.equal(a.status, 403, `${method} ${url}: ${a.body}`);
      assert.match(a.body, new RegExp(`testDeny refuses mallory ${method === 'GET' ? 'READ' : 'WRITE'} on STATE`));
    }
    assert.equal((await call('GET', `${druid.DRUID_HISTORICAL_URL}/data/v1/jobs`)).json().total, jobsBefore);
    assert.equal((await call('GET', `${druid.DRUID_COORDINATOR_URL}/data/v1/jobs`)).json().total, clusterJobsBefore);
    // The committed offsets the Overlord's part of the extension serves (the Coordinator runs the Overlord here).
    const offsets = await call('GET', `${druid.DRUID_COORDINATOR_URL}/druid-ext/druid-backup/v1/offsets?dataSource=wikipedia`);
    assert.equal(offsets.status, 200, offsets.body);
    // Every allowed call above went through Druid's check that each response was authorized.
    for (const log of ['historical.log', 'coordinator.log']) {
      assert.doesNotMatch(readFileSync(path.join(druid.DRUID_LOG_DIR, log), 'utf8'), /did not have an authorization check/);
    }
  });

  test("VS Code's own API client adds the Historical by its Druid URL and does its work through :8083", async () => {
    // What Add Node does with http://historical:8083/: the URL normalized, then the node probed with GET /data/v1/node.
    // The token VS Code asks for is Druid's business here (the test cluster lets an anonymous caller through); it
    // is not the sidecar's, which only the extension sends.
    const url = normalizeNodeUrl(`${druid.DRUID_HISTORICAL_URL}/`);
    assert.equal(url, druid.DRUID_HISTORICAL_URL);
    const vscodeToken = randomBytes(16).toString('hex');
    const lines: string[] = [];
    const log = { info: (m: string) => lines.push(m), error: (m: string) => lines.push(m) };
    const client = new SidecarClient(url, { token: vscodeToken, timeoutMs: 60_000, log });

    const info = await client.node();
    assert.deepEqual([...info.roles].sort(), ['source', 'target']);
    assert.equal(info.druid.service, 'druid/historical');
    assert.equal(info.druid.plaintextPort, Number(druid.DRUID_HISTORICAL_PORT));

    // Every segment the Historical loaded after Druid started the sidecar: the Nodes view.
    const segments = await client.allSegments();
    assert.deepEqual(segments.map((s) => s.id).sort(), servedIds());

    // Live updates: the event stream through Druid, parsed as the extension parses it.
    const abort = new AbortController();
    const seen: SidecarEvent[] = [];
    const stream = await client.events(abort.signal);
    const parser = createParser({
      onEvent: (m) => {
        const ev = parseEvent(m.data);
        if (ev) seen.push(ev);
      },
    });
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => parser.feed(chunk));
    stream.on('error', () => undefined);

    const waitForClientJob = (id: string) =>
      waitFor(`job ${id} through the client`, async () => {
        const job = await client.job(id);
        return ['succeeded', 'failed', 'cancelled'].includes(job.state) ? job : undefined;
      });

    try {
      // Back Up Now to a target sidecar.
      const target = await startTarget('vscode-target', targetPorts[2]!);
      const { jobId } = await client.backup({ target, dataSource: 'wikipedia' });
      const job = await waitForClientJob(jobId);
      assert.equal(job.state, 'succeeded', JSON.stringify(job));
      assert.deepEqual(await storedIds(target), servedIds());
      await waitFor('the job events through the client', () =>
        seen.some((e) => e.type === 'job' && e.job.id === jobId && e.job.state === 'succeeded') ? true : undefined,
      );
      assert.ok(
        seen.some((e) => e.type === 'segment' && e.segment.backup.state === 'backedUp' && e.segment.backup.target === target),
        'segment events tell the Nodes view of each backup',
      );
      assert.ok(
        (await client.jobs()).some((j) => j.id === jobId),
        'the Jobs view lists it',
      );
      const afterBackup = await client.allSegments();
      assert.ok(
        afterBackup.every((s) => s.backup.state === 'backedUp' && s.backup.target === target),
        JSON.stringify(afterBackup.map((s) => s.backup)),
      );
      // Cancel Job on a finished job: DELETE through Druid, the job stays as it ended.
      assert.equal(((await client.cancelJob(jobId)) as { state?: string }).state, 'succeeded');

      // The Historical is a target too: VS Code offers its URL as one (Back Up Now → pick a target), so a backup may
      // name the Druid URL; the Backups view then reads its store, a manifest and a verify through the same port.
      const id = servedIds()[0]!;
      const own = await waitForClientJob((await client.backup({ target: url, segmentIds: [id] })).jobId);
      assert.equal(own.state, 'succeeded', JSON.stringify(own));
      const stored = await client.allStored();
      const mine = stored.find((s) => s.segmentId === id);
      assert.ok(mine, JSON.stringify(stored));
      assert.equal(mine.dataSource, 'wikipedia');
      const manifest = await client.manifest(id);
      assert.equal(manifest.segmentId, id);
      assert.equal(manifest.digest, mine.digest);
      const verified = await waitForClientJob((await client.verify({ segmentIds: [id] })).jobId);
      assert.equal(verified.state, 'succeeded', JSON.stringify(verified));
      assert.equal(verified.progress.segmentsFailed, 0, JSON.stringify(verified));

      // Restore…: the dry-run plan, then the job, for a segment deleted from the cache; back byte-identical.
      const last = servedIds().at(-1)!;
      const segment = afterBackup.find((s) => s.id === last)!;
      const dir = path.join(druid.DRUID_SEGMENT_CACHE_DIR, segment.dataSource, segment.interval.replace('/', '_'), segment.version, String(segment.partition));
      const digests = () =>
        Object.fromEntries(
          readdirSync(dir)
            .sort()
            .map((f) => [
              f,
              createHash('sha256')
                .update(readFileSync(path.join(dir, f)))
                .digest('hex'),
            ]),
        );
      const before = digests();
      rmSync(dir, { recursive: true });
      const plan = await client.restorePlan({ target, segmentIds: [last], destination: 'cache' });
      assert.deepEqual(
        plan.segments.map((s) => [s.segmentId, s.action]),
        [[last, 'restore']],
        JSON.stringify(plan),
      );
      const restored = await waitForClientJob((await client.restore({ target, segmentIds: [last], destination: 'cache' })).jobId);
      assert.equal(restored.state, 'succeeded', JSON.stringify(restored));
      assert.deepEqual(digests(), before);

      // The sidecar's own errors come through Druid as the client reads them.
      await assert.rejects(client.job('backup-nope-00000000'), (e: unknown) => e instanceof SidecarRequestError && e.status === 404 && e.code === 'not_found');
    } finally {
      abort.abort();
    }

    // Every request is logged by its Druid URL; no token is in the log.
    assert.ok(lines.length > 10 && lines.every((l) => l.includes(url)), lines.join('\n'));
    assert.ok(!lines.some((l) => l.includes(vscodeToken) || l.includes(TOKEN)));
  });

  test("a 1 GiB segment file goes through the Historical's port with the JVM's heap unchanged", async (t) => {
    const pid = historicalPid();
    const historical = new HttpTarget(druid.DRUID_HISTORICAL_URL, { idleTimeoutMs: 120_000 });
    const id = 'bigfile_2020-01-01T00:00:00.000Z_2020-01-02T00:00:00.000Z_2025-01-01T00:00:00.000Z';
    const small = (s: string | Buffer) => ({ size: Buffer.byteLength(s), open: () => Readable.from([Buffer.from(s)]) });
    const big = {
      size: GiB,
      open: () =>
        Readable.from(
          (function* () {
            for (let i = 0; i < GiB / 2 ** 20; i++) yield randomBytes(2 ** 20);
          })(),
        ),
    };
    const heapBefore = await heapAfterGc(pid);
    const sampler = sampleHeap(pid);
    const t0 = Date.now();
    const put = await historical.put({
      segmentId: id,
      descriptor: null,
      node: 'extension-test',
      files: [
        { name: 'version.bin', ...small(Buffer.from([0, 0, 0, 9])) },
        { name: 'meta.smoosh', ...small('v1,2147483647,1\n') },
        { name: '00000.smoosh', ...big },
        { name: 'factory.json', ...small('{"type":"mMapSegmentFactory"}') },
      ],
    });
    const putSeconds = (Date.now() - t0) / 1000;
    assert.equal(put.outcome, 'stored');
    const sent = put.files.find((f) => f.name === '00000.smoosh')!;

    const t1 = Date.now();
    const reader = await historical.read(id);
    const received: Record<string, string> = {};
    for await (const f of reader.files) {
      const h = createHash('sha256');
      for await (const c of f.chunks) for (const piece of Buffer.isBuffer(c) ? [c] : c) h.update(piece);
      received[f.name] = h.digest('hex');
    }
    const getSeconds = (Date.now() - t1) / 1000;
    const samples = await sampler.stop();
    const heapAfter = await heapAfterGc(pid);
    assert.equal(received['00000.smoosh'], sent.sha256);
    assert.equal(historicalPid(), pid, 'the Historical ran through it (it exits on OutOfMemoryError)');

    const peak = Math.max(...samples);
    const figures =
      `1 GiB through :${druid.DRUID_HISTORICAL_PORT}: PUT ${putSeconds.toFixed(1)} s, GET ${getSeconds.toFixed(1)} s; ` +
      `Historical heap (-Xmx384m) after a full GC: ${mib(heapBefore)} before, ${mib(heapAfter)} after; ` +
      `used during the transfers (${samples.length} samples): peak ${mib(peak)}`;
    t.diagnostic(figures);
    console.log(`[extension] ${figures}`);
    assert.ok(samples.length > 0);
    // A buffered body could not even fit: the whole heap is 384 MiB. What stays after a GC is what Druid keeps.
    assert.ok(heapAfter - heapBefore < 32 * 2 ** 20, `heap grew by ${mib(heapAfter - heapBefore)}`);
  });

  test('a sidecar that dies is started again by the Historical', async () => {
    const [first] = sidecarChildren(historicalPid());
    assert.ok(first);
    process.kill(first, 'SIGKILL');
    const [second] = await waitFor('a new sidecar', () => {
      const c = sidecarChildren(historicalPid()).filter((p) => p !== first);
      return c.length === 1 ? c : undefined;
    });
    await waitFor('the new sidecar to answer through Druid', async () =>
      (await call('GET', `${druid.DRUID_HISTORICAL_URL}/data/v1/node`)).status === 200 ? true : undefined,
    );
    assert.notEqual(second, first);
    // The first restart waits 1 s (the delay doubles after each quick exit: RestartBackoffTest). A sidecar started
    // before the Historical had created its cache location used to exit with status 2 at the first start and make it
    // 2 s; it now waits for the location (--wait-for-cache).
    const log = readFileSync(druid.DRUID_HISTORICAL_LOG, 'utf8');
    assert.doesNotMatch(log, /cache location .* does not exist/);
    assert.match(log, new RegExp(`druid-backup sidecar \\(pid ${first}\\) exited .*; restarting in 1 s`));
  });

  test("the sidecar comes and goes with the Historical; without it Druid's port answers 503 naming the URL", async () => {
    const [child] = sidecarChildren(historicalPid());
    assert.ok(child);
    await stopService('historical');
    await waitFor('the sidecar to stop with the Historical', () => (alive(child) ? undefined : true), 30_000);
    await assert.rejects(fetch(`${sidecarUrl}/status/health`), 'nothing listens on the sidecar port');

    appendFileSync(druid.DRUID_HISTORICAL_RUNTIME_PROPERTIES, '\ndruid.backup.sidecar.autostart=false\n');
    await startService('historical');
    assert.deepEqual(sidecarChildren(historicalPid()), []);
    const down = await call('POST', `${druid.DRUID_HISTORICAL_URL}/data/v1/backup`, { target: targets[0]!.url });
    assert.equal(down.status, 503, down.body);
    const error = down.json().error as { code: string; message: string };
    assert.equal(error.code, 'sidecar_unavailable');
    assert.ok(error.message.includes(`the druid-backup sidecar at ${sidecarUrl} does not answer`), error.message);
    // What VS Code shows for a node added by its Druid URL: Druid answers, the sidecar behind it does not.
    const vscode = new SidecarClient(druid.DRUID_HISTORICAL_URL, { token: 'druid-credential', timeoutMs: 60_000, log: { info: () => {}, error: () => {} } });
    await assert.rejects(
      vscode.node(),
      (e: unknown) =>
        e instanceof SidecarRequestError &&
        e.code === 'sidecar_unavailable' &&
        e.status === 503 &&
        e.message.includes(`the druid-backup sidecar at ${sidecarUrl}`),
    );

    // The other way to run it, as a bin/supervise line would: the same runtime.properties.
    const manual = spawn(process.execPath, [SIDECAR_JS, 'sidecar', '--config', druid.DRUID_HISTORICAL_RUNTIME_PROPERTIES], {
      cwd: druid.DRUID_HOME,
      env: { ...process.env, [TOKEN_VARIABLE]: TOKEN },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    started.push(manual);
    await waitFor('the hand-started sidecar through Druid', async () =>
      (await call('GET', `${druid.DRUID_HISTORICAL_URL}/data/v1/node`)).status === 200 ? true : undefined,
    );
    manual.kill('SIGTERM');
    await new Promise((r) => manual.once('exit', r));
    assert.equal((await call('GET', `${druid.DRUID_HISTORICAL_URL}/data/v1/jobs`)).status, 503);
  });
});
