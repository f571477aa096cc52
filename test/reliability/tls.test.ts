/**
 * TLS: a sidecar serves HTTPS with a certificate and key it is given (druid.backup.tls.cert/key, --tls-cert/--tls-key),
 * and calls https:// targets trusting a CA it is given (druid.backup.tls.ca, --tls-ca). The test makes its own CA
 * and server certificate with openssl. A source that trusts the CA backs everything up over HTTPS (active, and a
 * passive job asked for over HTTPS); one without the CA, or with another CA, sends nothing and says why; plain
 * HTTP to the HTTPS port gets no answer; half a TLS configuration stops start-up with one clear line.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Job, SegmentsResponse } from '../../sidecar/api.js';
import type { SampleResult } from '../../sidecar/sample/sampleCache.js';
import { writeSampleCache } from '../../sidecar/sample/sampleCache.js';
import { runCli } from '../helpers/cli.js';
import { SIDECAR_JS, newToken, tmpDir, waitFor } from '../helpers/sidecar.js';
import { assertStoredOnce, logged } from './lib.js';

// The certificates are made here with openssl: where it is missing the file fails, saying so.
if (spawnSync('openssl', ['version']).status !== 0)
  throw new Error('openssl is not installed: the TLS tests make their CA and certificates with it (Debian: apt-get install openssl)');

function openssl(dir: string, ...args: string[]): void {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
}

/** A CA, and a certificate it signs for 127.0.0.1 and localhost. */
function makeCa(dir: string, name: string): { ca: string; cert: string; key: string } {
  const p = (f: string) => path.join(dir, `${name}-${f}`);
  openssl(
    dir,
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '2',
    '-subj',
    `/CN=${name} test CA`,
    '-keyout',
    p('ca.key'),
    '-out',
    p('ca.crt'),
  );
  openssl(
    dir,
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-subj',
    '/CN=127.0.0.1',
    '-keyout',
    p('server.key'),
    '-out',
    p('server.csr'),
  );
  writeFileSync(p('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  openssl(
    dir,
    'x509',
    '-req',
    '-in',
    p('server.csr'),
    '-CA',
    p('ca.crt'),
    '-CAkey',
    p('ca.key'),
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    p('ext.cnf'),
    '-out',
    p('server.crt'),
  );
  return { ca: p('ca.crt'), cert: p('server.crt'), key: p('server.key') };
}

interface Proc {
  proc: ChildProcess;
  url: string;
  port: number;
  token: string;
  out: () => string;
}

const procs = new Set<ChildProcess>();

/** HTTPS request trusting `ca`; resolves with status and body, or rejects on a TLS or network error. */
function httpsRequest(url: string, ca: string, opts: { method?: string; token?: string; body?: unknown } = {}): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const req = https.request(
      url,
      {
        method: opts.method ?? 'GET',
        ca: readFileSync(ca),
        headers: { ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
      },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : undefined }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Starts a sidecar (the test helper's fetch cannot trust a test CA, so this one waits over https itself). */
async function start(args: string[], token: string, ca?: string): Promise<Proc> {
  const full = ['sidecar', ...args, '--port', '0', '--bind', '127.0.0.1', '--token', token, '--state-dir', tmpDir('dbk-tls-state-')];
  const proc = spawn(process.execPath, [SIDECAR_JS, ...full], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, DRUID_BACKUP_SETTLE_TIME: 'PT0.2S', DRUID_BACKUP_RETRY_MAX_DELAY: 'PT1S', DRUID_BACKUP_RECONCILE_PERIOD: 'PT1H' },
  });
  procs.add(proc);
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const line = await waitFor('the sidecar to listen', () => {
    if (proc.exitCode !== null) throw new Error(`exited ${proc.exitCode}: ${out}`);
    return logged(out, 'sidecar listening')[0];
  });
  const p: Proc = { proc, url: String(line.url), port: Number(line.port), token, out: () => out };
  if (ca) await waitFor('health over https', async () => (await httpsRequest(`${p.url}/status/health`, ca)).status === 200);
  return p;
}

describe('TLS: HTTPS with a given certificate, clients trusting a given CA', () => {
  let dir: string;
  let good: ReturnType<typeof makeCa>;
  let other: ReturnType<typeof makeCa>;
  let sample: SampleResult;
  let target: Proc;
  const token = newToken();

  before(async () => {
    dir = tmpDir('dbk-tls-');
    good = makeCa(dir, 'good');
    other = makeCa(dir, 'other');
    sample = await writeSampleCache({
      dir: path.join(dir, 'historical'),
      segments: 6,
      layout: 'nested',
      dataSources: ['wikipedia'],
      segmentSize: 64 * 1024,
      smooshChunkSize: 2147483647,
      seed: 91,
    });
    target = await start(['--store', path.join(dir, 'store'), '--tls-cert', good.cert, '--tls-key', good.key], token, good.ca);
  });
  after(() => {
    for (const p of procs) p.kill('SIGKILL');
  });

  test('the target serves HTTPS with its certificate; plain HTTP on that port gets no answer', async () => {
    assert.match(target.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const stats = await httpsRequest(`${target.url}/data/v1/store/stats`, good.ca, { token });
    assert.equal(stats.status, 200);
    assert.equal((await httpsRequest(`${target.url}/data/v1/store/stats`, good.ca)).status, 401, 'the token is still required over TLS');
    await assert.rejects(
      httpsRequest(`${target.url}/status/health`, other.ca),
      /self[- ]signed|unable to verify|certificate/i,
      'a client trusting another CA refuses it',
    );
    const plain = await fetch(`http://127.0.0.1:${target.port}/status/health`).then(
      (r) => r.status,
      () => 'no answer',
    );
    assert.notEqual(plain, 200, 'plain HTTP is not served on the HTTPS port');
  });

  test('a source without the CA, or with another CA, sends nothing and says the certificate is not trusted', async () => {
    for (const ca of [undefined, other.ca]) {
      const src = await start(['--config', sample.propertiesFile, '--target', target.url, '--node-name', 'untrusting', ...(ca ? ['--tls-ca', ca] : [])], token);
      await waitFor(
        'the source to give up on the untrusted target',
        () => logged(src.out(), 'cannot list the target; deciding from the local state').length > 0,
      );
      const err = String(logged(src.out(), 'cannot list the target; deciding from the local state')[0]!.err);
      assert.match(err, /TLS certificate is not trusted .*druid\.backup\.tls\.ca/, err);
      src.proc.kill('SIGKILL');
    }
    const stats = (await httpsRequest(`${target.url}/data/v1/store/stats`, good.ca, { token })).json as { segments: number };
    assert.equal(stats.segments, 0, 'nothing reached the store');
  });

  test('a source trusting the CA backs up every segment over HTTPS, actively and on request over HTTPS', async () => {
    const src = await start(
      [
        '--config',
        sample.propertiesFile,
        '--target',
        target.url,
        '--node-name',
        'trusting',
        '--tls-ca',
        good.ca,
        '--tls-cert',
        good.cert,
        '--tls-key',
        good.key,
      ],
      token,
      good.ca,
    );
    await waitFor('every segment backed up over HTTPS', async () => {
      const r = await httpsRequest(`${src.url}/data/v1/segments?state=backedUp&limit=1`, good.ca, { token });
      return (r.json as SegmentsResponse).total === sample.segmentIds.length;
    });
    assertStoredOnce(path.join(dir, 'store'), sample, 'trusting', [target.out()]);
    const accepted = await httpsRequest(`${src.url}/data/v1/backup`, good.ca, { method: 'POST', token, body: { target: target.url } });
    assert.equal(accepted.status, 202, JSON.stringify(accepted.json));
    const jobId = (accepted.json as { jobId: string }).jobId;
    const job = await waitFor('the passive job over HTTPS', async () => {
      const j = (await httpsRequest(`${src.url}/data/v1/jobs/${jobId}`, good.ca, { token })).json as Job;
      return ['succeeded', 'failed', 'cancelled'].includes(j.state) ? j : undefined;
    });
    assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
    src.proc.kill('SIGKILL');
  });

  test('half a TLS configuration, or a missing file, stops start-up with one clear line', async () => {
    const store = path.join(dir, 'store2');
    for (const [args, re] of [
      [['--tls-cert', good.cert], /HTTPS needs both druid\.backup\.tls\.cert and druid\.backup\.tls\.key/],
      [['--tls-key', good.key], /HTTPS needs both/],
      [['--tls-cert', path.join(dir, 'nope.crt'), '--tls-key', good.key], /druid\.backup\.tls\.cert: .*nope\.crt does not exist/],
      [['--tls-cert', good.key, '--tls-key', good.cert], /./],
    ] as const) {
      const r = await runCli(['sidecar', '--store', store, '--port', '0', '--token', token, '--state-dir', tmpDir('dbk-tls-bad-'), ...args]);
      assert.notEqual(r.code, 0, `${args.join(' ')} must not start`);
      assert.match(r.stderr, re);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
    }
  });
});
