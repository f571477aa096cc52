/**
 * Restore Cluster from Snapshot… and Roll Back Data Source… on a snapshot in the Backups view (issue 22): the
 * cluster sidecar's dry run first, shown in a modal (refusals and warnings first; Show Plan opens the whole plan
 * in a read-only Markdown preview), then on confirmation the `recovery` job, followed like every job.
 * A cluster restore runs on a sidecar with role `cluster`: when the snapshot was found in a target sidecar's
 * store, the person is told so and picks one of the configured cluster sidecars, which reads it from that target.
 */
import * as vscode from 'vscode';
import type { ClusterRestorePlan, ClusterRestoreRequest } from '../../sidecar/api.js';
import { normalizeNodeUrl } from '../client.js';
import type { NodeEntry } from '../cluster.js';
import { jobUri } from '../documents.js';
import { intervalLabel, plural } from '../tree/format.js';
import { nodeLabel, type Row } from '../tree/rows.js';
import { checkInterval, clusterPlanMarkdown, clusterPlanWords, rollbackIntervals } from '../views/clusterPlan.js';
import { Command } from './ids.js';
import { type ExtensionState, pickNode, showError } from './context.js';
import { followJobs } from './progress.js';

export const PLAN_SCHEME = 'druid-backup-plan';

/** How many shown plans stay readable (a plan is a dry run's answer, not something to fetch again). */
const KEPT_PLANS = 20;

/**
 * The plans shown, as read-only Markdown documents: a dry run is a POST, so its text is kept here rather than
 * asked again when VS Code reads the document.
 */
export class PlanDocuments implements vscode.TextDocumentContentProvider {
  private readonly texts = new Map<string, string>();
  private n = 0;

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.texts.get(uri.path) ?? '_This plan is no longer kept: run the command again for a fresh dry run._\n';
  }

  add(snapshot: string, text: string): vscode.Uri {
    const path = `/${snapshot}/plan-${++this.n}.md`;
    this.texts.set(path, text);
    for (const k of this.texts.keys()) if (this.texts.size > KEPT_PLANS) this.texts.delete(k);
    return vscode.Uri.from({ scheme: PLAN_SCHEME, path });
  }
}

async function showPlan(plans: PlanDocuments, plan: ClusterRestorePlan, action: string): Promise<void> {
  const uri = plans.add(plan.snapshot.id, clusterPlanMarkdown(plan, action));
  try {
    await vscode.commands.executeCommand('markdown.showPreview', uri);
  } catch {
    // Without the built-in Markdown extension: the same text in a read-only editor.
    await vscode.window.showTextDocument(await vscode.languages.setTextDocumentLanguage(await vscode.workspace.openTextDocument(uri), 'markdown'));
  }
}

function sameUrl(a: string, b: string): boolean {
  try {
    return normalizeNodeUrl(a) === normalizeNodeUrl(b);
  } catch {
    return a === b;
  }
}

interface Scope {
  /** The cluster sidecar that plans and runs. */
  cluster: NodeEntry;
  /** The target to read the snapshot from; left out: the cluster sidecar's own targets hold it. */
  target?: string;
  snapshot: string;
  dataSources: string[];
}

