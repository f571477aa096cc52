/**
 * Errors are values with a stable code, an HTTP status and a message a person can act on.
 * They are raised where the fault is known and turned into HTTP or CLI output in one place
 * (server/errors.ts and cli.ts).
 */
export type ErrorCode =
  | 'bad_request'
  | 'bad_segment_id'
  | 'bad_interval'
  | 'bad_config'
  | 'unauthorized'
  | 'forbidden'
  | 'target_not_allowed'
  | 'not_found'
  | 'conflict'
  | 'digest_mismatch'
  | 'bad_archive'
  | 'payload_too_large'
  | 'no_space'
  | 'target_unreachable'
  | 'target_error'
  | 'target_answer_too_large'
  | 'cancelled'
  | 'internal';

const STATUS: Record<ErrorCode, number> = {
  bad_request: 400,
  bad_segment_id: 400,
  bad_interval: 400,
  bad_config: 400,
  unauthorized: 401,
  forbidden: 403,
  target_not_allowed: 403,
  not_found: 404,
  conflict: 409,
  digest_mismatch: 422,
  bad_archive: 400,
  payload_too_large: 413,
  no_space: 507,
  target_unreachable: 502,
  target_error: 502,
  target_answer_too_large: 502,
  cancelled: 409,
  internal: 500,
};

export class BackupError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  constructor(code: ErrorCode, message: string, status?: number) {
    super(message);
    this.name = 'BackupError';
    this.code = code;
    this.status = status ?? STATUS[code];
  }
}

export function isBackupError(e: unknown): e is BackupError {
  return e instanceof BackupError;
}

/**
 * The error of work stopped by an aborted `signal`: the BackupError it was aborted with when there is one (active
 * backup aborts the transfers under way with `target_unreachable` when the target stops answering, so that they wait
 * for it rather than count as failures; a stalled transfer is aborted with its stall), else `cancelled`.
 */
export function abortError(signal: AbortSignal, message = 'cancelled'): BackupError {
  const reason = signal.reason as unknown;
  return isBackupError(reason) ? reason : new BackupError('cancelled', message);
}

/** A message for any thrown value, without a stack trace. */
export function messageOf(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
