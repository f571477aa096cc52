/**
 * `azure://container/prefix`: the target URL of an Azure Blob Storage container. The storage account is not in the
 * URL: it comes with the credentials (the connection string, or druid.backup.azure.account), as operators configure
 * it for every Azure tool. Parsed by hand, as s3:// is, so that a prefix is checked as written (`..` is refused).
 */
import { BackupError } from '../../errors.js';
import { parsePrefix } from '../object/layout.js';

export interface AzureLocation {
  container: string;
  /** Empty, or path segments each followed by `/` (`backups/druid/`). */
  prefix: string;
  /** The canonical URL: `azure://container` or `azure://container/prefix` without a trailing `/`. */
  url: string;
}

/** Azure's container naming rules: 3 to 63 lower-case letters, digits and single `-`, beginning with a letter or digit. */
export function containerNameProblem(name: string): string | undefined {
  if (name.length < 3 || name.length > 63) return `container name "${name.slice(0, 80)}" must be 3 to 63 characters`;
  if (!/^[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]$/.test(name))
    return `container name "${name}" may hold only lower-case letters, digits and single "-", and must begin and end with a letter or digit`;
  return undefined;
}

/** Parses and checks an `azure://` URL; throws `bad_request` saying what is wrong. */
export function parseAzureUrl(input: string): AzureLocation {
  const shown = String(input).slice(0, 200);
  const bad = (msg: string): never => {
    throw new BackupError('bad_request', `target "${shown}": ${msg} (expected azure://container or azure://container/prefix)`);
  };
  const m = /^azure:\/\/([^/?#]*)(\/[^?#]*)?([?#].*)?$/i.exec(String(input));
  if (!m) return bad('not an azure:// URL');
  const [, authority = '', path = '', extra] = m;
  if (extra) bad('an Azure target takes no query or fragment (a SAS token does not belong in the URL); the account is set with druid.backup.azure.*');
  if (authority === '') bad('the container name is missing');
  if (authority.includes('@')) bad('credentials do not belong in the URL; they come from AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_KEY or a managed identity');
  if (authority.includes(':')) bad('an Azure target takes no port; set the endpoint with druid.backup.azure.endpoint');
  const problem = containerNameProblem(authority);
  if (problem) bad(problem);
  const prefix = parsePrefix(path, bad);
  return { container: authority, prefix, url: `azure://${authority}${prefix ? `/${prefix.slice(0, -1)}` : ''}` };
}
