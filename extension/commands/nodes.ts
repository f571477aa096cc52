/** Commands on nodes: add, remove, set the token, refresh, open the Druid web console. */
import * as vscode from 'vscode';
import { normalizeNodeUrl } from '../client.js';
import { consoleUrlOf } from '../cluster.js';
import { forgetNode, saveNode } from '../settings.js';
import { nodeLabel, type Row } from '../tree/rows.js';
import { errorText, type ExtensionState, makeClient, pickNode } from './context.js';

function validUrl(v: string): string | undefined {
  try {
    normalizeNodeUrl(v);
    return undefined;
  } catch (e) {
    return errorText(e).includes('Invalid URL') ? 'Enter the URL of a sidecar, e.g. http://historical-1:8484' : errorText(e);
  }
}

async function askToken(url: string): Promise<string | undefined> {
  return vscode.window.showInputBox({
    title: `Token of ${url}`,
    prompt: "The sidecar's bearer token (druid.backup.token, or the file {stateDir}/token). Kept in VS Code's secret storage, never in settings.",
    password: true,
    ignoreFocusOut: true,
    validateInput: (v) => (v.trim() ? undefined : 'The sidecar needs a token for every call but its health check'),
  });
}

/** Add Node: the URL, then the token; checks that the node answers before saving, or lets the person insist. */
export async function addNode(ext: ExtensionState, urlArg?: unknown): Promise<void> {
  const raw = await vscode.window.showInputBox({
    title: 'Add a Druid Backup node',
    prompt: 'URL of the sidecar beside a Druid Historical (or of a target sidecar)',
    value: typeof urlArg === 'string' ? urlArg : 'http://localhost:8484',
    ignoreFocusOut: true,
    validateInput: validUrl,
  });
  if (raw === undefined) return;
  const url = normalizeNodeUrl(raw);
  const token = await askToken(url);
  if (token === undefined) return;
  const probe = makeClient(ext, url, token.trim());
  let name: string | undefined;
  try {
    const info = await probe.node();
    name = info.name;
    ext.output.info(`added node ${url} (${info.name}, ${info.roles.join(' and ')})`);
  } catch (e) {
    const choice = await vscode.window.showWarningMessage(`${url} did not answer as a sidecar: ${errorText(e)}`, { modal: true }, 'Add Anyway');
    if (choice !== 'Add Anyway') return;
  }
  // The token first, so the settings change finds it.
  await ext.tokens.set(url, token.trim());
  const existing = ext.settings().nodes.find((n) => n.url === url);
  await saveNode({ url, name: existing?.name, consoleUrl: existing?.consoleUrl });
  if (existing) ext.cluster.replaceClient(url, makeClient(ext, url, token.trim()));
  void vscode.window.showInformationMessage(`Druid Backup: added ${name ?? url}`);
}

async function nodeOf(ext: ExtensionState, arg: unknown, placeHolder: string) {
  const url = typeof arg === 'string' ? arg : (arg as Row | undefined)?.ref?.node;
  if (url) return ext.cluster.get(url);
  return pickNode(ext, placeHolder, (n) => !n.via);
}

export async function removeNode(ext: ExtensionState, arg?: unknown): Promise<void> {
  const n = await nodeOf(ext, arg, 'Node to remove');
  if (!n) return;
  const ok = await vscode.window.showWarningMessage(
    `Remove ${nodeLabel(n)} (${n.url}) from the views?`,
    { modal: true, detail: "Its token is deleted from VS Code's secret storage. Nothing changes on the node." },
    'Remove',
  );
  if (ok !== 'Remove') return;
  await forgetNode(n.url);
  await ext.tokens.delete(n.url);
  ext.output.info(`removed node ${n.url}`);
}

export async function setToken(ext: ExtensionState, arg?: unknown): Promise<void> {
  const n = await nodeOf(ext, arg, 'Node whose token to set');
  if (!n) return;
  const token = await askToken(n.url);
  if (token === undefined) return;
  await ext.tokens.set(n.url, token.trim());
  ext.cluster.replaceClient(n.url, makeClient(ext, n.url, token.trim()));
}

export function refresh(ext: ExtensionState): void {
  ext.cluster.reload();
}

export function refreshNode(ext: ExtensionState, arg?: unknown): void {
  const url = typeof arg === 'string' ? arg : (arg as Row | undefined)?.ref?.node;
  ext.cluster.reload(url);
}

export async function openConsole(ext: ExtensionState, arg?: unknown): Promise<void> {
  const n = await nodeOf(ext, arg, 'Node whose Druid console to open');
  if (!n) return;
  const url = consoleUrlOf(n);
  ext.output.info(`opening the Druid console of ${n.url}: ${url}`);
  await vscode.env.openExternal(vscode.Uri.parse(url));
}
