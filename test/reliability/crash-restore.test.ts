/**
 * Crashes during a restore: the cache of a node is lost, a restore from the target starts, and the source is
 * killed (-9) at a seeded random byte of the download (the fault proxy holds the stream exactly there). After the
 * restart no staging directory is left in the cache location, every segment directory present is whole and
 * byte-identical, an info file is present only beside its whole segment, and the same restore run again completes
 * the cache byte for byte. RESTORE_TRIALS (default 6) and RELIABILITY_SEED choose the trials.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { SegmentsResponse } from '../../sidecar/api.js';
import type { SampleResult } from '../../sidecar/sample/sampleCache.js';
import { writeSampleCache } from '../../sidecar/sample/sampleCache.js';
import { FaultProxy } from '../helpers/faults.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { startSidecar, tmpDir, waitFor } from '../helpers/sidecar.js';
import { cacheDirs, dotEntries, seeded } from './lib.js';

const TRIALS = Number(process.env.RESTORE_TRIALS ?? 6);
const FIRST_SEED = Number(process.env.RELIABILITY_SEED ?? 1);
const env = { DRUID_BACKUP_RECONCILE_PERIOD: 'PT1H', DRUID_BACKUP_AUTO_RESTORE: 'false', DRUID_BACKUP_ACTIVE: 'false' };

describe(`crashes during a restore: kill -9 the source at random points of the download (${TRIALS} trials)`, () => {
  let sample: SampleResult;
  let original: Map<string, Map<string, Buffer>>;
  let target: SidecarProcess;
  const alive = new Set<SidecarProcess>();

  before(async () => {
    const root = tmpDir('dbk-crash-restore-');
    sample = await writeSampleCache({
      dir: path.join(root, 'historical'),
      segments: 8,
      layout: 'nested',
      dataSources: ['wikipedia'],
      segmentSize: 192 * 1024,
      smooshChunkSize: 64 * 1024,
      seed: 121,
    });
    original = new Map([...cacheDirs(sample)].map(([id, d]) => [id, new Map(readdirSync(d).map((f) => [f, readFileSync(path.join(d, f))]))]));
    target = await startSidecar(['--store', path.join(root, 'store')]);
    const source = await startSidecar(['--config', sample.propertiesFile, '--target', target.url, '--node-name', 'restored'], { token: target.token });
    await waitFor('the cache backed up', async () => (await source.get<SegmentsResponse>('/data/v1/segments?state=backedUp&limit=1')).total === 8, 30_000);
    await source.stop();
  });
  after(async () => {
    for (const p of alive) await p.kill9();
    await target?.stop();
  });

  for (let i = 0; i < TRIALS; i++) {
    const seed = FIRST_SEED + i;
    test(`seed ${seed}`, async () => {
      const rnd = seeded(seed * 7919);
      // The node's cache, lost: a copy of the sample's configuration pointing at an empty location.
      const dir = tmpDir(`dbk-restore-trial-${seed}-`);
      const location = path.join(dir, 'segment-cache');
      const props = path.join(dir, 'runtime.properties');
      mkdirSync(location);
      writeFileSync(props, readFileSync(sample.propertiesFile, 'utf8').split(sample.location).join(location));
      const dirs = new Map([...cacheDirs(sample)].map(([id, d]) => [id, path.join(location, path.relative(sample.location, d))]));
      const infoFile = (id: string) => path.join(location, 'info_dir', id);
      const proxy = await FaultProxy.start(target.port);
      const args = ['--config', props, '--node-name', 'restored'];
      const start = async () => {
        const p = await startSidecar(args, { token: target.token, env, allowedTargets: [proxy.url] });
        alive.add(p);
        return p;
      };
      let source = await start();
      try {
        const x = Math.floor(rnd() * sample.bytes * 1.1);
        const held = proxy.holdAtDown(x);
        const r = await source.request<{ jobId: string }>('POST', '/data/v1/restore', { target: proxy.url, dataSource: 'wikipedia' });
        assert.equal(r.status, 202, r.text);
        await Promise.race([held, source.waitForJob(r.json.jobId, 60_000)]);
        await source.kill9();
        alive.delete(source);
        proxy.release();
        source = await start();

        assert.deepEqual(dotEntries(location), [], 'no staging directory left after the restart');
        let whole = 0;
        for (const [id, files] of original) {
          const d = dirs.get(id)!;
          if (existsSync(d)) {
            assert.deepEqual(readdirSync(d).sort(), [...files.keys()].sort(), `${id}: a present segment has all its files`);
            for (const [f, bytes] of files) assert.ok(readFileSync(path.join(d, f)).equals(bytes), `${id}/${f}: byte-identical`);
            whole++;
          } else assert.ok(!existsSync(infoFile(id)), `${id}: no info file without its segment`);
        }

        const again = await source.request<{ jobId: string }>('POST', '/data/v1/restore', { target: proxy.url, dataSource: 'wikipedia' });
        assert.equal(again.status, 202, again.text);
        const job = await source.waitForJob(again.json.jobId, 60_000);
        assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
        for (const [id, files] of original) {
          for (const [f, bytes] of files) assert.ok(readFileSync(path.join(dirs.get(id)!, f)).equals(bytes), `${id}/${f}: restored byte-identical`);
          assert.ok(existsSync(infoFile(id)), `${id}: its info file written`);
        }
        assert.deepEqual(dotEntries(location), []);
        console.log(`restore crash seed ${seed}: killed at ${x} of ~${sample.bytes} bytes, ${whole} of 8 segments whole before the second restore`);
      } finally {
        await source.stop();
        alive.delete(source);
        await proxy.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
