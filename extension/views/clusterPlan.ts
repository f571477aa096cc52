/**
 * The plan of a cluster restore (issue 22) as the extension shows it before anything happens: the answer of the
 * dry run checked (it comes from a sidecar, so it is input like any other), the words of the confirmation modal
 * (what the plan would do, refusals and warnings first) and the full plan as Markdown for a read-only preview.
 * Pure, no `vscode`: the commands use it, the tests check it against real sidecars' answers.
 */
import type { ClusterRestorePlan } from '../../sidecar/api.js';
import { formatBytes, intervalLabel, md, plural } from '../tree/format.js';

type Step = ClusterRestorePlan['steps'][number];
type Item = Step['items'][number];

/** Refusals and warnings listed one by one in the modal; the full plan lists every one. */
const MODAL_LISTED = 8;
/** Items of one action listed one by one in the full plan before the rest is counted. */
const PLAN_LISTED = 200;

const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function bad(why: string): Error {
  return new Error(`the sidecar answered no cluster restore plan (${why})`);
}

function parseItem(x: unknown): Item {
  const i = x as Record<string, unknown> | null;
  if (!i || typeof i !== 'object' || typeof i.action !== 'string' || typeof i.subject !== 'string') throw bad('an item without action or subject');
  if (i.segments !== undefined && !isCount(i.segments)) throw bad(`item ${i.subject}: segments is not a count`);
  if (i.bytes !== undefined && !isCount(i.bytes)) throw bad(`item ${i.subject}: bytes is not a count`);
  if (i.detail !== undefined && typeof i.detail !== 'string') throw bad(`item ${i.subject}: detail is not text`);
  return {
    action: i.action,
    subject: i.subject,
    ...(i.segments !== undefined && { segments: i.segments }),
    ...(i.bytes !== undefined && { bytes: i.bytes }),
    ...(i.detail !== undefined && { detail: i.detail }),
  };
}

function parseStep(x: unknown): Step {
  const s = x as Record<string, unknown> | null;
  if (!s || typeof s !== 'object' || typeof s.step !== 'string') throw bad('a step without a name');
  if (!Array.isArray(s.items) || !isStrings(s.warnings) || !isStrings(s.refusals)) throw bad(`step ${s.step}: items, warnings or refusals missing`);
  return { step: s.step, done: s.done === true, items: s.items.map(parseItem), warnings: s.warnings, refusals: s.refusals };
}

/**
 * The dry run's answer checked field by field. A plan is refused when the sidecar says so or when any step
 * refuses, whatever its `refused` flag says: a refused plan is never offered to run.
 */
export function parseClusterPlan(body: unknown): ClusterRestorePlan {
  const p = body as Record<string, unknown> | null;
  if (!p || typeof p !== 'object') throw bad('not an object');
  const s = p.snapshot as Record<string, unknown> | null;
  if (!s || typeof s !== 'object' || typeof s.id !== 'string' || typeof s.time !== 'string') throw bad('no snapshot');
  if (typeof p.target !== 'string' || !isStrings(p.dataSources) || !isStrings(p.intervals) || !Array.isArray(p.steps)) throw bad('fields missing');
  const steps = p.steps.map(parseStep);
  return {
    snapshot: { id: s.id, time: s.time, complete: s.complete === true },
    target: p.target,
    dataSources: p.dataSources,
    intervals: p.intervals,
    steps,
    refused: p.refused !== false || steps.some((x) => x.refusals.length > 0),
  };
}

/** What one action of a step adds up to: "3 segments, 1.2 MB", or the number of its items. */
function figures(items: Item[]): string {
  const segments = items.reduce((t, i) => t + (i.segments ?? 0), 0);
  const bytes = items.reduce((t, i) => t + (i.bytes ?? 0), 0);
  const parts = [segments ? plural(segments, 'segment') : '', bytes ? formatBytes(bytes) : ''].filter(Boolean);
  return parts.length ? parts.join(', ') : plural(items.length, 'item');
}

function byAction(step: Step): Map<string, Item[]> {
  const m = new Map<string, Item[]>();
  for (const i of step.items) (m.get(i.action) ?? m.set(i.action, []).get(i.action)!).push(i);
  return m;
}

function stepState(step: Step): string {
  return step.refusals.length ? 'REFUSED' : step.done ? 'nothing to do' : 'to do';
}

function listed(lines: string[], all: string[], more: string): void {
  lines.push(...all.slice(0, MODAL_LISTED).map((x) => `  • ${x}`));
  if (all.length > MODAL_LISTED) lines.push(`  …and ${all.length - MODAL_LISTED} more ${more}`);
}

export interface PlanWords {
  /** The modal's message. */
  title: string;
  /** The modal's detail: the snapshot, the scope, refusals, warnings, then each step in a line. */
  detail: string;
  /** Nothing may run: some step refuses. */
  refused: boolean;
  /** Every step is done already: running it would change nothing. */
  nothingToDo: boolean;
}

