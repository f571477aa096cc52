/**
 * Commands on segments, intervals and data sources: back up now, restore (dry-run plan, confirmation, progress
 * that can be cancelled), show a stored segment's manifest, copy segment ids. Each works on one row or on a
 * multi-selection, in the Nodes view (the node's own segments) or the Backups view (a target's backups).
 */
import * as vscode from 'vscode';
import type { RestorePlan, RestoreRequest, SegmentSelector } from '../../sidecar/api.js';
import { normalizeNodeUrl } from '../client.js';
import type { NodeEntry } from '../cluster.js';
import { formatBytes, plural } from '../tree/format.js';
import { nodeLabel, type Row } from '../tree/rows.js';
import { manifestUri } from '../documents.js';
import { Command } from './ids.js';
import { type ExtensionState, pickNode, showError, targetRows } from './context.js';
import { followJobs, outcomeText, type StartedJob } from './progress.js';

const NODE_KINDS = new Set(['node', 'dataSource', 'interval', 'segment']);
const STORED_KINDS = new Set(['storedDataSource', 'storedInterval', 'storedSegment']);

/** One request to one node: a selector and the target it is about. */
interface Work {
  node: NodeEntry;
  target: string;
  /** A snapshot's id restores exactly the segments it names (issue 21). */
  selector: SegmentSelector & { snapshot?: string };
}

function sameUrl(a: string, b: string): boolean {
  try {
    return normalizeNodeUrl(a) === normalizeNodeUrl(b);
  } catch {
    return a === b;
  }
}

/** The node's own targets (`druid.backup.targets`): the request names none and the sidecar chooses. */
const OWN_TARGETS = '';

function targetWords(target: string): string {
  return target === OWN_TARGETS ? 'its own targets' : target;
}

/** For a node without a single target: its own target set, or one of the targets among the nodes. */
async function pickTarget(ext: ExtensionState, why: string): Promise<string | undefined> {
  const nodes = ext.cluster.list();
  await Promise.all(nodes.map((n) => ext.cluster.ensureInfo(n)));
  const items = [
    { label: 'Its own targets', description: 'druid.backup.targets in its runtime.properties', url: OWN_TARGETS },
    ...nodes.filter((n) => n.info?.roles.includes('target')).map((n) => ({ label: nodeLabel(n), description: n.url, url: n.url })),
  ];
  return (await vscode.window.showQuickPick(items, { placeHolder: why }))?.url;
}

/** Groups rows into requests: segment rows of one node and target become one request with their ids. */
function group(rows: Array<{ node: NodeEntry; target: string; row: Row }>): Work[] {
  const work: Work[] = [];
  const byPair = new Map<string, Work>();
  for (const { node, target, row } of rows) {
    const { dataSource, interval, segmentId } = row.ref;
    if (segmentId) {
      const key = `${node.url}\u0000${target}`;
      let w = byPair.get(key);
      if (!w) {
        w = { node, target, selector: { segmentIds: [] } };
        byPair.set(key, w);
        work.push(w);
      }
      if (!w.selector.segmentIds!.includes(segmentId)) w.selector.segmentIds!.push(segmentId);
    } else {
      work.push({ node, target, selector: { ...(dataSource !== undefined && { dataSource }), ...(interval !== undefined && { interval }) } });
    }
  }
  return work;
}

function describe(selector: Work['selector']): string {
  if (selector.snapshot) return `snapshot ${selector.snapshot}`;
  if (selector.segmentIds) return selector.segmentIds.length === 1 ? selector.segmentIds[0]! : plural(selector.segmentIds.length, 'segment');
  return [selector.dataSource, selector.interval].filter(Boolean).join(' ') || 'every segment';
}

// ---------------------------------------------------------------------------------------------------------------

/** Restore: works out node and target for each row, shows the dry-run plan, and on confirmation runs and follows the jobs. */
export async function restore(ext: ExtensionState, row?: Row, selected?: Row[]): Promise<void> {
  let rows = targetRows(ext, row, selected).filter((r) => NODE_KINDS.has(r.kind) || STORED_KINDS.has(r.kind));
  if (rows.length === 0) {
    const n = await pickNode(ext, 'Restore into which node?', (x) => !!x.info?.roles.includes('source'));
    if (!n) return;
    rows = [{ id: '', kind: 'node', label: nodeLabel(n), collapsible: 'none', ref: { node: n.url } }];
  }
  const pairs: Array<{ node: NodeEntry; target: string; row: Row }> = [];
  let into: NodeEntry | undefined;
  for (const r of rows) {
    if (NODE_KINDS.has(r.kind)) {
      const node = ext.cluster.get(r.ref.node);
      if (!node) continue;
      await ext.cluster.ensureInfo(node);
      const target =
        (r.ref.segmentId && node.segments?.get(r.ref.segmentId)?.backup.target) ||
        node.info?.target ||
        (await pickTarget(ext, `${nodeLabel(node)} has no target: restore from which one?`));
      if (target === undefined) return;
      pairs.push({ node, target, row: r });
    } else {
      // A backup in a target: restore it into a source node, the one that sent it when that is clear.
      if (!into) {
        const sources = ext.cluster.get(r.ref.node)?.stored?.get(r.ref.segmentId ?? '')?.sources ?? [];
        const candidates = ext.cluster.list().filter((n) => n.info?.roles.includes('source'));
        const senders = candidates.filter((n) => n.info && sources.includes(n.info.name));
        into = senders.length === 1 ? senders[0] : await pickNode(ext, 'Restore into which node?', (n) => !!n.info?.roles.includes('source'));
        if (!into) return;
      }
      pairs.push({ node: into, target: r.ref.node, row: { ...r, ref: { ...r.ref, node: into.url } } });
    }
  }
  await planAndRestore(ext, group(pairs));
}

