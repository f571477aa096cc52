/**
 * S3 failures as `BackupError`s with one clear line that names the S3 error code, the bucket and the endpoint,
 * and never a credential: a misconfiguration (missing bucket, refused credentials) is a 4xx `target_error`, a
 * server or network that does not answer is `target_unreachable` (active backup pauses and probes again).
 * The SDK has already retried what a retry can help (throttling, 5xx, dropped connections) when this runs.
 */
import { BackupError, messageOf } from '../../errors.js';
import { networkCodes } from '../../util/network.js';
import { failureNotOfService } from '../object/store.js';

export interface S3ErrorContext {
  /** What was being done, e.g. `uploading segments/…/00000.smoosh`. */
  action: string;
  bucket: string;
  /** A description of the endpoint (never carries credentials). */
  endpoint: string;
  signal?: AbortSignal;
}

interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
  $fault?: string;
}

const CREDENTIAL_CODES = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'XAdminUserNotFound',
  'InvalidToken',
  'ExpiredToken',
  'TokenRefreshRequired',
  'AuthorizationHeaderMalformed',
  'InvalidSecurity',
]);
const NETWORK_CODES = networkCodes('TimeoutError', 'RequestTimeout');

/** The S3 error code of an SDK error (`NoSuchBucket`, `SignatureDoesNotMatch`…), or the system code of a network failure. */
export function s3ErrorCode(e: unknown): string | undefined {
  const err = e as SdkError | undefined;
  if (!err || typeof err !== 'object') return undefined;
  if (err.Code) return err.Code;
  if (err.$metadata?.httpStatusCode !== undefined && err.name) return err.name;
  return err.code ?? (err.name && err.name !== 'Error' ? err.name : undefined);
}

export function s3Status(e: unknown): number | undefined {
  return (e as SdkError | undefined)?.$metadata?.httpStatusCode;
}

export function isNotFound(e: unknown): boolean {
  const code = s3ErrorCode(e);
  return code === 'NoSuchKey' || code === 'NotFound' || (s3Status(e) === 404 && code !== 'NoSuchBucket' && code !== 'XAdminUserNotFound');
}

export function isPreconditionFailed(e: unknown): boolean {
  return s3ErrorCode(e) === 'PreconditionFailed' || s3Status(e) === 412;
}

/** A server message worth showing: short, one line (S3 never echoes credentials in it). */
function serverMessage(e: SdkError): string {
  const m = (e.message ?? '').replace(/\s+/g, ' ').trim();
  return m && m !== 'UnknownError' ? `: ${m.slice(0, 200)}` : '';
}

export function s3Error(e: unknown, ctx: S3ErrorContext): BackupError {
  const own = failureNotOfService(e, ctx.action, ctx.signal);
  if (own) return own;
  const err = (e ?? {}) as SdkError;
  const code = s3ErrorCode(e) ?? 'unknown';
  const status = s3Status(e);
  const where = `bucket "${ctx.bucket}" at ${ctx.endpoint}`;
  if (code === 'NoSuchBucket')
    return new BackupError('target_error', `S3 ${where}: the bucket does not exist (NoSuchBucket); create it or fix the target URL`, 404);
  if (CREDENTIAL_CODES.has(code) || (status === 403 && code === 'Unknown'))
    return new BackupError(
      'target_error',
      `S3 ${where} refused the credentials (${code === 'Unknown' ? '403' : code}) while ${ctx.action}; check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE or the instance role`,
      403,
    );
  if (code === 'AccessDenied' || code === 'AllAccessDisabled' || status === 403)
    return new BackupError(
      'target_error',
      `S3 ${where} denied access (${code}) while ${ctx.action}; the credentials lack permission for this bucket or prefix`,
      403,
    );
  if (code === 'CredentialsProviderError' || /could not load credentials/i.test(err.message ?? ''))
    return new BackupError(
      'target_error',
      `no AWS credentials for ${where}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run with an instance role`,
      400,
    );
  if (/region is missing/i.test(err.message ?? ''))
    return new BackupError('bad_config', `no AWS region for ${where}: set AWS_REGION or druid.backup.s3.region`);
  if (
    NETWORK_CODES.has(code) ||
    (status === undefined && err.$fault === undefined && /ECONN|ENOTFOUND|EAI_AGAIN|socket|timeout|network/i.test(`${err.code ?? ''} ${err.message ?? ''}`))
  )
    return new BackupError('target_unreachable', `S3 endpoint ${ctx.endpoint} does not answer (${code}) while ${ctx.action}`);
  if (status !== undefined && status >= 500)
    return new BackupError('target_unreachable', `S3 ${where} failed (${code}, HTTP ${status}) while ${ctx.action}${serverMessage(err)}`);
  if (status !== undefined)
    return new BackupError(
      'target_error',
      `S3 ${where} answered ${code} (HTTP ${status}) while ${ctx.action}${serverMessage(err)}`,
      status >= 400 && status < 500 ? status : 502,
    );
  return new BackupError('target_error', `S3 ${where}: ${ctx.action} failed (${code}): ${messageOf(e).slice(0, 200)}`);
}
