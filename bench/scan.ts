/** Time to scan a cache of 10,000 segments (both layouts), against `find -type f | xargs stat` as a baseline. */
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
      await scanCache({ locations: [{ path: r.location }] }); // warm the dentry cache, as a running node's is
      const times: number[] = [];
      for (let i = 0; i < 5; i++) {
        const t0 = performance.now();
        const s = await scanCache({ locations: [{ path: r.location }] });
        times.push(performance.now() - t0);
        if (s.segments.length !== 10_000) throw new Error(`scan found ${s.segments.length} segments`);
      }
      const t0 = performance.now();
      execFileSync('sh', ['-c', `find "${r.location}" -type f -print0 | xargs -0 stat -c '%s %Y' > /dev/null`]);
      const baseline = performance.now() - t0;
      const median = times.sort((a, b) => a - b)[2]!;
      addRow({
        figure: `scan of 10,000 segments, ${layout} layout, vs find+stat`,
        unit: 'ms',
        value: median,
        baseline: { what: 'find+stat', value: baseline },
        ...(layout === 'nested' ? { goal: { max: 2 } } : {}),
      });
      console.log(
        `scan ${layout} 10000 segments (with info_dir descriptors): median ${median.toFixed(0)} ms (min ${times[0]!.toFixed(0)}); baseline find+stat ${baseline.toFixed(0)} ms; ratio ${(median / baseline).toFixed(2)}x`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
