/**
 * The wire format's two JSON entries (see store/target.ts): `segment.json`, which declares what follows, and
 * `digests.json`, the trailer with each file's sha256 as the sender read it. Both are validated strictly: a
 * receiver trusts nothing a sender wrote.
 */
import type { DataSegment } from '../druid/descriptor.js';
import { segmentIdOfDescriptor } from '../druid/descriptor.js';
import type { SegmentId } from '../druid/segmentId.js';
import { parseSegmentId } from '../druid/segmentId.js';
import { BackupError, isBackupError, messageOf } from '../errors.js';
import type { Manifest, SegmentFileInfo } from '../store/manifest.js';
import { MANIFEST_FORMAT_VERSION, segmentDigest, segmentFileNameProblem } from '../store/manifest.js';

export const DECLARATION_NAME = 'segment.json';
export const TRAILER_NAME = 'digests.json';
export const WIRE_FORMAT_VERSION = 1;
/** Files in one segment: Druid writes a handful (version.bin, meta.smoosh, factory.json, one smoosh per 2 GB). */
export const MAX_FILES = 10_000;

/**
 * Throws `target_error` unless `got` (a manifest as a target sent it, parsed or not) names the segment and digest
 * of `planned`, the manifest the restore was planned with. The digest is the sha256 of the file list (names, sizes,
 * digests): the same digest is the same list.
 */
export function checkPlanned(got: { segmentId?: unknown; digest?: unknown }, planned: Pick<Manifest, 'segmentId' | 'digest'>): void {
  if (got.segmentId !== planned.segmentId || got.digest !== planned.digest)
    throw new BackupError('target_error', `segment ${planned.segmentId}: the target's manifest changed since the restore was planned; plan again`);
}
/** Largest JSON entry accepted (a descriptor is a few KB; 10,000 file names a few hundred KB). */
export const MAX_JSON_ENTRY = 4 * 1024 * 1024;
/** A segment must hold one of these to be loadable by Druid. */
export const SEGMENT_DATA_FILES = ['version.bin', 'druid.segment'];

export interface SegmentDeclaration {
  formatVersion: typeof WIRE_FORMAT_VERSION;
  segmentId: string;
  descriptor: DataSegment | null;
  files: Array<{ name: string; size: number }>;
}

export interface DigestsTrailer {
  files: SegmentFileInfo[];
}

const SHA256 = /^[0-9a-f]{64}$/;

function bad(what: string, msg: string): never {
  throw new BackupError('bad_archive', `${what}: ${msg}`);
}

function object(v: unknown, what: string): Record<string, unknown> {
  if (!v || typeof v !== 'object' || Array.isArray(v)) bad(what, 'must be a JSON object');
  return v as Record<string, unknown>;
}

export function parseJsonEntry(buf: Buffer, what: string): unknown {
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch (e) {
    bad(what, `not valid JSON (${messageOf(e)})`);
  }
}

/** Checks a file list: plain unique names, whole sizes, a data file; `withDigests` also needs sha256 values. */
export function checkFileList(v: unknown, what: string, withDigests: boolean): SegmentFileInfo[] {
  if (!Array.isArray(v)) bad(what, '"files" must be a list');
  if (v.length === 0) bad(what, '"files" is empty');
  if (v.length > MAX_FILES) bad(what, `more than ${MAX_FILES} files`);
  const seen = new Set<string>();
  const out: SegmentFileInfo[] = [];
  for (const [i, raw] of v.entries()) {
    const f = object(raw, `${what} files[${i}]`);
    const name = f.name as string;
    const problem = segmentFileNameProblem(name);
    if (problem) bad(`${what} files[${i}]`, problem);
    if (seen.has(name)) bad(what, `file "${name}" is listed twice`);
    seen.add(name);
    if (typeof f.size !== 'number' || !Number.isSafeInteger(f.size) || f.size < 0) bad(`${what} files[${i}]`, '"size" must be a non-negative whole number');
    const sha256 = f.sha256;
    if (withDigests && (typeof sha256 !== 'string' || !SHA256.test(sha256))) bad(`${what} files[${i}]`, '"sha256" must be 64 lower-case hex digits');
    out.push({ name, size: f.size, sha256: withDigests ? (sha256 as string) : '' });
  }
  if (!out.some((f) => SEGMENT_DATA_FILES.includes(f.name))) bad(what, `a segment must have ${SEGMENT_DATA_FILES.join(' or ')}`);
  return out;
}

