/**
 * Load. Ten source sidecars push to one target at once (three of them hold the same segments, as Druid replicas
 * do): every segment is stored once, replicas recorded as sources, the target's memory stays bounded. And 100,000
 * segments in one cache and in one store: the source's segment listing and the target's catalog are paged through
 * completely, every id once, with the time and memory reported (figures, not thresholds; memory is bounded).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import type { Page, SegmentsResponse } from '../../sidecar/api.js';
import { writeSampleCache } from '../../sidecar/sample/sampleCache.js';
import type { SampleResult } from '../../sidecar/sample/sampleCache.js';
import { segmentPath } from '../../sidecar/store/local/layout.js';
import type { Manifest } from '../../sidecar/store/manifest.js';
import { segmentDigest } from '../../sidecar/store/manifest.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { startSidecar, tmpDir, waitFor } from '../helpers/sidecar.js';
import { cacheDirs, checkStore, compareWithCache, logged } from './lib.js';

const BIG = Number(process.env.RELIABILITY_LOAD_SEGMENTS ?? 100_000);
const procs: SidecarProcess[] = [];
const mounts: string[] = [];
const figures: Record<string, unknown> = {};

after(async () => {
  for (const p of procs) await p.stop();
  for (const m of mounts) spawnSync('umount', ['-l', m]);
  console.log(`load figures: ${JSON.stringify(figures)}`);
});

async function started(args: string[], opts: Parameters<typeof startSidecar>[1] = {}): Promise<SidecarProcess> {
  const p = await startSidecar(args, opts);
  procs.push(p);
  return p;
}

/** Peak and current resident memory of a process, in MiB. */
function memory(p: SidecarProcess): { peakMiB: number; rssMiB: number } {
  const status = readFileSync(`/proc/${p.proc.pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  return { peakMiB: Math.round(kb('VmHWM') / 1024), rssMiB: Math.round(kb('VmRSS') / 1024) };
}

/** A scratch directory on a tmpfs when this process may mount one (100,000 small files are slow on an overlay). */
function scratch(mib: number): string {
  const dir = tmpDir('dbk-load-');
  if (process.getuid?.() === 0 && spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${mib}m`, 'tmpfs', dir]).status === 0) mounts.push(dir);
  return dir;
}

const env = { DRUID_BACKUP_RECONCILE_PERIOD: 'PT1H', DRUID_BACKUP_AUTO_RESTORE: 'false' };

