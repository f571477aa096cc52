/**
 * The Azure Blob Storage client of a target, with the credentials Azure users already configure, in this order:
 * 1. `AZURE_STORAGE_CONNECTION_STRING` (account, key or SAS, and endpoint in one string, as the Azure CLI and
 *    Storage Explorer give it);
 * 2. the account (`druid.backup.azure.account` or `AZURE_STORAGE_ACCOUNT`) with its key in `AZURE_STORAGE_KEY`;
 * 3. the account with `DefaultAzureCredential` (`@azure/identity`): a managed identity on an Azure VM or AKS
 *    (workload identity), `AZURE_CLIENT_ID`/`AZURE_TENANT_ID`/`AZURE_CLIENT_SECRET`, or `az login`. The identity needs
 *    the role "Storage Blob Data Contributor" on the container.
 * The endpoint is `https://{account}.blob.core.windows.net` unless `druid.backup.azure.endpoint` says otherwise (an
 * emulator, a sovereign cloud). Nothing here logs or keeps a credential beyond handing it to the SDK.
 *
 * The SDK is loaded the first time a container is used, as S3's is (s3/sdk.ts): a sidecar that never talks to Azure
 * does not carry its code.
 */
import type { RequestPolicy, RequestPolicyFactory, WebResource } from '@azure/storage-blob';
import { parseHumanBytes } from '../../druid/bytes.js';
import { BackupError } from '../../errors.js';
import { ANSWER_LIMITS, readLimited } from '../../util/limitedRead.js';

export const MIB = 1024 * 1024;
export const DEFAULT_BLOCK_SIZE = 8 * MIB;
/** Azure's largest block (4000 MiB); 1 MiB at least, so that 50,000 blocks hold any segment file. */
export const MIN_BLOCK_SIZE = MIB;
export const MAX_BLOCK_SIZE = 4000 * MIB;
export const MAX_BLOCKS = 50_000;
export const DEFAULT_CONCURRENCY = 4;

export interface AzureSettings {
  /** `druid.backup.azure.account`: the storage account; default AZURE_STORAGE_ACCOUNT (or the connection string's). */
  account?: string;
  /** `druid.backup.azure.endpoint`: the blob service URL; default https://{account}.blob.core.windows.net. */
  endpoint?: string;
  /** `druid.backup.azure.blockSize`: bytes per staged block. */
  blockSize?: number;
  /** `druid.backup.azure.concurrency`: blocks of one file in flight. */
  concurrency?: number;
}

export type AzureSdk = typeof import('@azure/storage-blob');
type ContainerClient = import('@azure/storage-blob').ContainerClient;

let loading: Promise<AzureSdk> | undefined;

export function loadAzureSdk(): Promise<AzureSdk> {
  loading ??= import('@azure/storage-blob');
  return loading;
}

export function checkAzureSettings(s: AzureSettings): { blockSize: number; concurrency: number } {
  const blockSize = s.blockSize ?? DEFAULT_BLOCK_SIZE;
  const concurrency = s.concurrency ?? DEFAULT_CONCURRENCY;
  if (!Number.isSafeInteger(blockSize) || blockSize < MIN_BLOCK_SIZE || blockSize > MAX_BLOCK_SIZE)
    throw new BackupError('bad_config', `druid.backup.azure.blockSize: ${blockSize} bytes is outside 1 MiB to 4000 MiB`);
  if (!Number.isSafeInteger(concurrency) || concurrency < 1 || concurrency > 64)
    throw new BackupError('bad_config', `druid.backup.azure.concurrency: ${concurrency} is outside 1..64`);
  if (s.account !== undefined && !/^[a-z0-9]{3,24}$/.test(s.account))
    throw new BackupError('bad_config', `druid.backup.azure.account: "${s.account.slice(0, 40)}" is not a storage account name (3 to 24 lower-case letters and digits)`);
  return { blockSize, concurrency };
}

/**
 * The druid.backup.azure.* settings from their environment variables (`DRUID_BACKUP_AZURE_ACCOUNT`, `_ENDPOINT`,
 * `_BLOCK_SIZE`, `_CONCURRENCY`), for the command-line tools that run without a sidecar's config.
 */