/** The words of the confirmation modal; `action` names what the person asked for ("Restore the cluster"). */
export function clusterPlanWords(plan: ClusterRestorePlan, action: string): PlanWords {
  const s = plan.snapshot;
  const refusals = plan.steps.flatMap((x) => x.refusals.map((r) => `${x.step}: ${r}`));
  const warnings = plan.steps.flatMap((x) => x.warnings.map((w) => `${x.step}: ${w}`));
  const nothingToDo = !plan.refused && plan.steps.every((x) => x.done);
  const title = plan.refused
    ? `${action} from snapshot ${s.id} is refused: nothing can be done (${plural(refusals.length, 'refusal')}).`
    : nothingToDo
      ? `The cluster already has what snapshot ${s.id} holds: nothing to do.`
      : `${action} from snapshot ${s.id}?`;
  const lines = [
    `Snapshot ${s.id}, taken ${s.time}${s.complete ? '' : ' (INCOMPLETE: some segments were not backed up)'}, in ${plan.target}.`,
    `Data sources: ${plan.dataSources.join(', ') || 'none'}.`,
    plan.intervals.length ? `Intervals: ${plan.intervals.map(intervalLabel).join(', ')}.` : 'Intervals: all (nothing is marked unused).',
  ];
  if (refusals.length) {
    lines.push('', `⛔ Refused (${refusals.length}):`);
    listed(lines, refusals, '(Show Plan lists every one)');
  }
  if (warnings.length) {
    lines.push('', `⚠ Warnings (${warnings.length}):`);
    listed(lines, warnings, '(Show Plan lists every one)');
  }
  lines.push('', 'Steps:');
  for (const [n, step] of plan.steps.entries()) {
    const actions = [...byAction(step)].map(([a, items]) => `${a}: ${figures(items)}`);
    lines.push(`${n + 1}. ${step.step}: ${stepState(step)}${actions.length ? ` — ${actions.join('; ')}` : ''}`);
  }
  return { title, detail: lines.join('\n'), refused: plan.refused, nothingToDo };
}

/**
 * The full plan in Markdown, every text from the sidecar made literal (md), for the read-only preview: the
 * scope, refusals and warnings at the top, then every step with each action's items.
 */
export function clusterPlanMarkdown(plan: ClusterRestorePlan, action: string): string {
  const s = plan.snapshot;
  const out: string[] = [`# ${md(action)} from snapshot ${md(s.id)}`, ''];
  out.push(
    plan.refused
      ? '**The plan is REFUSED: nothing can be run until every refusal below is resolved.**'
      : plan.steps.every((x) => x.done)
        ? '**The cluster already has what the snapshot holds: nothing to do.**'
        : '**Dry run: nothing has been changed yet.**',
    '',
    `- Snapshot: ${md(s.id)}, taken ${md(s.time)}${s.complete ? '' : ' — **incomplete**: some segments were not backed up'}`,
    `- Target holding it: ${md(plan.target)}`,
    `- Data sources: ${plan.dataSources.map(md).join(', ') || 'none'}`,
    `- Intervals: ${plan.intervals.length ? plan.intervals.map(md).join(', ') : 'all (nothing is marked unused)'}`,
    '',
  );
  const refusals = plan.steps.flatMap((x) => x.refusals.map((r) => `- **${md(x.step)}**: ${md(r)}`));
  const warnings = plan.steps.flatMap((x) => x.warnings.map((w) => `- **${md(x.step)}**: ${md(w)}`));
  if (refusals.length) out.push(`## ⛔ Refusals (${refusals.length})`, '', ...refusals, '');
  if (warnings.length) out.push(`## ⚠ Warnings (${warnings.length})`, '', ...warnings, '');
  for (const [n, step] of plan.steps.entries()) {
    out.push(`## ${n + 1}. ${md(step.step)}: ${stepState(step)}`, '');
    if (step.items.length === 0) out.push('Nothing listed.', '');
    for (const [a, items] of byAction(step)) {
      out.push(`### ${md(a)}: ${figures(items)}`, '');
      for (const i of items.slice(0, PLAN_LISTED)) {
        const f = [i.segments !== undefined ? plural(i.segments, 'segment') : '', i.bytes ? formatBytes(i.bytes) : ''].filter(Boolean).join(', ');
        out.push(`- ${md(i.subject)}${f ? ` (${f})` : ''}${i.detail ? `: ${md(i.detail)}` : ''}`);
      }
      if (items.length > PLAN_LISTED) out.push(`- …and ${items.length - PLAN_LISTED} more`);
      out.push('');
    }
    for (const w of step.warnings) out.push(`> ⚠ ${md(w)}`, '>');
    for (const r of step.refusals) out.push(`> ⛔ ${md(r)}`, '>');
    if (step.warnings.length || step.refusals.length) out.push('');
  }
  return out.join('\n');
}

/**
 * The intervals a rollback of `dataSource` would touch: those of the segments the rollback step lists as used now
 * but not in the snapshot (a segment id is `dataSource_start_end_version…`, and Druid's instants hold no `_`).
 * Newest first, each once.
 */
export function rollbackIntervals(plan: ClusterRestorePlan, dataSource: string): string[] {
  const found = new Set<string>();
  for (const step of plan.steps)
    for (const i of step.items) {
      if (!i.subject.startsWith(`${dataSource}_`) || !i.detail?.startsWith(`${dataSource}:`)) continue;
      const [start, end] = i.subject.slice(dataSource.length + 1).split('_');
      if (start && end && !Number.isNaN(Date.parse(start)) && !Number.isNaN(Date.parse(end))) found.add(`${start}/${end}`);
    }
  return [...found].sort().reverse();
}

/** An interval as typed: `start/end`, two ISO-8601 instants or dates, start before end; undefined when it is not. */
export function checkInterval(text: string): string | undefined {
  const parts = text.trim().split('/');
  if (parts.length !== 2) return undefined;
  const [a, b] = parts.map((x) => Date.parse(x));
  return a !== undefined && b !== undefined && !Number.isNaN(a) && !Number.isNaN(b) && a < b ? parts.join('/') : undefined;
}
