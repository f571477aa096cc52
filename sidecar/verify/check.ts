/**
 * Checks a directory of segment files against the manifest it should match: every file present, none extra,
 * each with the manifest's size and sha256. Used on a store's segment directories (verify) and on a node's
 * cache (scrub, automatic restore). Sizes are compared before any byte is read, so a truncated file costs no
 * hashing.
 */
import type { Dirent } from 'node:fs';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { VerifyProblem } from '../api.js';
import { messageOf } from '../errors.js';
import type { Manifest } from '../store/manifest.js';
import type { DigestMemo, FileDigest } from '../restore/digests.js';
import { hashFile } from '../restore/digests.js';

export interface CheckOptions {
  /** Names in the directory that are not segment files (`manifest.json` in a store, `downloadStartMarker` never). */
  ignore?: readonly string[];
  signal?: AbortSignal;
  /** Remembered digests; without it every file is read. */
  memo?: DigestMemo;
  /** With a memo: read every file again anyway. */
  fresh?: boolean;
  /** Called with the bytes of each file hashed, for progress. */
  onBytes?: (n: number) => void;
}

export async function checkSegmentDir(manifest: Manifest, dir: string, opts: CheckOptions = {}): Promise<VerifyProblem[]> {
  const id = manifest.segmentId;
  const problems: VerifyProblem[] = [];
  let entries: Dirent[];
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const message = code === 'ENOENT' ? `segment directory ${dir} is missing` : `cannot read ${dir}: ${messageOf(e)}`;
    return manifest.files.map((f) => ({ segmentId: id, problem: 'missing-file', file: f.name, message: `${f.name}: ${message}` }));
  }
  const ignore = new Set(opts.ignore ?? []);
  const present = new Map(entries.filter((e) => !ignore.has(e.name)).map((e) => [e.name, e]));
  for (const want of manifest.files) {
    const e = present.get(want.name);
    present.delete(want.name);
    const file = path.join(dir, want.name);
    if (!e) {
      problems.push({ segmentId: id, problem: 'missing-file', file: want.name, message: `${want.name} is missing` });
      continue;
    }
    if (!e.isFile()) {
      problems.push({ segmentId: id, problem: 'missing-file', file: want.name, message: `${want.name} is not a regular file` });
      continue;
    }
    let d: FileDigest;
    try {
      const st = await fs.stat(file);
      if (st.size !== want.size) {
        problems.push({ segmentId: id, problem: 'size-mismatch', file: want.name, message: `${want.name} has ${st.size} bytes, the manifest ${want.size}` });
        continue;
      }
      d = opts.memo ? await opts.memo.digest(file, { signal: opts.signal, fresh: opts.fresh }) : await hashFile(file, opts.signal);
      opts.onBytes?.(d.size);
    } catch (e) {
      if (opts.signal?.aborted) throw e;
      problems.push({ segmentId: id, problem: 'missing-file', file: want.name, message: `${want.name}: ${messageOf(e)}` });
      continue;
    }
    if (d.size !== want.size)
      problems.push({ segmentId: id, problem: 'size-mismatch', file: want.name, message: `${want.name} has ${d.size} bytes, the manifest ${want.size}` });
    else if (d.sha256 !== want.sha256)
      problems.push({
        segmentId: id,
        problem: 'digest-mismatch',
        file: want.name,
        message: `${want.name} has sha256 ${d.sha256}, the manifest ${want.sha256}`,
      });
  }
  for (const name of present.keys()) problems.push({ segmentId: id, problem: 'extra-file', file: name, message: `${name} is not in the manifest` });
  return problems;
}
