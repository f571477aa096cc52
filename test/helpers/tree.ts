/** Digests of every file under a directory, to show that a tree is byte-identical to another (or unchanged). */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';

/** `relative path → sha256` of every regular file under `root` (directories only through their files). */
export function treeDigests(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(path.relative(root, p), createHash('sha256').update(readFileSync(p)).digest('hex'));
    }
  };
  walk(root);
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Every path (files and directories) under `root`, relative, sorted: shows that nothing was added, not even an empty directory. */
export function treePaths(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      out.push(path.relative(root, p));
      if (e.isDirectory()) walk(p);
    }
  };
  walk(root);
  return out.sort();
}

/** Removes everything inside `dir`, keeping `dir` itself: a cache location as a lost disk leaves it (info_dir too). */
export function emptyDir(dir: string): void {
  for (const n of readdirSync(dir)) rmSync(path.join(dir, n), { recursive: true, force: true });
}
