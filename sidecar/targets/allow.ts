/**
 * Which targets this sidecar may talk to: `druid.backup.allowedTargets` (a JSON list of URLs; `["*"]` allows any)
 * plus its own `druid.backup.target`/`targets`. A caller of the API names a target, but only one of these: the
 * sidecar sends its segments and its token (druid.backup.targetToken, else its own) to nothing else.
 *
 * An entry matches on the parsed URL, never on the string: the same scheme, the same port (default ports made
 * explicit), the same host or, for an entry whose host begins with `*.`, a subdomain of the rest; and the entry's
 * path as a prefix of the target's at a `/` boundary (`s3://druid-backups/prod` allows `s3://druid-backups/prod/x`,
 * not `s3://druid-backups/production` nor `s3://druid-backups-evil`).
 */
import { BackupError, messageOf } from '../errors.js';
import type { TargetUrl } from './url.js';
import { parseTargetUrl, shownUrl } from './url.js';

export const ALLOWED_TARGETS_KEY = 'druid.backup.allowedTargets';

export interface AllowEntry {
  scheme: TargetUrl['scheme'];
  /** The host itself, or with `subdomains` the domain whose subdomains match (`example.com` for `*.example.com`). */
  host: string;
  subdomains: boolean;
  port: number;
  path: string;
}

/** `'*'`: any target (a lab); else the entries. */
export type AllowList = '*' | AllowEntry[];

/** A label that stands for the `*` of an entry while it goes through the parser (a `*` is no host character). */
const WILDCARD_LABEL = 'wildcard-label-of-an-allow-entry';

/** One entry of the list, as written in the configuration. */
export function parseAllowEntry(raw: string, where: string): AllowEntry {
  const m = /^([A-Za-z0-9]+:\/\/)\*\.(.*)$/.exec(raw);
  const t = parseTargetUrl(m ? `${m[1]}${WILDCARD_LABEL}.${m[2]}` : raw, where);
  if (!m) return { scheme: t.scheme, host: t.host, subdomains: false, port: t.port, path: t.path };
  const domain = t.host.slice(WILDCARD_LABEL.length + 1);
  // A wildcard over an address ("*.0.0.1") or a bare top-level name ("*.com") would allow far more than meant.
  if (!domain.includes('.') || /^[\d.]+$/.test(domain) || domain.startsWith('['))
    throw new BackupError('bad_request', `${where}: ${shownUrl(raw)}: "*." goes before a domain of at least two labels (*.backups.example.com)`);
  return { scheme: t.scheme, host: domain, subdomains: true, port: t.port, path: t.path };
}

/** `druid.backup.allowedTargets`: JSON text of a list of URLs, or `["*"]`. */
export function parseAllowList(text: string, where: string): AllowList {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new BackupError('bad_config', `${where}: not valid JSON (${messageOf(e)}); write a list such as ["http://backup-1:8484", "s3://druid-backups/prod"]`);
  }
  if (!Array.isArray(raw) || raw.some((r) => typeof r !== 'string'))
    throw new BackupError('bad_config', `${where}: expected a JSON list of target URLs, or ["*"] for any target`);
  const list = raw as string[];
  if (list.includes('*')) {
    if (list.length > 1) throw new BackupError('bad_config', `${where}: "*" allows any target; list nothing else beside it`);
    return '*';
  }
  return list.map((r, i) => {
    try {
      return parseAllowEntry(r, `${where}[${i}]`);
    } catch (e) {
      throw new BackupError('bad_config', messageOf(e));
    }
  });
}

export function allowsTarget(entry: AllowEntry, t: TargetUrl): boolean {
  if (entry.scheme !== t.scheme || entry.port !== t.port) return false;
  const hostOk = entry.subdomains ? t.host.length > entry.host.length + 1 && t.host.endsWith(`.${entry.host}`) : t.host === entry.host;
  if (!hostOk) return false;
  return entry.path === '' || t.path === entry.path || t.path.startsWith(`${entry.path}/`);
}

export function isAllowed(list: AllowList, t: TargetUrl): boolean {
  return list === '*' || list.some((e) => allowsTarget(e, t));
}

/** Throws 403 `target_not_allowed`, naming the key to set, unless the list allows the target. */
export function checkAllowed(list: AllowList, t: TargetUrl): void {
  if (!isAllowed(list, t))
    throw new BackupError(
      'target_not_allowed',
      `target ${t.url} is not one this sidecar may use: add it to ${ALLOWED_TARGETS_KEY} (--allowed-targets) or druid.backup.targets of this node`,
    );
}
