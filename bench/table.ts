/**
 * The one table `npm run bench` ends with: every figure of issue 23 (and any a benchmark adds), its baseline
 * measured in the same run, their ratio and the goal. A benchmark calls `addRow` once per measurement; a figure
 * measured several times (rounds, BENCH_ROUNDS) is shown as the median with its range. `printTable` prints it.
 *
 *   addRow({ figure: 'restore of 2 GiB ...', unit: 's', value: 7.7, baseline: { what: 'tar | tar && sync', value: 3.7 }, goal: { max: 1.3 } });
 *
 * The goal applies to the ratio value/baseline when there is a baseline, else to the value; `max` for times (lower
 * is better), `min` for speeds.
 */
import os from 'node:os';

export interface Row {
  figure: string;
  unit: string;
  value: number;
  baseline?: { what: string; value: number };
  goal?: { max?: number; min?: number };
}

const rows: Row[] = [];

export function addRow(row: Row): void {
  rows.push(row);
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const num = (x: number) => (Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(2));

/** `median` alone, or `median (min-max, n runs)`. */
function spread(xs: number[], unit = ''): string {
  const u = unit === 'x' ? 'x' : unit ? ` ${unit}` : '';
  if (xs.length === 1) return `${num(xs[0]!)}${u}`;
  return `${num(median(xs))}${u} (${num(Math.min(...xs))}-${num(Math.max(...xs))}, ${xs.length} runs)`;
}

function goalText(row: Row): string {
  if (!row.goal) return '';
  const on = row.baseline ? 'x' : ` ${row.unit}`;
  return [row.goal.max !== undefined ? `<= ${row.goal.max}${on}` : '', row.goal.min !== undefined ? `>= ${row.goal.min}${on}` : ''].filter(Boolean).join(', ');
}

function met(row: Row, x: number): string {
  if (!row.goal) return '';
  const ok = (row.goal.max === undefined || x <= row.goal.max) && (row.goal.min === undefined || x >= row.goal.min);
  return ok ? 'met' : 'not met';
}

/** The rows so far, grouped by figure in the order first added, as a Markdown table. */
export function tableText(): string {
  const byFigure = new Map<string, Row[]>();
  for (const r of rows) byFigure.set(r.figure, [...(byFigure.get(r.figure) ?? []), r]);
  const lines = ['| figure | value | baseline (same run) | ratio | goal | |', '|---|---|---|---|---|---|'];
  for (const [figure, rs] of byFigure) {
    const first = rs[0]!;
    const values = rs.map((r) => r.value);
    const withBase = rs.filter((r) => r.baseline);
    const ratios = withBase.map((r) => r.value / r.baseline!.value);
    const judged = first.baseline ? median(ratios) : median(values);
    const cells = [
      figure,
      spread(values, first.unit),
      first.baseline ? `${first.baseline.what}: ${spread(withBase.map((r) => r.baseline!.value), first.unit)}` : '',
      ratios.length ? spread(ratios, 'x') : '',
      goalText(first),
      met(first, judged),
    ];
    // A figure may name a shell pipeline (`tar | tar`): its bars must not end the cell.
    lines.push(`| ${cells.map((c) => c.replaceAll('|', '\\|')).join(' | ')} |`);
  }
  return lines.join('\n');
}

const loadAtStart = os.loadavg()[0]!;

/** The date and the machine the table was measured on, for whoever quotes it. */
export function machineText(): string {
  const cpus = os.cpus();
  return `${new Date().toISOString().slice(0, 10)}; ${cpus.length} cores (${cpus[0]?.model.trim() ?? 'unknown CPU'}), ${Math.round(os.totalmem() / 1024 ** 3)} GiB; load average ${loadAtStart.toFixed(1)} at the start, ${os.loadavg()[0]!.toFixed(1)} at the end`;
}

export function printTable(): void {
  if (!rows.length) return;
  console.log(`\n## summary (${machineText()})\n\n${tableText()}`);
}
