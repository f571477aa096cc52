/** The Backups view: each target among the nodes → its snapshots, and data source → interval → stored segment, conflicts marked. */
import type { Change, Cluster } from '../cluster.js';
import { RowProvider } from './provider.js';
import { hasSnapshots, snapshotChildren, snapshotRow, snapshotsGroupRow, snapshotsOf } from './snapshots.js';
import {
  isTargetView,
  type Row,
  rowId,
  storedDataSourceChildren,
  storedDataSourceRow,
  storedIntervalRow,
  storedIntervalChildren,
  storedSegmentRow,
  targetChildren,
  targetRow,
  unconfiguredTargetRow,
  nodeLabel,
} from './rows.js';

export class BackupsProvider extends RowProvider {
  constructor(cluster: Cluster, pageSize: () => number) {
    super(cluster, 'backups', pageSize);
  }

  protected async children(row: Row | undefined): Promise<Row[]> {
    if (!row) {
      const nodes = this.cluster.list();
      await Promise.all(nodes.map((n) => this.cluster.ensureInfo(n)));
      const rows = nodes.filter(isTargetView).map(targetRow);
      // Targets the sources send to but that are not configured here: offered for adding.
      const known = new Set(nodes.map((n) => n.url));
      const offered = new Set<string>();
      for (const n of nodes) {
        const t = n.info?.target;
        if (t && /^https?:/.test(t) && !known.has(t.replace(/\/+$/, '')) && !offered.has(t)) {
          offered.add(t);
          rows.push(unconfiguredTargetRow(t, nodeLabel(n)));
        }
      }
      return rows;
    }
    const n = this.cluster.get(row.ref.node);
    if (!n) return [];
    const { dataSource, interval } = row.ref;
    switch (row.kind) {
      case 'target':
        await Promise.all([this.cluster.ensureStored(n), this.cluster.ensureSnapshots(n)]);
        return targetChildren(n, this.paging);
      case 'snapshots':
        await this.cluster.ensureSnapshots(n);
        return snapshotChildren(n, this.paging, Date.now());
      case 'storedDataSource':
        return storedDataSourceChildren(n, dataSource!, this.paging);
      case 'storedInterval':
        return storedIntervalChildren(n, dataSource!, interval!, this.paging, Date.now());
      default:
        return [];
    }
  }

  protected fresh(row: Row): Row | undefined {
    const n = this.cluster.get(row.ref.node);
    if (!n) return undefined;
    switch (row.kind) {
      case 'target':
        return targetRow(n);
      case 'storedSegment': {
        const s = n.stored?.get(row.ref.segmentId!);
        return s ? storedSegmentRow(n, s, Date.now()) : undefined;
      }
      case 'snapshots':
        return hasSnapshots(n) ? snapshotsGroupRow(n) : undefined;
      case 'snapshot': {
        const s = snapshotsOf(n)?.find((x) => x.id === row.ref.snapshotId);
        return s ? snapshotRow(n, s, Date.now()) : undefined;
      }
      case 'storedDataSource':
        return n.stored?.intervals(row.ref.dataSource!).length ? storedDataSourceRow(n, row.ref.dataSource!) : undefined;
      case 'storedInterval':
        return n.stored?.segments(row.ref.dataSource!, row.ref.interval!).length ? storedIntervalRow(n, row.ref.dataSource!, row.ref.interval!) : undefined;
      default:
        return undefined;
    }
  }

  protected chain(c: Change): string[] {
    const ids = [rowId('b', c.node)];
    if (c.dataSource !== undefined) ids.push(rowId('b', c.node, c.dataSource));
    if (c.dataSource !== undefined && c.interval !== undefined) ids.push(rowId('b', c.node, c.dataSource, c.interval));
    if (c.dataSource !== undefined && c.interval !== undefined && c.segmentId !== undefined)
      ids.push(rowId('b', c.node, c.dataSource, c.interval, c.segmentId));
    return ids;
  }
}
