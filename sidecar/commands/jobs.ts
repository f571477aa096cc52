/**
 * `druid-backup jobs --node URL [ID]`: the jobs of a sidecar, or one job in detail. Also the pieces every client
 * command shares (restore uses them too): the node options, the token from a flag, a file or the environment,
 * and following a job to its end with a progress bar on a terminal and plain lines elsewhere.
 */
import { readFileSync } from 'node:fs';
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { API_PREFIX } from '../api.js';
import type { Job } from '../api.js';
import { formatBytes } from '../druid/bytes.js';
import { BackupError, messageOf } from '../errors.js';
import { ApiClient } from '../store/http/client.js';
import { table } from '../util/table.js';

export const TOKEN_ENV = 'DRUID_BACKUP_TOKEN';

export interface NodeOptions {
  node: string;
  token?: string;
  tokenFile?: string;
}

/** Adds --node, --token and --token-file to a command. */
export function nodeOptions(cmd: Command): Command {
  return cmd
    .requiredOption('--node <url>', 'URL of the sidecar, e.g. http://historical-1:8484')
    .option('--token <token>', `bearer token of the sidecar (or set ${TOKEN_ENV})`)
    .option('--token-file <file>', 'file holding the token, e.g. {stateDir}/token of the sidecar');
}

export function resolveToken(o: { token?: string; tokenFile?: string }): string {
  if (o.token) return o.token;
  if (o.tokenFile) {
    let t: string;
    try {
      t = readFileSync(o.tokenFile, 'utf8').trim();
    } catch (e) {
      throw new BackupError('bad_request', `--token-file: cannot read ${o.tokenFile} (${(e as NodeJS.ErrnoException).code ?? messageOf(e)})`);
    }
    if (!t) throw new BackupError('bad_request', `--token-file: ${o.tokenFile} is empty`);
    return t;
  }
  const env = process.env[TOKEN_ENV];
  if (env) return env;
  throw new BackupError(
    'bad_request',
    `no token: give --token-file (a sidecar without a configured token writes one to {stateDir}/token), --token, or set ${TOKEN_ENV}`,
  );
}

export function nodeClient(o: NodeOptions): ApiClient {
  return new ApiClient(o.node, { token: resolveToken(o), echoMessages: true });
}

function summary(job: Job): string {
  const p = job.progress;
  return `${p.segmentsDone + p.segmentsSkipped + p.segmentsFailed}/${p.segmentsTotal} segments (${p.segmentsDone} done, ${p.segmentsSkipped} skipped, ${p.segmentsFailed} failed), ${formatBytes(p.bytesDone)} of ${formatBytes(p.bytesTotal)}`;
}

const FINISHED = new Set(['succeeded', 'failed', 'cancelled']);

/**
 * Follows a job until it finishes: a progress bar on a terminal, a line every few seconds otherwise. Ctrl-C
 * cancels the job. Resolves with the finished job.
 */
