/**
 * The status bar's model: is the whole cluster protected right now? From what the views already hold (each node's
 * segments and jobs, kept current by its events) it counts the segments served, how many have the copies wanted,
 * the under-replicated, the lost, the failed backups and the oldest pending backup, plus failed jobs and unreachable
 * nodes, and lists what needs attention with the row that shows it. Pure, no `vscode`: statusBar.ts shows it.
 */
import type { Job, SegmentInfo } from '../../sidecar/api.js';
import { Command } from '../commands/ids.js';
import { formatDuration, plural } from '../tree/format.js';
import type { NodeView, RowRef } from '../tree/rows.js';
import { nodeLabel } from '../tree/rows.js';
import { copiesOf, displayState } from '../tree/state.js';

export type Need = 'unreachable' | 'lost' | 'failedBackup' | 'failedJob' | 'underReplicated' | 'pending';

/** One thing an operator should look at, and the row of a view that shows it. */
export interface Attention {
  need: Need;
  label: string;
  detail: string;
  view: 'nodes' | 'jobs';
  ref: RowRef;
}

export interface ClusterStatus {
  nodes: number;
  /** Nodes whose segments are loaded (a node still loading or unreachable is not counted below). */
  sources: number;
  /** Segments Druid says the nodes serve: those with an info_dir entry, lost ones included. */
  served: number;
  /** Served, present and kept on at least the copies wanted. */
  protected: number;
  underReplicated: number;
  lost: number;
  failedBackups: number;
  pending: number;
  /** How long the oldest pending backup has been pending (as far as seen), in ms. */
  oldestPendingMs?: number;
  failedJobs: number;
  unreachable: number;
  /** Most urgent first. */
  attention: Attention[];
  level: 'ok' | 'warning' | 'error';
}

export interface StatusInputs {
  /** Copies each segment of a node should have (`GET /data/v1/targets` → copies); 1 when unknown. */
  wantedCopies(node: string): number;
  /** When a segment was first seen pending (ms); undefined when not known. */
  pendingSince(node: string, segmentId: string): number | undefined;
  now: number;
  /** A pending backup older than this needs attention. */
  lagWarnMs: number;
}

const URGENCY: readonly Need[] = ['unreachable', 'lost', 'failedBackup', 'failedJob', 'underReplicated', 'pending'];

function segmentRef(node: string, s: SegmentInfo): RowRef {
  return { node, dataSource: s.dataSource, interval: s.interval, segmentId: s.id };
}

export function clusterStatus(nodes: readonly NodeView[], inputs: StatusInputs): ClusterStatus {
  const st: ClusterStatus = {
    nodes: nodes.length,
    sources: 0,
    served: 0,
    protected: 0,
    underReplicated: 0,
    lost: 0,
    failedBackups: 0,
    pending: 0,
    failedJobs: 0,
    unreachable: 0,
    attention: [],
    level: 'ok',
  };
  for (const n of nodes) {
    const name = nodeLabel(n);
    if (n.error || n.segmentsError) {
      st.unreachable++;
      st.attention.push({ need: 'unreachable', label: name, detail: (n.error ?? n.segmentsError)!.message, view: 'nodes', ref: { node: n.url } });
    }
    if (n.segments) {
      st.sources++;
      const wanted = Math.max(1, inputs.wantedCopies(n.url));
      for (const s of n.segments.values()) {
        if (!s.hasInfoFile) continue;
        st.served++;
        const state = displayState(s);
        const copies = copiesOf(s);
        if (state === 'lost') {
          st.lost++;
          st.attention.push({
            need: 'lost',
            label: s.id,
            detail: `lost from ${name}: files gone, ${copies ? `${plural(copies, 'copy', 'copies')} in the backup` : 'no copy in the backup'}`,
            view: 'nodes',
            ref: segmentRef(n.url, s),
          });
          continue;
        }
        if (s.backup.state === 'failed') {
          st.failedBackups++;
          st.attention.push({
            need: 'failedBackup',
            label: s.id,
            detail: `backup failed on ${name}: ${s.backup.error ?? 'no reason given'}`,
            view: 'nodes',
            ref: segmentRef(n.url, s),
          });
        }
        if (s.backup.state === 'pending') {
          st.pending++;
          const since = inputs.pendingSince(n.url, s.id);
          const lag = since === undefined ? 0 : Math.max(0, inputs.now - since);
          if (st.oldestPendingMs === undefined || lag > st.oldestPendingMs) st.oldestPendingMs = lag;
          if (lag >= inputs.lagWarnMs)
            st.attention.push({
              need: 'pending',
              label: s.id,
              detail: `pending for ${formatDuration(lag)} on ${name}`,
              view: 'nodes',
              ref: segmentRef(n.url, s),
            });
          continue;
        }
        if (copies >= wanted) st.protected++;
        else if (s.backup.state !== 'failed') {
          st.underReplicated++;
          st.attention.push({
            need: 'underReplicated',
            label: s.id,
            detail: `${copies} of ${wanted} copies on ${name}`,
            view: 'nodes',
            ref: segmentRef(n.url, s),
          });
        }
      }
    }
    for (const j of n.jobs ?? []) if (j.state === 'failed') addFailedJob(st, n, name, j);
  }
  st.attention.sort((a, b) => URGENCY.indexOf(a.need) - URGENCY.indexOf(b.need));
  if (st.unreachable || st.lost || st.failedBackups || st.failedJobs) st.level = 'error';
  else if (st.underReplicated || st.attention.length) st.level = 'warning';
  return st;
}

