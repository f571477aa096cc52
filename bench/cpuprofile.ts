/**
 * Summarises V8 .cpuprofile files (from `--cpu-prof`): self time by function and by category (hashing, fs,
 * sockets/HTTP, JSON, tar, GC, idle), so a profile can be read as figures. Usage:
 *   node --import tsx bench/cpuprofile.ts [--phase DIR/phase.json] FILE.cpuprofile...
 * With --phase, only the samples taken during the phase bench/profile.ts recorded are counted. With --inclusive N,
 * the N functions with the most time spent in them or in what they call are listed too (each counted once per
 * sample, however deep it recurses). With --under NAME as well, only the samples with a function named NAME on
 * their stack are counted in that list, to see where a function's own time goes.
 */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  startTime: number;
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

const CATEGORIES: Array<[string, RegExp]> = [
  ['idle', /^\(idle\)$/],
  ['GC', /^\(garbage collector\)$/],
  ['hash (sha256)', /Hash|digest|update/],
  ['JSON', /JSON|parse|stringify/],
  ['fs (write/read/fsync)', /fs|write|read|fsync|close|open/i],
  ['socket/http', /onStreamRead|socket|http|parser|llhttp|Socket|onread|writev|writeGeneric/i],
];

function categorize(fn: string, url: string): string {
  const name = `${fn} ${url}`;
  for (const [c, re] of CATEGORIES) if (re.test(fn) || (c !== 'idle' && c !== 'GC' && re.test(name))) return c;
  return 'other';
}

const args = process.argv.slice(2);
let phase = { start: -Infinity, end: Infinity };
let inclusive = 0;
let under: string | undefined;
for (;;) {
  if (args[0] === '--phase') phase = JSON.parse(readFileSync(args[1]!, 'utf8')) as typeof phase;
  else if (args[0] === '--inclusive') inclusive = Number(args[1]);
  else if (args[0] === '--under') under = args[1];
  else break;
  args.splice(0, 2);
}

for (const file of args) {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let t = p.startTime;
  p.samples.forEach((id, i) => {
    const d = p.timeDeltas[i] ?? 0;
    t += d;
    if (t >= phase.start && t <= phase.end) self.set(id, (self.get(id) ?? 0) + d);
  });
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const keyOf = (n: Node) => `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.split('/').slice(-2).join('/')}:${n.callFrame.lineNumber}`;
  const byFn = new Map<string, number>();
  const byCat = new Map<string, number>();
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    const key = keyOf(n);
    byFn.set(key, (byFn.get(key) ?? 0) + us);
    const c = categorize(n.callFrame.functionName, n.callFrame.url);
    byCat.set(c, (byCat.get(c) ?? 0) + us);
  }
  const busy = total - (byCat.get('idle') ?? 0);
  console.log(`\n${file}: ${(total / 1e6).toFixed(2)} s sampled, ${(busy / 1e6).toFixed(2)} s busy`);
  for (const [c, us] of [...byCat].sort((a, b) => b[1] - a[1])) console.log(`  ${c.padEnd(24)} ${(us / 1e6).toFixed(2)} s  ${((100 * us) / total).toFixed(1)} % of all, ${c === 'idle' ? '' : `${((100 * us) / busy).toFixed(1)} % of busy`}`);
  console.log('  top functions (self):');
  for (const [k, us] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`    ${(us / 1e6).toFixed(3)} s  ${((100 * us) / busy).toFixed(1)} %  ${k}`);
  if (!inclusive) continue;
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const incl = new Map<string, number>();
  for (const [id, us] of self) {
    if (byId.get(id)!.callFrame.functionName === '(idle)') continue;
    const keys = new Set<string>();
    let below = under === undefined;
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      keys.add(keyOf(byId.get(at)!));
      if (byId.get(at)!.callFrame.functionName === under) below = true;
    }
    if (!below) continue;
    for (const k of keys) incl.set(k, (incl.get(k) ?? 0) + us);
  }
  console.log(`  top functions (inclusive${under === undefined ? '' : `, under ${under}`}):`);
  for (const [k, us] of [...incl].sort((a, b) => b[1] - a[1]).slice(0, inclusive)) console.log(`    ${(us / 1e6).toFixed(3)} s  ${((100 * us) / busy).toFixed(1)} %  ${k}`);
}
