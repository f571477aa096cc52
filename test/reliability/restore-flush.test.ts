/**
 * How a restore makes new small segments durable (restore/install.ts, `commitGroup`), on real sidecars over loopback.
 * The `sync` on the node sidecar's PATH is the test's own: it logs each call and fails while a file says so, which is
 * what the real one cannot be made to do. A group of small segments is flushed by a few flushes of the cache's
 * filesystem however many segments it holds, and restored byte for byte; a failed flush makes none of the group
 * visible (each segment failed with why, no staging, no info file without its segment), and the same restore run
 * again completes the cache.
 */
import assert from 'node:assert/strict';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Job } from '../../sidecar/api.js';
import { READ_BATCH_PATH } from '../../sidecar/store/http/batch.js';
import type { SampleResult } from '../../sidecar/sample/sampleCache.js';
import { writeSampleCache } from '../../sidecar/sample/sampleCache.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { startSidecar, tmpDir } from '../helpers/sidecar.js';
import { emptyDir } from '../helpers/tree.js';
import type { CacheCopy } from './lib.js';
import { assertRestored, copyOfCache, dotEntries, loggingSync, runJob } from './lib.js';

const SEGMENTS = 12;

describe('a restore of small segments made durable by flushing the filesystem', () => {
  let root: string;
  let failFlag: string;
  let sample: SampleResult;
  /** What the cache held before it was emptied. */
  let copy: CacheCopy;
  let target: SidecarProcess;
  let node: SidecarProcess;

  let flushes: () => string[];
  let syncEnv: Record<string, string>;
  const restore = () => runJob(node, '/data/v1/restore', { target: target.url });
  /** The target's batch reads and single reads so far. */
  const reads = async () => {
    const requests = (method: string, route: string) => target.metric('druid_backup_http_requests_total', { method, route });
    return [await requests('POST', READ_BATCH_PATH), await requests('GET', '/data/v1/store/segments/:id')] as const;
  };
  /** Since `before`: the group's segments were read back in one exchange (store/http/batch.ts), none alone. */
  const assertOneBatchRead = async (before: readonly [number, number]) => {
    const now = await reads();
    assert.equal(now[0] - before[0], 1, 'one batch read');
    assert.equal(now[1] - before[1], 0, 'no single read');
  };
  before(async () => {
    root = tmpDir('dbk-restore-flush-');
    ({ env: syncEnv, failFlag, flushes } = loggingSync(root));
    sample = await writeSampleCache({
      dir: path.join(root, 'historical'),
      segments: SEGMENTS,
      layout: 'nested',
      dataSources: ['wikipedia', 'kttm'],
      segmentSize: 48 * 1024,
      smooshChunkSize: 2147483647,
      seed: 77,
    });
    copy = copyOfCache(sample);
    target = await startSidecar(['--store', path.join(root, 'store')]);
    // The target is also the node's configured one (a set of one), which a restore that names no target uses.
    node = await startSidecar(['--config', sample.propertiesFile, '--node-name', 'flushed', '--target', target.url], {
      token: target.token,
      allowedTargets: [target.url],
      env: { ...syncEnv, DRUID_BACKUP_AUTO_RESTORE: 'false', DRUID_BACKUP_ACTIVE: 'false' },
    });
    assert.equal((await runJob(node, '/data/v1/backup', { target: target.url })).state, 'succeeded');
  });
  after(async () => {
    await node?.stop();
    await target?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  test(`${SEGMENTS} small segments into an emptied cache: a few flushes of its filesystem for all of them, byte for byte`, async () => {
    emptyDir(sample.location);
    const before = flushes().length;
    const readsBefore = await reads();
    const job = await restore();
    assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
    assert.equal(job.progress.segmentsDone, SEGMENTS);
    assert.equal(job.progress.bytesDone, sample.bytes);
    assertRestored(sample, copy);
    await assertOneBatchRead(readsBefore);
    const made = flushes().slice(before);
    // The first restore probes each directory once (location, info_dir), then a group flushes the location before
    // its renames, both after them and info_dir after the descriptors' renames: 3 to 4 a group, however many
    // segments it holds. Flushed one by one, each segment would have taken seven fsyncs and no sync at all.
    assert.ok(made.length >= 3 && made.length <= 6, `flushes: ${made.join(' | ')}`);
    for (const line of made) assert.match(line, new RegExp(`^--file-system -- (${sample.location}|${sample.infoDir})$`));
    assert.deepEqual(dotEntries(sample.location), []);
  });

  test('a failed flush makes none of the group visible; the same restore run again completes the cache', async () => {
    emptyDir(sample.location);
    writeFileSync(failFlag, '');
    let job: Job;
    try {
      job = await restore();
    } finally {
      rmSync(failFlag);
    }
    assert.equal(job.state, 'failed');
    assert.equal(job.errors.length, SEGMENTS, JSON.stringify(job.errors));
    for (const e of job.errors) assert.match(e.message, /flushing the filesystem of .* failed: .*Input\/output error/);
    for (const [id, d] of copy.dirs) {
      assert.ok(!existsSync(d), `${id}: not visible`);
      assert.ok(!existsSync(path.join(sample.infoDir, id)), `${id}: no info file`);
    }
    assert.deepEqual(dotEntries(sample.location), [], 'no staging directory or temporary file left');

    const again = await restore();
    assert.equal(again.state, 'succeeded', JSON.stringify(again.errors));
    assertRestored(sample, copy);
  });

  test('a restore that names no target (the configured one, as automatic restore uses) reads the group in one exchange too', async () => {
    emptyDir(sample.location);
    const readsBefore = await reads();
    const job = await runJob(node, '/data/v1/restore', {});
    assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
    assert.equal(job.progress.bytesDone, sample.bytes);
    assertRestored(sample, copy);
    await assertOneBatchRead(readsBefore);
  });
});
