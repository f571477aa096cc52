/**
 * The S3 client of a target. Endpoint, region and credentials come from the AWS SDK's standard chain, the one
 * operators already use (`AWS_ENDPOINT_URL_S3`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`,
 * `AWS_PROFILE` and `~/.aws/`, instance roles), with `druid.backup.s3.endpoint`, `.region` and `.forcePathStyle`
 * as overrides. Nothing here logs or keeps a credential: the SDK's logger is one that drops everything.
 *
 * The SDK's default checksums are switched off (`WHEN_REQUIRED`) because the uploader asks for its own (upload.ts):
 * a file sent in one PUT carries the sha256 the uploader computes as it streams, as a trailing `x-amz-checksum-sha256`;
 * a multipart part carries the sha256 the uploader computed while reading it, as a signed `x-amz-checksum-sha256`
 * header, so that part's body goes as `UNSIGNED-PAYLOAD`. Either way the server verifies it (a mismatch is
 * `BadDigest`). A single PUT's bytes are hashed once on the sending side (the same digest goes into the manifest),
 * a multipart upload's twice (parts and file), not three or four times.
 */
import http from 'node:http';
import https from 'node:https';
import { Transform } from 'node:stream';
import type { Readable } from 'node:stream';
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { parseHumanBytes } from '../../druid/bytes.js';
import { BackupError } from '../../errors.js';
import { releaseLentOnWrite } from '../../util/bufferPool.js';
import { ANSWER_LIMITS, readLimited, tooLarge } from '../../util/limitedRead.js';
import type { Sdk } from './sdk.js';
import { bodyDigests } from './upload.js';

export const MIB = 1024 * 1024;
/** S3's smallest part (but the last) and largest part. */
export const MIN_PART_SIZE = 5 * MIB;
export const MAX_PART_SIZE = 5 * 1024 * MIB;
export const MAX_PARTS = 10_000;
export const DEFAULT_PART_SIZE = 8 * MIB;
export const DEFAULT_CONCURRENCY = 4;
/** The most one PUT may carry on S3; files up to this go as one streamed PUT by default. */
export const MAX_PUT_SIZE = 5 * 1024 * MIB;
export const DEFAULT_MULTIPART_THRESHOLD = MAX_PUT_SIZE;
/** Attempts per request (the first and retries with backoff, by the SDK's standard strategy). */
export const MAX_ATTEMPTS = 5;

export interface S3Settings {
  /** `druid.backup.s3.endpoint`: an S3-compatible server; default the SDK chain (AWS_ENDPOINT_URL_S3, else AWS). */
  endpoint?: string;
  /** `druid.backup.s3.region`; default the SDK chain, else `us-east-1` when an endpoint is set. */
  region?: string;
  /** `druid.backup.s3.forcePathStyle`; default on when an endpoint is set (most S3-compatible servers need it). */
  forcePathStyle?: boolean;
  /** `druid.backup.s3.partSize`: bytes per multipart part. */
  partSize?: number;
  /** `druid.backup.s3.concurrency`: parts in flight per file. */
  concurrency?: number;
  /** `druid.backup.s3.multipartThreshold`: files larger than this go as multipart uploads, others as one PUT. */
  multipartThreshold?: number;
  /** Explicit credentials (Druid's druid.s3.accessKey/secretKey, for its deep storage); default the SDK chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Milliseconds to open a connection and of socket silence before a request is retried. */
  connectTimeoutMs?: number;
  socketTimeoutMs?: number;
}

/** The part checksums the uploader computed, by `bucket/key`, read by the middleware below as each part goes out. */
export type PartChecksums = Map<string, string[]>;

export function checkS3Settings(s: S3Settings): Required<Pick<S3Settings, 'partSize' | 'concurrency' | 'multipartThreshold'>> {
  const partSize = s.partSize ?? DEFAULT_PART_SIZE;
  const concurrency = s.concurrency ?? DEFAULT_CONCURRENCY;
  const multipartThreshold = s.multipartThreshold ?? DEFAULT_MULTIPART_THRESHOLD;
  if (!Number.isSafeInteger(multipartThreshold) || multipartThreshold < MIN_PART_SIZE || multipartThreshold > MAX_PUT_SIZE)
    throw new BackupError(
      'bad_config',
      `druid.backup.s3.multipartThreshold: ${multipartThreshold} bytes is outside 5 MiB to 5 GiB (the most one PUT may carry)`,
    );
  if (!Number.isSafeInteger(partSize) || partSize < MIN_PART_SIZE || partSize > MAX_PART_SIZE)
    throw new BackupError('bad_config', `druid.backup.s3.partSize: ${partSize} bytes is outside S3's part sizes (5 MiB to 5 GiB)`);
  if (!Number.isSafeInteger(concurrency) || concurrency < 1 || concurrency > 64)
    throw new BackupError('bad_config', `druid.backup.s3.concurrency: ${concurrency} is outside 1..64`);
  return { partSize, concurrency, multipartThreshold };
}

