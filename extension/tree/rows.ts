/**
 * The tree model: turns what the sidecars answered into the rows of the three views (Nodes, Backups, Jobs).
 * Pure, no `vscode` import: the providers (nodesProvider.ts, …) turn a `Row` into a `TreeItem`, and the unit
 * tests check rows directly. Row ids are stable (a path of names, never a count or a state), so VS Code keeps
 * expansion and selection across refreshes.
 */
import type { Job, NodeInfo, SegmentInfo, StoredSegment } from '../../sidecar/api.js';
import { Command } from '../commands/ids.js';
import { formatBytes, intervalLabel, md, plural, timeAgo } from './format.js';
import type { GroupedIndex } from './index.js';
import { hasSnapshots, snapshotsGroupRow, type SnapshotsView } from './snapshots.js';
import { copiesOf, damageReason, displayState, LOOKS, LOST_EXPLAINED, stateCounts, summarize } from './state.js';

export type RowKind =
  | 'node'
  | 'dataSource'
  | 'interval'
  | 'segment'
  | 'target'
  | 'storedDataSource'
  | 'storedInterval'
  | 'storedSegment'
  | 'snapshots'
  | 'snapshot'
  | 'jobNode'
  | 'job'
  | 'jobError'
  | 'message'
  | 'loadMore';

export interface RowIcon {
  icon: string;
  color?: string;
}

/** What a row stands for; commands get it through the row. */
export interface RowRef {
  /** The node's URL as configured. */
  node: string;
  dataSource?: string;
  interval?: string;
  segmentId?: string;
  jobId?: string;
  snapshotId?: string;
}

export interface Row {
  id: string;
  kind: RowKind;
  label: string;
  description?: string;
  /** Markdown. */
  tooltip?: string;
  icon?: RowIcon;
  /**
   * Space-separated words, the kind first (`node source target`, `segment backedUp`), matched by the `when`
   * clauses of package.json's menus with regular expressions such as `viewItem =~ /^segment\b/`.
   */
  contextValue?: string;
  collapsible: 'none' | 'collapsed' | 'expanded';
  command?: { command: Command; title: string; args: unknown[] };
  ref: RowRef;
}

export interface NodeProblem {
  message: string;
  /** `unauthorized` rows offer to set the token. */
  code?: string;
}

/** What the views know about one configured node. */
export interface NodeView {
  url: string;
  /** The name given in the settings, if any. */
  name?: string;
  /** For a bucket (a target its node answers for): the URL of the node that answers for it. */
  via?: string;
  info?: NodeInfo;
  error?: NodeProblem;
  segments?: GroupedIndex<SegmentInfo>;
  segmentsError?: NodeProblem;
  stored?: GroupedIndex<StoredSegment>;
  storedError?: NodeProblem;
  jobs?: Job[];
  jobsError?: NodeProblem;
}

/** How many children of a parent are shown; "Load more" raises it. */
export interface Paging {
  pageSize: number;
  shown(parentId: string): number;
}

export function rowId(...parts: string[]): string {
  return JSON.stringify(parts);
}

export function nodeLabel(n: NodeView): string {
  if (n.name) return n.name;
  if (n.info?.name) return n.info.name;
  try {
    return new URL(n.url).host;
  } catch {
    return n.url;
  }
}

/** The first `shown` items as rows, then a "Load more" row: rows are only made for what is shown. */
export function page<T>(parentId: string, ref: RowRef, items: readonly T[], paging: Paging, toRow: (t: T) => Row): Row[] {
  const shown = Math.max(paging.pageSize, paging.shown(parentId));
  const rows = items.slice(0, shown).map(toRow);
  const rest = items.length - shown;
  if (rest > 0) {
    rows.push({
      id: rowId(parentId, 'more'),
      kind: 'loadMore',
      label: 'Load more…',
      description: `${Math.min(rest, paging.pageSize).toLocaleString('en-US')} of ${rest.toLocaleString('en-US')} more`,
      icon: { icon: 'ellipsis' },
      collapsible: 'none',
      command: { command: Command.LoadMore, title: 'Load more', args: [parentId] },
      ref,
    });
  }
  return rows;
}

function message(id: string, ref: RowRef, label: string, icon: RowIcon, extra: Partial<Row> = {}): Row {
  return { id, kind: 'message', label, icon, collapsible: 'none', ref, ...extra };
}

