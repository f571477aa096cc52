/**
 * Azure Blob Storage targets with real processes against Azurite, Microsoft's emulator, started here: the same
 * suite as S3's (s3-sidecar.test.ts, s3-target.test.ts) on the layout and guarantees every object store shares
 * (store/object/). A source sidecar (dist/sidecar.js) backs up a sample cache to a container, its credentials given
 * the way Azure users give them (AZURE_STORAGE_CONNECTION_STRING); the blobs are read back with the SDK and hashed.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import type { Job, JobAccepted, SegmentsResponse, StoreCatalogResponse } from '../../sidecar/api.js';
import type { SampleResult } from '../../sidecar/sample/sampleCache.js';
import { writeSampleCache } from '../../sidecar/sample/sampleCache.js';
import { AzureTarget } from '../../sidecar/store/azure/target.js';
import { ObjectLayout } from '../../sidecar/store/object/layout.js';
import type { OutgoingSegment } from '../../sidecar/store/target.js';
import type { Azurite } from '../helpers/azurite.js';
import { startAzurite } from '../helpers/azurite.js';
import { runCli } from '../helpers/cli.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { startSidecar, tmpDir, waitFor } from '../helpers/sidecar.js';
import { treeDigests } from '../helpers/tree.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const silent = pino({ level: 'silent' });

/** Reading and changing blobs behind the target's back, as a damaged or hostile container would. */
function blobs(az: Azurite, container: string) {
  const c = az.service.getContainerClient(container);
  return {
    read: (key: string) => c.getBlobClient(key).downloadToBuffer(),
    write: async (key: string, body: Buffer) => void (await c.getBlockBlobClient(key).upload(body, body.length)),
    remove: async (key: string) => void (await c.getBlobClient(key).delete()),
    async list(prefix: string, uncommitted = false): Promise<Map<string, string>> {
      const out = new Map<string, string>();
      for await (const b of c.listBlobsFlat({ prefix, includeUncommitedBlobs: uncommitted })) out.set(b.name, b.properties.etag ?? '');
      return out;
    },
  };
}

function segment(id: string, node: string, files: Record<string, Buffer>): OutgoingSegment {
  return {
    segmentId: id,
    descriptor: null,
    node,
    files: Object.entries(files).map(([name, b]) => ({ name, size: b.length, open: () => Readable.from([b]) })),
  };
}

const ID = 'wiki_2024-01-01T00:00:00.000Z_2024-01-02T00:00:00.000Z_v1';

