/**
 * A hostile answer to a batch read (`POST /data/v1/store/batch/read`, store/http/batch.ts), on real sidecars: an
 * HTTP proxy written here stands in front of a real target sidecar, passes every request through, and tampers with
 * the batch read's answer (the header's order, lengths, a part's bytes, another segment's bytes, an answer cut off,
 * bytes after the last part). Whatever it sends, the restore of the emptied cache completes byte for byte, reading
 * alone what the batch did not bring whole, and leaves no staging behind.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { READ_BATCH_PATH, READ_PART_MAX } from '../../sidecar/store/http/batch.js';
import type { SampleResult } from '../../sidecar/sample/sampleCache.js';
import { writeSampleCache } from '../../sidecar/sample/sampleCache.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { startSidecar, tmpDir } from '../helpers/sidecar.js';
import { emptyDir } from '../helpers/tree.js';
import type { CacheCopy } from './lib.js';
import { assertRestored, copyOfCache, runJob } from './lib.js';

interface Answer {
  header: { formatVersion: number; segments: Array<{ segmentId: string; length?: number }> };
  parts: Buffer[];
}

/** What each case does to the real answer; it returns the bytes sent instead. */
const CASES: Record<string, (a: Answer) => Buffer> = {
  'the header lists the segments in another order': (a) => {
    a.header.segments.reverse();
    a.parts.reverse();
    return encode(a);
  },
  'the header claims more bytes for a part than it has': (a) => {
    a.header.segments[0]!.length! += 512;
    return encode(a);
  },
  'the header claims fewer bytes for a part than it has': (a) => {
    a.header.segments[1]!.length! -= 512;
    return encode(a);
  },
  'a part longer than any small segment': (a) => {
    a.header.segments[0]!.length = READ_PART_MAX + 1;
    return encode(a);
  },
  'a byte of a file flipped in one part': (a) => {
    const p = a.parts[2]!;
    p[p.length - 2048] = p[p.length - 2048]! ^ 0xff;
    return encode(a);
  },
  "one part carries another segment's bytes": (a) => {
    a.parts[0] = a.parts[1]!;
    a.header.segments[0]!.length = a.parts[1]!.length;
    return encode(a);
  },
  'the answer is cut off in its second part': (a) => {
    const whole = encode(a);
    const cut = whole.indexOf(0x0a) + 1 + a.parts[0]!.length + 700;
    return whole.subarray(0, cut);
  },
  'bytes after the last part': (a) => Buffer.concat([encode(a), Buffer.alloc(1024, 7)]),
  'the header is not JSON': (a) => Buffer.concat([Buffer.from('{"formatVersion":1,"segments":[\n'), ...a.parts]),
};

function encode(a: Answer): Buffer {
  return Buffer.concat([Buffer.from(`${JSON.stringify(a.header)}\n`), ...a.parts]);
}

function decode(b: Buffer): Answer {
  const nl = b.indexOf(0x0a);
  const header = JSON.parse(b.subarray(0, nl).toString('utf8')) as Answer['header'];
  const parts: Buffer[] = [];
  let at = nl + 1;
  for (const s of header.segments) {
    parts.push(Buffer.from(b.subarray(at, at + s.length!)));
    at += s.length!;
  }
  return { header, parts };
}

