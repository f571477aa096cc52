/**
 * `druid-backup cluster-restore --node URL (--snapshot ID | --as-of TIME)`: a Druid cluster brought back to a
 * snapshot by its cluster sidecar (`POST /data/v1/cluster/restore`). It asks for the plan first and prints it
 * (every step with counts and bytes, warnings, refusals); `--dry-run` stops there. Otherwise, unless the plan
 * refuses, it starts the job and follows it. Exit status 0 when the restore and its check succeeded, 1 when the plan
 * refuses or a step failed, 2 for bad usage.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import type { ClusterRestorePlan, ClusterRestoreRequest, JobAccepted } from '../api.js';
import { API_PREFIX } from '../api.js';
import { BackupError, messageOf } from '../errors.js';
import { formatPlan } from '../cluster/restore/planText.js';
import type { StepResult } from '../cluster/restore/step.js';
import type { NodeOptions } from './jobs.js';
import { followJob, nodeClient, nodeOptions, reportJob } from './jobs.js';
import { collectTargets, listOption } from './options.js';

interface Options extends NodeOptions {
  target: string[];
  snapshot?: string;
  asOf?: string;
  dataSource?: string[];
  interval: string[];
  deepStorage?: string;
  suspendCompaction?: boolean;
  checkTimeout?: string;
  secret: Array<[string, string]>;
  secretsFile?: string;
  dryRun?: boolean;
  json?: boolean;
}

const collect = (v: string, prev: string[]) => [...prev, v];

/** `--secret PATH=VALUE`: split at the first "=" outside a quoted path step (`["a=b"]`). */
export function secretOption(v: string, prev: Array<[string, string]>): Array<[string, string]> {
  const at = /^(?:[^="]|"(?:[^"\\]|\\.)*")*=/.exec(v);
  if (!at || at[0].length < 2) throw new InvalidArgumentError('expected PATH=VALUE, PATH as the plan names it (e.g. supervisors[0].spec.ioConfig.consumerProperties.password)');
  return [...prev, [v.slice(0, at[0].length - 1), v.slice(at[0].length)]];
}

/** `--secrets-file FILE`: a JSON object of path → value, so the values stay out of the process list. */
function readSecretsFile(file: string): Record<string, string> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new BackupError('bad_request', `--secrets-file ${file}: ${messageOf(e)}`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw) || !Object.values(raw).every((x) => typeof x === 'string'))
    throw new BackupError('bad_request', `--secrets-file ${file}: expected a JSON object of path to value (text)`);
  return raw as Record<string, string>;
}

export function register(program: Command): void {
  nodeOptions(
    program
      .command('cluster-restore')
      .description('restore the Druid cluster from a snapshot: deep storage, rollback, metadata, then a check that Druid answers with the recorded rows'),
  )
    .option(
      '--target <url>',
      'the target holding the snapshot and its segments (default: the targets the cluster sidecar is configured with)',
      collectTargets,
      [],
    )
    .option('--snapshot <id>', 'the snapshot to restore')
    .option('--as-of <time>', 'instead of --snapshot: the newest snapshot taken at or before this ISO-8601 instant')
    .option('--data-source <names>', 'only these data sources (comma-separated; default all of the snapshot)', listOption)
    .option('--interval <interval>', 'roll back only inside this ISO-8601 interval (repeat for more); without it nothing is marked unused', collect, [])
    .option('--deep-storage <where>', "a new cluster's deep storage: an absolute directory, or s3://bucket/baseKey; the rows written point there")
    .option('--suspend-compaction', "take the data sources' compaction configs away while the restore runs, and put them back after")
    .option('--check-timeout <period>', 'how long the post-restore check waits for Druid to load every segment (default PT10M)')
    .option(
      '--secret <path=value>',
      "the value of a secret the snapshot holds redacted, by the path the plan's warning names (repeat for more); a config is put back only with all of its secrets",
      secretOption,
      [],
    )
    .option('--secrets-file <file>', 'instead of --secret: a JSON object of path to value (keeps the values out of the process list)')
    .option('--dry-run', 'print the plan and change nothing')
    .option('--json', 'print the plan and the finished job as JSON')
    .action(async (o: Options) => {
      const client = nodeClient(o);
      const body: ClusterRestoreRequest = {};
      if (o.target.length > 1) throw new BackupError('bad_request', '--target: a cluster restore reads one target');
      if (o.target[0]) body.target = o.target[0];
      if (o.snapshot !== undefined) body.snapshot = o.snapshot;
      if (o.asOf !== undefined) body.asOf = o.asOf;
      if (o.dataSource) body.dataSources = o.dataSource;
      if (o.interval.length) body.intervals = o.interval;
      if (o.deepStorage !== undefined) body.deepStorage = o.deepStorage;
      if (o.suspendCompaction) body.suspendCompaction = true;
      if (o.checkTimeout !== undefined) body.checkTimeout = o.checkTimeout;
      const secrets = { ...(o.secretsFile !== undefined ? readSecretsFile(o.secretsFile) : {}), ...Object.fromEntries(o.secret) };
      if (Object.keys(secrets).length) body.secrets = secrets;
      const plan = await client.post<ClusterRestorePlan>(`${API_PREFIX}/cluster/restore`, { ...body, dryRun: true });
      if (o.json) console.log(JSON.stringify(plan, null, 2));
      else console.log(formatPlan(plan));
      if (plan.refused) {
        process.exitCode = 1;
        return;
      }
      if (o.dryRun) return;
      // The job plans again as it starts: what it does is what the cluster needs then.
      const { jobId } = await client.post<JobAccepted>(`${API_PREFIX}/cluster/restore`, { ...body, snapshot: plan.snapshot.id, asOf: undefined });
      const job = await followJob(client, jobId);
      if (o.json) {
        console.log(JSON.stringify(job, null, 2));
        if (job.state !== 'succeeded') process.exitCode = 1;
        return;
      }
      const results = (job.result?.results ?? []) as StepResult[];
      for (const r of results) for (const i of r.items) console.log(`${r.step}: ${i.action} ${i.subject}: ${i.outcome}${i.error ? `: ${i.error}` : ''}`);
      reportJob(job);
    });
}
