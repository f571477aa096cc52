/** Snapshots and prune in a bucket on VersityGW: the same scenario as the local store, and the bucket's own cases. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { S3Target } from '../../sidecar/store/s3/target.js';
import { prune } from '../../sidecar/snapshot/prune.js';
import type { VersityGw } from '../helpers/versitygw.js';
import { requireVersityGw, startVersityGw } from '../helpers/versitygw.js';
import { compactionScenario, idOf, log, seg } from '../helpers/snapshots.js';

requireVersityGw();

describe('snapshots in a bucket', () => {
  let gw: VersityGw;
  let n = 0;
  const targets: S3Target[] = [];
  const open = async () => {
    const name = `dbk-snap-${++n}`;
    await gw.createBucket(name);
    const t = S3Target.open(`s3://${name}/backups`, { log, node: 'h1', settings: { endpoint: gw.endpoint } });
    targets.push(t);
    return { t, name };
  };
  const keys = async (bucket: string) => ((await gw.client.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? []).map((o) => o.Key!).sort();

  before(async () => {
    gw = await startVersityGw();
    Object.assign(process.env, gw.env);
  });
  after(async () => {
    for (const t of targets) t.close();
    await gw?.close();
  });

  test('snapshot, compaction, snapshot again, prune keepLast=1: the bucket then holds only what Druid uses', async () => {
    const { t, name } = await open();
    await compactionScenario(t);
    const left = await keys(name);
    assert.ok(!left.some((k) => k.includes('v1')), `no key of an old version is left: ${left.join(' ')}`);
    assert.equal(left.filter((k) => /snapshots\/[^/]+\.json$/.test(k)).length, 1);
  });

  test('the lease: one holder at a time, an expired one is taken over, a prune killed after the manifest is finished next run', async () => {
    const { t, name } = await open();
    assert.equal(await t.snapshots.acquireLease('a', 60_000), true);
    assert.equal(await t.snapshots.acquireLease('b', 60_000), false);
    assert.equal(await t.snapshots.acquireLease('a', 60_000), true, 'renewed by its owner');
    await t.snapshots.releaseLease('a');
    assert.equal(await t.snapshots.acquireLease('b', -1), true);
    assert.equal(await t.snapshots.acquireLease('c', 60_000), true, 'an expired lease is taken over');
    await t.snapshots.releaseLease('c');
    await t.put(seg(1, 'v1'));
    // A prune killed between its manifest and its files: the record and the files are there, the manifest is not.
    const { PutObjectCommand, DeleteObjectCommand } = await import('@aws-sdk/client-s3');
    const id = idOf(1, 'v1');
    const { encodeName } = await import('../../sidecar/store/object/layout.js');
    await gw.client.send(new PutObjectCommand({ Bucket: name, Key: `backups/prune/removing/${encodeName(id)}`, Body: '{}' }));
    await gw.client.send(new DeleteObjectCommand({ Bucket: name, Key: t.layout.manifestKey(id) }));
    const fresh = S3Target.open(`s3://${name}/backups`, { log, node: 'h1', settings: { endpoint: gw.endpoint } });
    targets.push(fresh);
    const r = await prune(fresh, { policy: { gracePeriodMs: 0 }, owner: 'p', log });
    assert.equal(r.removed.orphans, 1);
    assert.deepEqual(
      (await keys(name)).filter((k) => k.includes('segments/') || k.includes('removing')),
      [],
    );
  });
});