/** The cluster sidecar for a snapshot row: the node listing it when it has role `cluster`, else one picked. */
async function clusterFor(ext: ExtensionState, row: Row | undefined): Promise<Scope | undefined> {
  const snapshot = row?.ref.snapshotId;
  const holder = row && ext.cluster.get(row.ref.node);
  if (!snapshot || !holder) return undefined;
  await ext.cluster.ensureInfo(holder);
  const dataSources = holder.snapshots?.find((s) => s.id === snapshot)?.dataSources.map((d) => d.name) ?? [];
  if (!holder.via && holder.info?.roles.includes('cluster')) return { cluster: holder, snapshot, dataSources };
  const nodes = ext.cluster.list();
  await Promise.all(nodes.map((n) => ext.cluster.ensureInfo(n)));
  const clusters = nodes.filter((n) => !n.via && n.info?.roles.includes('cluster'));
  const why = `${nodeLabel(holder)} holds snapshot ${snapshot} but is not a cluster sidecar: a cluster restore runs on the cluster sidecar (role "cluster"), which reads the snapshot from this target.`;
  if (clusters.length === 0) {
    const add = await vscode.window.showWarningMessage(`${why} None of the configured nodes has role "cluster": add the cluster sidecar first.`, 'Add Node');
    if (add) await vscode.commands.executeCommand(Command.AddNode);
    return undefined;
  }
  const use = clusters.length === 1 ? `Use ${nodeLabel(clusters[0]!)}` : 'Pick a Cluster Sidecar…';
  if ((await vscode.window.showInformationMessage(why, { modal: true }, use)) !== use) return undefined;
  const cluster =
    clusters.length === 1 ? clusters[0] : await pickNode(ext, `Restore snapshot ${snapshot} through which cluster sidecar?`, (n) => clusters.includes(n));
  if (!cluster) return undefined;
  const own = cluster.info?.target && sameUrl(cluster.info.target, holder.url);
  return { cluster, snapshot, dataSources, ...(!own && { target: holder.url }) };
}

/** The dry run, in a window progress (a plan reads Druid's metadata and the target's lists, which takes a moment). */
async function plan(ext: ExtensionState, s: Scope, req: Omit<ClusterRestoreRequest, 'dryRun'>): Promise<ClusterRestorePlan | undefined> {
  try {
    const p = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Window, title: `Druid Backup: planning the cluster restore from ${s.snapshot}…` },
      () => s.cluster.client.clusterRestorePlan(req),
    );
    ext.output.info(`cluster restore plan from ${nodeLabel(s.cluster)}: ${JSON.stringify(req)} → ${p.refused ? 'refused' : 'runnable'}`);
    return p;
  } catch (e) {
    await showError(ext, `Planning the cluster restore from ${s.snapshot}`, e);
    return undefined;
  }
}

/**
 * The plan in a modal: run it (true) or back out. Show Plan opens the whole plan in a Markdown preview, which a
 * modal would cover, so the question then stays in a notification beside it.
 */
async function confirm(plans: PlanDocuments, p: ClusterRestorePlan, action: string, button: string): Promise<boolean> {
  const words = clusterPlanWords(p, action);
  const show = 'Show Plan';
  const options = { modal: true, detail: words.detail };
  const runnable = !words.refused && !words.nothingToDo;
  const choice = words.refused
    ? await vscode.window.showErrorMessage(words.title, options, show)
    : words.nothingToDo
      ? await vscode.window.showInformationMessage(words.title, options, show)
      : await vscode.window.showWarningMessage(words.title, options, button, show);
  if (choice !== show) return runnable && choice === button;
  await showPlan(plans, p, action);
  return runnable && (await vscode.window.showWarningMessage(`${words.title} The plan is open beside.`, button, 'Cancel')) === button;
}

/** Starts the job and follows it in a progress notification and the Jobs view; the end says how it went. */
async function run(ext: ExtensionState, s: Scope, req: Omit<ClusterRestoreRequest, 'dryRun'>, title: string): Promise<void> {
  try {
    const { jobId } = await s.cluster.client.clusterRestore(req);
    ext.output.info(`recovery job ${jobId} started on ${s.cluster.url} (snapshot ${s.snapshot})`);
    const outcome = await followJobs(ext, `Druid Backup: ${title}`, [{ node: s.cluster, jobId }]);
    const job = outcome.jobs[0]!.job;
    if (job.state === 'succeeded') {
      void vscode.window.showInformationMessage(`${title}: done, the post-restore check succeeded.`);
      return;
    }
    const why = job.errors
      .slice(0, 3)
      .map((e) => (e.segmentId ? `${e.segmentId}: ${e.message}` : e.message))
      .join('; ');
    const text = `${title}: ${job.state}${why ? `: ${why}` : ''}`;
    ext.output.error(text);
    const report = 'Show Report';
    const choice = await (outcome.cancelled ? vscode.window.showWarningMessage(text, report) : vscode.window.showErrorMessage(text, report));
    if (choice === report)
      await vscode.window.showTextDocument(
        await vscode.languages.setTextDocumentLanguage(await vscode.workspace.openTextDocument(jobUri(s.cluster.url, job.id)), 'json'),
      );
  } catch (e) {
    await showError(ext, title, e);
  }
}

