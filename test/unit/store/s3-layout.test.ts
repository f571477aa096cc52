/** Pure parts of the S3 target: the URL, the key layout, the composite checksum, error messages, the config keys. */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { loadSidecarConfig } from '../../../sidecar/config.js';
import type { S3Settings } from '../../../sidecar/store/s3/client.js';
import { describeEndpoint, s3SettingsFromEnv } from '../../../sidecar/store/s3/client.js';
import { s3Error } from '../../../sidecar/store/s3/errors.js';
import { MAX_NAME, ObjectLayout, encodeName } from '../../../sidecar/store/object/layout.js';
import { expectedChecksum } from '../../../sidecar/store/s3/upload.js';
import { parseS3Url } from '../../../sidecar/store/s3/url.js';

test('s3:// URLs: bucket and prefix, canonical form; everything else refused with the reason', () => {
  assert.deepEqual(parseS3Url('s3://druid-backups'), { bucket: 'druid-backups', prefix: '', url: 's3://druid-backups' });
  assert.deepEqual(parseS3Url('s3://druid-backups/'), { bucket: 'druid-backups', prefix: '', url: 's3://druid-backups' });
  assert.deepEqual(parseS3Url('S3://b.example/prod/druid/'), { bucket: 'b.example', prefix: 'prod/druid/', url: 's3://b.example/prod/druid' });
  const bad: Array<[string, RegExp]> = [
    ['s3://', /bucket name is missing/],
    ['s3:///p', /bucket name is missing/],
    ['s3://bk', /3 to 63 characters/],
    ['s3://UPPER', /lower-case/],
    ['s3://a..b', /must not have/],
    ['s3://192.168.1.1', /IP address/],
    ['s3://bucket/../etc', /"\.\." segments/],
    ['s3://bucket/a/..', /"\.\." segments/],
    ['s3://bucket/./a', /"\." segments/],
    ['s3://bucket/a//b', /empty segment/],
    ['s3://bucket/a b', /may hold only/],
    ['s3://bucket/%2e%2e', /may hold only/],
    ['s3://bucket:9000/p', /no port/],
    ['s3://AKIA:secret@bucket', /credentials do not belong/],
    ['s3://bucket/p?endpoint=x', /no query/],
    ['http://bucket/p', /not an s3:\/\/ URL/],
    [`s3://bucket/${'a'.repeat(401)}`, /longer than 400/],
  ];
  for (const [url, re] of bad)
    assert.throws(
      () => parseS3Url(url),
      (e: Error & { code?: string }) => e.code === 'bad_request' && re.test(e.message),
      url,
    );
});

function randomId(): string {
  const pieces = ['wiki_pedia', 'a:b', 'x+y', '50%', 'ü', 'a/b', '.', '..', '~', ' ', '_1', '_2', '.json', 'Z', '-', '%2F'];
  let s = '';
  const n = 1 + (randomBytes(1)[0]! % 8);
  for (let i = 0; i < n; i++) s += pieces[randomBytes(1)[0]! % pieces.length];
  return s;
}

test('encoded names keep [A-Za-z0-9_-], escape every other byte, and are reversible unless cut', () => {
  assert.equal(encodeName('wikipedia_2015-09-12T00:00:00.000Z_v1'), 'wikipedia_2015-09-12T00%3A00%3A00%2E000Z_v1');
  assert.equal(encodeName('a/b+c%ü '), 'a%2Fb%2Bc%25%C3%BC%20');
  for (let i = 0; i < 500; i++) {
    const id = randomId();
    const enc = encodeName(id);
    assert.match(enc, /^[A-Za-z0-9_%-]+$/);
    assert.equal(decodeURIComponent(enc), id);
  }
});

