/**
 * The status bar item: the cluster's protection at a glance (status/model.ts), recomputed when the nodes' events
 * change what the views hold, never by polling the nodes. A click opens the rows that need attention.
 */
import * as vscode from 'vscode';
import type { SidecarClient } from '../client.js';
import type { ExtensionState } from '../commands/context.js';
import { Command } from '../commands/ids.js';
import { revealRow } from '../commands/reveal.js';
import { type Attention, type ClusterStatus, clusterStatus, type Need, statusAccessibleName, statusText, statusTooltip } from './model.js';

/** A pending backup older than this turns the item yellow. */
const LAG_WARN_MS = 10 * 60_000;
/** The lag of a pending backup grows without events; the text is recomputed from memory this often. */
const AGE_TICK_MS = 30_000;
/** The summary lists this many rows at most. */
const SUMMARY_ROWS = 200;

const NEED_ICON: Record<Need, string> = {
  unreachable: '$(error)',
  lost: '$(debug-disconnect)',
  failedBackup: '$(error)',
  failedJob: '$(close)',
  underReplicated: '$(warning)',
  pending: '$(clock)',
};

const NEED_TITLE: Record<Need, string> = {
  unreachable: 'Nodes not answering',
  lost: 'Lost segments (restore them)',
  failedBackup: 'Backups that failed',
  failedJob: 'Failed jobs',
  underReplicated: 'Under-replicated segments',
  pending: 'Backups pending for long',
};

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('druidBackup.status', vscode.StatusBarAlignment.Left, 50);
  private readonly subscription: { dispose(): void };
  private readonly ticker: ReturnType<typeof setInterval>;
  /** When each pending segment was first seen pending: the API says that it is pending, not since when. */
  private readonly pendingSeen = new Map<string, number>();
  private readonly wanted = new Map<string, { client: SidecarClient; copies: number }>();
  private status: ClusterStatus | undefined;

  constructor(private readonly ext: ExtensionState) {
    this.item.name = 'Druid Backup';
    this.item.command = Command.ShowStatus;
    this.subscription = ext.cluster.onChange(() => {
      void this.load();
      this.update();
    });
    this.ticker = setInterval(() => this.update(), AGE_TICK_MS);
    void this.load();
    this.update();
  }

  /** Loads what the counts need once per node (segments, jobs, copies wanted); events keep it current afterwards. */
  private async load(): Promise<void> {
    for (const n of this.ext.cluster.list()) {
      if (n.via) continue;
      await this.ext.cluster.ensureSegments(n);
      if (!n.info?.roles.includes('source')) continue;
      await this.ext.cluster.ensureJobs(n);
      const known = this.wanted.get(n.url);
      if (known?.client === n.client) continue;
      const client = n.client;
      this.wanted.set(n.url, { client, copies: known?.copies ?? 1 });
      try {
        const copies = (await client.targets()).copies;
        this.wanted.set(n.url, { client, copies });
        n.wantedCopies = copies;
        this.update();
      } catch {
        // An older sidecar or a refusal: one copy wanted, as with a single target.
      }
    }
  }

  private update(): void {
    const now = Date.now();
    const nodes = this.ext.cluster.list().filter((n) => !n.via);
    const stillPending = new Set<string>();
    for (const n of nodes)
      for (const s of n.segments?.values() ?? [])
        if (s.backup.state === 'pending') {
          const key = `${n.url} ${s.id}`;
          stillPending.add(key);
          if (!this.pendingSeen.has(key)) this.pendingSeen.set(key, now);
        }
    for (const key of this.pendingSeen.keys()) if (!stillPending.has(key)) this.pendingSeen.delete(key);
    const st = clusterStatus(nodes, {
      wantedCopies: (url) => this.wanted.get(url)?.copies ?? 1,
      pendingSince: (url, id) => this.pendingSeen.get(`${url} ${id}`),
      now,
      lagWarnMs: LAG_WARN_MS,
    });
    this.status = st;
    if (st.nodes === 0) {
      this.item.hide();
      return;
    }
    this.item.text = statusText(st);
    const tip = new vscode.MarkdownString(statusTooltip(st));
    tip.supportThemeIcons = true;
    this.item.tooltip = tip;
    this.item.accessibilityInformation = { label: statusAccessibleName(st), role: 'button' };
    this.item.backgroundColor =
      st.level === 'error'
        ? new vscode.ThemeColor('statusBarItem.errorBackground')
        : st.level === 'warning'
          ? new vscode.ThemeColor('statusBarItem.warningBackground')
          : undefined;
    this.item.show();
  }

  /** The short summary: the counts, then each row that needs attention; picking one reveals it in its view. */
  async showSummary(): Promise<void> {
    await this.load();
    this.update();
    const st = this.status;
    if (!st) return;
    type Item = vscode.QuickPickItem & { attention?: Attention };
    const items: Item[] = [{ label: 'Summary', kind: vscode.QuickPickItemKind.Separator }];
    items.push({ label: `$(database) ${st.protected} of ${st.served} segments served have the copies wanted`, detail: statusAccessibleName(st) });
    let need: Need | undefined;
    for (const a of st.attention.slice(0, SUMMARY_ROWS)) {
      if (a.need !== need) {
        need = a.need;
        items.push({ label: NEED_TITLE[a.need], kind: vscode.QuickPickItemKind.Separator });
      }
      items.push({ label: `${NEED_ICON[a.need]} ${a.label}`, detail: a.detail, attention: a });
    }
    if (st.attention.length > SUMMARY_ROWS) items.push({ label: `… and ${st.attention.length - SUMMARY_ROWS} more` });
    if (!st.attention.length) items.push({ label: '$(pass) Nothing needs attention' });
    const pick = await vscode.window.showQuickPick(items, { title: 'Druid Backup: status', placeHolder: 'Pick a row to show it', matchOnDetail: true });
    if (pick?.attention) await revealRow(this.ext, pick.attention.view, pick.attention.ref);
  }

  dispose(): void {
    clearInterval(this.ticker);
    this.subscription.dispose();
    this.item.dispose();
  }
}
