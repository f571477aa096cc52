/**
 * The target URL of a bucket or a container, `{scheme}://{name}[/prefix]`, checked as written for every object-store
 * kind: parsed by hand, not with `new URL`, which would quietly resolve `..` and drop empty segments, so a prefix is
 * checked as written (`s3://b/a/../x` is refused instead of becoming `s3://b/x`). What differs by service (the name's
 * rules, where the endpoint and the credentials are set) is the kind's `ObjectUrlRules`.
 */
import { BackupError, messageOf } from '../../errors.js';
import type { TargetUrl, UrlProblem } from '../kind.js';
import { parsePrefix } from './layout.js';

export interface ObjectUrlRules {
  /** `s3`. */
  scheme: string;
  /** What the service calls its container of objects: `bucket`. */
  noun: string;
  /** A target of the kind, for messages: `an S3 target`. */
  target: string;
  /** Said after "takes no query or fragment": where the settings go instead. */
  query: string;
  /** Said after "takes no port": where the endpoint is set. */
  port: string;
  /** Where the credentials come from (the kind's `credentialsFrom`). */
  credentialsFrom: string;
  /** The service's rules for a bucket or container name. */
  nameProblem(name: string): string | undefined;
}

export interface ObjectLocation {
  /** The bucket or the container. */
  name: string;
  /** Empty, or path segments each followed by `/` (`backups/druid/`). */
  prefix: string;
  /** The canonical URL: `s3://bucket` or `s3://bucket/prefix` without a trailing `/`. */
  url: string;
}

/** Parses and checks a bucket or container URL by the kind's rules; throws `bad_request` saying what is wrong. */
export function parseObjectUrl(input: string, r: ObjectUrlRules): ObjectLocation {
  const shown = String(input).slice(0, 200);
  const bad = (msg: string): never => {
    throw new BackupError('bad_request', `target "${shown}": ${msg} (expected ${r.scheme}://${r.noun} or ${r.scheme}://${r.noun}/prefix)`);
  };
  const m = new RegExp(`^${r.scheme}://([^/?#]*)(/[^?#]*)?([?#].*)?$`, 'i').exec(String(input));
  if (!m) return bad(`not an ${r.scheme}:// URL`);
  const [, authority = '', path = '', extra] = m;
  if (extra) bad(`${r.target} takes no query or fragment${r.query}`);
  if (authority === '') bad(`the ${r.noun} name is missing`);
  if (authority.includes('@')) bad(`credentials do not belong in the URL; ${r.credentialsFrom}`);
  if (authority.includes(':')) bad(`${r.target} takes no port; ${r.port}`);
  const problem = r.nameProblem(authority);
  if (problem) bad(problem);
  const prefix = parsePrefix(path, bad);
  return { name: authority, prefix, url: `${r.scheme}://${authority}${prefix ? `/${prefix.slice(0, -1)}` : ''}` };
}

/** A kind's `parse` (store/kind.ts) for a bucket or container URL: the bucket as `host`, the prefix as `path`. */
export function objectTargetUrl(raw: string, bad: UrlProblem, r: ObjectUrlRules): TargetUrl {
  let loc: ObjectLocation;
  try {
    loc = parseObjectUrl(raw, r);
  } catch (e) {
    return bad(messageOf(e));
  }
  return { url: loc.url, scheme: r.scheme, host: loc.name, port: 0, path: loc.prefix ? `/${loc.prefix.slice(0, -1)}` : '' };
}
