/**
 * The `s3` kind: a bucket this process talks to itself (`s3://bucket[/prefix]`), with the AWS SDK's chain of
 * endpoint, region and credentials, which its `druid.backup.s3.*` keys override. A bucket has no sidecar of its own:
 * the node that backs up to it answers for it.
 */
import type { KeySpec } from '../../config.js';
import type { TargetKind } from '../kind.js';
import { objectTargetUrl } from '../object/url.js';
import type { S3Settings } from './client.js';
import { s3SettingsFromEnv } from './client.js';
import { S3Target } from './target.js';
import { S3_URL } from './url.js';

/** Endpoint, region and credentials come from the AWS SDK's chain; these override it. */
const keys: KeySpec[] = [
  {
    key: 'druid.backup.s3.endpoint',
    type: 'url',
    doc: 'Endpoint of an S3-compatible server (http://minio:9000); default AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, else AWS S3.',
  },
  { key: 'druid.backup.s3.region', type: 'string', doc: 'Region of the bucket; default AWS_REGION or the profile, else us-east-1 when an endpoint is set.' },
  {
    key: 'druid.backup.s3.forcePathStyle',
    type: 'bool',
    doc: 'Address buckets as endpoint/bucket rather than bucket.endpoint; default true when an endpoint is set (most S3-compatible servers need it).',
  },
  {
    key: 'druid.backup.s3.partSize',
    type: 'size',
    default: '8MiB',
    min: 5 * 1024 ** 2,
    max: 5 * 1024 ** 3,
    doc: 'Part size of multipart uploads (5MiB to 5GiB); memory per upload is about (concurrency + 1) × partSize.',
  },
  { key: 'druid.backup.s3.concurrency', type: 'int', default: '4', min: 1, max: 64, doc: 'Parts of one file uploaded at once.' },
  {
    key: 'druid.backup.s3.multipartThreshold',
    type: 'size',
    default: '5GiB',
    min: 5 * 1024 ** 2,
    max: 5 * 1024 ** 3,
    doc: 'Files larger than this go up as multipart uploads (partSize, concurrency); others, every smoosh file by default, as one streamed PUT with a trailing sha256 that holds no part in memory.',
  },
];

export const s3Kind: TargetKind = {
  name: 's3',
  schemes: ['s3'],
  example: 's3://bucket/prefix',
  role: 'a bucket',
  answeredByNode: true,
  parse: (raw, _scheme, bad) => objectTargetUrl(raw, bad, S3_URL),
  credentialsFrom: S3_URL.credentialsFrom,
  keys,
  settings: (value): S3Settings => ({
    endpoint: value('druid.backup.s3.endpoint') as string | undefined,
    region: value('druid.backup.s3.region') as string | undefined,
    forcePathStyle: value('druid.backup.s3.forcePathStyle') as boolean | undefined,
    partSize: value('druid.backup.s3.partSize') as number,
    concurrency: value('druid.backup.s3.concurrency') as number,
    multipartThreshold: value('druid.backup.s3.multipartThreshold') as number,
  }),
  // Without the configuration (the CLI's tools), the settings come from the environment.
  open: (t, opts) => S3Target.open(t.url, { log: opts.log, settings: (opts.settings?.s3 as S3Settings | undefined) ?? s3SettingsFromEnv(), node: opts.node }),
};
