/**
 * Verifies a bucket (or container) target by reading it, never writing: every selected manifest must parse and sit at the key its
 * id belongs at, and the objects of its segment must be exactly its files, each with its size (from the listing,
 * before a byte is read) and its sha256 (every object read and hashed). Each bad segment is reported by id.
 */
import { createHash } from 'node:crypto';
import type { VerifyProblem } from '../../api.js';
import { parseManifest } from '../../archive/format.js';
import type { Selector } from '../../druid/selector.js';
import { isEmptySelector, selects } from '../../druid/selector.js';
import { parseInterval } from '../../druid/time.js';
import { BackupError, isBackupError, messageOf } from '../../errors.js';
import { ANSWER_LIMITS, PageGuard } from '../../util/limitedRead.js';
import type { Manifest } from '../manifest.js';
import type { TargetVerifyOptions, TargetVerifyReport } from '../target.js';
import type { ObjectTarget } from './target.js';

/** The `verify` capability's options and report (store/target.ts); a bad segment's `dir` is where its files are: `s3://bucket/prefix/segments/{id}/{node}/` (or the container's). */
type ObjectVerifyOptions = TargetVerifyOptions;
type ObjectVerifyReport = TargetVerifyReport;
type ObjectBadSegment = TargetVerifyReport['bad'][number];

function selected(sel: Selector, m: Manifest): boolean {
  const { startMs, endMs } = parseInterval(m.interval);
  return selects(sel, { id: m.segmentId, dataSource: m.dataSource, startMs, endMs });
}

async function* manifestKeys(t: ObjectTarget, sel: Selector, signal?: AbortSignal): AsyncGenerator<string> {
  if (sel.segmentIds && sel.dataSource === undefined && sel.interval === undefined) {
    for (const id of [...sel.segmentIds].sort()) yield t.layout.manifestKey(id);
    return;
  }
  const prefix = sel.dataSource !== undefined ? t.layout.dataSourceManifestsPrefix(sel.dataSource) : t.layout.manifestsPrefix;
  let token: string | undefined;
  const guard = new PageGuard(`the manifest listing of ${t.store.name}/${prefix}`);
  do {
    const page = await t.call('listing manifests', signal, () => t.store.list(prefix, { token, signal }));
    for (const o of page.objects) if (t.layout.isManifestKey(o.key)) yield o.key;
    token = page.next;
    if (token) guard.next(token);
  } while (token);
}

/** Object names and sizes under a prefix. */
async function listObjects(t: ObjectTarget, prefix: string, signal?: AbortSignal): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  let token: string | undefined;
  const guard = new PageGuard(`the listing of ${t.store.name}/${prefix}`);
  do {
    const page = await t.call(`listing ${t.store.name}/${prefix}`, signal, () => t.store.list(prefix, { token, signal }));
    for (const o of page.objects) if (o.key.startsWith(prefix)) out.set(o.key.slice(prefix.length), o.size);
    token = page.next;
    if (token) guard.next(token);
  } while (token);
  return out;
}

async function hashObject(t: ObjectTarget, key: string, opts: ObjectVerifyOptions): Promise<{ sha256: string; size: number } | undefined> {
  const got = await t.store.open(key, opts.signal);
  if (!got) return undefined;
  const body = got.body;
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of body) {
    if (opts.signal?.aborted) throw new BackupError('cancelled', 'verify cancelled');
    h.update(chunk);
    size += chunk.length;
    opts.onBytes?.(chunk.length);
  }
  return { sha256: h.digest('hex'), size };
}

/** The manifest object's text; undefined when there is none. Failures of the store throw, as the whole verify cannot go on. */
async function readManifestText(t: ObjectTarget, key: string, signal?: AbortSignal): Promise<string | undefined> {
  return t.call(`reading ${t.store.name}/${key}`, signal, async () => {
    const got = await t.store.read(key, ANSWER_LIMITS.manifest, `${t.store.name}/${key}`, { signal });
    return got && got !== 'unchanged' ? got.body.toString('utf8') : undefined;
  });
}

