/**
 * The snapshots of a target in the Backups view (issue 21): a "Snapshots" group under the target, one row per
 * snapshot (time, data sources, complete or not, pinned), and the words of a prune's dry-run plan shown before
 * it is confirmed. Pure, no `vscode`: the provider and the commands use it, the unit tests check it.
 */
import type { PruneResult } from '../../sidecar/snapshot/prune.js';
import type { SnapshotOutlook } from '../../sidecar/snapshot/retention.js';
import type { SnapshotSummary } from '../../sidecar/snapshot/service.js';
import { Command } from '../commands/ids.js';
import { formatBytes, formatDuration, md, plural, timeAgo } from './format.js';
import type { NodeProblem, NodeView, Paging, Row } from './rows.js';
import { page, rowId } from './rows.js';

/** What the views know of one target's snapshots. */
export interface SnapshotsView {
  snapshots?: SnapshotSummary[];
  snapshotsError?: NodeProblem;
}

/**
 * The snapshots that live in this target: a node answers for its own store and its targets, so a bucket read
 * through a node keeps only those that name the bucket among their targets.
 */
export function snapshotsOf(n: NodeView & SnapshotsView): SnapshotSummary[] | undefined {
  if (!n.snapshots) return undefined;
  return n.via ? n.snapshots.filter((s) => s.targets.includes(n.url)) : n.snapshots;
}

export function snapshotsGroupRow(n: NodeView & SnapshotsView): Row {
  const list = snapshotsOf(n);
  const pinned = list?.filter((s) => s.pinned).length ?? 0;
  return {
    id: rowId('b', n.url, '#snapshots'),
    kind: 'snapshots',
    label: 'Snapshots',
    description: n.snapshotsError
      ? n.snapshotsError.message
      : list
        ? `${plural(list.length, 'snapshot')}${pinned ? `, ${pinned} pinned` : ''}${list[0] ? ` · latest ${list[0].time}` : ''}`
        : undefined,
    icon: n.snapshotsError ? { icon: 'error', color: 'charts.red' } : { icon: 'history' },
    contextValue: 'snapshots',
    collapsible: 'collapsed',
    ref: { node: n.url },
  };
}

/** A time as the views show it: `2024-06-01 11:00 UTC`. */
const utc = (iso: string) => iso.replace('T', ' ').replace(/(:00)?\.\d+Z$|(:00)?Z$/, ' UTC');

/**
 * What retention does with a snapshot, in words: `short` for a row's description and a marker's label ("expires
 * ~2024-06-03 10:00 UTC", "pinned: kept", "next prune removes it"), `long` for a tooltip (the policy, the rules that
 * keep it, the cadence the time assumes). Undefined when the sidecar did not say (an older sidecar).
 */
export function expiryWords(s: Pick<SnapshotSummary, 'pinned' | 'retention'>, now: number): { short: string; long: string; soon: boolean } | undefined {
  const r = s.retention;
  if (!r) return undefined;
  const policy = `Retention (${r.policy})`;
  if (!r.keep) return { short: 'next prune removes it', long: `${policy} does not keep it: ${r.reasons.join('; ')}. The next prune removes it.`, soon: true };
  const why = r.reasons.join(', ');
  if (s.pinned || r.reasons.includes('pinned')) return { short: 'pinned: kept', long: `${policy}: pinned, kept whatever the rules say.`, soon: false };
  if (!r.until) {
    const forever = r.reasons.includes('no retention rule is set');
    return {
      short: forever ? 'kept (no retention rule)' : `kept: ${why}`,
      long: forever ? `${policy}: no rule is set, every snapshot is kept.` : `${policy} keeps it (${why}) until newer snapshots are taken.`,
      soon: false,
    };
  }
  const until = Date.parse(r.until);
  const left = until - now;
  const cadence = r.cadenceMs ? `, if snapshots go on every ${formatDuration(r.cadenceMs)}` : '';
  return {
    short: `expires ~${utc(r.until)}`,
    long: `${policy} keeps it (${why}) until about ${utc(r.until)}${left > 0 ? ` (in ${formatDuration(left)})` : ''}${cadence}; the prune after that removes it.`,
    soon: left < 24 * 3600_000,
  };
}

