/**
 * `s3://bucket/prefix`: the target URL of a bucket. Parsed by hand, not with `new URL`, which would quietly
 * resolve `..` and drop empty segments: a prefix is checked as written, so `s3://b/a/../x` is refused instead
 * of becoming `s3://b/x`.
 */
import { BackupError } from '../../errors.js';
import { parsePrefix } from '../object/layout.js';

export interface S3Location {
  bucket: string;
  /** Empty, or path segments each followed by `/` (`backups/druid/`). */
  prefix: string;
  /** The canonical URL: `s3://bucket` or `s3://bucket/prefix` without a trailing `/`. */
  url: string;
}

/** S3's bucket naming rules (the strict, DNS-compatible ones that every S3-compatible server accepts). */
export function bucketNameProblem(name: string): string | undefined {
  if (name.length < 3 || name.length > 63) return `bucket name "${name}" must be 3 to 63 characters`;
  if (!/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(name))
    return `bucket name "${name}" may hold only lower-case letters, digits, "." and "-", and must begin and end with a letter or digit`;
  if (name.includes('..') || name.includes('.-') || name.includes('-.')) return `bucket name "${name}" must not have "..", ".-" or "-."`;
  if (/^\d+\.\d+\.\d+\.\d+$/.test(name)) return `bucket name "${name}" must not look like an IP address`;
  return undefined;
}

/** Parses and checks an `s3://` URL; throws `bad_request` saying what is wrong. */
export function parseS3Url(input: string): S3Location {
  const shown = String(input).slice(0, 200);
  const bad = (msg: string): never => {
    throw new BackupError('bad_request', `target "${shown}": ${msg} (expected s3://bucket or s3://bucket/prefix)`);
  };
  const m = /^s3:\/\/([^/?#]*)(\/[^?#]*)?([?#].*)?$/i.exec(String(input));
  if (!m) return bad('not an s3:// URL');
  const [, authority = '', path = '', extra] = m;
  if (extra) bad('an S3 target takes no query or fragment; endpoint and region are set with druid.backup.s3.* or the AWS environment');
  if (authority === '') bad('the bucket name is missing');
  if (authority.includes('@')) bad('credentials do not belong in the URL; they come from the AWS environment, profile or instance role');
  if (authority.includes(':')) bad('an S3 target takes no port; set the endpoint with druid.backup.s3.endpoint or AWS_ENDPOINT_URL_S3');
  const problem = bucketNameProblem(authority);
  if (problem) bad(problem);
  const prefix = parsePrefix(path, bad);
  return { bucket: authority, prefix, url: `s3://${authority}${prefix ? `/${prefix.slice(0, -1)}` : ''}` };
}