async function checkSegment(t: ObjectTarget, m: Manifest, opts: ObjectVerifyOptions): Promise<ObjectBadSegment> {
  const id = m.segmentId;
  const problems: VerifyProblem[] = [];
  const prefix = t.dataPrefixOf(m);
  const objects = await listObjects(t, prefix, opts.signal);
  for (const want of m.files) {
    const size = objects.get(want.name);
    objects.delete(want.name);
    if (size === undefined) {
      problems.push({ segmentId: id, problem: 'missing-file', file: want.name, message: `${want.name} is missing from the ${t.store.noun}` });
      continue;
    }
    if (size !== want.size) {
      problems.push({
        segmentId: id,
        problem: 'size-mismatch',
        file: want.name,
        message: `${want.name} has ${size} bytes in the ${t.store.noun}, the manifest ${want.size}`,
      });
      continue;
    }
    const got = await t.call(`reading ${t.store.name}/${prefix}${want.name}`, opts.signal, () => hashObject(t, `${prefix}${want.name}`, opts));
    if (!got) problems.push({ segmentId: id, problem: 'missing-file', file: want.name, message: `${want.name} is missing from the ${t.store.noun}` });
    else if (got.size !== want.size)
      problems.push({
        segmentId: id,
        problem: 'size-mismatch',
        file: want.name,
        message: `${want.name} has ${got.size} bytes in the ${t.store.noun}, the manifest ${want.size}`,
      });
    else if (got.sha256 !== want.sha256)
      problems.push({
        segmentId: id,
        problem: 'digest-mismatch',
        file: want.name,
        message: `${want.name} has sha256 ${got.sha256}, the manifest ${want.sha256}`,
      });
  }
  for (const name of objects.keys())
    problems.push({ segmentId: id, problem: 'extra-file', file: name, message: `${name} is in the ${t.store.noun} but not in the manifest` });
  return { segmentId: id, dir: `${t.store.name}/${prefix}`, problems };
}

export async function verifyObjects(t: ObjectTarget, sel: Selector, opts: ObjectVerifyOptions = {}): Promise<ObjectVerifyReport> {
  const report: ObjectVerifyReport = { store: t.url, segments: 0, ok: 0, bytes: 0, bad: [] };
  const record = (r: ObjectBadSegment, bytes: number) => {
    report.segments++;
    report.bytes += bytes;
    if (r.problems.length === 0) report.ok++;
    else report.bad.push(r);
    opts.onSegment?.(r.segmentId, r.problems);
  };
  for await (const key of manifestKeys(t, sel, opts.signal)) {
    if (opts.signal?.aborted) throw new BackupError('cancelled', 'verify cancelled');
    let text: string | undefined;
    // A manifest too large to be one is a damaged manifest of that segment; the verify goes on.
    let tooLarge: BackupError | undefined;
    try {
      text = await readManifestText(t, key, opts.signal);
    } catch (e) {
      if (!isBackupError(e) || e.code !== 'target_answer_too_large') throw e;
      tooLarge = e;
    }
    if (text === undefined && !tooLarge) {
      // Only asked-for ids get here without a manifest: say so rather than verify nothing.
      const segmentId = t.layout.idOfManifestKey(key) ?? key;
      record(
        {
          segmentId,
          dir: `${t.store.name}/${key}`,
          problems: [{ segmentId, problem: 'bad-manifest', file: key, message: `${t.url} holds no segment ${segmentId}` }],
        },
        0,
      );
      continue;
    }
    let m: Manifest;
    try {
      if (tooLarge) throw tooLarge;
      m = parseManifest(JSON.parse(text!));
      if (t.layout.manifestKey(m.segmentId) !== key)
        throw new Error(`it is the manifest of ${m.segmentId}, which belongs at ${t.layout.manifestKey(m.segmentId)}`);
      if (m.sources.length === 0) throw new Error('it names no source, so its files cannot be found');
    } catch (err) {
      const segmentId = t.layout.idOfManifestKey(key) ?? key;
      if (!isEmptySelector(sel) && !sel.segmentIds?.has(segmentId)) continue;
      record(
        {
          segmentId,
          dir: `${t.store.name}/${key}`,
          problems: [{ segmentId, problem: 'bad-manifest', file: key, message: `the manifest ${t.store.name}/${key} is damaged: ${messageOf(err)}` }],
        },
        0,
      );
      continue;
    }
    if (!selected(sel, m)) continue;
    record(await checkSegment(t, m, opts), m.size);
  }
  return report;
}