function problemRows(parentId: string, n: NodeView, p: NodeProblem): Row[] {
  const ref = { node: n.url };
  const rows = [message(rowId(parentId, 'error'), ref, p.message, { icon: 'error', color: 'charts.red' }, { tooltip: md(p.message) })];
  if (p.code === 'unauthorized') {
    rows.push(
      message(
        rowId(parentId, 'set-token'),
        ref,
        'Set the token…',
        { icon: 'key' },
        { command: { command: Command.SetToken, title: 'Set Token', args: [n.url] } },
      ),
    );
  } else {
    rows.push(
      message(rowId(parentId, 'retry'), ref, 'Retry', { icon: 'refresh' }, { command: { command: Command.RefreshNode, title: 'Retry', args: [n.url] } }),
    );
  }
  return rows;
}

function nodeTooltip(n: NodeView): string {
  const lines = [`**${md(nodeLabel(n))}**`, '', `URL: ${md(n.url)}`];
  const i = n.via ? undefined : n.info;
  if (i) {
    lines.push(`Roles: ${md(i.roles.join(', '))}`, `Sidecar version: ${md(i.version)}`, `Started: ${md(i.startedAt)}`);
    if (i.druid.service || i.druid.host)
      lines.push(`Druid: ${md([i.druid.service, i.druid.host && `${i.druid.host}:${i.druid.plaintextPort ?? ''}`].filter(Boolean).join(' on '))}`);
    if (i.druid.locations.length) lines.push(`Cache locations (${md(i.druid.layout)} layout): ${i.druid.locations.map((l) => md(l.path)).join(', ')}`);
    if (i.target) lines.push(`Backs up to: ${md(i.target)}`);
    if (i.store) lines.push(`Store: ${md(i.store.path)}, ${plural(i.store.segments, 'segment')}, ${md(formatBytes(i.store.bytes))}`);
  }
  if (n.via) lines.push(`A bucket, read through the node at ${md(n.via)}`);
  if (n.error) lines.push('', `Error: ${md(n.error.message)}`);
  return lines.join('  \n');
}

function nodeContext(n: NodeView, kind: 'node' | 'target'): string {
  const words: string[] = [kind, ...(n.info?.roles ?? [])];
  if (n.error) words.push('unreachable');
  if (n.via) words.push('bucket');
  if (n.info?.druid.host) words.push('console');
  return words.join(' ');
}

// ---------------------------------------------------------------------------------------------------------------
// Nodes view: node → data source → interval → segment

export function nodeRow(n: NodeView): Row {
  const id = rowId('n', n.url);
  let description: string;
  let icon: RowIcon = { icon: 'server' };
  if (n.error) {
    description = n.error.code === 'unauthorized' ? 'token rejected' : 'unreachable';
    icon = { icon: 'error', color: 'charts.red' };
  } else if (!n.info) {
    description = 'connecting…';
  } else if (n.segments) {
    const sum = summarize(n.segments.values());
    description = `${plural(sum.segments, 'segment')}, ${formatBytes(sum.bytes)}${sum.segments ? ` · ${stateCounts(sum)}` : ''}`;
    if (sum.segments) icon = { icon: 'server', color: LOOKS[sum.worst].color };
  } else {
    description = n.info.roles.join(', ');
  }
  return {
    id,
    kind: 'node',
    label: nodeLabel(n),
    description,
    tooltip: nodeTooltip(n),
    icon,
    contextValue: nodeContext(n, 'node'),
    collapsible: 'expanded',
    ref: { node: n.url },
  };
}

/** Children of a node in the Nodes view; the caller has loaded `info` and `segments` (or failed to). */
export function nodeChildren(n: NodeView, paging: Paging): Row[] {
  const parent = rowId('n', n.url);
  const ref = { node: n.url };
  if (n.error) return problemRows(parent, n, n.error);
  if (n.info && !n.info.roles.includes('source')) {
    return [message(rowId(parent, 'no-cache'), ref, 'No segment cache: this node is a target (see Backups)', { icon: 'info' })];
  }
  if (n.segmentsError) return problemRows(parent, n, n.segmentsError);
  const index = n.segments;
  if (!index) return [];
  if (index.size === 0) return [message(rowId(parent, 'empty'), ref, 'No segments in the cache', { icon: 'info' })];
  return page(parent, ref, index.dataSources(), paging, (ds) => dataSourceRow(n, ds));
}

