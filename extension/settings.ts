/**
 * The `druidBackup.*` settings and the tokens. Settings hold node URLs, names and console URLs, never a token:
 * tokens live in VS Code's SecretStorage, one per node URL.
 */
import * as vscode from 'vscode';
import { normalizeNodeUrl } from './client.js';
import { type NodeConfig, parseNodes } from './cluster.js';
import { SETTINGS } from './commands/ids.js';

export interface Settings {
  nodes: NodeConfig[];
  requestTimeoutMs: number;
  pageSize: number;
  liveUpdates: boolean;
  recentJobs: number;
  restoreDestination: string;
  jobPollMs: number;
}

function clampInt(v: unknown, min: number, max: number, fallback: number): number {
  return typeof v === 'number' && Number.isFinite(v) ? Math.min(max, Math.max(min, Math.round(v))) : fallback;
}

export function readSettings(warn: (message: string) => void): Settings {
  const c = vscode.workspace.getConfiguration(SETTINGS);
  return {
    nodes: parseNodes(c.get('nodes'), warn),
    requestTimeoutMs: clampInt(c.get('requestTimeout'), 1000, 600_000, 10_000),
    pageSize: clampInt(c.get('pageSize'), 10, 5000, 200),
    liveUpdates: c.get('liveUpdates') !== false,
    recentJobs: clampInt(c.get('recentJobs'), 1, 1000, 20),
    restoreDestination: c.get<string>('restoreDestination') || 'cache',
    jobPollMs: clampInt(c.get('jobPollInterval'), 200, 60_000, 1000),
  };
}

/**
 * Changes to the node list, one at a time. Each waits until this extension host's configuration shows the list it
 * wrote. `update` resolves before the change reaches the host's copy of the settings, so a second node added right
 * after the first (or on a loaded machine) read the list without the first and wrote it back without it: the first
 * node was gone from the views (a clean-clone e2e run showed it).
 */
let nodeWrites: Promise<unknown> = Promise.resolve();
function oneAtATime<T>(fn: () => Promise<T>): Promise<T> {
  const run = nodeWrites.then(fn, fn);
  nodeWrites = run.catch(() => undefined);
  return run;
}

type Scope = 'globalValue' | 'workspaceValue' | 'workspaceFolderValue';
const SCOPE_OF: Record<vscode.ConfigurationTarget, Scope> = {
  [vscode.ConfigurationTarget.Global]: 'globalValue',
  [vscode.ConfigurationTarget.Workspace]: 'workspaceValue',
  [vscode.ConfigurationTarget.WorkspaceFolder]: 'workspaceFolderValue',
};
/** How long a write waits for the host to show it before going on anyway. */
const SHOWN_WITHIN_MS = 10_000;

/** Writes `list` as the node list of `target` and resolves once this extension host reads it back. */
async function writeNodes(list: unknown[], target: vscode.ConfigurationTarget): Promise<void> {
  const want = JSON.stringify(list);
  const shown = () => JSON.stringify(vscode.workspace.getConfiguration(SETTINGS).inspect<unknown[]>('nodes')?.[SCOPE_OF[target]] ?? []) === want;
  let sub: vscode.Disposable | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const seen = new Promise<void>((resolve) => {
    sub = vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration(`${SETTINGS}.nodes`) && shown()) resolve();
    });
    timer = setTimeout(resolve, SHOWN_WITHIN_MS);
  });
  try {
    await vscode.workspace.getConfiguration(SETTINGS).update('nodes', list, target);
    if (!shown()) await seen;
  } finally {
    sub?.dispose();
    clearTimeout(timer);
  }
}

/** Adds or updates a node in the user's settings (or the workspace's, when the list lives there). */
export function saveNode(node: NodeConfig): Promise<void> {
  return oneAtATime(async () => {
    const inspected = vscode.workspace.getConfiguration(SETTINGS).inspect<unknown[]>('nodes');
    const target = inspected?.workspaceValue !== undefined ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
    const rest = (inspected?.[SCOPE_OF[target]] ?? []).filter((e) => urlOf(e) !== node.url);
    const entry = node.name || node.consoleUrl ? node : node.url;
    await writeNodes([...rest, entry], target);
  });
}

/** Removes a node from every settings scope that lists it. */
export function forgetNode(url: string): Promise<void> {
  return oneAtATime(async () => {
    const inspected = vscode.workspace.getConfiguration(SETTINGS).inspect<unknown[]>('nodes');
    for (const target of [vscode.ConfigurationTarget.Global, vscode.ConfigurationTarget.Workspace, vscode.ConfigurationTarget.WorkspaceFolder]) {
      const list = inspected?.[SCOPE_OF[target]];
      if (list?.some((e) => urlOf(e) === url))
        await writeNodes(
          list.filter((e) => urlOf(e) !== url),
          target,
        );
    }
  });
}

function urlOf(entry: unknown): string | undefined {
  const raw = typeof entry === 'string' ? entry : (entry as { url?: unknown } | null)?.url;
  if (typeof raw !== 'string') return undefined;
  try {
    return normalizeNodeUrl(raw);
  } catch {
    return raw;
  }
}

/** The tokens of the nodes, in SecretStorage under one key per node URL. */
export class Tokens {
  constructor(private readonly secrets: vscode.SecretStorage) {}

  private key(url: string): string {
    return `druidBackup.token:${url}`;
  }

  get(url: string): Thenable<string | undefined> {
    return this.secrets.get(this.key(url));
  }

  set(url: string, token: string): Thenable<void> {
    return this.secrets.store(this.key(url), token);
  }

  delete(url: string): Thenable<void> {
    return this.secrets.delete(this.key(url));
  }

  /** The node URL a SecretStorage change event's key stands for, if it is one of ours. */
  urlOfKey(key: string): string | undefined {
    const prefix = 'druidBackup.token:';
    return key.startsWith(prefix) ? key.slice(prefix.length) : undefined;
  }
}
