/**
 * The API's edges with real processes: auth on every route but health, and a clear 4xx JSON error for each kind
 * of bad input (malformed JSON, unknown fields, bad ids and intervals, unreachable targets, bad uploads), with
 * nothing stored by a rejected upload.
 */
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { Header } from 'tar';
import type { Job, StoredSegment } from '../../sidecar/api.js';
import { END_OF_ARCHIVE, fileHeader, padding } from '../../sidecar/archive/tar.js';
import { packSegment } from '../../sidecar/archive/pack.js';
import { writeSampleCache } from '../../sidecar/sample/sampleCache.js';
import { runCli } from '../helpers/cli.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { request, startSidecar, tmpDir, waitFor } from '../helpers/sidecar.js';

const ID = 'uploads_2015-09-12T00:00:00.000Z_2015-09-12T01:00:00.000Z_2024-01-01T00:00:01.234Z';
const enc = encodeURIComponent;

function assertError(r: { status: number; json: unknown; text: string }, status: number, code: string, message?: RegExp): void {
  assert.equal(r.status, status, r.text);
  const e = (r.json as { error?: { code: string; message: string } }).error;
  assert.ok(e, `an error body: ${r.text}`);
  assert.equal(e.code, code, r.text);
  assert.doesNotMatch(r.text, /\n\s+at /, 'no stack trace');
  if (message) assert.match(e.message, message);
}

function entry(name: string, body: Buffer | string): Buffer {
  const b = Buffer.from(body);
  return Buffer.concat([fileHeader(name, b.length, new Date(0)), b, padding(b.length)]);
}

function segmentJson(id: string, files: Array<{ name: string; size: number }>): Buffer {
  return entry('segment.json', JSON.stringify({ formatVersion: 1, segmentId: id, descriptor: null, files }));
}

function digests(files: Array<{ name: string; size: number; sha256: string }>): Buffer {
  return entry('digests.json', JSON.stringify({ files }));
}

