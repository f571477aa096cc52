/**
 * S3 targets against a real VersityGW started here (test/helpers/versitygw.ts):
 * - backup and restore of one large segment through a real sidecar (dist/sidecar.js, `POST /data/v1/backup` and
 *   `/restore` with an s3:// target), as a ratio to VersityGW's own raw throughput measured in the same run: one
 *   large object PUT and GET with the SDK (defaults, streamed from and to a file; the PUT again with a sha256
 *   checksum, the server-side work a backup asks for, as a second baseline). Rounds alternate raw and
 *   sidecar so that the machine's noise hits both alike (odd rounds raw first, even rounds the sidecar first:
 *   the first upload of a series runs faster), each after a `sync`; the median of the rounds is reported.
 * - the sidecar's RSS while it backs up the segment (sampled from /proc every 50 ms, and its peak VmHWM);
 * - the catalog of 10,000 backed-up segments: requests and time of a listing without the index (every manifest
 *   read) and with it (list pages and one GET).
 * Size with DBK_BENCH_S3_MB (default 2048), rounds with DBK_BENCH_S3_ROUNDS (default 6, as many of each order); DBK_BENCH_S3_ONLY=transfer or
 * catalog runs one part.
 */
import { execFileSync } from 'node:child_process';
import { createReadStream, createWriteStream, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { DeleteObjectsCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import pino from 'pino';
import type { Job, JobAccepted } from '../sidecar/api.js';
import { S3Target } from '../sidecar/store/s3/target.js';
import { mapLimit } from '../sidecar/util/pool.js';
import type { SidecarProcess } from '../test/helpers/sidecar.js';
import { startSidecar, tmpDir } from '../test/helpers/sidecar.js';
import type { VersityGw } from '../test/helpers/versitygw.js';
import { oneLargeSegment } from './sample.js';
import { addRow } from './table.js';
import { installVersityGw, startVersityGw } from '../test/helpers/versitygw.js';

const MIB = 1024 * 1024;
const BUCKET = 'bench';

/** Flushes dirty pages (untimed) before each timed transfer, so that none pays for the writeback of another's. */
export const settle = () => execFileSync('sync');

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
/**
 * Runs two timed parts in turn, the first of them first in odd rounds and second in even rounds: the server runs
 * the first transfer of a series faster than the ones after it (222-247 MB/s, then about 130, for the same SDK PUT
 * of the same file), so each side is first as often as the other.
 */
export async function inTurn<A, B>(round: number, a: () => Promise<A>, b: () => Promise<B>): Promise<[A, B]> {
  if (round % 2 === 1) {
    const x = await a();
    return [x, await b()];
  }
  const y = await b();
  return [await a(), y];
}

export const mbps = (bytes: number, ms: number) => bytes / MIB / (ms / 1000);

export function rssOf(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

async function emptyBucket(gw: VersityGw, prefix: string): Promise<void> {
  let token: string | undefined;
  do {
    const page = await gw.client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix, ContinuationToken: token }));
    const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }));
    if (keys.length) await gw.client.send(new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: keys, Quiet: true } }));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
}

export async function runJob(sc: SidecarProcess, route: string, body: unknown, onTick?: () => void): Promise<Job> {
  const r = await sc.request<JobAccepted>('POST', route, body);
  if (r.status !== 202) throw new Error(`${route}: ${r.status} ${r.text}`);
  for (;;) {
    onTick?.();
    const job = await sc.get<Job>(`/data/v1/jobs/${r.json.jobId}`);
    if (job.state === 'failed' || job.state === 'cancelled') throw new Error(`${route} job ${job.state}: ${JSON.stringify(job.errors)}`);
    if (job.state === 'succeeded') return job;
    await new Promise((res) => setTimeout(res, 50));
  }
}

export const jobMs = (job: Job) => Date.parse(job.finishedAt!) - Date.parse(job.startedAt!);

