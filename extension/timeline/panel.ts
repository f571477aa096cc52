/**
 * The coverage timeline of one data source in a webview: the model (model.ts) is built here from what the views
 * hold and sent to the page (media/timeline.js) in its compact form, which the page draws; the segments of a cell
 * go when the page asks (its hover). The page loads nothing remote: one script and one
 * stylesheet from media/, under a Content-Security-Policy that allows only those (the script by nonce). Messages
 * from the page are input: only known types, with keys of cells the panel sent, are acted on. Live: the cluster's
 * changes (the nodes' events) rebuild the model, at most a few times a second.
 */
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import type { ExtensionState } from '../commands/context.js';
import { Command } from '../commands/ids.js';
import { revealRow } from '../commands/reveal.js';
import type { Row } from '../tree/rows.js';
import { parseMessage } from './messages.js';
import { buildTimeline, type Cell, cellDetails, CELL_WORDS, nodeNames, segmentRef, type Timeline, timelineSteps, toWire } from './model.js';

const VIEW_TYPE = 'druidBackup.timeline';

export class TimelinePanels implements vscode.Disposable {
  private readonly panels = new Map<string, TimelinePanel>();

  constructor(
    private readonly ext: ExtensionState,
    private readonly extensionUri: vscode.Uri,
  ) {}

  /** Opens (or shows) the timeline of the data source of `row`; without one, asks for a data source. */
  async open(row?: Row): Promise<void> {
    let dataSource = row?.ref.dataSource;
    if (!dataSource) {
      const names = new Set<string>();
      for (const n of this.ext.cluster.list()) {
        await this.ext.cluster.ensureSegments(n);
        for (const ds of n.segments?.dataSources() ?? []) names.add(ds);
        for (const ds of n.stored?.dataSources() ?? []) names.add(ds);
      }
      dataSource = await vscode.window.showQuickPick([...names].sort(), { placeHolder: 'The coverage timeline of which data source?' });
      if (!dataSource) return;
    }
    // The open time is counted from here: the data source is known (the quick pick, a person's time, is left out).
    const openedAt = Date.now();
    const existing = this.panels.get(dataSource);
    if (existing) {
      existing.reveal();
      return;
    }
    const panel = new TimelinePanel(this.ext, this.extensionUri, dataSource, openedAt, () => this.panels.delete(dataSource));
    this.panels.set(dataSource, panel);
  }

  dispose(): void {
    for (const p of this.panels.values()) p.dispose();
  }
}

class TimelinePanel {
  private readonly panel: vscode.WebviewPanel;
  private readonly subscriptions: vscode.Disposable[] = [];
  private timeline: Timeline | undefined;
  private cells = new Map<string, Cell>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly prepared: Promise<void>;
  /**
   * The open time's parts on the extension's side, as times of the clock (Date.now(), as the page counts them too):
   * the panel created, the first model built and how long that took.
   */
  private readonly createdAt: number;
  private builtAt = 0;
  private buildMs = 0;
  private pageReady = false;
  /** The first model's build has begun; the cluster changed since then and before the page asked for it. */
  private building = false;
  private changed = false;

  constructor(
    private readonly ext: ExtensionState,
    extensionUri: vscode.Uri,
    private readonly dataSource: string,
    private readonly openedAt: number,
    onClose: () => void,
  ) {
    const media = vscode.Uri.joinPath(extensionUri, 'media');
    this.panel = vscode.window.createWebviewPanel(VIEW_TYPE, `Coverage: ${dataSource}`, vscode.ViewColumn.Active, {
      enableScripts: true,
      localResourceRoots: [media],
      retainContextWhenHidden: false,
    });
    this.panel.iconPath = vscode.Uri.joinPath(media, 'druid-backup.svg');
    this.panel.webview.html = html(this.panel.webview, media, dataSource);
    this.createdAt = Date.now();
    // Load and build while the webview starts, so the page gets the model as soon as it asks. In steps, letting
    // the event loop run between them: VS Code's creation of the webview waits on the extension host. Built in one
    // go (10,000 segments: 0.1-1 s on a busy machine), the webview's frame started about 0.1 s after the build
    // ended, in every run measured; built in steps, 0.05-0.15 s after the panel was created.
    this.prepared = this.load().then(async () => {
      const t = Date.now();
      this.building = true;
      const steps = timelineSteps(this.dataSource, ...this.sources());
      for (;;) {
        await new Promise((next) => setImmediate(next));
        const r = steps.next();
        if (r.done) {
          this.use(r.value);
          break;
        }
      }
      this.builtAt = Date.now();
      this.buildMs = this.builtAt - t;
    });
    const sub = ext.cluster.onChange(() => {
      // A change during the build (it pauses between its steps) may be in it or not: built again for the page.
      if (this.building && !this.pageReady) this.changed = true;
      this.schedule();
    });
    this.subscriptions.push(
      { dispose: () => sub.dispose() },
      this.panel.webview.onDidReceiveMessage((m) => void this.onMessage(m)),
      this.panel.onDidDispose(() => {
        this.dispose();
        onClose();
      }),
      this.panel.onDidChangeViewState((e) => {
        if (e.webviewPanel.visible) this.schedule();
      }),
    );
  }

  reveal(): void {
    this.panel.reveal();
  }

  private async load(): Promise<void> {
    await Promise.all(
      this.ext.cluster.list().map(async (n) => {
        await this.ext.cluster.ensureSegments(n);
        await this.ext.cluster.ensureStored(n);
        await this.ext.cluster.ensureSnapshots(n);
      }),
    );
  }