describe('load', () => {
  test('ten sources push to one target at once: each segment stored once, replicas recorded, memory bounded', async () => {
    const root = tmpDir('dbk-load10-');
    const storeDir = path.join(root, 'store');
    const target = await started(['--store', storeDir], { env });
    const samples: SampleResult[] = [];
    const shared = await writeSampleCache({
      dir: path.join(root, 'shared'),
      segments: 12,
      layout: 'nested',
      dataSources: ['replicated'],
      segmentSize: 256 * 1024,
      smooshChunkSize: 128 * 1024,
      seed: 200,
    });
    for (let i = 0; i < 7; i++)
      samples.push(
        await writeSampleCache({
          dir: path.join(root, `own-${i}`),
          segments: 12,
          layout: i % 2 ? 'flat' : 'nested',
          dataSources: [`node${i}_a`, `node${i}_b`],
          segmentSize: 256 * 1024,
          smooshChunkSize: 128 * 1024,
          seed: 300 + i,
        }),
      );
    const t0 = Date.now();
    const sources = await Promise.all(
      [shared, shared, shared, ...samples].map((s, i) =>
        started(['--config', s.propertiesFile, '--target', target.url, '--node-name', `historical-${i}`], { token: target.token, env }),
      ),
    );
    await waitFor(
      'every source to have backed up its cache',
      async () => {
        for (const [i, src] of sources.entries()) {
          const total = (await src.get<SegmentsResponse>('/data/v1/segments?state=backedUp&limit=1')).total;
          if (total !== (i < 3 ? shared : samples[i - 3]!).segmentIds.length) return false;
        }
        return true;
      },
      120_000,
      250,
    );
    const seconds = (Date.now() - t0) / 1000;
    const check = checkStore(storeDir);
    assert.deepEqual(check.problems, []);
    assert.deepEqual(check.tmp, []);
    const expected = [...shared.segmentIds, ...samples.flatMap((s) => s.segmentIds)].sort();
    assert.deepEqual([...check.segments.keys()].sort(), expected, 'each segment stored once');
    for (const id of shared.segmentIds)
      assert.deepEqual(
        check.segments
          .get(id)!
          .sources.map((s) => s.node)
          .sort(),
        ['historical-0', 'historical-1', 'historical-2'],
        `${id}: every replica recorded`,
      );
    for (const m of check.segments.values()) assert.deepEqual(m.conflicts, []);
    assert.deepEqual(compareWithCache(check, new Map([...cacheDirs(shared), ...samples.flatMap((s, i) => [...cacheDirs(s, i % 2 ? 'flat' : 'nested')])])), []);
    const stored = logged(target.stdout, 'segment stored').length;
    assert.equal(stored, expected.length, 'each segment was committed once, replicas needed no second copy');
    const mem = memory(target);
    figures.tenSources = { segments: expected.length, replicated: shared.segmentIds.length, seconds, targetPeakMiB: mem.peakMiB, bytes: check.segments.size };
    assert.ok(mem.peakMiB < 1024, `target peak memory ${mem.peakMiB} MiB`);
    await Promise.all(sources.map((s) => s.stop()));
  });

  test(`${BIG.toLocaleString('en')} segments in one cache and one store: listings page through everything, memory bounded`, async () => {
    const dir = scratch(2200);
    // A flat (Druid 35+) cache of one-file (format v10) segments with their info_dir descriptors.
    const location = path.join(dir, 'segment-cache');
    const infoDir = path.join(location, 'info_dir');
    const storeDir = path.join(dir, 'store');
    mkdirSync(infoDir, { recursive: true });
    let t = Date.now();
    const base = Date.UTC(2000, 0, 1);
    const ids: string[] = [];
    const now = new Date().toISOString();
    for (let i = 0; i < BIG; i++) {
      const start = new Date(base + i * 3_600_000).toISOString();
      const end = new Date(base + (i + 1) * 3_600_000).toISOString();
      const id = `load_${start}_${end}_2024-01-01T00:00:00.000Z`;
      ids.push(id);
      const body = `segment ${i}\n`;
      mkdirSync(path.join(location, id));
      writeFileSync(path.join(location, id, 'druid.segment'), body);
      const descriptor = {
        dataSource: 'load',
        interval: `${start}/${end}`,
        version: '2024-01-01T00:00:00.000Z',
        shardSpec: { type: 'numbered', partitionNum: 0, partitions: 1 },
        binaryVersion: 10,
        size: body.length,
      };
      writeFileSync(path.join(infoDir, id), JSON.stringify(descriptor));
      // The same segment as a target stores it: its file and manifest.
      const files = [{ name: 'druid.segment', size: body.length, sha256: createHash('sha256').update(body).digest('hex') }];
      const segDir = path.join(storeDir, segmentPath('load', id));
      mkdirSync(segDir, { recursive: true });
      writeFileSync(path.join(segDir, 'druid.segment'), body);
      const m: Manifest = {
        formatVersion: 1,
        segmentId: id,
        dataSource: 'load',
        interval: `${start}/${end}`,
        version: '2024-01-01T00:00:00.000Z',
        partition: 0,
        descriptor,
        files,
        size: body.length,
        digest: segmentDigest(files),
        sources: [{ node: 'big', digest: segmentDigest(files), at: now }],
        conflicts: [],
        createdAt: now,
        updatedAt: now,
      };
      writeFileSync(path.join(segDir, 'manifest.json'), JSON.stringify(m));
    }
    const props = path.join(dir, 'runtime.properties');
    writeFileSync(props, `druid.service=druid/historical\ndruid.segmentCache.locations=[{"path":${JSON.stringify(location)},"maxSize":"300g"}]\n`);
    figures.bigGenerateSeconds = (Date.now() - t) / 1000;

    // The target loads the 100,000 manifests at start; its catalog is paged through.
    t = Date.now();
    const target = await started(['--store', storeDir], { env, timeoutMs: 300_000 });
    figures.bigTargetStartSeconds = (Date.now() - t) / 1000;
    figures.bigTargetLoadMs = logged(target.stdout, 'store loaded')[0]?.ms;
    const pageThrough = async (p: SidecarProcess, list: string, key: string) => {
      const seen = new Set<string>();
      const times: number[] = [];
      let cursor: string | undefined;
      let pages = 0;
      const t0 = Date.now();
      do {
        const t1 = Date.now();
        const page = await p.get<Page<Record<string, string>>>(`${list}?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        times.push(Date.now() - t1);
        for (const item of page.items) {
          assert.ok(!seen.has(item[key]!), `${item[key]} listed twice`);
          seen.add(item[key]!);
        }
        cursor = page.nextCursor;
        pages++;
      } while (cursor);
      times.sort((a, b) => a - b);
      return { seen, pages, seconds: (Date.now() - t0) / 1000, medianPageMs: times[Math.floor(times.length / 2)], worstPageMs: times[times.length - 1] };
    };
    const catalog = await pageThrough(target, '/data/v1/store/segments', 'segmentId');
    assert.equal(catalog.seen.size, BIG, 'the catalog lists every stored segment once');
    const targetMem = memory(target);
    figures.bigCatalog = { pages: catalog.pages, seconds: catalog.seconds, medianPageMs: catalog.medianPageMs, worstPageMs: catalog.worstPageMs, ...targetMem };

    // The source scans the 100,000 segments (no target, so nothing is sent) and lists them.
    t = Date.now();
    const source = await started(['--config', props, '--node-name', 'big'], { env, timeoutMs: 300_000 });
    await waitFor('the first scan', async () => (await source.get<SegmentsResponse>('/data/v1/segments?limit=1')).total === BIG, 300_000, 500);
    figures.bigSourceFirstListingSeconds = (Date.now() - t) / 1000;
    const listing = await pageThrough(source, '/data/v1/segments', 'id');
    assert.deepEqual([...listing.seen].sort(), ids.sort(), 'the source lists every cached segment once');
    const sourceMem = memory(source);
    figures.bigSegments = {
      pages: listing.pages,
      seconds: listing.seconds,
      medianPageMs: listing.medianPageMs,
      worstPageMs: listing.worstPageMs,
      ...sourceMem,
    };
    assert.ok(targetMem.peakMiB < 1024 && sourceMem.peakMiB < 1024, `memory stays bounded: target ${targetMem.peakMiB} MiB, source ${sourceMem.peakMiB} MiB`);
    figures.bigMemoryMiB = { target: targetMem.peakMiB, source: sourceMem.peakMiB, perSegmentKiB: Math.round(((sourceMem.peakMiB * 1024) / BIG) * 100) / 100 };
  });
});
