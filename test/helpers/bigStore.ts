/**
 * Stores and Coordinators of 100,000 segments, for the prune bench (bench/prune.ts):
 * - `writeLocalSegments`: segments written straight in a local store's on-disk layout (the segment's files and its
 *   manifest.json made by the store's own `newManifest`, where `LocalStore.open` loads them): 100,000 in seconds,
 *   where `put`, with its fsyncs, takes about 16 ms each;
 * - `writeBucketSegments`: the same, straight in a VersityGW bucket's files (its posix backend keeps each object as a
 *   file at its key, with its ETag and content type as extended attributes): what 100,000 PUTs through the S3
 *   target leave, in about a minute instead of hours;
 * - `bigCoordinator`: a real HTTP server answering the used-segments call as Druid 33 does, element by element, so
 *   that neither side holds the whole answer.
 * Segment `i` of data source `big` covers day `i` from 2000-01-01: ids are distinct, and sort as `i` does.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import pino from 'pino';
import { parseSegmentId } from '../../sidecar/druid/segmentId.js';
import { MANIFEST_NAME, newManifest } from '../../sidecar/store/manifest.js';
import { segmentPath } from '../../sidecar/store/local/layout.js';
import { ObjectLayout } from '../../sidecar/store/object/layout.js';
import type { OutgoingSegment, Target } from '../../sidecar/store/target.js';
import { takeSnapshot } from '../../sidecar/snapshot/take.js';

export const BIG_DS = 'big';
const DAY = 86_400_000;
const T0 = Date.UTC(2000, 0, 1);

const day = (i: number) => new Date(T0 + i * DAY).toISOString();

export function bigDescriptor(i: number) {
  return {
    dataSource: BIG_DS,
    interval: `${day(i)}/${day(i + 1)}`,
    version: '2024-06-01T00:00:00.000Z',
    loadSpec: { type: 'local', path: `/var/druid/segments/${BIG_DS}/${day(i)}_${day(i + 1)}/2024-06-01T00:00:00.000Z/0/index/` },
    dimensions: 'channel,namespace,page,user,isRobot,isAnonymous,isNew,isMinor',
    metrics: 'added,deleted,delta',
    shardSpec: { type: 'numbered', partitionNum: 0, partitions: 1 },
    binaryVersion: 9,
    size: bigFile(i).length + 4,
    identifier: bigId(i),
  };
}

export function bigId(i: number): string {
  return `${BIG_DS}_${day(i)}_${day(i + 1)}_2024-06-01T00:00:00.000Z`;
}

function bigFile(i: number): Buffer {
  return Buffer.from(`segment ${i} of ${BIG_DS}\n`);
}

const VERSION_BIN = Buffer.from([0, 0, 0, 9]);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Segment `i`'s files in upload order (version.bin first), with their bytes and their manifest entries. */
function bigFiles(i: number): { bytes: Buffer; info: { name: string; size: number; sha256: string } }[] {
  const files: [string, Buffer][] = [
    ['version.bin', VERSION_BIN],
    ['00000.smoosh', bigFile(i)],
  ];
  return files.map(([name, bytes]) => ({ bytes, info: { name, size: bytes.length, sha256: sha(bytes) } }));
}

/** Segment `i` to `put` into any target. */
export function bigSegment(i: number, node = 'h1'): OutgoingSegment {
  return {
    segmentId: bigId(i),
    descriptor: bigDescriptor(i),
    node,
    files: bigFiles(i).map(({ bytes, info }) => ({ name: info.name, size: info.size, open: () => Readable.from([bytes]) })),
  };
}

/** Segments `from` to `to - 1`, written into the local store at `root` as a put would leave them. */
export function writeLocalSegments(root: string, from: number, to: number, node = 'h1'): void {
  const at = new Date().toISOString();
  for (let i = from; i < to; i++) {
    const id = bigId(i);
    const dir = path.join(root, segmentPath(BIG_DS, id));
    mkdirSync(dir, { recursive: true });
    const written = bigFiles(i);
    for (const f of written) writeFileSync(path.join(dir, f.info.name), f.bytes);
    // A local store's manifest lists the files by name.
    const files = written.map((f) => f.info).sort((a, b) => (a.name < b.name ? -1 : 1));
    writeFileSync(path.join(dir, MANIFEST_NAME), JSON.stringify(newManifest(id, parseSegmentId(id), bigDescriptor(i), files, node, at)));
  }
}

