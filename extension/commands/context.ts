/**
 * What every command needs: the cluster model, the tokens, the settings, the output channel and the views.
 */
import * as vscode from 'vscode';
import { SidecarClient } from '../client.js';
import type { Cluster, NodeConfig, NodeEntry } from '../cluster.js';
import type { Settings, Tokens } from '../settings.js';
import type { RowProvider } from '../tree/provider.js';
import { nodeLabel, type Row } from '../tree/rows.js';

export interface ExtensionState {
  readonly cluster: Cluster;
  readonly tokens: Tokens;
  readonly output: vscode.LogOutputChannel;
  readonly providers: { nodes: RowProvider; backups: RowProvider; jobs: RowProvider };
  readonly views: { nodes: vscode.TreeView<Row>; backups: vscode.TreeView<Row>; jobs: vscode.TreeView<Row> };
  settings(): Settings;
  /** A client for a URL with the token stored for it. */
  clientFor(node: NodeConfig): Promise<SidecarClient>;
}

export function makeClient(ext: Pick<ExtensionState, 'output' | 'settings'>, url: string, token: string | undefined): SidecarClient {
  return new SidecarClient(url, {
    token,
    timeoutMs: ext.settings().requestTimeoutMs,
    log: { info: (m) => ext.output.info(m), error: (m) => ext.output.error(m) },
  });
}

/** The rows a command acts on: the selection when the clicked row is part of a multi-selection, else the row. */
export function targetRows(ext: ExtensionState, row: Row | undefined, selected: readonly Row[] | undefined): Row[] {
  if (selected?.length && (!row || selected.includes(row))) return [...selected];
  if (row) return [row];
  // From the command palette: whatever is selected in a view.
  for (const v of [ext.views.nodes, ext.views.backups, ext.views.jobs]) if (v.selection.length) return [...v.selection];
  return [];
}

/** Asks for one of the nodes (those `filter` accepts); resolves undefined when the person backs out. */
export async function pickNode(ext: ExtensionState, placeHolder: string, filter: (n: NodeEntry) => boolean = () => true): Promise<NodeEntry | undefined> {
  const nodes = ext.cluster.list();
  await Promise.all(nodes.map((n) => ext.cluster.ensureInfo(n)));
  const candidates = nodes.filter(filter);
  if (candidates.length === 0) {
    void vscode.window.showWarningMessage('Druid Backup: no node fits. Add one with "Druid Backup: Add Node".');
    return undefined;
  }
  if (candidates.length === 1) return candidates[0];
  const pick = await vscode.window.showQuickPick(
    candidates.map((n) => ({ label: nodeLabel(n), description: n.url, detail: n.info?.roles.join(', ') ?? n.error?.message, node: n })),
    { placeHolder },
  );
  return pick?.node;
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Shows an error with a way to the output channel, where the request log is. */
export async function showError(ext: ExtensionState, what: string, e: unknown): Promise<void> {
  const text = `${what}: ${errorText(e)}`;
  ext.output.error(text);
  const choice = await vscode.window.showErrorMessage(text, 'Show Output');
  if (choice) ext.output.show(true);
}