export function dataSourceRow(n: NodeView, dataSource: string): Row {
  const sum = summarize(n.segments?.itemsOf(dataSource) ?? []);
  return {
    id: rowId('n', n.url, dataSource),
    kind: 'dataSource',
    label: dataSource,
    description: `${plural(sum.segments, 'segment')}, ${formatBytes(sum.bytes)} · ${stateCounts(sum)}`,
    tooltip: `**${md(dataSource)}**  \n${plural(n.segments?.intervals(dataSource).length ?? 0, 'interval')}, ${plural(sum.segments, 'segment')}, ${md(formatBytes(sum.bytes))}  \n${stateCounts(sum)}`,
    icon: { icon: 'database', color: LOOKS[sum.worst].color },
    contextValue: 'dataSource',
    collapsible: 'collapsed',
    ref: { node: n.url, dataSource },
  };
}

export function dataSourceChildren(n: NodeView, dataSource: string, paging: Paging): Row[] {
  const parent = rowId('n', n.url, dataSource);
  return page(parent, { node: n.url, dataSource }, n.segments?.intervals(dataSource) ?? [], paging, (iv) => intervalRow(n, dataSource, iv));
}

export function intervalRow(n: NodeView, dataSource: string, interval: string): Row {
  const sum = summarize(n.segments?.itemsOf(dataSource, interval) ?? []);
  return {
    id: rowId('n', n.url, dataSource, interval),
    kind: 'interval',
    label: intervalLabel(interval),
    description: `${plural(sum.segments, 'segment')}, ${formatBytes(sum.bytes)} · ${stateCounts(sum)}`,
    tooltip: `**${md(dataSource)}** ${md(interval)}  \n${plural(sum.segments, 'segment')}, ${md(formatBytes(sum.bytes))}  \n${stateCounts(sum)}`,
    icon: { icon: 'calendar', color: LOOKS[sum.worst].color },
    contextValue: 'interval',
    collapsible: 'collapsed',
    ref: { node: n.url, dataSource, interval },
  };
}

export function intervalChildren(n: NodeView, dataSource: string, interval: string, paging: Paging, now: number): Row[] {
  const parent = rowId('n', n.url, dataSource, interval);
  return page(parent, { node: n.url, dataSource, interval }, n.segments?.segments(dataSource, interval) ?? [], paging, (s) => segmentRow(n, s, now));
}