test('a long name is cut at a %XX boundary and ends in ~ and the sha256 of the whole', () => {
  for (const long of ['x'.repeat(1000), 'é'.repeat(400), `${'a'.repeat(MAX_NAME - 66)}${':'.repeat(40)}`]) {
    const enc = encodeName(long);
    assert.ok(enc.length <= MAX_NAME, `${enc.length}`);
    const [head, hash] = enc.split('~');
    assert.equal(hash, createHash('sha256').update(long).digest('hex'));
    assert.match(head!, /^(?:[A-Za-z0-9_-]|%[0-9A-F]{2})+$/, 'no %XX cut in two');
    const full = [...Buffer.from(long)]
      .map((b) => (/[A-Za-z0-9_-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`))
      .join('');
    assert.ok(full.startsWith(head!));
  }
});

test('no key of the layout is a prefix of another, for any ids, nodes and prefixes', () => {
  const layout = new ObjectLayout('backups/');
  const keys = new Set<string>([layout.catalogKey]);
  const ids = Array.from({ length: 300 }, randomId);
  ids.push('x'.repeat(500), `${'x'.repeat(500)}_1`, 'a', 'a_1', 'a.json', 'a.json_1');
  for (const id of ids) {
    keys.add(layout.manifestKey(id));
    for (const node of ['h1:8083', 'h1:8083/x', 'h'])
      for (const f of ['version.bin', 'meta.smoosh', '00000.smoosh', 'factory.json']) keys.add(layout.fileKey(id, node, f));
  }
  const sorted = [...keys].sort();
  // In sorted order a prefix comes right before a key it begins.
  for (let i = 1; i < sorted.length; i++) assert.ok(!sorted[i]!.startsWith(sorted[i - 1]!), `${sorted[i - 1]} is a prefix of ${sorted[i]}`);
  for (const k of keys) assert.ok(Buffer.byteLength(k) < 1024);
  for (const id of ids) {
    assert.ok(layout.isManifestKey(layout.manifestKey(id)));
    const back = layout.idOfManifestKey(layout.manifestKey(id));
    assert.ok(back === id || (back === undefined && encodeName(id).includes('~')));
    assert.ok(layout.manifestKey(id).startsWith(layout.dataSourceManifestsPrefix(id.split('_')[0]!)) || !id.includes('_'));
  }
  assert.ok(!layout.isManifestKey(layout.fileKey('a', 'n', 'version.bin')));
});

test('the composite checksum S3 reports for a multipart upload is sha256 over the part digests, -N', () => {
  const parts = ['a', 'b', 'c'].map((x) => createHash('sha256').update(x).digest());
  const want = `${createHash('sha256').update(Buffer.concat(parts)).digest('base64')}-3`;
  assert.equal(expectedChecksum(parts.map((p) => p.toString('hex'))), want);
  assert.equal(expectedChecksum([parts[0]!.toString('hex')]), parts[0]!.toString('base64'));
});

test('S3 failures become one line naming the code, the bucket and the endpoint', () => {
  const ctx = { action: 'reading the manifest of x', bucket: 'b1', endpoint: 'http://127.0.0.1:7070' };
  const sdk = (name: string, status?: number) => Object.assign(new Error('server says'), { name, $metadata: { httpStatusCode: status } });
  let e = s3Error(sdk('NoSuchBucket', 404), ctx);
  assert.equal(e.code, 'target_error');
  assert.equal(e.status, 404);
  assert.match(e.message, /bucket "b1" at http:\/\/127\.0\.0\.1:7070: the bucket does not exist \(NoSuchBucket\)/);
  e = s3Error(sdk('SignatureDoesNotMatch', 403), ctx);
  assert.equal(e.status, 403);
  assert.match(e.message, /refused the credentials \(SignatureDoesNotMatch\).*AWS_SECRET_ACCESS_KEY/);
  e = s3Error(sdk('InvalidAccessKeyId', 403), ctx);
  assert.match(e.message, /InvalidAccessKeyId/);
  e = s3Error(sdk('AccessDenied', 403), ctx);
  assert.match(e.message, /denied access \(AccessDenied\)/);
  e = s3Error(sdk('InternalError', 500), ctx);
  assert.equal(e.code, 'target_unreachable');
  assert.match(e.message, /InternalError, HTTP 500/);
  e = s3Error(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED', $metadata: { attempts: 5 } }), ctx);
  assert.equal(e.code, 'target_unreachable');
  assert.match(e.message, /does not answer \(ECONNREFUSED\)/);
  const ac = new AbortController();
  ac.abort();
  assert.equal(s3Error(new Error('aborted'), { ...ctx, signal: ac.signal }).code, 'cancelled');
});

test('the endpoint shown in messages never carries credentials', () => {
  assert.equal(describeEndpoint({ endpoint: 'http://user:pw@minio:9000/' }, {}), 'http://minio:9000');
  assert.equal(describeEndpoint({}, { AWS_ENDPOINT_URL_S3: 'https://s3.example.com' }), 'https://s3.example.com');
  assert.equal(describeEndpoint({}, { AWS_REGION: 'eu-west-1' }), 'AWS S3 (eu-west-1)');
});

function conf(lines: string) {
  const root = mkdtempSync(path.join(os.tmpdir(), 'dbk-s3conf-'));
  mkdirSync(path.join(root, 'cache'));
  const file = path.join(root, 'runtime.properties');
  writeFileSync(file, `druid.segmentCache.locations=[{"path":"${root}/cache"}]\n${lines}`);
  return { root, file };
}

test('druid.backup.target takes s3:// URLs; druid.backup.s3.* keys are typed and checked', () => {
  let { root, file } = conf('druid.backup.target=s3://druid-backups/prod/\ndruid.backup.s3.endpoint=http://127.0.0.1:7070\ndruid.backup.s3.partSize=16MiB\n');
  let c = loadSidecarConfig({ configFile: file, env: {}, baseDir: root });
  assert.equal(c.target, 's3://druid-backups/prod');
  assert.deepEqual(c.kindSettings.s3, {
    endpoint: 'http://127.0.0.1:7070',
    region: undefined,
    forcePathStyle: undefined,
    partSize: 16 * 1024 * 1024,
    concurrency: 4,
    multipartThreshold: 5 * 1024 ** 3,
  });
  c = loadSidecarConfig({
    configFile: file,
    env: {
      DRUID_BACKUP_S3_CONCURRENCY: '8',
      DRUID_BACKUP_S3_REGION: 'eu-west-1',
      DRUID_BACKUP_S3_FORCE_PATH_STYLE: 'false',
      DRUID_BACKUP_S3_MULTIPART_THRESHOLD: '64MiB',
    },
    baseDir: root,
  });
  assert.equal((c.kindSettings.s3 as S3Settings).concurrency, 8);
  assert.equal((c.kindSettings.s3 as S3Settings).multipartThreshold, 64 * 1024 * 1024);
  assert.equal((c.kindSettings.s3 as S3Settings).region, 'eu-west-1');
  assert.equal((c.kindSettings.s3 as S3Settings).forcePathStyle, false);
  assert.equal(loadSidecarConfig({ configFile: file, env: {}, flags: { target: 's3://other-bucket' }, baseDir: root }).target, 's3://other-bucket');

  const cases: Array<[string, RegExp]> = [
    ['druid.backup.target=s3://\n', /druid\.backup\.target: target "s3:\/\/": the bucket name is missing/],
    ['druid.backup.target=s3://bucket/a/../b\n', /must not have "\.\." segments/],
    ['druid.backup.s3.partSize=1MiB\n', /druid\.backup\.s3\.partSize: 1MiB is outside 5\.00 MiB\.\.5\.00 GiB/],
    ['druid.backup.s3.partSize=lots\n', /"lots" is not a size/],
    ['druid.backup.s3.concurrency=0\n', /outside 1\.\.64/],
    ['druid.backup.s3.multipartThreshold=1MiB\n', /druid\.backup\.s3\.multipartThreshold: 1MiB is outside 5\.00 MiB\.\.5\.00 GiB/],
    ['druid.backup.s3.multipartThreshold=6GiB\n', /druid\.backup\.s3\.multipartThreshold: 6GiB is outside 5\.00 MiB\.\.5\.00 GiB/],
    ['druid.backup.s3.endpoint=http://key:secret@minio:9000\n', /credentials do not belong in the URL; they come from the AWS environment/],
    ['druid.backup.s3.endpoint=minio:9000\n', /only http:\/\/ and https:\/\//],
    ['druid.backup.s3.bucket=x\n', /unknown key/],
  ];
  for (const [line, re] of cases) {
    ({ root, file } = conf(line));
    assert.throws(
      () => loadSidecarConfig({ configFile: file, env: {}, baseDir: root }),
      (e: Error & { code?: string }) => e.code === 'bad_config' && re.test(e.message),
      line,
    );
  }
});

test('the command-line tools read druid.backup.s3.* from DRUID_BACKUP_S3_* and check them as the sidecar does', () => {
  assert.deepEqual(s3SettingsFromEnv({ DRUID_BACKUP_S3_PART_SIZE: '16MiB', DRUID_BACKUP_S3_MULTIPART_THRESHOLD: '64MiB', DRUID_BACKUP_S3_CONCURRENCY: '2' }), {
    endpoint: undefined,
    region: undefined,
    partSize: 16 * 1024 ** 2,
    multipartThreshold: 64 * 1024 ** 2,
    concurrency: 2,
  });
  const cases: Array<[NodeJS.ProcessEnv, RegExp]> = [
    [{ DRUID_BACKUP_S3_MULTIPART_THRESHOLD: '1MiB' }, /multipartThreshold: 1048576 bytes is outside 5 MiB to 5 GiB/],
    [{ DRUID_BACKUP_S3_MULTIPART_THRESHOLD: '6GiB' }, /multipartThreshold: 6442450944 bytes is outside 5 MiB to 5 GiB/],
    [{ DRUID_BACKUP_S3_MULTIPART_THRESHOLD: 'big' }, /DRUID_BACKUP_S3_MULTIPART_THRESHOLD.*"big" is not a size/],
    [{ DRUID_BACKUP_S3_PART_SIZE: '1MiB' }, /partSize: 1048576 bytes is outside S3's part sizes/],
    // User info after the host-like start, and a query, are refused (the check is anchored at both ends).
    [{ DRUID_BACKUP_S3_ENDPOINT: 'http://user:pw@minio:9000' }, /DRUID_BACKUP_S3_ENDPOINT.*without credentials/],
    [{ DRUID_BACKUP_S3_ENDPOINT: 'http://minio:9000/?x=1' }, /DRUID_BACKUP_S3_ENDPOINT.*or a query/],
  ];
  for (const [env, re] of cases)
    assert.throws(
      () => s3SettingsFromEnv(env),
      (e: Error & { code?: string }) => e.code === 'bad_config' && re.test(e.message),
      JSON.stringify(env),
    );
});
