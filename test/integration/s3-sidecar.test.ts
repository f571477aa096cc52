/**
 * S3 targets with real processes: a source sidecar (dist/sidecar.js) backing up a sample cache to a real VersityGW,
 * its endpoint and credentials given the way operators give them (the AWS environment variables). The objects in
 * the bucket are hashed as the files VersityGW keeps them as.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { JobAccepted, SegmentsResponse } from '../../sidecar/api.js';
import type { SampleResult } from '../../sidecar/sample/sampleCache.js';
import { writeSampleCache } from '../../sidecar/sample/sampleCache.js';
import { S3Layout } from '../../sidecar/store/s3/layout.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { startSidecar, tmpDir, waitFor } from '../helpers/sidecar.js';
import type { VersityGw } from '../helpers/versitygw.js';
import { startVersityGw } from '../helpers/versitygw.js';

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
  const bucket = 'druid-backups';
  const url = `s3://${bucket}/prod/druid`;
  const layout = new S3Layout('prod/druid/');
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
    source = await startSidecar(['--config', sample.propertiesFile, '--node-name', node, '--target', url], {
      env: { ...gw.env, DRUID_BACKUP_RECONCILE_PERIOD: 'PT1H' },
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
    const other = await startSidecar(['--config', sample.propertiesFile, '--node-name', 'other'], { env: { ...gw.env, AWS_SECRET_ACCESS_KEY: wrong } });
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
    const mid = new S3Layout('mid/');
    const env = { ...gw.env, DRUID_BACKUP_S3_PART_SIZE: '5MiB', DRUID_BACKUP_S3_CONCURRENCY: '1' };
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
