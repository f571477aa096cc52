/**
 * The one parser of target URLs, used by the API, the configuration and the CLI alike: the checks every target URL
 * gets, then its kind's own (the registry, store/kinds.ts): `http(s)://host:port[/path]` (a target sidecar),
 * `s3://bucket[/prefix]` (a bucket) and, only where a caller says so (the CLI's own tools), `file:///dir`. The raw string is checked whole before `new URL` sees it: `new URL` silently drops leading and
 * trailing control characters and whitespace, removes tabs and newlines anywhere, treats `\` as `/` and resolves
 * `..`, so a URL that passed a check on its parsed form could name something else than what was written.
 */
import { BackupError } from '../errors.js';
import type { TargetUrl } from '../store/kind.js';
import { shownUrl } from '../store/kind.js';
import { KINDS, kindOfScheme } from '../store/kinds.js';

export type { TargetUrl } from '../store/kind.js';
export { shownUrl } from '../store/kind.js';

export interface ParseTargetOptions {
  /** Accept `file:///dir` (the CLI's tools on this machine). Never set for anything a request or a target names. */
  allowFile?: boolean;
  /** Where the credentials of this URL come from, for the message refusing them in it (default: its kind's). */
  credentialsFrom?: string;
}

/** Where a target sidecar's credentials come from, and those of any http(s) service this process calls. */
const TOKEN_SETTINGS = 'use the token settings';

/** The schemes of a service this process calls over HTTP: a sidecar, Druid, an object store's endpoint. */
const HTTP_SCHEMES = ['http', 'https'];

/** Longest target URL accepted (the API's schemas allow the same). */
export const MAX_TARGET_URL = 2048;

/** `http://host:port (a target sidecar) or s3://bucket/prefix (a bucket)`: the kinds a URL may be of, for messages. */
function expectedKinds(allowFile: boolean): string {
  return KINDS.filter((k) => allowFile || !k.cliOnly)
    .map((k) => `${k.example} (${k.role})`)
    .join(' or ');
}

/** Parses a target URL, or throws `bad_request` saying, after `where`, what is wrong with it. */
export function parseTargetUrl(raw: unknown, where: string, opts: ParseTargetOptions = {}): TargetUrl {
  const bad = (msg: string): never => {
    throw new BackupError('bad_request', `${where}: ${msg}`);
  };
  if (typeof raw !== 'string' || raw === '') return bad('a target is a non-empty URL string');
  if (raw.length > MAX_TARGET_URL) return bad(`a target URL is at most ${MAX_TARGET_URL} characters`);
  // Control characters (C0, DEL, C1) and any white space, anywhere: never part of a target's name.
  if (/[\u0000-\u0020\u007f-\u00a0\s\u200b-\u200f\u2028\u2029\ufeff]/u.test(raw))
    return bad(`${shownUrl(raw)} is not a URL: it holds white space or a control character, which a target URL never has`);
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(raw);
  const scheme = m?.[1]!.toLowerCase();
  if (!scheme) return bad(`${shownUrl(raw)} is not a URL (expected ${expectedKinds(opts.allowFile === true)})`);
  const kind = kindOfScheme(scheme);
  const served = KINDS.filter((k) => !k.cliOnly)
    .map((k) => `${k.schemes.map((s) => `${s}://`).join(' and ')} targets (${k.role})`)
    .join(' and ');
  if (!kind) return bad(`${shownUrl(raw)}: unsupported scheme ${scheme}:; only ${served} targets are supported`);
  if (kind.cliOnly && !opts.allowFile)
    return bad(`${shownUrl(raw)}: ${scheme}:// targets are not served over the API; use ${expectedKinds(false)}`);
  // `user:password@` (or anything before an `@`, which a proxy or `new URL` could read as the host's end).
  if (/^[^:]+:\/\/[^/?#]*@/.test(raw))
    return bad(`credentials do not belong in the URL; ${opts.credentialsFrom ?? kind.credentialsFrom ?? TOKEN_SETTINGS}`);
  return kind.parse(raw, scheme, bad);
}

/**
 * The URL of a service this process calls over HTTP (a sidecar, the Coordinator, an object store's endpoint), by
 * the same rules as a target sidecar's URL, in the same one spelling; `where` says whose it is in the error.
 */
export function parseHttpUrl(raw: unknown, where: string, credentialsFrom?: string): string {
  const scheme = typeof raw === 'string' ? /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(raw)?.[1]?.toLowerCase() : undefined;
  if (typeof raw === 'string' && raw !== '' && !(scheme && HTTP_SCHEMES.includes(scheme)))
    throw new BackupError('bad_request', `${where}: ${shownUrl(raw)} is not a URL it can call: only http:// and https:// URLs are supported`);
  return parseTargetUrl(raw, where, { credentialsFrom }).url;
}
