/** Commands on jobs and targets: verify a target's store, cancel a running job. */
import * as vscode from 'vscode';
import type { VerifyProblem } from '../../sidecar/api.js';
import { jobUri } from '../documents.js';
import { isJobActive, jobScope, nodeLabel, type Row } from '../tree/rows.js';
import { type ExtensionState, pickNode, showError } from './context.js';
import { followJobs } from './progress.js';

/** The bad segments a verify job reports, wherever the sidecar put them in its result. */
function problemsOf(result: Record<string, unknown> | undefined): VerifyProblem[] {
  for (const key of ['problems', 'bad', 'badSegments']) {
    const v = result?.[key];
    if (Array.isArray(v)) return v as VerifyProblem[];
  }
  return [];
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
    const problems = problemsOf(job.result);
    const bad = new Set([...problems.map((p) => p.segmentId), ...job.errors.map((e) => e.segmentId).filter((x): x is string => !!x)]);
    const checked = job.progress.segmentsDone + job.progress.segmentsFailed;
    if (outcome.cancelled) {
      void vscode.window.showWarningMessage(`${title}: cancelled after ${checked} segments.`);
    } else if (job.state === 'succeeded' && bad.size === 0) {
      void vscode.window.showInformationMessage(`${nodeLabel(target)}: all ${checked} segments verified, every digest matches.`);
    } else {
      const names = [...bad].slice(0, 3).join(', ');
      ext.output.error(`${title}: ${bad.size} bad segments: ${[...bad].join(', ')}`);
      const choice = await vscode.window.showErrorMessage(
        `${nodeLabel(target)}: ${bad.size ? `${bad.size} bad segment${bad.size === 1 ? '' : 's'} (${names}${bad.size > 3 ? ', …' : ''})` : `verify ${job.state}`}.`,
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
