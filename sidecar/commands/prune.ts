/**
 * `druid-backup prune --target URL | --store DIR [--dry-run]`: removes what the retention policy no longer keeps
 * (snapshot/prune.ts). `--target http(s)://…` runs a prune job on that target sidecar with its own
 * druid.backup.retention.* (a target sidecar prunes its own store); `--target s3://…|azure://…` and `--store DIR` prune here,
 * with the policy given by the flags. `--store` is for a store no sidecar serves now (a sidecar keeps its catalog in
 * memory): prune a served store through its sidecar. The lease keeps two pruners of one store apart either way.
 * Exit status 0 when the prune (or the plan) succeeded, 1 when it failed.
 */
import os from 'node:os';
import type { Command } from 'commander';
import pino from 'pino';
import type { Job, JobAccepted } from '../api.js';
import { API_PREFIX } from '../api.js';
import { formatBytes } from '../druid/bytes.js';
import { BackupError } from '../errors.js';
import type { PruneResult } from '../snapshot/prune.js';
import { leaseOwner, prune } from '../snapshot/prune.js';
import { policyFromSettings } from '../snapshot/retention.js';
import { ApiClient } from '../store/http/client.js';
import { LocalStore } from '../store/local/store.js';
import { openTarget } from '../store/open.js';
import type { Target } from '../store/target.js';
import { parseTargetUrl } from '../targets/url.js';
import { table } from '../util/table.js';
import { followJob, resolveToken } from './jobs.js';
import { intOption } from './options.js';

export function printPlan(r: PruneResult): void {
  console.log(`${r.dryRun ? 'Plan (dry run) for' : 'Pruned'} ${r.target} by ${r.policy}, at ${r.at}`);
  console.log(
    table(
      ['SNAPSHOT', 'TIME', 'SEGMENTS', 'COMPLETE', 'VERDICT', 'WHY'],
      r.snapshots.map((s) => [s.id, s.time, String(s.segments), s.complete ? 'yes' : 'no', s.keep ? 'keep' : 'REMOVE', s.reasons.join('; ')]),
    ),
  );
  if (r.remove.length) {
    console.log('');
    console.log(
      table(
        ['SEGMENT', 'BYTES', 'WHY IT GOES'],
        r.remove.map((s) => [s.segmentId, formatBytes(s.bytes), s.reason]),
      ),
    );
    if (r.removeCount > r.remove.length) console.log(`… and ${r.removeCount - r.remove.length} more segment(s) (the plan lists the first ${r.remove.length} by id)`);
  }
  const b = r.bytes;
  console.log('');
  console.log(
    `stored ${formatBytes(b.stored)}: used by the latest snapshot ${formatBytes(b.usedByLatest)}, kept by retention ${formatBytes(b.keptByRetention)}, prunable ${formatBytes(b.prunable)}`,
  );
  console.log(
    `kept segments: ${r.kept.byLatestSnapshot} in the latest snapshot, ${r.kept.bySnapshots} in older kept snapshots, ${r.kept.byNodes} held by nodes, ${r.kept.byGracePeriod} in their grace period`,
  );
  if (r.orphans.length) console.log(`${r.orphans.length} segment(s) left half-removed by an earlier prune ${r.dryRun ? 'would be' : 'were'} finished`);
  if (!r.dryRun)
    console.log(
      `removed ${r.removed.snapshots} snapshot(s), ${r.removed.segments} segment(s) (${formatBytes(r.removed.bytes)}), ${r.removed.blobs} blob(s), ${r.removed.orphans} half-removed segment(s)`,
    );
  if (r.deferred) console.log(r.deferred);
}

export function register(program: Command): void {
  program
    .command('prune')
    .description('remove the snapshots and segments the retention policy no longer keeps (--dry-run: print the plan only)')
    .option('--target <url>', 'a target sidecar (http://host:8484: prunes there, by its own policy), a bucket (s3://bucket/prefix) or a container (azure://container/prefix)')
    .option('--store <dir>', 'a store directory no sidecar serves now')
    .option('--dry-run', 'print each snapshot and segment that would go, and why; remove nothing')
    .option('--keep-last <n>', 'with --store or s3://: keep the newest n snapshots', intOption(0, 1_000_000))
    .option('--keep-hourly <n>', 'keep the newest of each of the last n hours', intOption(0, 1_000_000))
    .option('--keep-daily <n>', 'keep the newest of each of the last n days', intOption(0, 1_000_000))
    .option('--keep-weekly <n>', 'keep the newest of each of the last n ISO weeks', intOption(0, 1_000_000))
    .option('--keep-monthly <n>', 'keep the newest of each of the last n months', intOption(0, 1_000_000))
    .option('--keep-within <period>', 'keep every snapshot within this ISO-8601 period of the newest')
    .option('--grace-period <period>', 'how long an unreferenced segment stays (default P7D)')
    .option('--token <token>', 'bearer token of the target sidecar (or set DRUID_BACKUP_TOKEN)')
    .option('--token-file <file>', 'file holding the token of the target sidecar')
    .option('--json', 'print the result as JSON')
    .action(async (o) => {
      if (!o.target === !o.store) throw new BackupError('bad_request', 'give exactly one of --target URL or --store DIR');
      const target = o.target ? parseTargetUrl(o.target, '--target', { allowFile: true }) : undefined;
      const policyFlags = ['keepLast', 'keepHourly', 'keepDaily', 'keepWeekly', 'keepMonthly', 'keepWithin', 'gracePeriod'].filter((k) => o[k] !== undefined);
      let result: PruneResult;
      if (target && (target.scheme === 'http' || target.scheme === 'https')) {
        if (policyFlags.length)
          throw new BackupError(
            'bad_request',
            `a target sidecar prunes by its own druid.backup.retention.*; --${policyFlags[0]!.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} is for --store, s3:// or azure://`,
          );
        const client = new ApiClient(target.url, { token: resolveToken(o), echoMessages: true });
        const { jobId } = await client.post<JobAccepted>(`${API_PREFIX}/store/prune`, { dryRun: o.dryRun === true });
        const job: Job = await followJob(client, jobId);
        if (job.state !== 'succeeded' || !job.result)
          throw new BackupError('target_error', `prune job ${jobId} ended ${job.state}: ${job.errors.map((e) => e.message).join('; ') || 'no result'}`);
        result = job.result as unknown as PruneResult;
      } else {
        const policy = policyFromSettings({
          keepLast: o.keepLast,
          keepHourly: o.keepHourly,
          keepDaily: o.keepDaily,
          keepWeekly: o.keepWeekly,
          keepMonthly: o.keepMonthly,
          keepWithin: o.keepWithin,
          gracePeriod: o.gracePeriod,
        });
        const log = pino({ level: 'silent' });
        // A bucket or container, or a store directory (file:// too), opened by its kind (store/kinds.ts).
        const store: Target = o.store ? LocalStore.open(o.store, { log }) : openTarget(target!, { log });
        try {
          result = await prune(store, { policy, dryRun: o.dryRun === true, owner: leaseOwner(`cli@${os.hostname()}`, 'prune'), log });
        } finally {
          store.close?.();
        }
      }
      if (o.json) console.log(JSON.stringify(result, null, 2));
      else printPlan(result);
    });
}