export function segmentRow(n: NodeView, s: SegmentInfo, now: number): Row {
  const state = displayState(s);
  const look = LOOKS[state];
  const reason = damageReason(s);
  const copies = copiesOf(s);
  const parts =
    state === 'lost'
      ? ['lost: files gone from the cache', copies ? `${plural(copies, 'copy', 'copies')} in the backup` : 'no copy in the backup']
      : [state === 'damaged' && reason ? `damaged: ${reason}` : look.label, formatBytes(s.size)];
  if (s.backup.at) parts.push(`backed up ${timeAgo(s.backup.at, now)}`);
  const tip = [`**${md(s.id)}**`, '', `State: ${md(look.label)}${reason ? ` (${md(reason)})` : ''}`];
  if (state === 'lost') tip.push(md(LOST_EXPLAINED), 'Restore puts it back from the backup.');
  else {
    tip.push(
      `Size: ${md(formatBytes(s.size))} in ${plural(s.files.length, 'file')} (${md(s.layout)} layout)`,
      `Files: ${s.files.map((f) => `${md(f.name)} ${md(formatBytes(f.size))}`).join(', ')}`,
    );
  }
  tip.push(`Backup: ${md(s.backup.state)}${s.backup.target ? ` to ${md(s.backup.target)}` : ''}`);
  if (s.backup.targets?.length) tip.push(`Copies: ${copies} on ${s.backup.targets.map(md).join(', ')}`);
  if (s.backup.at) tip.push(`Backed up: ${md(s.backup.at)} (${md(timeAgo(s.backup.at, now))})`);
  if (s.backup.error) tip.push(`Backup error: ${md(s.backup.error)}`);
  if (!s.hasInfoFile) tip.push('No info_dir entry: Druid will not load it at start');
  const words = ['segment', state];
  if (s.backup.state === 'backedUp' || s.backup.at || copies > 0) words.push('hasBackup');
  return {
    id: rowId('n', n.url, s.dataSource, s.interval, s.id),
    kind: 'segment',
    label: s.id,
    description: parts.join(' · '),
    tooltip: tip.join('  \n'),
    icon: { icon: look.icon, color: look.color },
    contextValue: words.join(' '),
    collapsible: 'none',
    ref: { node: n.url, dataSource: s.dataSource, interval: s.interval, segmentId: s.id },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Backups view: target → data source → interval → stored segment

function storedSummary(items: Iterable<StoredSegment>): { segments: number; bytes: number; conflicts: number } {
  let segments = 0;
  let bytes = 0;
  let conflicts = 0;
  for (const s of items) {
    segments++;
    bytes += s.size;
    if (s.conflicts.length) conflicts++;
  }
  return { segments, bytes, conflicts };
}

function storedDescription(sum: { segments: number; bytes: number; conflicts: number }): string {
  return `${plural(sum.segments, 'segment')}, ${formatBytes(sum.bytes)}${sum.conflicts ? ` · ${plural(sum.conflicts, 'conflict')}` : ''}`;
}

/** Which configured nodes the Backups view lists: those with the target role, and those it cannot tell. */
export function isTargetView(n: NodeView): boolean {
  return !n.info || n.info.roles.includes('target');
}

export function targetRow(n: NodeView): Row {
  let description: string;
  let icon: RowIcon = { icon: n.via ? 'cloud' : 'archive' };
  if (n.error) {
    description = n.error.code === 'unauthorized' ? 'token rejected' : 'unreachable';
    icon = { icon: 'error', color: 'charts.red' };
  } else if (n.stored) {
    const sum = storedSummary(n.stored.values());
    description = storedDescription(sum);
    if (sum.conflicts) icon = { ...icon, color: 'charts.yellow' };
  } else if (n.info?.store) {
    description = `${plural(n.info.store.segments, 'segment')}, ${formatBytes(n.info.store.bytes)}`;
  } else {
    description = n.via ? 'bucket' : n.info ? '' : 'connecting…';
  }
  return {
    id: rowId('b', n.url),
    kind: 'target',
    label: nodeLabel(n),
    description,
    tooltip: nodeTooltip(n),
    icon,
    contextValue: nodeContext(n, 'target'),
    collapsible: 'expanded',
    ref: { node: n.url },
  };
}

export function targetChildren(n: NodeView & SnapshotsView, paging: Paging): Row[] {
  const parent = rowId('b', n.url);
  const ref = { node: n.url };
  if (n.error) return problemRows(parent, n, n.error);
  if (n.storedError) return problemRows(parent, n, n.storedError);
  const index = n.stored;
  if (!index) return [];
  // The snapshots come first, as one group: a target with thousands of data sources still shows them at the top.
  const snapshots = hasSnapshots(n) ? [snapshotsGroupRow(n)] : [];
  if (index.size === 0) return [...snapshots, message(rowId(parent, 'empty'), ref, 'No backups in this store yet', { icon: 'info' })];
  return [...snapshots, ...page(parent, ref, index.dataSources(), paging, (ds) => storedDataSourceRow(n, ds))];
}

export function storedDataSourceRow(n: NodeView, dataSource: string): Row {
  const sum = storedSummary(n.stored?.itemsOf(dataSource) ?? []);
  return {
    id: rowId('b', n.url, dataSource),
    kind: 'storedDataSource',
    label: dataSource,
    description: storedDescription(sum),
    icon: { icon: 'database', color: sum.conflicts ? 'charts.yellow' : undefined },
    contextValue: 'storedDataSource',
    collapsible: 'collapsed',
    ref: { node: n.url, dataSource },
  };
}

export function storedDataSourceChildren(n: NodeView, dataSource: string, paging: Paging): Row[] {
  const ref = { node: n.url, dataSource };
  return page(rowId('b', n.url, dataSource), ref, n.stored?.intervals(dataSource) ?? [], paging, (iv) => storedIntervalRow(n, dataSource, iv));
}

export function storedIntervalRow(n: NodeView, dataSource: string, interval: string): Row {
  const sum = storedSummary(n.stored?.itemsOf(dataSource, interval) ?? []);
  return {
    id: rowId('b', n.url, dataSource, interval),
    kind: 'storedInterval',
    label: intervalLabel(interval),
    description: storedDescription(sum),
    tooltip: `**${md(dataSource)}** ${md(interval)}  \n${md(storedDescription(sum))}`,
    icon: { icon: 'calendar', color: sum.conflicts ? 'charts.yellow' : undefined },
    contextValue: 'storedInterval',
    collapsible: 'collapsed',
    ref: { node: n.url, dataSource, interval },
  };
}

export function storedIntervalChildren(n: NodeView, dataSource: string, interval: string, paging: Paging, now: number): Row[] {
  const ref = { node: n.url, dataSource, interval };
  return page(rowId('b', n.url, dataSource, interval), ref, n.stored?.segments(dataSource, interval) ?? [], paging, (s) => storedSegmentRow(n, s, now));
}

export function storedSegmentRow(n: NodeView, s: StoredSegment, now: number): Row {
  const conflict = s.conflicts.length > 0;
  const parts = [formatBytes(s.size), timeAgo(s.updatedAt, now), s.sources.length === 1 ? `from ${s.sources[0]}` : `from ${s.sources.length} nodes`];
  if (conflict) parts.unshift('⚠ replicas differ');
  const tip = [
    `**${md(s.segmentId)}**`,
    '',
    `Size: ${md(formatBytes(s.size))} in ${plural(s.fileCount, 'file')}`,
    `Digest: ${md(s.digest)}`,
    `Sources: ${s.sources.map(md).join(', ') || 'none'}`,
    `Stored: ${md(s.createdAt)}, updated ${md(s.updatedAt)} (${md(timeAgo(s.updatedAt, now))})`,
  ];
  if (conflict) tip.push(`**Replicas that differ from the stored copy:** ${s.conflicts.map(md).join(', ')}`);
  return {
    id: rowId('b', n.url, s.dataSource, s.interval, s.segmentId),
    kind: 'storedSegment',
    label: s.segmentId,
    description: parts.filter(Boolean).join(' · '),
    tooltip: tip.join('  \n'),
    icon: conflict ? { icon: 'warning', color: 'charts.yellow' } : { icon: 'package' },
    contextValue: conflict ? 'storedSegment conflict' : 'storedSegment',
    collapsible: 'none',
    ref: { node: n.url, dataSource: s.dataSource, interval: s.interval, segmentId: s.segmentId },
  };
}

/** A source's target that is not among the configured nodes: offered for adding, since the view needs its token. */
export function unconfiguredTargetRow(url: string, from: string): Row {
  return message(
    rowId('b', 'unconfigured', url),
    { node: url },
    url,
    { icon: 'add' },
    {
      description: `target of ${from}: add it to see its backups`,
      command: { command: Command.AddNode, title: 'Add Node', args: [url] },
    },
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Jobs view: running and recent jobs, per node when there are several

const JOB_LOOKS: Record<Job['state'], RowIcon> = {
  queued: { icon: 'clock', color: 'charts.yellow' },
  running: { icon: 'sync~spin', color: 'charts.blue' },
  succeeded: { icon: 'pass', color: 'charts.green' },
  failed: { icon: 'error', color: 'charts.red' },
  cancelled: { icon: 'circle-slash' },
};

export function isJobActive(j: Pick<Job, 'state'>): boolean {
  return j.state === 'queued' || j.state === 'running';
}

/** What a job acts on, in a few words: "wikipedia 2024-01-01/2024-01-02", "3 segments", "everything". */
export function jobScope(j: Job): string {
  const r = j.request as { dataSource?: unknown; interval?: unknown; segmentIds?: unknown; truncated?: { segmentIds?: unknown } };
  const parts: string[] = [];
  if (typeof r.dataSource === 'string') parts.push(r.dataSource);
  if (typeof r.interval === 'string') parts.push(intervalLabel(r.interval));
  if (Array.isArray(r.segmentIds)) {
    // The sidecar keeps the first ids of a long list and its full length in `truncated`.
    const count = typeof r.truncated?.segmentIds === 'number' && r.truncated.segmentIds > 0 ? r.truncated.segmentIds : r.segmentIds.length;
    parts.push(count === 1 && r.segmentIds.length === 1 ? String(r.segmentIds[0]) : plural(count, 'segment'));
  }
  return parts.join(' ') || (j.type === 'verify' ? 'whole store' : 'all segments');
}

/** "42% · 3/7 segments · 1.2 MiB/2.4 MiB" */
export function jobProgress(j: Job): string {
  const p = j.progress;
  const done = p.segmentsDone + p.segmentsSkipped + p.segmentsFailed;
  const pct = p.bytesTotal > 0 ? Math.floor((100 * p.bytesDone) / p.bytesTotal) : p.segmentsTotal > 0 ? Math.floor((100 * done) / p.segmentsTotal) : 0;
  const parts = [`${pct}%`, `${done}/${plural(p.segmentsTotal, 'segment')}`];
  if (p.bytesTotal > 0) parts.push(`${formatBytes(p.bytesDone)}/${formatBytes(p.bytesTotal)}`);
  return parts.join(' · ');
}

export function jobRow(n: NodeView, j: Job, now: number): Row {
  let description: string;
  if (isJobActive(j)) {
    description = `${j.state} ${jobProgress(j)}`;
  } else {
    const p = j.progress;
    const counts = [`${p.segmentsDone} done`];
    if (p.segmentsSkipped) counts.push(`${p.segmentsSkipped} skipped`);
    if (p.segmentsFailed) counts.push(`${p.segmentsFailed} failed`);
    description = `${j.state} · ${counts.join(', ')} · ${timeAgo(j.finishedAt ?? j.createdAt, now)}`;
  }
  const tip = [
    `**${md(j.type)} job ${md(j.id)}** on ${md(nodeLabel(n))}`,
    '',
    `State: ${md(j.state)}`,
    `Scope: ${md(jobScope(j))}`,
    ...(j.target ? [`Target: ${md(j.target)}`] : []),
    `Progress: ${md(jobProgress(j))}`,
    ...(j.progress.current ? [`Now: ${md(j.progress.current)}`] : []),
    `Created: ${md(j.createdAt)}`,
    ...(j.finishedAt ? [`Finished: ${md(j.finishedAt)}`] : []),
    ...j.errors.slice(0, 5).map((e) => `Error: ${md(e.segmentId ? `${e.segmentId}: ${e.message}` : e.message)}`),
  ];
  return {
    id: rowId('j', n.url, j.id),
    kind: 'job',
    label: `${j.type} ${jobScope(j)}`,
    description,
    tooltip: tip.join('  \n'),
    icon: JOB_LOOKS[j.state],
    contextValue: isJobActive(j) ? 'job active' : 'job',
    collapsible: j.errors.length ? 'collapsed' : 'none',
    ref: { node: n.url, jobId: j.id },
  };
}

export function jobChildren(n: NodeView, j: Job): Row[] {
  return j.errors.map((e, i) =>
    message(
      rowId('j', n.url, j.id, String(i)),
      { node: n.url, jobId: j.id, segmentId: e.segmentId },
      e.segmentId ? `${e.segmentId}: ${e.message}` : e.message,
      {
        icon: 'error',
        color: 'charts.red',
      },
    ),
  );
}

/** The jobs of a node to show: every active one, then the most recent finished ones up to `limit`. */
export function visibleJobs(jobs: readonly Job[], limit: number): Job[] {
  const newestFirst = [...jobs].sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
  const active = newestFirst.filter(isJobActive);
  const done = newestFirst.filter((j) => !isJobActive(j)).slice(0, Math.max(0, limit - active.length));
  return [...active, ...done];
}

export function jobNodeRow(n: NodeView): Row {
  const active = (n.jobs ?? []).filter(isJobActive).length;
  return {
    id: rowId('j', n.url),
    kind: 'jobNode',
    label: nodeLabel(n),
    description: n.error || n.jobsError ? 'unreachable' : active ? `${active} running` : '',
    icon: n.error || n.jobsError ? { icon: 'error', color: 'charts.red' } : { icon: 'server' },
    contextValue: 'jobNode',
    collapsible: 'expanded',
    ref: { node: n.url },
  };
}

export function jobNodeChildren(n: NodeView, limit: number, now: number): Row[] {
  const parent = rowId('j', n.url);
  if (n.error) return problemRows(parent, n, n.error);
  if (n.jobsError) return problemRows(parent, n, n.jobsError);
  const jobs = visibleJobs(n.jobs ?? [], limit);
  if (jobs.length === 0) return [message(rowId(parent, 'empty'), { node: n.url }, 'No jobs yet', { icon: 'info' })];
  return jobs.map((j) => jobRow(n, j, now));
}