/**
 * Restore Snapshot…: exactly the segments a snapshot in this target names, into a source node (the one that took
 * it when it is a source, else one picked), through the same plan, confirmation and progress as every restore.
 */
export async function restoreSnapshot(ext: ExtensionState, row?: Row): Promise<void> {
  const id = row?.ref.snapshotId;
  const target = row && ext.cluster.get(row.ref.node);
  if (!id || !target) return;
  const snapshot = target.snapshots?.find((s) => s.id === id);
  const sources = ext.cluster.list().filter((n) => n.info?.roles.includes('source'));
  const taker = sources.filter((n) => n.info?.name === snapshot?.node);
  const into = taker.length === 1 ? taker[0] : await pickNode(ext, `Restore snapshot ${id} into which node?`, (n) => !!n.info?.roles.includes('source'));
  if (!into) return;
  await planAndRestore(ext, [{ node: into, target: target.url, selector: { snapshot: id } }]);
}

/** The dry-run plan of each request, shown for confirmation, then the restore jobs, followed with progress. */
async function planAndRestore(ext: ExtensionState, work: Work[]): Promise<void> {
  if (work.length === 0) return;
  const destination = ext.settings().restoreDestination;

  let plans: Array<{ w: Work; plan: RestorePlan }>;
  try {
    plans = await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: 'Druid Backup: planning the restore…' }, () =>
      Promise.all(work.map(async (w) => ({ w, plan: await w.node.client.restorePlan({ target: w.target || undefined, destination, ...w.selector }) }))),
    );
  } catch (e) {
    await showError(ext, 'Restore plan failed', e);
    return;
  }
  const totals = { segments: 0, bytes: 0, restore: 0, skip: 0, overwrite: 0 };
  for (const { plan } of plans) for (const k of Object.keys(totals) as Array<keyof typeof totals>) totals[k] += plan.totals[k];
  for (const { w, plan } of plans) ext.output.info(`restore plan for ${w.node.url} from ${targetWords(w.target)}: ${JSON.stringify(plan.totals)}`);
  const nodes = [...new Set(plans.map((p) => nodeLabel(p.w.node)))].join(', ');
  const targets = [...new Set(plans.map((p) => targetWords(p.w.target)))].join(', ');
  if (totals.restore + totals.overwrite === 0) {
    void vscode.window.showInformationMessage(
      totals.segments
        ? `Nothing to restore: ${plural(totals.skip, 'segment')} already in place on ${nodes}.`
        : `No backup in ${targets} matches ${work.map((w) => describe(w.selector)).join(', ')}.`,
    );
    return;
  }
  const missing = plans.flatMap((p) => p.plan.snapshot?.missing ?? []);
  const lines = plans
    .flatMap((p) => p.plan.segments)
    .filter((s) => s.action !== 'skip')
    .slice(0, 12)
    .map((s) => `${s.action === 'overwrite' ? '⚠ overwrite' : 'restore'}  ${s.segmentId}  (${formatBytes(s.size)})${s.reason ? ` — ${s.reason}` : ''}`);
  const more = totals.restore + totals.overwrite - lines.length;
  const detail = [
    `${plural(totals.restore, 'segment')} to restore${totals.overwrite ? `, ${plural(totals.overwrite, 'segment')} to overwrite` : ''}${totals.skip ? `, ${totals.skip} already in place (skipped)` : ''}; ${formatBytes(totals.bytes)} in all.`,
    `From ${targets} into the ${destination === 'cache' ? 'segment cache' : destination} of ${nodes}.`,
    '',
    ...lines,
    ...(more > 0 ? [`…and ${more} more`] : []),
    ...(missing.length
      ? [
          '',
          `⚠ ${plural(missing.length, 'segment')} the snapshot names that no target holds (not restored):`,
          ...missing.slice(0, 5).map((m) => `${m.segmentId} — ${m.reason}`),
        ]
      : []),
  ].join('\n');
  const choice = await vscode.window.showWarningMessage(
    `Restore ${plural(totals.restore + totals.overwrite, 'segment')} into ${nodes}?`,
    { modal: true, detail },
    'Restore',
  );
  if (choice !== 'Restore') return;

  const started: StartedJob[] = [];
  try {
    for (const { w } of plans) {
      const { jobId } = await w.node.client.restore({ target: w.target || undefined, destination, ...w.selector } satisfies RestoreRequest);
      ext.output.info(`restore job ${jobId} started on ${w.node.url} (${describe(w.selector)} from ${targetWords(w.target)})`);
      started.push({ node: w.node, jobId });
    }
  } catch (e) {
    await showError(ext, 'Restore failed to start', e);
    if (started.length === 0) return;
  }
  await finish(ext, `Restoring ${plural(totals.restore + totals.overwrite, 'segment')} into ${nodes}`, started, 'restored');
}

