/**
 * A restore from start to end: checks the request, reads the target's catalog and what the destination holds,
 * plans (plan.ts), and carries the plan out segment by segment, or new small ones in groups (install.ts), reporting
 * progress and stopping between segments when cancelled. The HTTP route, the automatic restore and the tests all
 * come through here.
 */
import { existsSync, promises as fs, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { RestoreRequest } from '../api.js';
import type { SidecarConfig } from '../config.js';
import type { CacheLayout } from '../druid/layout.js';
import type { CachedSegment, CacheLocationConfig, CacheScan } from '../druid/scan.js';
import { scanCache } from '../druid/scan.js';
import { BackupError, messageOf } from '../errors.js';
import type { Manifest, SegmentFileInfo } from '../store/manifest.js';
import type { Target } from '../store/target.js';
import { GROUPS_PER_WORKER, hasCapability, SMALL_GROUP } from '../store/target.js';
import { eachWeighted } from '../util/pool.js';
import { FilesystemSync } from '../util/syncfs.js';
import type { RateLimit } from '../util/rateLimit.js';
import type { Leftovers } from './atomic.js';
import { removeLeftovers } from './atomic.js';
import type { DigestMemo } from './digests.js';
import type { InstallOptions, StagedSegment } from './install.js';
import { commitGroup, groupable, installSegment, stageIntoCache } from './install.js';
import type { DestinationSpec, Plan, PlannedSegment, PresentCopy, PresentFile } from './plan.js';
import { checkManifest, deepStoragePathOf, isZipPath, planRestore } from './plan.js';
import { measureRoom } from './room.js';
import { parseSelector, selectManifests, toListFilter } from './select.js';

export type RestoreLayoutSetting = CacheLayout | 'auto';

/** What a restore needs to know of the node it runs on. */
export interface RestoreEnv {
  druid: SidecarConfig['druid'];
  /** Where the sidecar keeps its own state and, on a target, its store: never a restore destination. */
  stateDir?: string;
  store?: string;
  /** Layout of new segments in an empty cache (`auto`: nested, as Druid up to 34 writes). */
  layout: RestoreLayoutSetting;
  workers: number;
  memo: DigestMemo;
  /** Digests of a cached segment's files that active backup already computed, while the files keep their fingerprints. */
  knownDigests?(segment: CachedSegment): SegmentFileInfo[] | undefined;
}

/** Progress and cancel, as the job registry's JobContext offers them. */
export interface RestoreProgress {
  readonly signal: AbortSignal;
  setTotals(segments: number, bytes: number): void;
  addBytes(n: number): void;
  setCurrent(segmentId?: string): void;
  segmentDone(outcome: 'done' | 'skipped'): void;
  segmentFailed(segmentId: string | undefined, message: string): void;
  throwIfCancelled(): void;
}

export interface RestoreHooks {
  /** Takes a segment before its files change; false when another restore has it (this one then fails it). */
  claim?(segmentId: string): boolean;
  release?(segmentId: string): void;
  /** Called after each segment is in place. */
  installed?(item: PlannedSegment): void;
}

type ResolvedDestination =
  { kind: 'cache'; name: string; locations: CacheLocationConfig[]; infoDir: string } | { kind: 'deep-storage'; name: string; directory: string };

function inside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** Checks `destination`: `cache`, `deep-storage`, or an absolute directory outside Druid's cache and the sidecar's own state. */
export function resolveDestination(raw: unknown, env: RestoreEnv): ResolvedDestination {
  const d = raw ?? 'cache';
  if (typeof d !== 'string' || d === '') throw new BackupError('bad_request', 'destination must be "cache", "deep-storage" or an absolute directory path');
  if (d === 'cache') {
    if (env.druid.locations.length === 0)
      throw new BackupError(
        'bad_request',
        'this sidecar has no segment cache (druid.segmentCache.locations is not set); restore to "deep-storage" or a directory',
      );
    const infoDir = env.druid.infoDir ?? path.join(env.druid.locations[0]!.path, 'info_dir');
    return { kind: 'cache', name: 'cache', locations: env.druid.locations, infoDir };
  }
  if (d === 'deep-storage') {
    const s = env.druid.storage;
    if (s.type !== 'local')
      throw new BackupError(
        'bad_request',
        `this node's deep storage is "${s.type}" (druid.storage.type); only local deep storage can be rebuilt; restore to a directory instead`,
      );
    if (!s.directory)
      throw new BackupError(
        'bad_request',
        'druid.storage.storageDirectory is not set on this node, so its deep storage is unknown; restore to a directory instead',
      );
    return { kind: 'deep-storage', name: d, directory: s.directory };
  }
  if (!path.isAbsolute(d)) throw new BackupError('bad_request', `destination "${d.slice(0, 200)}" is not "cache", "deep-storage" or an absolute path`);
  if (/[\u0000-\u001f]/.test(d)) throw new BackupError('bad_request', 'destination contains a control character');
  const dir = path.resolve(d);
  for (const loc of env.druid.locations) {
    if (inside(dir, loc.path) || inside(loc.path, dir))
      throw new BackupError('bad_request', `destination ${dir} overlaps the cache location ${loc.path}, which Druid owns; use "cache" to restore into it`);
  }
  for (const [what, p] of [
    ['state directory', env.stateDir],
    ['store', env.store],
  ] as const) {
    if (p && (inside(dir, p) || inside(p, dir))) throw new BackupError('bad_request', `destination ${dir} overlaps the sidecar's ${what} ${p}`);
  }
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new BackupError('bad_request', `destination ${dir} exists and is not a directory`);
  } else if (!existsSync(path.dirname(dir))) {
    throw new BackupError('bad_request', `destination ${dir}: its parent directory ${path.dirname(dir)} does not exist`);
  }
  return { kind: 'cache', name: dir, locations: [{ path: dir }], infoDir: path.join(dir, 'info_dir') };
}

