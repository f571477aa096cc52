/**
 * The metadata a snapshot carries when the sidecar is built without the cluster side's reader
 * (sidecar/cluster/metadata.ts, `captureClusterMetadata`): the Druid version from `/status`, and for every other
 * part an error saying it was not captured, so a snapshot never looks as if it held rules or specs it does not.
 */
import { messageOf } from '../errors.js';
import { authHeader } from './coordinator.js';
import type { ClusterMetadata } from './model.js';
import type { CaptureClusterMetadata } from './take.js';

const NOT_READ = 'not captured: this sidecar was built without the cluster metadata reader';

export const versionOnlyMetadata: CaptureClusterMetadata = async (o) => {
  const m: ClusterMetadata = {
    offsets: { captured: false, reason: NOT_READ },
    redacted: [],
    errors: {
      rules: NOT_READ,
      compaction: NOT_READ,
      coordinatorDynamicConfig: NOT_READ,
      overlordDynamicConfig: NOT_READ,
      supervisors: NOT_READ,
      lookups: NOT_READ,
    },
  };
  try {
    const res = await fetch(new URL('/status', o.coordinator), { headers: authHeader(o.auth), signal: o.signal, redirect: 'error' });
    const text = await res.text();
    if (text.length > 1024 * 1024) throw new Error('answer too large');
    const v = (JSON.parse(text) as { version?: unknown }).version;
    if (res.ok && typeof v === 'string' && v.length < 100) m.druidVersion = v;
    else m.errors!.druidVersion = `the Coordinator answered ${res.status}`;
  } catch (e) {
    m.errors!.druidVersion = messageOf(e).slice(0, 200);
  }
  return m;
};
