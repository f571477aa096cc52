/**
 * Backup lag: how long after a Historical finished loading a segment (test/helpers/druidLoad.ts: mkdir -p, the
 * download marker, the files, the marker removed, the info_dir file) active backup has it on the target, with the
 * reconcile period at an hour so only the watcher can find it. One row per case and layout: the first segment of a
 * new data source, of a new interval, of a new version, a new partition of an existing version. The goal is
 * settleTime + the segment's own transfer (the source's log says how long sending took) + 0.5 s.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import type { CacheLayout } from '../sidecar/druid/layout.js';
import { parseSegmentId } from '../sidecar/druid/segmentId.js';
import { writeSampleCache } from '../sidecar/sample/sampleCache.js';
import { loadLikeDruid } from '../test/helpers/druidLoad.js';
import { startSidecar, tmpDir, waitFor } from '../test/helpers/sidecar.js';
import { addRow } from './table.js';

const SETTLE_MS = 2000;
const SEGMENT_BYTES = 32 * 1024 * 1024;
const ROUNDS = Number(process.env.BENCH_LAG_ROUNDS ?? 3);
const CASES = ['new data source', 'new interval', 'new version', 'new partition'] as const;

interface LagRow {
  layout: CacheLayout;
  case: (typeof CASES)[number];
  /** Median over the rounds, ms: load finished → stored on the target. */
  lagMs: number;
  /** Median of the goal for the same rounds: settle + transfer + 500 ms. */
  goalMs: number;
  worstOverGoalMs: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function lagFor(layout: CacheLayout): Promise<LagRow[]> {
  const root = tmpDir('dbk-bench-lag-');
  try {
    const sample = await writeSampleCache({
      dir: path.join(root, 'historical'),
      segments: 3,
      layout,
      dataSources: ['existing'],
      segmentSize: 64 * 1024,
      smooshChunkSize: 2147483647,
      seed: 5,
    });
    const base = parseSegmentId(sample.segmentIds[0]!);
    const target = await startSidecar(['--store', path.join(root, 'store')], { fast: false });
    const env = { DRUID_BACKUP_RECONCILE_PERIOD: 'PT1H', DRUID_BACKUP_SETTLE_TIME: `PT${SETTLE_MS / 1000}S` };
    const source = await startSidecar(['--config', sample.propertiesFile, '--target', target.url, '--node-name', 'bench-lag'], {
      token: target.token,
      fast: false,
      env,
    });
    const stored = (id: string) => target.request('HEAD', `/data/v1/store/segments/${encodeURIComponent(id)}`).then((r) => r.status === 200);
    try {
      for (const id of sample.segmentIds) await waitFor('the sample backed up', () => stored(id), 60_000);
      const rows: LagRow[] = [];
      const day = (n: number) =>
        new Date(Date.UTC(2020, 0, 1 + n))
          .toISOString()
          .replace('Z', '')
          .replace(/\.\d+$/, '.000Z');
      let n = 0;
      for (const c of CASES) {
        const lags: number[] = [];
        const goals: number[] = [];
        for (let r = 0; r < ROUNDS; r++) {
          n++;
          // Each round loads into what exists already, so that only the named directory level is new.
          const p =
            c === 'new data source'
              ? { dataSource: `fresh_${layout}_${n}`, start: day(n), end: day(n + 1), version: base.version, partition: 0 }
              : c === 'new interval'
                ? { dataSource: base.dataSource, start: day(n), end: day(n + 1), version: base.version, partition: 0 }
                : c === 'new version'
                  ? { dataSource: base.dataSource, start: base.start, end: base.end, version: day(1000 + n), partition: 0 }
                  : { dataSource: base.dataSource, start: base.start, end: base.end, version: base.version, partition: 100 + n };
          const load = await loadLikeDruid({ location: sample.location, infoDir: sample.infoDir, layout, size: SEGMENT_BYTES }, p);
          await waitFor(`${c} backed up`, () => stored(load.seg.id), 120_000, 20);
          const lag = performance.now() - load.loadedAt;
          const line = await waitFor('the backed-up log line', () =>
            source.logLines().find((l) => l.msg === 'segment backed up' && l.segmentId === load.seg.id),
          );
          lags.push(lag);
          goals.push(SETTLE_MS + Number(line.sendMs) + 500);
        }
        rows.push({
          layout,
          case: c,
          lagMs: median(lags),
          goalMs: median(goals),
          worstOverGoalMs: Math.max(...lags.map((l, i) => l - goals[i]!)),
        });
      }
      return rows;
    } finally {
      await source.stop();
      await target.stop();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

export async function benchLag(): Promise<void> {
  const rows = [...(await lagFor('nested')), ...(await lagFor('flat'))];
  console.log(`backup lag of a ${SEGMENT_BYTES / 2 ** 20} MiB segment loaded like Druid, reconcile hourly, settleTime ${SETTLE_MS} ms (median of ${ROUNDS}):`);
  for (const r of rows)
    console.log(
      `  ${r.layout.padEnd(6)} ${r.case.padEnd(16)} ${(r.lagMs / 1000).toFixed(2).padStart(6)} s  ` +
        `goal ≤ ${(r.goalMs / 1000).toFixed(2)} s (settle + transfer + 0.5 s)  ${r.worstOverGoalMs <= 0 ? 'met' : `worst round ${(r.worstOverGoalMs / 1000).toFixed(2)} s over`}`,
    );
  // In the closing table: the lag against its own goal (settle + this run's transfer + 0.5 s) as the baseline.
  for (const r of rows)
    addRow({
      figure: `backup lag, ${r.layout} layout, ${r.case}`,
      unit: 's',
      value: r.lagMs / 1000,
      baseline: { what: 'settle + transfer + 0.5 s', value: r.goalMs / 1000 },
      goal: { max: 1 },
    });
}
