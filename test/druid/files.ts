/**
 * File facts for the real-Druid tests: what a segment directory holds (size, sha256, inode, link count per file,
 * hashed as a stream), and the tail of a log for failure reports. Node built-ins only.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';

export interface FileFacts {
  size: number;
  sha256: string;
  ino: number;
  nlink: number;
}

export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(file), h);
  return h.digest('hex');
}

/** The plain files of a directory (not recursive), by name; `skip` names are left out (e.g. manifest.json). */
export async function filesOf(dir: string, skip: string[] = []): Promise<Map<string, FileFacts>> {
  const out = new Map<string, FileFacts>();
  for (const name of readdirSync(dir).sort()) {
    if (skip.includes(name)) continue;
    const file = path.join(dir, name);
    const st = statSync(file);
    if (!st.isFile()) continue;
    out.set(name, { size: st.size, sha256: await sha256File(file), ino: st.ino, nlink: st.nlink });
  }
  return out;
}

/** name → sha256, the part of FileFacts that says "byte-identical", for deepEqual. */
export function digests(files: Map<string, FileFacts>): Record<string, string> {
  return Object.fromEntries([...files].map(([name, f]) => [name, f.sha256]));
}

/** name → inode, the part that says "the same file, not a new copy". */
export function inodes(files: Map<string, FileFacts>): Record<string, number> {
  return Object.fromEntries([...files].map(([name, f]) => [name, f.ino]));
}

/** The last `lines` lines of a text file, or a note that it does not exist. */
export function tail(file: string, lines = 60): string {
  if (!existsSync(file)) return `(no ${file})`;
  const text = readFileSync(file, 'utf8');
  return text
    .split('\n')
    .slice(-lines - 1)
    .join('\n');
}
