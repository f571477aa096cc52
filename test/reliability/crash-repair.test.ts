/**
 * Crash during a repair (issue 19): a node keeps two copies (copies=2) on targets A and B; A's copy of a segment
 * rots and A's own verify marks it damaged; the node loses that segment from its cache, restores it from B, and
 * starts replacing A's copy from its cache. The node is killed (-9) while the replacement is on its way to A (the
 * fault proxy holds the upload at a seeded byte). Nothing is lost: A still holds its manifest and no partial
 * file, B its good copy, the cache the restored segment; and the restarted node finishes the repair by itself, A's
 * copy then byte-identical to B's and verifying clean. REPAIR_TRIALS (default 3) and RELIABILITY_SEED choose the
 * trials.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { JobAccepted, StoreCatalogResponse } from '../../sidecar/api.js';
import type { SampleResult } from '../../sidecar/sample/sampleCache.js';
import { writeSampleCache } from '../../sidecar/sample/sampleCache.js';
import { FaultProxy } from '../helpers/faults.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { storedSegmentDir } from '../helpers/store.js';
import { newToken, startSidecar, tmpDir, waitFor } from '../helpers/sidecar.js';
import { treeDigests } from '../helpers/tree.js';
import { cacheDirs, seeded } from './lib.js';

const TRIALS = Number(process.env.REPAIR_TRIALS ?? 3);
const FIRST_SEED = Number(process.env.RELIABILITY_SEED ?? 1);
const SEGMENT_BYTES = 256 * 1024;

/** The files of a segment in a local store, by name. */
function storedFiles(storeDir: string, segmentId: string): Map<string, Buffer> {
  const dir = storedSegmentDir(storeDir, segmentId);
  return new Map(readdirSync(dir).map((n) => [n, readFileSync(path.join(dir, n))]));
}

describe(`crashes during a repair: kill -9 the node while it replaces a damaged copy (${TRIALS} trials)`, () => {
  const token = newToken();
  const root = tmpDir('dbk-crash-repair-');
  const storeA = path.join(root, 'a');
  const storeB = path.join(root, 'b');
  const stateDir = path.join(root, 'node-state');
  let sample: SampleResult;
  let original: Map<string, string>;
  let a: SidecarProcess;
  let b: SidecarProcess;
  let proxy: FaultProxy;
  let node: SidecarProcess | undefined;
  let args: string[];

  const start = () => startSidecar(args, { token, stateDir });

  before(async () => {
    sample = await writeSampleCache({
      dir: path.join(root, 'historical'),
      segments: TRIALS,
      layout: 'nested',
      dataSources: ['wikipedia'],
      segmentSize: SEGMENT_BYTES,
      smooshChunkSize: 2147483647,
      seed: 131,
    });
    original = treeDigests(sample.location);
    a = await startSidecar(['--store', storeA], { token });
    b = await startSidecar(['--store', storeB], { token });
    proxy = await FaultProxy.start(a.port);
    args = ['--config', sample.propertiesFile, '--targets', JSON.stringify([proxy.url, b.url]), '--copies', '2'];
    node = await start();
    const held = async (t: SidecarProcess) => (await t.get<StoreCatalogResponse>('/data/v1/store/segments?limit=1000')).total === TRIALS;
    await waitFor('every segment on A and B', async () => (await held(a)) && (await held(b)), 30_000);
  });
  after(async () => {
    await node?.stop();
    await a?.stop();
    await b?.stop();
    await proxy?.close();
  });

  for (let i = 0; i < TRIALS; i++) {
    const seed = FIRST_SEED + i;
    test(`seed ${seed}`, async () => {
      const rnd = seeded(seed * 104729);
      const id = sample.segmentIds[i]!;
      const dir = cacheDirs(sample).get(id)!;
      // A's copy rots; A's own verify marks it damaged.
      const aDir = storedSegmentDir(storeA, id);
      const file = readdirSync(aDir)
        .filter((n) => n !== 'manifest.json')
        .sort((x, y) => statSync(path.join(aDir, y)).size - statSync(path.join(aDir, x)).size)[0]!;
      const bytes = readFileSync(path.join(aDir, file));
      bytes[Math.floor(rnd() * bytes.length)]! ^= 0x10;
      writeFileSync(path.join(aDir, file), bytes);
      const v = await a.request<JobAccepted>('POST', '/data/v1/store/verify', { segmentIds: [id] });
      await a.waitForJob(v.json.jobId);

      // The segment is lost from the cache; the replacement of A's copy is held at a seeded byte of its upload.
      // Within the upload's bytes (its largest file alone is most of them).
      const offset = Math.floor(bytes.length * (0.1 + 0.8 * rnd()));
      const at = proxy.bytesUp + offset;
      const reached = proxy.holdAtUp(at);
      rmSync(dir, { recursive: true, force: true });
      await reached;
      await waitFor(
        'the node repairing',
        () => node!.logLines().some((l) => l.segmentId === id && l.msg === 'repairing damaged copies' && l.from === 'the cache'),
        10_000,
      );
      assert.ok(!node!.logLines().some((l) => l.segmentId === id && /replaced and verified clean/.test(String(l.msg))), 'killed before the repair ended');
      await node!.kill9();
      proxy.release();
      const headBefore = await a.request('HEAD', `/data/v1/store/segments/${encodeURIComponent(id)}`);
      assert.ok(headBefore.headers.get('x-druid-backup-damaged'), "A's copy is still marked damaged: the replacement never landed");

      // Nothing lost: the cache holds the segment restored from B, B its good copy, A its manifest and no partial file.
      const rel = path.relative(sample.location, dir);
      for (const [k, d] of original)
        if (k.startsWith(rel + path.sep)) assert.equal(treeDigests(dir).get(path.relative(dir, path.join(sample.location, k))), d, k);
      const good = storedFiles(storeB, id);
      assert.ok(storedFiles(storeA, id).has('manifest.json'));
      await waitFor("A's unfinished upload dropped", () => readdirSync(path.join(storeA, '.tmp')).length === 0, 10_000);

      // The next start finishes the repair by itself.
      const t0 = Date.now();
      node = await start();
      await waitFor("A's copy repaired", () => node!.logLines().some((l) => l.segmentId === id && /replaced and verified clean/.test(String(l.msg))), 20_000);
      const now = storedFiles(storeA, id);
      for (const [n, buf] of good) if (n !== 'manifest.json') assert.ok(now.get(n)?.equals(buf), `${n} byte-identical to B's`);
      const check = await a.request<JobAccepted>('POST', '/data/v1/store/verify', { segmentIds: [id] });
      const job = await a.waitForJob(check.json.jobId);
      assert.deepEqual(job.result?.bad, []);
      const head = await a.request('HEAD', `/data/v1/store/segments/${encodeURIComponent(id)}`);
      assert.equal(head.headers.get('x-druid-backup-damaged'), null, 'no longer marked damaged');
      console.log(`repair crash seed ${seed}: held ${offset} bytes into the upload; repaired ${Date.now() - t0} ms after the restart`);
    });
  }
});
