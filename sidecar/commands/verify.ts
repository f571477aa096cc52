/**
 * `druid-backup verify --target URL | --store DIR`: re-reads a store against its manifests and names every bad
 * segment. `--store` reads the directory in this process, with no sidecar running (and never writes to it);
 * `--target` runs a verify job on the target sidecar and waits for it; `--target s3://bucket/prefix` reads the bucket
 * from here, with the AWS environment's endpoint and credentials. Exit status 0 when every segment is
 * sound, 3 when any is bad, 1 when the verify itself failed, 2 for bad usage.
 */
import type { Command } from 'commander';
import pino from 'pino';
import type { Job, JobAccepted, VerifyProblem, VerifyRequest } from '../api.js';
import { API_PREFIX } from '../api.js';
import { formatBytes } from '../druid/bytes.js';
import { compileSelector } from '../druid/selector.js';
import { BackupError } from '../errors.js';
import { table } from '../util/table.js';
import { verifyStore } from '../verify/store.js';
import { followJob, resolveToken } from './jobs.js';
import { SidecarClient } from '../store/http/client.js';
import { s3SettingsFromEnv } from '../store/s3/client.js';
import { S3Target } from '../store/s3/target.js';
import { azureSettingsFromEnv } from '../store/azure/client.js';
import { AzureTarget } from '../store/azure/target.js';
import { parseTargetUrl } from '../targets/url.js';

export const EXIT_DAMAGED = 3;

interface Report {
  store: string;
  segments: number;
  ok: number;
  bytes: number;
  bad: Array<{ segmentId: string; problems: VerifyProblem[] }>;
}

function print(r: Report, json: boolean): void {
  if (json) {
    console.log(JSON.stringify(r, null, 2));
    return;
  }
  if (r.bad.length) {
    console.log(
      table(
        ['SEGMENT', 'PROBLEM', 'FILE', 'DETAIL'],
        r.bad.flatMap((b) => b.problems.map((p) => [b.segmentId, p.problem, p.file ?? '', p.message])),
      ),
    );
    console.log('');
  }
  console.log(`${r.store}: ${r.segments} segments (${formatBytes(r.bytes)}) verified, ${r.ok} sound, ${r.bad.length} bad`);
}

export function register(program: Command): void {
  program
    .command('verify')
    .description('re-read a store against its manifests and report every segment with missing, extra, resized or damaged files')
    .option(
      '--target <url>',
      'a target sidecar (http://host:8484): runs a verify job there; or a bucket (s3://bucket/prefix) or container (azure://container/prefix), read from here; or file:///dir, as --store',
    )
    .option('--store <dir>', 'a store directory on this machine, read without any sidecar')
    .option('--data-source <name>', 'only segments of this data source')
    .option('--interval <interval>', 'only segments overlapping this ISO-8601 interval')
    .option('--segment-id <id>', 'only this segment (repeat for more)', (v: string, prev: string[]) => [...prev, v], [])
    .option('--token <token>', 'bearer token of the target sidecar (or set DRUID_BACKUP_TOKEN)')
    .option('--token-file <file>', 'file holding the token of the target sidecar')
    .option('--json', 'print the report as JSON')
    .action(async (o) => {
      if (!o.target === !o.store) throw new BackupError('bad_request', 'give exactly one of --target URL or --store DIR');
      const request: VerifyRequest = {};
      if (o.dataSource !== undefined) request.dataSource = o.dataSource;
      if (o.interval !== undefined) request.interval = o.interval;
      if (o.segmentId.length) request.segmentIds = o.segmentId;
      const sel = compileSelector(request);
      // The CLI reads a directory on this machine too: file:///dir is --store DIR (never a target over the API).
      const target = o.target ? parseTargetUrl(o.target, '--target', { allowFile: true }) : undefined;
      const dir = o.store ?? target?.dir;
      let report: Report;
      if (dir) {
        const r = await verifyStore(dir, sel);
        report = { store: r.store, segments: r.segments, ok: r.ok, bytes: r.bytes, bad: r.bad.map((b) => ({ segmentId: b.segmentId, problems: b.problems })) };
      } else if (target!.scheme === 's3' || target!.scheme === 'azure') {
        const log = pino({ level: 'silent' });
        const bucket =
          target!.scheme === 's3'
            ? S3Target.open(target!.url, { log, settings: s3SettingsFromEnv() })
            : AzureTarget.open(target!.url, { log, settings: azureSettingsFromEnv() });
        try {
          const r = await bucket.verify(request);
          report = {
            store: r.store,
            segments: r.segments,
            ok: r.ok,
            bytes: r.bytes,
            bad: r.bad.map((b) => ({ segmentId: b.segmentId, problems: b.problems })),
          };
        } finally {
          bucket.close();
        }
      } else {
        const client = new SidecarClient(target!.url, { token: resolveToken(o), echoMessages: true });
        const { jobId } = await client.post<JobAccepted>(`${API_PREFIX}/store/verify`, request);
        const job: Job = await followJob(client, jobId);
        if (!job.result)
          throw new BackupError('target_error', `verify job ${jobId} ended ${job.state}: ${job.errors.map((e) => e.message).join('; ') || 'no result'}`);
        report = job.result as unknown as Report;
      }
      print(report, !!o.json);
      if (report.bad.length) process.exitCode = EXIT_DAMAGED;
    });
}
