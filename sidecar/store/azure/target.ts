/**
 * `azure://container/prefix`: an Azure Blob Storage container as a target. Everything but speaking Azure is the
 * object-store logic every bucket kind shares (object/target.ts): the same layout, manifest last and conditional, the
 * same catalog index and verify. store.ts speaks Azure; client.ts finds the credentials.
 */
import type { Logger } from 'pino';
import { ObjectSnapshots } from '../object/snapshots.js';
import { ObjectTarget } from '../object/target.js';
import type { AzureSettings } from './client.js';
import { AzureStore } from './store.js';
import { parseAzureUrl } from './url.js';

export interface AzureTargetOptions {
  log: Logger;
  settings?: AzureSettings;
}

export class AzureTarget extends ObjectTarget {
  declare readonly store: AzureStore;
  /** Snapshots kept in the container beside the segments, and what prune needs (object/snapshots.ts). */
  readonly snapshots: ObjectSnapshots = new ObjectSnapshots(this);

  static open(url: string, opts: AzureTargetOptions): AzureTarget {
    const location = parseAzureUrl(url);
    return new AzureTarget({ url: location.url, prefix: location.prefix, store: new AzureStore(location.container, opts.settings), log: opts.log });
  }
}
