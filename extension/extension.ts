/**
 * The Druid Backup extension: wiring only. The model (cluster.ts, tree/rows.ts) knows the nodes; the providers
 * (tree/*Provider.ts) show them; commands/ act on them; live.ts keeps them current from each node's events.
 */
import * as vscode from 'vscode';
import { Cluster } from './cluster.js';
import { PLAN_SCHEME, PlanDocuments, restoreCluster, rollBackDataSource } from './commands/clusterRestore.js';
import { type ExtensionState, makeClient } from './commands/context.js';
import { Command, View } from './commands/ids.js';
import { cancelJob, verifyTarget } from './commands/jobs.js';
import { addNode, openConsole, refresh, refreshNode, removeNode, setToken } from './commands/nodes.js';
import { backupNow, copySegmentId, restore, restoreSnapshot, showManifest } from './commands/segments.js';
import { pinSnapshot, pruneTarget } from './commands/snapshots.js';
import { JsonDocuments, SCHEME } from './documents.js';
import { LiveUpdates } from './live.js';
import { readSettings, type Settings, Tokens } from './settings.js';
import { StatusBar } from './status/statusBar.js';
import { TimelinePanels } from './timeline/panel.js';
import { BackupsProvider } from './tree/backupsProvider.js';
import { JobsProvider } from './tree/jobsProvider.js';
import { NodesProvider } from './tree/nodesProvider.js';
import type { RowProvider } from './tree/provider.js';
import type { Row } from './tree/rows.js';

export function activate(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel('Druid Backup', { log: true });
  const warn = (m: string) => output.warn(m);
  let settings: Settings = readSettings(warn);
  const tokens = new Tokens(context.secrets);
  const cluster = new Cluster();
  const providers = {
    nodes: new NodesProvider(cluster, () => settings.pageSize),
    backups: new BackupsProvider(cluster, () => settings.pageSize),
    jobs: new JobsProvider(
      cluster,
      () => settings.pageSize,
      () => settings.recentJobs,
    ),
  };
  const view = (id: View, p: RowProvider) =>
    vscode.window.createTreeView<Row>(id, { treeDataProvider: p, canSelectMany: true, showCollapseAll: id !== View.Jobs });
  const views = { nodes: view(View.Nodes, providers.nodes), backups: view(View.Backups, providers.backups), jobs: view(View.Jobs, providers.jobs) };
  const ext: ExtensionState = {
    cluster,
    tokens,
    output,
    providers,
    views,
    settings: () => settings,
    clientFor: async (c) => makeClient(ext, c.url, await tokens.get(c.url)),
  };
  const statusBar = new StatusBar(ext);
  const timelines = new TimelinePanels(ext, context.extensionUri);
  const live = new LiveUpdates(cluster, { info: (m) => output.info(m), error: (m) => output.warn(m) });

  /** Makes the cluster match the settings; with `newClients`, every node gets a client made afresh (a new timeout). */
  const syncNodes = async (newClients: boolean) => {
    settings = readSettings(warn);
    const tokenOf = new Map(await Promise.all(settings.nodes.map(async (n) => [n.url, await tokens.get(n.url)] as const)));
    const { added, removed } = cluster.setNodes(settings.nodes, (c) => makeClient(ext, c.url, tokenOf.get(c.url)));
    for (const url of added) output.info(`node ${url} is in the settings`);
    for (const url of removed) output.info(`node ${url} is no longer in the settings`);
    if (newClients) for (const n of settings.nodes) cluster.replaceClient(n.url, makeClient(ext, n.url, tokenOf.get(n.url)));
    await vscode.commands.executeCommand('setContext', 'druidBackup.hasNodes', settings.nodes.length > 0);
    live.sync(settings.liveUpdates);
  };

  const plans = new PlanDocuments();
  const register = (id: Command, fn: (...args: never[]) => unknown) =>
    context.subscriptions.push(vscode.commands.registerCommand(id, fn as (...args: unknown[]) => unknown));
  register(Command.AddNode, (url?: unknown) => addNode(ext, url));
  register(Command.RemoveNode, (row?: Row) => removeNode(ext, row));
  register(Command.SetToken, (arg?: unknown) => setToken(ext, arg));
  register(Command.Refresh, () => refresh(ext));
  register(Command.RefreshNode, (arg?: unknown) => refreshNode(ext, arg));
  register(Command.BackupNow, (row?: Row, rows?: Row[]) => backupNow(ext, row, rows));
  register(Command.Restore, (row?: Row, rows?: Row[]) => restore(ext, row, rows));
  register(Command.VerifyTarget, (row?: Row) => verifyTarget(ext, row));
  register(Command.RestoreSnapshot, (row?: Row) => restoreSnapshot(ext, row));
  register(Command.RestoreCluster, (row?: Row) => restoreCluster(ext, plans, row));
  register(Command.RollBackDataSource, (row?: Row) => rollBackDataSource(ext, plans, row));
  register(Command.PruneTarget, (row?: Row) => pruneTarget(ext, row));
  register(Command.PinSnapshot, (row?: Row) => pinSnapshot(ext, row, true));
  register(Command.UnpinSnapshot, (row?: Row) => pinSnapshot(ext, row, false));
  register(Command.ShowManifest, (row?: Row) => showManifest(ext, row));
  register(Command.CopySegmentId, (row?: Row, rows?: Row[]) => copySegmentId(ext, row, rows));
  register(Command.OpenConsole, (row?: Row) => openConsole(ext, row));
  register(Command.CancelJob, (row?: Row) => cancelJob(ext, row));
  register(Command.ShowOutput, () => output.show());
  register(Command.ShowStatus, () => statusBar.showSummary());
  register(Command.ShowTimeline, (row?: Row) => timelines.open(row));
  register(Command.LoadMore, (parentId: string) => {
    // A row id is a JSON array whose first word names its view.
    const viewOf: Record<string, RowProvider> = { n: providers.nodes, b: providers.backups, j: providers.jobs };
    viewOf[(JSON.parse(parentId) as string[])[0] ?? '']?.loadMore(parentId);
  });

  context.subscriptions.push(
    output,
    cluster,
    live,
    statusBar,
    timelines,
    ...Object.values(providers),
    ...Object.values(views),
    vscode.workspace.registerTextDocumentContentProvider(SCHEME, new JsonDocuments(cluster)),
    vscode.workspace.registerTextDocumentContentProvider(PLAN_SCHEME, plans),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('druidBackup')) void syncNodes(e.affectsConfiguration('druidBackup.requestTimeout'));
    }),
    context.secrets.onDidChange(async (e) => {
      const url = tokens.urlOfKey(e.key);
      if (!url || !cluster.get(url)) return;
      cluster.replaceClient(url, makeClient(ext, url, await tokens.get(url)));
      live.sync(settings.liveUpdates);
    }),
  );
  void syncNodes(false);
  output.info('Druid Backup activated');
}

export function deactivate(): void {}
