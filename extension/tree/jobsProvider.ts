/** The Jobs view: running and recent backup, restore and verify jobs with their progress, per node. */
import type { Change, Cluster } from '../cluster.js';
import { RowProvider } from './provider.js';
import { jobChildren, jobNodeChildren, jobNodeRow, jobRow, type Row, rowId } from './rows.js';

export class JobsProvider extends RowProvider {
  constructor(
    cluster: Cluster,
    pageSize: () => number,
    private readonly recentJobs: () => number,
  ) {
    super(cluster, 'jobs', pageSize);
  }

  protected async children(row: Row | undefined): Promise<Row[]> {
    if (!row) {
      // A bucket's verify jobs run on the node that answers for it, and show there.
      const nodes = this.cluster.list().filter((n) => !n.via);
      await Promise.all(nodes.map((n) => this.cluster.ensureJobs(n)));
      return nodes.map(jobNodeRow);
    }
    const n = this.cluster.get(row.ref.node);
    if (!n) return [];
    if (row.kind === 'jobNode') {
      await this.cluster.ensureJobs(n);
      return jobNodeChildren(n, this.recentJobs(), Date.now());
    }
    if (row.kind === 'job') {
      const j = n.jobs?.find((x) => x.id === row.ref.jobId);
      return j ? jobChildren(n, j) : [];
    }
    return [];
  }

  protected fresh(row: Row): Row | undefined {
    const n = this.cluster.get(row.ref.node);
    if (!n) return undefined;
    if (row.kind === 'jobNode') return jobNodeRow(n);
    if (row.kind === 'job') {
      const j = n.jobs?.find((x) => x.id === row.ref.jobId);
      return j ? jobRow(n, j, Date.now()) : undefined;
    }
    return undefined;
  }

  protected chain(c: Change): string[] {
    return c.jobId !== undefined ? [rowId('j', c.node), rowId('j', c.node, c.jobId)] : [rowId('j', c.node)];
  }
}
