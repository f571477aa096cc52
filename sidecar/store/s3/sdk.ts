/**
 * The AWS SDK, loaded the first time a bucket is used: a sidecar that never talks to one (most back up to a target
 * sidecar) does not carry its code, about 15 MB of its RSS.
 */
import type * as ClientS3 from '@aws-sdk/client-s3';
import type * as LibStorage from '@aws-sdk/lib-storage';

export type Sdk = typeof ClientS3 & Pick<typeof LibStorage, 'Upload'>;

let loading: Promise<Sdk> | undefined;

export function loadSdk(): Promise<Sdk> {
  loading ??= Promise.all([import('@aws-sdk/client-s3'), import('@aws-sdk/lib-storage')]).then(([s3, storage]) => ({ ...s3, Upload: storage.Upload }));
  return loading;
}

/** A target's client with the SDK it came from (commands are built from the same module). */
export interface S3Connection {
  sdk: Sdk;
  client: ClientS3.S3Client;
}