async function benchTransfer(gw: VersityGw, root: string): Promise<void> {
  const mb = Number(process.env.DBK_BENCH_S3_MB ?? 2048);
  const rounds = Number(process.env.DBK_BENCH_S3_ROUNDS ?? 6);
  const { sample, segDir, big, bigSize } = await oneLargeSegment(path.join(root, 'historical'), mb);
  console.log(
    `segment ${sample.segmentIds[0]}: ${(sample.bytes / MIB).toFixed(0)} MiB in ${readdirSync(segDir).length} files; raw object ${(bigSize / MIB).toFixed(0)} MiB`,
  );

  const sc = await startSidecar(['--config', sample.propertiesFile, '--node-name', 'bench-node'], {
    allowedTargets: [`s3://${BUCKET}`],
    env: { ...gw.env, DRUID_BACKUP_AUTO_RESTORE: 'false', DRUID_BACKUP_RECONCILE_PERIOD: 'PT1H' },
  });
  const rows: Array<{ put: number; putSha: number; backup: number; get: number; restore: number; peakRss: number }> = [];
  try {
    for (let round = 1; round <= rounds; round++) {
      const prefix = `round${round}`;
      const rawPuts = async () => {
        settle();
        let t0 = performance.now();
        await gw.client.send(
          new PutObjectCommand({ Bucket: BUCKET, Key: `${prefix}-raw/object`, Body: createReadStream(big, { highWaterMark: MIB }), ContentLength: bigSize }),
        );
        const put = mbps(bigSize, performance.now() - t0);
        // The same PUT with the checksum a backup must have the server verify (sha256), instead of the SDK's CRC32.
        settle();
        t0 = performance.now();
        await gw.client.send(
          new PutObjectCommand({
            Bucket: BUCKET,
            Key: `${prefix}-raw/object-sha256`,
            Body: createReadStream(big, { highWaterMark: MIB }),
            ContentLength: bigSize,
            ChecksumAlgorithm: 'SHA256',
          }),
        );
        return { put, putSha: mbps(bigSize, performance.now() - t0) };
      };
      const sidecarBackup = async () => {
        let peak = 0;
        const before = rssOf(sc.proc.pid!).rss;
        settle();
        const job = await runJob(sc, '/data/v1/backup', { target: `s3://${BUCKET}/${prefix}` }, () => (peak = Math.max(peak, rssOf(sc.proc.pid!).rss)));
        return { backup: mbps(sample.bytes, jobMs(job)), before, peak, hwm: rssOf(sc.proc.pid!).hwm };
      };
      const [{ put, putSha }, { backup, before, peak, hwm }] = await inTurn(round, rawPuts, sidecarBackup);

      const rawGet = async () => {
        const rawFile = path.join(root, 'raw-get');
        settle();
        const t0 = performance.now();
        const got = await gw.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: `${prefix}-raw/object` }));
        await pipeline(got.Body as NodeJS.ReadableStream, createWriteStream(rawFile));
        const get = mbps(bigSize, performance.now() - t0);
        rmSync(rawFile);
        return get;
      };
      const sidecarRestore = async () => {
        const dest = path.join(root, `restored-${round}`);
        settle();
        const restoreJob = await runJob(sc, '/data/v1/restore', { target: `s3://${BUCKET}/${prefix}`, destination: dest });
        rmSync(dest, { recursive: true, force: true });
        return mbps(sample.bytes, jobMs(restoreJob));
      };
      const [get, restore] = await inTurn(round, rawGet, sidecarRestore);
      await emptyBucket(gw, `${prefix}`);

      // VmHWM is the peak of the process's whole life: after round 1 it holds the restores' peaks too, so later
      // rounds count only what was sampled while the backup ran.
      rows.push({ put, putSha, backup, get, restore, peakRss: round === 1 ? Math.max(peak, hwm) : peak });
      addRow({ figure: 'S3 restore speed (VersityGW) vs a raw GET into a file', unit: 'MB/s', value: restore, baseline: { what: 'raw GET', value: get }, goal: { min: 0.8 } });
      addRow({ figure: 'S3 backup speed (VersityGW) vs a plain raw PUT', unit: 'MB/s', value: backup, baseline: { what: 'raw PUT', value: put }, goal: { min: 0.85 } });
      console.log(
        `round ${round}: raw PUT ${put.toFixed(0)} MB/s (with sha256 ${putSha.toFixed(0)}), backup ${backup.toFixed(0)} MB/s (${(backup / put).toFixed(2)}x; ${(backup / putSha).toFixed(2)}x of the sha256 PUT); raw GET ${get.toFixed(0)} MB/s, restore ${restore.toFixed(0)} MB/s (${(restore / get).toFixed(2)}x); sidecar RSS ${(before / MIB).toFixed(0)} MiB before, peak ${(peak / MIB).toFixed(0)} MiB sampled, VmHWM ${(hwm / MIB).toFixed(0)} MiB`,
      );
    }
  } finally {
    await sc.stop();
  }
  const up = median(rows.map((r) => r.backup / r.put));
  const upSha = median(rows.map((r) => r.backup / r.putSha));
  const down = median(rows.map((r) => r.restore / r.get));
  const rss = Math.max(...rows.map((r) => r.peakRss));
  console.log(
    `S3 (VersityGW, ${(sample.bytes / MIB).toFixed(0)} MiB segment, part ${process.env.DRUID_BACKUP_S3_PART_SIZE ?? '8MiB'} x ${process.env.DRUID_BACKUP_S3_CONCURRENCY ?? 4}): backup/raw PUT median ${up.toFixed(2)}x (goal >= 0.8; ${upSha.toFixed(2)}x of a raw PUT with a sha256 checksum), restore/raw GET median ${down.toFixed(2)}x (goal >= 0.8); sidecar peak RSS while backing up ${(rss / MIB).toFixed(0)} MiB = ${(rss / 1e6).toFixed(0)} MB (goal < 150 MB)`,
  );
}

