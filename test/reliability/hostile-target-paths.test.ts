/**
 * Climbing segment ids from every place an id comes from, against real sidecars: a hostile target (an HTTP server
 * written here that speaks the target API) serving ids such as version `v/../../../../escape` or data source `..`
 * and loadSpecs outside deep storage, restored from in both cache layouts into the cache, into deep storage and
 * into a directory; a bucket (VersityGW) holding a manifest with such an id; a `PUT` of such an id to a real target
 * sidecar. Each gets a clear 4xx or a failed segment with its reason, the good segment beside them is restored,
 * and nothing is written outside its root: a snapshot of a directory that encloses every root is taken before and
 * after, and every change must lie inside the destination's roots.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { Job, JobAccepted, RestorePlan } from '../../sidecar/api.js';
import { packSegment, packStored } from '../../sidecar/archive/pack.js';
import type { DataSegment } from '../../sidecar/druid/descriptor.js';
import { formatSegmentId } from '../../sidecar/druid/segmentId.js';
import type { SampleResult } from '../../sidecar/sample/sampleCache.js';
import { writeSampleCache } from '../../sidecar/sample/sampleCache.js';
import type { Manifest } from '../../sidecar/store/manifest.js';
import { segmentDigest } from '../../sidecar/store/manifest.js';
import { ObjectLayout } from '../../sidecar/store/object/layout.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { startSidecar, tmpDir } from '../helpers/sidecar.js';
import type { VersityGw } from '../helpers/versitygw.js';
import { startVersityGw } from '../helpers/versitygw.js';
import { HEALTH_ADDED_MAX_MS, probeControl, probeHealth } from '../helpers/healthProbe.js';
import { logged, treeDiff, treeSnapshot } from './lib.js';

/** Throughout each part: the sidecar's peak resident memory (VmHWM) stayed below 300 MiB, as the issue asks. */
function assertPeakBelow300(p: SidecarProcess | undefined): void {
  if (!p?.proc.pid || p.proc.exitCode !== null) return;
  const kib = Number(/^VmHWM:\s+(\d+)/m.exec(readFileSync(`/proc/${p.proc.pid}/status`, 'utf8'))?.[1] ?? 0);
  assert.ok(kib > 0 && kib < 300 * 1024, `peak RSS ${Math.round(kib / 1024)} MiB`);
}

const S = '2015-09-12T00:00:00.000Z';
const E = '2015-09-12T01:00:00.000Z';
const E2 = '2015-09-12T02:00:00.000Z';
/** These tests watch one restore at a time; neither active backup nor the automatic restore may act meanwhile. */
const QUIET = { DRUID_BACKUP_ACTIVE: 'false', DRUID_BACKUP_AUTO_RESTORE: 'false' };
/** An absolute place outside every test directory that the deepest climbs aim at. */
const FAR = `/tmp/dbk-climbed-${randomBytes(6).toString('hex')}`;

interface Part {
  dataSource: string;
  start: string;
  end: string;
  version: string;
  partition: number;
}

