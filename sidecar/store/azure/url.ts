/**
 * `azure://container/prefix`: the target URL of an Azure Blob Storage container. The storage account is not in the
 * URL: it comes with the credentials (the connection string, or druid.backup.azure.account), as operators configure
 * it for every Azure tool. Checked as every bucket's URL is (store/object/url.ts), with Azure's naming rules.
 */
import type { ObjectUrlRules } from '../object/url.js';
import { parseObjectUrl } from '../object/url.js';

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

/** What an `azure://` URL may be (store/object/url.ts checks it). */
export const AZURE_URL: ObjectUrlRules = {
  scheme: 'azure',
  noun: 'container',
  target: 'an Azure target',
  query: ' (a SAS token does not belong in the URL); the account is set with druid.backup.azure.*',
  port: 'set the endpoint with druid.backup.azure.endpoint',
  credentialsFrom: 'they come from AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_KEY or a managed identity',
  nameProblem: containerNameProblem,
};

/** Parses and checks an `azure://` URL; throws `bad_request` saying what is wrong. */
export function parseAzureUrl(input: string): AzureLocation {
  const { name, prefix, url } = parseObjectUrl(input, AZURE_URL);
  return { container: name, prefix, url };
}
