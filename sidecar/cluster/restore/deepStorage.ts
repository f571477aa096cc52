/**
 * Step "deep-storage" of a cluster restore: every segment of the snapshot made whole at its descriptor's loadSpec,
 * so Druid can load it again, verified byte by byte against the backup's manifest while it is written.
 *
 * - `local` loadSpecs (an `index/` directory or an `index.zip`): the restore's own deep-storage writer
 *   (restore/restorer.ts, install.ts), confined to `druid.storage.storageDirectory` as every restore is (paths.ts);
 *   a segment already there with the manifest's bytes is skipped (an `index.zip` read through, zipFiles.ts);
 * - `s3_zip` loadSpecs: `index.zip` at the bucket and key, zipped while it streams into a multipart upload (never
 *   a whole segment in memory; S3 shows the object only once the upload completes), with Druid's own S3 settings
 *   (druid/nodeConfig.ts `readDruidS3Storage`: credentials, endpoint, server-side encryption). The object carries
 *   the manifest's digest as `x-amz-meta-druid-backup-digest`, so a later run skips it without reading it;
 * - any other type is refused in the plan, by name.
 *
 * For a new cluster (`--deep-storage DIR` or `s3://bucket/baseKey`), the context's descriptors are rewritten before
 * any step plans (`rewriteForNewHome`): each segment goes to the same place relative to the new root (Druid's own
 * storage directory of the segment, `dataSource/start_end/version/partition/`), and the rewritten loadSpec is what
 * the metadata-rows step writes into the metadata store.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import yazl from 'yazl';
import type { DataSegment, LoadSpec } from '../../druid/descriptor.js';
import type { DruidNodeConfig, DruidS3Storage } from '../../druid/nodeConfig.js';
import { bucketKey, quoteId } from '../../druid/paths.js';
import type { SegmentId } from '../../druid/segmentId.js';
import { parseSegmentId } from '../../druid/segmentId.js';
import { BackupError, isBackupError, messageOf } from '../../errors.js';
import type { DigestMemo } from '../../restore/digests.js';
import type { DestinationSpec, Plan } from '../../restore/plan.js';
import { isZipPath, planRestore } from '../../restore/plan.js';
import { checkedStream, expectedFiles, plannedOf } from '../../restore/receive.js';
import type { RestoreProgress } from '../../restore/restorer.js';
import { executePlan, presentInDeepStorage } from '../../restore/restorer.js';
import { measureRoom } from '../../restore/room.js';
import type { SnapshotSegment } from '../../snapshot/model.js';
import type { Manifest } from '../../store/manifest.js';
import { createS3Client } from '../../store/s3/client.js';
import type { S3Connection } from '../../store/s3/sdk.js';
import { loadSdk } from '../../store/s3/sdk.js';
import { bucketNameProblem } from '../../store/s3/url.js';
import type { Target } from '../../store/target.js';
import { mapLimit } from '../../util/pool.js';
import type { ClusterRestoreContext, ClusterRestoreStep, PlanItem, StepPlan, StepResult } from './step.js';
import { zipFiles } from './zipFiles.js';

export const DIGEST_METADATA = 'druid-backup-digest';
/** Parts of an index.zip upload: memory per upload is about (queue + 1) × part. */
const PART_SIZE = 8 * 1024 * 1024;
const PART_QUEUE = 2;
/** Refusals of one kind listed one by one before "and N more". */
const LISTED = 20;

/** The deep storage of a new cluster, from `--deep-storage`. */
export type DeepStorageHome = { kind: 'local'; directory: string } | { kind: 's3'; bucket: string; baseKey: string };

