/**
 * What every reliability test checks after its fault: the store on disk holds whole segments only (each directory
 * a manifest and exactly its files, every size and sha256 as the manifest says, nothing left in `.tmp`), the
 * stored bytes equal the cache's, and directory trees that must not change did not. Plus a seeded random number
 * generator, so a failed trial can be run again with its seed.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { segmentIdOfDescriptor } from '../../sidecar/druid/descriptor.js';
import type { CacheLayout } from '../../sidecar/druid/layout.js';
import { cacheSegmentPath } from '../../sidecar/druid/paths.js';
import type { Manifest } from '../../sidecar/store/manifest.js';
import { segmentDigest } from '../../sidecar/store/manifest.js';
import type { Job } from '../../sidecar/api.js';
import { runCli } from '../helpers/cli.js';
import type { SidecarProcess } from '../helpers/sidecar.js';

/** mulberry32: a small seeded generator of numbers in [0, 1). */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

export interface StoreCheck {
  /** Every stored segment by id. */
  segments: Map<string, Manifest & { dir: string }>;
  /** Partial, damaged or foreign things found; empty when the store is sound. */
  problems: string[];
  /** Entries left in the store's temporary area. */
  tmp: string[];
}

/** Re-reads a local store from disk, independently of the sidecar: every file against its manifest. */
export function checkStore(storeDir: string): StoreCheck {
  const problems: string[] = [];
  const segments = new Map<string, Manifest & { dir: string }>();
  const segRoot = path.join(storeDir, 'segments');
  for (const ds of existsSync(segRoot) ? readdirSync(segRoot) : []) {
    const dsDir = path.join(segRoot, ds);
    if (!lstatSync(dsDir).isDirectory()) {
      problems.push(`${dsDir}: not a directory`);
      continue;
    }
    for (const name of readdirSync(dsDir)) {
      const dir = path.join(dsDir, name);
      let m: Manifest;
      try {
        m = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
      } catch (e) {
        problems.push(`${dir}: no readable manifest.json (${(e as Error).message})`);
        continue;
      }
      if (segments.has(m.segmentId)) problems.push(`${m.segmentId} is stored twice`);
      segments.set(m.segmentId, { ...m, dir });
      const present = new Set(readdirSync(dir));
      present.delete('manifest.json');
      for (const f of m.files) {
        if (!present.delete(f.name)) {
          problems.push(`${m.segmentId}/${f.name}: missing`);
          continue;
        }
        const file = path.join(dir, f.name);
        const st = lstatSync(file);
        if (!st.isFile()) problems.push(`${m.segmentId}/${f.name}: not a regular file`);
        else if (st.size !== f.size) problems.push(`${m.segmentId}/${f.name}: ${st.size} bytes, manifest says ${f.size}`);
        else if (sha256(file) !== f.sha256) problems.push(`${m.segmentId}/${f.name}: damaged (sha256 differs from the manifest)`);
      }
      for (const extra of present) problems.push(`${m.segmentId}: extra file ${extra}`);
      if (segmentDigest(m.files) !== m.digest) problems.push(`${m.segmentId}: manifest digest does not match its files`);
    }
  }
  const tmpDir = path.join(storeDir, '.tmp');
  const tmp = existsSync(tmpDir) ? readdirSync(tmpDir) : [];
  return { segments, problems, tmp };
}

/** Every stored file equals the cache's file of the same segment (found through the cache's segment directories). */
export function compareWithCache(check: StoreCheck, cacheDirs: Map<string, string>): string[] {
  const problems: string[] = [];
  for (const [id, m] of check.segments) {
    const cacheDir = cacheDirs.get(id);
    if (!cacheDir) {
      problems.push(`${id}: stored but not in the cache`);
      continue;
    }
    const names = readdirSync(cacheDir).sort();
    const stored = m.files.map((f) => f.name).sort();
    if (names.join() !== stored.join()) problems.push(`${id}: stored files ${stored.join()} differ from the cache's ${names.join()}`);
    for (const f of m.files) {
      const a = path.join(cacheDir, f.name);
      if (existsSync(a) && !readFileSync(a).equals(readFileSync(path.join(m.dir, f.name))))
        problems.push(`${id}/${f.name}: stored bytes differ from the cache`);
    }
  }
  return problems;
}