function layoutFor(scan: CacheScan, setting: RestoreLayoutSetting): CacheLayout {
  if (scan.layout === 'nested' || scan.layout === 'flat') return scan.layout;
  // A mixed cache is one Druid 35+ is moving to flat names.
  if (scan.layout === 'mixed') return 'flat';
  return setting === 'auto' ? 'nested' : setting;
}

/** The files of a directory, with digests when names and sizes are those of the manifest (else hashing is pointless). */
async function presentFiles(dir: string, manifest: Manifest, memo: DigestMemo, signal?: AbortSignal): Promise<PresentFile[]> {
  const files: PresentFile[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    if (!e.isFile()) {
      files.push({ name: e.name, size: -1 });
      continue;
    }
    files.push({ name: e.name, size: (await fs.stat(path.join(dir, e.name))).size });
  }
  const want = new Map(manifest.files.map((f) => [f.name, f.size]));
  const same = files.length === want.size && files.every((f) => want.get(f.name) === f.size);
  if (same) for (const f of files) f.sha256 = (await memo.digest(path.join(dir, f.name), { signal })).sha256;
  return files;
}

/**
 * What local deep storage holds of each manifest's segment at its loadSpec path (inside `directory`): an `index/`
 * directory with its files' digests when names and sizes match, an `index.zip` by its size only.
 */
export async function presentInDeepStorage(
  manifests: readonly Manifest[],
  directory: string,
  target: string,
  memo: DigestMemo,
  signal?: AbortSignal,
): Promise<Map<string, PresentCopy>> {
  const present = new Map<string, PresentCopy>();
  for (const m of manifests) {
    let p: string;
    try {
      p = deepStoragePathOf(m, checkManifest(m, target), directory);
    } catch {
      continue; // the planner refuses this segment, with the reason
    }
    const st = await fs.stat(p).catch(() => undefined);
    if (!st) continue;
    if (st.isDirectory() && !isZipPath(p)) present.set(m.segmentId, { path: p, size: 0, files: await presentFiles(p, m, memo, signal) });
    else present.set(m.segmentId, { path: p, size: st.size });
  }
  return present;
}

async function readCatalog(target: Target, req: RestoreRequest, signal?: AbortSignal): Promise<Manifest[]> {
  const sel = parseSelector(req);
  const all: Manifest[] = [];
  for await (const m of target.list(toListFilter(sel, req), { signal })) all.push(m);
  return selectManifests(sel, all, target.url);
}

