/** The status bar's model without VS Code: what the nodes hold → counts, level and the rows that need attention. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { NodeInfo, SegmentInfo } from '../../../sidecar/api.js';
import { SEGMENT_GROUPING } from '../../../extension/cluster.js';
import { clusterStatus, type StatusInputs, statusAccessibleName, statusText, statusTooltip } from '../../../extension/status/model.js';
import { GroupedIndex } from '../../../extension/tree/index.js';
import type { NodeView } from '../../../extension/tree/rows.js';
import { job, NOW, segment } from './fixtures.js';

const INFO: NodeInfo = {
  name: 'historical-1',
  version: '0.1.0',
  roles: ['source'],
  druid: { locations: [], layout: 'nested', deepStorage: { type: 'local', zip: false } },
  startedAt: '2024-06-01T00:00:00.000Z',
};

function node(url: string, segments: SegmentInfo[], over: Partial<NodeView> = {}): NodeView {
  return { url, info: INFO, segments: GroupedIndex.of(SEGMENT_GROUPING, segments), jobs: [], ...over };
}

const inputs = (over: Partial<StatusInputs> = {}): StatusInputs => ({
  wantedCopies: () => 2,
  pendingSince: () => undefined,
  now: NOW,
  lagWarnMs: 600_000,
  ...over,
});

const two = { state: 'backedUp' as const, copies: 2, targets: ['http://t1', 'http://t2'] };

test('a protected cluster: every served segment has the copies wanted, nothing needs attention', () => {
  const st = clusterStatus([node('http://a', [segment('w', 0, 0, { backup: two }), segment('w', 1, 0, { backup: two })])], inputs());
  assert.equal(st.served, 2);
  assert.equal(st.protected, 2);
  assert.equal(st.level, 'ok');
  assert.deepEqual(st.attention, []);
  assert.equal(statusText(st), '$(database) 2/2');
  assert.match(statusTooltip(st), /Nothing needs attention/);
});

test('lost, under-replicated, failed, long-pending and failed jobs are counted, coloured and listed with their rows', () => {
  const lost = segment('w', 0, 0, { state: 'missing', size: 0, files: [], backup: { state: 'none', copies: 1, targets: ['http://t1'] } });
  const under = segment('w', 1, 0, { backup: { state: 'backedUp', copies: 1, targets: ['http://t1'] } });
  const failed = segment('w', 2, 0, { backup: { state: 'failed', error: 'target down' } });
  const pendingOld = segment('w', 3, 0, { backup: { state: 'pending' } });
  const pendingNew = segment('w', 4, 0, { backup: { state: 'pending' } });
  const noInfo = segment('w', 5, 0, { hasInfoFile: false, backup: two });
  const ok = segment('w', 6, 0, { backup: two });
  const a = node('http://a', [lost, under, failed, pendingOld, pendingNew, noInfo, ok], {
    jobs: [job('j1', { state: 'failed', errors: [{ segmentId: under.id, message: 'boom' }] }), job('j2', { state: 'succeeded' })],
  });
  const down = node('http://b', [], { segments: undefined, error: { message: 'connect ECONNREFUSED' } });
  const since: Record<string, number> = { [pendingOld.id]: NOW - 3_600_000, [pendingNew.id]: NOW - 5_000 };
  const st = clusterStatus([a, down], inputs({ pendingSince: (_n, id) => since[id] }));

  assert.equal(st.served, 6, 'the segment without an info_dir entry is not served');
  assert.equal(st.protected, 1);
  assert.equal(st.lost, 1);
  assert.equal(st.underReplicated, 1);
  assert.equal(st.failedBackups, 1);
  assert.equal(st.pending, 2);
  assert.equal(st.oldestPendingMs, 3_600_000);
  assert.equal(st.failedJobs, 1);
  assert.equal(st.unreachable, 1);
  assert.equal(st.level, 'error');
  assert.deepEqual(
    st.attention.map((x) => [x.need, x.view, x.ref.segmentId ?? x.ref.jobId ?? x.ref.node]),
    [
      ['unreachable', 'nodes', 'http://b'],
      ['lost', 'nodes', lost.id],
      ['failedBackup', 'nodes', failed.id],
      ['failedJob', 'jobs', 'j1'],
      ['underReplicated', 'nodes', under.id],
      ['pending', 'nodes', pendingOld.id],
    ],
  );
  assert.match(st.attention[1]!.detail, /files gone, 1 copy in the backup/);
  assert.deepEqual(st.attention[1]!.ref, { node: 'http://a', dataSource: 'w', interval: lost.interval, segmentId: lost.id });
  assert.equal(
    statusText(st),
    '$(database) 1/6  $(debug-disconnect) 1 lost  $(error) 1 node down  $(error) 1 failed  $(warning) 1 under-replicated  $(clock) 2 (1 h)  $(close) 1 failed job',
  );
  assert.match(statusAccessibleName(st), /1 of 6 segments served have the copies wanted, 1 under-replicated, 1 lost/);
});

test('only under-replication is a warning; one copy is enough where one is wanted', () => {
  const under = segment('w', 1, 0, { backup: { state: 'backedUp', copies: 1, targets: ['http://t1'] } });
  assert.equal(clusterStatus([node('http://a', [under])], inputs()).level, 'warning');
  const single = clusterStatus([node('http://a', [segment('w', 1)])], inputs({ wantedCopies: () => 1 }));
  assert.equal(single.protected, 1, 'a single target backup without a copy count is one copy');
  assert.equal(single.level, 'ok');
  // A fresh pending backup is normal work, not a warning.
  const fresh = clusterStatus([node('http://a', [segment('w', 1, 0, { backup: { state: 'pending' } })])], inputs({ pendingSince: () => NOW - 1000 }));
  assert.equal(fresh.level, 'ok');
  assert.equal(fresh.pending, 1);
});

test('no nodes, and nodes still loading, say so instead of counting zeros', () => {
  assert.equal(statusText(clusterStatus([], inputs())), '$(database) Druid Backup');
  assert.equal(statusText(clusterStatus([{ url: 'http://a' }], inputs())), '$(sync~spin) Druid Backup');
});
