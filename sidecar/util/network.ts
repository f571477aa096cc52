/**
 * The system error codes of a connection that failed or died (refused, reset, timed out, no route, no such host):
 * the peer is unreachable, whatever client met them. One list for every client (the http target's, the S3 SDK's).
 */
export const NETWORK_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ECONNABORTED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
]);

/** The common codes plus those one client adds for its own transport (its timeouts, its cancels). */
export function networkCodes(...extra: string[]): ReadonlySet<string> {
  return new Set([...NETWORK_ERROR_CODES, ...extra]);
}
