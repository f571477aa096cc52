/**
 * Azure Storage failures as `BackupError`s with one clear line that names the service's error code, the container
 * and the endpoint, and never a credential: a misconfiguration (missing container, refused credentials) is a 4xx
 * `target_error`, a service or network that does not answer is `target_unreachable` (active backup pauses and probes
 * again). The SDK has already retried what a retry can help (503, 500, dropped connections) when this runs.
 */
import { BackupError, messageOf } from '../../errors.js';
import { failureNotOfService } from '../object/store.js';

interface RestErrorLike {
  name?: string;
  code?: string;
  statusCode?: number;
  message?: string;
  details?: { errorCode?: string };
}

const NETWORK = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|EPIPE|ECONNABORTED|REQUEST_SEND_ERROR|socket hang up|timeout/i;
const CREDENTIAL_CODES = new Set(['AuthenticationFailed', 'InvalidAuthenticationInfo', 'NoAuthenticationInformation', 'KeyBasedAuthenticationNotPermitted']);

/** The service's error code (`BlobNotFound`, `ConditionNotMet`…), or the system code of a network failure. */
export function azureErrorCode(e: unknown): string | undefined {
  const err = e as RestErrorLike | undefined;
  if (!err || typeof err !== 'object') return undefined;
  return err.details?.errorCode ?? err.code ?? (err.name && err.name !== 'Error' ? err.name : undefined);
}

export function azureStatus(e: unknown): number | undefined {
  return (e as RestErrorLike | undefined)?.statusCode;
}

/** A missing blob (not a missing container, which is a misconfiguration). */
export function isBlobNotFound(e: unknown): boolean {
  const code = azureErrorCode(e);
  return azureStatus(e) === 404 && code !== 'ContainerNotFound';
}

/** A conditional write refused: `If-Match` no longer holds (412) or `If-None-Match: *` found the blob (409). */
export function isConditionFailed(e: unknown): boolean {
  const status = azureStatus(e);
  const code = azureErrorCode(e);
  return status === 412 || (status === 409 && code === 'BlobAlreadyExists');
}

export interface AzureErrorContext {
  action: string;
  container: string;
  /** The blob service endpoint (never carries credentials). */
  endpoint: string;
  signal?: AbortSignal;
}

export function azureError(e: unknown, ctx: AzureErrorContext): BackupError {
  const own = failureNotOfService(e, ctx.action, ctx.signal);
  if (own) return own;
  const err = (e ?? {}) as RestErrorLike;
  const code = azureErrorCode(e) ?? 'unknown';
  const status = azureStatus(e);
  const where = `container "${ctx.container}" at ${ctx.endpoint}`;
  if (code === 'ContainerNotFound')
    return new BackupError('target_error', `Azure ${where}: the container does not exist (ContainerNotFound); create it or fix the target URL`, 404);
  if (CREDENTIAL_CODES.has(code) || (status === 403 && code !== 'AuthorizationPermissionMismatch' && code !== 'AuthorizationFailure'))
    return new BackupError(
      'target_error',
      `Azure ${where} refused the credentials (${code}) while ${ctx.action}; check AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_KEY or the managed identity`,
      403,
    );
  if (status === 403)
    return new BackupError('target_error', `Azure ${where} denied access (${code}) while ${ctx.action}; the identity lacks a role on this container (Storage Blob Data Contributor)`, 403);
  if (err.name === 'CredentialUnavailableError' || err.name === 'AuthenticationError' || err.name === 'AggregateAuthenticationError')
    return new BackupError(
      'target_error',
      `no Azure credentials for ${where}: set AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_KEY, or run with a managed identity (${messageOf(e).replace(/\s+/g, ' ').slice(0, 160)})`,
      400,
    );
  if (status === undefined && NETWORK.test(`${err.code ?? ''} ${err.message ?? ''}`))
    return new BackupError('target_unreachable', `Azure endpoint ${ctx.endpoint} does not answer (${code}) while ${ctx.action}`);
  if (status !== undefined && status >= 500)
    return new BackupError('target_unreachable', `Azure ${where} failed (${code}, HTTP ${status}) while ${ctx.action}`);
  if (status !== undefined)
    return new BackupError('target_error', `Azure ${where} answered ${code} (HTTP ${status}) while ${ctx.action}`, status >= 400 && status < 500 ? status : 502);
  return new BackupError('target_error', `Azure ${where}: ${ctx.action} failed (${code}): ${messageOf(e).replace(/\s+/g, ' ').slice(0, 200)}`);
}