export function snapshotRow(n: NodeView, s: SnapshotSummary, now: number): Row {
  const sources = s.dataSources.map((d) => d.name);
  const shown = sources.length <= 3 ? sources.join(', ') : `${sources.slice(0, 3).join(', ')} +${sources.length - 3}`;
  const expiry = expiryWords(s, now);
  const tooltip = [
    `**Snapshot ${md(s.id)}**`,
    '',
    `Taken: ${md(s.time)} (${timeAgo(s.time, now)}) by ${md(s.node)}`,
    `Data sources: ${sources.length ? sources.map(md).join(', ') : 'none'}`,
    `${plural(s.segments, 'segment')}, ${md(formatBytes(s.bytes))}`,
    s.complete ? 'Complete: every used segment is backed up, it can be restored whole' : 'Incomplete: some used segments were not backed up when it was taken',
    expiry ? md(expiry.long) : s.pinned ? 'Pinned: retention never removes it' : 'Not pinned: retention (druid.backup.retention.*) may remove it at a prune',
    `In: ${s.targets.map(md).join(', ')}`,
  ].join('  \n');
  return {
    id: rowId('b', n.url, '#snapshots', s.id),
    kind: 'snapshot',
    label: s.time.replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC'),
    description: [shown || 'no data source', s.complete ? undefined : 'incomplete', expiry?.short ?? (s.pinned ? 'pinned' : undefined)]
      .filter(Boolean)
      .join(' · '),
    tooltip,
    icon: s.pinned ? { icon: 'pinned' } : s.complete ? { icon: 'pass', color: 'charts.green' } : { icon: 'warning', color: 'charts.yellow' },
    contextValue: `snapshot ${s.pinned ? 'pinned' : 'unpinned'} ${s.complete ? 'complete' : 'incomplete'}`,
    collapsible: 'none',
    ref: { node: n.url, snapshotId: s.id },
  };
}

/** The rows under a target's "Snapshots" group, newest first as the sidecar lists them, a page at a time. */
export function snapshotChildren(n: NodeView & SnapshotsView, paging: Paging, now: number): Row[] {
  const parentId = rowId('b', n.url, '#snapshots');
  const ref = { node: n.url };
  if (n.snapshotsError) {
    return [
      {
        id: rowId(parentId, 'error'),
        kind: 'message',
        label: n.snapshotsError.message,
        icon: { icon: 'error', color: 'charts.red' },
        collapsible: 'none',
        command: { command: Command.RefreshNode, title: 'Retry', args: [n.via ?? n.url] },
        ref,
      },
    ];
  }
  const list = snapshotsOf(n);
  if (!list) return [{ id: rowId(parentId, 'loading'), kind: 'message', label: 'Loading…', icon: { icon: 'loading~spin' }, collapsible: 'none', ref }];
  if (list.length === 0)
    return [{ id: rowId(parentId, 'none'), kind: 'message', label: 'No snapshot in this target', icon: { icon: 'info' }, collapsible: 'none', ref }];
  return page(parentId, ref, list, paging, (s) => snapshotRow(n, s, now));
}

/** The words of a prune's dry run: a one-line summary and the detail (what would go and why, what stays). */
export function prunePlanText(p: PruneResult, maxLines = 15): { summary: string; detail: string; removes: boolean } {
  const goSnapshots = p.snapshots.filter((s) => !s.keep);
  const removes = goSnapshots.length + p.removeCount + p.orphans.length + p.blobs.length > 0;
  const summary = removes
    ? `Prune ${p.target}: remove ${plural(goSnapshots.length, 'snapshot')} and ${plural(p.removeCount, 'segment')} (${formatBytes(p.bytes.prunable)})?`
    : `Nothing to prune in ${p.target}: retention keeps every snapshot and segment.`;
  const lines: string[] = [];
  for (const s of goSnapshots) lines.push(`snapshot ${s.id} (${s.time}) — ${s.reasons.join('; ') || 'no rule keeps it'}`);
  for (const s of p.remove) lines.push(`segment ${s.segmentId} (${formatBytes(s.bytes)}) — ${s.reason}`);
  const shown = lines.slice(0, maxLines);
  const k = p.kept;
  const detail = [
    `Policy: ${p.policy}`,
    `Stored ${formatBytes(p.bytes.stored)}: used by the latest snapshot ${formatBytes(p.bytes.usedByLatest)}, kept by retention ${formatBytes(p.bytes.keptByRetention)}, prunable ${formatBytes(p.bytes.prunable)}.`,
    `Kept: ${plural(p.snapshots.length - goSnapshots.length, 'snapshot')}; segments: ${k.byLatestSnapshot} in the latest snapshot, ${k.bySnapshots} in older kept snapshots, ${k.byNodes} held by nodes, ${k.byGracePeriod} in their grace period.`,
    ...(p.orphans.length ? [`${plural(p.orphans.length, 'unfinished segment directory', 'unfinished segment directories')} left by a killed prune.`] : []),
    ...(p.blobs.length ? [`${plural(p.blobs.length, 'snapshot blob')} no kept snapshot names.`] : []),
    ...(shown.length ? ['', ...shown] : []),
    ...(lines.length + p.removeCount - p.remove.length > shown.length ? [`…and ${lines.length + p.removeCount - p.remove.length - shown.length} more`] : []),
  ].join('\n');
  return { summary, detail, removes };
}

const SNAPSHOT_ID = /^\d{8}T\d{6}Z-[0-9a-f]{8}$/;
const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
const count = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0);

/**
 * `GET /data/v1/snapshots` as the views may use it: what a sidecar answers is input, so an entry without a valid
 * id, a readable time or its lists is dropped, and only the fields shown are kept.
 */
