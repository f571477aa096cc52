/**
 * Backup latency with real processes: segments loaded the way a Historical loads them (test/helpers/druidLoad.ts)
 * are stored on the target without waiting for the reconcile scan (its period is an hour here, and the test checks
 * that none ran after the first): the first segment of a new data source, of a new interval, of a new version, a
 * new partition, in both cache layouts; and segments that several loading threads put into new data sources at
 * once, then later partitions into the directories those loads made.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { CacheLayout } from '../../sidecar/druid/layout.js';
import type { SampleResult } from '../../sidecar/sample/sampleCache.js';
import { writeSampleCache } from '../../sidecar/sample/sampleCache.js';
import type { DruidLoad } from '../helpers/druidLoad.js';
import { loadLikeDruid } from '../helpers/druidLoad.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { startSidecar, tmpDir, waitFor } from '../helpers/sidecar.js';

const env = { DRUID_BACKUP_RECONCILE_PERIOD: 'PT1H' };
/** Settle time (200 ms in tests) + a small transfer + the poll: far below the hour of the reconcile. */
const WITHIN_MS = 10_000;
const day = (n: number) => new Date(Date.UTC(2021, 0, 1 + n)).toISOString();

describe('backup latency of segments loaded like Druid', () => {
  let target: SidecarProcess;
  const sources: Partial<Record<CacheLayout, { sample: SampleResult; sidecar: SidecarProcess }>> = {};

  const stored = (id: string) => target.request('HEAD', `/data/v1/store/segments/${encodeURIComponent(id)}`).then((r) => r.status === 200);
  const reconciles = (s: SidecarProcess) => s.logLines().filter((l) => l.msg === 'reconciled the cache with the target').length;

  before(async () => {
    const root = tmpDir('dbk-lag-');
    target = await startSidecar(['--store', path.join(root, 'store')], { stateDir: path.join(root, 'target-state') });
    for (const layout of ['nested', 'flat'] as const) {
      const sample = await writeSampleCache({
        dir: path.join(root, layout),
        segments: 2,
        layout,
        dataSources: [`existing_${layout}`],
        segmentSize: 16 * 1024,
        smooshChunkSize: 2147483647,
        seed: 21,
      });
      const sidecar = await startSidecar(['--config', sample.propertiesFile, '--target', target.url, '--node-name', `lag-${layout}`], {
        token: target.token,
        env,
      });
      sources[layout] = { sample, sidecar };
      for (const id of sample.segmentIds) await waitFor(`${id} backed up at start`, () => stored(id), 30_000);
      await waitFor('the first reconcile', () => reconciles(sidecar) === 1);
    }
  });
  after(async () => {
    for (const s of Object.values(sources)) await s.sidecar.stop();
    await target?.stop();
  });

  /** Waits until the load is on the target, failing past WITHIN_MS; returns the lag in ms. */
  async function backedUpSoon(load: DruidLoad): Promise<number> {
    await waitFor(`${load.seg.id} on the target`, () => stored(load.seg.id), WITHIN_MS, 25);
    return performance.now() - load.loadedAt;
  }

  for (const layout of ['nested', 'flat'] as const) {
    test(`${layout}: the first segment of a new data source, interval, version and a new partition are backed up at once`, async () => {
      const { sample, sidecar } = sources[layout]!;
      const o = { location: sample.location, infoDir: sample.infoDir, layout, size: 256 * 1024 };
      const ds = `fresh_${layout}`;
      // The first segment of a data source this node never had: Druid makes {ds}/{interval}/{version}/{partition} at once.
      const first = await loadLikeDruid(o, { dataSource: ds, start: day(0), end: day(1), version: day(100), partition: 0 });
      const lags = [await backedUpSoon(first)];
      // Then into what that load made: a new interval, a new version of the first interval, a new partition of it.
      for (const p of [
        { dataSource: ds, start: day(1), end: day(2), version: day(100), partition: 0 },
        { dataSource: ds, start: day(0), end: day(1), version: day(101), partition: 0 },
        { dataSource: ds, start: day(0), end: day(1), version: day(100), partition: 1 },
      ])
        lags.push(await backedUpSoon(await loadLikeDruid(o, p)));
      assert.equal(reconciles(sidecar), 1, 'no reconcile ran: the watcher found every one');
      const line = sidecar.logLines().find((l) => l.msg === 'segment backed up' && l.segmentId === first.seg.id);
      assert.ok(line && typeof line.sendMs === 'number' && typeof line.lagMs === 'number', 'the backed-up log line says how long sending took');
      console.log(`${layout}: lags ${lags.map((l) => Math.round(l)).join(', ')} ms`);
    });
  }

  test('segments several loading threads put into new data sources at once, and later partitions below them, are all backed up at once', async () => {
    const { sample, sidecar } = sources.nested!;
    const o = { location: sample.location, infoDir: sample.infoDir, layout: 'nested' as const, size: 8 * 1024 };
    const parts = Array.from({ length: 24 }, (_, i) => ({ dataSource: `burst_${i % 6}`, start: day(i), end: day(i + 1), version: day(200), partition: 0 }));
    // Four loading threads: the sibling intervals of each new data source appear while the watcher takes in its directory.
    const loads: DruidLoad[] = [];
    for (let i = 0; i < parts.length; i += 4) loads.push(...(await Promise.all(parts.slice(i, i + 4).map((p) => loadLikeDruid(o, p)))));
    for (const l of loads) await backedUpSoon(l);
    // Past the 5 s in which active backup used to look below a new directory itself (chokidar missed subdirectories
    // made while it took one in, and never watched them): only a watch on every directory finds what comes now.
    await new Promise((r) => setTimeout(r, 5500));
    // Later, another partition into each version directory those loads made: each of them must be watched too.
    for (const p of parts) await backedUpSoon(await loadLikeDruid(o, { ...p, partition: 1 }));
    assert.equal(reconciles(sidecar), 1, 'no reconcile ran: the watcher found every one');
  });
});
