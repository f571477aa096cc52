/**
 * Time to scan a cache of 10,000 segments (both layouts), against `find -type f | xargs stat` as a baseline: a
 * first scan (nothing known), and the sidecar's rescans (given the last scan). Medians of 5 rounds each.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { scanCache } from '../sidecar/druid/scan.js';
import { writeSampleCache } from '../sidecar/sample/sampleCache.js';
import { addRow } from './table.js';

export async function benchScan(): Promise<void> {
  for (const layout of ['nested', 'flat'] as const) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dbk-bench-scan-'));
    try {
      const r = await writeSampleCache({
        dir,
        segments: 10_000,
        layout,
        dataSources: ['wikipedia', 'web_logs', 'kttm'],
        segmentSize: 1024,
        smooshChunkSize: 2147483647,
        seed: 1,
      });
      let last = await scanCache({ locations: [{ path: r.location }] }); // warm the dentry cache, as a running node's is
      // Each round times a scan and the baseline one after the other, so both meet the machine in the same state.
      const times: number[] = [];
      const baselines: number[] = [];
      for (let i = 0; i < 5; i++) {
        let t0 = performance.now();
        const s = await scanCache({ locations: [{ path: r.location }] });
        times.push(performance.now() - t0);
        if (s.segments.length !== 10_000) throw new Error(`scan found ${s.segments.length} segments`);
        t0 = performance.now();
        execFileSync('sh', ['-c', `find "${r.location}" -type f -print0 | xargs -0 stat -c '%s %Y' > /dev/null`]);
        baselines.push(performance.now() - t0);
      }
      // The sidecar's own rescans are given the last scan (backup/cacheIndex.ts): an unchanged segment directory,
      // settled for a second, is not listed again (druid/scan.ts `reusableListing`).
      const rescans: number[] = [];
      for (let i = 0; i < 5; i++) {
        const byId = new Map(last.segments.map((x) => [x.id, x]));
        const t0 = performance.now();
        last = await scanCache({ locations: [{ path: r.location }], previous: (id) => byId.get(id) });
        rescans.push(performance.now() - t0);
      }
      const median = times.sort((a, b) => a - b)[2]!;
      const baseline = baselines.sort((a, b) => a - b)[2]!;
      const rescan = rescans.sort((a, b) => a - b)[2]!;
      addRow({
        figure: `the sidecar's rescan of the same 10,000 segments, ${layout} layout, vs find+stat`,
        unit: 'ms',
        value: rescan,
        baseline: { what: 'find+stat', value: baseline },
      });
      addRow({
        figure: `scan of 10,000 segments, ${layout} layout, vs find+stat`,
        unit: 'ms',
        value: median,
        baseline: { what: 'find+stat', value: baseline },
        ...(layout === 'nested' ? { goal: { max: 2 } } : {}),
      });
      console.log(
        `scan ${layout} 10000 segments (with info_dir descriptors): median ${median.toFixed(0)} ms (min ${times[0]!.toFixed(0)}); baseline find+stat median ${baseline.toFixed(0)} ms (min ${baselines[0]!.toFixed(0)}); ratio ${(median / baseline).toFixed(2)}x; the sidecar's rescan (given the last scan) median ${rescan.toFixed(0)} ms, ${(rescan / baseline).toFixed(2)}x`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