  private schedule(): void {
    // Before the page asked (its 'ready'), a model sent would wait in the webview and be drawn twice: it gets the
    // newest when it asks.
    if (this.timer || !this.panel.visible || !this.pageReady) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.send();
    }, 250);
  }

  /** What the model is built from: the nodes as the views hold them now, and the copies wanted. */
  private sources(): [ReturnType<ExtensionState['cluster']['list']>, number] {
    const nodes = this.ext.cluster.list();
    return [nodes, Math.max(1, ...nodes.map((n) => n.wantedCopies ?? 1))];
  }

  /** Builds the model from what the views hold now. */
  private build(): void {
    this.use(buildTimeline(this.dataSource, ...this.sources()));
  }

  private use(timeline: Timeline): void {
    this.timeline = timeline;
    this.cells = new Map(timeline.lanes.flatMap((l) => l.cells.map((c) => [c.key, c] as const)));
  }

  private send(rebuild = true): void {
    if (rebuild || !this.timeline) this.build();
    const names = nodeNames(this.ext.cluster.list());
    const wire = toWire(this.timeline!);
    // The open time's parts on the extension's side, which the page shows for the e2e test's figures.
    const timing = { opened: this.openedAt, created: this.createdAt, built: this.builtAt, build: this.buildMs, sent: Date.now() };
    void this.panel.webview.postMessage({ type: 'timeline', timeline: wire, names, words: CELL_WORDS, timing });
  }

  /** Rows the tree commands take, for the segments of the cells with these keys. */
  private rowsOf(keys: string[], nodesOnly: boolean): Row[] {
    const rows: Row[] = [];
    for (const key of keys) {
      const cell = this.cells.get(key);
      if (!cell) continue;
      for (const s of cell.segments) {
        const r = segmentRef(this.dataSource, cell, s);
        if (!r || (nodesOnly && r.view !== 'nodes')) continue;
        rows.push({
          id: '',
          kind: r.kind,
          label: s.id,
          collapsible: 'none',
          ref: { node: r.node, dataSource: r.dataSource, interval: r.interval, segmentId: r.segmentId },
        });
      }
    }
    return rows;
  }

  private async onMessage(raw: unknown): Promise<void> {
    const m = parseMessage(raw);
    if (!m) return;
    switch (m.type) {
      case 'ready': {
        // Built while the page loaded (see the constructor); a change since then is sent by schedule().
        await this.prepared;
        // A change while it loaded is in the model sent now: built again only then.
        this.send(this.changed);
        this.pageReady = true;
        this.ext.output.info(`timeline of ${this.dataSource}: ${this.timeline?.segments ?? 0} segments sent ${Date.now() - this.openedAt} ms after opening`);
        return;
      }
      case 'select': {
        const cell = this.cells.get(m.key);
        const s = cell?.segments[0];
        const r = cell && s && segmentRef(this.dataSource, cell, s);
        // The focus stays in the timeline: a keyboard user goes on from the cell (to Restore…, to the next cell).
        if (r) await revealRow(this.ext, r.view, { node: r.node, dataSource: r.dataSource, interval: r.interval, segmentId: r.segmentId }, { focus: false });
        return;
      }
      case 'details': {
        const cell = this.cells.get(m.key);
        if (cell) void this.panel.webview.postMessage({ type: 'details', ...cellDetails(cell) });
        return;
      }
      case 'restore':
      case 'backup': {
        const rows = this.rowsOf(m.keys, m.type === 'backup');
        if (rows.length === 0) {
          void vscode.window.showInformationMessage(
            m.type === 'backup' ? 'Back Up Now: none of the selected segments is on a node.' : 'Restore: no node or target holds the selected segments.',
          );
          return;
        }
        await vscode.commands.executeCommand(m.type === 'backup' ? Command.BackupNow : Command.Restore, rows[0], rows);
        return;
      }
    }
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    for (const s of this.subscriptions.splice(0)) s.dispose();
  }
}

/** The page: no inline script or style, everything from media/, the script by nonce. */
function html(webview: vscode.Webview, media: vscode.Uri, dataSource: string): string {
  const nonce = randomBytes(18).toString('base64');
  const script = webview.asWebviewUri(vscode.Uri.joinPath(media, 'timeline.js'));
  const style = webview.asWebviewUri(vscode.Uri.joinPath(media, 'timeline.css'));
  const csp = [`default-src 'none'`, `img-src ${webview.cspSource}`, `style-src ${webview.cspSource}`, `script-src 'nonce-${nonce}'`].join('; ');
  const esc = (t: string) => t.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${style}">
<title>Coverage: ${esc(dataSource)}</title>
</head>
<body>
<header>
  <h1>Coverage of <span class="ds">${esc(dataSource)}</span></h1>
  <div class="actions" role="toolbar" aria-label="Timeline actions">
    <button id="zoom-in" aria-label="Zoom in" title="Zoom in (+)">+</button>
    <button id="zoom-out" aria-label="Zoom out" title="Zoom out (-)">−</button>
    <button id="zoom-fit" aria-label="Show everything" title="Show everything (0)">Fit</button>
    <button id="restore" disabled>Restore…</button>
    <button id="backup" disabled>Back Up Now</button>
  </div>
</header>
<div id="summary" role="status" aria-live="polite">Loading…</div>
<div id="legend" role="list" aria-label="Legend"></div>
<div id="chart" aria-label="Coverage timeline of ${esc(dataSource)}: one row per version, one cell per interval"></div>
<div id="hover" role="tooltip" hidden></div>
<script nonce="${nonce}" src="${script}"></script>
</body>
</html>`;
}