export function parseSnapshotList(body: unknown): SnapshotSummary[] {
  const list = (body as { snapshots?: unknown } | null)?.snapshots;
  if (!Array.isArray(list)) throw new Error('the sidecar answered no list of snapshots');
  const out: SnapshotSummary[] = [];
  for (const x of list as Array<Record<string, unknown>>) {
    if (!x || typeof x !== 'object' || typeof x.id !== 'string' || !SNAPSHOT_ID.test(x.id)) continue;
    if (typeof x.time !== 'string' || Number.isNaN(Date.parse(x.time)) || !isStrings(x.targets) || !Array.isArray(x.dataSources)) continue;
    const dataSources = (x.dataSources as Array<Record<string, unknown>>).filter((d) => d && typeof d.name === 'string');
    out.push({
      formatVersion: x.formatVersion as SnapshotSummary['formatVersion'],
      id: x.id,
      time: x.time,
      node: typeof x.node === 'string' ? x.node : '',
      dataSources: dataSources as unknown as SnapshotSummary['dataSources'],
      segments: count(x.segments),
      bytes: count(x.bytes),
      complete: x.complete === true,
      metadata: typeof x.metadata === 'string' ? x.metadata : '',
      pinned: x.pinned === true,
      targets: x.targets,
      ...(parseOutlook(x.retention) ?? {}),
    });
  }
  return out;
}

/** A snapshot's `retention` as the views may use it: anything not of its shape is left out. */
function parseOutlook(v: unknown): { retention: SnapshotOutlook } | undefined {
  const r = v as Record<string, unknown> | null | undefined;
  if (!r || typeof r !== 'object' || typeof r.keep !== 'boolean' || !isStrings(r.reasons) || typeof r.policy !== 'string') return undefined;
  const until = typeof r.until === 'string' && !Number.isNaN(Date.parse(r.until)) ? new Date(Date.parse(r.until)).toISOString() : undefined;
  const cadence = typeof r.cadenceMs === 'number' && Number.isFinite(r.cadenceMs) && r.cadenceMs > 0 ? r.cadenceMs : undefined;
  return {
    retention: {
      keep: r.keep,
      reasons: r.reasons.slice(0, 20).map((x) => x.slice(0, 200)),
      policy: r.policy.slice(0, 200),
      ...(until ? { until } : {}),
      ...(cadence ? { cadenceMs: cadence } : {}),
    },
  };
}

/** Whether the target shows a "Snapshots" group: it holds some, or reading them failed (which is shown). */
export function hasSnapshots(n: NodeView & SnapshotsView): boolean {
  return !!n.snapshotsError || (snapshotsOf(n)?.length ?? 0) > 0;
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const list = (v: unknown): Array<Record<string, unknown>> => (Array.isArray(v) ? v.filter((x) => x && typeof x === 'object') : []);

/** A prune job's result (the plan, with a dry run) as the prompt may show it: what is not in the plan's shape is dropped or 0. */
export function parsePrunePlan(result: unknown): PruneResult {
  const r = (result && typeof result === 'object' ? result : {}) as Record<string, unknown>;
  const kept = (r.kept ?? {}) as Record<string, unknown>;
  const bytes = (r.bytes ?? {}) as Record<string, unknown>;
  const removed = (r.removed ?? {}) as Record<string, unknown>;
  return {
    target: str(r.target),
    policy: str(r.policy),
    at: str(r.at),
    dryRun: r.dryRun === true,
    snapshots: list(r.snapshots).map((s) => ({
      id: str(s.id),
      time: str(s.time),
      keep: s.keep === true,
      reasons: isStrings(s.reasons) ? s.reasons : [],
      pinned: s.pinned === true,
      segments: count(s.segments),
      complete: s.complete === true,
    })),
    remove: list(r.remove).map((s) => ({ segmentId: str(s.segmentId), dataSource: str(s.dataSource), bytes: count(s.bytes), reason: str(s.reason) })),
    // A plan lists its first segments and counts them all (snapshot/prune.ts).
    removeCount: Math.max(count(r.removeCount), list(r.remove).length),
    kept: {
      byLatestSnapshot: count(kept.byLatestSnapshot),
      bySnapshots: count(kept.bySnapshots),
      byNodes: count(kept.byNodes),
      byGracePeriod: count(kept.byGracePeriod),
    },
    orphans: isStrings(r.orphans) ? r.orphans : [],
    blobs: isStrings(r.blobs) ? r.blobs : [],
    bytes: {
      stored: count(bytes.stored),
      usedByLatest: count(bytes.usedByLatest),
      keptByRetention: count(bytes.keptByRetention),
      prunable: count(bytes.prunable),
    },
    removed: {
      snapshots: count(removed.snapshots),
      segments: count(removed.segments),
      bytes: count(removed.bytes),
      orphans: count(removed.orphans),
      blobs: count(removed.blobs),
    },
    ...(typeof r.deferred === 'string' ? { deferred: r.deferred } : {}),
  };
}
