/**
 * The state a segment shows in the Nodes view, from the two things the sidecar reports about it: its state in
 * the local cache and its backup state. What is wrong locally wins over the backup state, since it is what an
 * operator must act on first. Pure: no `vscode`.
 */
import type { BackupState, SegmentInfo, SegmentLocalState } from '../../sidecar/api.js';

export type DisplayState = 'lost' | 'damaged' | 'failed' | 'restoring' | 'downloading' | 'pending' | 'notBackedUp' | 'backedUp';

/** Worst first: a group shows the worst state of its segments. */
export const DISPLAY_STATES: readonly DisplayState[] = ['lost', 'damaged', 'failed', 'restoring', 'downloading', 'pending', 'notBackedUp', 'backedUp'];

export interface Look {
  /** A codicon id (`~spin` makes it turn). */
  icon: string;
  /** A theme color id. */
  color?: string;
  /** Words for descriptions and tooltips. */
  label: string;
}

export const LOOKS: Record<DisplayState, Look> = {
  lost: { icon: 'debug-disconnect', color: 'charts.red', label: 'lost' },
  damaged: { icon: 'warning', color: 'charts.red', label: 'damaged' },
  failed: { icon: 'error', color: 'charts.red', label: 'backup failed' },
  restoring: { icon: 'sync~spin', color: 'charts.blue', label: 'restoring' },
  downloading: { icon: 'cloud-download', color: 'charts.blue', label: 'downloading' },
  pending: { icon: 'clock', color: 'charts.yellow', label: 'pending' },
  notBackedUp: { icon: 'circle-large-outline', label: 'not backed up' },
  backedUp: { icon: 'pass', color: 'charts.green', label: 'backed up' },
};

const LOCAL_DAMAGE: Partial<Record<SegmentLocalState, string>> = {
  damaged: 'files do not match their digests',
  incomplete: 'incomplete (no version.bin)',
};

/**
 * Lost: Druid's info_dir entry says the node serves the segment while its files are gone from the cache (what
 * automatic restore repairs). A Druid drop or a balancer move deletes the info_dir entry before the files, so such a
 * segment is never `missing`: the sidecar removes it from its listing and it leaves the view.
 */
export const LOST_EXPLAINED =
  "Lost: Druid's info_dir entry still says this node serves the segment, but its files are gone from the cache. " +
  'A Druid drop or a balancer move removes the info_dir entry first, so such a segment is not lost: it simply leaves this view.';

export function displayState(s: Pick<SegmentInfo, 'state' | 'backup'>): DisplayState {
  if (s.state === 'missing') return 'lost';
  if (s.state === 'restoring') return 'restoring';
  if (s.state === 'downloading') return 'downloading';
  if (LOCAL_DAMAGE[s.state]) return 'damaged';
  const byBackup: Record<BackupState, DisplayState> = { backedUp: 'backedUp', pending: 'pending', failed: 'failed', none: 'notBackedUp' };
  return byBackup[s.backup.state] ?? 'notBackedUp';
}

/** Copies of a segment on its targets: the count the sidecar reports, else 1 for a single target's backup. */
export function copiesOf(s: Pick<SegmentInfo, 'backup'>): number {
  if (typeof s.backup.copies === 'number') return s.backup.copies;
  return s.backup.state === 'backedUp' ? 1 : 0;
}

/** Why a damaged segment is damaged, in words. */
export function damageReason(s: Pick<SegmentInfo, 'state'>): string | undefined {
  return LOCAL_DAMAGE[s.state];
}

export interface Summary {
  segments: number;
  bytes: number;
  byState: Record<DisplayState, number>;
  /** The worst state present; `backedUp` for an empty group. */
  worst: DisplayState;
}

export function summarize(items: Iterable<SegmentInfo>): Summary {
  const byState = Object.fromEntries(DISPLAY_STATES.map((s) => [s, 0])) as Record<DisplayState, number>;
  let segments = 0;
  let bytes = 0;
  for (const s of items) {
    segments++;
    bytes += s.size;
    byState[displayState(s)]++;
  }
  const worst = DISPLAY_STATES.find((s) => byState[s] > 0) ?? 'backedUp';
  return { segments, bytes, byState, worst };
}

/** "48 backed up, 2 pending": the states present, worst first. */
export function stateCounts(sum: Summary): string {
  return DISPLAY_STATES.filter((s) => sum.byState[s] > 0)
    .map((s) => `${sum.byState[s].toLocaleString('en-US')} ${LOOKS[s].label}`)
    .join(', ');
}