/** Every file and directory under `dir` with its size and mtime, for "nothing changed" checks. */
export function treeSnapshot(dir: string, skip: (rel: string) => boolean = () => false): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = path.join(d, name);
      const rel = path.relative(dir, p);
      if (skip(rel)) continue;
      const st = lstatSync(p);
      out.set(rel, st.isDirectory() ? 'dir' : `${st.isSymbolicLink() ? 'link' : 'file'}:${st.size}:${st.mtimeMs}`);
      if (st.isDirectory()) walk(p);
    }
  };
  if (existsSync(dir)) walk(dir);
  return out;
}

/** What differs between two snapshots, as readable lines. */
export function treeDiff(before: Map<string, string>, after: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of after) if (before.get(k) !== v) out.push(`${before.has(k) ? 'changed' : 'added'}: ${k}`);
  for (const k of before.keys()) if (!after.has(k)) out.push(`removed: ${k}`);
  return out;
}

/** The directory of each segment of a sample cache, by id, from its info_dir descriptors (ids ending in `_1` are ambiguous). */
export function cacheDirs(sample: { location: string; infoDir: string; segmentIds: string[] }, layout: CacheLayout = 'nested'): Map<string, string> {
  const out = new Map<string, string>();
  for (const id of sample.segmentIds) {
    const seg = segmentIdOfDescriptor(JSON.parse(readFileSync(path.join(sample.infoDir, id), 'utf8')));
    out.set(id, cacheSegmentPath(sample.location, seg, layout));
  }
  return out;
}

let hasVerify: boolean | undefined;

/**
 * `druid-backup verify --store DIR` (issue 4's verify) on the built CLI: its exit status and output, or undefined
 * while the build has no verify command yet (checkStore above is the independent check either way).
 */
export async function verifyStoreCli(storeDir: string): Promise<{ status: number | null; output: string } | undefined> {
  hasVerify ??= /^\s+verify\b/m.test((await runCli(['--help'])).stdout);
  if (!hasVerify) return undefined;
  const r = await runCli(['verify', '--store', storeDir]);
  return { status: r.code, output: r.stdout + r.stderr };
}

export interface RawResponse {
  /** The status, or undefined when the server closed the connection without an answer. */
  status?: number;
  body: string;
  /** Request bytes the socket accepted before the answer or the close. */
  written: number;
}

/**
 * One HTTP/1.1 request over a plain socket, so a test controls every byte: a `content-length` that lies, a body
 * cut off, a body far longer than declared (`body` may be a generator of chunks; writing stops once the server
 * answered or closed).
 */
export function rawHttp(
  url: string,
  head: string,
  body: Buffer | Iterable<Buffer> = Buffer.alloc(0),
  opts: { endEarly?: boolean; timeoutMs?: number } = {},
): Promise<RawResponse> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = net.connect(Number(u.port), u.hostname);
    let received = Buffer.alloc(0);
    let written = 0;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      const text = received.toString('utf8');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      const sep = text.indexOf('\r\n\r\n');
      resolve({ status: m ? Number(m[1]) : undefined, body: sep >= 0 ? text.slice(sep + 4) : '', written });
    };
    s.on('data', (d: Buffer) => {
      received = Buffer.concat([received, d]);
      const text = received.toString('latin1');
      const sep = text.indexOf('\r\n\r\n');
      const cl = /\r\ncontent-length:\s*(\d+)/i.exec(text);
      if (sep >= 0 && cl && received.length >= sep + 4 + Number(cl[1])) finish();
    });
    s.on('error', finish);
    s.on('close', finish);
    const timer = setTimeout(finish, opts.timeoutMs ?? 30_000);
    const drained = () =>
      new Promise<void>((r) => {
        const stop = () => {
          clearInterval(t);
          s.off('drain', stop);
          r();
        };
        const t = setInterval(() => {
          if (done || s.destroyed || received.length > 0) stop();
        }, 20);
        s.once('drain', stop);
      });
    s.on('connect', async () => {
      s.write(head);
      const chunks = Buffer.isBuffer(body) ? [body] : body;
      for (const c of chunks) {
        if (done || s.destroyed || received.length > 0) break;
        written += c.length;
        if (!s.write(c)) await drained();
      }
      if (opts.endEarly) s.end();
    });
  });
}

/** Lines of a sidecar's JSON log with the given message. */
export function logged(text: string, msg: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{') || !line.includes(msg)) continue;
    try {
      const o = JSON.parse(line) as Record<string, unknown>;
      if (o.msg === msg) out.push(o);
    } catch {
      // a line cut by a kill
    }
  }
  return out;
}

/**
 * The outcome every fault must end in: each segment of the cache stored exactly once (one directory, `node` its one
 * source, no conflict, committed once across every life of the target whose logs are given), sound and
 * byte-identical to the cache, and nothing left in `.tmp`.
 */