describe('Azure target against Azurite, in this process', () => {
  let az: Azurite;
  const container = 'direct';
  const saved = process.env.AZURE_STORAGE_CONNECTION_STRING;
  before(async () => {
    az = await startAzurite();
    await az.createContainer(container);
    process.env.AZURE_STORAGE_CONNECTION_STRING = az.connectionString;
  });
  after(async () => {
    if (saved === undefined) delete process.env.AZURE_STORAGE_CONNECTION_STRING;
    else process.env.AZURE_STORAGE_CONNECTION_STRING = saved;
    await az?.close();
  });
  const open = (url: string) => AzureTarget.open(url, { log: silent, settings: { blockSize: 1024 * 1024, concurrency: 2 } });

  test('files go up in blocks, the manifest last; read back byte-identical; two nodes racing: one copy, one source more', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    const files = { 'version.bin': Buffer.from([0, 0, 0, 9]), 'meta.smoosh': Buffer.from('meta'), '00000.smoosh': big };
    const t1 = open(`azure://${container}/race`);
    const t2 = open(`azure://${container}/race`);
    const [a, b] = await Promise.all([t1.put(segment(ID, 'n1', files)), t2.put(segment(ID, 'n2', files))]);
    assert.deepEqual([a.outcome, b.outcome].sort(), ['identical', 'stored']);
    const m = (await t1.manifest(ID))!;
    assert.deepEqual(m.sources.map((s) => s.node).sort(), ['n1', 'n2']);
    const writer = m.sources[0]!.node;
    const keys = [...(await blobs(az, container).list(t1.layout.segmentPrefix(ID))).keys()];
    assert.ok(keys.every((k) => k.startsWith(t1.layout.dataPrefix(ID, writer))), `only the winner's copy stays: ${keys.join(', ')}`);
    assert.equal(sha(await blobs(az, container).read(t1.layout.fileKey(ID, writer, '00000.smoosh'))), sha(big));
    const r = await t1.read(ID);
    for await (const f of r.files) {
      const parts: Buffer[] = [];
      for await (const c of f.chunks) parts.push(...(Buffer.isBuffer(c) ? [c] : c));
      assert.equal(sha(Buffer.concat(parts)), sha(files[f.name as keyof typeof files]), f.name);
    }
    // Different bytes from a third node: flagged as a conflict, not stored.
    const other = await open(`azure://${container}/race`).put(segment(ID, 'n3', { ...files, 'meta.smoosh': Buffer.from('other') }));
    assert.equal(other.outcome, 'conflict');
    assert.deepEqual((await t1.manifest(ID))!.conflicts.map((c) => c.node), ['n3']);
  });

  test('the service checks each block against its Content-MD5: a block whose bytes differ is refused', async () => {
    const blob = az.service.getContainerClient(container).getBlockBlobClient('md5-check');
    const body = Buffer.from('the bytes that were read');
    const wrong = createHash('md5').update('other bytes').digest();
    await assert.rejects(blob.stageBlock(Buffer.from('b-000001').toString('base64'), body, body.length, { transactionalContentMD5: wrong }), (e: { statusCode?: number; code?: string }) => {
      assert.equal(e.statusCode, 400);
      assert.match(`${e.code} ${(e as Error).message}`, /Md5Mismatch|MD5/i);
      return true;
    });
    // The blob's own MD5 on a single write (the manifest's way) is checked too.
    await assert.rejects(
      blob.upload(body, body.length, { blobHTTPHeaders: { blobContentMD5: wrong } }),
      (e: { statusCode?: number }) => e.statusCode === 400,
    );
  });

  test('the catalog index: a second listing by another process reads no manifest', async () => {
    const t = open(`azure://${container}/cat`);
    for (let i = 0; i < 5; i++)
      await t.put(segment(`ds_2024-01-0${i + 1}T00:00:00.000Z_2024-01-0${i + 2}T00:00:00.000Z_v1`, 'n1', { 'version.bin': Buffer.from([i]) }));
    const first: string[] = [];
    for await (const m of t.list()) first.push(m.segmentId);
    assert.equal(first.length, 5);
    assert.equal(t.catalog.lastList?.manifestGets, 0, 'the manifests this process wrote are not read');
    assert.equal(t.catalog.lastList?.indexWritten, true);
    const fresh = open(`azure://${container}/cat`);
    const again: string[] = [];
    for await (const m of fresh.list()) again.push(m.segmentId);
    assert.deepEqual(again, first);
    assert.equal(fresh.catalog.lastList?.manifestGets, 0);
    assert.equal(fresh.catalog.lastList?.indexRead, 'fresh');
  });

  test('hostile container: a blob longer than its manifest, a manifest at the wrong key, a listing with an alien blob', async () => {
    const t = open(`azure://${container}/hostile`);
    const files = { 'version.bin': Buffer.from([0, 0, 0, 9]), '00000.smoosh': Buffer.alloc(4096, 1) };
    await t.put(segment(ID, 'n1', files));
    const bl = blobs(az, container);
    await bl.write(t.layout.fileKey(ID, 'n1', '00000.smoosh'), Buffer.alloc(8192, 1));
    const r = await t.read(ID);
    await assert.rejects(async () => {
      for await (const f of r.files) for await (const _ of f.chunks);
    }, /00000\.smoosh has 8192 bytes in the container, the manifest 4096/);
    // Another segment's manifest copied under this id's key: refused, not believed.
    const other = 'wiki_2024-02-01T00:00:00.000Z_2024-02-02T00:00:00.000Z_v1';
    await t.put(segment(other, 'n1', files));
    await bl.write(t.layout.manifestKey(ID), await bl.read(t.layout.manifestKey(other)));
    await assert.rejects(t.manifest(ID), /damaged/);
    await bl.write(`${t.layout.manifestsPrefix}not-a-manifest`, Buffer.from('x'));
    const report = await t.verify();
    assert.deepEqual(
      report.bad.map((b) => [b.segmentId, b.problems.map((p) => p.problem)]),
      [[ID, ['bad-manifest']]],
    );
  });

  test('an endpoint answering a listing with 64 MiB: the listing fails at the answer limit, nothing parsed', async () => {
    let sent = 0;
    const hostile = http.createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/xml' });
      const chunk = Buffer.alloc(1024 * 1024, 0x61);
      const more = () => {
        while (sent < 64 * 1024 * 1024) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
        res.end();
      };
      res.on('error', () => undefined);
      more();
    });
    await new Promise<void>((r) => hostile.listen(0, '127.0.0.1', () => r()));
    const port = (hostile.address() as { port: number }).port;
    process.env.AZURE_STORAGE_CONNECTION_STRING = az.connectionString.replace(/BlobEndpoint=[^;]+/, `BlobEndpoint=http://127.0.0.1:${port}/devstoreaccount1`);
    try {
      const t = open(`azure://${container}/hostile-listing`);
      await assert.rejects(
        async () => {
          for await (const _ of t.list());
        },
        (e: { code?: string }) => e.code === 'target_answer_too_large',
      );
      assert.ok(sent < 48 * 1024 * 1024, `the answer was cut, not read to its end (${sent} bytes sent)`);
    } finally {
      process.env.AZURE_STORAGE_CONNECTION_STRING = az.connectionString;
      hostile.closeAllConnections();
      hostile.close();
    }
  });

  test('bad azure:// URLs and a missing container: one clear error each', async () => {
    assert.throws(() => open('azure://'), /container name is missing/);
    assert.throws(() => open(`azure://${container}/a/../b`), /"\.\." segments/);
    assert.throws(() => open('azure://Bad_Name/x'), /lower-case letters/);
    assert.throws(() => open(`azure://${container}?sv=2024&sig=abc`), /no query/);
    await assert.rejects(open('azure://no-such-container').head(ID), (e: { code?: string; message?: string }) => {
      assert.equal(e.code, 'target_error');
      assert.match(e.message!, /ContainerNotFound/);
      return true;
    });
  });
});

