/**
 * Commands on a target's snapshots (issue 21): Prune… (the dry-run plan first: what would go and why, then
 * confirmation) and Pin/Unpin. Restore Snapshot… lives with the other restores (segments.ts).
 */
import * as vscode from 'vscode';
import { formatBytes, plural } from '../tree/format.js';
import { nodeLabel, type Row } from '../tree/rows.js';
import { parsePrunePlan, prunePlanText } from '../tree/snapshots.js';
import { type ExtensionState, pickNode, showError } from './context.js';
import { followJobs } from './progress.js';

export async function pruneTarget(ext: ExtensionState, row?: Row): Promise<void> {
  const target = row?.ref.node ? ext.cluster.get(row.ref.node) : await pickNode(ext, 'Prune which target?', (n) => !!n.info?.roles.includes('target'));
  if (!target) return;
  const name = nodeLabel(target);
  try {
    const { jobId: planId } = await target.client.prune(true);
    ext.output.info(`prune dry run ${planId} started on ${target.url}`);
    const planned = (await followJobs(ext, `Druid Backup: planning the prune of ${name}`, [{ node: target, jobId: planId }])).jobs[0]!.job;
    if (planned.state !== 'succeeded') throw new Error(planned.errors[0]?.message ?? `the prune plan ${planned.state}`);
    const plan = parsePrunePlan(planned.result);
    const { summary, detail, removes } = prunePlanText(plan);
    ext.output.info(`prune plan for ${target.url}:\n${detail}`);
    if (!removes) {
      void vscode.window.showInformationMessage(summary);
      return;
    }
    if ((await vscode.window.showWarningMessage(summary, { modal: true, detail }, 'Prune')) !== 'Prune') return;
    const { jobId } = await target.client.prune(false);
    ext.output.info(`prune job ${jobId} started on ${target.url}`);
    const outcome = await followJobs(ext, `Druid Backup: pruning ${name}`, [{ node: target, jobId }]);
    const job = outcome.jobs[0]!.job;
    const done = parsePrunePlan(job.result);
    ext.cluster.reload(target.url);
    if (job.state === 'succeeded') {
      const r = done.removed;
      void vscode.window.showInformationMessage(
        `${name}: pruned ${plural(r.snapshots, 'snapshot')} and ${plural(r.segments, 'segment')} (${formatBytes(r.bytes)})${done.deferred ? `; ${done.deferred}` : ''}.`,
      );
    } else throw new Error(job.errors[0]?.message ?? `prune ${job.state}`);
  } catch (e) {
    await showError(ext, `Prune of ${name}`, e);
  }
}

export async function pinSnapshot(ext: ExtensionState, row: Row | undefined, pinned: boolean): Promise<void> {
  const id = row?.ref.snapshotId;
  const target = row && ext.cluster.get(row.ref.node);
  if (!id || !target) return;
  try {
    await target.client.pinSnapshot(id, pinned);
    ext.output.info(`snapshot ${id} ${pinned ? 'pinned' : 'unpinned'} through ${target.url}`);
    ext.cluster.reload(target.url);
  } catch (e) {
    await showError(ext, `${pinned ? 'Pin' : 'Unpin'} snapshot ${id}`, e);
  }
}
