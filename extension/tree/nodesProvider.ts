/** The Nodes view: each configured node → data source → interval → segment of its cache, with backup state. */
import type { Change, Cluster } from '../cluster.js';
import { RowProvider } from './provider.js';
import { dataSourceChildren, dataSourceRow, intervalChildren, intervalRow, nodeChildren, nodeRow, type Row, rowId, segmentRow } from './rows.js';

export class NodesProvider extends RowProvider {
  constructor(cluster: Cluster, pageSize: () => number) {
    super(cluster, 'nodes', pageSize);
  }

  protected async children(row: Row | undefined): Promise<Row[]> {
    if (!row) {
      const nodes = this.cluster.list();
      // Identity first, so each node's row has its name and roles; one node's failure is its own error row.
      await Promise.all(nodes.map((n) => this.cluster.ensureInfo(n)));
      // Targets without a cache of their own are in the Backups view.
      return nodes.filter((n) => !n.info || n.info.roles.includes('source')).map(nodeRow);
    }
    const n = this.cluster.get(row.ref.node);
    if (!n) return [];
    const { dataSource, interval } = row.ref;
    switch (row.kind) {
      case 'node':
        await this.cluster.ensureSegments(n);
        return nodeChildren(n, this.paging);
      case 'dataSource':
        return dataSourceChildren(n, dataSource!, this.paging);
      case 'interval':
        return intervalChildren(n, dataSource!, interval!, this.paging, Date.now());
      default:
        return [];
    }
  }

  protected fresh(row: Row): Row | undefined {
    const n = this.cluster.get(row.ref.node);
    if (!n) return undefined;
    const { dataSource, interval, segmentId } = row.ref;
    switch (row.kind) {
      case 'node':
        return nodeRow(n);
      case 'dataSource':
        return n.segments?.intervals(dataSource!).length ? dataSourceRow(n, dataSource!) : undefined;
      case 'interval':
        return n.segments?.segments(dataSource!, interval!).length ? intervalRow(n, dataSource!, interval!) : undefined;
      case 'segment': {
        const s = n.segments?.get(segmentId!);
        return s ? segmentRow(n, s, Date.now()) : undefined;
      }
      default:
        return undefined;
    }
  }

  protected chain(c: Change): string[] {
    const ids = [rowId('n', c.node)];
    if (c.dataSource !== undefined) ids.push(rowId('n', c.node, c.dataSource));
    if (c.dataSource !== undefined && c.interval !== undefined) ids.push(rowId('n', c.node, c.dataSource, c.interval));
    if (c.dataSource !== undefined && c.interval !== undefined && c.segmentId !== undefined)
      ids.push(rowId('n', c.node, c.dataSource, c.interval, c.segmentId));
    return ids;
  }
}
