/**
 * Bandwidth limits with real processes: a source sidecar with druid.backup.maxBytesPerSecond and
 * druid.backup.restore.maxBytesPerSecond and four workers, a target sidecar. A backup job of 32 MiB runs no faster
 * than the node's limit across its four workers, and really was held back (the time waited shows in the metrics);
 * the limits show in /data/v1/node, the job's progress and the metrics; a restore job with its own lower limit
 * runs no faster than that; a job asking for more than the node allows is refused with 400 before it starts.
 * Rates are asserted as upper bounds over seconds of transfer, so a loaded machine, which only slows things, cannot
 * fail them.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ApiError, Job, JobAccepted, NodeInfo } from '../../sidecar/api.js';
import type { SampleResult } from '../../sidecar/sample/sampleCache.js';
import { writeSampleCache } from '../../sidecar/sample/sampleCache.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { startSidecar, tmpDir } from '../helpers/sidecar.js';

const BACKUP_LIMIT = 8_000_000;
const RESTORE_LIMIT = 8_000_000;

/** Bytes per second of a finished job, over the time it ran. */
function rateOf(job: Job): number {
  const ms = Date.parse(job.finishedAt!) - Date.parse(job.startedAt!);
  return (job.progress.bytesDone / ms) * 1000;
}

describe('bandwidth limits', () => {
  let root: string;
  let sample: SampleResult;
  let target: SidecarProcess;
  let source: SidecarProcess;

  before(async () => {
    root = tmpDir('dbk-bandwidth-');
    sample = await writeSampleCache({
      dir: path.join(root, 'historical'),
      segments: 8,
      layout: 'nested',
      dataSources: ['wikipedia'],
      segmentSize: 4 * 1024 * 1024,
      smooshChunkSize: 2147483647,
      seed: 31,
    });
    target = await startSidecar(['--store', path.join(root, 'store')]);
    source = await startSidecar(['--config', sample.propertiesFile, '--node-name', 'limited'], {
      token: target.token,
      allowedTargets: [target.url],
      env: {
        DRUID_BACKUP_WORKERS: '4',
        DRUID_BACKUP_MAX_BYTES_PER_SECOND: String(BACKUP_LIMIT),
        DRUID_BACKUP_RESTORE_MAX_BYTES_PER_SECOND: String(RESTORE_LIMIT),
      },
    });
  });
  after(async () => {
    await source?.stop();
    await target?.stop();
  });

  test('the node shows its limits', async () => {
    const node = await source.get<NodeInfo>('/data/v1/node');
    assert.deepEqual(node.maxBytesPerSecond, { backup: BACKUP_LIMIT, restore: RESTORE_LIMIT });
    assert.equal(await source.metric('druid_backup_max_bytes_per_second', { direction: 'backup' }), BACKUP_LIMIT);
    assert.equal(await source.metric('druid_backup_max_bytes_per_second', { direction: 'restore' }), RESTORE_LIMIT);
    const off = await target.get<NodeInfo>('/data/v1/node');
    assert.deepEqual(off.maxBytesPerSecond, { backup: null, restore: null }, 'off by default');
  });

  test("a backup job's four workers together stay within the node's limit, and are held back by it", async () => {
    const r = await source.request<JobAccepted>('POST', '/data/v1/backup', { target: target.url });
    assert.equal(r.status, 202, r.text);
    const job = await source.waitForJob(r.json.jobId, 120_000);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
    assert.equal(job.progress.bytesDone, sample.bytes);
    assert.equal(job.progress.maxBytesPerSecond, BACKUP_LIMIT, "the job's progress shows the limit it ran under");
    const rate = rateOf(job);
    console.log(`backup: ${(rate / 1e6).toFixed(2)} MB/s through a ${BACKUP_LIMIT / 1e6} MB/s limit, 4 workers`);
    assert.ok(rate <= BACKUP_LIMIT * 1.1, `${rate.toFixed(0)} B/s through a ${BACKUP_LIMIT} B/s limit`);
    // Four workers unlimited would be done in a fraction of the time: the transfers waited on the limit for seconds.
    const waited = await source.metric('druid_backup_throttled_seconds_total', { direction: 'backup' });
    assert.ok(waited > 2, `transfers waited ${waited} s on the limit`);
  });

  test('a job asking for more than the node allows is refused with 400 before it starts', async () => {
    const jobsBefore = (await source.get<{ items: Job[] }>('/data/v1/jobs')).items.length;
    const b = await source.request<ApiError>('POST', '/data/v1/backup', { target: target.url, maxBytesPerSecond: BACKUP_LIMIT + 1 });
    assert.equal(b.status, 400, b.text);
    assert.match(b.json.error.message, /above this node's backup limit of 8000000 bytes per second \(druid\.backup\.maxBytesPerSecond\)/);
    const dest = path.join(root, 'refused');
    const r = await source.request<ApiError>('POST', '/data/v1/restore', { target: target.url, destination: dest, maxBytesPerSecond: 50_000_000 });
    assert.equal(r.status, 400, r.text);
    assert.match(r.json.error.message, /above this node's restore limit of 8000000 bytes per second \(druid\.backup\.restore\.maxBytesPerSecond\)/);
    const z = await source.request<ApiError>('POST', '/data/v1/backup', { target: target.url, maxBytesPerSecond: 0 });
    assert.equal(z.status, 400, z.text);
    assert.equal(z.json.error.code, 'bad_request');
    assert.equal((await source.get<{ items: Job[] }>('/data/v1/jobs')).items.length, jobsBefore, 'no job was started');
  });

  test('a restore job with its own lower limit runs no faster than it', async () => {
    const own = 3_000_000;
    const ids = sample.segmentIds.slice(0, 3);
    const r = await source.request<JobAccepted>('POST', '/data/v1/restore', {
      target: target.url,
      destination: path.join(root, 'restored'),
      segmentIds: ids,
      maxBytesPerSecond: own,
    });
    assert.equal(r.status, 202, r.text);
    const job = await source.waitForJob(r.json.jobId, 120_000);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
    assert.equal(job.progress.segmentsDone, 3);
    assert.equal(job.progress.maxBytesPerSecond, own);
    const rate = rateOf(job);
    console.log(`restore: ${(rate / 1e6).toFixed(2)} MB/s through its own ${own / 1e6} MB/s limit`);
    assert.ok(job.progress.bytesDone > 9e6, `${job.progress.bytesDone} bytes restored`);
    assert.ok(rate <= own * 1.1, `${rate.toFixed(0)} B/s through a ${own} B/s limit`);
    assert.ok((await source.metric('druid_backup_throttled_seconds_total', { direction: 'restore' })) > 1);
  });
});
