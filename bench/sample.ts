/**
 * The large sample cache the throughput benchmarks share: made once per `npm run bench` process (writing 2 GB
 * takes a while and a second copy takes the disk), removed when the process exits. Benchmarks must not change
 * it, or must put it back as it was.
 */
import { readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { formatBytes } from '../sidecar/druid/bytes.js';
import type { SampleResult } from '../sidecar/sample/sampleCache.js';
import { writeSampleCache } from '../sidecar/sample/sampleCache.js';
import { tmpDir } from '../test/helpers/sidecar.js';

/**
 * How often a benchmark asks whether its job has ended: every 100 ms (the tests' pace) added a mean 50 ms to each
 * time measured, a tenth of a no-change backup; a GET every 20 ms costs the sidecar 2 % of a core (0.38 ms of CPU
 * a GET, measured on 500).
 */
export const JOB_POLL_MS = 20;

/** Druid segments are typically a few hundred MB; 16 segments of 128 MiB make 2 GiB. */
export const LARGE_SEGMENTS = 16;

let shared: Promise<SampleResult> | undefined;

/** A nested-layout sample cache of at least `gb` GB (BENCH_BACKUP_GB, default 2). */
export function largeSample(gb = Number(process.env.BENCH_BACKUP_GB ?? 2)): Promise<SampleResult> {
  shared ??= (async () => {
    const root = tmpDir('dbk-bench-sample-');
    // First among the 'exit' listeners: test/helpers/exitPromptly.ts ends the process in its own, and a listener
    // added after it never ran (each bench run left its 2 GiB behind: 36 of them filled this machine's disk).
    process.prependListener('exit', () => rmSync(root, { recursive: true, force: true }));
    const t0 = performance.now();
    const sample = await writeSampleCache({
      dir: path.join(root, 'historical'),
      segments: LARGE_SEGMENTS,
      layout: 'nested',
      dataSources: ['wikipedia', 'kttm'],
      segmentSize: Math.ceil((gb * 1024 ** 3) / LARGE_SEGMENTS / 0.99),
      smooshChunkSize: 2147483647,
      seed: 1,
    });
    if (sample.bytes < gb * 1e9) throw new Error(`sample cache is only ${sample.bytes} bytes`);
    console.log(`sample cache: ${LARGE_SEGMENTS} segments, ${formatBytes(sample.bytes)} (written in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    return sample;
  })();
  return shared;
}

/**
 * The object-store benchmarks' sample (bench/s3.ts, bench/azure.ts): one flat-layout segment of about `mb` MiB, and
 * its largest file, which the raw transfer of the baseline moves.
 */
export async function oneLargeSegment(dir: string, mb: number): Promise<{ sample: SampleResult; segDir: string; big: string; bigSize: number }> {
  const sample = await writeSampleCache({
    dir,
    segments: 1,
    layout: 'flat',
    dataSources: ['wikipedia'],
    // the sample's column weights leave about 80% of segmentSize in the files
    segmentSize: Math.ceil((mb * 1024 * 1024) / 0.8),
    smooshChunkSize: 2147483647,
    seed: 3,
  });
  const segDir = path.join(sample.location, sample.segmentIds[0]!);
  const big = readdirSync(segDir)
    .map((f) => path.join(segDir, f))
    .sort((a, b) => statSync(b).size - statSync(a).size)[0]!;
  return { sample, segDir, big, bigSize: statSync(big).size };
}
