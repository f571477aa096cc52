/**
 * `druid-backup`: the sidecar daemon and its command-line tools in one program. Each command lives in
 * commands/; errors become one clear line on stderr and a non-zero exit status.
 */
import { Command, CommanderError } from 'commander';
import { isBackupError, messageOf } from './errors.js';
import { VERSION } from './version.js';
import * as sampleCache from './commands/sampleCache.js';
import * as scan from './commands/scan.js';
import * as demo from './commands/demo.js';
import * as sidecar from './commands/sidecar.js';
import * as backup from './commands/backup.js';
import * as jobs from './commands/jobs.js';
import * as restore from './commands/restore.js';
import * as targets from './commands/targets.js';
import * as verify from './commands/verify.js';
import * as snapshot from './commands/snapshot.js';
import * as prune from './commands/prune.js';
import * as clusterRestore from './commands/clusterRestore.js';

export function buildProgram(): Command {
  const program = new Command('druid-backup')
    .description('Back up and restore Apache Druid segments: a sidecar beside each data node, and the tools to drive it.')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ sortSubcommands: true });
  for (const c of [sampleCache, scan, demo, sidecar, backup, jobs, restore, targets, verify, snapshot, prune, clusterRestore]) c.register(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  program.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode;
      return;
    }
    process.stderr.write(`druid-backup: ${messageOf(e)}\n`);
    if (!isBackupError(e) && process.env.DRUID_BACKUP_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
    process.exitCode = isBackupError(e) && ['bad_config', 'bad_request', 'bad_interval', 'bad_segment_id'].includes(e.code) ? 2 : 1;
  }
}

void main(process.argv);
