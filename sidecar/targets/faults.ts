/**
 * How a failed call to a target is sorted, in one place: each question a caller asks of an error ("is the target
 * at fault?", "try the next target?", "read another copy?", "try again later?", "can it take backups?") is one
 * function here, so a new error code is classified once for every caller.
 */
import { BackupError, isBackupError, messageOf } from '../errors.js';

/** Errors that say something about the target (not about our request or our own files): they count against its health. */
export function isTargetFault(e: unknown): boolean {
  if (!isBackupError(e)) return true;
  if (e.code === 'target_unreachable') return true;
  return e.code === 'target_error' && e.status >= 500;
}

/** A failed transfer worth moving to the next target (not a cancel, not a fault of our own request or files). */
export function failsOver(e: unknown): boolean {
  if (!isBackupError(e)) return true;
  return ['target_unreachable', 'target_error', 'no_space', 'internal', 'payload_too_large'].includes(e.code);
}

/** A failed read worth trying on another copy. */
export function readsElsewhere(e: unknown): boolean {
  if (!isBackupError(e)) return true;
  return ['target_unreachable', 'target_error', 'digest_mismatch', 'bad_archive', 'not_found', 'internal'].includes(e.code);
}

/** Errors worth another attempt of the same transfer later: the network or the target, not our own input. */
export function isTransient(e: unknown): boolean {
  return e instanceof BackupError ? ['target_unreachable', 'target_error', 'internal', 'conflict', 'no_space'].includes(e.code) : true;
}

/**
 * The error of a target that failed its check before a job: unreachable, an answer too large, or a 4xx the target
 * itself named (a bucket that does not exist, refused credentials) as it is; anything else says it cannot take backups.
 */
export function cannotTakeBackups(url: string, e: unknown): BackupError {
  if (isBackupError(e) && (e.code === 'target_unreachable' || e.code === 'target_answer_too_large' || (e.code === 'target_error' && e.status < 500)))
    return e;
  return new BackupError('target_error', `target ${url} cannot take backups: ${messageOf(e)}`);
}