/**
 * The druid.backup.s3.* settings from their environment variables (`DRUID_BACKUP_S3_ENDPOINT`, `_REGION`,
 * `_FORCE_PATH_STYLE`, `_PART_SIZE`, `_CONCURRENCY`, `_MULTIPART_THRESHOLD`), for the command-line tools that run without a sidecar's config.
 */
export function s3SettingsFromEnv(env: NodeJS.ProcessEnv = process.env): S3Settings {
  const get = (name: string) => env[`DRUID_BACKUP_S3_${name}`] || undefined;
  const out: S3Settings = { endpoint: get('ENDPOINT'), region: get('REGION') };
  const pathStyle = get('FORCE_PATH_STYLE');
  if (pathStyle !== undefined) {
    if (!/^(true|false)$/i.test(pathStyle)) throw new BackupError('bad_config', `DRUID_BACKUP_S3_FORCE_PATH_STYLE: "${pathStyle}" is not true or false`);
    out.forcePathStyle = pathStyle.toLowerCase() === 'true';
  }
  const partSize = get('PART_SIZE');
  if (partSize !== undefined) out.partSize = parseHumanBytes(partSize, 'DRUID_BACKUP_S3_PART_SIZE');
  const threshold = get('MULTIPART_THRESHOLD');
  if (threshold !== undefined) out.multipartThreshold = parseHumanBytes(threshold, 'DRUID_BACKUP_S3_MULTIPART_THRESHOLD');
  const concurrency = get('CONCURRENCY');
  if (concurrency !== undefined) out.concurrency = /^\d+$/.test(concurrency) ? Number(concurrency) : NaN;
  // Anchored at both ends: user info after a first host-like run (http://user:pw@host) is refused, not ignored.
  if (out.endpoint !== undefined && !/^https?:\/\/[^/@\s?#]+(\/[^@\s?#]*)?$/i.test(out.endpoint))
    throw new BackupError(
      'bad_config',
      `DRUID_BACKUP_S3_ENDPOINT: "${out.endpoint.slice(0, 100)}" is not an http:// or https:// URL without credentials or a query`,
    );
  checkS3Settings(out);
  return out;
}

/** Where requests go, for messages: the configured endpoint, else the environment's, else AWS. */
export function describeEndpoint(s: S3Settings, env: NodeJS.ProcessEnv = process.env): string {
  const raw = s.endpoint ?? env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL;
  if (raw) {
    try {
      const u = new URL(raw);
      return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`;
    } catch {
      return 'the configured endpoint';
    }
  }
  return `AWS S3${(s.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION) ? ` (${s.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION})` : ''}`;
}

type HashConstructor = new () => { update(data: Uint8Array): void; digest(): Promise<Uint8Array> };

function hashStream(Hash: HashConstructor, stream: Readable): Promise<Uint8Array> {
  const h = new Hash();
  return new Promise((resolve, reject) => {
    stream.on('data', (d: Uint8Array) => h.update(d));
    stream.once('end', () => void h.digest().then(resolve, reject));
    stream.once('error', reject);
  });
}

/** Reads a GetObject answer whole (a manifest, the catalog index) with a limit; its declared length is checked first. */
export function readObjectLimited(res: { Body?: unknown; ContentLength?: number }, limit: number, what: string): Promise<Buffer> {
  const body = res.Body as (AsyncIterable<Uint8Array> & { destroy?: () => void }) | undefined;
  if (!body) return Promise.resolve(Buffer.alloc(0));
  return readLimited(body, limit, what, res.ContentLength);
}

/**
 * A response body that errors once it passed `limit` bytes. The SDK reads every answer but GetObject's whole before
 * parsing it (a listing is XML): a bucket that answers a listing with 200 MiB fails it instead of filling the heap.
 */
function limitedBody(body: Readable, limit: number, what: string): Readable {
  let n = 0;
  const counted = new Transform({
    transform(chunk: Buffer, _enc, done) {
      n += chunk.length;
      done(n > limit ? tooLarge(what, limit) : null, chunk);
    },
  });
  body.on('error', (e) => counted.destroy(e));
  counted.on('error', () => body.destroy());
  return body.pipe(counted);
}

const SILENT_LOGGER = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };

/** The connections of one target's client, kept so that closing the target can retire them (util/agents.ts). */
export interface S3Agents {
  httpAgent: http.Agent;
  httpsAgent: https.Agent;
}

/** Keep-alive agents as the SDK would make them (50 sockets each), but owned by the target. */
export function s3Agents(): S3Agents {
  return { httpAgent: new http.Agent({ keepAlive: true, maxSockets: 50 }), httpsAgent: new https.Agent({ keepAlive: true, maxSockets: 50 }) };
}

export function createS3Client(
  sdk: Sdk,
  s: S3Settings,
  checksums: PartChecksums,
  env: NodeJS.ProcessEnv = process.env,
  agents: S3Agents = s3Agents(),
): S3Client {
  // The version is pinned in the lockfile; its notice about future Node releases is noise in the sidecar's log.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const customEndpoint = Boolean(s.endpoint ?? env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL);
  const config: S3ClientConfig = {
    forcePathStyle: s.forcePathStyle ?? customEndpoint,
    maxAttempts: MAX_ATTEMPTS,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: { connectionTimeout: s.connectTimeoutMs ?? 10_000, requestTimeout: s.socketTimeoutMs ?? 120_000, ...agents },
    // Without a logger of its own the SDK writes to the console (a failed streamed PUT, which it never retries,
    // prints a warning there): the sidecar's output stays JSON lines, and the caller reports every failure.
    logger: SILENT_LOGGER,
    // A streamed PUT's trailing checksum: the digest the uploader computes as it reads the body, so the bytes are
    // hashed once on this side; any other stream is hashed as the SDK would.
    streamHasher: ((Hash: HashConstructor, stream: Readable) => bodyDigests.get(stream) ?? hashStream(Hash, stream)) as S3ClientConfig['streamHasher'],
  };
  if (s.endpoint) config.endpoint = s.endpoint;
  if (s.credentials) config.credentials = s.credentials;
  const region = s.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  if (region) config.region = region;
  else if (customEndpoint) {
    // S3-compatible servers mostly ignore the region, but SigV4 needs one; a profile's region still wins.
    config.region = async () => {
      try {
        const probe = new sdk.S3Client({});
        const r = await probe.config.region();
        probe.destroy();
        return r;
      } catch {
        return 'us-east-1';
      }
    };
  }
  const client = new sdk.S3Client(config);
  // The uploader's read buffers are used again once a socket has written them (upload.ts, bufferPool.ts).
  releaseLentOnWrite();

  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'UploadPartCommand' || context.commandName === 'PutObjectCommand') {
        const input = args.input as { Bucket?: string; Key?: string; PartNumber?: number; ChecksumSHA256?: string };
        const hex = checksums.get(`${input.Bucket}/${input.Key}`)?.[(input.PartNumber ?? 1) - 1];
        if (hex && input.ChecksumSHA256 === undefined) input.ChecksumSHA256 = Buffer.from(hex, 'hex').toString('base64');
      }
      return next(args);
    },
    { step: 'initialize', name: 'druidBackupPartChecksum' },
  );
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'UploadPartCommand' || context.commandName === 'PutObjectCommand') {
        const input = args.input as { ChecksumSHA256?: string };
        const req = args.request as { headers?: Record<string, string> };
        // The signed x-amz-checksum-sha256 already protects the body: SigV4 need not hash it again, nor the server.
        if (input.ChecksumSHA256 && req.headers) req.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      }
      return next(args);
    },
    { step: 'build', name: 'druidBackupPayloadHash' },
  );
  type Middleware = Parameters<typeof client.middlewareStack.addRelativeTo>[0];
  client.middlewareStack.addRelativeTo(
    ((next: (a: unknown) => Promise<{ response: unknown }>, context: { commandName?: string }) => async (args: unknown) => {
      const out = await next(args);
      const res = out.response as { body?: unknown; statusCode?: number };
      // GetObject's body is a segment file, streamed by its reader; every other answer, and an error of any, is parsed
      // whole by the SDK.
      const parsed = context.commandName !== 'GetObjectCommand' || (res?.statusCode ?? 0) >= 300;
      if (parsed && res?.body && typeof (res.body as Readable).pipe === 'function')
        res.body = limitedBody(res.body as Readable, ANSWER_LIMITS.page, `the answer of ${describeEndpoint(s, env)} to ${context.commandName ?? 'a request'}`);
      return out;
    }) as unknown as Middleware,
    { relation: 'after', toMiddleware: 'deserializerMiddleware', name: 'druidBackupAnswerLimit' },
  );
  return client;
}
