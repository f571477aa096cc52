/**
 * The `azure` kind: an Azure Blob Storage container this process talks to itself (`azure://container[/prefix]`),
 * with the credentials Azure users already configure (client.ts); its `druid.backup.azure.*` keys name the account,
 * the endpoint and the block size, never a secret. A container has no sidecar of its own: the node that backs up to
 * it answers for it, as for a bucket.
 */
import type { KeySpec } from '../../config.js';
import type { TargetKind } from '../kind.js';
import { objectTargetUrl } from '../object/url.js';
import type { AzureSettings } from './client.js';
import { azureSettingsFromEnv, checkAzureSettings } from './client.js';
import { AzureTarget } from './target.js';
import { AZURE_URL } from './url.js';

/** Credentials come from AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_KEY or a managed identity, never from these. */
const keys: KeySpec[] = [
  {
    key: 'druid.backup.azure.account',
    type: 'string',
    doc: 'Storage account of azure://container/prefix targets; default AZURE_STORAGE_ACCOUNT, or the account of AZURE_STORAGE_CONNECTION_STRING (which wins when set).',
  },
  {
    key: 'druid.backup.azure.endpoint',
    type: 'url',
    doc: 'Blob service URL (an emulator, a sovereign cloud: http://azurite:10000/devstoreaccount1); default https://{account}.blob.core.windows.net.',
  },
  {
    key: 'druid.backup.azure.blockSize',
    type: 'size',
    default: '8MiB',
    min: 1024 ** 2,
    max: 4000 * 1024 ** 2,
    doc: 'Size of the blocks a file is staged in, each with its Content-MD5 (1MiB to 4000MiB); memory per upload is about (concurrency + 1) × blockSize.',
  },
  { key: 'druid.backup.azure.concurrency', type: 'int', default: '4', min: 1, max: 64, doc: 'Blocks of one file staged at once.' },
];

export const azureKind: TargetKind = {
  name: 'azure',
  schemes: ['azure'],
  example: 'azure://container/prefix',
  role: 'an Azure Blob container',
  answeredByNode: true,
  parse: (raw, _scheme, bad) => objectTargetUrl(raw, bad, AZURE_URL),
  credentialsFrom: AZURE_URL.credentialsFrom,
  keys,
  settings: (value): AzureSettings => {
    const s: AzureSettings = {
      account: value('druid.backup.azure.account') as string | undefined,
      endpoint: value('druid.backup.azure.endpoint') as string | undefined,
      blockSize: value('druid.backup.azure.blockSize') as number,
      concurrency: value('druid.backup.azure.concurrency') as number,
    };
    checkAzureSettings(s);
    return s;
  },
  // Without the configuration (the CLI's tools), the settings come from the environment.
  open: (t, opts) => AzureTarget.open(t.url, { log: opts.log, settings: (opts.settings?.azure as AzureSettings | undefined) ?? azureSettingsFromEnv() }),
};