/** `--deep-storage`: an absolute directory, or `s3://bucket[/baseKey]`. */
export function parseDeepStorageHome(raw: string): DeepStorageHome {
  if (typeof raw !== 'string' || raw === '' || raw.length > 2048 || /[\u0000-\u001f]/.test(raw))
    throw new BackupError('bad_request', 'deepStorage must be an absolute directory or s3://bucket/baseKey');
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/i.exec(raw);
  if (m) {
    const bucket = m[1]!;
    const problem = bucketNameProblem(bucket);
    if (problem) throw new BackupError('bad_request', `deepStorage: ${problem}`);
    const baseKey = (m[2] ?? '').replace(/\/+$/, '');
    if (baseKey.split('/').some((p) => p === '' || p === '.' || p === '..'))
      throw new BackupError('bad_request', `deepStorage ${quoteId(raw)}: its base key must be plain names separated by "/"`);
    return { kind: 's3', bucket, baseKey };
  }
  if (!path.isAbsolute(raw)) throw new BackupError('bad_request', `deepStorage ${quoteId(raw)} is neither an absolute directory nor s3://bucket/baseKey`);
  return { kind: 'local', directory: path.resolve(raw) };
}

export function describeHome(h: DeepStorageHome): string {
  return h.kind === 'local' ? `local ${h.directory}` : `s3://${h.bucket}${h.baseKey ? `/${h.baseKey}` : ''}`;
}

/**
 * The segment's place relative to its deep storage root, as Druid's pushers lay it out: its storage directory
 * (`dataSource/start_end/version/partition`, found in the loadSpec's path or key, with whatever Druid put after it,
 * such as a unique path part) and the file or directory the loadSpec names. Without that pattern, Druid's default
 * storage directory and the loadSpec's last name.
 */
export function relativePlace(seg: SegmentId, spec: LoadSpec): string {
  const where = spec.type === 's3_zip' ? spec.key : spec.path;
  const parts = typeof where === 'string' ? where.split('/').filter((p) => p !== '') : [];
  const storageDir = [seg.dataSource, `${seg.start}_${seg.end}`];
  for (let i = parts.length - 2; i >= 0; i--) {
    if (parts[i] === storageDir[0] && parts[i + 1] === storageDir[1]) {
      const rest = parts.slice(i);
      if (rest.some((p) => p === '.' || p === '..')) break;
      return rest.join('/') + (typeof where === 'string' && where.endsWith('/') ? '/' : '');
    }
  }
  const last = parts[parts.length - 1];
  const dir = typeof where === 'string' && where.endsWith('/');
  const name = spec.type === 's3_zip' || !last || last === '.' || last === '..' ? 'index.zip' : `${last}${dir ? '/' : ''}`;
  return [...storageDir, seg.version, String(seg.partition), name].join('/');
}

/** The loadSpec of a segment moved to `home`: the same relative place there. */
export function loadSpecAt(seg: SegmentId, spec: LoadSpec, home: DeepStorageHome): LoadSpec {
  const rel = relativePlace(seg, spec);
  // path.join keeps a trailing "/" (an index/ directory stays one).
  if (home.kind === 'local') return { type: 'local', path: path.join(home.directory, rel) };
  // S3 holds index.zip only: a local index/ directory becomes an index.zip at the same place.
  const zipRel = rel.endsWith('/') ? `${rel.replace(/\/+$/, '').replace(/[^/]+$/, '')}index.zip` : rel;
  const key = home.baseKey ? `${home.baseKey}/${zipRel}` : zipRel;
  return { type: 's3_zip', bucket: home.bucket, key, S3Schema: spec.type === 's3_zip' && typeof spec.S3Schema === 'string' ? spec.S3Schema : 's3n' };
}

/**
 * The snapshot's segments with their descriptors pointing at `home`: what the deep-storage step writes and the
 * metadata-rows step inserts. A segment without a descriptor or loadSpec is left as it is (the plan refuses it).
 */
export function rewriteForNewHome(segments: Map<string, SnapshotSegment[]>, home: DeepStorageHome): Map<string, SnapshotSegment[]> {
  const out = new Map<string, SnapshotSegment[]>();
  for (const [ds, list] of segments) {
    out.set(
      ds,
      list.map((s) => {
        if (!s.descriptor?.loadSpec) return s;
        const seg = parseSegmentId(s.id, ds);
        return { ...s, descriptor: { ...s.descriptor, loadSpec: loadSpecAt(seg, s.descriptor.loadSpec, home) } };
      }),
    );
  }
  return out;
}

