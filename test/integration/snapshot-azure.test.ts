/**
 * Snapshots and prune in an Azure Blob Storage container on Azurite: the same code as a bucket's (the snapshot store
 * is written once over the object-store primitives, store/object/snapshots.ts), so the same scenarios; and the CLI
 * prunes a container named by its azure:// URL with the environment's credentials, dry run first.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AzureTarget } from '../../sidecar/store/azure/target.js';
import type { Azurite } from '../helpers/azurite.js';
import { startAzurite } from '../helpers/azurite.js';
import { runCli } from '../helpers/cli.js';
import { takeSnapshot } from '../../sidecar/snapshot/take.js';
import { compactionScenario, coordinator, idOf, leaseAndOrphanScenario, log, metadata, seg } from '../helpers/snapshots.js';

describe('snapshots in an Azure container', () => {
  let az: Azurite;
  let n = 0;
  const targets: AzureTarget[] = [];
  const saved = process.env.AZURE_STORAGE_CONNECTION_STRING;
  const open = (container: string) => {
    const t = AzureTarget.open(`azure://${container}/backups`, { log });
    targets.push(t);
    return t;
  };
  const fresh = async () => {
    const name = `dbk-snap-${++n}`;
    await az.createContainer(name);
    return name;
  };
  const keys = async (container: string) => {
    const out: string[] = [];
    for await (const b of az.service.getContainerClient(container).listBlobsFlat()) out.push(b.name);
    return out.sort();
  };

  before(async () => {
    az = await startAzurite();
    process.env.AZURE_STORAGE_CONNECTION_STRING = az.connectionString;
  });
  after(async () => {
    for (const t of targets) t.close();
    if (saved === undefined) delete process.env.AZURE_STORAGE_CONNECTION_STRING;
    else process.env.AZURE_STORAGE_CONNECTION_STRING = saved;
    await az?.close();
  });

  test('snapshot, compaction, snapshot again, prune keepLast=1: the container then holds only what Druid uses', async () => {
    const name = await fresh();
    await compactionScenario(open(name));
    const left = await keys(name);
    assert.ok(!left.some((k) => k.includes('v1')), `no key of an old version is left: ${left.join(' ')}`);
    assert.equal(left.filter((k) => /snapshots\/[^/]+\.json$/.test(k)).length, 1);
  });

  test('the lease: one holder at a time, an expired one is taken over, a prune killed after the manifest is finished next run', async () => {
    const name = await fresh();
    await leaseAndOrphanScenario(
      () => open(name),
      () => keys(name),
    );
  });

  test('druid-backup prune --target azure://…: the dry run names what goes and removes nothing; the prune removes it', async () => {
    const name = await fresh();
    const t = open(name);
    const c = await coordinator();
    try {
      const take = () => takeSnapshot({ coordinator: c.url, catalogs: [t], targets: [t], node: 'cluster', captureMetadata: metadata, log });
      await t.put(seg(1, 'v1'));
      c.used.push({ day: 1, version: 'v1' });
      const first = await take();
      await t.put(seg(1, 'v2'));
      c.used.splice(0, 1, { day: 1, version: 'v2' });
      const second = await take();
      assert.deepEqual(await t.snapshots.listSnapshots(), [first.header.id, second.header.id].sort());
      const env = { AZURE_STORAGE_CONNECTION_STRING: az.connectionString };
      const args = ['prune', '--target', `azure://${name}/backups`, '--keep-last', '1', '--grace-period', 'PT0S', '--json'];
      const dry = await runCli([...args, '--dry-run'], { env });
      assert.equal(dry.code, 0, dry.stderr);
      const plan = JSON.parse(dry.stdout) as { remove: Array<{ segmentId: string }>; snapshots: Array<{ id: string; keep: boolean }> };
      assert.deepEqual(
        plan.remove.map((r) => r.segmentId),
        [idOf(1, 'v1')],
      );
      assert.equal((await keys(name)).filter((k) => k.includes('v1')).length > 0, true, 'a dry run removes nothing');
      const done = await runCli(args, { env });
      assert.equal(done.code, 0, done.stderr);
      assert.deepEqual(JSON.parse(done.stdout).removed, {
        snapshots: 1,
        segments: 1,
        bytes: seg(1, 'v1').files.reduce((s, f) => s + f.size, 0),
        orphans: 0,
        blobs: 1,
      });
      assert.deepEqual(await open(name).snapshots.listSnapshots(), [second.header.id]);
      assert.equal((await keys(name)).filter((k) => k.includes('v1')).length, 0);
    } finally {
      c.close();
    }
  });
});
