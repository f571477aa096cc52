/**
 * S3 targets with real processes: a source sidecar (dist/sidecar.js) backing up a sample cache to a real VersityGW,
 * its endpoint and credentials given the way operators give them (the AWS environment variables). The objects in
 * the bucket are hashed as the files VersityGW keeps them as.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Job, JobAccepted, SegmentsResponse, StoreCatalogResponse } from '../../sidecar/api.js';
import type { SampleResult } from '../../sidecar/sample/sampleCache.js';
import { writeSampleCache } from '../../sidecar/sample/sampleCache.js';
import { ObjectLayout } from '../../sidecar/store/object/layout.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { startSidecar, tmpDir, waitFor } from '../helpers/sidecar.js';
import { runCli } from '../helpers/cli.js';
import { treeDigests } from '../helpers/tree.js';
import type { VersityGw } from '../helpers/versitygw.js';
import { requireVersityGw, startVersityGw } from '../helpers/versitygw.js';

requireVersityGw();

const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** Every file under a directory, relative. */
function walk(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p, base));
    else out.push(path.relative(base, p));
  }
  return out;
}

describe('S3 target with real sidecars and VersityGW', () => {
  let gw: VersityGw;
  let sample: SampleResult;
  let source: SidecarProcess;
  let original: Map<string, string>;
  const bucket = 'druid-backups';
  const url = `s3://${bucket}/prod/druid`;
  const layout = new ObjectLayout('prod/druid/');
  const node = 'historical-s3:8083';

  const backedUp = async () => (await source.get<SegmentsResponse>('/data/v1/segments?state=backedUp&limit=1')).total;

  before(async () => {
    gw = await startVersityGw();
    await gw.createBucket(bucket);
    const root = tmpDir('dbk-s3e2e-');
    sample = await writeSampleCache({
      dir: path.join(root, 'historical'),
      segments: 24,
      layout: 'nested',
      dataSources: ['wikipedia', 'web_logs', 'kttm'],
      segmentSize: 48 * 1024,
      smooshChunkSize: 24 * 1024,
      seed: 5,
    });
    original = treeDigests(sample.location);
    // Besides its own prefix: the rest of the bucket (backups to other prefixes below) and a bucket that does not exist.
    source = await startSidecar(['--config', sample.propertiesFile, '--node-name', node, '--target', url], {
      allowedTargets: [`s3://${bucket}`, 's3://no-such-bucket-here'],
      env: { ...gw.env, DRUID_BACKUP_RECONCILE_PERIOD: 'PT1H', DRUID_BACKUP_AUTO_RESTORE_CHECK_PERIOD: 'PT0.5S' },
    });
  });
  after(async () => {
    await source?.stop();
    await gw?.close();
  });

  test('active backup puts every segment in the bucket: objects byte-identical to the cache, a manifest per segment', async () => {
    await waitFor('every segment backed up', async () => (await backedUp()) === sample.segmentIds.length, 60_000, 200);
    const segs = await source.get<SegmentsResponse>('/data/v1/segments?limit=1000');
    for (const s of segs.items) {
      assert.equal(s.backup.target, url);
      const manifestFile = path.join(gw.root, bucket, layout.manifestKey(s.id));
      const m = JSON.parse(readFileSync(manifestFile, 'utf8'));
      assert.equal(m.segmentId, s.id);
      assert.equal(m.digest, s.backup.digest);
      assert.deepEqual(
        m.sources.map((x: { node: string }) => x.node),
        [node],
      );
      const cacheDir = path.join(sample.location, s.dataSource, s.interval.replace('/', '_'), s.version, String(s.partition));
      const stored = path.join(gw.root, bucket, layout.dataPrefix(s.id, node));
      assert.deepEqual(readdirSync(stored).sort(), s.files.map((f) => f.name).sort());
      for (const f of s.files) {
        assert.equal(sha(path.join(stored, f.name)), sha(path.join(cacheDir, f.name)), `${s.id}/${f.name}`);
        assert.equal(m.files.find((x: { name: string }) => x.name === f.name).sha256, sha(path.join(cacheDir, f.name)));
      }
    }
  });

  test('the node answers for its bucket: catalog pages, a manifest and stats with ?target=s3://…', async () => {
    const q = `target=${encodeURIComponent(url)}`;
    const all = await source.get<StoreCatalogResponse>(`/data/v1/store/segments?${q}&limit=1000`);
    assert.equal(all.total, sample.segmentIds.length);
    assert.deepEqual(
      all.items.map((s) => s.segmentId),
      [...sample.segmentIds].sort(),
    );
    assert.ok(all.items.every((s) => s.sources.length === 1 && s.sources[0] === node && s.fileCount >= 4));
    const paged: string[] = [];
    let cursor: string | undefined;
    do {
      const page: StoreCatalogResponse = await source.get(`/data/v1/store/segments?${q}&limit=5${cursor ? `&cursor=${cursor}` : ''}`);
      paged.push(...page.items.map((s) => s.segmentId));
      cursor = page.nextCursor;
    } while (cursor);
    assert.deepEqual(
      paged,
      all.items.map((s) => s.segmentId),
    );
    const kttm = await source.get<StoreCatalogResponse>(`/data/v1/store/segments?${q}&dataSource=kttm&limit=1000`);
    assert.deepEqual(
      kttm.items.map((s) => s.segmentId),
      sample.segmentIds.filter((id) => id.startsWith('kttm_')).sort(),
    );
    const id = sample.segmentIds[0]!;
    const m = await source.get<{ segmentId: string; files: unknown[] }>(`/data/v1/store/segments/${encodeURIComponent(id)}/manifest?${q}`);
    assert.equal(m.segmentId, id);
    const st = await source.get<{ segments: number; bytes: number }>(`/data/v1/store/stats?${q}`);
    assert.deepEqual([st.segments, st.bytes], [sample.segmentIds.length, sample.bytes]);
    const bad = await source.request<{ error: { code: string } }>('GET', `/data/v1/store/segments?target=${encodeURIComponent('http://127.0.0.1:1')}`);
    assert.equal(bad.status, 400, bad.text);
  });

  test('a re-run sends no bytes: passive backup to the same bucket skips every segment', async () => {
    const sentBefore = await source.metric('druid_backup_bytes_sent_total');
    const mtimes = walk(path.join(gw.root, bucket, 'prod/druid/segments')).map((f) => statSync(path.join(gw.root, bucket, 'prod/druid/segments', f)).mtimeMs);
    const r = await source.request<JobAccepted>('POST', '/data/v1/backup', { target: url });
    assert.equal(r.status, 202, r.text);
    const job = await source.waitForJob(r.json.jobId);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
    assert.equal(job.target, url);
    assert.equal(job.progress.segmentsSkipped, sample.segmentIds.length);
    assert.equal(job.progress.segmentsDone, 0);
    assert.equal(await source.metric('druid_backup_bytes_sent_total'), sentBefore);
    const after = walk(path.join(gw.root, bucket, 'prod/druid/segments')).map((f) => statSync(path.join(gw.root, bucket, 'prod/druid/segments', f)).mtimeMs);
    assert.deepEqual(after, mtimes, 'no object was written again');
  });

  test('passive backup to another prefix of the bucket, by data source', async () => {
    const other = `s3://${bucket}/copy`;
    const r = await source.request<JobAccepted>('POST', '/data/v1/backup', { target: `${other}/`, dataSource: 'kttm' });
    assert.equal(r.status, 202, r.text);
    const job = await source.waitForJob(r.json.jobId);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
    const kttm = sample.segmentIds.filter((id) => id.startsWith('kttm_'));
    assert.equal(job.progress.segmentsDone, kttm.length);
    const manifests = readdirSync(path.join(gw.root, bucket, 'copy/manifests'));
    assert.equal(manifests.length, kttm.length);
  });

  test('loss of the cache, then a restore from the bucket: segments and info_dir byte-identical', async () => {
    // A lost disk: info_dir first, so the automatic restore sees drops, not losses.
    rmSync(sample.infoDir, { recursive: true, force: true });
    for (const n of readdirSync(sample.location)) rmSync(path.join(sample.location, n), { recursive: true, force: true });
    assert.equal(treeDigests(sample.location).size, 0);
    const plan = await source.request<{ totals: { restore: number } }>('POST', '/data/v1/restore', { target: url, dryRun: true });
    assert.equal(plan.status, 200, plan.text);
    assert.equal(plan.json.totals.restore, sample.segmentIds.length);
    const r = await source.request<JobAccepted>('POST', '/data/v1/restore', { target: url });
    assert.equal(r.status, 202, r.text);
    const job = await source.waitForJob(r.json.jobId);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
    assert.equal(job.progress.segmentsDone, sample.segmentIds.length);
    assert.deepEqual(treeDigests(sample.location), original);
  });

  test('restore into a directory with the CLI, and automatic restore of a lost segment, from the bucket', async () => {
    const dir = tmpDir('dbk-s3dest-');
    const cli = await runCli([
      'restore',
      '--node',
      source.url,
      '--token',
      source.token,
      '--target',
      url,
      '--data-source',
      'wikipedia',
      '--destination',
      dir,
      '--wait',
    ]);
    assert.equal(cli.code, 0, cli.stdout + cli.stderr);
    const wiki = sample.segmentIds.filter((id) => id.startsWith('wikipedia_'));
    assert.match(cli.stdout, new RegExp(`${wiki.length}/${wiki.length} segments`));
    // A directory laid out like the cache: the wikipedia segments and their info files, as they were.
    const restored = treeDigests(dir);
    const want = new Map([...original].filter(([k]) => k.startsWith(`wikipedia${path.sep}`) || k.startsWith(`info_dir${path.sep}wikipedia_`)));
    assert.deepEqual(restored, want);

    // Files gone while the info file remains: a loss the sidecar repairs by itself from the bucket.
    const id = sample.segmentIds.find((x) => x.startsWith('kttm_'))!;
    const seg = (await source.get<SegmentsResponse>('/data/v1/segments?limit=1000')).items.find((s) => s.id === id)!;
    const segRel = path.join(seg.dataSource, seg.interval.replace('/', '_'), seg.version, String(seg.partition));
    const lost = [...original.keys()].filter((k) => k.startsWith(segRel + path.sep));
    assert.ok(lost.length >= 4, segRel);
    rmSync(path.join(sample.location, segRel), { recursive: true });
    await waitFor('the lost segment restored by itself', () => lost.every((k) => treeDigests(sample.location).get(k) === original.get(k)), 30_000, 200);
    assert.deepEqual(treeDigests(sample.location), original);
  });

  test('verify over the bucket (API and CLI) names each bad segment: changed bytes, a deleted object, an edited manifest', async () => {
    let r = await source.request<JobAccepted>('POST', '/data/v1/store/verify', { target: url });
    assert.equal(r.status, 202, r.text);
    let job: Job = await source.waitForJob(r.json.jobId);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
    assert.deepEqual([job.result?.segments, job.result?.ok], [sample.segmentIds.length, sample.segmentIds.length]);
    assert.equal(job.progress.bytesDone, sample.bytes, 'every byte read back');
    const ok = await runCli(['verify', '--target', url], { env: gw.env });
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, new RegExp(`${url}: ${sample.segmentIds.length} segments .* verified, ${sample.segmentIds.length} sound, 0 bad`));

    const [a, b, c] = sample.segmentIds as [string, string, string];
    const objectOf = (id: string, name: string) => path.join(gw.root, bucket, layout.fileKey(id, node, name));
    const bytes = readFileSync(objectOf(a, '00000.smoosh'));
    bytes[10] = bytes[10]! ^ 0x01;
    writeFileSync(objectOf(a, '00000.smoosh'), bytes);
    unlinkSync(objectOf(b, 'meta.smoosh'));
    const mfile = path.join(gw.root, bucket, layout.manifestKey(c));
    const edited = JSON.parse(readFileSync(mfile, 'utf8'));
    edited.files[0].size += 1;
    writeFileSync(mfile, JSON.stringify(edited));

    r = await source.request<JobAccepted>('POST', '/data/v1/store/verify', { target: url });
    job = await source.waitForJob(r.json.jobId);
    const bad = (job.result?.bad ?? []) as Array<{ segmentId: string; problems: Array<{ problem: string }> }>;
    const byId = Object.fromEntries(bad.map((x) => [x.segmentId, x.problems.map((p) => p.problem)]));
    assert.deepEqual(byId, { [a]: ['digest-mismatch'], [b]: ['missing-file'], [c]: ['bad-manifest'] });
    const cli = await runCli(['verify', '--target', url], { env: gw.env });
    assert.equal(cli.code, 3, cli.stdout + cli.stderr);
    for (const id of [a, b, c]) assert.ok(cli.stdout.includes(id), id);

    // Restoring them fails with one clear message each, and installs nothing.
    const dir = tmpDir('dbk-s3bad-');
    const rr = await source.request<JobAccepted>('POST', '/data/v1/restore', { target: url, segmentIds: [a, b], destination: dir });
    assert.equal(rr.status, 202, rr.text);
    const failed = await source.waitForJob(rr.json.jobId);
    assert.equal(failed.state, 'failed');
    const messages = failed.errors.map((e) => e.message).join('\n');
    assert.match(messages, /00000\.smoosh has sha256 [0-9a-f]+, the manifest/);
    assert.match(messages, /meta\.smoosh is missing from the bucket \(NoSuchKey/);
    assert.equal(treeDigests(dir).size, 0, 'nothing installed');
    const edit = await source.request<{ error: { message: string } }>('POST', '/data/v1/restore', { target: url, segmentIds: [c], destination: dir });
    assert.ok(edit.status >= 400, edit.text);
    assert.match(edit.text, /damaged/);
  });

  test('bad s3:// targets get one clear 4xx naming the problem or the S3 error code', async () => {
    const cases: Array<[unknown, number, RegExp]> = [
      [{ target: 's3://' }, 400, /bucket name is missing/],
      [{ target: `s3://${bucket}/a/../b` }, 400, /"\.\." segments/],
      [{ target: 's3://Not_A_Bucket/x' }, 400, /lower-case letters/],
      [{ target: 's3://no-such-bucket-here/x' }, 404, /NoSuchBucket/],
    ];
    for (const [body, status, re] of cases) {
      const r = await source.request<{ error: { code: string; message: string } }>('POST', '/data/v1/backup', body);
      assert.equal(r.status, status, `${JSON.stringify(body)}: ${r.text}`);
      assert.match(r.json.error.message, re);
      assert.doesNotMatch(r.text, /at .*\.js:\d+/, 'no stack trace');
    }
  });

  test('a wrong secret is refused with the S3 code named, and the secret appears nowhere', async () => {
    const wrong = 'wrong-secret-0123456789abcdef';
    const other = await startSidecar(['--config', sample.propertiesFile, '--node-name', 'other'], {
      allowedTargets: [url],
      env: { ...gw.env, AWS_SECRET_ACCESS_KEY: wrong },
    });
    try {
      const r = await other.request<{ error: { code: string; message: string } }>('POST', '/data/v1/backup', { target: url });
      assert.equal(r.status, 403, r.text);
      assert.match(r.json.error.message, /SignatureDoesNotMatch/);
      for (const secret of [wrong, gw.secretKey]) {
        assert.ok(!r.text.includes(secret));
        assert.ok(!other.logs().includes(secret), 'the log never holds a secret');
      }
    } finally {
      await other.stop();
    }
    assert.ok(!source.logs().includes(gw.secretKey));
  });

  test('an endpoint that is down: one 502 naming the network error; once it is back the backup goes through', async () => {
    await gw.stop({ hard: true });
    const r = await source.request<{ error: { code: string; message: string } }>('POST', '/data/v1/backup', { target: `s3://${bucket}/later` });
    assert.equal(r.status, 502, r.text);
    assert.equal(r.json.error.code, 'target_unreachable');
    assert.match(r.json.error.message, /does not answer \(ECONNREFUSED\)/);
    await gw.start();
    const again = await source.request<JobAccepted>('POST', '/data/v1/backup', { target: `s3://${bucket}/later` });
    assert.equal(again.status, 202, again.text);
    const job = await source.waitForJob(again.json.jobId);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
    assert.equal(readdirSync(path.join(gw.root, bucket, 'later/manifests')).length, sample.segmentIds.length);
  });

  test('the endpoint stopped in the middle of a segment: no manifest while its files are incomplete; active backup retries and completes', async () => {
    const root = tmpDir('dbk-s3mid-');
    const big = await writeSampleCache({
      dir: root,
      segments: 1,
      layout: 'flat',
      dataSources: ['wikipedia'],
      segmentSize: 48 * 1024 * 1024,
      smooshChunkSize: 2147483647,
      seed: 9,
    });
    const id = big.segmentIds[0]!;
    const mid = new ObjectLayout('mid/');
    const env = { ...gw.env, DRUID_BACKUP_S3_PART_SIZE: '5MiB', DRUID_BACKUP_S3_CONCURRENCY: '1', DRUID_BACKUP_S3_MULTIPART_THRESHOLD: '5MiB' };
    const sc = await startSidecar(['--config', big.propertiesFile, '--node-name', 'big-node', '--target', `s3://${bucket}/mid`], { env });
    try {
      // Stop the server as soon as the first parts of the segment have arrived.
      const uploading = path.join(gw.root, bucket, '.sgwtmp');
      await waitFor(
        'the upload to begin',
        () => walk(path.join(gw.root, bucket)).some((f) => f.startsWith('.sgwtmp') || f.startsWith('mid/segments')),
        30_000,
        5,
      );
      await gw.stop({ hard: true });
      assert.ok(
        walk(path.join(gw.root, bucket)).some((f) => f.startsWith('.sgwtmp') || f.startsWith('mid/segments')),
        `parts under ${uploading}`,
      );
      const manifest = path.join(gw.root, bucket, mid.manifestKey(id));
      await waitFor('the sidecar to see the failure', async () => (await sc.metric('druid_backup_failures_total')) >= 1, 30_000, 100);
      assert.throws(() => statSync(manifest), 'no manifest for a segment whose files are incomplete');
      await gw.start();
      await waitFor(
        'the segment backed up after the endpoint came back',
        async () => (await sc.get<SegmentsResponse>('/data/v1/segments?state=backedUp&limit=1')).total === 1,
        60_000,
        200,
      );
      const m = JSON.parse(readFileSync(manifest, 'utf8'));
      const flat = path.join(big.location, id);
      for (const f of m.files) assert.equal(sha(path.join(gw.root, bucket, mid.dataPrefix(id, 'big-node'), f.name)), sha(path.join(flat, f.name)));
      assert.deepEqual(readdirSync(path.join(gw.root, bucket, mid.dataPrefix(id, 'big-node'))).sort(), m.files.map((f: { name: string }) => f.name).sort());
      const leftovers = walk(path.join(gw.root, bucket)).filter((f) => f.startsWith('.sgwtmp') && !f.endsWith('/'));
      assert.deepEqual(
        leftovers.filter((f) => f.includes('multipart')),
        [],
        'no multipart upload left',
      );
    } finally {
      await sc.stop();
    }
  });
});
