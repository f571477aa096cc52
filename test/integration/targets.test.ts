/**
 * Several targets with real processes (issue 10): target sidecars that are stopped, too small, slow (behind a
 * delaying TCP proxy) and near; segments go to the right one and GET /data/v1/targets says why; with copies=2
 * every segment ends on two targets, a target stopped still leaves a byte-identical restore, a byte flipped in one
 * copy makes the restore read the other; segments short of copies go again to a target with room; bad input is
 * refused with nothing sent; after a restore into deep storage the segments are marked used on a Coordinator
 * (a small HTTP server standing in for it here; the check against a real Druid Coordinator is pending).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { JobAccepted, SegmentsResponse, StoreCatalogResponse, TargetsResponse } from '../../sidecar/api.js';
import type { SampleResult } from '../../sidecar/sample/sampleCache.js';
import { READ_BATCH_PATH } from '../../sidecar/store/http/batch.js';
import { writeSampleCache } from '../../sidecar/sample/sampleCache.js';
import { runCli } from '../helpers/cli.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { newToken, startSidecar, tmpDir, waitFor } from '../helpers/sidecar.js';
import { treeDigests } from '../helpers/tree.js';

const SEGMENTS = 6;
const MANUAL_ONLY = { DRUID_BACKUP_AUTO_RESTORE: 'false', DRUID_BACKUP_ACTIVE: 'false' };

/** A TCP proxy that holds every chunk for `delayMs` in each direction: a far-away target. */
async function delayProxy(upstreamPort: number, delayMs: number): Promise<{ port: number; close(): void }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(upstreamPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    const pipe = (from: net.Socket, to: net.Socket) => {
      from.on('data', (d) => setTimeout(() => to.write(d), delayMs));
      from.on('end', () => setTimeout(() => to.end(), delayMs));
      from.on('error', () => to.destroy());
      from.on('close', () => setTimeout(() => to.destroy(), delayMs));
    };
    pipe(client, upstream);
    pipe(upstream, client);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/** A TCP proxy that, once armed, cuts a segment download (GET of a stored segment) after `afterBytes` of answer: a target dying mid-segment. */
async function cuttingProxy(upstreamPort: number): Promise<{ port: number; arm(afterBytes: number): void; cuts: () => number; close(): void }> {
  const sockets = new Set<net.Socket>();
  let limit = Infinity;
  let cuts = 0;
  const server = net.createServer((client) => {
    const upstream = net.connect(upstreamPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    let down = 0;
    let downloading = false;
    client.on('data', (d: Buffer) => {
      // A segment's download, alone or in a batch read.
      if (/^(GET \/data\/v1\/store\/segments\/[^?\s/]+|POST \/data\/v1\/store\/batch\/read) HTTP/m.test(d.toString('latin1'))) {
        downloading = true;
        down = 0;
      }
      upstream.write(d);
    });
    upstream.on('data', (d) => {
      down += d.length;
      if (downloading && down > limit) {
        cuts++;
        client.resetAndDestroy();
        upstream.destroy();
        return;
      }
      client.write(d);
    });
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      a.on('end', () => b.end());
      a.on('error', () => b.destroy());
      a.on('close', () => b.destroy());
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    arm: (n) => {
      limit = n;
    },
    cuts: () => cuts,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/** A port nothing listens on (a target that is stopped). */
async function deadPort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function stored(t: SidecarProcess): Promise<Set<string>> {
  const r = await t.get<StoreCatalogResponse>('/data/v1/store/segments?limit=1000');
  return new Set(r.items.map((s) => s.segmentId));
}

function sample(name: string, seed: number): Promise<SampleResult> {
  return writeSampleCache({
    dir: path.join(tmpDir(`dbk-targets-${name}-`), 'historical'),
    segments: SEGMENTS,
    layout: 'nested',
    dataSources: ['wikipedia'],
    segmentSize: 32 * 1024,
    smooshChunkSize: 16 * 1024,
    seed,
  });
}

/** Every file of a segment in a store directory. */
function storedFiles(storeDir: string, segmentId: string): string[] {
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(path.join(dir, e.name)) : e.name === 'manifest.json' ? [path.join(dir, e.name)] : [],
    );
  for (const m of walk(storeDir)) {
    if (JSON.parse(readFileSync(m, 'utf8')).segmentId === segmentId)
      return readdirSync(path.dirname(m))
        .filter((n) => n !== 'manifest.json')
        .map((n) => path.join(path.dirname(m), n));
  }
  throw new Error(`${segmentId} not in ${storeDir}`);
}

function wipe(location: string): void {
  rmSync(path.join(location, 'info_dir'), { recursive: true, force: true });
  for (const n of readdirSync(location)) rmSync(path.join(location, n), { recursive: true, force: true });
}

describe('choosing a target: availability, capacity, latency', () => {
  const token = newToken();
  let cache: SampleResult;
  let small: SidecarProcess;
  let slow: SidecarProcess;
  let near: SidecarProcess;
  let source: SidecarProcess;
  let proxy: { port: number; close(): void };
  let stoppedUrl: string;
  let slowUrl: string;

  before(async () => {
    cache = await sample('choice', 7);
    const root = tmpDir('dbk-targets-stores-');
    small = await startSidecar(['--store', path.join(root, 'small'), '--store-quota', '16KiB'], { token });
    slow = await startSidecar(['--store', path.join(root, 'slow')], { token });
    near = await startSidecar(['--store', path.join(root, 'near')], { token });
    proxy = await delayProxy(slow.port, 150);
    stoppedUrl = `http://127.0.0.1:${await deadPort()}`;
    slowUrl = `http://127.0.0.1:${proxy.port}`;
    const targets = JSON.stringify([stoppedUrl, small.url, { url: slowUrl, zone: 'far' }, { url: near.url, zone: 'here' }]);
    source = await startSidecar(['--config', cache.propertiesFile, '--targets', targets], { token, env: MANUAL_ONLY });
  });
  after(async () => {
    await source?.stop();
    for (const t of [small, slow, near]) await t?.stop();
    proxy?.close();
  });

  test('every segment goes to the near target; GET /data/v1/targets says why each other was not chosen', async () => {
    const r = await source.request<JobAccepted>('POST', '/data/v1/backup', {});
    assert.equal(r.status, 202, r.text);
    const job = await source.waitForJob(r.json.jobId);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
    assert.equal((await stored(near)).size, SEGMENTS);
    assert.equal((await stored(slow)).size, 0);
    assert.equal((await stored(small)).size, 0);

    const t = await source.get<TargetsResponse>('/data/v1/targets');
    const by = new Map(t.targets.map((x) => [x.url, x]));
    assert.equal(by.get(stoppedUrl)!.state, 'down');
    assert.match(by.get(stoppedUrl)!.lastChoice!.reason, /skipped: down/);
    assert.equal(by.get(small.url)!.quotaBytes, 16 * 1024);
    assert.match(by.get(small.url)!.lastChoice!.reason, /skipped: .* free, the segment needs .* with the safety margin/);
    assert.ok(by.get(slowUrl)!.rttMs! > by.get(near.url)!.rttMs!, `slow ${by.get(slowUrl)!.rttMs} ms, near ${by.get(near.url)!.rttMs} ms`);
    assert.match(by.get(slowUrl)!.lastChoice!.reason, /not chosen: RTT .* enough targets were nearer/);
    assert.equal(by.get(near.url)!.lastChoice!.chosen, true);
    assert.match(by.get(near.url)!.lastChoice!.reason, /chosen: RTT .* the nearest available target with room/);
    assert.equal(by.get(near.url)!.copies, SEGMENTS);

    const segs = await source.get<SegmentsResponse>('/data/v1/segments?limit=1000');
    for (const s of segs.items) assert.deepEqual([s.backup.copies, s.backup.targets], [1, [near.url]], s.id);

    const cli = await runCli(['targets', '--node', source.url, '--token', token]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /^TARGET\s+STATE\s+FREE\s+QUOTA\s+RTT\s+ZONE\s+WEIGHT\s+COPIES\s+LAST CHOICE/);
    assert.match(cli.stdout, new RegExp(`${near.url}\\s+up\\s.*here.*chosen`));
    assert.match(cli.stdout, /copies wanted: 1; under-replicated segments: 0/);
  });

  test('a failed transfer moves to the next target: the near one stopped, a new backup lands on the slow one', async () => {
    await near.stop();
    const r = await source.request<JobAccepted>('POST', '/data/v1/backup', { segmentIds: [cache.segmentIds[0]] });
    assert.equal(r.status, 202, r.text);
    const job = await source.waitForJob(r.json.jobId);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
    assert.deepEqual([...(await stored(slow))], [cache.segmentIds[0]]);
    assert.equal((await stored(small)).size, 0, 'nothing sent where it does not fit');
  });
});

describe('copies=2: two targets per segment, restore with one stopped, a damaged copy', () => {
  const token = newToken();
  let cache: SampleResult;
  const targets: SidecarProcess[] = [];
  const storeDirs: string[] = [];
  let source: SidecarProcess;
  let original: Map<string, string>;

  before(async () => {
    cache = await sample('copies', 11);
    original = treeDigests(cache.location);
    const root = tmpDir('dbk-targets-copies-');
    for (const n of ['a', 'b', 'c']) {
      storeDirs.push(path.join(root, n));
      targets.push(await startSidecar(['--store', path.join(root, n)], { token }));
    }
    source = await startSidecar(['--config', cache.propertiesFile, '--targets', JSON.stringify(targets.map((t) => t.url)), '--copies', '2'], {
      token,
      env: { DRUID_BACKUP_AUTO_RESTORE: 'false', DRUID_BACKUP_RECONCILE_PERIOD: 'PT1S' },
    });
  });
  after(async () => {
    await source?.stop();
    for (const t of targets) await t.stop();
  });

  async function holders(id: string): Promise<number> {
    let n = 0;
    for (const t of targets) if (t.proc.exitCode === null && (await stored(t)).has(id)) n++;
    return n;
  }

  test('active backup keeps every segment on two targets; /data/v1/segments and /metrics agree', async () => {
    await waitFor('every segment on two targets', async () => {
      for (const id of cache.segmentIds) if ((await holders(id)) !== 2) return false;
      return true;
    });
    const segs = await waitFor('the copies in /data/v1/segments', async () => {
      const r = await source.get<SegmentsResponse>('/data/v1/segments?limit=1000');
      return r.items.every((s) => s.backup.copies === 2) ? r.items : undefined;
    });
    for (const s of segs) assert.equal(new Set(s.backup.targets).size, 2);
    assert.equal(await source.metric('druid_backup_segments_under_replicated'), 0);
  });

  test('one target stopped: segments short of a copy go to the target with room; the restore is byte-identical', async () => {
    await targets[0]!.stop();
    await waitFor(
      'every segment on two running targets again',
      async () => {
        for (const id of cache.segmentIds) if ((await holders(id)) !== 2) return false;
        return true;
      },
      30_000,
    );
    await waitFor('no segment under-replicated', async () => (await source.metric('druid_backup_segments_under_replicated')) === 0);

    wipe(cache.location);
    const r = await source.request<JobAccepted>('POST', '/data/v1/restore', {});
    assert.equal(r.status, 202, r.text);
    const job = await source.waitForJob(r.json.jobId);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
    assert.deepEqual(treeDigests(cache.location), original);
  });

  test('a byte flipped in one copy: the restore reads the other copy and the segment is byte-identical', async () => {
    const id = cache.segmentIds[1]!;
    const holder = [1, 2].find((i) => existsIn(storeDirs[i]!, id))!;
    flipByte(storeDirs[holder]!, id);

    wipe(cache.location);
    const r = await source.request<JobAccepted>('POST', '/data/v1/restore', { segmentIds: [id] });
    assert.equal(r.status, 202, r.text);
    const job = await source.waitForJob(r.json.jobId);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
    const restored = treeDigests(cache.location);
    for (const [p, d] of restored) assert.equal(d, original.get(p), p);
    assert.ok([...restored.keys()].some((p) => p.includes('00000.smoosh')));
  });
});

describe('copies=2: small segments restored from a set by batch reads', () => {
  const token = newToken();
  let cache: SampleResult;
  const targets: SidecarProcess[] = [];
  const storeDirs: string[] = [];
  let source: SidecarProcess;
  let original: Map<string, string>;
  let far: { port: number; close(): void } | undefined;

  before(async () => {
    cache = await sample('setbatch', 17);
    original = treeDigests(cache.location);
    const root = tmpDir('dbk-targets-setbatch-');
    for (const n of ['a', 'b']) {
      storeDirs.push(path.join(root, n));
      targets.push(await startSidecar(['--store', path.join(root, n)], { token }));
    }
    // a is near and in this node's zone, b far (60 ms each way): every segment is read from a first.
    far = await delayProxy(targets[1]!.port, 60);
    const spec = JSON.stringify([
      { url: targets[0]!.url, zone: 'z1' },
      { url: `http://127.0.0.1:${far.port}`, zone: 'z2' },
    ]);
    source = await startSidecar(['--config', cache.propertiesFile, '--targets', spec, '--copies', '2', '--zone', 'z1'], {
      token,
      env: { DRUID_BACKUP_AUTO_RESTORE: 'false' },
    });
    await waitFor('every segment on both targets', async () => {
      for (const t of targets) if ((await stored(t)).size !== SEGMENTS) return false;
      return true;
    });
  });
  after(async () => {
    await source?.stop();
    far?.close();
    for (const t of targets) await t.stop();
  });

  const requests = async (method: string, route: string) => {
    let n = 0;
    for (const t of targets) n += await t.metric('druid_backup_http_requests_total', { method, route });
    return n;
  };

  test('the group is read in one exchange with the copy read first; a damaged copy in it is read again from the other', async () => {
    const single = () => requests('GET', '/data/v1/store/segments/:id');
    const batches = () => requests('POST', READ_BATCH_PATH);
    wipe(cache.location);
    const before = [await batches(), await single()];
    let r = await source.request<JobAccepted>('POST', '/data/v1/restore', {});
    assert.equal(r.status, 202, r.text);
    let job = await source.waitForJob(r.json.jobId);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
    assert.deepEqual(treeDigests(cache.location), original);
    assert.equal((await batches()) - before[0]!, 1, 'one batch read for the group');
    assert.equal((await single()) - before[1]!, 0, 'no segment read alone');

    assert.equal(await targets[0]!.metric('druid_backup_http_requests_total', { method: 'POST', route: READ_BATCH_PATH }), 1, 'read from a, the near copy');

    // A byte flipped in one segment's copy on a: that segment fails its check in the batch and is read alone from b;
    // the rest still come in one exchange from a.
    const id = cache.segmentIds[3]!;
    flipByte(storeDirs[0]!, id);
    wipe(cache.location);
    const again = [await batches(), await single()];
    r = await source.request<JobAccepted>('POST', '/data/v1/restore', {});
    assert.equal(r.status, 202, r.text);
    job = await source.waitForJob(r.json.jobId);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
    assert.deepEqual(treeDigests(cache.location), original);
    assert.equal(job.progress.bytesDone, cache.bytes, 'what the damaged part counted is taken back');
    assert.equal((await batches()) - again[0]!, 1, 'one batch read');
    assert.equal(await targets[0]!.metric('druid_backup_http_requests_total', { method: 'POST', route: READ_BATCH_PATH }), 2, 'both from a');
    const singles = (t: SidecarProcess) => t.metric('druid_backup_http_requests_total', { method: 'GET', route: '/data/v1/store/segments/:id' });
    assert.equal(await singles(targets[0]!), 0, 'the damaged copy was not read again');
    // Read alone from b (and read again by the repair of a's copy, which the set starts once it found the damage).
    assert.ok((await singles(targets[1]!)) >= 1, 'the damaged one read alone, from the other copy');
    assert.equal((await single()) - again[1]!, await singles(targets[1]!));
  });
});

/** Flips a byte in the middle of the largest file of a stored copy: the copy is damaged, its size unchanged. */
function flipByte(storeDir: string, id: string): void {
  const file = storedFiles(storeDir, id).sort((a, b) => statSync(b).size - statSync(a).size)[0]!;
  const bytes = readFileSync(file);
  bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0xff;
  writeFileSync(file, bytes);
}

function existsIn(storeDir: string, id: string): boolean {
  try {
    return storedFiles(storeDir, id).length > 0;
  } catch {
    return false;
  }
}

describe('a target dying in the middle of a restore', () => {
  const token = newToken();
  let cache: SampleResult;
  let a: SidecarProcess;
  let b: SidecarProcess;
  let proxy: Awaited<ReturnType<typeof cuttingProxy>>;
  let far: { port: number; close(): void };
  let bUrl: string;
  let source: SidecarProcess;

  before(async () => {
    cache = await sample('midrestore', 13);
    const root = tmpDir('dbk-targets-mid-');
    a = await startSidecar(['--store', path.join(root, 'a')], { token });
    b = await startSidecar(['--store', path.join(root, 'b')], { token });
    proxy = await cuttingProxy(a.port);
    far = await delayProxy(b.port, 60);
    bUrl = `http://127.0.0.1:${far.port}`;
    // The cut target is near (and in this node's zone), the other far: restores read from the cut one first.
    const targets = JSON.stringify([
      { url: `http://127.0.0.1:${proxy.port}`, zone: 'z1' },
      { url: bUrl, zone: 'z2' },
    ]);
    source = await startSidecar(['--config', cache.propertiesFile, '--targets', targets, '--copies', '2', '--zone', 'z1'], {
      token,
      env: { DRUID_BACKUP_AUTO_RESTORE: 'false' },
    });
    await waitFor('every segment on both targets', async () => (await stored(a)).size === SEGMENTS && (await stored(b)).size === SEGMENTS);
  });
  after(async () => {
    await source?.stop();
    await a?.stop();
    await b?.stop();
    proxy?.close();
    far?.close();
  });

  test('the connection cut mid-answer: the segments are read again from the other copy, byte-identical', async () => {
    const original = treeDigests(cache.location);
    wipe(cache.location);
    proxy.arm(12 * 1024);
    const r = await source.request<JobAccepted>('POST', '/data/v1/restore', {});
    assert.equal(r.status, 202, r.text);
    const job = await source.waitForJob(r.json.jobId);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
    assert.ok(proxy.cuts() > 0, 'the nearest target was cut mid-segment');
    assert.deepEqual(treeDigests(cache.location), original);
    // Small segments go in one batch read, cut here: the batch's failure is logged, and so is a copy that failed alone.
    assert.ok(
      source.logLines().some((l) => l.msg === 'cannot read this copy; another copy will be used' || l.msg === 'a batch read failed; its segments are read again, each from the best copy'),
      'the fallback is logged',
    );
  });

  test('a target that comes back empty gets every segment again, without waiting for the next reconcile', async () => {
    await b.stop();
    await waitFor(
      'the stopped target shown down',
      async () => (await source.get<TargetsResponse>('/data/v1/targets')).targets.find((t) => t.url === bUrl)?.state === 'down',
    );
    await waitFor('segments short of a copy counted', async () => (await source.metric('druid_backup_segments_under_replicated')) === SEGMENTS);
    // Same port, a new empty store: the reconcile period is the default 5 minutes, so only its coming back can trigger the resend.
    b = await startSidecar(['--store', tmpDir('dbk-targets-back-')], { token, port: b.port });
    await waitFor('every segment on the target again', async () => (await stored(b)).size === SEGMENTS);
    await waitFor('nothing under-replicated', async () => (await source.metric('druid_backup_segments_under_replicated')) === 0);
  });
});
