/** The azure:// URL (through the one target URL parser), the settings, and Azure errors as one clear BackupError. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { azureSettingsFromEnv, checkAzureSettings, describeAzureEndpoint } from '../../../sidecar/store/azure/client.js';
import { azureError, isBlobNotFound, isConditionFailed } from '../../../sidecar/store/azure/errors.js';
import { parseTargetUrl } from '../../../sidecar/targets/url.js';

const refused = (raw: string, re: RegExp) =>
  assert.throws(
    () => parseTargetUrl(raw, 'target'),
    (e: Error & { code?: string }) => e.code === 'bad_request' && re.test(e.message),
    raw,
  );

test('azure:// URLs: the canonical spelling; container names and prefixes checked as written', () => {
  const t = parseTargetUrl('AZURE://druid-backups/prod/druid/', 'target');
  assert.deepEqual([t.url, t.scheme, t.host, t.port, t.path], ['azure://druid-backups/prod/druid', 'azure', 'druid-backups', 0, '/prod/druid']);
  assert.equal(parseTargetUrl('azure://abc', 'target').url, 'azure://abc');
  refused('azure://', /container name is missing/);
  refused('azure://ab', /3 to 63 characters/);
  refused('azure://Druid/x', /lower-case letters/);
  refused('azure://a--b/x', /single "-"/);
  refused('azure://-ab/x', /begin and end/);
  refused('azure://abc/a/../b', /"\.\." segments/);
  refused('azure://abc/a//b', /empty segment/);
  refused('azure://abc/a%2Fb', /may hold only/);
  refused('azure://abc?sv=2024-01-01&sig=x', /no query/);
  refused('azure://key@abc/x', /credentials do not belong/);
  refused('azure://abc:10000/x', /no port/);
  refused(`azure://abc/${'p/'.repeat(300)}`, /longer than/);
});

test('azure settings: bounds refused with the key named; the endpoint shown without a secret', () => {
  assert.deepEqual(checkAzureSettings({}), { blockSize: 8 * 1024 * 1024, concurrency: 4 });
  assert.throws(() => checkAzureSettings({ blockSize: 1000 }), /druid\.backup\.azure\.blockSize/);
  assert.throws(() => checkAzureSettings({ concurrency: 0 }), /druid\.backup\.azure\.concurrency/);
  assert.throws(() => checkAzureSettings({ account: 'Not-An-Account' }), /storage account name/);
  assert.deepEqual(azureSettingsFromEnv({ DRUID_BACKUP_AZURE_BLOCK_SIZE: '4MiB', DRUID_BACKUP_AZURE_CONCURRENCY: '2' }), {
    account: undefined,
    endpoint: undefined,
    blockSize: 4 * 1024 * 1024,
    concurrency: 2,
  });
  assert.throws(() => azureSettingsFromEnv({ DRUID_BACKUP_AZURE_ENDPOINT: 'http://user:pw@host' }), /without credentials/);
  const cs = 'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=c2VjcmV0;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1?sig=x;';
  const shown = describeAzureEndpoint({}, { AZURE_STORAGE_CONNECTION_STRING: cs });
  assert.equal(shown, 'http://127.0.0.1:10000/devstoreaccount1');
  assert.equal(describeAzureEndpoint({}, { AZURE_STORAGE_CONNECTION_STRING: 'AccountName=acct;AccountKey=c2VjcmV0' }), 'https://acct.blob.core.windows.net');
  assert.equal(describeAzureEndpoint({ account: 'acct' }, {}), 'https://acct.blob.core.windows.net');
});

test('Azure errors: a missing container, refused credentials, a service down, conditions', () => {
  const ctx = { action: 'listing manifests', container: 'c1', endpoint: 'http://127.0.0.1:1/dev' };
  const rest = (statusCode: number | undefined, code: string, message = '') => Object.assign(new Error(message), { name: 'RestError', statusCode, code });
  let e = azureError(rest(404, 'ContainerNotFound'), ctx);
  assert.deepEqual([e.code, e.status], ['target_error', 404]);
  assert.match(e.message, /ContainerNotFound/);
  e = azureError(rest(403, 'AuthenticationFailed', 'Server failed to authenticate the request.'), ctx);
  assert.deepEqual([e.code, e.status], ['target_error', 403]);
  assert.match(e.message, /refused the credentials \(AuthenticationFailed\)/);
  e = azureError(rest(403, 'AuthorizationPermissionMismatch'), ctx);
  assert.match(e.message, /denied access .*Storage Blob Data Contributor/);
  e = azureError(rest(undefined, 'ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:1'), ctx);
  assert.equal(e.code, 'target_unreachable');
  assert.match(e.message, /does not answer \(ECONNREFUSED\)/);
  e = azureError(rest(503, 'ServerBusy'), ctx);
  assert.equal(e.code, 'target_unreachable');
  e = azureError(Object.assign(new Error('no identity'), { name: 'CredentialUnavailableError' }), ctx);
  assert.match(e.message, /no Azure credentials/);
  assert.equal(isBlobNotFound(rest(404, 'BlobNotFound')), true);
  assert.equal(isBlobNotFound(rest(404, 'ContainerNotFound')), false);
  assert.equal(isConditionFailed(rest(412, 'ConditionNotMet')), true);
  assert.equal(isConditionFailed(rest(409, 'BlobAlreadyExists')), true);
  assert.equal(isConditionFailed(rest(409, 'LeaseIdMissing')), false);
});
