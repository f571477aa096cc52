/**
 * Azure Blob targets against Azurite started here (test/helpers/azurite.ts): backup and restore of one large segment
 * through a real sidecar (`POST /data/v1/backup` and `/restore` with an azure:// target), as ratios to the SDK's own
 * raw transfer of the same bytes in the same run: `uploadStream` of the segment's largest file (blocks of the same
 * size and concurrency as the sidecar's) and a `download` streamed into a file. Rounds alternate which side goes
 * first, each after a `sync`, and the median is reported, as bench/s3.ts does; and the sidecar's peak RSS while it
 * backs up. Size with DBK_BENCH_AZURE_MB (default 512), rounds with DBK_BENCH_AZURE_ROUNDS (default 4).
 */
import { createReadStream, createWriteStream, rmSync } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { DEFAULT_BLOCK_SIZE, DEFAULT_CONCURRENCY } from '../sidecar/store/azure/client.js';
import { startAzurite } from '../test/helpers/azurite.js';
import { startSidecar, tmpDir } from '../test/helpers/sidecar.js';
import { inTurn, jobMs, mbps, median, rssOf, runJob, settle } from './s3.js';
import { oneLargeSegment } from './sample.js';

const MIB = 1024 * 1024;
const CONTAINER = 'bench';

export async function benchAzure(): Promise<void> {
  const mb = Number(process.env.DBK_BENCH_AZURE_MB ?? 512);
  const rounds = Number(process.env.DBK_BENCH_AZURE_ROUNDS ?? 4);
  const root = tmpDir('dbk-bench-azure-');
  const az = await startAzurite();
  try {
    await az.createContainer(CONTAINER);
    const container = az.service.getContainerClient(CONTAINER);
    const { sample, big, bigSize } = await oneLargeSegment(path.join(root, 'historical'), mb);
    console.log(`segment ${sample.segmentIds[0]}: ${(sample.bytes / MIB).toFixed(0)} MiB; raw blob ${(bigSize / MIB).toFixed(0)} MiB`);
    const sc = await startSidecar(['--config', sample.propertiesFile, '--node-name', 'bench-node'], {
      allowedTargets: [`azure://${CONTAINER}`],
      env: { ...az.env, DRUID_BACKUP_AUTO_RESTORE: 'false', DRUID_BACKUP_RECONCILE_PERIOD: 'PT1H' },
    });
    const rows: Array<{ up: number; down: number; peak: number }> = [];
    try {
      for (let round = 1; round <= rounds; round++) {
        const prefix = `round${round}`;
        const rawPut = async () => {
          settle();
          const t0 = performance.now();
          await container
            .getBlockBlobClient(`${prefix}-raw/blob`)
            .uploadStream(createReadStream(big, { highWaterMark: MIB }), DEFAULT_BLOCK_SIZE, DEFAULT_CONCURRENCY);
          return mbps(bigSize, performance.now() - t0);
        };
        const backup = async () => {
          let peak = 0;
          settle();
          const job = await runJob(sc, '/data/v1/backup', { target: `azure://${CONTAINER}/${prefix}` }, () => (peak = Math.max(peak, rssOf(sc.proc.pid!).rss)));
          return { speed: mbps(sample.bytes, jobMs(job)), peak };
        };
        const [put, b] = await inTurn(round, rawPut, backup);
        const rawGet = async () => {
          const file = path.join(root, 'raw-get');
          settle();
          const t0 = performance.now();
          const res = await container.getBlobClient(`${prefix}-raw/blob`).download();
          await pipeline(res.readableStreamBody!, createWriteStream(file));
          rmSync(file);
          return mbps(bigSize, performance.now() - t0);
        };
        const restore = async () => {
          const dest = path.join(root, `restored-${round}`);
          settle();
          const job = await runJob(sc, '/data/v1/restore', { target: `azure://${CONTAINER}/${prefix}`, destination: dest });
          rmSync(dest, { recursive: true, force: true });
          return mbps(sample.bytes, jobMs(job));
        };
        const [get, rest] = await inTurn(round, rawGet, restore);
        rows.push({ up: b.speed / put, down: rest / get, peak: b.peak });
        console.log(
          `round ${round}: raw upload ${put.toFixed(0)} MB/s, backup ${b.speed.toFixed(0)} MB/s (${(b.speed / put).toFixed(2)}x); raw download ${get.toFixed(0)} MB/s, restore ${rest.toFixed(0)} MB/s (${(rest / get).toFixed(2)}x); sidecar peak RSS ${(b.peak / MIB).toFixed(0)} MiB`,
        );
      }
    } finally {
      await sc.stop();
    }
    console.log(
      `Azure (Azurite, ${(sample.bytes / MIB).toFixed(0)} MiB segment, blocks of ${DEFAULT_BLOCK_SIZE / MIB} MiB x ${DEFAULT_CONCURRENCY}): backup/raw upload median ${median(rows.map((r) => r.up)).toFixed(2)}x, restore/raw download median ${median(rows.map((r) => r.down)).toFixed(2)}x; sidecar peak RSS while backing up ${(Math.max(...rows.map((r) => r.peak)) / MIB).toFixed(0)} MiB`,
    );
  } finally {
    await az.close();
    rmSync(root, { recursive: true, force: true });
  }
}