describe('a hostile answer to a batch read: the restore reads alone what the batch did not bring whole', () => {
  let root: string;
  let sample: SampleResult;
  let copy: CacheCopy;
  let target: SidecarProcess;
  let node: SidecarProcess;
  let proxy: http.Server;
  let proxyUrl: string;
  let tamper: ((a: Answer) => Buffer) | undefined;
  let tampered = 0;

  before(async () => {
    root = tmpDir('dbk-hostile-batch-read-');
    sample = await writeSampleCache({
      dir: path.join(root, 'historical'),
      segments: 6,
      layout: 'nested',
      dataSources: ['wikipedia'],
      segmentSize: 24 * 1024,
      smooshChunkSize: 2147483647,
      seed: 91,
    });
    copy = copyOfCache(sample);
    target = await startSidecar(['--store', path.join(root, 'store')]);
    // Passes every request through to the target; the batch read's answer goes through `tamper`.
    proxy = http.createServer((req, res) => {
      const up = http.request({ host: '127.0.0.1', port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        if (!(req.method === 'POST' && req.url === READ_BATCH_PATH && answer.statusCode === 200 && tamper)) {
          res.writeHead(answer.statusCode!, answer.headers);
          answer.pipe(res);
          return;
        }
        const chunks: Buffer[] = [];
        answer.on('data', (c: Buffer) => chunks.push(c));
        answer.on('end', () => {
          const body = tamper!(decode(Buffer.concat(chunks)));
          tampered++;
          res.writeHead(200, { 'content-type': answer.headers['content-type'] });
          res.end(body);
        });
      });
      req.pipe(up);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    node = await startSidecar(['--config', sample.propertiesFile, '--node-name', 'hostile-read'], {
      token: target.token,
      allowedTargets: [target.url, proxyUrl],
      env: { DRUID_BACKUP_AUTO_RESTORE: 'false', DRUID_BACKUP_ACTIVE: 'false' },
    });
    assert.equal((await runJob(node, '/data/v1/backup', { target: target.url })).state, 'succeeded');
  });
  after(async () => {
    await node?.stop();
    await target?.stop();
    await new Promise((r) => proxy?.close(r));
    rmSync(root, { recursive: true, force: true });
  });

  for (const [name, fn] of Object.entries(CASES)) {
    test(name, async () => {
      emptyDir(sample.location);
      tamper = fn;
      const before = tampered;
      const job = await runJob(node, '/data/v1/restore', { target: proxyUrl });
      assert.equal(tampered - before, 1, 'the batch read was answered by the tampering proxy');
      assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
      assert.equal(job.progress.segmentsDone, copy.dirs.size);
      assert.equal(job.progress.bytesDone, sample.bytes, 'what a failed part counted was taken back');
      assertRestored(sample, copy);
    });
  }

  test('hostile requests to the batch read: a clear 4xx for each, nothing read outside the store; an id not held is an entry of its own', async () => {
    const held = [...copy.dirs.keys()];
    const bodies: Array<[string, unknown, number]> = [
      ['no list', {}, 400],
      ['an empty list', { segmentIds: [] }, 400],
      ['65 ids', { segmentIds: Array.from({ length: 65 }, (_, i) => `${held[0]}_${i + 1}`) }, 400],
      ['an id twice', { segmentIds: [held[0], held[0]] }, 400],
      ['a number for an id', { segmentIds: [held[0], 7] }, 400],
      ['a climbing id', { segmentIds: [held[0], '../../../../etc/passwd'] }, 400],
      ['a climbing version', { segmentIds: [`wikipedia_2015-09-12T00:00:00.000Z_2015-09-12T01:00:00.000Z_v/../../../../etc`] }, 400],
      ['an id of 5,000 characters', { segmentIds: ['a'.repeat(5000)] }, 400],
      ['another field', { segmentIds: [held[0]], path: '/etc/passwd' }, 400],
    ];
    for (const [what, body, status] of bodies) {
      const r = await target.request<{ error?: { code: string; message: string } }>('POST', READ_BATCH_PATH, body);
      assert.equal(r.status, status, `${what}: ${r.status} ${r.text.slice(0, 300)}`);
      assert.ok(r.json?.error?.message, `${what}: the answer says why`);
      assert.doesNotMatch(r.text, /root:|\n\s+at /, `${what}: no file content, no stack`);
    }
    const missing = held[0]!.replace('2015-09-12', '2001-01-01');
    const r = await target.request('POST', READ_BATCH_PATH, { segmentIds: [held[0], missing] });
    assert.equal(r.status, 200, r.text.slice(0, 300));
    const header = JSON.parse(r.text.slice(0, r.text.indexOf('\n'))) as Answer['header'] & { segments: Array<{ status?: number }> };
    assert.equal(header.segments[0]!.segmentId, held[0]);
    assert.ok(header.segments[0]!.length! > 0);
    assert.deepEqual({ id: header.segments[1]!.segmentId, status: header.segments[1]!.status }, { id: missing, status: 404 });
  });
});
