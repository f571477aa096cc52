/**
 * Active backup end to end with real processes: a source sidecar beside a 50-segment cache and a target sidecar
 * with a local store. Every stored file is byte-identical to its source; a segment added while running is stored
 * within seconds, but only once its download marker is gone; killing (-9) and restarting the source resends
 * nothing; the target down for a while, then up again, loses nothing; segments of new data sources whose
 * directories another process creates one by one (as Druid's download does) are all stored without a reconcile.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { SegmentInfo, SegmentsResponse, StoreCatalogResponse } from '../../sidecar/api.js';
import { cacheSegmentPath } from '../../sidecar/druid/paths.js';
import { parseSegmentId } from '../../sidecar/druid/segmentId.js';
import type { SampleResult } from '../../sidecar/sample/sampleCache.js';
import { writeSampleCache } from '../../sidecar/sample/sampleCache.js';
import { segmentPath } from '../../sidecar/store/local/layout.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { startSidecar, tmpDir, waitFor } from '../helpers/sidecar.js';

const enc = encodeURIComponent;

describe('active backup end to end', () => {
  let sample: SampleResult;
  let late: SampleResult;
  let burst: SampleResult;
  let storeDir: string;
  let target: SidecarProcess;
  let source: SidecarProcess;
  let sourceArgs: string[];
  let sourceState: string;
  const env = { DRUID_BACKUP_RECONCILE_PERIOD: 'PT1H' };

  const stored = (id: string) => target.request('HEAD', `/data/v1/store/segments/${enc(id)}`).then((r) => r.status === 200);
  const storeCount = async () => (await target.get<{ segments: number }>('/data/v1/store/stats')).segments;
  const puts = () => target.metric('druid_backup_store_puts_total');

  /** Copies a segment of the `late` cache into the live cache, as Druid's download would, optionally holding the marker. */
  function arrive(id: string, withMarker: boolean): string {
    const seg = parseSegmentId(id);
    const from = cacheSegmentPath(late.location, seg, 'nested');
    const to = cacheSegmentPath(sample.location, seg, 'nested');
    mkdirSync(to, { recursive: true });
    if (withMarker) writeFileSync(path.join(to, 'downloadStartMarker'), '');
    for (const f of readdirSync(from)) copyFileSync(path.join(from, f), path.join(to, f));
    copyFileSync(path.join(late.infoDir, id), path.join(sample.infoDir, id));
    return to;
  }

  before(async () => {
    const root = tmpDir('dbk-active-');
    // Some segments span several smoosh chunks, as large ones do.
    sample = await writeSampleCache({
      dir: path.join(root, 'historical'),
      segments: 50,
      layout: 'nested',
      dataSources: ['wikipedia', 'web_logs', 'kttm'],
      segmentSize: 48 * 1024,
      smooshChunkSize: 24 * 1024,
      seed: 11,
    });
    late = await writeSampleCache({
      dir: path.join(root, 'late'),
      segments: 3,
      layout: 'nested',
      dataSources: ['late_arrivals'],
      segmentSize: 32 * 1024,
      smooshChunkSize: 2147483647,
      seed: 12,
    });
    // Ten data sources the live cache does not have yet, four segments each.
    burst = await writeSampleCache({
      dir: path.join(root, 'burst'),
      segments: 40,
      layout: 'nested',
      dataSources: Array.from({ length: 10 }, (_, i) => `burst_${i}`),
      segmentSize: 4 * 1024,
      smooshChunkSize: 2147483647,
      seed: 13,
    });
    storeDir = path.join(root, 'store');
    sourceState = path.join(root, 'source-state');
    target = await startSidecar(['--store', storeDir], { stateDir: path.join(root, 'target-state') });
    sourceArgs = ['--config', sample.propertiesFile, '--target', target.url, '--node-name', 'historical-a'];
    source = await startSidecar(sourceArgs, { token: target.token, stateDir: sourceState, env });
  });
  after(async () => {
    await source?.stop();
    await target?.stop();
  });

  test('all 50 segments are stored, every file byte-identical to the cache', async () => {
    await waitFor('50 segments in the store', async () => (await storeCount()) === 50, 60_000);
    await waitFor('50 segments backed up', async () => (await source.get<SegmentsResponse>('/data/v1/segments?state=backedUp&limit=1')).total === 50);
    const catalog = await target.get<StoreCatalogResponse>('/data/v1/store/segments?limit=1000');
    assert.deepEqual(catalog.items.map((s) => s.segmentId).sort(), [...sample.segmentIds].sort());
    let files = 0;
    for (const s of catalog.items) {
      assert.deepEqual(s.sources, ['historical-a']);
      assert.deepEqual(s.conflicts, []);
      // The catalog's version and partition come from the descriptor (an id ending in _1 is ambiguous).
      const cacheDir = path.join(sample.location, s.dataSource, s.interval.replace('/', '_'), s.version, String(s.partition));
      const storeSegDir = path.join(storeDir, segmentPath(s.dataSource, s.segmentId));
      const names = readdirSync(cacheDir).sort();
      assert.deepEqual(readdirSync(storeSegDir).sort(), [...names, 'manifest.json'].sort(), s.segmentId);
      for (const n of names) {
        assert.ok(readFileSync(path.join(cacheDir, n)).equals(readFileSync(path.join(storeSegDir, n))), `${s.segmentId}/${n} differs`);
        files++;
      }
      const manifest = JSON.parse(readFileSync(path.join(storeSegDir, 'manifest.json'), 'utf8'));
      assert.equal(manifest.segmentId, s.segmentId);
      assert.equal(manifest.descriptor.identifier, s.segmentId, 'the info_dir descriptor travels with the segment');
    }
    assert.ok(files >= 200, `${files} files compared`);
    const one = await source.get<SegmentsResponse>(`/data/v1/segments?dataSource=kttm&limit=1`);
    const info: SegmentInfo = one.items[0]!;
    assert.equal(info.backup.state, 'backedUp');
    assert.equal(info.backup.target, target.url);
    assert.match(info.backup.digest ?? '', /^[0-9a-f]{64}$/);
  });

  test('a segment added while running is stored within seconds, but not while its download marker is there', async () => {
    const [held, direct] = late.segmentIds;
    const dir = arrive(held!, true);
    arrive(direct!, false);
    await waitFor('the complete new segment in the store', () => stored(direct!), 15_000);
    await waitFor('the source to see the downloading segment', async () => {
      const r = await source.get<SegmentsResponse>(`/data/v1/segments?dataSource=late_arrivals&state=downloading`);
      return r.items.some((s) => s.id === held);
    });
    // Well past the settle time (200 ms) and the time the other segment took: held back by its marker.
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(await stored(held!), false, 'a segment with a downloadStartMarker must not be sent');
    rmSync(path.join(dir, 'downloadStartMarker'));
    await waitFor('the new segment in the store once its marker is gone', () => stored(held!), 15_000);
    assert.equal(await storeCount(), 52);
  });

  test('killing (-9) and restarting the source resends nothing', async () => {
    await waitFor(
      'every segment recorded as backed up',
      async () => (await source.get<SegmentsResponse>('/data/v1/segments?state=backedUp&limit=1')).total === 52,
    );
    const before = await puts();
    await source.kill9();
    source = await startSidecar(sourceArgs, { token: target.token, stateDir: sourceState, env });
    await waitFor('the reconcile after the restart', () => source.logLines().some((l) => l.msg === 'reconciled the cache with the target'));
    const reconciled = source.logLines().find((l) => l.msg === 'reconciled the cache with the target')!;
    assert.equal(reconciled.segments, 52);
    assert.equal(reconciled.queued, 0, 'nothing queued for a cache the target already holds');
    // Give a stray transfer time to show up.
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(await puts(), before, 'no segment was sent again');
    assert.equal(await source.metric('druid_backup_segments_hashed_total'), 0, 'no file was read again');
    assert.equal((await source.get<SegmentsResponse>('/data/v1/segments?state=backedUp&limit=1')).total, 52);
  });

  test('the target down for a while, then up again, loses nothing', async () => {
    const port = target.port;
    assert.equal(await target.stop(), 0, 'the target exits cleanly on SIGTERM');
    const third = late.segmentIds[2]!;
    arrive(third, false);
    await waitFor('the source to notice the target is down', async () => (await source.metric('druid_backup_target_up')) === 0, 15_000);
    await waitFor('the new segment pending', async () => {
      const r = await source.get<SegmentsResponse>('/data/v1/segments?state=pending');
      return r.items.some((s) => s.id === third);
    });
    await new Promise((r) => setTimeout(r, 1500));
    target = await startSidecar(['--store', storeDir], { token: target.token, port, stateDir: target.stateDir });
    await waitFor('the segment stored once the target is back', () => stored(third), 20_000);
    assert.equal(await storeCount(), 53);
    await waitFor('every segment backed up', async () => (await source.get<SegmentsResponse>('/data/v1/segments?state=backedUp&limit=1')).total === 53);
    assert.ok(!existsSync(path.join(storeDir, '.tmp')) || readdirSync(path.join(storeDir, '.tmp')).length === 0);
  });

  test('segments of new data sources, their directories made one by one by another process, are all stored', async () => {
    // cp -r makes each directory, then reads and copies into it, as Druid's download does: the watcher reads a new
    // directory before it watches it, so a subdirectory made in between raises no event (about 1 in 20 here).
    // The reconcile runs hourly in this suite, so only the source's own look below new directories finds those.
    const reconciles = () => source.logLines().filter((l) => l.msg === 'reconciled the cache with the target').length;
    const reconcilesBefore = reconciles();
    for (const id of burst.segmentIds) copyFileSync(path.join(burst.infoDir, id), path.join(sample.infoDir, id));
    const dataSources = readdirSync(burst.location).filter((d) => d.startsWith('burst_'));
    assert.equal(dataSources.length, 10);
    const cp = spawnSync('cp', ['-r', ...dataSources.map((d) => path.join(burst.location, d)), sample.location + '/']);
    assert.equal(cp.status, 0, String(cp.stderr));
    const missing = async () => {
      const out: string[] = [];
      for (const id of burst.segmentIds) if (!(await stored(id))) out.push(id);
      return out;
    };
    await waitFor('every segment of the new data sources in the store', async () => (await missing()).length === 0, 30_000).catch(async (e: Error) => {
      throw new Error(`${e.message}; not stored: ${(await missing()).join(', ')}`);
    });
    assert.equal(await storeCount(), 93);
    assert.equal(reconciles(), reconcilesBefore, 'no reconcile ran meanwhile: the watcher and the look below new directories found them');
  });
});
