/**
 * A snapshot taken by a node with a cache (issue 21): a used segment whose backup failed on that node is missing as
 * `failed`, from its backup state, not as `pending`. The target's quota is too small for any segment, so every
 * backup fails; the Coordinator is a real HTTP server answering the node's own descriptors as Druid 33 does.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import type { Job, Page, SegmentInfo } from '../../sidecar/api.js';
import { writeSampleCache } from '../../sidecar/sample/sampleCache.js';
import { HttpTarget } from '../../sidecar/store/http/target.js';
import { startSidecar, tmpDir, waitFor } from '../helpers/sidecar.js';

test("a used segment whose backup failed here is missing as 'failed' in the node's snapshot", async () => {
  const sample = await writeSampleCache({
    dir: path.join(tmpDir('dbk-snapfail-'), 'historical'),
    segments: 2,
    layout: 'nested',
    dataSources: ['wikipedia'],
    segmentSize: 16 * 1024,
    smooshChunkSize: 8 * 1024,
    seed: 3,
  });
  const used = readdirSync(sample.infoDir).map((n) => ({
    overshadowed: false,
    replicationFactor: 1,
    numRows: null,
    realtime: false,
    ...(JSON.parse(readFileSync(path.join(sample.infoDir, n), 'utf8')) as object),
  }));
  const server = http.createServer((req, res) => {
    if (!req.url?.startsWith('/druid/coordinator/v1/metadata/segments?includeOvershadowedStatus&includeRealtimeSegments')) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(used));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const coordinator = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const target = await startSidecar(['--store', tmpDir('dbk-snapfail-store-'), '--store-quota', '1024']);
  const node = await startSidecar(['--config', sample.propertiesFile, '--target', target.url, '--coordinator', coordinator], { token: target.token });
  const http_ = new HttpTarget(target.url, { token: target.token });
  try {
    await waitFor(
      'every backup failed',
      async () => {
        const page = await node.get<Page<SegmentInfo>>('/data/v1/segments?limit=100');
        return page.items.length === 2 && page.items.every((s) => s.backup.state === 'failed');
      },
      30_000,
    );
    const r = await node.request<{ jobId: string }>('POST', '/data/v1/snapshots', {});
    assert.equal(r.status, 202, r.text);
    const j = await waitFor('the snapshot', async () => {
      const x = await node.get<Job>(`/data/v1/jobs/${r.json.jobId}`);
      return x.state === 'running' || x.state === 'queued' ? undefined : x;
    });
    assert.equal(j.state, 'succeeded', JSON.stringify(j.errors));
    const id = (j.result as { snapshot: string }).snapshot;
    const header = await http_.snapshots.getHeader(id);
    assert.ok(header);
    assert.equal(header.complete, false);
    const lines = (await http_.snapshots.getBlob(header.dataSources[0]!.list, 1 << 20))
      .toString('utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { backedUp: boolean; missing?: string });
    assert.deepEqual(
      lines.map((l) => [l.backedUp, l.missing]),
      [
        [false, 'failed'],
        [false, 'failed'],
      ],
    );
  } finally {
    http_.close();
    await node.stop();
    await target.stop();
    server.close();
  }
});
