/**
 * Writes a Historical-like segment cache for tests, the demo and benchmarks: per segment `version.bin`
 * (0x00000009), `meta.smoosh` whose offsets match the smoosh chunks, `00000.smoosh` (and more chunks for large
 * segments), `factory.json`; incompressible column bytes; several data sources, versions and partitions; the
 * matching DataSegment JSON in `info_dir`; and a `runtime.properties` pointing at it. The bytes are
 * deterministic for a given seed (AES-CTR keyed by the seed is a fast seeded generator).
 */
import { createCipheriv, createHash } from 'node:crypto';
import { createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { once } from 'node:events';
import type { DataSegment } from '../druid/descriptor.js';
import type { CacheLayout } from '../druid/layout.js';
import { cacheSegmentPath } from '../druid/paths.js';
import { segmentIdOf } from '../druid/segmentId.js';
import { formatInstant } from '../druid/time.js';
import { BackupError } from '../errors.js';

export interface SampleOptions {
  dir: string;
  segments: number;
  layout: CacheLayout;
  dataSources: string[];
  /** Approximate bytes of column data per segment. */
  segmentSize: number;
  /** Largest smoosh chunk; Druid's default is Integer.MAX_VALUE (2 GiB - 1). */
  smooshChunkSize: number;
  seed: number;
}

export const DEFAULT_DATA_SOURCES = ['wikipedia', 'web_logs', 'kttm'];

export interface SampleResult {
  location: string;
  infoDir: string;
  deepStorage: string;
  propertiesFile: string;
  segmentIds: string[];
  bytes: number;
}

class SeededBytes {
  private cipher;
  private zeros = Buffer.alloc(1 << 20);
  constructor(seed: string) {
    const key = createHash('sha256').update(`druid-backup sample ${seed}`).digest();
    this.cipher = createCipheriv('aes-256-ctr', key, key.subarray(0, 16));
  }
  next(n: number): Buffer {
    const parts: Buffer[] = [];
    while (n > 0) {
      const k = Math.min(n, this.zeros.length);
      parts.push(this.cipher.update(this.zeros.subarray(0, k)));
      n -= k;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }
  int(max: number): number {
    return this.next(4).readUInt32BE(0) % max;
  }
}

const FACTORY_JSON = '{"type":"mMapSegmentFactory"}';
const COLUMNS = ['__time', 'added', 'channel', 'count', 'deleted', 'index.drd', 'metadata.drd', 'page', 'user'];

/** Writes `size` pseudo-random bytes to `file` in 1 MiB pieces, never holding more in memory. */
async function writeRandom(file: string, size: number, rnd: SeededBytes): Promise<void> {
  const out = createWriteStream(file);
  let left = size;
  while (left > 0) {
    const n = Math.min(left, 1 << 20);
    if (!out.write(rnd.next(n))) await once(out, 'drain');
    left -= n;
  }
  out.end();
  await once(out, 'finish');
}

/** Splits `total` bytes over the columns and packs them into smoosh chunks of at most `chunkSize`. */
function smooshPlan(total: number, chunkSize: number, rnd: SeededBytes) {
  const weights = COLUMNS.map(() => 1 + rnd.int(8));
  const sum = weights.reduce((a, b) => a + b, 0);
  const entries: Array<{ name: string; chunk: number; start: number; end: number }> = [];
  const chunks: number[] = [0];
  let remaining = total;
  COLUMNS.forEach((name, i) => {
    const size = Math.max(16, i === COLUMNS.length - 1 ? remaining : Math.floor((total * weights[i]!) / sum));
    remaining = Math.max(0, remaining - size);
    // Like Druid's FileSmoosher, a file that does not fit in the current chunk starts the next one.
    if (chunks[chunks.length - 1]! + size > chunkSize && chunks[chunks.length - 1]! > 0) chunks.push(0);
    const chunk = chunks.length - 1;
    const start = chunks[chunk]!;
    if (size > chunkSize) throw new BackupError('bad_request', `column of ${size} bytes exceeds the smoosh chunk size ${chunkSize}`);
    chunks[chunk] = start + size;
    entries.push({ name, chunk, start, end: start + size });
  });
  return { entries, chunks };
}

export async function writeSampleCache(o: SampleOptions): Promise<SampleResult> {
  if (!Number.isInteger(o.segments) || o.segments < 0 || o.segments > 1_000_000)
    throw new BackupError('bad_request', '--segments must be a whole number from 0 to 1000000');
  if (!Number.isInteger(o.segmentSize) || o.segmentSize < 1024) throw new BackupError('bad_request', '--segment-size must be at least 1024 bytes');
  if (o.dataSources.length === 0) throw new BackupError('bad_request', '--data-sources needs at least one name');
  const root = path.resolve(o.dir);
  const location = path.join(root, 'segment-cache');
  const infoDir = path.join(location, 'info_dir');
  const deepStorage = path.join(root, 'deep-storage');
  await fs.mkdir(infoDir, { recursive: true });
  await fs.mkdir(deepStorage, { recursive: true });
  const rnd = new SeededBytes(String(o.seed));
  const segmentIds: string[] = [];
  let bytes = 0;
  const base = Date.UTC(2015, 8, 12);
  const hour = 3600_000;
  const perDs = new Map<string, { interval: number; partitions: number; next: number }>();
  for (let i = 0; i < o.segments; i++) {
    const dataSource = o.dataSources[i % o.dataSources.length]!;
    // Each data source fills hourly intervals with 1 to 3 partitions.
    let st = perDs.get(dataSource);
    if (!st || st.next >= st.partitions) {
      const interval = st ? st.interval + 1 : 0;
      st = { interval, partitions: 1 + (interval % 3), next: 0 };
      perDs.set(dataSource, st);
    }
    const partition = st.next++;
    const startMs = base + st.interval * hour;
    // Versions are ingestion times; every seventh interval carries a `_1` suffix as appended versions can.
    let version = formatInstant(Date.UTC(2024, 0, 1) + (st.interval % 5) * 86_400_000 + 1234);
    if (st.interval % 7 === 6) version += '_1';
    const seg = segmentIdOf({ dataSource, start: formatInstant(startMs), end: formatInstant(startMs + hour), version, partition });
    const dir = cacheSegmentPath(location, seg, o.layout);
    await fs.mkdir(dir, { recursive: true });
    const jitter = 0.75 + rnd.int(1000) / 2000;
    const total = Math.floor(o.segmentSize * jitter);
    const plan = smooshPlan(total, o.smooshChunkSize, rnd);
    await fs.writeFile(path.join(dir, 'version.bin'), Buffer.from([0, 0, 0, 9]));
    await fs.writeFile(path.join(dir, 'factory.json'), FACTORY_JSON);
    const meta =
      [
        `v1,${o.smooshChunkSize},${plan.chunks.length}`,
        ...[...plan.entries].sort((a, b) => (a.name < b.name ? -1 : 1)).map((e) => `${e.name},${e.chunk},${e.start},${e.end}`),
      ].join('\n') + '\n';
    await fs.writeFile(path.join(dir, 'meta.smoosh'), meta);
    for (let c = 0; c < plan.chunks.length; c++) await writeRandom(path.join(dir, `${String(c).padStart(5, '0')}.smoosh`), plan.chunks[c]!, rnd);
    const size = 4 + FACTORY_JSON.length + Buffer.byteLength(meta) + plan.chunks.reduce((a, b) => a + b, 0);
    const descriptor: DataSegment = {
      dataSource,
      interval: `${seg.start}/${seg.end}`,
      version,
      // Where Druid 33's local pusher puts it: {storageDirectory}/{ds}/{start}_{end}/{version}/{partition}/index/
      loadSpec: { type: 'local', path: path.join(deepStorage, dataSource, `${seg.start}_${seg.end}`, version, String(partition), 'index') + '/' },
      dimensions: 'channel,page,user',
      metrics: 'count,added,deleted',
      shardSpec: { type: 'numbered', partitionNum: partition, partitions: st.partitions },
      binaryVersion: 9,
      size,
      identifier: seg.id,
    };
    await fs.writeFile(path.join(infoDir, seg.id), JSON.stringify(descriptor));
    segmentIds.push(seg.id);
    bytes += size;
  }
  const propertiesFile = path.join(root, 'runtime.properties');
  await fs.writeFile(
    propertiesFile,
    [
      '# A sample Historical written by `druid-backup sample-cache`.',
      'druid.service=druid/historical',
      'druid.host=localhost',
      'druid.plaintextPort=8083',
      `druid.segmentCache.locations=[{"path":${JSON.stringify(location)},"maxSize":"300g"}]`,
      'druid.storage.type=local',
      `druid.storage.storageDirectory=${deepStorage}`,
      '',
    ].join('\n'),
  );
  return { location, infoDir, deepStorage, propertiesFile, segmentIds, bytes };
}
