/**
 * The one rule for paths: every path the sidecar writes or removes for a segment (its directory in a cache location,
 * in either layout, its info_dir file, its place in local deep storage or in a directory destination, its place
 * in a local store, its keys in a bucket) is derived here, from a segment id or descriptor that may come from
 * anywhere (a request, an upload, a manifest a target or a bucket sent, a file in info_dir).
 *
 * Two checks, both always: the parts must be ones Druid could have made (a data source and a version that are
 * plain names: no path separator, NUL or control character, not `.` or `..`; an interval of two instants, start
 * before end; a partition number that is a Java int, not negative), and the path built from them must lie inside
 * its root, proved with `path.relative` rather than assumed from the first check. A refusal is a `bad_segment_id`
 * (a 400, a failed segment in a job) that names the id, escaped and cut short.
 */
import path from 'node:path';
import { BackupError } from '../errors.js';
import type { LoadSpec } from './descriptor.js';
import type { CacheLayout } from './layout.js';
import type { SegmentId } from './segmentId.js';
import { parseInstant } from './time.js';

/** The fields of a segment a path is made of. */
export type SegmentParts = Pick<SegmentId, 'id' | 'dataSource' | 'start' | 'end' | 'version' | 'partition'>;

const SHOWN = 200;
// C0 and C1 control characters, DEL, and the line and paragraph separators.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/** A value from outside as it may appear in a message: JSON-escaped (no control character reaches a log line) and short. */
export function quoteId(v: unknown): string {
  const s = JSON.stringify(typeof v === 'string' ? v : String(v));
  return s.length > SHOWN ? `${s.slice(0, SHOWN)}…"` : s;
}

function nameProblem(what: string, v: unknown): string | undefined {
  if (typeof v !== 'string' || v === '') return `its ${what} is empty`;
  if (v === '.' || v === '..') return `its ${what} is ${JSON.stringify(v)}`;
  if (v.includes('/') || v.includes('\\')) return `its ${what} contains a path separator`;
  if (CONTROL.test(v)) return `its ${what} contains a NUL or control character`;
  return undefined;
}

function instantProblem(what: string, v: unknown): string | undefined {
  return typeof v === 'string' && parseInstant(v) !== undefined ? undefined : `its interval ${what} ${quoteId(v)} is not an ISO-8601 instant`;
}

/** Why these parts cannot name a path, or undefined when they can. */
export function segmentPartsProblem(p: Omit<SegmentParts, 'id'>): string | undefined {
  const problem =
    nameProblem('data source', p.dataSource) ?? nameProblem('version', p.version) ?? instantProblem('start', p.start) ?? instantProblem('end', p.end);
  if (problem) return problem;
  if (parseInstant(p.start)! >= parseInstant(p.end)!) return 'its interval does not end after it starts';
  if (!Number.isInteger(p.partition) || p.partition < 0 || p.partition > 2147483647)
    return `its partition number ${String(p.partition)} is not 0 to 2147483647`;
  return undefined;
}

function refuse(id: unknown, problem: string): BackupError {
  return new BackupError('bad_segment_id', `segment ${quoteId(id)} is refused: ${problem}`);
}

/** Throws `bad_segment_id` when the parts cannot name a path. */
export function checkSegmentParts(p: SegmentParts): void {
  const problem = segmentPartsProblem(p);
  if (problem) throw refuse(p.id, problem);
  if (nameProblem('id', p.id)) throw refuse(p.id, nameProblem('id', p.id)!);
}

/** Whether the absolute path `p` lies strictly below `root` (not `root` itself), after resolving `..`. */
export function isInside(root: string, p: string): boolean {
  return below(resolvedRoot(root), path.resolve(p));
}

/**
 * Whether `p` lies strictly below `base`, both resolved (absolute, normalised, no trailing separator but the
 * filesystem root's): then `path.relative(base, p)` climbs out exactly when `p` does not begin with `base` and a
 * separator, so the prefix is the proof, without the cost of `relative` on every file of every segment.
 */
function below(base: string, p: string): boolean {
  const prefix = base.endsWith(path.sep) ? base : base + path.sep;
  return p.length > prefix.length && p.startsWith(prefix);
}

