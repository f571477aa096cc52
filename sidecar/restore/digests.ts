/**
 * sha256 of files already on disk, to tell a present copy that matches its backup from one that does not. A
 * file's digest is remembered by inode, size and mtime (as rsync and git do) so planning a second restore does
 * not read the whole cache again; the scrub asks for fresh digests, since bit rot changes no mtime.
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import { BackupError } from '../errors.js';

export interface FileDigest {
  size: number;
  sha256: string;
}

export async function hashFile(file: string, signal?: AbortSignal): Promise<FileDigest> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20, signal }) as AsyncIterable<Buffer>) {
    h.update(chunk);
    size += chunk.length;
  }
  return { size, sha256: h.digest('hex') };
}

interface Remembered extends FileDigest {
  ino: number;
  mtimeMs: number;
}

/** Remembers at most MAX files; beyond that the oldest are forgotten (a cache of 100,000 segments has 400,000 files). */
const MAX = 500_000;

export class DigestMemo {
  private readonly known = new Map<string, Remembered>();

  /** The file's digest, read again unless its inode, size and mtime are those of the last read (or `fresh`). */
  async digest(file: string, opts: { signal?: AbortSignal; fresh?: boolean } = {}): Promise<FileDigest> {
    const st = await fs.stat(file);
    if (!st.isFile()) throw new BackupError('conflict', `${file} is not a regular file`);
    const prev = this.known.get(file);
    if (!opts.fresh && prev && prev.ino === st.ino && prev.size === st.size && prev.mtimeMs === st.mtimeMs) return prev;
    const d = await hashFile(file, opts.signal);
    this.known.delete(file);
    this.known.set(file, { ...d, ino: st.ino, mtimeMs: st.mtimeMs });
    if (this.known.size > MAX) this.known.delete(this.known.keys().next().value!);
    return d;
  }

  forget(prefix: string): void {
    for (const k of this.known.keys()) if (k.startsWith(prefix)) this.known.delete(k);
  }
}