export async function restoreCluster(ext: ExtensionState, plans: PlanDocuments, row?: Row): Promise<void> {
  const s = await clusterFor(ext, row);
  if (!s) return;
  const req = { snapshot: s.snapshot, ...(s.target && { target: s.target }) };
  const p = await plan(ext, s, req);
  if (!p || !(await confirm(plans, p, 'Restore the cluster', 'Restore Cluster'))) return;
  await run(ext, s, req, `Restoring the cluster from snapshot ${s.snapshot} on ${nodeLabel(s.cluster)}`);
}

/**
 * Roll Back Data Source…: one of the snapshot's data sources, and the intervals to roll back, offered from what a
 * rollback would touch (the dry run without intervals lists the segments used now but not in the snapshot) or typed.
 */
export async function rollBackDataSource(ext: ExtensionState, plans: PlanDocuments, row?: Row): Promise<void> {
  const s = await clusterFor(ext, row);
  if (!s) return;
  const dataSource =
    s.dataSources.length === 1
      ? s.dataSources[0]
      : ((await vscode.window.showQuickPick(s.dataSources, { placeHolder: `Roll back which data source of snapshot ${s.snapshot}?` })) ?? undefined);
  if (!dataSource) {
    if (s.dataSources.length === 0) void vscode.window.showWarningMessage(`Snapshot ${s.snapshot} holds no data source.`);
    return;
  }
  const base = { snapshot: s.snapshot, dataSources: [dataSource], ...(s.target && { target: s.target }) };
  const survey = await plan(ext, s, base);
  if (!survey) return;
  const touched = rollbackIntervals(survey, dataSource);
  const typed = '$(edit) Type intervals…';
  const picks = await vscode.window.showQuickPick(
    [
      ...touched.map((iv) => ({ label: intervalLabel(iv), description: 'differs from the snapshot now', interval: iv, picked: true })),
      { label: typed, description: 'ISO-8601 start/end, separated by commas', interval: '', picked: false },
    ],
    {
      canPickMany: true,
      placeHolder: touched.length
        ? `${dataSource}: roll back which intervals? (${plural(touched.length, 'interval')} differ from snapshot ${s.snapshot})`
        : `${dataSource}: no interval differs from snapshot ${s.snapshot} now; type the intervals to roll back`,
    },
  );
  if (!picks) return;
  const intervals = picks.filter((p) => p.interval).map((p) => p.interval);
  if (picks.some((p) => !p.interval) || intervals.length === 0) {
    const text = await vscode.window.showInputBox({
      prompt: `Intervals of ${dataSource} to roll back to snapshot ${s.snapshot}, separated by commas`,
      placeHolder: '2024-01-01/2024-01-02',
      validateInput: (v) => {
        const bad = v.split(',').filter((x) => x.trim() && !checkInterval(x));
        return bad.length ? `not an interval (start/end, start before end): ${bad[0]!.trim()}` : v.trim() ? undefined : 'type at least one interval';
      },
    });
    if (!text) return;
    intervals.push(...text.split(',').flatMap((x) => checkInterval(x) ?? []));
  }
  const req = { ...base, intervals: [...new Set(intervals)] };
  const p = await plan(ext, s, req);
  if (!p || !(await confirm(plans, p, `Roll back ${dataSource}`, 'Roll Back'))) return;
  await run(ext, s, req, `Rolling back ${dataSource} to snapshot ${s.snapshot} on ${nodeLabel(s.cluster)}`);
}