describe('Azure target with real sidecars and Azurite', () => {
  let az: Azurite;
  let sample: SampleResult;
  let original: Map<string, string>;
  let source: SidecarProcess;
  const container = 'druid-backups';
  const url = `azure://${container}/prod/druid`;
  const layout = new ObjectLayout('prod/druid/');
  const node = 'historical-az:8083';
  const backedUp = async (sc: SidecarProcess) => (await sc.get<SegmentsResponse>('/data/v1/segments?state=backedUp&limit=1')).total;

  before(async () => {
    az = await startAzurite();
    await az.createContainer(container);
    sample = await writeSampleCache({
      dir: path.join(tmpDir('dbk-aze2e-'), 'historical'),
      segments: 12,
      layout: 'nested',
      dataSources: ['wikipedia', 'kttm'],
      segmentSize: 48 * 1024,
      smooshChunkSize: 24 * 1024,
      seed: 7,
    });
    original = treeDigests(sample.location);
    source = await startSidecar(['--config', sample.propertiesFile, '--node-name', node, '--target', url], {
      allowedTargets: [`azure://${container}`, 'azure://no-such-container'],
      env: { ...az.env, DRUID_BACKUP_RECONCILE_PERIOD: 'PT1H', DRUID_BACKUP_AUTO_RESTORE_CHECK_PERIOD: 'PT0.5S' },
    });
  });
  after(async () => {
    await source?.stop();
    await az?.close();
  });

  test('active backup puts every segment in the container: blobs byte-identical to the cache, a manifest per segment', async () => {
    await waitFor('every segment backed up', async () => (await backedUp(source)) === sample.segmentIds.length, 60_000, 200);
    const bl = blobs(az, container);
    const segs = await source.get<SegmentsResponse>('/data/v1/segments?limit=1000');
    for (const s of segs.items) {
      assert.equal(s.backup.target, url);
      const m = JSON.parse((await bl.read(layout.manifestKey(s.id))).toString('utf8'));
      assert.equal(m.digest, s.backup.digest);
      assert.deepEqual(m.sources.map((x: { node: string }) => x.node), [node]);
      const stored = [...(await bl.list(layout.dataPrefix(s.id, node))).keys()].map((k) => k.slice(layout.dataPrefix(s.id, node).length));
      assert.deepEqual(stored.sort(), s.files.map((f) => f.name).sort());
      for (const f of m.files) assert.equal(sha(await bl.read(layout.fileKey(s.id, node, f.name))), f.sha256, `${s.id}/${f.name}`);
    }
  });

  test('the node answers for its container: catalog pages and stats with ?target=azure://…', async () => {
    const q = `target=${encodeURIComponent(url)}`;
    const all = await source.get<StoreCatalogResponse>(`/data/v1/store/segments?${q}&limit=1000`);
    assert.deepEqual(all.items.map((s) => s.segmentId), [...sample.segmentIds].sort());
    const st = await source.get<{ segments: number; bytes: number }>(`/data/v1/store/stats?${q}`);
    assert.deepEqual([st.segments, st.bytes], [sample.segmentIds.length, sample.bytes]);
  });

  test('incremental: a re-run sends no bytes and rewrites no blob', async () => {
    const sentBefore = await source.metric('druid_backup_bytes_sent_total');
    const before = await blobs(az, container).list('prod/druid/segments/');
    const r = await source.request<JobAccepted>('POST', '/data/v1/backup', { target: url });
    assert.equal(r.status, 202, r.text);
    const job = await source.waitForJob(r.json.jobId);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
    assert.equal(job.progress.segmentsSkipped, sample.segmentIds.length);
    assert.equal(await source.metric('druid_backup_bytes_sent_total'), sentBefore);
    assert.deepEqual(await blobs(az, container).list('prod/druid/segments/'), before, 'same blobs, same ETags');
  });

  test('loss of the cache, then a restore from the container: segments and info_dir byte-identical', async () => {
    rmSync(sample.infoDir, { recursive: true, force: true });
    for (const n of readdirSync(sample.location)) rmSync(path.join(sample.location, n), { recursive: true, force: true });
    const r = await source.request<JobAccepted>('POST', '/data/v1/restore', { target: url });
    assert.equal(r.status, 202, r.text);
    const job = await source.waitForJob(r.json.jobId);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
    assert.equal(job.progress.segmentsDone, sample.segmentIds.length);
    assert.deepEqual(treeDigests(sample.location), original);
  });

  test('verify over the container (API and CLI) names each bad segment; restoring them fails clearly and installs nothing', async () => {
    let r = await source.request<JobAccepted>('POST', '/data/v1/store/verify', { target: url });
    assert.equal(r.status, 202, r.text);
    let job: Job = await source.waitForJob(r.json.jobId);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
    assert.deepEqual([job.result?.segments, job.result?.ok], [sample.segmentIds.length, sample.segmentIds.length]);
    const ok = await runCli(['verify', '--target', url], { env: az.env });
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);

    const [a, b, c] = sample.segmentIds as [string, string, string];
    const bl = blobs(az, container);
    const bytes = await bl.read(layout.fileKey(a, node, '00000.smoosh'));
    bytes[10] = bytes[10]! ^ 0x01;
    await bl.write(layout.fileKey(a, node, '00000.smoosh'), bytes);
    await bl.remove(layout.fileKey(b, node, 'meta.smoosh'));
    const edited = JSON.parse((await bl.read(layout.manifestKey(c))).toString('utf8'));
    edited.files[0].size += 1;
    await bl.write(layout.manifestKey(c), Buffer.from(JSON.stringify(edited)));

    r = await source.request<JobAccepted>('POST', '/data/v1/store/verify', { target: url });
    job = await source.waitForJob(r.json.jobId);
    const bad = (job.result?.bad ?? []) as Array<{ segmentId: string; problems: Array<{ problem: string }> }>;
    assert.deepEqual(Object.fromEntries(bad.map((x) => [x.segmentId, x.problems.map((p) => p.problem)])), {
      [a]: ['digest-mismatch'],
      [b]: ['missing-file'],
      [c]: ['bad-manifest'],
    });
    const cli = await runCli(['verify', '--target', url], { env: az.env });
    assert.equal(cli.code, 3, cli.stdout + cli.stderr);

    const dir = tmpDir('dbk-azbad-');
    const rr = await source.request<JobAccepted>('POST', '/data/v1/restore', { target: url, segmentIds: [a, b], destination: dir });
    assert.equal(rr.status, 202, rr.text);
    const failed = await source.waitForJob(rr.json.jobId);
    assert.equal(failed.state, 'failed');
    const messages = failed.errors.map((e) => e.message).join('\n');
    assert.match(messages, /00000\.smoosh has sha256 [0-9a-f]+, the manifest/);
    assert.match(messages, /meta\.smoosh is missing from the container \(BlobNotFound/);
    assert.equal(treeDigests(dir).size, 0, 'nothing installed');
  });

  test('bad azure:// targets and a wrong key: one clear 4xx naming the problem or the service code, no secret anywhere', async () => {
    const cases: Array<[unknown, number, RegExp]> = [
      [{ target: 'azure://' }, 400, /container name is missing/],
      [{ target: `azure://${container}/a/../b` }, 400, /"\.\." segments/],
      [{ target: 'azure://no-such-container/x' }, 404, /ContainerNotFound/],
    ];
    for (const [body, status, re] of cases) {
      const r = await source.request<{ error: { message: string } }>('POST', '/data/v1/backup', body);
      assert.equal(r.status, status, `${JSON.stringify(body)}: ${r.text}`);
      assert.match(r.json.error.message, re);
    }
    const wrongKey = Buffer.from('not the key of this account at all').toString('base64');
    const other = await startSidecar(['--config', sample.propertiesFile, '--node-name', 'other'], {
      allowedTargets: [url],
      env: { AZURE_STORAGE_CONNECTION_STRING: az.connectionString.replace(/AccountKey=[^;]+/, `AccountKey=${wrongKey}`) },
    });
    try {
      const r = await other.request<{ error: { message: string } }>('POST', '/data/v1/backup', { target: url });
      assert.equal(r.status, 403, r.text);
      assert.match(r.json.error.message, /Authori[sz]ationFailure|AuthenticationFailed/);
      for (const secret of [wrongKey, az.connectionString]) {
        assert.ok(!r.text.includes(secret));
        assert.ok(!other.logs().includes(secret), 'the log never holds a secret');
      }
    } finally {
      await other.stop();
    }
  });

  test('copies=2 across an Azure container and a target sidecar: every segment on both; a restore with the sidecar stopped', async () => {
    const cache = await writeSampleCache({
      dir: path.join(tmpDir('dbk-azcopies-'), 'historical'),
      segments: 6,
      layout: 'nested',
      dataSources: ['web_logs'],
      segmentSize: 32 * 1024,
      smooshChunkSize: 16 * 1024,
      seed: 11,
    });
    const want = treeDigests(cache.location);
    const copiesUrl = `azure://${container}/copies`;
    const store = await startSidecar(['--store', tmpDir('dbk-azstore-')]);
    const sc = await startSidecar(['--config', cache.propertiesFile, '--node-name', 'copies-node', '--targets', JSON.stringify([copiesUrl, store.url]), '--copies', '2'], {
      token: store.token,
      env: { ...az.env, DRUID_BACKUP_AUTO_RESTORE: 'false', DRUID_BACKUP_RECONCILE_PERIOD: 'PT1S' },
    });
    try {
      const segs = await waitFor(
        'every segment on two targets',
        async () => {
          const r = await sc.get<SegmentsResponse>('/data/v1/segments?limit=1000');
          return r.items.length === cache.segmentIds.length && r.items.every((s) => s.backup.copies === 2) ? r.items : undefined;
        },
        60_000,
        200,
      );
      for (const s of segs) assert.deepEqual(new Set(s.backup.targets), new Set([copiesUrl, store.url]), s.id);
      const inAzure = [...(await blobs(az, container).list('copies/manifests/')).keys()];
      assert.equal(inAzure.length, cache.segmentIds.length);
      await store.stop();
      rmSync(cache.infoDir, { recursive: true, force: true });
      for (const n of readdirSync(cache.location)) rmSync(path.join(cache.location, n), { recursive: true, force: true });
      const r = await sc.request<JobAccepted>('POST', '/data/v1/restore', {});
      assert.equal(r.status, 202, r.text);
      const job = await sc.waitForJob(r.json.jobId);
      assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
      assert.deepEqual(treeDigests(cache.location), want);
    } finally {
      await sc.stop();
      await store.stop();
    }
  });

  test('the emulator stopped in the middle of a file: no manifest while its blocks are uncommitted; active backup retries and completes', async () => {
    const big = await writeSampleCache({
      dir: tmpDir('dbk-azmid-'),
      segments: 1,
      layout: 'flat',
      dataSources: ['wikipedia'],
      segmentSize: 24 * 1024 * 1024,
      smooshChunkSize: 2147483647,
      seed: 9,
    });
    const id = big.segmentIds[0]!;
    const mid = new ObjectLayout('mid/');
    const env = { ...az.env, DRUID_BACKUP_AZURE_BLOCK_SIZE: '1MiB', DRUID_BACKUP_AZURE_CONCURRENCY: '1' };
    const sc = await startSidecar(['--config', big.propertiesFile, '--node-name', 'big-node', '--target', `azure://${container}/mid`], { env });
    const bl = blobs(az, container);
    try {
      await waitFor('the upload to begin', async () => (await bl.list('mid/segments/', true)).size > 0, 30_000, 5);
      await az.stop({ hard: true });
      await waitFor('the sidecar to see the failure', async () => (await sc.metric('druid_backup_failures_total')) >= 1, 60_000, 100);
      await az.start();
      assert.equal((await bl.list(mid.manifestKey(id))).size, 0, 'no manifest for a segment whose files are incomplete');
      await waitFor('the segment backed up after the emulator came back', async () => (await backedUp(sc)) === 1, 90_000, 200);
      const m = JSON.parse((await bl.read(mid.manifestKey(id))).toString('utf8'));
      const flat = path.join(big.location, id);
      const local = treeDigests(flat);
      for (const f of m.files) {
        assert.equal(sha(await bl.read(mid.fileKey(id, 'big-node', f.name))), f.sha256, f.name);
        assert.equal(local.get(f.name), f.sha256, f.name);
      }
    } finally {
      await sc.stop();
    }
  });
});