interface Served {
  manifest: Manifest;
  files: Record<string, Buffer>;
  /** The id itself is one no path may be made of (else only its fields or its loadSpec climb). */
  idClimbs: boolean;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A segment as a target serves it: its manifest taken as given (the id and fields a hostile target chose), its files. */
function served(p: Part, loadSpecPath: string, o: { id?: string; idClimbs?: boolean } = {}): Served {
  const files: Record<string, Buffer> = {
    'version.bin': Buffer.from([0, 0, 0, 9]),
    'meta.smoosh': Buffer.from('v1,2147483647,1\n'),
    '00000.smoosh': randomBytes(2048),
  };
  const infos = Object.entries(files).map(([name, b]) => ({ name, size: b.length, sha256: sha256(b) }));
  const interval = `${p.start}/${p.end}`;
  const descriptor: DataSegment = {
    dataSource: p.dataSource,
    interval,
    version: p.version,
    loadSpec: { type: 'local', path: loadSpecPath },
    shardSpec: { type: 'numbered', partitionNum: p.partition, partitions: 0 },
    binaryVersion: 9,
    size: infos.reduce((n, f) => n + f.size, 0),
  };
  const now = new Date().toISOString();
  return {
    files,
    idClimbs: o.idClimbs ?? true,
    manifest: {
      formatVersion: 1,
      segmentId: o.id ?? formatSegmentId(p),
      dataSource: p.dataSource,
      interval,
      version: p.version,
      partition: p.partition,
      descriptor,
      files: infos,
      size: descriptor.size!,
      digest: segmentDigest(infos),
      sources: [{ node: 'hostile', digest: segmentDigest(infos), at: now }],
      conflicts: [],
      createdAt: now,
      updatedAt: now,
    },
  };
}

/**
 * The climbs, each aimed at a name outside the roots inside the sandbox (or at FAR): from a nested cache location
 * `{sandbox}/historical/segment-cache`, four `..` after the version reach the sandbox; from a flat one, two.
 */
function hostileSegments(deep: string): Served[] {
  const p = (o: Partial<Part>): Part => ({ dataSource: 'wiki', start: S, end: E, version: 'v1', partition: 0, ...o });
  const inDeep = (name: string) => path.join(deep, name, 'index') + '/';
  return [
    served(p({ version: 'v/../../../../../escape-nested' }), inDeep('a')),
    served(p({ version: 'v/../../../../../../../../../../../../..' + FAR }), inDeep('b')),
    served(p({ version: '/../../escape-flat' }), inDeep('c')),
    served(p({ version: 'v/../../../escape-info' }), inDeep('d')),
    served(p({ dataSource: '..', version: 'escape-ds' }), inDeep('e')),
    served(p({ dataSource: '.', version: 'v' }), inDeep('f')),
    served(p({ version: '..' }), inDeep('g')),
    served(p({ dataSource: 'wi\\..\\..\\ki' }), inDeep('h')),
    served(p({ version: 'v\u0000x' }), inDeep('i')),
    served(p({ version: 'v\nx' }), inDeep('j')),
    served(p({ partition: -1 }), inDeep('k'), { idClimbs: false }),
    served(p({ start: '../../../escape-start' }), inDeep('l')),
    // An id that looks fine over fields that climb.
    served(p({ version: 'v/../../../../../escape-fields' }), inDeep('m'), { id: formatSegmentId(p({ version: 'fields' })), idClimbs: false }),
    // A plain id whose loadSpec leaves deep storage.
    served(p({ start: E, end: E2, version: 'deep-out' }), path.join(deep, '..', 'escape-deep', 'index') + '/', { idClimbs: false }),
    served(p({ start: E, end: E2, version: 'deep-far' }), `${FAR}/index/`, { idClimbs: false }),
  ];
}

/** A target that answers the store API with whatever segments it was given (store/http/target.ts is its client). */
async function hostileTarget(segments: Served[]): Promise<{ url: string; close(): Promise<void> }> {
  const byId = new Map(segments.map((s) => [s.manifest.segmentId, s]));
  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    const b = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(b) });
    res.end(b);
  };
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    if (u.pathname === '/status/health') return json(res, 200, { status: 'ok' });
    if (u.pathname === '/data/v1/store/stats') return json(res, 200, { segments: byId.size, bytes: 0, freeBytes: 1e12 });
    if (u.pathname === '/data/v1/store/manifests') return json(res, 200, { items: segments.map((s) => s.manifest), total: segments.length });
    const m = /^\/data\/v1\/store\/segments\/([^/]+)(\/manifest)?$/.exec(u.pathname);
    const s = m ? byId.get(decodeURIComponent(m[1]!)) : undefined;
    if (!s) return json(res, 404, { error: { code: 'not_found', message: 'no such segment' } });
    if (m![2]) return json(res, 200, s.manifest);
    const packed = packStored(s.manifest, (name) => Readable.from([s.files[name]!]));
    res.writeHead(200, { 'content-type': 'application/x-tar', 'content-length': packed.length });
    packed.stream.pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

