/**
 * The one parser of target URLs, used by the API, the configuration and the CLI alike: `http(s)://host:port[/path]`
 * (a target sidecar), `s3://bucket[/prefix]` (a bucket), `azure://container[/prefix]` (an Azure Blob container) and, only where a caller says so (the CLI's own tools),
 * `file:///dir`. The raw string is checked whole before `new URL` sees it: `new URL` silently drops leading and
 * trailing control characters and whitespace, removes tabs and newlines anywhere, treats `\` as `/` and resolves
 * `..`, so a URL that passed a check on its parsed form could name something else than what was written.
 */
import { fileURLToPath } from 'node:url';
import { BackupError, messageOf } from '../errors.js';
import { parseAzureUrl } from '../store/azure/url.js';
import { parseS3Url } from '../store/s3/url.js';

export type TargetScheme = 'http' | 'https' | 's3' | 'azure' | 'file';

export interface TargetUrl {
  /** The one spelling used everywhere: lower-case scheme and host, no default port, no trailing slash. */
  url: string;
  scheme: TargetScheme;
  /** The host name or address as `new URL` canonicalises it (`[::1]`, `127.0.0.1`); the bucket (container) of an s3:// (azure://) URL. */
  host: string;
  /** The port, default ports made explicit (80, 443); 0 for s3://, azure:// and file://, which have none. */
  port: number;
  /** The path without a trailing slash: `''` for the root, else `/a/b` (the prefix of a bucket). */
  path: string;
  /** The local directory of a file:// URL. */
  dir?: string;
}

export interface ParseTargetOptions {
  /** Accept `file:///dir` (the CLI's tools on this machine). Never set for anything a request or a target names. */
  allowFile?: boolean;
}

/** Longest target URL accepted (the API's schemas allow the same). */
export const MAX_TARGET_URL = 2048;

const DEFAULT_PORT: Record<string, number> = { http: 80, https: 443 };

/** A URL's text in an error message: cut, and quoted as JSON so that control characters show as escapes. */
export function shownUrl(raw: string): string {
  return JSON.stringify(raw.length > 200 ? `${raw.slice(0, 200)}…` : raw);
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
  const expected = `expected http://host:port (a target sidecar), s3://bucket/prefix (a bucket) or azure://container/prefix (an Azure container)${opts.allowFile ? ' or file:///dir' : ''}`;
  if (!scheme) return bad(`${shownUrl(raw)} is not a URL (${expected})`);
  switch (scheme) {
    case 's3':
      return s3(raw, bad);
    case 'azure':
      return azure(raw, bad);
    case 'http':
    case 'https':
      return web(raw, scheme, bad);
    case 'file':
      if (!opts.allowFile)
        return bad(`${shownUrl(raw)}: file:// targets are not served over the API; use a target sidecar (http://host:8484) or a bucket (s3://)`);
      return file(raw, bad);
    default:
      return bad(`${shownUrl(raw)}: unsupported scheme ${scheme}:; only http:// and https:// targets (a sidecar), s3:// targets (a bucket) and azure:// targets (an Azure container) are supported`);
  }
}

function s3(raw: string, bad: (msg: string) => never): TargetUrl {
  let loc;
  try {
    loc = parseS3Url(raw);
  } catch (e) {
    return bad(messageOf(e));
  }
  return { url: loc.url, scheme: 's3', host: loc.bucket, port: 0, path: loc.prefix ? `/${loc.prefix.slice(0, -1)}` : '' };
}

function azure(raw: string, bad: (msg: string) => never): TargetUrl {
  let loc;
  try {
    loc = parseAzureUrl(raw);
  } catch (e) {
    return bad(messageOf(e));
  }
  return { url: loc.url, scheme: 'azure', host: loc.container, port: 0, path: loc.prefix ? `/${loc.prefix.slice(0, -1)}` : '' };
}

/** A host as written: a DNS name (letters, digits, `-`, `.`), an IPv4 address or a bracketed IPv6 one; then a port. */
const AUTHORITY = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)(?::(\d{1,5}))?$/;
/** Path segments of unreserved characters only: no `%` escapes, `.`/`..` or `\` that a proxy could read otherwise. */
const PATH_SEGMENT = /^[A-Za-z0-9_~-][A-Za-z0-9._~-]*$/;

function web(raw: string, scheme: 'http' | 'https', bad: (msg: string) => never): TargetUrl {
  const m = /^[A-Za-z]+:\/\/([^/?#]*)(\/[^?#]*)?([?#].*)?$/.exec(raw);
  if (!m) return bad(`${shownUrl(raw)} is not a URL (expected ${scheme}://host:port)`);
  const [, authority = '', rawPath = '', extra] = m;
  if (extra) bad(`${shownUrl(raw)}: a target URL takes no query or fragment`);
  if (authority.includes('@')) bad('credentials do not belong in the URL; use the token settings');
  if (authority === '') bad(`${shownUrl(raw)}: the host is missing`);
  if (!AUTHORITY.test(authority)) bad(`${shownUrl(raw)}: the host may hold only letters, digits, "-" and "." (or an [IPv6] address), then :port`);
  const segments = rawPath.split('/').slice(1);
  if (segments.length > 0 && segments[segments.length - 1] === '') segments.pop();
  for (const s of segments)
    if (!PATH_SEGMENT.test(s) || s === '..')
      bad(`${shownUrl(raw)}: path segment ${shownUrl(s)} may hold only letters, digits, ".", "_", "~" and "-" (and is not "", "." or "..")`);
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return bad(`${shownUrl(raw)} is not a URL (expected ${scheme}://host:port)`);
  }
  const host = u.hostname.toLowerCase();
  const port = u.port ? Number(u.port) : DEFAULT_PORT[scheme]!;
  if (port === 0) bad(`${shownUrl(raw)}: port 0 names no server`);
  const path = segments.map((s) => `/${s}`).join('');
  return { url: `${scheme}://${u.host}${path}`, scheme, host, port, path };
}

function file(raw: string, bad: (msg: string) => never): TargetUrl {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return bad(`${shownUrl(raw)} is not a URL (expected file:///dir)`);
  }
  if (u.host && u.host !== 'localhost') bad(`${shownUrl(raw)}: a file:// URL names a local directory (file:///path)`);
  if (u.search || u.hash) bad(`${shownUrl(raw)}: a file:// URL takes no query or fragment`);
  const dir = fileURLToPath(u);
  const path = u.pathname.replace(/\/+$/, '');
  return { url: `file://${path || '/'}`, scheme: 'file', host: '', port: 0, path, dir };
}
