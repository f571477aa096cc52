/**
 * A bucket endpoint that answers with far too much (issue 17): a listing, or an error to a GetObject, of 200 MiB made
 * while it is sent. The S3 client fails the call with target_answer_too_large after its limit, instead of buffering
 * the answer whole to parse it. A real HTTP server on loopback speaks for S3; the client is the sidecar's own.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { createS3Client } from '../../sidecar/store/s3/client.js';
import { loadSdk } from '../../sidecar/store/s3/sdk.js';
import type { Sdk } from '../../sidecar/store/s3/sdk.js';

const MIB = 1024 * 1024;
const HUGE = 200 * MIB;

let server: http.Server;
let endpoint: string;
let sdk: Sdk;
/** Bytes each answer got out before the client hung up. */
const sent: number[] = [];
let status = 200;

before(async () => {
  // The SDK's credential chain reads these; the loopback server checks no signature.
  process.env.AWS_ACCESS_KEY_ID = 'test';
  process.env.AWS_SECRET_ACCESS_KEY = 'test-secret';
  sdk = await loadSdk();
  const entry = Buffer.from(`<Contents><Key>${'k'.repeat(1000)}</Key><Size>1</Size></Contents>`);
  server = http.createServer((_req, res) => {
    res.writeHead(status, { 'content-type': 'application/xml' });
    let bytes = 0;
    const pump = () => {
      while (bytes < HUGE) {
        const b = bytes === 0 ? Buffer.from('<?xml version="1.0"?><ListBucketResult><Name>b</Name>') : entry;
        bytes += b.length;
        if (!res.write(b)) return void res.once('drain', pump);
      }
      res.end('</ListBucketResult>');
    };
    res.on('close', () => sent.push(bytes));
    pump();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => {
  server.closeAllConnections();
  server.close();
});

function client() {
  return createS3Client(sdk, { endpoint, region: 'us-east-1' }, new Map());
}

test('a listing of 200 MiB fails with target_answer_too_large after at most a few times its limit', async () => {
  const c = client();
  const before = process.memoryUsage().rss;
  await assert.rejects(c.send(new sdk.ListObjectsV2Command({ Bucket: 'b' })), (e: unknown) => {
    assert.equal((e as { code?: string }).code, 'target_answer_too_large');
    assert.match((e as Error).message, /ListObjectsV2Command is larger than 16 MiB/);
    return true;
  });
  c.destroy();
  assert.ok(Math.max(...sent) < 64 * MIB, `the server got ${sent.at(-1)} bytes out`);
  assert.ok(process.memoryUsage().rss - before < 150 * MIB, 'the answer was not buffered');
});

test('an error answer of 200 MiB to a GetObject is limited the same way; a 200 answer stays a stream', async () => {
  const c = client();
  status = 404;
  await assert.rejects(c.send(new sdk.GetObjectCommand({ Bucket: 'b', Key: 'k' })), { code: 'target_answer_too_large' });
  status = 200;
  // A segment file streams to its reader: the client hands the body over unread.
  const res = await c.send(new sdk.GetObjectCommand({ Bucket: 'b', Key: 'k' }));
  const first = await (res.Body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]().next();
  assert.ok(first.value && first.value.length > 0);
  (res.Body as unknown as { destroy(): void }).destroy();
  c.destroy();
});