function inside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

/** Every change between two snapshots of `sandbox` lies inside one of `roots`. */
function changesInside(sandbox: string, before: Map<string, string>, roots: string[], what: string): string[] {
  const diff = treeDiff(before, treeSnapshot(sandbox));
  const outside = diff.filter((line) => {
    const rel = line.slice(line.indexOf(': ') + 2);
    const abs = path.join(sandbox, rel);
    // A root itself may come to exist (info_dir of a directory destination).
    return !roots.some((r) => inside(r, abs) || abs === r);
  });
  assert.deepEqual(outside, [], `${what}: nothing written outside ${roots.join(', ')}`);
  assert.ok(!existsSync(FAR), `${what}: ${FAR} was created`);
  return diff;
}

function assertRefusedAll(plan: RestorePlan, hostile: Served[], what: string): void {
  const refused = new Map((plan.refused ?? []).map((r) => [r.segmentId, r.reason]));
  for (const h of hostile) {
    const reason = refused.get(h.manifest.segmentId);
    assert.ok(reason, `${what}: ${JSON.stringify(h.manifest.segmentId)} is refused in the plan (refused: ${JSON.stringify([...refused.keys()])})`);
    assert.match(reason, /is refused: |names segment|is not inside|outside the node's deep storage/, `${what}: ${reason}`);
    assert.doesNotMatch(reason, /[\u0000-\u001f]/, `${what}: the reason is escaped`);
  }
}

function assertJobFailedEach(job: Job, hostile: Served[], goodId: string, what: string): void {
  assert.equal(job.state, 'failed', `${what}: the job reports its failed segments: ${JSON.stringify(job)}`);
  const failed = new Map(job.errors.map((e) => [e.segmentId, e.message]));
  for (const h of hostile) assert.ok(failed.has(h.manifest.segmentId), `${what}: ${JSON.stringify(h.manifest.segmentId)} failed with its reason`);
  assert.ok(!failed.has(goodId), `${what}: the good segment did not fail: ${failed.get(goodId)}`);
  assert.equal(job.progress.segmentsFailed, hostile.length, `${what}: only the hostile segments failed`);
}

for (const layout of ['nested', 'flat'] as const) {
  describe(`a hostile target serving climbing ids, restored into a ${layout} cache, deep storage and a directory`, () => {
    let sandbox: string;
    let sample: SampleResult;
    let deep: string;
    let node: SidecarProcess;
    let target: { url: string; close(): Promise<void> };
    let good: Served;
    let hostile: Served[];

    before(async () => {
      sandbox = tmpDir(`dbk-climb-${layout}-`);
      sample = await writeSampleCache({
        dir: path.join(sandbox, 'historical'),
        segments: 1,
        layout,
        dataSources: ['sample'],
        segmentSize: 4096,
        smooshChunkSize: 4096,
        seed: 3,
      });
      deep = path.join(sandbox, 'historical', 'deep-storage');
      const goodPart: Part = { dataSource: 'wiki', start: S, end: E, version: 'good', partition: 0 };
      good = served(goodPart, path.join(deep, 'wiki', `${S}_${E}`, 'good', '0', 'index') + '/');
      hostile = hostileSegments(deep);
      target = await hostileTarget([good, ...hostile]);
      node = await startSidecar(['--config', sample.propertiesFile, '--target', target.url], { env: QUIET });
    });
    after(async () => {
      assertPeakBelow300(node);
      await node?.stop();
      await target?.close();
    });

    const destinations = () => ({
      cache: { roots: [sample.location, sample.infoDir], goodAt: [sample.location] },
      'deep-storage': { roots: [deep], goodAt: [path.join(deep, 'wiki', `${S}_${E}`, 'good', '0', 'index')] },
      directory: { roots: [path.join(sandbox, 'restored')], goodAt: [path.join(sandbox, 'restored')] },
    });

    for (const dest of ['cache', 'deep-storage', 'directory'] as const) {
      test(`into ${dest}: the dry run plans nothing outside and refuses each climbing id; the restore fails each alone`, async () => {
        const { roots, goodAt } = destinations()[dest];
        const destination = dest === 'directory' ? roots[0]! : dest;
        if (dest === 'directory') mkdirSync(roots[0]!, { recursive: true });
        const snap = treeSnapshot(sandbox);
        // A loadSpec outside deep storage matters to deep storage only: elsewhere those segments are plain ones.
        const loadSpecOnly = (h: Served) => h.manifest.version.startsWith('deep-');
        const refused = dest === 'deep-storage' ? hostile : hostile.filter((h) => !loadSpecOnly(h));
        const planned = [good, ...hostile.filter((h) => !refused.includes(h))].map((h) => h.manifest.segmentId).sort();

        const dry = await node.request<RestorePlan>('POST', '/data/v1/restore', { target: target.url, destination, dryRun: true });
        assert.equal(dry.status, 200, dry.text);
        assertRefusedAll(dry.json, refused, `${dest} dry run`);
        assert.deepEqual(dry.json.segments.map((s) => s.segmentId).sort(), planned, 'only the good segments are planned');
        for (const s of dry.json.segments)
          assert.ok(
            roots.some((r) => inside(r, s.path)),
            `planned ${s.path} is inside ${roots.join(', ')}`,
          );
        assert.deepEqual(treeDiff(snap, treeSnapshot(sandbox)), [], 'a dry run writes nothing');

        const r = await node.request<JobAccepted>('POST', '/data/v1/restore', { target: target.url, destination });
        assert.equal(r.status, 202, r.text);
        const job = await node.waitForJob(r.json.jobId);
        assertJobFailedEach(job, refused, good.manifest.segmentId, dest);
        const diff = changesInside(sandbox, snap, roots, dest);
        assert.ok(
          diff.some(
            (line) =>
              line.endsWith('version.bin') && line.includes('good') && goodAt.some((g) => inside(g, path.join(sandbox, line.slice(line.indexOf(': ') + 2)))),
          ),
          `${dest}: the good segment was restored: ${diff.join('\n')}`,
        );
      });
    }

    test('ids built to make parsing slow: 6,000 of 1024 characters in one body are parsed while /status/health answers', async (t) => {
      if (layout === 'flat') return; // once is enough
      const tail = (i: number) => `_${S}_${E}_v${i}`;
      // Hundreds of `_` before the interval: every one a candidate data source (5 ms each before parsing was linear).
      const ids = Array.from({ length: 6_000 }, (_, i) => 'a_'.repeat(600).slice(0, 1024 - tail(i).length) + tail(i));
      // The last one is no id at all, so the request ends in a 400 once every id before it was parsed, asking no target.
      ids.push('a_'.repeat(512));
      const poll = probeHealth(node.url, 'node', 20);
      await poll.started;
      const control = await probeControl(20);
      const t0 = performance.now();
      const r = await node.request<{ error: { code: string } }>('POST', '/data/v1/restore', { target: target.url, segmentIds: ids, dryRun: true });
      const took = performance.now() - t0;
      const h = await poll.stop();
      const idle = await control.stop();
      const slowest = h.slowestMs;
      t.diagnostic(
        `6,001 ids (${(JSON.stringify(ids).length / 2 ** 20).toFixed(1)} MiB) answered in ${took.toFixed(0)} ms; slowest of ${h.checks} health checks ${slowest} ms`,
      );
      assert.deepEqual(h.failures, []);
      assert.equal(r.status, 400, r.text.slice(0, 300));
      assert.equal(r.json.error.code, 'bad_segment_id');
      assert.deepEqual(idle.failures, []);
      // What parsing adds to the machine's own latency, seen by the same probe of a server doing nothing else.
      assert.ok(slowest < idle.slowestMs + HEALTH_ADDED_MAX_MS, `/status/health took ${slowest} ms while the ids were parsed, an idle server's ${idle.slowestMs} ms`);
    });

    test('a restore naming a climbing id is refused with 400 bad_segment_id before the target is asked', async () => {
      const snap = treeSnapshot(sandbox);
      for (const h of hostile.filter((x) => x.idClimbs)) {
        const r = await node.request<{ error: { code: string; message: string } }>('POST', '/data/v1/restore', {
          target: target.url,
          segmentIds: [h.manifest.segmentId],
        });
        assert.equal(r.status, 400, `${JSON.stringify(h.manifest.segmentId)}: ${r.text}`);
        assert.equal(r.json.error.code, 'bad_segment_id', r.text);
        assert.doesNotMatch(r.json.error.message, /[\u0000-\u001f]/);
      }
      assert.deepEqual(treeDiff(snap, treeSnapshot(sandbox)), []);
    });
  });
}

describe('a PUT of a climbing id to a real target sidecar', () => {
  let sandbox: string;
  let target: SidecarProcess;

  before(async () => {
    sandbox = tmpDir('dbk-climb-put-');
    target = await startSidecar(['--store', path.join(sandbox, 'store')], { stateDir: path.join(sandbox, 'state') });
  });
  after(async () => {
    assertPeakBelow300(target);
    await target?.stop();
  });

  test('is refused 400 bad_segment_id, by its URL or by its descriptor, and nothing is stored', async () => {
    const deep = path.join(sandbox, 'deep');
    const skip = (rel: string) => rel.startsWith('state') || rel.startsWith(path.join('store', '.tmp'));
    const snap = treeSnapshot(sandbox, skip);
    const good = served({ dataSource: 'wiki', start: S, end: E, version: 'good', partition: 0 }, `${deep}/index/`);
    const body = async (segmentId: string, descriptor: DataSegment | null, files: Record<string, Buffer>) => {
      const p = packSegment({
        segmentId,
        descriptor,
        node: 'attacker',
        files: Object.entries(files).map(([name, b]) => ({ name, size: b.length, open: () => Readable.from([b]) })),
      });
      const parts: Buffer[] = [];
      for await (const c of p.stream) parts.push(c as Buffer);
      return Buffer.concat(parts);
    };
    const put = async (urlId: string, raw: Buffer) =>
      target.request<{ error: { code: string; message: string } }>('PUT', `/data/v1/store/segments/${encodeURIComponent(urlId)}`, undefined, {
        raw,
        headers: { 'content-type': 'application/x-tar', 'x-druid-backup-node': 'attacker' },
      });
    for (const h of hostileSegments(deep).filter((x) => x.idClimbs)) {
      const id = h.manifest.segmentId;
      const r = await put(id, await body(good.manifest.segmentId, null, h.files));
      assert.equal(r.status, 400, `${JSON.stringify(id)}: ${r.text}`);
      assert.equal(r.json.error.code, 'bad_segment_id', r.text);
    }
    // A plain id in the URL and the declaration, a descriptor whose fields climb.
    const climbing = { ...good.manifest.descriptor!, version: 'v/../../../../../escape-put' };
    const r = await put(good.manifest.segmentId, await body(good.manifest.segmentId, climbing, good.files));
    assert.ok(r.status >= 400 && r.status < 500, r.text);
    assert.match(r.json.error.message, /is refused: its version contains a path separator/);
    assert.deepEqual(treeDiff(snap, treeSnapshot(sandbox, skip)), [], 'nothing stored');
    // The store still takes a good segment.
    const ok = await put(good.manifest.segmentId, await body(good.manifest.segmentId, good.manifest.descriptor, good.files));
    assert.equal(ok.status, 201, ok.text);
  });
});

describe('a bucket holding a manifest with a climbing id', () => {
  let gw: VersityGw;
  let sandbox: string;
  let sample: SampleResult;
  let node: SidecarProcess;
  const bucket = 'hostile-paths';
  const url = `s3://${bucket}/prod`;
  const s3 = new ObjectLayout('prod/');

  async function putSegment(s: Served): Promise<void> {
    for (const [name, b] of Object.entries(s.files)) {
      await gw.client.send(new PutObjectCommand({ Bucket: bucket, Key: s3.fileKey(s.manifest.segmentId, 'hostile', name), Body: b }));
    }
    await gw.client.send(new PutObjectCommand({ Bucket: bucket, Key: s3.manifestKey(s.manifest.segmentId), Body: JSON.stringify(s.manifest) }));
  }

  before(async () => {
    gw = await startVersityGw();
    await gw.createBucket(bucket);
    sandbox = tmpDir('dbk-climb-s3-');
    sample = await writeSampleCache({
      dir: path.join(sandbox, 'historical'),
      segments: 1,
      layout: 'nested',
      dataSources: ['sample'],
      segmentSize: 4096,
      smooshChunkSize: 4096,
      seed: 4,
    });
    node = await startSidecar(['--config', sample.propertiesFile, '--target', url], { env: { ...gw.env, ...QUIET } });
  });
  after(async () => {
    assertPeakBelow300(node);
    await node?.stop();
    await gw?.close();
  });

  test('a restore takes the good segment, leaves the climbing ones with their reason logged, and writes nothing outside', async () => {
    const deep = path.join(sandbox, 'historical', 'deep-storage');
    const good = served({ dataSource: 'wiki', start: S, end: E, version: 'good', partition: 0 }, `${deep}/wiki/good/index/`);
    // The loadSpec climbs matter to deep storage only, which a bucket restore here does not write.
    const hostile = hostileSegments(deep).filter((h) => !h.manifest.version.startsWith('deep-'));
    for (const s of [good, ...hostile]) await putSegment(s);
    const snap = treeSnapshot(sandbox);

    const dry = await node.request<RestorePlan>('POST', '/data/v1/restore', { target: url, dryRun: true });
    assert.equal(dry.status, 200, dry.text);
    assert.deepEqual(
      dry.json.segments.map((s) => s.segmentId),
      [good.manifest.segmentId],
    );
    const r = await node.request<JobAccepted>('POST', '/data/v1/restore', { target: url });
    assert.equal(r.status, 202, r.text);
    const job = await node.waitForJob(r.json.jobId);
    assert.equal(job.state, 'succeeded', JSON.stringify(job));
    assert.equal(job.progress.segmentsDone, 1);
    const diff = changesInside(sandbox, snap, [sample.location, sample.infoDir], 's3 restore');
    assert.ok(
      diff.some((l) => l.includes(`wiki${path.sep}`)),
      'the good segment was restored',
    );
    const skipped = logged(node.logs(), 'manifest skipped in the catalog');
    for (const h of hostile) {
      const line = skipped.find((l) => String(l.key) === s3.manifestKey(h.manifest.segmentId));
      assert.ok(line, `${JSON.stringify(h.manifest.segmentId)}: its manifest is skipped with a reason in the log`);
      assert.match(String(line.err), /is refused: |not a Druid segment id|starts with "\."|damaged/);
    }
    for (const h of hostile) {
      const named = await node.request<{ error: { code: string } }>('POST', '/data/v1/restore', { target: url, segmentIds: [h.manifest.segmentId] });
      if (h.idClimbs) {
        assert.equal(named.status, 400, named.text);
        assert.equal(named.json.error.code, 'bad_segment_id');
      } else {
        // A plain id whose manifest climbs: the bucket holds no usable backup of it.
        assert.ok(named.status >= 400 && named.status < 500, named.text);
      }
    }
    assert.deepEqual(treeDiff(snap, treeSnapshot(sandbox)).length, diff.length, 'the refused requests wrote nothing');
  });
});
