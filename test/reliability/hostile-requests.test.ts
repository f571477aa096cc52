/**
 * Hostile requests to every endpoint the sidecar describes in its own /openapi.json, on a source and on a target:
 * without a token, with a wrong one, with one of another length or form; oversized and malformed JSON; path
 * traversal in ids, plain and encoded; filters that would select everything or ask for millions of rows; targets
 * that name a local directory. Each gets a clear 4xx JSON error without a stack trace, and nothing changes: the
 * store, the cache, the job list and the directories the requests aim at stay as they were.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Job, SegmentsResponse } from '../../sidecar/api.js';
import type { SampleResult } from '../../sidecar/sample/sampleCache.js';
import { writeSampleCache } from '../../sidecar/sample/sampleCache.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { startSidecar, tmpDir, waitFor } from '../helpers/sidecar.js';
import { rawHttp, treeDiff, treeSnapshot } from './lib.js';

interface OpenApi {
  paths: Record<string, Record<string, unknown>>;
}

const METHODS = ['get', 'post', 'put', 'delete', 'head'];

function isCleanError(r: { status: number; text: string }, what: string, status?: number | number[]): void {
  const allowed = status === undefined ? undefined : Array.isArray(status) ? status : [status];
  assert.ok(r.status >= 400 && r.status < 500, `${what}: expected a 4xx, got ${r.status}: ${r.text.slice(0, 300)}`);
  if (allowed) assert.ok(allowed.includes(r.status), `${what}: expected ${allowed.join(' or ')}, got ${r.status}: ${r.text.slice(0, 300)}`);
  assert.doesNotMatch(r.text, /\n\s+at |node:internal|\.(ts|js):\d+:\d+/, `${what}: no stack trace`);
  if (r.text) {
    const e = (JSON.parse(r.text) as { error?: { code?: string; message?: string } }).error;
    assert.ok(e?.code && e.message, `${what}: a JSON error {"error":{"code","message"}}: ${r.text.slice(0, 300)}`);
  }
}

describe('hostile requests to every endpoint of /openapi.json', () => {
  let sample: SampleResult;
  let sandbox: string;
  let storeDir: string;
  let target: SidecarProcess;
  let source: SidecarProcess;
  let storedId: string;
  let jobId: string;
  let before_: { store: Map<string, string>; cache: Map<string, string>; jobs: number; victim: Map<string, string> };
  let count = 0;

  const snapshot = async () => ({
    store: treeSnapshot(storeDir),
    cache: treeSnapshot(path.dirname(sample.location)),
    jobs: (await source.get<{ total: number }>('/data/v1/jobs')).total,
    victim: treeSnapshot(path.join(sandbox, 'victim')),
  });

  before(async () => {
    sandbox = tmpDir('dbk-hostile-req-');
    storeDir = path.join(sandbox, 'store');
    sample = await writeSampleCache({
      dir: path.join(sandbox, 'historical'),
      segments: 4,
      layout: 'nested',
      dataSources: ['wikipedia'],
      segmentSize: 8 * 1024,
      smooshChunkSize: 2147483647,
      seed: 81,
    });
    // A directory an attacker would like the sidecar to treat as a store: its .tmp must survive.
    mkdirSync(path.join(sandbox, 'victim', '.tmp'), { recursive: true });
    writeFileSync(path.join(sandbox, 'victim', '.tmp', 'precious.txt'), 'not the sidecar’s to delete');
    target = await startSidecar(['--store', storeDir]);
    source = await startSidecar(['--config', sample.propertiesFile, '--target', target.url, '--node-name', 'hostile-src'], {
      token: target.token,
      env: { DRUID_BACKUP_AUTO_RESTORE: 'false' },
    });
    await waitFor('the cache backed up', async () => (await source.get<SegmentsResponse>('/data/v1/segments?state=backedUp&limit=1')).total === 4, 30_000);
    storedId = sample.segmentIds[0]!;
    const job = await source.request<{ jobId: string }>('POST', '/data/v1/backup', { target: target.url, segmentIds: [storedId] });
    assert.equal(job.status, 202, job.text);
    jobId = job.json.jobId;
    await source.waitForJob(jobId);
    before_ = await snapshot();
  });
  after(async () => {
    console.log(`hostile requests: ${count} requests, each a 4xx without a stack trace`);
    await source?.stop();
    await target?.stop();
  });

  async function operations(p: SidecarProcess): Promise<Array<{ method: string; path: string; template: string }>> {
    const doc = await p.get<OpenApi>('/openapi.json');
    const ops: Array<{ method: string; path: string; template: string }> = [];
    for (const [template, item] of Object.entries(doc.paths))
      for (const m of Object.keys(item))
        if (METHODS.includes(m))
          ops.push({ method: m.toUpperCase(), template, path: template.replace('{id}', template.includes('/jobs/') ? jobId : encodeURIComponent(storedId)) });
    return ops;
  }

  test('every endpoint but health refuses a missing, wrong or malformed token with 401', async () => {
    const tokens: Array<[string, Record<string, string> | null]> = [
      ['no Authorization header', null],
      ['a wrong token of the same length', { authorization: `Bearer ${'x'.repeat(target.token.length)}` }],
      ['the token less its last character', { authorization: `Bearer ${target.token.slice(0, -1)}` }],
      ['the token and one more character', { authorization: `Bearer ${target.token}0` }],
      ['a 4 KB token', { authorization: `Bearer ${'a'.repeat(4096)}` }],
      ['an empty bearer', { authorization: 'Bearer ' }],
      ['the token as Basic', { authorization: `Basic ${target.token}` }],
      ['the token without a scheme', { authorization: target.token }],
      ['the token twice', { authorization: `Bearer ${target.token} ${target.token}` }],
      ['the token in another case', { authorization: `Bearer ${target.token.toUpperCase()}` }],
      ['the token in the query', null],
    ];
    for (const p of [source, target]) {
      const ops = await operations(p);
      assert.ok(ops.length >= 15, `${ops.length} operations described`);
      for (const op of ops) {
        const url = op.template === '/status/health' ? op.path : op.path;
        for (const [what, headers] of tokens) {
          const q = what === 'the token in the query' ? `${url.includes('?') ? '&' : '?'}token=${p.token}` : '';
          const r = await p.request(op.method, url + q, op.method === 'POST' ? {} : undefined, { token: null, headers: headers ?? {} });
          count++;
          if (op.template === '/status/health') {
            assert.equal(r.status, 200, 'health is open');
            continue;
          }
          if (op.method === 'HEAD') assert.equal(r.status, 401, `${op.method} ${op.template} with ${what}`);
          else isCleanError(r, `${op.method} ${op.template} with ${what}`, 401);
        }
      }
    }
    // A header far past Node's limit never reaches the auth check: still a clean 4xx.
    const hugeHead = `GET /data/v1/node HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${'a'.repeat(100_000)}\r\n\r\n`;
    isCleanError(await p2raw(target, hugeHead), '100 KB Authorization header', 431);
    // The same header in 1 KiB writes: Node's parser reports the overflow again while the connection lingers after
    // the answer, and handling that second report by closing at once reset the connection before the client had read
    // the 431 (a fifth of the tries). Twenty tries, each a clean 431.
    const pieces = function* (): Generator<Buffer> {
      const rest = Buffer.from(hugeHead.slice(40));
      for (let off = 0; off < rest.length; off += 1024) yield rest.subarray(off, off + 1024);
    };
    for (let i = 0; i < 20; i++) {
      isCleanError(await p2raw(target, hugeHead.slice(0, 40), pieces()), `100 KB Authorization header in 1 KiB writes (try ${i + 1})`, 431);
    }
  });

  async function p2raw(p: SidecarProcess, head: string, body: Buffer | Iterable<Buffer> = Buffer.alloc(0)): Promise<{ status: number; text: string }> {
    const r = await rawHttp(p.url, head, body, { timeoutMs: 10_000 });
    count++;
    return { status: r.status ?? 0, text: r.body };
  }

  test('oversized and malformed JSON bodies on every POST: 4xx, nothing started', async () => {
    const bodies: Array<[string, string, string?]> = [
      ['truncated', '{"target": '],
      ['trailing garbage', '{"target":"http://127.0.0.1:1"} x'],
      ['single quotes', "{'target':'x'}"],
      ['NaN', '{"target": NaN}'],
      ['a bare string', '"http://127.0.0.1:1"'],
      ['an array', '[1,2,3]'],
      ['null', 'null'],
      ['empty', ''],
      ['nested 100,000 deep', `${'['.repeat(100_000)}${']'.repeat(100_000)}`],
      ['__proto__ pollution', `{"target":"${'http://127.0.0.1:1'}","__proto__":{"admin":true}}`],
      ['constructor.prototype pollution', '{"target":"http://127.0.0.1:1","constructor":{"prototype":{"admin":true}}}'],
      ['invalid UTF-8', '{"target":"\udcff"}'],
      ['17 MB', `{"target":"${'x'.repeat(17 * 1024 * 1024)}"}`],
      ['a form, not JSON', 'target=http://127.0.0.1:1', 'application/x-www-form-urlencoded'],
      ['text/plain', '{"target":"http://127.0.0.1:1"}', 'text/plain'],
      ['a tar to a JSON route', 'not a tar', 'application/x-tar'],
    ];
    for (const p of [source, target]) {
      for (const op of (await operations(p)).filter((o) => o.method === 'POST')) {
        for (const [what, body, type] of bodies) {
          const r = await p.request('POST', op.path, undefined, { raw: body, headers: { 'content-type': type ?? 'application/json' } });
          count++;
          isCleanError(r, `POST ${op.template} with ${what}`);
        }
      }
    }
    assert.equal(({} as Record<string, unknown>).admin, undefined);
  });

  test('path traversal in ids, plain and encoded, and ids that are not ids: 4xx, nothing read or written outside', async () => {
    const ids = [
      '../../../../etc/passwd',
      '..%2F..%2F..%2Fetc%2Fpasswd',
      '%2e%2e%2f%2e%2e%2fetc%2fpasswd',
      '%252e%252e%252fetc%252fpasswd',
      '..%5c..%5cetc%5cpasswd',
      '%c0%ae%c0%ae%2fetc',
      '....%2F%2F....%2F%2Fetc',
      '%00',
      'wikipedia_2015-09-12T00%3A00%3A00.000Z_2015-09-12T01%3A00%3A00.000Z_v%00%2F..%2F..',
      '..%2Fwikipedia_2015-09-12T00%3A00%3A00.000Z_2015-09-12T01%3A00%3A00.000Z_v',
      `${'a'.repeat(5000)}`,
      '%ff%fe',
    ];
    const templates = [
      ['GET', '/data/v1/store/segments/{id}'],
      ['HEAD', '/data/v1/store/segments/{id}'],
      ['GET', '/data/v1/store/segments/{id}/manifest'],
      ['POST', '/data/v1/store/segments/{id}/sources'],
      ['PUT', '/data/v1/store/segments/{id}'],
      ['GET', '/data/v1/jobs/{id}'],
      ['DELETE', '/data/v1/jobs/{id}'],
    ] as const;
    for (const p of [source, target])
      for (const [method, t] of templates)
        for (const id of ids) {
          const url = t.replace('{id}', id);
          const r = await p.request(method, url, method === 'POST' ? { node: 'x', digest: 'a'.repeat(64) } : undefined, {
            ...(method === 'PUT' ? { raw: Buffer.alloc(1024), headers: { 'content-type': 'application/x-tar', 'x-druid-backup-node': 'x' } } : {}),
          });
          count++;
          assert.ok(r.status >= 400 && r.status < 500, `${method} ${url}: ${r.status} ${r.text.slice(0, 200)}`);
          assert.doesNotMatch(r.text, /root:|\n\s+at /, `${method} ${url}: no file content, no stack`);
          if (method !== 'HEAD' && r.text) isCleanError(r, `${method} ${url}`);
        }
    // A raw request line with a dot-segment path that fetch would normalize away.
    for (const line of [
      '/data/v1/store/segments/../../../etc/passwd',
      '/data/v1/../../etc/passwd',
      '/data/v1/store/segments/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
    ]) {
      const r = await p2raw(target, `GET ${line} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${target.token}\r\n\r\n`);
      isCleanError(r, `raw GET ${line}`);
      assert.doesNotMatch(r.text, /root:/);
    }
  });

  test('filters that would select everything or millions of rows: a page at most, or a clear 4xx', async () => {
    const all = '1000-01-01T00:00:00.000Z/9999-12-31T00:00:00.000Z';
    for (const [p, list] of [
      [source, '/data/v1/segments'],
      [target, '/data/v1/store/segments'],
      [target, '/data/v1/store/manifests'],
    ] as const) {
      for (const interval of [all, '0000/99999']) {
        const page = await p.request<{ items: unknown[]; total: number }>('GET', `${list}?interval=${encodeURIComponent(interval)}`);
        assert.equal(page.status, 200, page.text);
        assert.ok(page.json.items.length <= 100, 'one default page');
      }
      for (const q of ['limit=1000000', 'limit=0', 'limit=-1', 'limit=1e9', 'limit=NaN', `interval=${'x'.repeat(300)}`, `cursor=${'A'.repeat(5000)}`]) {
        const r = await p.request('GET', `${list}?${q}`);
        count++;
        isCleanError(r, `GET ${list}?${q.slice(0, 40)}`);
      }
    }
    const jobs = await source.request('GET', '/data/v1/jobs?limit=100000000');
    isCleanError(jobs, 'GET /data/v1/jobs?limit=100000000');
    // 100,001 segment ids (about 10 MB of JSON): more than one request may name.
    const many = Array.from({ length: 100_001 }, (_, i) => `wikipedia_2015-09-12T00:00:00.000Z_2015-09-12T01:00:00.000Z_v${i}`);
    for (const route of ['/data/v1/backup', '/data/v1/restore', '/data/v1/store/verify']) {
      const p = route === '/data/v1/store/verify' ? target : source;
      const r = await p.request('POST', route, { target: target.url, segmentIds: many, ...(route === '/data/v1/restore' ? { dryRun: true } : {}) });
      count++;
      isCleanError(r, `POST ${route} with 100,001 segment ids`);
    }
  });

  test('targets naming a local directory or another scheme are refused; the directory is left alone', async () => {
    const victim = path.join(sandbox, 'victim');
    for (const t of [
      `file://${victim}`,
      `file://localhost${victim}`,
      'file:///',
      'ftp://127.0.0.1/x',
      'gopher://127.0.0.1:70/',
      'http://user:pw@127.0.0.1:1',
      'javascript:alert(1)',
    ]) {
      for (const [route, body] of [
        ['/data/v1/backup', { target: t }],
        ['/data/v1/restore', { target: t, dryRun: true }],
        ['/data/v1/store/verify', { target: t }],
      ] as const) {
        const r = await source.request('POST', route, body);
        count++;
        isCleanError(r, `POST ${route} with target ${t}`);
      }
      const q = await target.request('GET', `/data/v1/store/segments?target=${encodeURIComponent(t)}`);
      isCleanError(q, `GET /data/v1/store/segments?target=${t}`);
    }
    assert.ok(existsSync(path.join(victim, '.tmp', 'precious.txt')), 'a file:// target must not empty the directory’s .tmp');
    assert.deepEqual(readdirSync(victim), ['.tmp'], 'nor make a store there');
  });

  test('after all of it nothing changed: store, cache, jobs, the victim directory', async () => {
    const now = await snapshot();
    assert.deepEqual(treeDiff(before_.store, now.store), [], 'the store');
    assert.deepEqual(treeDiff(before_.cache, now.cache), [], 'the cache');
    assert.deepEqual(treeDiff(before_.victim, now.victim), [], 'the victim directory');
    assert.equal(now.jobs, before_.jobs, 'no job was started by a refused request');
    const jobs = await source.get<{ items: Job[] }>('/data/v1/jobs');
    assert.ok(jobs.items.every((j) => j.id === jobId || j.state !== 'running'));
    assert.equal((await target.request('GET', '/status/health')).status, 200);
  });
});
