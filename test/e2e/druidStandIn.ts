/**
 * What the cluster-restore e2e tests share: segments of a `demo` data source whose loadSpec lies in a local deep
 * storage, a cluster sidecar's properties, and a Druid stand-in. The stand-in is NOT one of our parts: it is a small
 * HTTP server in place of Druid's Coordinator, answering the GETs (and the two read-only POSTs) the cluster sidecar
 * makes to snapshot, plan and check, as Druid 33 answers them.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { OutgoingSegment } from '../../sidecar/store/target.js';
import { descriptor, idOf } from '../helpers/snapshots.js';

export interface Used {
  day: number;
  version: string;
  /** Another loadSpec than the local deep storage's. */
  loadSpec?: { type: string; path: string };
}

/** The descriptor of a `demo` segment, its loadSpec an `index/` directory in the deep storage `deep`. */
export function describeSegment(deep: string, day: number, version: string, loadSpec?: Used['loadSpec']) {
  const d = descriptor(day, version);
  return { ...d, loadSpec: loadSpec ?? { type: 'local', path: path.join(deep, `demo/${day}/${version}/0/index/`) } };
}

export function segment(deep: string, day: number, version: string, loadSpec?: Used['loadSpec']): OutgoingSegment {
  const b = Buffer.from(`segment ${day} ${version}`);
  const v = Buffer.from([0, 0, 0, 9]);
  return {
    segmentId: idOf(day, version),
    descriptor: describeSegment(deep, day, version, loadSpec),
    node: 'h1',
    files: [
      { name: 'version.bin', size: 4, open: () => Readable.from([v]) },
      { name: '00000.smoosh', size: b.length, open: () => Readable.from([b]) },
    ],
  };
}

/** The runtime.properties of a cluster sidecar: local deep storage `deep`, the stand-in, the target. */
export function clusterProperties(deep: string, coordinator: string, target: string): string {
  return (
    [
      'druid.storage.type=local',
      `druid.storage.storageDirectory=${deep}`,
      `druid.backup.coordinator=${coordinator}`,
      `druid.backup.target=${target}`,
      'druid.backup.snapshotPeriod=PT0S',
    ].join('\n') + '\n'
  );
}

/**
 * The Druid stand-in: `used` is what the metadata store marks used (the test changes it); every segment is reported
 * loaded; a GET it does not know is a 404, as from a Druid without that resource; anything but a GET is a 405.
 */
export async function druidStandIn(deep: string): Promise<{ url: string; used: Used[]; asked: string[]; close(): void }> {
  const state = { used: [] as Used[], asked: [] as string[] };
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    state.asked.push(`${req.method} ${u.pathname}`);
    const json = (v: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(v));
    // The two POSTs a plan makes: the Overlord's task locks (none here) and the ids of the metadata store's used rows.
    if (req.method === 'POST' && u.pathname === '/druid/indexer/v1/lockedIntervals/v2') return json({});
    const usedIds = /^\/druid\/coordinator\/v1\/metadata\/datasources\/([^/]+)\/segments$/.exec(u.pathname);
    if (req.method === 'POST' && usedIds) return json(decodeURIComponent(usedIds[1]!) === 'demo' ? state.used.map((x) => idOf(x.day, x.version)) : []);
    if (req.method !== 'GET') return res.writeHead(405).end();
    if (u.pathname === '/status') return json({ version: '33.0.0' });
    // Druid's metadata as an untouched Druid 33 answers it: the default rule, no compaction configs, no worker config
    // (an empty body), no supervisors; lookups never initialised (404).
    if (u.pathname === '/druid/coordinator/v1/rules')
      return json({ _default: [{ type: 'loadForever', tieredReplicants: { _default_tier: 2 }, useDefaultTierForNull: true }] });
    if (u.pathname === '/druid/coordinator/v1/config/compaction')
      return json({ compactionConfigs: [], compactionTaskSlotRatio: 0.1, maxCompactionTaskSlots: 2147483647, useAutoScaleSlots: false, engine: 'native' });
    if (u.pathname === '/druid/indexer/v1/worker') return res.writeHead(200, { 'content-type': 'application/json' }).end();
    if (u.pathname === '/druid/indexer/v1/supervisor') return json([]);
    if (u.pathname === '/druid/coordinator/v1/metadata/segments') {
      const only = u.searchParams.getAll('datasources');
      return json(
        state.used
          .map((x) => ({ overshadowed: false, replicationFactor: 1, numRows: null, realtime: false, ...describeSegment(deep, x.day, x.version, x.loadSpec) }))
          .filter((x) => only.length === 0 || only.includes(x.dataSource)),
      );
    }
    if (/^\/druid\/coordinator\/v1\/metadata\/datasources\/[^/]+\/unusedSegments$/.test(u.pathname)) return json([]);
    if (/^\/druid\/coordinator\/v1\/datasources\/[^/]+\/segments\/[^/]+$/.test(u.pathname)) return json({ servers: ['historical:8083'] });
    if (u.pathname === '/druid/coordinator/v1/isLeader') return json({ leader: true });
    if (u.pathname === '/druid/coordinator/v1/config') return json({ killDataSourceWhitelist: [] });
    if (u.pathname === '/status/properties') return json({ 'druid.coordinator.kill.on': 'false' });
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, ...state, close: () => server.close() } as never;
}
