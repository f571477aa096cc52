/**
 * Verifies a local store (store/local/) by reading it, never writing: every segment directory's manifest must
 * parse and sit where its id belongs, and its files must be exactly the manifest's, each with its size and
 * sha256. Safe on a store a running target is writing to (its `.tmp/` is not looked at) and without any sidecar
 * (`druid-backup verify --store DIR`).
 */
import type { Dirent } from 'node:fs';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { VerifyProblem } from '../api.js';
import { parseManifest } from '../archive/format.js';
import type { Selector } from '../druid/selector.js';
import { tryParseSegmentId } from '../druid/segmentId.js';
import { BackupError, messageOf } from '../errors.js';
import type { Manifest } from '../store/manifest.js';
import { MANIFEST_NAME } from '../store/manifest.js';
import { SEGMENTS_DIR, segmentPath } from '../store/local/layout.js';
import { manifestSelected } from '../restore/select.js';
import { checkSegmentDir } from './check.js';

export interface BadSegment {
  segmentId: string;
  dir: string;
  problems: VerifyProblem[];
}

export interface VerifyReport {
  store: string;
  segments: number;
  ok: number;
  bytes: number;
  bad: BadSegment[];
}

export interface VerifyOptions {
  signal?: AbortSignal;
  onBytes?(n: number): void;
  /** Called after each segment, bad or not. */
  onSegment?(segmentId: string, problems: VerifyProblem[]): void;
}

async function dirs(p: string): Promise<Dirent[]> {
  try {
    return (await fs.readdir(p, { withFileTypes: true })).filter((e) => e.isDirectory() && !e.name.startsWith('.'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

/** A directory whose manifest cannot be read is named by the id its directory name spells, when it spells one. */
function idFromDirName(name: string): string {
  try {
    const id = decodeURIComponent(name);
    return tryParseSegmentId(id) ? id : name;
  } catch {
    return name;
  }
}

/** One segment directory, or undefined when the selector leaves it out. */
async function checkOne(
  store: string,
  dir: string,
  sel: Selector,
  opts: VerifyOptions,
): Promise<{ segmentId: string; problems: VerifyProblem[]; bytes: number } | undefined> {
  let m: Manifest;
  try {
    m = parseManifest(JSON.parse(await fs.readFile(path.join(dir, MANIFEST_NAME), 'utf8')));
  } catch (err) {
    const segmentId = idFromDirName(path.basename(dir));
    const unfiltered = sel.dataSource === undefined && sel.interval === undefined && sel.segmentIds === undefined;
    if (!unfiltered && !sel.segmentIds?.has(segmentId)) return undefined;
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? `${MANIFEST_NAME} is missing` : `${MANIFEST_NAME} is unreadable: ${messageOf(err)}`;
    return { segmentId, problems: [{ segmentId, problem: 'bad-manifest', file: MANIFEST_NAME, message: why }], bytes: 0 };
  }
  if (!manifestSelected(sel, m)) return undefined;
  const segmentId = m.segmentId;
  const belongs = path.join(store, segmentPath(m.dataSource, segmentId));
  const problems: VerifyProblem[] =
    belongs === dir
      ? []
      : [{ segmentId, problem: 'bad-manifest', file: MANIFEST_NAME, message: `the manifest is for ${segmentId}, which belongs in ${belongs}` }];
  problems.push(...(await checkSegmentDir(m, dir, { ignore: [MANIFEST_NAME], signal: opts.signal, onBytes: opts.onBytes })));
  return { segmentId, problems, bytes: m.size };
}

/** Every segment directory of the store matching `sel`, checked. */
export async function verifyStore(root: string, sel: Selector, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const store = path.resolve(root);
  const segmentsDir = path.join(store, SEGMENTS_DIR);
  try {
    if (!(await fs.stat(segmentsDir)).isDirectory()) throw new Error('not a directory');
  } catch {
    throw new BackupError('bad_request', `${store} is not a druid-backup store (it has no ${SEGMENTS_DIR}/ directory)`);
  }
  const report: VerifyReport = { store, segments: 0, ok: 0, bytes: 0, bad: [] };
  for (const ds of await dirs(segmentsDir)) {
    for (const e of await dirs(path.join(segmentsDir, ds.name))) {
      if (opts.signal?.aborted) throw new BackupError('cancelled', 'verify cancelled');
      const dir = path.join(segmentsDir, ds.name, e.name);
      const r = await checkOne(store, dir, sel, opts);
      if (!r) continue;
      report.segments++;
      report.bytes += r.bytes;
      if (r.problems.length === 0) report.ok++;
      else report.bad.push({ segmentId: r.segmentId, dir, problems: r.problems });
      opts.onSegment?.(r.segmentId, r.problems);
    }
  }
  return report;
}