function addFailedJob(st: ClusterStatus, n: NodeView, name: string, j: Job): void {
  st.failedJobs++;
  const first = j.errors[0];
  st.attention.push({
    need: 'failedJob',
    label: `${j.type} job ${j.id}`,
    detail: `failed on ${name}${first ? `: ${first.segmentId ? `${first.segmentId}: ` : ''}${first.message}` : ''}`,
    view: 'jobs',
    ref: { node: n.url, jobId: j.id },
  });
}

/** The status bar's text, with codicons: what is fine in a word, what is not by count. */
export function statusText(st: ClusterStatus): string {
  if (st.nodes === 0) return '$(database) Druid Backup';
  if (st.sources === 0 && !st.unreachable) return '$(sync~spin) Druid Backup';
  const parts = [`$(database) ${st.protected.toLocaleString('en-US')}/${st.served.toLocaleString('en-US')}`];
  if (st.lost) parts.push(`$(debug-disconnect) ${st.lost.toLocaleString('en-US')} lost`);
  if (st.unreachable) parts.push(`$(error) ${plural(st.unreachable, 'node')} down`);
  if (st.failedBackups) parts.push(`$(error) ${st.failedBackups.toLocaleString('en-US')} failed`);
  if (st.underReplicated) parts.push(`$(warning) ${st.underReplicated.toLocaleString('en-US')} under-replicated`);
  if (st.pending) parts.push(`$(clock) ${st.pending.toLocaleString('en-US')}${st.oldestPendingMs ? ` (${formatDuration(st.oldestPendingMs)})` : ''}`);
  if (st.failedJobs) parts.push(`$(close) ${plural(st.failedJobs, 'failed job')}`);
  return parts.join('  ');
}

/** Markdown for the status bar's hover. */
export function statusTooltip(st: ClusterStatus): string {
  const lines = [
    '**Druid Backup**',
    '',
    `${plural(st.nodes, 'node')}, ${plural(st.sources, 'segment cache')} read${st.unreachable ? `, ${st.unreachable} unreachable` : ''}`,
    `Segments served (info_dir entries): ${st.served.toLocaleString('en-US')}`,
    `With the copies wanted: ${st.protected.toLocaleString('en-US')}`,
    `Under-replicated: ${st.underReplicated.toLocaleString('en-US')}`,
    `Lost (files gone, info_dir entry kept): ${st.lost.toLocaleString('en-US')}`,
    `Backups failed: ${st.failedBackups.toLocaleString('en-US')}`,
    `Pending: ${st.pending.toLocaleString('en-US')}${st.oldestPendingMs !== undefined && st.pending ? `, the oldest for at least ${formatDuration(st.oldestPendingMs)}` : ''}`,
    `Failed jobs: ${st.failedJobs.toLocaleString('en-US')}`,
    '',
    st.attention.length ? `Click for the ${plural(st.attention.length, 'row')} that need attention.` : 'Nothing needs attention.',
  ];
  return lines.join('  \n');
}

/** The command the item runs, and the accessible name screen readers say. */
export const STATUS_COMMAND = Command.ShowStatus;

export function statusAccessibleName(st: ClusterStatus): string {
  return `Druid Backup: ${st.protected} of ${st.served} segments served have the copies wanted, ${st.underReplicated} under-replicated, ${st.lost} lost, ${st.pending} pending, ${st.failedJobs} failed jobs`;
}
