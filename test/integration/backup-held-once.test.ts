/**
 * "Already held?" is decided once per segment on the backup path through a set of targets (issue 20): whether the
 * targets hold a segment or not, each is asked one HEAD per segment (the set's own look-up, with no HEAD of the
 * sender's before it); where some hold it, the digests compared are the ones remembered from the first backup, not
 * read from the files again; where all hold it, no byte is sent.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Job, JobAccepted } from '../../sidecar/api.js';
import type { SampleResult } from '../../sidecar/sample/sampleCache.js';
import { writeSampleCache } from '../../sidecar/sample/sampleCache.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { newToken, startSidecar, tmpDir } from '../helpers/sidecar.js';

const SEGMENTS = 5;
const HEAD = { method: 'HEAD', route: '/data/v1/store/segments/:id' };

describe('a backup through a set of targets decides "held?" once per segment', () => {
  const token = newToken();
  let cache: SampleResult;
  const targets: SidecarProcess[] = [];
  let source: SidecarProcess;

  before(async () => {
    const root = tmpDir('dbk-held-once-');
    cache = await writeSampleCache({
      dir: path.join(root, 'historical'),
      segments: SEGMENTS,
      layout: 'nested',
      dataSources: ['wikipedia'],
      segmentSize: 32 * 1024,
      smooshChunkSize: 16 * 1024,
      seed: 20,
    });
    for (const n of ['a', 'b']) targets.push(await startSidecar(['--store', path.join(root, n)], { token }));
    source = await startSidecar(['--config', cache.propertiesFile, '--allowed-targets', JSON.stringify(targets.map((t) => t.url))], {
      token,
      env: { DRUID_BACKUP_AUTO_RESTORE: 'false', DRUID_BACKUP_ACTIVE: 'false' },
    });
  });
  after(async () => {
    await source?.stop();
    for (const t of targets) await t.stop();
  });

  async function backup(to: SidecarProcess[], copies: number): Promise<Job> {
    const r = await source.request<JobAccepted>('POST', '/data/v1/backup', { target: to.map((t) => t.url), copies });
    assert.equal(r.status, 202, r.text);
    const job = await source.waitForJob(r.json.jobId);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
    return job;
  }

  /** The HEADs each target answered during `fn`. */
  async function headsDuring(fn: () => Promise<unknown>): Promise<number[]> {
    const before = await Promise.all(targets.map((t) => t.metric('druid_backup_http_requests_total', HEAD)));
    await fn();
    const after = await Promise.all(targets.map((t) => t.metric('druid_backup_http_requests_total', HEAD)));
    return after.map((n, i) => n - before[i]!);
  }

  test('new segments, then held by one of two, then by both: one HEAD per segment and target each time', async () => {
    const [a, b] = targets as [SidecarProcess, SidecarProcess];
    // Held nowhere: the set's look-up is the only question before the upload.
    assert.deepEqual(await headsDuring(() => backup([a], 1)), [SEGMENTS, 0]);
    assert.equal(await a.metric('druid_backup_store_segments'), SEGMENTS);
    const hashed = await source.metric('druid_backup_segments_hashed_total');

    // Held by a only: one look-up on each; the digests that say a's copies count are the ones remembered, not read again.
    assert.deepEqual(await headsDuring(() => backup([a, b], 2)), [SEGMENTS, SEGMENTS]);
    assert.equal(await b.metric('druid_backup_store_segments'), SEGMENTS);
    assert.equal(await source.metric('druid_backup_segments_hashed_total'), hashed, 'no segment read again to hash it');

    // Held by both: one look-up on each, nothing sent.
    const sent = await source.metric('druid_backup_bytes_sent_total');
    assert.deepEqual(await headsDuring(() => backup([a, b], 2)), [SEGMENTS, SEGMENTS]);
    assert.equal(await source.metric('druid_backup_bytes_sent_total'), sent, 'nothing sent');
    assert.equal(await source.metric('druid_backup_segments_hashed_total'), hashed);
  });
});
