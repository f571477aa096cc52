/** Selects the row that stands for a segment, an interval or a job in its view: from the status bar and the timeline. */
import type { Row, RowRef } from '../tree/rows.js';
import type { ExtensionState } from './context.js';

/** The fields of a ref each level of a view adds, top first. */
const LEVELS: Record<'nodes' | 'backups' | 'jobs', ReadonlyArray<keyof RowRef>> = {
  nodes: ['dataSource', 'interval', 'segmentId'],
  backups: ['dataSource', 'interval', 'segmentId'],
  jobs: ['jobId'],
};

/** Reveals and selects the row for `ref` (or its nearest shown ancestor when paging hides it). */
export async function revealRow(
  ext: ExtensionState,
  view: 'nodes' | 'backups' | 'jobs',
  ref: RowRef,
  o: { focus: boolean } = { focus: true },
): Promise<Row | undefined> {
  const row = await ext.providers[view].find(ref, LEVELS[view]);
  if (row) await ext.views[view].reveal(row, { select: true, focus: o.focus, expand: false });
  return row;
}
