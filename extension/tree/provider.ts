/**
 * What the three views' TreeDataProviders share: rows made by the pure model (rows.ts) become TreeItems; the
 * same row object is kept per id, so VS Code can refresh a single element; a batch of model changes refreshes
 * only the rows whose look changed and the lists that gained or lost an item; "Load more" shows the next page.
 */
import * as vscode from 'vscode';
import type { Change, Cluster, ViewName } from '../cluster.js';
import type { Paging, Row, RowRef } from './rows.js';

const COLLAPSIBLE: Record<Row['collapsible'], vscode.TreeItemCollapsibleState> = {
  none: vscode.TreeItemCollapsibleState.None,
  collapsed: vscode.TreeItemCollapsibleState.Collapsed,
  expanded: vscode.TreeItemCollapsibleState.Expanded,
};

export function toTreeItem(row: Row): vscode.TreeItem {
  const item = new vscode.TreeItem(row.label, COLLAPSIBLE[row.collapsible]);
  item.id = row.id;
  item.description = row.description;
  if (row.tooltip) {
    // The rows escape what servers send (md()); nothing in a tooltip may run a command or render HTML.
    const tip = new vscode.MarkdownString(row.tooltip, false);
    tip.isTrusted = false;
    tip.supportHtml = false;
    item.tooltip = tip;
  }
  if (row.icon) item.iconPath = new vscode.ThemeIcon(row.icon.icon, row.icon.color ? new vscode.ThemeColor(row.icon.color) : undefined);
  item.contextValue = row.contextValue;
  if (row.command) item.command = { command: row.command.command, title: row.command.title, arguments: row.command.args };
  return item;
}

const LOOK_KEYS = ['label', 'description', 'tooltip', 'contextValue', 'collapsible'] as const;

function sameLook(a: Row, b: Row): boolean {
  return LOOK_KEYS.every((k) => a[k] === b[k]) && a.icon?.icon === b.icon?.icon && a.icon?.color === b.icon?.color;
}

/** Makes `target` hold exactly `fresh`'s fields, keeping its identity. */
function assignRow(target: Row, fresh: Row): void {
  for (const k of Object.keys(target) as Array<keyof Row>) if (!(k in fresh)) delete target[k];
  Object.assign(target, fresh);
}

export abstract class RowProvider implements vscode.TreeDataProvider<Row>, vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<Row | Row[] | undefined>();
  readonly onDidChangeTreeData = this.emitter.event;
  /** Every row VS Code was given, by id, and the row it was given under. */
  private readonly rows = new Map<string, Row>();
  private readonly parents = new Map<string, Row | undefined>();
  private readonly shownCounts = new Map<string, number>();
  private rootShown = false;
  private readonly subscription: { dispose(): void };

  constructor(
    protected readonly cluster: Cluster,
    private readonly view: ViewName,
    private readonly pageSize: () => number,
  ) {
    this.subscription = cluster.onChange((changes) => this.onChanges(changes.filter((c) => c.view === view)));
  }

  protected get paging(): Paging {
    return { pageSize: this.pageSize(), shown: (id) => this.shownCounts.get(id) ?? 0 };
  }

  /** The rows under `row` (the top level when undefined), loading what they need. */
  protected abstract children(row: Row | undefined): Promise<Row[]>;

  /** The row as the model would make it now, or undefined when it is gone. */
  protected abstract fresh(row: Row): Row | undefined;

  /** Ids of the rows a change touches, top (the node's row) first. */
  protected abstract chain(c: Change): string[];

  getTreeItem(row: Row): vscode.TreeItem {
    return toTreeItem(row);
  }

  getParent(row: Row): Row | undefined {
    return this.parents.get(row.id);
  }

  async getChildren(row?: Row): Promise<Row[]> {
    if (!row) this.rootShown = true;
    const fresh = await this.children(row);
    return fresh.map((r) => {
      const known = this.rows.get(r.id);
      if (known) assignRow(known, r);
      const kept = known ?? r;
      this.rows.set(r.id, kept);
      this.parents.set(r.id, row);
      return kept;
    });
  }

  /**
   * The row standing for `ref`, found by walking down from the top (so that `TreeView.reveal` knows its ancestors);
   * the deepest row on the way when paging hides it. `levels` are the fields of a ref each level adds.
   */
  async find(ref: RowRef, levels: ReadonlyArray<keyof RowRef>): Promise<Row | undefined> {
    const depthOf = (r: Row): number => {
      if (r.ref.node !== ref.node || r.kind === 'message' || r.kind === 'loadMore') return -1;
      let d = 0;
      for (const k of levels) {
        if (r.ref[k] === undefined) break;
        if (r.ref[k] !== ref[k]) return -1;
        d++;
      }
      return d;
    };
    const want = levels.filter((k) => ref[k] !== undefined).length;
    let best: Row | undefined;
    let rows = await this.getChildren();
    for (;;) {
      const floor = best ? depthOf(best) : -1;
      const next = rows.filter((r) => depthOf(r) > floor).sort((a, b) => depthOf(b) - depthOf(a))[0];
      if (!next) return best;
      best = next;
      if (depthOf(best) >= want || best.collapsible === 'none') return best;
      rows = await this.getChildren(best);
    }
  }

  /** Shows the next page under `parentId`. */
  loadMore(parentId: string): void {
    const paging = this.paging;
    this.shownCounts.set(parentId, Math.max(paging.pageSize, paging.shown(parentId)) + paging.pageSize);
    const parent = this.rows.get(parentId);
    this.emitter.fire(parent ?? undefined);
  }

  /** Every row again: after a reload or a settings change. */
  refreshAll(): void {
    this.emitter.fire(undefined);
  }

  private onChanges(changes: Change[]): void {
    if (changes.length === 0 || !this.rootShown) return;
    const fire = new Set<Row>();
    let root = false;
    for (const c of changes) {
      const chain = this.chain(c);
      if (!c.node || !this.rows.has(chain[0] ?? '')) {
        root = true;
        continue;
      }
      // A list that gained or lost an item: the row that holds it (the node itself for a node-wide change);
      // when that row was never shown, its nearest shown ancestor.
      if (c.structural) {
        const holder = chain.length > 1 && (c.segmentId !== undefined || c.jobId !== undefined) ? chain.length - 2 : chain.length - 1;
        for (let i = holder; i >= 0; i--) {
          const r = this.rows.get(chain[i]!);
          if (r) {
            fire.add(r);
            break;
          }
        }
      }
      // Rows whose look changed: a segment's state, its ancestors' counts.
      for (const id of chain) {
        const r = this.rows.get(id);
        if (!r) continue;
        const now = this.fresh(r);
        if (now && !sameLook(r, now)) {
          assignRow(r, now);
          fire.add(r);
        }
      }
    }
    if (root) {
      this.emitter.fire(undefined);
      return;
    }
    // A refreshed row refreshes what is under it: drop rows whose ancestor is refreshed anyway.
    const list = [...fire].filter((r) => {
      for (let p = this.parents.get(r.id); p; p = this.parents.get(p.id)) if (fire.has(p)) return false;
      return true;
    });
    if (list.length) this.emitter.fire(list);
  }

  dispose(): void {
    this.subscription.dispose();
    this.emitter.dispose();
  }
}
