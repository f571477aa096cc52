/** `s3://bucket/prefix`: the target URL of a bucket, checked as every bucket's (store/object/url.ts) with S3's naming rules. */
import type { ObjectUrlRules } from '../object/url.js';
import { parseObjectUrl } from '../object/url.js';

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

/** What an `s3://` URL may be (store/object/url.ts checks it). */
export const S3_URL: ObjectUrlRules = {
  scheme: 's3',
  noun: 'bucket',
  target: 'an S3 target',
  query: '; endpoint and region are set with druid.backup.s3.* or the AWS environment',
  port: 'set the endpoint with druid.backup.s3.endpoint or AWS_ENDPOINT_URL_S3',
  credentialsFrom: 'they come from the AWS environment, profile or instance role',
  nameProblem: bucketNameProblem,
};

/** Parses and checks an `s3://` URL; throws `bad_request` saying what is wrong. */
export function parseS3Url(input: string): S3Location {
  const { name, prefix, url } = parseObjectUrl(input, S3_URL);
  return { bucket: name, prefix, url };
}
