/**
 * Druid replicates each segment on several Historicals. Two source caches holding the same segments end up
 * stored once, with both nodes recorded as sources; a third node whose copy of one segment differs is flagged as
 * a conflict, and the stored bytes stay those of the first copy.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { SegmentsResponse, StoreCatalogResponse } from '../../sidecar/api.js';
import type { SampleResult } from '../../sidecar/sample/sampleCache.js';
import { writeSampleCache } from '../../sidecar/sample/sampleCache.js';
import { segmentPath } from '../../sidecar/store/local/layout.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { startSidecar, tmpDir, waitFor } from '../helpers/sidecar.js';

describe('replicas from several Historicals', () => {
  const root = tmpDir('dbk-replicas-');
  const storeDir = path.join(root, 'store');
  const caches: SampleResult[] = [];
  const procs: SidecarProcess[] = [];
  let target: SidecarProcess;

  const sample = (name: string) =>
    writeSampleCache({
      dir: path.join(root, name),
      segments: 20,
      layout: 'nested',
      dataSources: ['wikipedia', 'web_logs'],
      segmentSize: 24 * 1024,
      smooshChunkSize: 2147483647,
      seed: 31,
    });

  before(async () => {
    // The same seed: byte-identical segments, as replicas pulled from the same deep storage are.
    caches.push(await sample('historical-a'), await sample('historical-b'), await sample('historical-c'));
    target = await startSidecar(['--store', storeDir]);
  });
  after(async () => {
    for (const p of procs) await p.stop();
    await target?.stop();
  });

  test('two caches with the same segments are stored once, with both sources recorded', async () => {
    for (const [i, name] of ['historical-a', 'historical-b'].entries()) {
      procs.push(await startSidecar(['--config', caches[i]!.propertiesFile, '--target', target.url, '--node-name', name], { token: target.token }));
    }
    const catalog = await waitFor(
      'every segment stored with both sources',
      async () => {
        const c = await target.get<StoreCatalogResponse>('/data/v1/store/segments?limit=1000');
        return c.total === 20 && c.items.every((s) => s.sources.length === 2) ? c : undefined;
      },
      30_000,
    );
    for (const s of catalog.items) {
      assert.deepEqual([...s.sources].sort(), ['historical-a', 'historical-b']);
      assert.deepEqual(s.conflicts, []);
    }
    const dirs = readdirSync(path.join(storeDir, 'segments')).flatMap((ds) => readdirSync(path.join(storeDir, 'segments', ds)));
    assert.equal(dirs.length, 20, 'one directory per segment id');
    for (const p of procs)
      await waitFor(
        `${p.args.at(-1)} to see all backed up`,
        async () => (await p.get<SegmentsResponse>('/data/v1/segments?state=backedUp&limit=1')).total === 20,
      );
  });

  test('a replica with different bytes is flagged, not stored over the first copy', async () => {
    const c = caches[2]!;
    const victim = c.segmentIds[5]!;
    const manifestBefore = await target.get<{
      files: Array<{ name: string; sha256: string }>;
      dataSource: string;
      version: string;
      partition: number;
      interval: string;
    }>(`/data/v1/store/segments/${encodeURIComponent(victim)}/manifest`);
    const dir = path.join(
      c.location,
      manifestBefore.dataSource,
      manifestBefore.interval.replace('/', '_'),
      manifestBefore.version,
      String(manifestBefore.partition),
    );
    const smoosh = path.join(dir, '00000.smoosh');
    const bytes = readFileSync(smoosh);
    bytes[100] = bytes[100]! ^ 0xff;
    writeFileSync(smoosh, bytes);

    const third = await startSidecar(['--config', c.propertiesFile, '--target', target.url, '--node-name', 'historical-c'], { token: target.token });
    procs.push(third);
    const flagged = await waitFor(
      'the differing replica flagged',
      async () => {
        const r = await target.get<StoreCatalogResponse>('/data/v1/store/segments?state=conflict');
        return r.total === 1 ? r.items[0] : undefined;
      },
      30_000,
    );
    assert.equal(flagged.segmentId, victim);
    assert.deepEqual(flagged.conflicts, ['historical-c']);
    assert.ok(!flagged.sources.includes('historical-c'));
    const storedFile = readFileSync(path.join(storeDir, segmentPath(manifestBefore.dataSource, victim), '00000.smoosh'));
    assert.ok(storedFile.equals(readFileSync(path.join(caches[0]!.location, path.relative(c.location, smoosh)))), 'the stored copy is still the first one');
    const after = await target.get<{ files: Array<{ sha256: string }> }>(`/data/v1/store/segments/${encodeURIComponent(victim)}/manifest`);
    assert.deepEqual(after.files, manifestBefore.files);
    // The other 19 identical replicas only added a source.
    await waitFor('historical-c recorded on the other segments', async () => {
      const r = await target.get<StoreCatalogResponse>('/data/v1/store/segments?limit=1000');
      return r.items.filter((s) => s.sources.includes('historical-c')).length === 19;
    });
    const seg = await waitFor('the conflict shown on the source', async () => {
      const r = await third.get<SegmentsResponse>('/data/v1/segments?state=failed');
      return r.items.find((s) => s.id === victim);
    });
    assert.match(seg.backup.error ?? '', /different bytes/);
  });
});
