/**
 * Durable file writes: a reader sees the old content or the new, never half of it, and a crash right after
 * the call keeps the new content (the file and its directory entry are fsynced).
 */
import { closeSync, fsync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';

/** fsyncs a directory so a rename or create inside it survives a crash. */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes `data` to `file` through a temporary file in the same directory, fsynced, then renamed over it. */
export function writeFileAtomic(file: string, data: string | Buffer, mode = 0o644): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'w', mode);
  try {
    writeAllSync(fd, data);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, file);
  fsyncDir(path.dirname(file));
}

/**
 * fsyncs `fd` on the thread pool, then closes it, whatever the fsync said. Only the flush waits on the disk, so only
 * it leaves the event loop: the open, write and close around it are calls on the page cache, done in place, which
 * costs a fraction of a thread-pool round trip each (a small segment's upload to the local store is mostly such
 * calls; bench/backup.ts, the first backup of 10,000 small segments).
 */
export function fsyncAndClose(fd: number): Promise<void> {
  return new Promise((resolve, reject) =>
    fsync(fd, (err) => {
      try {
        closeSync(fd);
      } catch (e) {
        err ??= e as NodeJS.ErrnoException;
      }
      if (err) reject(err);
      else resolve();
    }),
  );
}

/** fsyncs a directory on the thread pool, so a server keeps serving while the disk flushes. */
export function fsyncDirAsync(dir: string): Promise<void> {
  return fsyncAndClose(openSync(dir, 'r'));
}

/** Writes all of `data` at the file's current offset. */
function writeAllSync(fd: number, data: string | Buffer): void {
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
}

/** Writes a new file and fsyncs it (no rename: for files in a directory that is itself renamed into place). */
export async function writeFileDurable(file: string, data: string | Buffer, mode = 0o644): Promise<void> {
  const fd = openSync(file, 'wx', mode);
  try {
    writeAllSync(fd, data);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  await fsyncAndClose(fd);
}

/** `writeFileAtomic` on the thread pool. */
export async function writeFileAtomicAsync(file: string, data: string | Buffer, mode = 0o644): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
  try {
    await writeFileDurable(tmp, data, mode);
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  await fsyncDirAsync(path.dirname(file));
}
