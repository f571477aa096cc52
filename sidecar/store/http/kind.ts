/** The `http` kind: another sidecar started with `--store`, which keeps a local store (`http(s)://host:port[/path]`). */
import type { TargetKind, TargetUrl, UrlProblem } from '../kind.js';
import { shownUrl } from '../kind.js';
import { HttpTarget } from './target.js';

const DEFAULT_PORT: Record<string, number> = { http: 80, https: 443 };
/** A host as written: a DNS name (letters, digits, `-`, `.`), an IPv4 address or a bracketed IPv6 one; then a port. */
const AUTHORITY = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)(?::(\d{1,5}))?$/;
/** Path segments of unreserved characters only: no `%` escapes, `.`/`..` or `\` that a proxy could read otherwise. */
const PATH_SEGMENT = /^[A-Za-z0-9_~-][A-Za-z0-9._~-]*$/;

function parse(raw: string, scheme: string, bad: UrlProblem): TargetUrl {
  const m = /^[A-Za-z]+:\/\/([^/?#]*)(\/[^?#]*)?([?#].*)?$/.exec(raw);
  if (!m) return bad(`${shownUrl(raw)} is not a URL (expected ${scheme}://host:port)`);
  const [, authority = '', rawPath = '', extra] = m;
  if (extra) bad(`${shownUrl(raw)}: a target URL takes no query or fragment`);
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

export const httpKind: TargetKind = {
  name: 'http',
  schemes: ['http', 'https'],
  example: 'http://host:port',
  role: 'a target sidecar',
  answeredByNode: false,
  parse,
  open: (t, opts) => new HttpTarget(t.url, opts),
};
