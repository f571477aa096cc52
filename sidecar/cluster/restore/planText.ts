/**
 * The plan of a cluster restore as a person reads it (the CLI's output; the API answers the same plan as JSON):
 * each step in order, what it would do with counts and bytes, its warnings and refusals.
 */
import type { ClusterRestorePlan } from '../../api.js';
import { formatBytes } from '../../druid/bytes.js';

/** Items of one action listed one by one before they are summed up. */
const LISTED = 25;

export function formatPlan(plan: ClusterRestorePlan): string {
  const lines: string[] = [];
  const s = plan.snapshot;
  lines.push(`cluster restore from snapshot ${s.id} (taken ${s.time}${s.complete ? '' : ', NOT complete'}) in ${plan.target}`);
  lines.push(`  data sources: ${plan.dataSources.join(', ') || 'none'}`);
  lines.push(`  intervals: ${plan.intervals.length ? plan.intervals.join(', ') : 'all (nothing is marked unused without --interval)'}`);
  for (const [n, step] of plan.steps.entries()) {
    lines.push('');
    lines.push(`${n + 1}. ${step.step}: ${step.refusals.length ? 'REFUSES' : step.done ? 'nothing to do' : 'to do'}`);
    const byAction = new Map<string, typeof step.items>();
    for (const i of step.items) (byAction.get(i.action) ?? byAction.set(i.action, []).get(i.action)!).push(i);
    for (const [action, items] of byAction) {
      const segments = items.reduce((t, i) => t + (i.segments ?? 0), 0);
      const bytes = items.reduce((t, i) => t + (i.bytes ?? 0), 0);
      const figures = [segments ? `${segments} segment${segments === 1 ? '' : 's'}` : '', bytes ? formatBytes(bytes) : ''].filter(Boolean).join(', ');
      lines.push(`   ${action}${figures ? `: ${figures}` : ''}`);
      for (const i of items.slice(0, LISTED)) {
        const f = [i.segments !== undefined && items.length > 1 ? `${i.segments} seg` : '', i.bytes ? formatBytes(i.bytes) : ''].filter(Boolean).join(', ');
        lines.push(`     ${i.subject}${f ? ` (${f})` : ''}${i.detail ? `: ${i.detail}` : ''}`);
      }
      if (items.length > LISTED) lines.push(`     ... and ${items.length - LISTED} more (--json lists every one)`);
    }
    for (const w of step.warnings) lines.push(`   WARNING: ${w}`);
    for (const r of step.refusals) lines.push(`   REFUSED: ${r}`);
  }
  lines.push('');
  lines.push(
    plan.refused ? 'the plan refuses: nothing was done' : plan.steps.every((x) => x.done) ? 'the cluster already has what the snapshot holds' : 'plan ready',
  );
  return lines.join('\n');
}
