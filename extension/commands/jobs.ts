/** Commands on jobs and targets: verify a target's store, cancel a running job. */
import * as vscode from 'vscode';
import type { Job } from '../../sidecar/api.js';
import { jobUri } from '../documents.js';
import { isJobActive, jobScope, nodeLabel, type Row } from '../tree/rows.js';
import { type ExtensionState, pickNode, showError } from './context.js';
import { followJobs } from './progress.js';

/** The segments a verify job found bad: its result's `bad` list (id and problems) and its failed segments. */
function badSegments(job: Job): string[] {
  const bad = new Set<string>();
  const listed = job.result?.bad;
  if (Array.isArray(listed)) for (const b of listed as Array<{ segmentId?: unknown }>) if (typeof b?.segmentId === 'string') bad.add(b.segmentId);
  for (const e of job.errors) if (e.segmentId) bad.add(e.segmentId);
  return [...bad];
}

export async function verifyTarget(ext: ExtensionState, row?: Row): Promise<void> {
  const target = row?.ref.node ? ext.cluster.get(row.ref.node) : await pickNode(ext, 'Verify which target?', (n) => !!n.info?.roles.includes('target'));
  if (!target) return;
  const title = `Verifying the backups of ${nodeLabel(target)}`;
  try {
    const { jobId } = await target.client.verify({});
    ext.output.info(`verify job ${jobId} started on ${target.url}`);
    const outcome = await followJobs(ext, `Druid Backup: ${title}`, [{ node: target, jobId }]);
    const job = outcome.jobs[0]!.job;
    const bad = badSegments(job);
    const checked = job.progress.segmentsDone + job.progress.segmentsFailed;
    if (outcome.cancelled) {
      void vscode.window.showWarningMessage(`${title}: cancelled after ${checked} segments.`);
    } else if (job.state === 'succeeded' && bad.length === 0) {
      void vscode.window.showInformationMessage(`${nodeLabel(target)}: all ${checked} segments verified, every digest matches.`);
    } else {
      const names = bad.slice(0, 3).join(', ');
      ext.output.error(`${title}: ${bad.length} bad segments: ${bad.join(', ')}`);
      const choice = await vscode.window.showErrorMessage(
        `${nodeLabel(target)}: ${bad.length ? `${bad.length} bad segment${bad.length === 1 ? '' : 's'} (${names}${bad.length > 3 ? ', …' : ''})` : `verify ${job.state}`}.`,
        'Show Report',
      );
      if (choice)
        await vscode.window.showTextDocument(
          await vscode.workspace.openTextDocument(jobUri(target.url, job.id)).then((d) => vscode.languages.setTextDocumentLanguage(d, 'json')),
        );
    }
  } catch (e) {
    await showError(ext, title, e);
  }
}

export async function cancelJob(ext: ExtensionState, row?: Row): Promise<void> {
  let node = row?.ref.node ? ext.cluster.get(row.ref.node) : undefined;
  let jobId = row?.ref.jobId;
  if (!node || !jobId) {
    const active = ext.cluster.list().flatMap((n) => (n.jobs ?? []).filter(isJobActive).map((j) => ({ n, j })));
    if (active.length === 0) {
      void vscode.window.showInformationMessage('No job is running.');
      return;
    }
    const pick = await vscode.window.showQuickPick(
      active.map(({ n, j }) => ({ label: `${j.type} ${jobScope(j)}`, description: nodeLabel(n), detail: j.id, n, j })),
      { placeHolder: 'Cancel which job?' },
    );
    if (!pick) return;
    node = pick.n;
    jobId = pick.j.id;
  }
  try {
    await node.client.cancelJob(jobId);
    ext.output.info(`cancel asked for job ${jobId} on ${node.url}`);
    ext.cluster.jobSeen(node.url, await node.client.job(jobId));
  } catch (e) {
    await showError(ext, `Cancel job ${jobId}`, e);
  }
}
