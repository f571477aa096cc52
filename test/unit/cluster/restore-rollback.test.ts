/**
 * The rollback step against an HTTP server answering as a Druid 33 Coordinator does (shapes from
 * /work/shared/notes/druid-metadata.md): the kill warning read from its properties and dynamic config, the
 * compaction config taken away and put back (not over one a later step set), and Druid's audit headers on every
 * change.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { rollbackStep, suspendCompaction } from '../../../sidecar/cluster/restore/rollback.js';
import type { ClusterRestoreContext } from '../../../sidecar/cluster/restore/step.js';
import type { SnapshotSegment } from '../../../sidecar/snapshot/model.js';
import { descriptor, idOf } from '../../helpers/snapshots.js';

const druid = {
  used: [descriptor(1, 'v1'), descriptor(2, 'v9')],
  unused: [descriptor(2, 'v1')],
  compaction: new Map<string, string>([['demo', '{"dataSource":"demo","skipOffsetFromLatest":"P1D"}']]),
  properties: { 'druid.coordinator.kill.on': 'true', 'druid.coordinator.kill.bufferPeriod': 'P30D' } as Record<string, string>,
  changes: [] as Array<{ method: string; url: string; author?: string; comment?: string; body: string }>,
};
let server: http.Server;
let url = '';

before(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const u = req.url ?? '';
      const json = (v: unknown, status = 200) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(v));
      if (req.method !== 'GET')
        druid.changes.push({
          method: req.method!,
          url: u,
          author: req.headers['x-druid-author'] as string,
          comment: req.headers['x-druid-comment'] as string,
          body,
        });
      if (u.startsWith('/druid/coordinator/v1/metadata/segments?includeOvershadowedStatus'))
        return json(druid.used.map((d) => ({ overshadowed: false, replicationFactor: 1, numRows: null, realtime: false, ...d })));
      if (u === '/druid/coordinator/v1/metadata/datasources/demo/unusedSegments')
        return json(druid.unused.map((d) => ({ dataSegment: d, createdDate: '2024-01-01' })));
      if (u === '/druid/coordinator/v1/config') return json({ millisToWaitBeforeDeleting: 900000, killDataSourceWhitelist: [] });
      if (u === '/status/properties') return json(druid.properties);
      const compaction = /^\/druid\/coordinator\/v1\/config\/compaction\/(\w+)$/.exec(u);
      if (compaction) {
        const c = druid.compaction.get(compaction[1]!);
        if (req.method === 'DELETE') {
          druid.compaction.delete(compaction[1]!);
          return json({ success: true });
        }
        return c ? res.writeHead(200, { 'content-type': 'application/json' }).end(c) : res.writeHead(404).end();
      }
      if (u === '/druid/coordinator/v1/config/compaction' && req.method === 'POST') {
        druid.compaction.set((JSON.parse(body) as { dataSource: string }).dataSource, body);
        return json({ success: true });
      }
      const mark = /^\/druid\/indexer\/v1\/datasources\/demo\/(markUsed|markUnused)$/.exec(u);
      if (mark) return json({ numChangedSegments: (JSON.parse(body) as { segmentIds: string[] }).segmentIds.length, segmentStateChanged: true });
      res.writeHead(404).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => server.close());

const snap = (day: number, version: string): SnapshotSegment => ({
  id: idOf(day, version),
  overshadowed: false,
  size: 1,
  descriptor: descriptor(day, version),
  backedUp: true,
});
const ctx = (): ClusterRestoreContext => ({
  snapshot: {
    formatVersion: 1,
    id: '20240103T000000Z-00000003',
    time: '2024-01-03T00:00:00.000Z',
    node: 'c',
    dataSources: [],
    segments: 2,
    bytes: 2,
    complete: true,
    metadata: '0'.repeat(64),
  },
  segments: new Map([['demo', [snap(1, 'v1'), snap(2, 'v1')]]]),
  metadata: { offsets: { captured: false }, redacted: [] },
  dataSources: ['demo'],
  intervals: ['2024-01-02/2024-01-03'],
  target: undefined as never,
  coordinator: url,
  overlord: url,
  author: 'druid-backup on test',
  comment: 'cluster restore from snapshot 20240103T000000Z-00000003\nsecond line',
});

test('the plan marks the later version unused and the snapshot one used, warns of the kill, and offers to suspend compaction', async () => {
  const step = rollbackStep({ suspendCompaction: true });
  const c = ctx();
  const plan = await step.plan(c);
  assert.deepEqual(
    plan.items.map((i) => [i.action, i.subject]),
    [
      ['mark unused', idOf(2, 'v9')],
      ['mark used', 'demo'],
      ['suspend compaction while restoring', 'demo'],
    ],
  );
  assert.match(plan.warnings.join('\n'), /automatic kill is on \(druid.coordinator.kill.on=true\) and covers demo .*P30D/);
  druid.changes.length = 0;
  const r = await step.run(c, plan, () => undefined);
  assert.deepEqual(
    r.items.map((i) => i.outcome),
    ['done', 'done', 'skipped'],
  );
  assert.deepEqual(
    druid.changes.map((x) => [x.method, x.url, JSON.parse(x.body)]),
    [
      ['POST', '/druid/indexer/v1/datasources/demo/markUnused', { segmentIds: [idOf(2, 'v9')] }],
      ['POST', '/druid/indexer/v1/datasources/demo/markUsed', { segmentIds: [idOf(2, 'v1')] }],
    ],
  );
  for (const x of druid.changes) {
    assert.equal(x.author, 'druid-backup on test');
    assert.equal(x.comment, 'cluster restore from snapshot 20240103T000000Z-00000003?second line', 'one line of Latin-1');
  }
  druid.properties = { 'druid.coordinator.kill.on': 'false' };
  assert.deepEqual((await step.plan(c)).warnings, [], 'no warning when kill is off');
});

test('compaction is taken away and put back, but not over a config a step set meanwhile', async () => {
  const c = ctx();
  const before = druid.compaction.get('demo')!;
  const resume = await suspendCompaction(c, ['demo', 'absent']);
  assert.equal(druid.compaction.has('demo'), false);
  assert.deepEqual(await resume(), []);
  assert.deepEqual(JSON.parse(druid.compaction.get('demo')!), JSON.parse(before));
  const again = await suspendCompaction(c, ['demo']);
  druid.compaction.set('demo', '{"dataSource":"demo","skipOffsetFromLatest":"P7D"}');
  await again();
  assert.equal(JSON.parse(druid.compaction.get('demo')!).skipOffsetFromLatest, 'P7D');
});