export async function followJob(client: ApiClient, jobId: string, out: NodeJS.WriteStream = process.stderr): Promise<Job> {
  const tty = out.isTTY === true;
  const bar = tty
    ? new SingleBar({ stream: out, format: '{bar} {percentage}% | {segments} segments | {bytes} | {current}', hideCursor: true, barsize: 30, etaBuffer: 20 })
    : undefined;
  let barStarted = false;
  let lastLine = 0;
  let interrupted = false;
  const onSigint = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    out.write(`\ncancelling job ${jobId} (Ctrl-C again to leave it running)\n`);
    void client.delete(`${API_PREFIX}/jobs/${jobId}`).catch((e) => out.write(`cannot cancel: ${messageOf(e)}\n`));
  };
  process.on('SIGINT', onSigint);
  try {
    for (;;) {
      const job = await client.get<Job>(`${API_PREFIX}/jobs/${jobId}`);
      const p = job.progress;
      const done = p.segmentsDone + p.segmentsSkipped + p.segmentsFailed;
      if (bar) {
        const payload = {
          segments: `${done}/${p.segmentsTotal}`,
          bytes: `${formatBytes(p.bytesDone)}/${formatBytes(p.bytesTotal)}`,
          current: p.current ?? job.state,
        };
        const total = Math.max(1, p.bytesTotal);
        if (!barStarted) {
          bar.start(total, Math.min(p.bytesDone, total), payload);
          barStarted = true;
        } else {
          bar.setTotal(total);
          bar.update(Math.min(p.bytesDone, total), payload);
        }
      } else if (Date.now() - lastLine > 2000 || FINISHED.has(job.state)) {
        out.write(`${job.id} ${job.state}: ${summary(job)}${p.current ? `, at ${p.current}` : ''}\n`);
        lastLine = Date.now();
      }
      if (FINISHED.has(job.state)) {
        if (bar && barStarted) {
          if (job.state === 'succeeded') bar.update(Math.max(1, p.bytesTotal));
          bar.stop();
        }
        return job;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    process.off('SIGINT', onSigint);
  }
}

/** Prints a finished job's outcome and sets the exit status: 0 only when it succeeded. */
export function reportJob(job: Job, out: NodeJS.WriteStream = process.stdout): void {
  out.write(`${job.type} job ${job.id} ${job.state}: ${summary(job)}\n`);
  for (const e of job.errors.slice(0, 20)) out.write(`  error: ${e.segmentId ? `${e.segmentId}: ` : ''}${e.message}\n`);
  if (job.errors.length > 20) out.write(`  ... and ${job.errors.length - 20} more errors (druid-backup jobs --node URL ${job.id} --json)\n`);
  if (job.state !== 'succeeded') process.exitCode = 1;
}

export function register(program: Command): void {
  nodeOptions(program.command('jobs').description('list the jobs of a sidecar, newest first, or show one job'))
    .argument('[id]', 'a job id: show that job')
    .option('--json', 'print JSON for scripts')
    .action(async (id: string | undefined, o: NodeOptions & { json?: boolean }) => {
      const client = nodeClient(o);
      if (id) {
        const job = await client.get<Job>(`${API_PREFIX}/jobs/${encodeURIComponent(id)}`);
        if (o.json) console.log(JSON.stringify(job, null, 2));
        else {
          console.log(`${job.id}  ${job.type}  ${job.state}${job.target ? `  target ${job.target}` : ''}`);
          console.log(`  request:  ${JSON.stringify(job.request)}`);
          console.log(`  progress: ${summary(job)}${job.progress.current ? `, at ${job.progress.current}` : ''}`);
          console.log(`  created ${job.createdAt}${job.startedAt ? `, started ${job.startedAt}` : ''}${job.finishedAt ? `, finished ${job.finishedAt}` : ''}`);
          for (const e of job.errors) console.log(`  error: ${e.segmentId ? `${e.segmentId}: ` : ''}${e.message}`);
          if (job.result) console.log(`  result:   ${JSON.stringify(job.result)}`);
        }
        return;
      }
      const list = await client.get<{ items: Job[]; total: number }>(`${API_PREFIX}/jobs`);
      if (o.json) {
        console.log(JSON.stringify(list, null, 2));
        return;
      }
      if (list.items.length === 0) {
        console.log('no jobs');
        return;
      }
      console.log(
        table(
          ['ID', 'TYPE', 'STATE', 'SEGMENTS', 'BYTES', 'CREATED'],
          list.items.map((j) => [
            j.id,
            j.type,
            j.state,
            `${j.progress.segmentsDone + j.progress.segmentsSkipped}/${j.progress.segmentsTotal}${j.progress.segmentsFailed ? ` (${j.progress.segmentsFailed} failed)` : ''}`,
            formatBytes(j.progress.bytesDone),
            j.createdAt,
          ]),
        ),
      );
    });
}