/** Plans a restore; changes no file (a dry run answers with `plan.plan`). */
export async function planFor(req: RestoreRequest, target: Target, env: RestoreEnv, signal?: AbortSignal): Promise<{ plan: Plan; dest: DestinationSpec }> {
  const resolved = resolveDestination(req.destination, env);
  const manifests = await readCatalog(target, req, signal);
  const present = new Map<string, PresentCopy>();
  if (resolved.kind === 'deep-storage') {
    for (const [id, copy] of await presentInDeepStorage(manifests, resolved.directory, target.url, env.memo, signal)) present.set(id, copy);
    const dest: DestinationSpec = {
      kind: 'deep-storage',
      name: resolved.name,
      directory: resolved.directory,
      room: measureRoom({ path: resolved.directory }, 0),
    };
    return { plan: planRestore({ target: target.url, destination: dest, manifests, present }), dest };
  }
  const scan = await scanCache({ locations: resolved.locations, infoDir: resolved.infoDir });
  const bySegment = new Map(scan.segments.map((s) => [s.id, s]));
  for (const m of manifests) {
    const s = bySegment.get(m.segmentId);
    if (!s) continue;
    const copy: PresentCopy = { path: s.dir, location: s.location, size: s.size, downloading: s.state === 'downloading' };
    if (!copy.downloading) copy.files = env.knownDigests?.(s) ?? (await presentFiles(s.dir, m, env.memo, signal));
    present.set(m.segmentId, copy);
  }
  const infoFiles = new Set([...scan.segments.filter((s) => s.infoFile).map((s) => s.id), ...scan.missing.map((s) => s.id)]);
  const used = new Map<string, number>();
  for (const s of scan.segments) used.set(s.location, (used.get(s.location) ?? 0) + s.size);
  const rooms = resolved.locations.map((l) => measureRoom(l, used.get(path.resolve(l.path)) ?? 0));
  const dest: DestinationSpec = { kind: 'cache', name: resolved.name, layout: layoutFor(scan, env.layout), infoDir: resolved.infoDir, rooms };
  return { plan: planRestore({ target: target.url, destination: dest, manifests, present, infoFiles }), dest };
}

export interface RestoreOutcome {
  restored: string[];
  skipped: string[];
  failed: Array<{ segmentId: string; message: string }>;
}

/** Carries a plan out; each segment either lands whole and verified or not at all. */
export async function executePlan(
  plan: Plan,
  dest: DestinationSpec,
  target: Target,
  env: RestoreEnv,
  progress: RestoreProgress,
  hooks: RestoreHooks = {},
  limit?: RateLimit,
): Promise<RestoreOutcome> {
  const out: RestoreOutcome = { restored: [], skipped: [], failed: [] };
  progress.setTotals(plan.items.length + plan.refused.length, plan.plan.totals.bytes);
  for (const r of plan.refused) {
    progress.segmentFailed(r.segmentId, r.message);
    out.failed.push(r);
  }
  for (const s of plan.items.filter((i) => i.action === 'skip')) {
    progress.segmentDone('skipped');
    out.skipped.push(s.segmentId);
  }
  const todo = plan.items.filter((i) => i.action !== 'skip');
  const flushers = await groupFlushers(todo, dest);
  /** Takes the segment (false: another restore has it, and it is failed). */
  const claim = (item: PlannedSegment): boolean => {
    progress.setCurrent(item.segmentId);
    if (!hooks.claim || hooks.claim(item.segmentId)) return true;
    failed(item, new Error('another restore is installing this segment right now'));
    return false;
  };
  const failed = (item: PlannedSegment, e: unknown) => {
    if (progress.signal.aborted) return;
    progress.segmentFailed(item.segmentId, messageOf(e));
    out.failed.push({ segmentId: item.segmentId, message: messageOf(e) });
  };
  const done = (item: PlannedSegment) => {
    env.memo.forget(item.path + path.sep);
    progress.segmentDone('done');
    out.restored.push(item.segmentId);
    hooks.installed?.(item);
  };
  // With several copies (a target set), a copy found damaged or a target gone mid-restore is read again from
  // another copy; what the failed attempt counted is taken back.
  const fromAnyCopy = async <T>(item: PlannedSegment, run: (opts: InstallOptions) => Promise<T>): Promise<T> => {
    for (;;) {
      const attempt = counted();
      try {
        return await run(attempt.opts);
      } catch (e) {
        attempt.takeBack();
        if (progress.signal.aborted || !target.readFailed?.(item.segmentId, e)) throw e;
      }
    }
  };
  /** The options of one attempt at a segment: the bytes it moves are counted, and can be taken back if it fails. */
  const counted = (): { opts: InstallOptions; takeBack(): void } => {
    let moved = 0;
    const onBytes = (n: number) => {
      moved += n;
      progress.addBytes(n);
    };
    return { opts: { target, signal: progress.signal, limit, onBytes }, takeBack: () => progress.addBytes(-moved) };
  };
  const installOne = async (item: PlannedSegment) => {
    if (progress.signal.aborted || !claim(item)) return;
    try {
      await fromAnyCopy(item, (opts) => installSegment(item, dest, opts));
      done(item);
    } catch (e) {
      failed(item, e);
    } finally {
      hooks.release?.(item.segmentId);
    }
  };
  // New small segments go up to SMALL_GROUP at once to a worker, staged one after another and installed together
  // (install.ts, commitGroup); any other segment takes a whole worker, as a backup's do (backup/sender.ts).
  const installGroup = async (group: PlannedSegment[]) => {
    const staged: StagedSegment[] = [];
    const claimed: PlannedSegment[] = [];
    try {
      for (const item of group) if (!progress.signal.aborted && claim(item)) claimed.push(item);
      // Read in one exchange where the target offers it; what the batch did not bring is read alone.
      const fromBatch = await stageFromBatch(claimed);
      for (const item of claimed) {
        if (progress.signal.aborted) break;
        const s = fromBatch.get(item.segmentId);
        if (s) {
          staged.push(s);
          continue;
        }
        try {
          staged.push(await fromAnyCopy(item, (opts) => stageIntoCache(item, opts)));
        } catch (e) {
          failed(item, e);
        }
      }
      if (!staged.length || dest.kind !== 'cache') return;
      const errors = await commitGroup(staged, dest.infoDir, (dir) => flushers!.get(dir)!, progress.signal);
      staged.forEach((s, i) => (errors[i] === undefined ? done(s.item) : failed(s.item, errors[i])));
    } finally {
      for (const item of claimed) hooks.release?.(item.segmentId);
    }
  };
  /**
   * The segments of a group that one batch read brought, received into their staging directories, by id; none when
   * the target reads one segment at a time. A segment the batch failed, or that its failure left unread, is not
   * among them: the caller reads it alone, with the single read's retries and messages; what its failed attempt
   * counted is taken back, and a set of copies is told which copy failed.
   */
  const stageFromBatch = async (items: PlannedSegment[]): Promise<Map<string, StagedSegment>> => {
    const out = new Map<string, StagedSegment>();
    if (items.length < 2 || !hasCapability(target, 'readBatch')) return out;
    const byId = new Map(items.map((i) => [i.segmentId, i]));
    try {
      const parts = await target.readBatch([...byId.keys()], { signal: progress.signal, planned: (id) => byId.get(id)?.manifest });
      if (!parts) return out;
      for await (const part of parts) {
        const item = byId.get(part.segmentId);
        if (!item || !part.reader) continue;
        const attempt = counted();
        try {
          out.set(item.segmentId, await stageIntoCache(item, attempt.opts, part.reader));
        } catch (e) {
          attempt.takeBack();
          // With several copies, the one that failed is not read again for this segment (`fromAnyCopy`'s rule).
          target.readFailed?.(item.segmentId, e);
        }
      }
    } catch {
      // A broken answer: what it did not bring is read alone.
    }
    return out;
  };
  const units: PlannedSegment[][] = [];
  for (const item of todo) {
    const last = units.at(-1);
    if (!flushers || !groupable(item, dest)) units.push([item]);
    else if (last && last.length < SMALL_GROUP && groupable(last[0]!, dest)) last.push(item);
    else units.push([item]);
  }
  await eachWeighted(
    units,
    env.workers * GROUPS_PER_WORKER,
    (unit) => (flushers && groupable(unit[0]!, dest) ? 1 : GROUPS_PER_WORKER),
    (unit) => (flushers && groupable(unit[0]!, dest) ? installGroup(unit) : installOne(unit[0]!)),
  );
  progress.setCurrent(undefined);
  progress.throwIfCancelled();
  return out;
}

