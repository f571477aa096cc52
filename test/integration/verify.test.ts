/**
 * Verify with real processes, and what a damaged backup does to a restore: one byte flipped in the store makes
 * `verify` (--store without any sidecar, --target through the target's API) name that segment and exit
 * non-zero; a restore of it fails with a clear error and leaves the cache exactly as it was, also when it would
 * have replaced a present copy.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Job, JobAccepted, StoreCatalogResponse } from '../../sidecar/api.js';
import type { SampleResult } from '../../sidecar/sample/sampleCache.js';
import { writeSampleCache } from '../../sidecar/sample/sampleCache.js';
import { segmentPath } from '../../sidecar/store/local/layout.js';
import { runCli } from '../helpers/cli.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { startSidecar, tmpDir, waitFor } from '../helpers/sidecar.js';
import { treeDigests, treePaths } from '../helpers/tree.js';

interface Report {
  segments: number;
  ok: number;
  bad: Array<{ segmentId: string; problems: Array<{ problem: string; file?: string; message: string }> }>;
}

describe('verify, and restoring from a damaged backup', () => {
  let sample: SampleResult;
  let store: string;
  let target: SidecarProcess;
  let source: SidecarProcess;
  let rotten: string;
  const storeDir = (id: string) => path.join(store, segmentPath('wikipedia', id));

  before(async () => {
    const root = tmpDir('dbk-verify-');
    store = path.join(root, 'store');
    sample = await writeSampleCache({
      dir: path.join(root, 'historical'),
      segments: 6,
      layout: 'nested',
      dataSources: ['wikipedia'],
      segmentSize: 32 * 1024,
      smooshChunkSize: 2147483647,
      seed: 61,
    });
    target = await startSidecar(['--store', store]);
    // Automatic restore off: these tests damage the cache on purpose and watch what a manual restore does.
    source = await startSidecar(['--config', sample.propertiesFile, '--target', target.url], {
      token: target.token,
      env: { DRUID_BACKUP_AUTO_RESTORE: 'false' },
    });
    await waitFor('every segment backed up', async () => (await target.get<StoreCatalogResponse>('/data/v1/store/segments')).total === 6, 30_000);
    rotten = sample.segmentIds[2]!;
  });
  after(async () => {
    await source?.stop();
    await target?.stop();
  });

  test('a sound store verifies clean, with exit status 0', async () => {
    const r = await runCli(['verify', '--store', store]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /6 segments \([\d.]+ KiB\) verified, 6 sound, 0 bad/);
  });

  test('one byte flipped in the store: verify names that segment and exits non-zero, by --store and by --target', async () => {
    const file = path.join(storeDir(rotten), '00000.smoosh');
    const b = readFileSync(file);
    b[123] = b[123]! ^ 0x80;
    writeFileSync(file, b);

    const local = await runCli(['verify', '--store', store, '--json']);
    assert.equal(local.code, 3, local.stderr);
    const report = JSON.parse(local.stdout) as Report;
    assert.equal(report.segments, 6);
    assert.equal(report.ok, 5);
    assert.deepEqual(
      report.bad.map((x) => [x.segmentId, x.problems.map((p) => `${p.problem} ${p.file}`)]),
      [[rotten, ['digest-mismatch 00000.smoosh']]],
    );
    const human = await runCli(['verify', '--store', store]);
    assert.equal(human.code, 3);
    assert.match(human.stdout, new RegExp(`${rotten}\\s+digest-mismatch\\s+00000\\.smoosh`));
    assert.match(human.stdout, /6 segments \([\d.]+ KiB\) verified, 5 sound, 1 bad/);

    const remote = await runCli(['verify', '--target', target.url, '--token', target.token]);
    assert.equal(remote.code, 3, remote.stderr);
    assert.match(remote.stdout, new RegExp(`${rotten}\\s+digest-mismatch`));

    const api = await target.request<JobAccepted>('POST', '/data/v1/store/verify', {});
    assert.equal(api.status, 202, api.text);
    const job = await target.waitForJob(api.json.jobId);
    assert.equal(job.type, 'verify');
    assert.equal(job.state, 'failed', 'a verify that finds damage ends failed');
    assert.deepEqual(
      job.errors.map((e) => e.segmentId),
      [rotten],
    );
    assert.equal((job.result as unknown as Report).bad[0]!.segmentId, rotten);
    assert.deepEqual([job.progress.segmentsDone, job.progress.segmentsFailed], [5, 1]);

    const filtered = await target.request<JobAccepted>('POST', '/data/v1/store/verify', { segmentIds: [sample.segmentIds[0]!] });
    const ok = await target.waitForJob(filtered.json.jobId);
    assert.equal(ok.state, 'succeeded');
    assert.equal(ok.progress.segmentsTotal, 1);
  });

  test('missing, extra and resized files are each reported by id', async () => {
    const [a, b, c] = [sample.segmentIds[3]!, sample.segmentIds[4]!, sample.segmentIds[5]!];
    const saved = readFileSync(path.join(storeDir(a), 'factory.json'));
    rmSync(path.join(storeDir(a), 'factory.json'));
    writeFileSync(path.join(storeDir(b), 'notes.txt'), 'left by someone');
    const meta = path.join(storeDir(c), 'meta.smoosh');
    const metaBytes = readFileSync(meta);
    writeFileSync(meta, metaBytes.subarray(0, 10));
    try {
      const r = await runCli(['verify', '--store', store, '--json']);
      assert.equal(r.code, 3);
      const problems = new Map((JSON.parse(r.stdout) as Report).bad.map((x) => [x.segmentId, x.problems.map((p) => p.problem)]));
      assert.deepEqual(problems.get(a), ['missing-file']);
      assert.deepEqual(problems.get(b), ['extra-file']);
      assert.deepEqual(problems.get(c), ['size-mismatch']);
      assert.equal(problems.size, 4);
    } finally {
      writeFileSync(path.join(storeDir(a), 'factory.json'), saved);
      rmSync(path.join(storeDir(b), 'notes.txt'));
      writeFileSync(meta, metaBytes);
    }
  });

  test('a restore from the damaged backup fails clearly and leaves the cache untouched', async () => {
    const scan = JSON.parse((await runCli(['scan', '--config', sample.propertiesFile, '--json'])).stdout) as { segments: Array<{ id: string; dir: string }> };
    const dir = scan.segments.find((s) => s.id === rotten)!.dir;
    // The node lost one file of the segment: the restore would replace the copy, were the backup sound.
    rmSync(path.join(dir, 'meta.smoosh'));
    const before = treeDigests(sample.location);
    const paths = treePaths(sample.location);

    const plan = await source.request<{ segments: Array<{ action: string }> }>('POST', '/data/v1/restore', {
      target: target.url,
      segmentIds: [rotten],
      dryRun: true,
    });
    assert.equal(plan.json.segments[0]!.action, 'overwrite');
    const res = await source.request<JobAccepted>('POST', '/data/v1/restore', { target: target.url, segmentIds: [rotten] });
    assert.equal(res.status, 202, res.text);
    const job = await source.waitForJob(res.json.jobId);
    assert.equal(job.state, 'failed');
    assert.equal(job.errors.length, 1);
    assert.equal(job.errors[0]!.segmentId, rotten);
    assert.match(
      job.errors[0]!.message,
      new RegExp(
        `^segment ${rotten}: .*00000\\.smoosh.* sha256 [0-9a-f]{64}.*; the backup's copy does not match its manifest \\(run verify on the target\\), nothing was installed$`,
      ),
    );
    assert.deepEqual(treeDigests(sample.location), before, 'every byte of the cache as it was');
    assert.deepEqual(treePaths(sample.location), paths, 'no staging, no new directory');
    assert.equal((await source.metric('druid_backup_segments_restored_total', { mode: 'manual', outcome: 'failed' })) >= 1, true);

    // Gone entirely (a drop), and restored from the CLI: the same clear failure, nothing written.
    rmSync(path.join(sample.infoDir, rotten));
    rmSync(dir, { recursive: true });
    const paths2 = treePaths(sample.location);
    const cli = await runCli(['restore', '--node', source.url, '--target', target.url, '--token', source.token, '--segment-id', rotten, '--wait']);
    assert.equal(cli.code, 1);
    assert.match(cli.stdout, new RegExp(`restore job restore-\\S+ failed: 1/1 segments \\(0 done, 0 skipped, 1 failed\\)`));
    assert.match(cli.stdout, new RegExp(`error: ${rotten}: segment ${rotten}: .*00000\\.smoosh.*does not match its manifest`));
    assert.deepEqual(treePaths(sample.location), paths2, 'no directory left where Druid would look');
    const jobs = await source.get<{ items: Job[] }>('/data/v1/jobs?type=restore');
    assert.ok(jobs.items.every((j) => j.state === 'failed'));
  });

  test('bad verify calls: a sidecar without a store, a directory that is not one, no or two sources', async () => {
    const r = await source.request<{ error: { code: string; message: string } }>('POST', '/data/v1/store/verify', {});
    assert.equal(r.status, 400);
    assert.match(r.json.error.message, /keeps no store/);
    const bad = await target.request<{ error: { message: string } }>('POST', '/data/v1/store/verify', { segmentIds: ['x'] });
    assert.equal(bad.status, 400);
    const cases: Array<[string[], number, RegExp]> = [
      [['verify', '--store', sample.location], 2, /is not a druid-backup store \(it has no segments\/ directory\)/],
      [['verify'], 2, /give exactly one of --target URL or --store DIR/],
      [['verify', '--store', store, '--target', target.url], 2, /give exactly one of/],
      [['verify', '--store', store, '--interval', 'soon'], 2, /interval "soon"/],
    ];
    for (const [args, code, re] of cases) {
      const c = await runCli(args);
      assert.equal(c.code, code, args.join(' '));
      assert.match(c.stderr, re, args.join(' '));
      assert.doesNotMatch(c.stderr, /\n\s+at /);
    }
  });
});
