/**
 * `druid-backup snapshot create|list|show|pin|unpin|forget --node URL`: the snapshots a sidecar takes of the cluster
 * (issue 21), through its API (`/data/v1/snapshots`). `create` follows the job (`--no-wait` only starts it).
 */
import type { Command } from 'commander';
import { API_PREFIX } from '../api.js';
import type { JobAccepted } from '../api.js';
import { formatBytes } from '../druid/bytes.js';
import { BackupError } from '../errors.js';
import { checkSnapshotId } from '../snapshot/check.js';
import type { SnapshotSummary } from '../snapshot/service.js';
import { table } from '../util/table.js';
import type { NodeOptions } from './jobs.js';
import { followJob, nodeClient, nodeOptions, reportJob } from './jobs.js';
import { listOption } from './options.js';

function printOne(s: SnapshotSummary): void {
  console.log(`snapshot ${s.id}  taken ${s.time} by ${s.node}${s.pinned ? '  PINNED' : ''}`);
  console.log(
    `  ${s.segments} segments, ${formatBytes(s.bytes)}, ${s.complete ? 'complete: it can be restored whole' : 'NOT complete: some used segments are not backed up'}`,
  );
  console.log(`  in ${s.targets.join(', ')}`);
  console.log(
    table(
      ['DATA SOURCE', 'SEGMENTS', 'BYTES', 'ROWS', 'COMPLETE'],
      s.dataSources.map((d) => [d.name, String(d.segments), formatBytes(d.bytes), d.rows === undefined ? '' : String(d.rows), d.complete ? 'yes' : 'no']),
    ),
  );
}

export function register(program: Command): void {
  const snap = program.command('snapshot').description('snapshots of the cluster: what Druid used at a time, kept in the targets beside the segments');
  nodeOptions(snap.command('create').description('take a snapshot now (a job on the sidecar that knows the Coordinator)'))
    .option('--data-source <names>', 'only these data sources (comma-separated)', listOption)
    .option('--no-wait', 'start the job and print its id')
    .action(async (o: NodeOptions & { dataSource?: string[]; wait: boolean }) => {
      const client = nodeClient(o);
      const { jobId } = await client.post<JobAccepted>(`${API_PREFIX}/snapshots`, o.dataSource ? { dataSources: o.dataSource } : {});
      if (!o.wait) {
        console.log(jobId);
        return;
      }
      const job = await followJob(client, jobId);
      reportJob(job);
      const r = job.result as { snapshot?: string; complete?: boolean } | undefined;
      if (r?.snapshot) console.log(`snapshot ${r.snapshot} ${r.complete ? 'complete' : 'NOT complete'}`);
      if (job.state !== 'succeeded') process.exitCode = 1;
    });
  nodeOptions(snap.command('list').description("every snapshot in the sidecar's targets, newest first"))
    .option('--json', 'print JSON')
    .action(async (o: NodeOptions & { json?: boolean }) => {
      const { snapshots } = await nodeClient(o).get<{ snapshots: SnapshotSummary[] }>(`${API_PREFIX}/snapshots`);
      if (o.json) return console.log(JSON.stringify(snapshots, null, 2));
      console.log(
        table(
          ['ID', 'TIME', 'DATA SOURCES', 'SEGMENTS', 'BYTES', 'COMPLETE', 'PINNED', 'TARGETS'],
          snapshots.map((s) => [
            s.id,
            s.time,
            String(s.dataSources.length),
            String(s.segments),
            formatBytes(s.bytes),
            s.complete ? 'yes' : 'no',
            s.pinned ? 'yes' : '',
            String(s.targets.length),
          ]),
        ),
      );
    });
  const one = (name: string, description: string, call: (client: ReturnType<typeof nodeClient>, id: string, o: { reason?: string }) => Promise<unknown>) =>
    nodeOptions(snap.command(`${name} <id>`).description(description))
      .option('--json', 'print JSON')
      .action(async (id: string, o: NodeOptions & { json?: boolean; reason?: string }) => {
        try {
          checkSnapshotId(id);
        } catch (e) {
          throw new BackupError('bad_request', (e as Error).message);
        }
        const r = await call(nodeClient(o), id, o);
        if (o.json || !(r && typeof r === 'object' && 'dataSources' in r)) console.log(JSON.stringify(r, null, 2));
        else printOne(r as SnapshotSummary);
      });
  one('show', 'one snapshot: its data sources, completeness, pin and targets', (c, id) => c.get(`${API_PREFIX}/snapshots/${id}`));
  one('pin', 'pin a snapshot: retention never removes it', (c, id, o) =>
    c.call('PUT', `${API_PREFIX}/snapshots/${id}/pin`, o.reason ? { reason: o.reason } : {}),
  ).option('--reason <text>', 'why it is kept');
  one('unpin', 'unpin a snapshot', (c, id) => c.call('DELETE', `${API_PREFIX}/snapshots/${id}/pin`));
  one('forget', 'forget a snapshot in every target (its segments go at the next prune unless kept otherwise)', (c, id) =>
    c.delete(`${API_PREFIX}/snapshots/${id}`),
  );
}
