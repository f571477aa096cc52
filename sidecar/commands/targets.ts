/**
 * `druid-backup targets --node URL`: the targets a sidecar backs up to, as a table: state, free space, quota,
 * round-trip time, zone, weight, copies held, and why each was or was not chosen last (GET /data/v1/targets).
 */
import type { Command } from 'commander';
import { API_PREFIX } from '../api.js';
import type { TargetsResponse } from '../api.js';
import { formatBytes } from '../druid/bytes.js';
import { table } from '../util/table.js';
import type { NodeOptions } from './jobs.js';
import { nodeClient, nodeOptions } from './jobs.js';

export function register(program: Command): void {
  nodeOptions(
    program.command('targets').description('show the targets a sidecar backs up to: state, free space, RTT, zone, and why each was or was not chosen'),
  )
    .option('--json', 'print the answer as JSON')
    .action(async (o: NodeOptions & { json?: boolean }) => {
      const r = await nodeClient(o).get<TargetsResponse>(`${API_PREFIX}/targets`);
      if (o.json) {
        console.log(JSON.stringify(r, null, 2));
        return;
      }
      if (r.targets.length === 0) {
        console.log('no targets configured (druid.backup.target or druid.backup.targets)');
        return;
      }
      console.log(
        table(
          ['TARGET', 'STATE', 'FREE', 'QUOTA', 'RTT', 'ZONE', 'WEIGHT', 'COPIES', 'LAST CHOICE'],
          r.targets.map((t) => [
            t.url,
            t.state === 'down' && t.retryAt ? `down (retry ${t.retryAt.slice(11, 19)})` : t.state,
            t.freeBytes === undefined ? '-' : t.freeBytes >= Number.MAX_SAFE_INTEGER ? 'unbounded' : formatBytes(t.freeBytes),
            t.quotaBytes === undefined ? '-' : formatBytes(t.quotaBytes),
            t.rttMs === undefined ? '-' : `${t.rttMs} ms`,
            t.zone ?? '-',
            t.weight,
            t.copies,
            t.lastChoice ? `${t.lastChoice.reason} (${t.lastChoice.segmentId})` : t.state === 'down' || t.state === 'invalid' ? (t.lastError ?? '') : '',
          ]),
        ),
      );
      console.log(`\ncopies wanted: ${r.copies}${r.zone ? `; this node's zone: ${r.zone}` : ''}; under-replicated segments: ${r.underReplicated}`);
    });
}