/** What the step needs of the node it runs on. */
export interface DeepStorageEnv {
  storage: DruidNodeConfig['storage'];
  /** `--deep-storage`: the context's descriptors already point there (rewriteForNewHome). */
  home?: DeepStorageHome;
  memo: DigestMemo;
  workers: number;
  /** Opens an S3 client with Druid's S3 settings; default: the AWS SDK (store/s3/). */
  openS3?(s: DruidS3Storage): Promise<S3Connection>;
}

interface S3Item {
  segment: SnapshotSegment;
  dataSource: string;
  manifest: Manifest;
  bucket: string;
  key: string;
  write: boolean;
  reason?: string;
}

interface Internal {
  local?: { plan: Plan; dest: DestinationSpec; dataSourceOf: Map<string, string> };
  s3: S3Item[];
  conn?: S3Connection;
}

/** Druid's server-side encryption settings as request parameters of PutObject / HeadObject. */
export function sseParams(sse: DruidS3Storage['sse'], forHead: boolean): Record<string, string> {
  if (!sse) return {};
  if (sse.type === 'custom') {
    const key = Buffer.from(sse.base64Key, 'base64');
    return { SSECustomerAlgorithm: 'AES256', SSECustomerKey: sse.base64Key, SSECustomerKeyMD5: createHash('md5').update(key).digest('base64') };
  }
  if (forHead) return {};
  if (sse.type === 'kms') return { ServerSideEncryption: 'aws:kms', ...(sse.keyId ? { SSEKMSKeyId: sse.keyId } : {}) };
  return { ServerSideEncryption: 'AES256' };
}

async function defaultOpenS3(s: DruidS3Storage): Promise<S3Connection> {
  const sdk = await loadSdk();
  const client = createS3Client(
    sdk,
    {
      ...(s.endpoint ? { endpoint: s.endpoint } : {}),
      ...(s.region ? { region: s.region } : {}),
      ...(s.pathStyle !== undefined ? { forcePathStyle: s.pathStyle } : {}),
      ...(s.credentials ? { credentials: s.credentials } : {}),
    },
    new Map(),
  );
  return { sdk, client };
}

function listed(lines: string[]): string[] {
  return lines.length > LISTED ? [...lines.slice(0, LISTED), `... and ${lines.length - LISTED} more`] : lines;
}

/** Where a snapshot's s3_zip loadSpec may be written: the node's bucket and base key, or the new cluster's. */
function s3Place(seg: SegmentId, spec: LoadSpec, env: DeepStorageEnv): { bucket: string; key: string } {
  const bucket = spec.bucket;
  const key = spec.key;
  if (typeof bucket !== 'string' || typeof key !== 'string' || key === '')
    throw new BackupError('bad_request', `segment ${quoteId(seg.id)}: its s3_zip loadSpec has no bucket and key`);
  const home = env.home?.kind === 's3' ? env.home : undefined;
  const wantBucket = home?.bucket ?? env.storage.s3?.bucket;
  const base = home ? home.baseKey : (env.storage.s3?.baseKey ?? '');
  if (!wantBucket)
    throw new BackupError(
      'bad_request',
      `segment ${quoteId(seg.id)} is in S3 deep storage, but druid.storage.bucket is not set on this node: give --deep-storage s3://bucket/baseKey`,
    );
  if (bucket !== wantBucket)
    throw new BackupError(
      'bad_request',
      `segment ${quoteId(seg.id)}: its loadSpec names bucket ${quoteId(bucket)}, not this cluster's deep storage bucket ${quoteId(wantBucket)}`,
    );
  const prefix = base ? `${base}/` : '';
  if (!key.startsWith(prefix))
    throw new BackupError('bad_request', `segment ${quoteId(seg.id)}: its loadSpec key ${quoteId(key)} is not below ${quoteId(prefix)}`);
  return { bucket, key: bucketKey(prefix, key.slice(prefix.length), seg.id) };
}

