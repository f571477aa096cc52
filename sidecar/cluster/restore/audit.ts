/**
 * Druid's audit headers for every change a cluster restore makes through Druid's APIs: `X-Druid-Author` and
 * `X-Druid-Comment`, so Druid's audit log says who restored and why. Header values are Latin-1 text on one line:
 * anything else is replaced, and they are cut short.
 */
import type { ClusterRestoreContext } from './step.js';

const MAX = 500;

function headerText(v: string): string {
  return v.replace(/[^\u0020-\u007e\u00a0-\u00ff]/g, '?').slice(0, MAX);
}

export function auditHeaders(ctx: Pick<ClusterRestoreContext, 'author' | 'comment'>): Record<string, string> {
  return { 'X-Druid-Author': headerText(ctx.author), 'X-Druid-Comment': headerText(ctx.comment) };
}
