/**
 * `druid-backup restore --node URL --target URL`: asks a node's sidecar to restore segments from a target into
 * its cache (default), its local deep storage or a directory. `--dry-run` prints the plan and changes nothing;
 * `--wait` follows the job with a progress bar. Exit status 0 when everything was restored or already there,
 * 1 when any segment failed or the job was cancelled, 2 for bad usage.
 */
import type { Command } from 'commander';
import type { JobAccepted, RestorePlan, RestoreRequest } from '../api.js';
import { API_PREFIX } from '../api.js';
import { formatBytes } from '../druid/bytes.js';
import { table } from '../util/table.js';
import type { NodeOptions } from './jobs.js';
import { followJob, nodeClient, nodeOptions, reportJob } from './jobs.js';
import { bytesOption, collectTargets } from './options.js';

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

function printPlan(plan: RestorePlan): void {
  if (plan.segments.length) {
    console.log(
      table(
        ['SEGMENT', 'ACTION', 'SIZE', 'PATH', 'REASON'],
        plan.segments.map((s) => [s.segmentId, s.action, formatBytes(s.size), s.path, s.reason ?? '']),
      ),
    );
    console.log('');
  }
  const t = plan.totals;
  console.log(
    `plan: ${t.segments} segments from ${plan.target} into ${plan.destination}: ${t.restore} to restore, ${t.overwrite} to overwrite, ${t.skip} already there; ${formatBytes(t.bytes)} to transfer`,
  );
  if (plan.markUsed)
    for (const [ds, ids] of Object.entries(plan.markUsed.segments))
      console.log(`would mark ${ids.length} segments of ${ds} used on the Coordinator ${plan.markUsed.coordinator}`);
  if (plan.snapshot) {
    console.log(`from snapshot ${plan.snapshot.id}: ${plan.snapshot.missing.length} segment(s) it names are held by no target`);
    for (const m of plan.snapshot.missing) console.log(`  MISSING ${m.segmentId}: ${m.reason}`);
  }
}

interface RestoreOptions extends NodeOptions {
  target: string[];
  coordinator?: string;
  markUsed?: boolean;
  dataSource?: string;
  interval?: string;
  segmentId: string[];
  destination?: string;
  snapshot?: string;
  dryRun?: boolean;
  maxBytesPerSecond?: number;
  wait?: boolean;
  json?: boolean;
}

export function register(program: Command): void {
  nodeOptions(
    program.command('restore').description("restore segments from a target into a node's cache, its local deep storage or a directory, every byte verified"),
  )
    .option(
      '--target <url>',
      'URL of the target holding the backups, as the node reaches it; repeat for several (the nearest good copy is read); left out: the targets the node is configured with',
      collectTargets,
      [],
    )
    .option('--data-source <name>', 'only segments of this data source')
    .option('--interval <interval>', 'only segments overlapping this ISO-8601 interval, e.g. 2015-09-12/2015-09-13')
    .option('--segment-id <id>', 'only this segment (repeat for more)', collect, [])
    .option('--snapshot <id>', 'exactly the segments this snapshot names (of --data-source when given); any no target holds is named, and the restore refused')
    .option('--destination <where>', 'cache (default), deep-storage (index/ or index.zip at each loadSpec path) or an absolute directory on the node')
    .option(
      '--coordinator <url>',
      'after a restore into deep storage, mark the segments used on this Druid Coordinator (default: druid.backup.coordinator of the node)',
    )
    .option('--no-mark-used', 'do not mark restored segments used on the Coordinator, even when the node has druid.backup.coordinator')
    .option('--dry-run', 'print the plan (restore, skip, overwrite per segment) and change nothing')
    .option(
      '--max-bytes-per-second <size>',
      "this restore's own bandwidth limit (e.g. 20m): lower than the node's druid.backup.restore.maxBytesPerSecond",
      bytesOption,
    )
    .option('--wait', 'follow the job until it ends (progress bar on a terminal); the exit status says whether it succeeded')
    .option('--json', 'print the plan or the finished job as JSON')
    .action(async (o: RestoreOptions) => {
      const client = nodeClient(o);
      const body: RestoreRequest = {};
      if (o.target.length) body.target = o.target.length === 1 ? o.target[0] : o.target;
      if (o.coordinator !== undefined) body.coordinator = o.coordinator;
      if (o.markUsed === false) body.markUsed = false;
      if (o.dataSource !== undefined) body.dataSource = o.dataSource;
      if (o.interval !== undefined) body.interval = o.interval;
      if (o.segmentId.length) body.segmentIds = o.segmentId;
      if (o.destination !== undefined) body.destination = o.destination;
      if (o.snapshot !== undefined) body.snapshot = o.snapshot;
      if (o.maxBytesPerSecond !== undefined) body.maxBytesPerSecond = o.maxBytesPerSecond;
      if (o.dryRun) {
        const plan = await client.post<RestorePlan>(`${API_PREFIX}/restore`, { ...body, dryRun: true });
        if (o.json) console.log(JSON.stringify(plan, null, 2));
        else printPlan(plan);
        return;
      }
      const { jobId } = await client.post<JobAccepted>(`${API_PREFIX}/restore`, body);
      if (!o.wait) {
        console.log(jobId);
        process.stderr.write(`restore job started; follow it with: druid-backup jobs --node ${client.baseUrl} ${jobId}\n`);
        return;
      }
      const job = await followJob(client, jobId);
      if (o.json) {
        console.log(JSON.stringify(job, null, 2));
        if (job.state !== 'succeeded') process.exitCode = 1;
      } else reportJob(job);
    });
}
