/** Snapshots and prune in a bucket on VersityGW: the same scenario as the local store, and the bucket's own cases. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { S3Target } from '../../sidecar/store/s3/target.js';
import type { VersityGw } from '../helpers/versitygw.js';
import { requireVersityGw, startVersityGw } from '../helpers/versitygw.js';
import { compactionScenario, leaseAndOrphanScenario, log } from '../helpers/snapshots.js';

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
    const { name } = await open();
    await leaseAndOrphanScenario(
      () => {
        const t = S3Target.open(`s3://${name}/backups`, { log, node: 'h1', settings: { endpoint: gw.endpoint } });
        targets.push(t);
        return t;
      },
      () => keys(name),
    );
  });
});
