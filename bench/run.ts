/**
 * `npm run bench`: each benchmark prints its figures and, where there is one, a ratio against a baseline run
 * in the same process. These machines are noisy: compare ratios, not absolute times.
 * Usage: npm run bench [-- name...]   (default: all)
 *
 * A benchmark is a file of this folder, `{name}.ts`, exporting `bench{Name}` (bench/azure.ts: `benchAzure`), found
 * here by that name: a new one (a target kind's row) is its own file, with no line to add here. Only files that
 * declare that export are imported (bench/cpuprofile.ts is a tool of its own, run on import).
 * BENCH_ROUNDS=n runs the named benchmarks n times over; the closing table (bench/table.ts) then shows each
 * figure's median and range.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { printTable } from './table.js';

const self = fileURLToPath(import.meta.url);
const here = path.dirname(self);

/** Every benchmark of this folder by name, in name order. */
async function benches(): Promise<Map<string, () => Promise<void>>> {
  const out = new Map<string, () => Promise<void>>();
  for (const file of readdirSync(here)
    .filter((f) => f.endsWith('.ts') && path.join(here, f) !== self)
    .sort()) {
    const name = file.slice(0, -'.ts'.length);
    const exported = `bench${name[0]!.toUpperCase()}${name.slice(1)}`;
    if (!new RegExp(`export (async )?function ${exported}\\b`).test(readFileSync(path.join(here, file), 'utf8'))) continue;
    const fn = ((await import(pathToFileURL(path.join(here, file)).href)) as Record<string, unknown>)[exported];
    if (typeof fn === 'function') out.set(name, fn as () => Promise<void>);
  }
  return out;
}

async function main() {
  const all = await benches();
  const names = process.argv.slice(2).length ? process.argv.slice(2) : [...all.keys()];
  for (const n of names) if (!all.has(n)) throw new Error(`unknown benchmark ${n}; known: ${[...all.keys()].join(', ')}`);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 1);
  for (let round = 1; round <= rounds; round++) {
    for (const n of names) {
      console.log(`\n## ${n}${rounds > 1 ? ` (round ${round} of ${rounds})` : ''}`);
      await all.get(n)!();
    }
  }
  printTable();
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