/**
 * The flushers of the filesystems of the cache locations and info_dir that new small segments go to, by directory,
 * when the plan has such segments and this system can flush a filesystem (util/syncfs.ts); else undefined, and every
 * segment is installed alone, each file and directory flushed in turn.
 */
async function groupFlushers(items: readonly PlannedSegment[], dest: DestinationSpec): Promise<Map<string, FilesystemSync> | undefined> {
  if (dest.kind !== 'cache') return undefined;
  const small = items.filter((i) => groupable(i, dest));
  if (small.length < 2) return undefined;
  const out = new Map<string, FilesystemSync>();
  try {
    for (const dir of new Set([...small.map((i) => i.location!), dest.infoDir])) {
      // info_dir may not be there yet in an emptied cache; Druid makes it at start too.
      mkdirSync(dir, { recursive: true });
      const f = await FilesystemSync.shared(dir);
      if (!f) return undefined;
      out.set(dir, f);
    }
  } catch {
    return undefined;
  }
  return out;
}

/** Removes what a crash left of restores: staging in every cache location, info_dir and deep storage; half-done swaps are undone. */
export async function cleanLeftovers(env: Pick<RestoreEnv, 'druid'>): Promise<Leftovers> {
  const out: Leftovers = { removed: [], putBack: [], problems: [] };
  const roots = new Set<string>(env.druid.locations.map((l) => l.path));
  if (env.druid.infoDir) roots.add(env.druid.infoDir);
  else if (env.druid.locations[0]) roots.add(path.join(env.druid.locations[0].path, 'info_dir'));
  if (env.druid.storage.type === 'local' && env.druid.storage.directory) roots.add(env.druid.storage.directory);
  for (const r of roots) await removeLeftovers(r, out);
  return out;
}