/**
 * Segments `from` to `to - 1` written into the VersityGW bucket whose directory is `bucketDir`, below `prefix` (empty
 * or ending in `/`), as the S3 target's `put` leaves them: the files under `segments/{id}/{node}/` in upload order,
 * then the manifest (`JSON.stringify(manifest, null, 2)`, as store/object/target.ts writes it), each object's ETag
 * (the MD5 of its bytes, quoted) and content type in the `user.etag` and `user.content-type` attributes VersityGW
 * reads them from (set by Python's `os.setxattr`, one process for the whole batch: Node has no call for them).
 */
export function writeBucketSegments(bucketDir: string, prefix: string, from: number, to: number, node = 'h1'): void {
  const layout = new ObjectLayout(prefix);
  const at = new Date().toISOString();
  const attrs: [string, string, string][] = [];
  const put = (key: string, body: Buffer, contentType: string) => {
    const file = path.join(bucketDir, key);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, body);
    attrs.push([file, `"${createHash('md5').update(body).digest('hex')}"`, contentType]);
  };
  for (let i = from; i < to; i++) {
    const id = bigId(i);
    const dir = layout.dataPrefix(id, node);
    const uploaded = bigFiles(i);
    for (const f of uploaded) put(`${dir}${f.info.name}`, f.bytes, 'application/octet-stream');
    const manifest = newManifest(
      id,
      parseSegmentId(id),
      bigDescriptor(i),
      uploaded.map((f) => f.info),
      node,
      at,
    );
    put(layout.manifestKey(id), Buffer.from(JSON.stringify(manifest, null, 2)), 'application/json');
  }
  execFileSync(
    'python3',
    [
      '-c',
      'import json,os,sys\nfor f,e,c in json.load(sys.stdin):\n  os.setxattr(f,"user.etag",e.encode())\n  os.setxattr(f,"user.content-type",c.encode())',
    ],
    { input: JSON.stringify(attrs), maxBuffer: 1 << 20 },
  );
}

/** A Coordinator whose used segments are `used()` (indexes), answered one element at a time. */
export async function bigCoordinator(used: () => Iterable<number>): Promise<{ url: string; close(): void }> {
  const server = http.createServer((req, res) => {
    if (!req.url?.startsWith('/druid/coordinator/v1/metadata/segments?includeOvershadowedStatus')) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    function* body(): Generator<string> {
      yield '[';
      let first = true;
      for (const i of used()) {
        yield `${first ? '' : ','}${JSON.stringify({ overshadowed: false, replicationFactor: 1, numRows: 100, realtime: false, ...bigDescriptor(i) })}`;
        first = false;
      }
      yield ']';
    }
    Readable.from(body()).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() };
}

/** 0, 1, ..., n - 1 */
export function* upTo(n: number, from = 0): Generator<number> {
  for (let i = from; i < n; i++) yield i;
}

/**
 * The snapshot naming segments `keptFrom` to `n - 1` (the last tenth, for a prune of 90 %), taken in this process
 * into `store` by a Coordinator answering those as used; throws unless it names them all and is complete.
 */
export async function snapshotLastTenth(n: number, keptFrom: number, store: Target): Promise<void> {
  const c = await bigCoordinator(() => upTo(n, keptFrom));
  try {
    const r = await takeSnapshot({
      coordinator: c.url,
      catalogs: [store],
      targets: [store],
      node: 'test',
      captureMetadata: async () => ({ offsets: { captured: false }, redacted: [] }),
      log: pino({ level: 'silent' }),
    });
    if (r.header.segments !== n - keptFrom || !r.header.complete) throw new Error(`the snapshot is not the last tenth: ${JSON.stringify(r.header).slice(0, 300)}`);
  } finally {
    c.close();
  }
}
