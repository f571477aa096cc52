import type { Command } from 'commander';
import { formatBytes } from '../druid/bytes.js';
import { scanCache } from '../druid/scan.js';
import { loadSidecarConfig } from '../config.js';
import { table } from '../util/table.js';

export function register(program: Command): void {
  program
    .command('scan')
    .description("list the segments in a node's cache with their state")
    .requiredOption('--config <file>', "the Druid service's runtime.properties")
    .option('--common <file>', 'the common.runtime.properties (default: ../_common/ beside --config)')
    .option('--json', 'print JSON for scripts')
    .action(async (o) => {
      const cfg = loadSidecarConfig({ configFile: o.config, commonFile: o.common, flags: {} });
      const scan = await scanCache({ locations: cfg.druid.locations, infoDir: cfg.druid.infoDir });
      if (o.json) {
        console.log(JSON.stringify(scan, null, 2));
        return;
      }
      console.log(
        table(
          ['SEGMENT', 'STATE', 'FILES', 'SIZE', 'INFO'],
          scan.segments.map((s) => [s.id, s.state, s.files.length, formatBytes(s.size), s.infoFile ? 'yes' : 'no']),
        ),
      );
      const counts = new Map<string, number>();
      for (const s of scan.segments) counts.set(s.state, (counts.get(s.state) ?? 0) + 1);
      console.log(
        `\n${scan.segments.length} segments (${[...counts].map(([k, v]) => `${v} ${k}`).join(', ') || 'none'}), ${formatBytes(scan.segments.reduce((n, s) => n + s.size, 0))}, layout ${scan.layout}, scanned in ${scan.durationMs.toFixed(0)} ms`,
      );
      for (const m of scan.missing) console.log(`missing: ${m.id} has an info_dir entry but no files`);
      for (const i of scan.issues) console.log(`issue: ${i.path}: ${i.problem}`);
    });
}