export function assertStoredOnce(
  storeDir: string,
  sample: { location: string; infoDir: string; segmentIds: string[] },
  node: string,
  targetLogs: string[],
): StoreCheck {
  const check = checkStore(storeDir);
  assert.deepEqual(check.problems, [], 'the store holds only whole, sound segments');
  assert.deepEqual(check.tmp, [], 'the temporary area is empty');
  assert.deepEqual([...check.segments.keys()].sort(), [...sample.segmentIds].sort(), 'every segment is stored');
  for (const m of check.segments.values()) {
    assert.deepEqual(
      m.sources.map((s) => s.node),
      [node],
      `${m.segmentId}: recorded once, from its node`,
    );
    assert.deepEqual(m.conflicts, [], `${m.segmentId}: no conflict`);
  }
  assert.deepEqual(compareWithCache(check, cacheDirs(sample)), [], 'stored bytes equal the cache');
  const commits = new Map<string, number>();
  for (const text of targetLogs) for (const l of logged(text, 'segment stored')) commits.set(String(l.segmentId), (commits.get(String(l.segmentId)) ?? 0) + 1);
  for (const [id, n] of commits) assert.equal(n, 1, `${id} was committed ${n} times`);
  return check;
}

/** Every path under `dir` whose name starts with a dot: a staging directory or temporary file left behind. */
export function dotEntries(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.name.startsWith('.')) out.push(path.join(d, e.name));
      else if (e.isDirectory()) walk(path.join(d, e.name));
    }
  };
  if (existsSync(dir)) walk(dir);
  return out;
}

/**
 * A `sync` of the test's own, in `{root}/bin`, for a sidecar started with `env` (its PATH): it logs its arguments
 * (`flushes()`), fails as a write-back error would while the file `failFlag` exists, and else runs the real flush.
 * What the real one cannot be made to do.
 */
export function loggingSync(root: string): { env: Record<string, string>; failFlag: string; flushes: () => string[] } {
  const bin = path.join(root, 'bin');
  mkdirSync(bin, { recursive: true });
  const calls = path.join(root, 'calls.log');
  const failFlag = path.join(root, 'fail');
  writeFileSync(calls, '');
  writeFileSync(
    path.join(bin, 'sync'),
    `#!/bin/sh\necho "$*" >> "${calls}"\nif [ -e "${failFlag}" ]; then echo "sync: error syncing '$3': Input/output error" >&2; exit 1; fi\nexec /bin/sync "$@"\n`,
  );
  chmodSync(path.join(bin, 'sync'), 0o755);
  return { env: { PATH: `${bin}:${process.env.PATH}` }, failFlag, flushes: () => readFileSync(calls, 'utf8').split('\n').filter(Boolean) };
}

/** Where each segment of a sample cache lies and what its files hold: what a restore of it must bring back. */
export interface CacheCopy {
  dirs: Map<string, string>;
  files: Map<string, Map<string, Buffer>>;
}

export function copyOfCache(sample: { location: string; infoDir: string; segmentIds: string[] }): CacheCopy {
  const dirs = cacheDirs(sample);
  return { dirs, files: new Map([...dirs].map(([id, d]) => [id, new Map(readdirSync(d).map((f) => [f, readFileSync(path.join(d, f))]))])) };
}

/** Every segment of `copy` is back in its place byte for byte, with its info_dir file, and no staging is left. */
export function assertRestored(sample: { location: string; infoDir: string }, copy: CacheCopy): void {
  for (const [id, d] of copy.dirs) {
    const files = copy.files.get(id)!;
    assert.deepEqual(readdirSync(d).sort(), [...files.keys()].sort(), id);
    for (const [f, bytes] of files) assert.ok(readFileSync(path.join(d, f)).equals(bytes), `${id}/${f}: byte-identical`);
    assert.ok(existsSync(path.join(sample.infoDir, id)), `${id}: its info file`);
  }
  assert.deepEqual(dotEntries(sample.location), [], 'no staging left');
}

/** Starts a job on a sidecar (`POST route body`, answered 202) and waits for its end. */
export async function runJob(sc: { request: SidecarProcess['request']; waitForJob: SidecarProcess['waitForJob'] }, route: string, body: unknown): Promise<Job> {
  const r = await sc.request<{ jobId: string }>('POST', route, body);
  assert.equal(r.status, 202, r.text);
  return sc.waitForJob(r.json.jobId, 60_000);
}