async function packed(id: string, files: Record<string, string>, node = 'n1'): Promise<Buffer> {
  const p = packSegment({
    segmentId: id,
    descriptor: null,
    node,
    files: Object.entries(files).map(([name, body]) => ({ name, size: Buffer.byteLength(body), open: () => Readable.from([Buffer.from(body)]) })),
  });
  const parts: Buffer[] = [];
  for await (const c of p.stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

describe('sidecar API edges', () => {
  let target: SidecarProcess;
  let source: SidecarProcess;
  let storeDir: string;

  before(async () => {
    storeDir = tmpDir('dbk-api-store-');
    const cacheDir = tmpDir('dbk-api-cache-');
    const sample = await writeSampleCache({
      dir: cacheDir,
      segments: 3,
      layout: 'nested',
      dataSources: ['wikipedia'],
      segmentSize: 4096,
      smooshChunkSize: 2147483647,
      seed: 7,
    });
    target = await startSidecar(['--store', storeDir]);
    // Any target may be named: the tests below also name unreachable and misconfigured ones.
    source = await startSidecar(['--config', sample.propertiesFile, '--node-name', 'api-source'], { token: target.token, allowedTargets: ['*'] });
  });
  after(async () => {
    await source?.stop();
    await target?.stop();
  });

  test('health is open; every other route needs the bearer token', async () => {
    const h = await request(source.url, null, 'GET', '/status/health');
    assert.equal(h.status, 200);
    assert.equal((h.json as { status: string }).status, 'ok');
    for (const [method, p] of [
      ['GET', '/data/v1/node'],
      ['GET', '/data/v1/segments'],
      ['GET', '/data/v1/jobs'],
      ['POST', '/data/v1/backup'],
      ['GET', '/data/v1/events'],
      ['GET', '/metrics'],
      ['GET', '/openapi.json'],
      ['GET', '/data/v1/store/segments'],
      ['GET', '/no/such/route'],
    ] as const) {
      assertError(await source.request(method, p, undefined, { token: null }), 401, 'unauthorized', /missing/);
      assertError(await source.request(method, p, undefined, { token: 'x'.repeat(40) }), 401, 'unauthorized', /wrong token/);
    }
    assertError(
      await source.request('GET', '/data/v1/node', undefined, { token: null, headers: { authorization: `Basic ${source.token}` } }),
      401,
      'unauthorized',
      /Bearer/,
    );
    // The token of one sidecar is not a prefix match: one character more is wrong.
    assertError(await source.request('GET', '/data/v1/node', undefined, { token: `${source.token}x` }), 401, 'unauthorized');
    assert.equal((await source.request('GET', '/data/v1/node')).status, 200);
    assertError(await source.request('GET', '/no/such/route'), 404, 'not_found');
  });

  test('POST /data/v1/backup rejects each bad input with a 4xx that says what is wrong', async () => {
    const post = (body: unknown, opts = {}) => source.request('POST', '/data/v1/backup', body, opts);
    assertError(await post(undefined, { raw: '{"target": ', headers: { 'content-type': 'application/json' } }), 400, 'bad_request', /not valid JSON/);
    assertError(await post({ target: target.url, extra: 1 }), 400, 'bad_request', /unknown field "extra"/);
    // Left out, "target" means the node's configured targets (issue 10); this node has none.
    assertError(await post({ dataSource: 'wikipedia' }), 400, 'bad_request', /no target given and none configured/);
    assertError(await post({ target: 'not a url' }), 400, 'bad_request', /not a URL/);
    assertError(await post({ target: 'ftp://host/x' }), 400, 'bad_request', /unsupported scheme/);
    assertError(await post({ target: target.url, interval: '2015-09-12/yesterday' }), 400, 'bad_interval', /not an ISO-8601 instant/);
    assertError(await post({ target: target.url, interval: '2015-09-13/2015-09-12' }), 400, 'bad_interval', /end is before the start/);
    assertError(await post({ target: target.url, segmentIds: ['not-a-segment'] }), 400, 'bad_segment_id', /not a Druid segment id/);
    assertError(await post({ target: target.url, segmentIds: [{}] }), 400, 'bad_request');
    assertError(await post({ target: target.url, dataSource: 'a/b' }), 400, 'bad_request', /contains "\/"/);
    assertError(await post(undefined, { raw: 'target=x', headers: { 'content-type': 'text/plain' } }), 415, 'bad_request');
    assertError(
      await post(undefined, { raw: `{"target":"${'x'.repeat(17 * 1024 * 1024)}"}`, headers: { 'content-type': 'application/json' } }),
      413,
      'payload_too_large',
    );
    // Unreachable: nothing listens on port 1. A live sidecar with another token: its answer is relayed.
    assertError(await post({ target: 'http://127.0.0.1:1' }), 502, 'target_unreachable', /127\.0\.0\.1:1 is unreachable/);
    const other = await startSidecar(['--store', tmpDir('dbk-api-other-')]);
    try {
      assertError(await post({ target: other.url }), 502, 'target_error', /refused the token/);
    } finally {
      await other.stop();
    }
    // A sidecar without a store cannot be a target: its status and code are relayed, not its text.
    assertError(await post({ target: source.url }), 502, 'target_error', /cannot take backups: .* answered 404 not_found \(it does not have it\)$/);
    const jobs = await source.get<{ items: Job[] }>('/data/v1/jobs');
    assert.equal(jobs.items.length, 0, 'no job was started by a rejected request');
  });

  test('jobs, segments and store queries reject bad parameters', async () => {
    assertError(await source.request('GET', '/data/v1/jobs/..%2Fetc'), 400, 'bad_request');
    assertError(await source.request('GET', '/data/v1/jobs/backup-abc-0000abcd'), 404, 'not_found');
    assertError(await source.request('DELETE', '/data/v1/jobs/backup-abc-0000abcd'), 404, 'not_found');
    assertError(await source.request('GET', '/data/v1/segments?limit=0'), 400, 'bad_request', /limit/);
    assertError(await source.request('GET', '/data/v1/segments?limit=5000'), 400, 'bad_request', /limit/);
    assertError(await source.request('GET', '/data/v1/segments?limit=many'), 400, 'bad_request');
    assertError(await source.request('GET', '/data/v1/segments?color=red'), 400, 'bad_request', /color/);
    assertError(await source.request('GET', '/data/v1/segments?state=happy'), 400, 'bad_request');
    assertError(await source.request('GET', '/data/v1/segments?cursor=garbage'), 400, 'bad_request', /cursor/);
    assertError(await source.request('GET', '/data/v1/segments?interval=2015'), 400, 'bad_interval');
    assertError(await source.request('GET', '/data/v1/store/segments'), 404, 'not_found', /keeps no store/);
    assertError(await target.request('GET', '/data/v1/segments'), 404, 'not_found', /no segment cache/);
    assertError(await target.request('GET', `/data/v1/store/segments/${enc('bad id')}/manifest`), 400, 'bad_segment_id');
    assertError(await target.request('GET', `/data/v1/store/segments/${enc(ID)}/manifest`), 404, 'not_found');
    assert.equal((await target.request('HEAD', `/data/v1/store/segments/${enc(ID)}`)).status, 404);
    assert.equal((await target.request('HEAD', `/data/v1/store/segments/${enc('bad id')}`)).status, 400);
  });

  test('bad uploads are refused with 4xx and leave nothing in the store', async () => {
    const put = (id: string, body: Buffer, headers: Record<string, string> = {}) =>
      target.request('PUT', `/data/v1/store/segments/${enc(id)}`, undefined, {
        raw: body,
        headers: { 'content-type': 'application/x-tar', 'x-druid-backup-node': 'n1', ...headers },
      });
    const good = await packed(ID, { 'version.bin': '\0\0\0\x09', '00000.smoosh': 'smoosh bytes' });
    assertError(await put('not-an-id', good), 400, 'bad_segment_id');
    assertError(await put(ID, good, { 'content-type': 'application/octet-stream' }), 415, 'bad_request', /x-tar/);
    assertError(await put(ID, good, { 'x-druid-backup-node': 'has space' }), 400, 'bad_request', /node name/);
    assertError(await put(ID, Buffer.from('this is not a tar archive'.repeat(40))), 400, 'bad_archive');
    assertError(await put(ID, good.subarray(0, good.length - 1500)), 400, 'bad_archive', /ends early/);
    assertError(await put(ID.replace('uploads', 'other'), good), 400, 'bad_archive', /declares segment/);

    const files = [{ name: 'version.bin', size: 4 }];
    const vb = entry('version.bin', '\0\0\0\x09');
    const sha = '3b28a6c3766c6295adad976d349705ef49393fbfdebe4facb5862d2cdfa285d3';
    const cases: Array<[string, Buffer, number, string, RegExp]> = [
      [
        'path traversal',
        Buffer.concat([segmentJson(ID, [{ name: '../evil', size: 4 }]), entry('../evil', 'evil'), END_OF_ARCHIVE]),
        400,
        'bad_archive',
        /not a plain segment file name/,
      ],
      [
        'entry not declared',
        Buffer.concat([segmentJson(ID, files), entry('other.bin', '\0\0\0\x09'), END_OF_ARCHIVE]),
        400,
        'bad_archive',
        /where "version.bin" was expected/,
      ],
      [
        'size other than declared',
        Buffer.concat([segmentJson(ID, [{ name: 'version.bin', size: 5 }]), vb, END_OF_ARCHIVE]),
        400,
        'bad_archive',
        /5 were declared/,
      ],
      [
        'no data file',
        Buffer.concat([segmentJson(ID, [{ name: 'meta.smoosh', size: 1 }]), END_OF_ARCHIVE]),
        400,
        'bad_archive',
        /version\.bin or druid\.segment/,
      ],
      [
        'digest mismatch',
        Buffer.concat([segmentJson(ID, files), vb, digests([{ name: 'version.bin', size: 4, sha256: 'f'.repeat(64) }]), END_OF_ARCHIVE]),
        422,
        'digest_mismatch',
        /nothing was stored/,
      ],
      [
        'data after the end',
        Buffer.concat([segmentJson(ID, files), vb, digests([{ name: 'version.bin', size: 4, sha256: sha }]), END_OF_ARCHIVE, Buffer.from('trailing')]),
        400,
        'bad_archive',
        /after the end/,
      ],
      [
        'extra entry',
        Buffer.concat([segmentJson(ID, files), vb, digests([{ name: 'version.bin', size: 4, sha256: sha }]), entry('x', 'y'), END_OF_ARCHIVE]),
        400,
        'bad_archive',
        /after the last declared/,
      ],
      ['too large', Buffer.concat([segmentJson(ID, [{ name: 'version.bin', size: 2 ** 50 }]), END_OF_ARCHIVE]), 413, 'payload_too_large', /larger than/],
    ];
    const symlink = Buffer.alloc(512);
    new Header({ path: 'version.bin', type: 'SymbolicLink', linkpath: '/etc/passwd', size: 0, mode: 0o777, mtime: new Date(0) }).encode(symlink, 0);
    cases.push(['symlink', Buffer.concat([segmentJson(ID, files), symlink, END_OF_ARCHIVE]), 400, 'bad_archive', /SymbolicLink entry/]);
    for (const [what, body, status, code, re] of cases) {
      const r = await put(ID, body);
      assert.equal(r.status, status, `${what}: ${r.text}`);
      assertError(r, status, code, re);
    }
    const stats = await target.get<{ segments: number }>('/data/v1/store/stats');
    assert.equal(stats.segments, 0);
    assert.deepEqual(readdirSync(path.join(storeDir, '.tmp')), [], 'no temporary upload left behind');
    assert.deepEqual(readdirSync(path.join(storeDir, 'segments')), []);

    // A good upload, the same bytes from another node, and different bytes from a third.
    const r1 = await put(ID, good);
    assert.equal(r1.status, 201, r1.text);
    const r2 = await put(ID, await packed(ID, { 'version.bin': '\0\0\0\x09', '00000.smoosh': 'smoosh bytes' }, 'n2'), { 'x-druid-backup-node': 'n2' });
    assert.equal(r2.status, 200, r2.text);
    const r3 = await put(ID, await packed(ID, { 'version.bin': '\0\0\0\x09', '00000.smoosh': 'other bytes!' }, 'n3'), { 'x-druid-backup-node': 'n3' });
    assertError(r3, 409, 'conflict', /flagged/);
    const cat = await target.get<{ items: StoredSegment[] }>('/data/v1/store/segments');
    assert.deepEqual(cat.items[0]!.sources, ['n1', 'n2']);
    assert.deepEqual(cat.items[0]!.conflicts, ['n3']);
    const flagged = await target.get<{ total: number }>('/data/v1/store/segments?state=conflict');
    assert.equal(flagged.total, 1);
    assertError(await target.request('POST', `/data/v1/store/segments/${enc(ID)}/sources`, { node: 'n4', digest: 'xyz' }), 400, 'bad_request', /digest/);
    assertError(
      await target.request('POST', `/data/v1/store/segments/${enc(ID)}/sources`, { node: 'n4', digest: 'a'.repeat(64), more: 1 }),
      400,
      'bad_request',
      /unknown field/,
    );
  });

  test('without a configured token the sidecar generates one into {stateDir}/token (0600) and never logs it', async () => {
    const stateDir = tmpDir('dbk-api-gen-');
    const sc = await startSidecar(['--store', tmpDir('dbk-api-gen-store-')], { token: null, stateDir });
    try {
      const file = path.join(stateDir, 'token');
      assert.equal(statSync(file).mode & 0o777, 0o600);
      assert.match(sc.token, /^[0-9a-f]{64}$/);
      assert.ok(!sc.logs().includes(sc.token), 'the token is not in the log');
      assert.match(sc.logs(), /"tokenFile":"[^"]+\/token"/);
      assert.equal((await sc.request('GET', '/data/v1/store/stats')).status, 200);
      await sc.stop();
      const again = await startSidecar(['--store', tmpDir('dbk-api-gen-store-')], { token: null, stateDir });
      assert.equal(again.token, sc.token, 'the generated token is kept across restarts');
      await again.stop();
    } finally {
      await sc.stop();
    }
  });

  test('the sidecar command refuses bad configuration with one line and status 2', async () => {
    const dir = tmpDir('dbk-api-cfg-');
    const cases: Array<[string[], RegExp]> = [
      [['sidecar'], /nothing to do/],
      [['sidecar', '--store', dir, '--port', '70000'], /70000 is outside 0\.\.65535/],
      [['sidecar', '--store', dir, '--token', 'short'], /shorter than 16 characters/],
      [['sidecar', '--store', dir, '--log-level', 'loud'], /"loud" is not one of/],
      [['sidecar', '--config', path.join(dir, 'missing.properties')], /missing\.properties/],
      [
        ['sidecar', '--store', dir, '--state-dir', path.join(dir, 'st'), '--bind', '127.0.0.1', '--port', String(target.port), '--token', target.token],
        /already in use/,
      ],
    ];
    for (const [args, re] of cases) {
      const r = await runCli(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}${r.stdout}`);
      assert.match(r.stderr, re, args.join(' '));
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
  });

  test('openapi.json describes the routes; metrics are Prometheus text; events stream job changes', async () => {
    const doc = await source.get<{ openapi: string; paths: Record<string, unknown> }>('/openapi.json');
    assert.match(doc.openapi, /^3\./);
    for (const p of ['/data/v1/backup', '/data/v1/jobs/{id}', '/data/v1/segments', '/data/v1/store/segments/{id}', '/data/v1/events', '/status/health'])
      assert.ok(doc.paths[p], p);
    const metrics = await source.metrics();
    assert.match(metrics, /# TYPE druid_backup_segments_backed_up_total counter/);
    assert.match(metrics, /druid_backup_queue_depth/);

    const ac = new AbortController();
    const res = await fetch(`${source.url}/data/v1/events`, { headers: { authorization: `Bearer ${source.token}` }, signal: ac.signal });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    let text = '';
    const reading = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) text += decoder.decode(chunk);
    })().catch(() => undefined);
    const accepted = await source.request<{ jobId: string }>('POST', '/data/v1/backup', { target: target.url, dataSource: 'wikipedia' });
    assert.equal(accepted.status, 202, accepted.text);
    const job = await source.waitForJob(accepted.json.jobId);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
    await waitFor('a finished job event', () => text.includes('event: job') && text.includes('"state":"succeeded"'));
    ac.abort();
    await reading;
  });
});
