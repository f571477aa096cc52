/**
 * A restore whose download stalls mid-file (the fault proxy stops forwarding the target's bytes): each segment that
 * fails says it stalled, with its id, its target and the stall timeout, never the HTTP client's bare "canceled" (a
 * stall aborts the request, and the reader used to pass on what the aborted stream threw); nothing partial is left
 * in the cache; once the network heals the same restore completes byte for byte.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { SegmentsResponse } from '../../sidecar/api.js';
import { writeSampleCache } from '../../sidecar/sample/sampleCache.js';
import { FaultProxy } from '../helpers/faults.js';
import { startSidecar, tmpDir, waitFor } from '../helpers/sidecar.js';
import { cacheDirs } from './lib.js';

test('a restore that stalls mid-file: every failed segment says it stalled, nothing partial stays, and the restore completes once the network heals', async () => {
  const root = tmpDir('dbk-stalled-restore-');
  const sample = await writeSampleCache({
    dir: path.join(root, 'historical'),
    segments: 4,
    layout: 'nested',
    dataSources: ['wikipedia'],
    segmentSize: 2 * 1024 * 1024,
    smooshChunkSize: 2147483647,
    seed: 5,
  });
  const original = new Map([...cacheDirs(sample)].map(([id, d]) => [id, new Map(readdirSync(d).map((f) => [f, readFileSync(path.join(d, f))]))]));
  const target = await startSidecar(['--store', path.join(root, 'store')], { stateDir: path.join(root, 'target-state') });
  const source = await startSidecar(['--config', sample.propertiesFile, '--target', target.url, '--node-name', 'n1'], {
    token: target.token,
    stateDir: path.join(root, 'source-state'),
  });
  await waitFor('the sample backed up', async () => (await source.get<SegmentsResponse>('/data/v1/segments?state=backedUp&limit=1')).total === 4, 30_000);
  await source.stop();

  // The node's cache, lost: the same configuration pointing at an empty location.
  const location = path.join(root, 'lost');
  mkdirSync(location);
  const props = path.join(root, 'runtime.properties');
  writeFileSync(props, readFileSync(sample.propertiesFile, 'utf8').split(sample.location).join(location));
  const proxy = await FaultProxy.start(target.port);
  const env = { DRUID_BACKUP_STALL_TIMEOUT: 'PT3S', DRUID_BACKUP_AUTO_RESTORE: 'false', DRUID_BACKUP_ACTIVE: 'false' };
  const node = await startSidecar(['--config', props, '--node-name', 'n1'], { token: target.token, env, allowedTargets: [proxy.url], stateDir: path.join(root, 'node-state') });
  try {
    // Held in the middle of the second segment's big file.
    const held = proxy.holdAtDown(3 * 1024 * 1024);
    const r = await node.request<{ jobId: string }>('POST', '/data/v1/restore', { target: proxy.url, dataSource: 'wikipedia' });
    assert.equal(r.status, 202, r.text);
    await held;
    const job = await node.waitForJob(r.json.jobId, 60_000);
    assert.equal(job.state, 'failed');
    assert.ok(job.errors.length >= 1, JSON.stringify(job.errors));
    for (const e of job.errors) {
      assert.match(e.message, new RegExp(`^reading ${e.segmentId} from ${proxy.url.replace(/[.]/g, '\\.')}: no progress for 3 s; transfer abandoned$`), JSON.stringify(e));
    }
    const dirs = new Map([...cacheDirs(sample)].map(([id, d]) => [id, path.join(location, path.relative(sample.location, d))]));
    for (const e of job.errors) {
      assert.equal(existsSync(dirs.get(e.segmentId!)!), false, `${e.segmentId}: nothing installed`);
      assert.equal(existsSync(path.join(location, 'info_dir', e.segmentId!)), false, `${e.segmentId}: no info file`);
    }

    proxy.release();
    const again = await node.request<{ jobId: string }>('POST', '/data/v1/restore', { target: proxy.url, dataSource: 'wikipedia' });
    const done = await node.waitForJob(again.json.jobId, 60_000);
    assert.equal(done.state, 'succeeded', JSON.stringify(done.errors));
    for (const [id, files] of original) {
      for (const [f, bytes] of files) assert.ok(readFileSync(path.join(dirs.get(id)!, f)).equals(bytes), `${id}/${f}: restored byte-identical`);
    }
    assert.deepEqual(readdirSync(location).filter((n) => n.startsWith('.')), [], 'no staging directory left');
  } finally {
    await node.stop();
    await proxy.close();
    await target.stop();
    rmSync(root, { recursive: true, force: true });
  }
});
