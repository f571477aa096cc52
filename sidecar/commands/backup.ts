import type { Command } from 'commander';
import { API_PREFIX } from '../api.js';
import type { BackupRequest, JobAccepted } from '../api.js';
import type { NodeOptions } from './jobs.js';
import { bytesOption, collectTargets, intOption } from './options.js';
import { followJob, nodeClient, nodeOptions, reportJob } from './jobs.js';

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

export function register(program: Command): void {
  nodeOptions(program.command('backup').description("back up a node's segments to a target now (a passive backup job on the node's sidecar)"))
    .option(
      '--target <url>',
      'URL of the target sidecar, e.g. http://backup-host:8484; repeat for a set of targets; left out: the targets the node is configured with',
      collectTargets,
      [],
    )
    .option('--copies <n>', 'with several --target: on how many each segment is kept', intOption(1, 16))
    .option('--data-source <name>', 'only segments of this data source')
    .option('--interval <interval>', 'only segments overlapping this ISO-8601 interval, e.g. 2015-09-12/2015-09-13')
    .option('--segment-id <id>', 'only this segment (repeat for more)', collect, [])
    .option('--max-bytes-per-second <size>', "this backup's own bandwidth limit (e.g. 20m): lower than the node's druid.backup.maxBytesPerSecond", bytesOption)
    .option('--wait', 'follow the job until it ends (progress bar on a terminal); the exit status says whether it succeeded')
    .action(
      async (
        o: NodeOptions & {
          target: string[];
          copies?: number;
          dataSource?: string;
          interval?: string;
          segmentId: string[];
          maxBytesPerSecond?: number;
          wait?: boolean;
        },
      ) => {
        const client = nodeClient(o);
        const body: BackupRequest = {};
        if (o.target.length) body.target = o.target.length === 1 ? o.target[0] : o.target;
        if (o.copies !== undefined) body.copies = o.copies;
        if (o.dataSource !== undefined) body.dataSource = o.dataSource;
        if (o.interval !== undefined) body.interval = o.interval;
        if (o.segmentId.length) body.segmentIds = o.segmentId;
        if (o.maxBytesPerSecond !== undefined) body.maxBytesPerSecond = o.maxBytesPerSecond;
        const { jobId } = await client.post<JobAccepted>(`${API_PREFIX}/backup`, body);
        if (!o.wait) {
          console.log(jobId);
          process.stderr.write(`backup job started; follow it with: druid-backup jobs --node ${client.baseUrl} ${jobId}\n`);
          return;
        }
        reportJob(await followJob(client, jobId));
      },
    );
}
