/**
 * Bearer-token authentication of every call but `GET /status/health`. The comparison runs in constant time over
 * sha256 digests, so neither the token's content nor its length leaks through timing.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { BackupError } from '../errors.js';

/** Paths anyone may call: liveness for load balancers and supervisors. */
export const OPEN_PATHS = new Set(['/status/health']);

export function generateToken(): string {
  return randomBytes(32).toString('hex');
}

export class TokenCheck {
  private readonly digest: Buffer;
  constructor(token: string) {
    this.digest = createHash('sha256').update(token).digest();
  }

  matches(presented: string): boolean {
    return timingSafeEqual(this.digest, createHash('sha256').update(presented).digest());
  }

  /** Throws `unauthorized` unless the Authorization header carries the token. */
  check(header: string | undefined): void {
    if (!header) throw new BackupError('unauthorized', 'missing "Authorization: Bearer <token>" header');
    const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
    if (!m) throw new BackupError('unauthorized', 'the Authorization header must be "Bearer <token>"');
    if (!this.matches(m[1]!)) throw new BackupError('unauthorized', 'wrong token');
  }
}