/** Checks a descriptor against the segment id it travels with. */
function checkDescriptor(v: unknown, segmentId: string, what: string): DataSegment | null {
  return describedSegment(v, segmentId, what)?.descriptor ?? null;
}

/** A descriptor checked against the segment id it travels with, and the id's parts as the descriptor gives them. */
function describedSegment(v: unknown, segmentId: unknown, what: string): { descriptor: DataSegment; parts: SegmentId } | undefined {
  if (v === null || v === undefined) return undefined;
  const d = object(v, `${what} descriptor`);
  let parts: SegmentId;
  try {
    parts = segmentIdOfDescriptor(d);
  } catch (e) {
    // A descriptor naming no path inside a root keeps its code: the id is refused, the archive is not damaged.
    if (isBackupError(e) && e.code === 'bad_segment_id') throw e;
    bad(`${what} descriptor`, messageOf(e));
  }
  if (parts.id !== segmentId) bad(`${what} descriptor`, `describes segment ${parts.id}, not ${String(segmentId)}`);
  return { descriptor: d as DataSegment, parts };
}

export function parseDeclaration(json: unknown, expectedId?: string): SegmentDeclaration {
  const o = object(json, DECLARATION_NAME);
  if (o.formatVersion !== WIRE_FORMAT_VERSION) bad(DECLARATION_NAME, `formatVersion ${JSON.stringify(o.formatVersion)} is not ${WIRE_FORMAT_VERSION}`);
  const seg = parseSegmentId(o.segmentId);
  if (expectedId !== undefined && seg.id !== expectedId) bad(DECLARATION_NAME, `declares segment ${seg.id}, but the upload is for ${expectedId}`);
  const files = checkFileList(o.files, DECLARATION_NAME, false).map(({ name, size }) => ({ name, size }));
  return { formatVersion: WIRE_FORMAT_VERSION, segmentId: seg.id, descriptor: checkDescriptor(o.descriptor, seg.id, DECLARATION_NAME), files };
}

export function parseTrailer(json: unknown): DigestsTrailer {
  const o = object(json, TRAILER_NAME);
  return { files: checkFileList(o.files, TRAILER_NAME, true) };
}

/** Checks a manifest read from a store or the wire; the files' digests must add up to the segment digest. */
export function parseManifest(json: unknown, expectedId?: string): Manifest {
  const what = 'manifest.json';
  const o = object(json, what);
  if (o.formatVersion !== MANIFEST_FORMAT_VERSION) bad(what, `formatVersion ${JSON.stringify(o.formatVersion)} is not ${MANIFEST_FORMAT_VERSION}`);
  const seg = parseSegmentId(o.segmentId);
  if (expectedId !== undefined && seg.id !== expectedId) bad(what, `is for segment ${seg.id}, not ${expectedId}`);
  const described = describedSegment(o.descriptor, seg.id, what);
  const descriptor = described?.descriptor ?? null;
  const parts = described?.parts ?? seg;
  const files = checkFileList(o.files, what, true);
  const digest = segmentDigest(files);
  if (o.digest !== digest) bad(what, 'its digest does not match its files');
  const size = files.reduce((n, f) => n + f.size, 0);
  const sources = (v: unknown, field: string) => {
    if (v === undefined) return [];
    if (!Array.isArray(v)) bad(what, `"${field}" must be a list`);
    return v.map((s, i) => {
      const r = object(s, `${what} ${field}[${i}]`);
      if (typeof r.node !== 'string' || typeof r.digest !== 'string' || typeof r.at !== 'string') bad(what, `${field}[${i}] needs node, digest and at`);
      return { node: r.node, digest: r.digest, at: r.at };
    });
  };
  return {
    formatVersion: MANIFEST_FORMAT_VERSION,
    segmentId: seg.id,
    dataSource: parts.dataSource,
    interval: `${parts.start}/${parts.end}`,
    version: parts.version,
    partition: parts.partition,
    descriptor,
    files,
    size,
    digest,
    sources: sources(o.sources, 'sources'),
    conflicts: sources(o.conflicts, 'conflicts'),
    createdAt: typeof o.createdAt === 'string' ? o.createdAt : '',
    updatedAt: typeof o.updatedAt === 'string' ? o.updatedAt : '',
  };
}