async function finish(ext: ExtensionState, title: string, started: StartedJob[], verb: string): Promise<void> {
  try {
    const outcome = await followJobs(ext, `Druid Backup: ${title}`, started);
    const { ok, text } = outcomeText(outcome, verb);
    ext.output.info(`${title}: ${text}`);
    if (ok) void vscode.window.showInformationMessage(`${title}: done, ${text}.`);
    else if (outcome.cancelled) void vscode.window.showWarningMessage(`${title}: ${text}.`);
    else await showError(ext, title, new Error(text));
  } catch (e) {
    await showError(ext, `${title}: lost track of the job`, e);
  }
}

// ---------------------------------------------------------------------------------------------------------------

export async function backupNow(ext: ExtensionState, row?: Row, selected?: Row[]): Promise<void> {
  let rows = targetRows(ext, row, selected).filter((r) => NODE_KINDS.has(r.kind));
  if (rows.length === 0) {
    const n = await pickNode(ext, 'Back up which node?', (x) => !!x.info?.roles.includes('source'));
    if (!n) return;
    rows = [{ id: '', kind: 'node', label: nodeLabel(n), collapsible: 'none', ref: { node: n.url } }];
  }
  const pairs: Array<{ node: NodeEntry; target: string; row: Row }> = [];
  for (const r of rows) {
    const node = ext.cluster.get(r.ref.node);
    if (!node) continue;
    await ext.cluster.ensureInfo(node);
    const target = node.info?.target ?? (await pickTarget(ext, `${nodeLabel(node)} has no target: back up to which one?`));
    if (target === undefined) return;
    pairs.push({ node, target, row: r });
  }
  const work = group(pairs);
  const started: StartedJob[] = [];
  try {
    for (const w of work) {
      const { jobId } = await w.node.client.backup({ target: w.target || undefined, ...w.selector });
      ext.output.info(`backup job ${jobId} started on ${w.node.url} (${describe(w.selector)} to ${targetWords(w.target)})`);
      started.push({ node: w.node, jobId });
    }
  } catch (e) {
    await showError(ext, 'Backup failed to start', e);
    if (started.length === 0) return;
  }
  const what = work.length === 1 ? `${describe(work[0]!.selector)} of ${nodeLabel(work[0]!.node)}` : `${work.length} selections`;
  await finish(ext, `Backing up ${what}`, started, 'backed up');
}

// ---------------------------------------------------------------------------------------------------------------

/** Opens the manifest of a backed-up segment as read-only JSON, read from the target that holds it. */
export async function showManifest(ext: ExtensionState, row?: Row): Promise<void> {
  const r = row ?? targetRows(ext, undefined, undefined).find((x) => x.kind === 'segment' || x.kind === 'storedSegment');
  if (!r?.ref.segmentId) {
    void vscode.window.showInformationMessage('Select a segment in the Nodes or Backups view first.');
    return;
  }
  let targetUrl: string | undefined;
  if (r.kind === 'storedSegment') targetUrl = r.ref.node;
  else {
    const n = ext.cluster.get(r.ref.node);
    const t = n?.segments?.get(r.ref.segmentId)?.backup.target ?? n?.info?.target;
    targetUrl = t && ext.cluster.list().find((x) => sameUrl(x.url, t))?.url;
    if (!targetUrl) {
      const choice = await vscode.window.showWarningMessage(
        t ? `The manifest is kept by ${t}, which is not among the nodes. Add it to read its backups.` : `${r.ref.segmentId} has no backup target yet.`,
        ...(t ? ['Add Node'] : []),
      );
      if (choice) await vscode.commands.executeCommand(Command.AddNode, t);
      return;
    }
  }
  try {
    const doc = await vscode.workspace.openTextDocument(manifestUri(targetUrl, r.ref.segmentId));
    await vscode.languages.setTextDocumentLanguage(doc, 'json');
    await vscode.window.showTextDocument(doc, { preview: true });
  } catch (e) {
    await showError(ext, `Manifest of ${r.ref.segmentId}`, e);
  }
}

export async function copySegmentId(ext: ExtensionState, row?: Row, selected?: Row[]): Promise<void> {
  const ids = targetRows(ext, row, selected)
    .map((r) => r.ref.segmentId)
    .filter((x): x is string => !!x);
  if (ids.length === 0) return;
  await vscode.env.clipboard.writeText(ids.join('\n'));
  vscode.window.setStatusBarMessage(`Copied ${ids.length === 1 ? ids[0] : plural(ids.length, 'segment id')}`, 3000);
}
