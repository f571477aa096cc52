/**
 * Loads a segment into a cache the way a Historical does (SegmentLocalCacheManager): `mkdir -p` of the segment
 * directory, `downloadStartMarker`, the files, the marker removed, then the `info_dir` file. Shared by the tests
 * and the benchmark that measure how soon active backup takes a freshly loaded segment.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { DataSegment } from '../../sidecar/druid/descriptor.js';
import type { CacheLayout } from '../../sidecar/druid/layout.js';
import { cacheSegmentPath } from '../../sidecar/druid/paths.js';
import { DOWNLOAD_MARKER } from '../../sidecar/druid/scan.js';
import type { SegmentId } from '../../sidecar/druid/segmentId.js';
import { segmentIdOf } from '../../sidecar/druid/segmentId.js';

export interface DruidLoad {
  seg: SegmentId;
  dir: string;
  bytes: number;
  /** performance.now() once the info_dir file is written: the load is over. */
  loadedAt: number;
}

/** Loads one segment of `size` random bytes (one smoosh chunk) at `location` in `layout`, its descriptor into `infoDir`. */
export async function loadLikeDruid(
  o: { location: string; infoDir: string; layout: CacheLayout; size: number },
  p: { dataSource: string; start: string; end: string; version: string; partition: number },
): Promise<DruidLoad> {
  const seg = segmentIdOf(p);
  const dir = cacheSegmentPath(o.location, seg, o.layout);
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, DOWNLOAD_MARKER), '');
  const meta = `v1,2147483647,1\n__time,0,0,${o.size}\n`;
  await fs.writeFile(path.join(dir, 'version.bin'), Buffer.from([0, 0, 0, 9]));
  await fs.writeFile(path.join(dir, 'factory.json'), '{"type":"mMapSegmentFactory"}');
  await fs.writeFile(path.join(dir, 'meta.smoosh'), meta);
  const out = createWriteStream(path.join(dir, '00000.smoosh'));
  for (let left = o.size; left > 0; left -= 1 << 20) if (!out.write(randomBytes(Math.min(left, 1 << 20)))) await once(out, 'drain');
  out.end();
  await once(out, 'finish');
  await fs.rm(path.join(dir, DOWNLOAD_MARKER));
  const bytes = 4 + 29 + Buffer.byteLength(meta) + o.size;
  const descriptor: DataSegment = {
    dataSource: seg.dataSource,
    interval: `${seg.start}/${seg.end}`,
    version: seg.version,
    loadSpec: { type: 'local', path: `/deep-storage/${seg.dataSource}/${seg.start}_${seg.end}/${seg.version}/${seg.partition}/index/` },
    dimensions: 'page',
    metrics: 'count',
    shardSpec: { type: 'numbered', partitionNum: seg.partition, partitions: seg.partition + 1 },
    binaryVersion: 9,
    size: bytes,
    identifier: seg.id,
  };
  await fs.writeFile(path.join(o.infoDir, seg.id), JSON.stringify(descriptor));
  return { seg, dir, bytes, loadedAt: performance.now() };
}
