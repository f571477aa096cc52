import path from 'node:path';
import type { Command } from 'commander';
import { formatBytes } from '../druid/bytes.js';
import { scanCache } from '../druid/scan.js';
import { writeSampleCache } from '../sample/sampleCache.js';
import { intOption } from './options.js';

export function register(program: Command): void {
  program
    .command('demo')
    .description('run the local dev cluster on an embedded default: a sample Historical cache and a summary')
    .option('--dir <dir>', 'where the demo keeps its files', '.cache/demo')
    .option('--segments <n>', 'segments in the sample cache', intOption(1, 100_000), 50)
    .action(async (o) => {
      const dir = path.resolve(o.dir);
      const sample = await writeSampleCache({ dir: path.join(dir, 'historical'), segments: o.segments, layout: 'nested', dataSources: ['wikipedia', 'web_logs', 'kttm'], segmentSize: 256 * 1024, smooshChunkSize: 2147483647, seed: 1 });
      const scan = await scanCache({ locations: [{ path: sample.location }] });
      console.log(`sample Historical cache: ${sample.location}`);
      console.log(`  ${scan.segments.length} segments, ${formatBytes(scan.segments.reduce((n, s) => n + s.size, 0))}, layout ${scan.layout}`);
      console.log(`  config: ${sample.propertiesFile}`);
    });
}