async function benchCatalog(gw: VersityGw): Promise<void> {
  const n = 10_000;
  const log = pino({ level: 'silent' });
  const writer = S3Target.open(`s3://${BUCKET}/catalog`, { log, settings: { endpoint: gw.endpoint } });
  const base = {
    formatVersion: 1,
    dataSource: 'wikipedia',
    descriptor: null,
    files: [
      { name: 'version.bin', size: 4, sha256: 'a'.repeat(64) },
      { name: '00000.smoosh', size: 1000, sha256: 'b'.repeat(64) },
    ],
    size: 1004,
    sources: [{ node: 'bench-node', digest: '', at: '2024-01-01T00:00:00.000Z' }],
    conflicts: [],
    createdAt: '2024-01-01T00:00:00.000Z',
    updatedAt: '2024-01-01T00:00:00.000Z',
  };
  const { segmentDigest } = await import('../sidecar/store/manifest.js');
  const digest = segmentDigest(base.files);
  const t0 = performance.now();
  await mapLimit(
    Array.from({ length: n }, (_, i) => i),
    32,
    async (i) => {
      const day = new Date(Date.UTC(2000, 0, 1) + i * 86_400_000);
      const start = day.toISOString();
      const end = new Date(day.getTime() + 86_400_000).toISOString();
      const segmentId = `wikipedia_${start}_${end}_v1`;
      const m = { ...base, segmentId, interval: `${start}/${end}`, version: 'v1', partition: 0, digest, sources: [{ ...base.sources[0]!, digest }] };
      await gw.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: writer.layout.manifestKey(segmentId), Body: JSON.stringify(m) }));
    },
  );
  console.log(`catalog: ${n} manifests written in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  writer.close();

  const open = () => S3Target.open(`s3://${BUCKET}/catalog`, { log, settings: { endpoint: gw.endpoint } });
  const measure = async (t: S3Target, label: string) => {
    const start = performance.now();
    let count = 0;
    for await (const m of t.list()) if (m.segmentId) count++;
    const ms = performance.now() - start;
    const s = t.catalog.lastList!;
    console.log(
      `catalog of ${count} segments ${label}: ${ms.toFixed(0)} ms, ${s.listRequests} list requests + ${s.manifestGets} manifest GETs, index ${s.indexRead}${s.indexWritten ? ', index written' : ''}`,
    );
  };
  const first = open();
  await measure(first, 'without the index (every manifest read, then the index written)');
  first.close();
  const second = open();
  await measure(second, 'with the index (a new process)');
  await measure(second, 'with the index unchanged (same process, 304)');
  second.close();
}

export async function benchS3(): Promise<void> {
  installVersityGw('the s3 benchmark');
  const root = tmpDir('dbk-bench-s3-');
  const gw = await startVersityGw({ rootParent: root });
  // The SDK's standard chain, as an operator would set it: the sidecar inherits it, the catalog part uses it here.
  Object.assign(process.env, gw.env);
  try {
    await gw.createBucket(BUCKET);
    const only = process.env.DBK_BENCH_S3_ONLY;
    if (only !== 'catalog') await benchTransfer(gw, root);
    if (only !== 'transfer') await benchCatalog(gw);
  } finally {
    await gw.close();
    rmSync(root, { recursive: true, force: true });
  }
}
