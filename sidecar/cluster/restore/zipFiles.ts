/**
 * What a local `index.zip` in deep storage holds, compared with a backup's manifest without unpacking it to disk:
 * each entry streamed through inflate and SHA-256, one at a time, so memory stays at a read buffer whatever the
 * segment's size. The deep-storage step uses it so that a zip already holding the manifest's exact files is skipped,
 * and a second run writes nothing. The file is another party's: anything this reader does not expect (ZIP64, an
 * encrypted or otherwise compressed entry, a directory, a damaged header) answers "not compared", and the segment is
 * written again from the verified backup, as it was before this check existed.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { createInflateRaw } from 'node:zlib';
import { BackupError } from '../../errors.js';
import type { PresentFile } from '../../restore/plan.js';
import type { Manifest } from '../../store/manifest.js';

/** The end-of-central-directory record: 22 bytes and a comment of up to 65535. */
const EOCD_MAX = 22 + 0xffff;
/** Entries read from a central directory: a segment has a handful of files; more is not a segment's zip. */
const MAX_ENTRIES = 10_000;
/** Bytes of central directory read: MAX_ENTRIES entries with names of a few hundred bytes. */
const MAX_DIRECTORY = 8 << 20;

interface Entry {
  name: string;
  method: number;
  compressed: number;
  size: number;
  localHeader: number;
}

/** The entries of the zip at `file`, from its central directory; undefined when it is not a zip this reader takes. */
async function entriesOf(handle: fs.FileHandle, fileSize: number): Promise<Entry[] | undefined> {
  const tailLength = Math.min(fileSize, EOCD_MAX);
  if (tailLength < 22) return undefined;
  const tail = Buffer.alloc(tailLength);
  await handle.read(tail, 0, tailLength, fileSize - tailLength);
  let eocd = -1;
  for (let i = tailLength - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === 0x06054b50 && i + 22 + tail.readUInt16LE(i + 20) === tailLength) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) return undefined;
  const count = tail.readUInt16LE(eocd + 10);
  const dirSize = tail.readUInt32LE(eocd + 12);
  const dirOffset = tail.readUInt32LE(eocd + 16);
  // 0xffff / 0xffffffff: ZIP64, which Druid writes only past 4 GiB or 65535 files; not compared.
  if (count === 0xffff || dirSize === 0xffffffff || dirOffset === 0xffffffff) return undefined;
  if (count === 0 || count > MAX_ENTRIES || dirSize > MAX_DIRECTORY || dirOffset + dirSize > fileSize - tailLength + eocd) return undefined;
  const dir = Buffer.alloc(dirSize);
  await handle.read(dir, 0, dirSize, dirOffset);
  const entries: Entry[] = [];
  let at = 0;
  for (let n = 0; n < count; n++) {
    if (at + 46 > dir.length || dir.readUInt32LE(at) !== 0x02014b50) return undefined;
    const flags = dir.readUInt16LE(at + 8);
    const method = dir.readUInt16LE(at + 10);
    const compressed = dir.readUInt32LE(at + 20);
    const size = dir.readUInt32LE(at + 24);
    const nameLength = dir.readUInt16LE(at + 28);
    const extraLength = dir.readUInt16LE(at + 30);
    const commentLength = dir.readUInt16LE(at + 32);
    const localHeader = dir.readUInt32LE(at + 42);
    if (at + 46 + nameLength > dir.length) return undefined;
    const name = dir.toString('utf8', at + 46, at + 46 + nameLength);
    // Encrypted (bit 0), a method other than stored or deflated, ZIP64 sizes, or a name with a path: not a segment's
    // flat zip as Druid or this restore writes it.
    if (flags & 1 || (method !== 0 && method !== 8) || compressed === 0xffffffff || size === 0xffffffff || localHeader === 0xffffffff) return undefined;
    if (name === '' || name.includes('/') || name.includes('\\')) return undefined;
    entries.push({ name, method, compressed, size, localHeader });
    at += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

/** The SHA-256 and length of one entry's content, streamed from its local header. */
async function digestEntry(file: string, handle: fs.FileHandle, fileSize: number, e: Entry, signal?: AbortSignal): Promise<{ sha256: string; size: number } | undefined> {
  const header = Buffer.alloc(30);
  await handle.read(header, 0, 30, e.localHeader);
  if (header.readUInt32LE(0) !== 0x04034b50) return undefined;
  const start = e.localHeader + 30 + header.readUInt16LE(26) + header.readUInt16LE(28);
  if (start + e.compressed > fileSize) return undefined;
  const h = createHash('sha256');
  let size = 0;
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      size += chunk.length;
      // More than the central directory says: stop reading, the sizes already differ.
      if (size > e.size) return done(new Error('longer than its central directory says'));
      h.update(chunk);
      done();
    },
  });
  const raw = e.compressed === 0 ? [] : [createReadStream(file, { start, end: start + e.compressed - 1, signal })];
  try {
    if (!raw.length) sink.end();
    else if (e.method === 8) await pipeline(raw[0]!, createInflateRaw(), sink, { signal });
    else await pipeline(raw[0]!, sink, { signal });
  } catch {
    if (signal?.aborted) throw new BackupError('cancelled', 'cluster restore cancelled');
    return undefined;
  }
  return { sha256: h.digest('hex'), size };
}

/**
 * The files of the `index.zip` at `file` as the planner compares them with `manifest` (restore/plan.ts `difference`):
 * names and sizes from the central directory, and, only when those match the manifest's, each file's SHA-256 read
 * through inflate. Undefined when the zip cannot be compared: the planner then writes the segment again.
 */
export async function zipFiles(file: string, manifest: Manifest, signal?: AbortSignal): Promise<PresentFile[] | undefined> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const { size: fileSize } = await handle.stat();
    const entries = await entriesOf(handle, fileSize);
    if (!entries) return undefined;
    const files: PresentFile[] = entries.map((e) => ({ name: e.name, size: e.size }));
    const want = new Map(manifest.files.map((f) => [f.name, f.size]));
    const same = entries.length === want.size && entries.every((e) => want.get(e.name) === e.size);
    if (!same) return files;
    for (const [i, e] of entries.entries()) {
      const d = await digestEntry(file, handle, fileSize, e, signal);
      if (!d) return undefined;
      files[i] = { name: e.name, size: d.size, sha256: d.sha256 };
    }
    return files;
  } catch (e) {
    if (signal?.aborted) throw new BackupError('cancelled', 'cluster restore cancelled');
    if (e instanceof BackupError) throw e;
    return undefined;
  } finally {
    await handle.close();
  }
}