function localDirectory(env: DeepStorageEnv): string | undefined {
  if (env.home?.kind === 'local') return env.home.directory;
  return env.storage.type === 'local' ? env.storage.directory : undefined;
}

export function deepStorageStep(env: DeepStorageEnv): ClusterRestoreStep {
  const internals = new WeakMap<StepPlan, Internal>();
  const openS3 = env.openS3 ?? defaultOpenS3;
  const s3Settings = (): DruidS3Storage => env.storage.s3 ?? {};

  async function plan(ctx: ClusterRestoreContext): Promise<StepPlan> {
    const refusals: string[] = [];
    const warnings: string[] = [];
    const items: PlanItem[] = [];
    const all = [...ctx.segments].flatMap(([ds, list]) => list.map((s) => ({ ds, s })));
    const manifests = new Map<string, Manifest>();
    for await (const m of ctx.target.list({ segmentIds: all.map((a) => a.s.id) }, { signal: ctx.signal })) manifests.set(m.segmentId, m);

    const missing: string[] = [];
    const noDescriptor: string[] = [];
    const otherTypes = new Map<string, number>();
    const badPlace: string[] = [];
    const local: Array<{ ds: string; m: Manifest }> = [];
    const s3: S3Item[] = [];
    const directory = localDirectory(env);
    for (const { ds, s } of all) {
      const m = manifests.get(s.id);
      if (!m) {
        missing.push(
          `${s.id}: ${s.backedUp ? 'no target holds it any more (retention removed it)' : `it was not backed up when the snapshot was taken (${s.missing ?? 'unknown'})`}`,
        );
        continue;
      }
      const spec = s.descriptor?.loadSpec;
      if (!s.descriptor || !spec || typeof spec.type !== 'string') {
        noDescriptor.push(s.id);
        continue;
      }
      // The snapshot's descriptor (rewritten for a new cluster), not the one the backup was taken with: the loadSpec
      // the metadata store names is the one Druid loads from.
      const planned: Manifest = { ...m, descriptor: s.descriptor as DataSegment };
      if (spec.type === 'local') {
        if (!directory) {
          badPlace.push(
            `${s.id}: its loadSpec is local, but this node's deep storage is ${quoteId(env.storage.type)} with no druid.storage.storageDirectory; give --deep-storage DIR`,
          );
          continue;
        }
        local.push({ ds, m: planned });
      } else if (spec.type === 's3_zip') {
        try {
          const place = s3Place(parseSegmentId(s.id, ds), spec, env);
          s3.push({ segment: s, dataSource: ds, manifest: planned, ...place, write: true });
        } catch (e) {
          if (!isBackupError(e)) throw e;
          badPlace.push(e.message);
        }
      } else otherTypes.set(spec.type, (otherTypes.get(spec.type) ?? 0) + 1);
    }
    for (const [type, n] of otherTypes)
      refusals.push(
        `${n} segment${n === 1 ? '' : 's'} with ${quoteId(type)} loadSpecs: only local and s3_zip deep storage can be written (give --deep-storage DIR or s3://bucket/baseKey to move them)`,
      );
    if (missing.length) refusals.push(`${missing.length} segment(s) of the snapshot are held by no target:`, ...listed(missing).map((l) => `  ${l}`));
    if (noDescriptor.length)
      refusals.push(`${noDescriptor.length} segment(s) have no descriptor with a loadSpec in the snapshot:`, ...listed(noDescriptor).map((l) => `  ${l}`));
    if (badPlace.length) refusals.push(...listed(badPlace));

    const internal: Internal = { s3 };
    const count = (ds: string, action: string, detail: string, segs: Array<{ size: number }>) => {
      if (!segs.length) return;
      items.push({ action, subject: ds, segments: segs.length, bytes: segs.reduce((n, x) => n + x.size, 0), detail });
    };
    if (local.length && directory) {
      const manifestsOnly = local.map((l) => l.m);
      const present = await presentInDeepStorage(manifestsOnly, directory, ctx.target.url, env.memo, ctx.signal);
      // An index.zip is compared by reading it (zipFiles.ts), so that one already whole is not written again.
      for (const m of manifestsOnly) {
        const copy = present.get(m.segmentId);
        if (copy && !copy.files && isZipPath(copy.path)) copy.files = await zipFiles(copy.path, m, ctx.signal);
      }
      const dest: DestinationSpec = { kind: 'deep-storage', name: 'deep-storage', directory, room: measureRoom({ path: directory }, 0) };
      try {
        const p = planRestore({ target: ctx.target.url, destination: dest, manifests: manifestsOnly, present });
        const dataSourceOf = new Map(local.map((l) => [l.m.segmentId, l.ds]));
        internal.local = { plan: p, dest, dataSourceOf };
        refusals.push(...listed(p.refused.map((r) => r.message)));
        for (const ds of ctx.dataSources) {
          const mine = p.items.filter((i) => dataSourceOf.get(i.segmentId) === ds);
          count(
            ds,
            'write to deep storage',
            `local ${directory}`,
            mine.filter((i) => i.action !== 'skip'),
          );
          count(
            ds,
            'already whole in deep storage',
            `local ${directory}`,
            mine.filter((i) => i.action === 'skip'),
          );
        }
      } catch (e) {
        if (!isBackupError(e) || e.code !== 'no_space') throw e;
        refusals.push(e.message);
      }
    }
    if (s3.length) {
      let conn: S3Connection | undefined;
      try {
        conn = await openS3(s3Settings());
        internal.conn = conn;
        await mapLimit(s3, Math.max(1, env.workers), async (item) => {
          const head = await conn!.client
            .send(new conn!.sdk.HeadObjectCommand({ Bucket: item.bucket, Key: item.key, ...sseParams(s3Settings().sse, true) }), { abortSignal: ctx.signal })
            .catch((e: { name?: string; $metadata?: { httpStatusCode?: number } }) => {
              if (e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404) return undefined;
              throw new BackupError('target_error', `s3://${item.bucket}/${item.key}: ${messageOf(e)}`);
            });
          if (!head) return;
          if (head.Metadata?.[DIGEST_METADATA] === item.manifest.digest && (head.ContentLength ?? 0) > 0) item.write = false;
          else item.reason = 'index.zip exists with other bytes; replaced by the verified backup';
        });
      } catch (e) {
        if (!isBackupError(e)) throw e;
        refusals.push(`S3 deep storage cannot be read: ${e.message}`);
      }
      for (const ds of ctx.dataSources) {
        const mine = s3.filter((i) => i.dataSource === ds);
        const where = [...new Set(mine.map((i) => `s3://${i.bucket}`))].join(', ');
        count(
          ds,
          'write index.zip to S3 deep storage',
          where,
          mine.filter((i) => i.write).map((i) => i.segment),
        );
        count(
          ds,
          'already whole in deep storage',
          where,
          mine.filter((i) => !i.write).map((i) => i.segment),
        );
      }
    }
    if (env.home) {
      for (const ds of ctx.dataSources) {
        const n = ctx.segments.get(ds)?.length ?? 0;
        if (n)
          items.push({
            action: 'point loadSpecs at the new deep storage',
            subject: ds,
            segments: n,
            detail: `rows written to the metadata store load from ${describeHome(env.home)}`,
          });
      }
    }
    if (env.storage.s3?.sse && s3.length)
      warnings.push(`index.zip objects are written with server-side encryption ${env.storage.s3.sse.type} (druid.storage.sse.type)`);
    const done = !items.some((i) => i.action === 'write to deep storage' || i.action === 'write index.zip to S3 deep storage');
    const out: StepPlan = { step: 'deep-storage', done, items, warnings, refusals };
    internals.set(out, internal);
    return out;
  }

  async function run(ctx: ClusterRestoreContext, p: StepPlan, progress: (item: PlanItem) => void): Promise<StepResult> {
    const internal = internals.get(p);
    if (!internal) throw new BackupError('internal', 'the deep-storage step runs only a plan it made');
    const failedBy = new Map<string, string[]>();
    const fail = (ds: string, id: string, e: unknown) => (failedBy.get(ds) ?? failedBy.set(ds, []).get(ds)!).push(`${id}: ${messageOf(e)}`);
    if (internal.local) {
      const { plan: lp, dest, dataSourceOf } = internal.local;
      const quiet: RestoreProgress = {
        signal: ctx.signal ?? new AbortController().signal,
        setTotals() {},
        addBytes() {},
        setCurrent() {},
        segmentDone() {},
        segmentFailed(id, message) {
          if (id) fail(dataSourceOf.get(id) ?? '', id, message);
        },
        throwIfCancelled() {
          if (ctx.signal?.aborted) throw new BackupError('cancelled', 'cluster restore cancelled');
        },
      };
      await executePlan(lp, dest, ctx.target, { druid: { locations: [], storage: env.storage }, layout: 'auto', workers: env.workers, memo: env.memo }, quiet);
    }
    const writes = internal.s3.filter((i) => i.write);
    if (writes.length) {
      const conn = internal.conn ?? (await openS3(s3Settings()));
      await mapLimit(writes, Math.max(1, env.workers), async (item) => {
        if (ctx.signal?.aborted) return;
        try {
          await writeS3Zip(conn, ctx.target, item, s3Settings().sse, ctx.signal);
        } catch (e) {
          fail(item.dataSource, item.segment.id, e);
        }
      });
    }
    if (ctx.signal?.aborted) throw new BackupError('cancelled', 'cluster restore cancelled');
    const result: StepResult = { step: p.step, items: [] };
    for (const item of p.items) {
      const writing = item.action.startsWith('write');
      const errors = writing ? failedBy.get(item.subject) : undefined;
      result.items.push(
        errors?.length
          ? { ...item, outcome: 'failed', error: `${errors.length} segment(s) failed: ${listed(errors).join('; ')}` }
          : { ...item, outcome: writing ? 'done' : 'skipped' },
      );
      progress(item);
    }
    return result;
  }

  return { name: 'deep-storage', plan, run };
}