export function azureSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): AzureSettings {
  const get = (name: string) => env[`DRUID_BACKUP_AZURE_${name}`] || undefined;
  const out: AzureSettings = { account: get('ACCOUNT'), endpoint: get('ENDPOINT') };
  const blockSize = get('BLOCK_SIZE');
  if (blockSize !== undefined) out.blockSize = parseHumanBytes(blockSize, 'DRUID_BACKUP_AZURE_BLOCK_SIZE');
  const concurrency = get('CONCURRENCY');
  if (concurrency !== undefined) out.concurrency = /^\d+$/.test(concurrency) ? Number(concurrency) : NaN;
  if (out.endpoint !== undefined && !/^https?:\/\/[^/@\s?#]+(\/[^@\s?#]*)?$/i.test(out.endpoint))
    throw new BackupError('bad_config', `DRUID_BACKUP_AZURE_ENDPOINT: "${out.endpoint.slice(0, 100)}" is not an http:// or https:// URL without credentials or a query`);
  checkAzureSettings(out);
  return out;
}

/** A URL for messages: scheme, host and path, never a query (a SAS token) or user info. */
function shownEndpoint(raw: string): string {
  try {
    const u = new URL(raw);
    return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`;
  } catch {
    return 'the configured endpoint';
  }
}

/** The connection string's BlobEndpoint, or the endpoint its account implies, for messages. */
function connectionStringEndpoint(cs: string): string {
  const part = (name: string) => new RegExp(`(?:^|;)\\s*${name}=([^;]*)`, 'i').exec(cs)?.[1];
  const blob = part('BlobEndpoint');
  if (blob) return shownEndpoint(blob);
  const account = part('AccountName');
  return account ? `https://${account}.blob.${part('EndpointSuffix') ?? 'core.windows.net'}` : 'the connection string';
}

/** Where requests go, for messages. */
export function describeAzureEndpoint(s: AzureSettings, env: NodeJS.ProcessEnv = process.env): string {
  if (env.AZURE_STORAGE_CONNECTION_STRING) return connectionStringEndpoint(env.AZURE_STORAGE_CONNECTION_STRING);
  const account = s.account ?? env.AZURE_STORAGE_ACCOUNT;
  if (s.endpoint) return shownEndpoint(s.endpoint);
  return account ? `https://${account}.blob.core.windows.net` : 'Azure (no account configured)';
}

/**
 * Retries by the SDK's policy: a few quick ones, so that a service that is down fails an operation in seconds (the
 * backup then pauses and probes) rather than holding it for minutes; one try of a block may take two minutes.
 */
const RETRY = { maxTries: 3, retryDelayInMs: 500, maxRetryDelayInMs: 4_000, tryTimeoutInMs: 120_000 };

/**
 * Bounds every answer the SDK would read whole (a listing's XML, an error, properties): the body is streamed to this
 * policy, read with ANSWER_LIMITS.page, and only then handed to the SDK's parser, so a container answering a listing
 * with 200 MiB fails it instead of filling the heap. A download asks for its body as a stream itself and is left
 * alone (its reader checks sizes and digests). The class name is what makes storage-blob place a custom policy after
 * its retry policy, below the deserializer, where the body is still unread (Pipeline.js, processDownlevelPipeline).
 */
class InjectorPolicyFactory implements RequestPolicyFactory {
  constructor(private readonly where: string) {}

  create(next: RequestPolicy): RequestPolicy {
    const where = this.where;
    return {
      async sendRequest(req: WebResource) {
        const asked = req.streamResponseStatusCodes;
        if (asked?.size) return next.sendRequest(req);
        req.streamResponseStatusCodes = new Set([Number.POSITIVE_INFINITY]);
        try {
          const res = await next.sendRequest(req);
          const body = res.readableStreamBody as (NodeJS.ReadableStream & AsyncIterable<Uint8Array> & { destroy?: () => void }) | undefined;
          if (body) {
            const declared = Number(res.headers.get('content-length'));
            res.bodyAsText = (await readLimited(body, ANSWER_LIMITS.page, `the answer of ${where}`, Number.isSafeInteger(declared) ? declared : undefined)).toString('utf8');
            res.readableStreamBody = undefined;
          }
          return res;
        } finally {
          // A retry comes through here again and is bounded again.
          req.streamResponseStatusCodes = asked;
        }
      },
    };
  }
}

export async function createContainerClient(container: string, s: AzureSettings, env: NodeJS.ProcessEnv = process.env): Promise<{ sdk: AzureSdk; client: ContainerClient }> {
  const sdk = await loadAzureSdk();
  const options = { retryOptions: RETRY };
  type Credential = Parameters<AzureSdk['newPipeline']>[0];
  const open = (url: string, credential: Credential) => {
    const base = sdk.newPipeline(credential, options);
    // The credential goes in as the pipeline's first factory, where storage-blob looks for it (a key or anonymous
    // credential is a factory itself; a token credential rides on a factory that passes requests through).
    const auth: RequestPolicyFactory =
      credential instanceof sdk.StorageSharedKeyCredential || credential instanceof sdk.AnonymousCredential || !credential
        ? (credential ?? new sdk.AnonymousCredential())
        : Object.assign({ create: (next: RequestPolicy) => next }, { credential });
    const pipeline = new sdk.Pipeline([auth, new InjectorPolicyFactory(describeAzureEndpoint(s, env))], base.options);
    return { sdk, client: new sdk.BlobServiceClient(url, pipeline).getContainerClient(container) };
  };
  const cs = env.AZURE_STORAGE_CONNECTION_STRING;
  if (cs) {
    try {
      const parsed = sdk.BlobServiceClient.fromConnectionString(cs);
      return open(parsed.url, parsed.credential);
    } catch (e) {
      // The SDK's message may quote the string; the operator only needs to know which variable is wrong.
      throw new BackupError('bad_config', `AZURE_STORAGE_CONNECTION_STRING is not a valid connection string (${(e as Error).name ?? 'Error'})`);
    }
  }
  const account = s.account ?? env.AZURE_STORAGE_ACCOUNT;
  if (!account && !s.endpoint)
    throw new BackupError(
      'bad_config',
      `no Azure storage account for azure://${container}: set AZURE_STORAGE_CONNECTION_STRING, or druid.backup.azure.account (AZURE_STORAGE_ACCOUNT) with AZURE_STORAGE_KEY or a managed identity`,
    );
  const endpoint = (s.endpoint ?? `https://${account}.blob.core.windows.net`).replace(/\/+$/, '');
  const key = env.AZURE_STORAGE_KEY;
  let credential;
  if (key) {
    if (!account) throw new BackupError('bad_config', 'AZURE_STORAGE_KEY is set but no account: set druid.backup.azure.account or AZURE_STORAGE_ACCOUNT');
    credential = new sdk.StorageSharedKeyCredential(account, key);
  } else {
    const identity = await import('@azure/identity');
    credential = new identity.DefaultAzureCredential();
  }
  return open(endpoint, credential);
}
