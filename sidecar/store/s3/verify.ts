/**
 * Verifies a bucket target by reading it, never writing: every selected manifest must parse and sit at the key its
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
import { readObjectLimited } from './client.js';
import { isNotFound } from './errors.js';
import type { S3Target } from './target.js';

/** The `verify` capability's options and report (store/target.ts); a bad segment's `dir` is `s3://bucket/prefix/segments/{id}/{node}/`. */
export type S3VerifyOptions = TargetVerifyOptions;
export type S3VerifyReport = TargetVerifyReport;
export type S3BadSegment = TargetVerifyReport['bad'][number];

function selected(sel: Selector, m: Manifest): boolean {
  const { startMs, endMs } = parseInterval(m.interval);
  return selects(sel, { id: m.segmentId, dataSource: m.dataSource, startMs, endMs });
}

async function* manifestKeys(t: S3Target, sel: Selector, signal?: AbortSignal): AsyncGenerator<string> {
  if (sel.segmentIds && sel.dataSource === undefined && sel.interval === undefined) {
    for (const id of [...sel.segmentIds].sort()) yield t.layout.manifestKey(id);
    return;
  }
  const prefix = sel.dataSource !== undefined ? t.layout.dataSourceManifestsPrefix(sel.dataSource) : t.layout.manifestsPrefix;
  const { sdk, client } = await t.s3();
  let token: string | undefined;
  const guard = new PageGuard(`the manifest listing of s3://${t.bucket}/${prefix}`);
  do {
    const page = await t.call('listing manifests', signal, () =>
      client.send(new sdk.ListObjectsV2Command({ Bucket: t.bucket, Prefix: prefix, ContinuationToken: token }), { abortSignal: signal }),
    );
    for (const o of page.Contents ?? []) if (o.Key && t.layout.isManifestKey(o.Key)) yield o.Key;
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
    if (token) guard.next(token);
  } while (token);
}

/** Object names and sizes under a prefix. */
async function listObjects(t: S3Target, prefix: string, signal?: AbortSignal): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const { sdk, client } = await t.s3();
  let token: string | undefined;
  const guard = new PageGuard(`the listing of s3://${t.bucket}/${prefix}`);
  do {
    const page = await t.call(`listing s3://${t.bucket}/${prefix}`, signal, () =>
      client.send(new sdk.ListObjectsV2Command({ Bucket: t.bucket, Prefix: prefix, ContinuationToken: token }), { abortSignal: signal }),
    );
    for (const o of page.Contents ?? []) if (o.Key) out.set(o.Key.slice(prefix.length), o.Size ?? 0);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
    if (token) guard.next(token);
  } while (token);
  return out;
}

async function hashObject(t: S3Target, key: string, opts: S3VerifyOptions): Promise<{ sha256: string; size: number } | undefined> {
  let body: AsyncIterable<Uint8Array>;
  const { sdk, client } = await t.s3();
  try {
    const res = await client.send(new sdk.GetObjectCommand({ Bucket: t.bucket, Key: key }), { abortSignal: opts.signal });
    body = res.Body as unknown as AsyncIterable<Uint8Array>;
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
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

/** The manifest object's text; undefined when there is none. S3 failures throw, as the whole verify cannot go on. */
async function readManifestText(t: S3Target, key: string, signal?: AbortSignal): Promise<string | undefined> {
  return t.call(`reading s3://${t.bucket}/${key}`, signal, async () => {
    const { sdk, client } = await t.s3();
    try {
      const res = await client.send(new sdk.GetObjectCommand({ Bucket: t.bucket, Key: key }), { abortSignal: signal });
      return (await readObjectLimited(res, ANSWER_LIMITS.manifest, `s3://${t.bucket}/${key}`)).toString('utf8');
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  });
}

async function checkSegment(t: S3Target, m: Manifest, opts: S3VerifyOptions): Promise<S3BadSegment> {
  const id = m.segmentId;
  const problems: VerifyProblem[] = [];
  const prefix = t.dataPrefixOf(m);
  const objects = await listObjects(t, prefix, opts.signal);
  for (const want of m.files) {
    const size = objects.get(want.name);
    objects.delete(want.name);
    if (size === undefined) {
      problems.push({ segmentId: id, problem: 'missing-file', file: want.name, message: `${want.name} is missing from the bucket` });
      continue;
    }
    if (size !== want.size) {
      problems.push({
        segmentId: id,
        problem: 'size-mismatch',
        file: want.name,
        message: `${want.name} has ${size} bytes in the bucket, the manifest ${want.size}`,
      });
      continue;
    }
    const got = await t.call(`reading s3://${t.bucket}/${prefix}${want.name}`, opts.signal, () => hashObject(t, `${prefix}${want.name}`, opts));
    if (!got) problems.push({ segmentId: id, problem: 'missing-file', file: want.name, message: `${want.name} is missing from the bucket` });
    else if (got.size !== want.size)
      problems.push({
        segmentId: id,
        problem: 'size-mismatch',
        file: want.name,
        message: `${want.name} has ${got.size} bytes in the bucket, the manifest ${want.size}`,
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
    problems.push({ segmentId: id, problem: 'extra-file', file: name, message: `${name} is in the bucket but not in the manifest` });
  return { segmentId: id, dir: `s3://${t.bucket}/${prefix}`, problems };
}

export async function verifyBucket(t: S3Target, sel: Selector, opts: S3VerifyOptions = {}): Promise<S3VerifyReport> {
  const report: S3VerifyReport = { store: t.url, segments: 0, ok: 0, bytes: 0, bad: [] };
  const record = (r: S3BadSegment, bytes: number) => {
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
          dir: `s3://${t.bucket}/${key}`,
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
          dir: `s3://${t.bucket}/${key}`,
          problems: [{ segmentId, problem: 'bad-manifest', file: key, message: `the manifest s3://${t.bucket}/${key} is damaged: ${messageOf(err)}` }],
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