/**
 * Streams a segment from the target into `index.zip` at bucket/key: each file checked against the manifest as it
 * passes (checkedStream), zipped as Druid zips (deflated entries), and uploaded in parts. A failure aborts the
 * upload, so no half object is ever visible.
 */
export async function writeS3Zip(
  conn: S3Connection,
  target: Target,
  item: Omit<S3Item, 'write' | 'dataSource'>,
  sse: DruidS3Storage['sse'],
  signal?: AbortSignal,
): Promise<void> {
  const reader = await target.read(item.manifest.segmentId, { signal, planned: plannedOf(item.manifest) });
  const zip = new yazl.ZipFile();
  const body = zip.outputStream as Readable;
  const upload = new conn.sdk.Upload({
    client: conn.client,
    params: {
      Bucket: item.bucket,
      Key: item.key,
      Body: body,
      ContentType: 'application/zip',
      Metadata: { [DIGEST_METADATA]: item.manifest.digest },
      ...sseParams(sse, false),
    },
    partSize: PART_SIZE,
    queueSize: PART_QUEUE,
    leavePartsOnError: false,
  });
  const onAbort = () => void upload.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  let failure: unknown;
  const uploaded = upload.done();
  const failed = new Promise<never>((_, reject) => {
    zip.on('error', reject);
    uploaded.catch(reject);
  });
  failed.catch((e) => (failure = e));
  try {
    for await (const { file, want } of expectedFiles(reader, item.manifest)) {
      const checked = checkedStream(item.manifest.segmentId, file, want, { signal });
      zip.addReadStream(checked, want.name, { size: want.size, compress: true, mode: 0o100644 });
      await Promise.race([finished(checked), failed]);
      if (failure) throw failure;
    }
    zip.end();
    await Promise.race([uploaded, failed]);
  } catch (e) {
    await upload.abort().catch(() => undefined);
    body.destroy();
    throw e;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