// The few roots paths are made under (cache locations, info_dir, a store), resolved once each (absolute ones only:
// a relative one depends on the working directory).
const roots = new Map<string, string>();
function resolvedRoot(root: string): string {
  if (!path.isAbsolute(root)) return path.resolve(root);
  let r = roots.get(root);
  if (r === undefined) {
    if (roots.size >= 1024) roots.clear();
    roots.set(root, (r = path.resolve(root)));
  }
  return r;
}

/** `root` joined with `parts`, proved to lie strictly inside `root`; else `bad_segment_id` for `id`. */
export function inside(root: string, parts: readonly string[], id: unknown): string {
  const base = resolvedRoot(root);
  const p = path.resolve(base, ...parts);
  if (!below(base, p)) throw refuse(id, `its path ${quoteId(p)} is not inside ${quoteId(base)}`);
  return p;
}

/** The path of a segment's directory relative to its cache location, in Druid's two layouts. */
function cacheParts(seg: SegmentParts, layout: CacheLayout): string[] {
  return layout === 'flat' ? [seg.id] : [seg.dataSource, `${seg.start}_${seg.end}`, seg.version, String(seg.partition)];
}

/**
 * A segment's directory in a cache location (or a directory destination, laid out like one):
 * nested `{location}/{dataSource}/{start}_{end}/{version}/{partitionNum}`, flat `{location}/{segmentId}`.
 */
export function cacheSegmentPath(location: string, seg: SegmentParts, layout: CacheLayout): string {
  checkSegmentParts(seg);
  return inside(location, cacheParts(seg, layout), seg.id);
}

/** A segment's info_dir file, named by its id. */
export function infoFilePath(infoDir: string, seg: SegmentParts): string {
  checkSegmentParts(seg);
  return inside(infoDir, [seg.id], seg.id);
}

/** A segment's place in a local store, `encoded` being its path relative to the store (store/local/layout.ts). */
export function storeSegmentPath(store: string, seg: SegmentParts, encoded: string): string {
  checkSegmentParts(seg);
  return inside(store, [encoded], seg.id);
}

/** A name of our own (a staging directory, a temporary file) in `root`. */
export function ownPath(root: string, name: string): string {
  return inside(root, [name], name);
}

/**
 * Where a segment goes in local deep storage: its descriptor's loadSpec path, which must be absolute and inside
 * the node's `druid.storage.storageDirectory`. A restore never writes where a manifest merely says.
 */
export function deepStoragePath(seg: SegmentParts, spec: LoadSpec | undefined, directory: string): string {
  checkSegmentParts(seg);
  if (!spec)
    throw new BackupError('bad_request', `segment ${quoteId(seg.id)} has no descriptor with a loadSpec in the backup; restore it into a directory instead`);
  if (spec.type !== 'local' || typeof spec.path !== 'string') {
    throw new BackupError(
      'bad_request',
      `segment ${quoteId(seg.id)} was loaded from ${quoteId(spec.type)} deep storage, not local; restore it into a directory instead`,
    );
  }
  if (CONTROL.test(spec.path)) throw refuse(seg.id, 'its loadSpec path contains a NUL or control character');
  if (!path.isAbsolute(spec.path)) throw refuse(seg.id, `its loadSpec path ${quoteId(spec.path)} is not absolute`);
  const p = path.resolve(spec.path);
  if (!isInside(directory, p))
    throw refuse(seg.id, `its loadSpec path ${quoteId(p)} is outside the node's deep storage ${quoteId(directory)} (druid.storage.storageDirectory)`);
  return p;
}

/**
 * A key in a bucket: `base` (empty or ending in `/`) followed by `rest`, whose every `/`-separated part must be a
 * plain name (no `.`, `..`, empty part or control character), so the key names an object below `base` on any
 * S3 server, including those that keep keys as file paths. A prefix (`rest` ending in `/`) is allowed.
 */
export function bucketKey(base: string, rest: string, id: unknown): string {
  const parts = rest.split('/');
  if (rest.endsWith('/')) parts.pop();
  for (const part of parts) {
    if (part === '' || part === '.' || part === '..' || CONTROL.test(part)) throw refuse(id, `its key ${quoteId(base + rest)} is not below ${quoteId(base)}`);
  }
  return base + rest;
}
