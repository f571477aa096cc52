/**
 * Restore with real processes: a sample cache backed up to a target sidecar, deleted, and restored through the
 * node's sidecar (CLI and API), in both cache layouts; the restored tree, segments and info_dir, is byte-identical
 * to the original. A dry run changes no file. A restore into local deep storage rebuilds `index/` or `index.zip`
 * at each loadSpec path with the same bytes. Bad input is refused with a clear 4xx and nothing is written.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { DataSegment, Job, JobAccepted, RestorePlan, StoreCatalogResponse } from '../../sidecar/api.js';
import type { SampleResult } from '../../sidecar/sample/sampleCache.js';
import { writeSampleCache } from '../../sidecar/sample/sampleCache.js';
import { runCli } from '../helpers/cli.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { startSidecar, tmpDir, waitFor } from '../helpers/sidecar.js';
import { treeDigests, treePaths } from '../helpers/tree.js';

const SEGMENTS = 12;
/** These tests damage and drop segments on purpose; the automatic restore (restore-auto.test.ts) would repair them first. */
const MANUAL_ONLY = { DRUID_BACKUP_AUTO_RESTORE: 'false' };

async function backedUp(target: SidecarProcess, n: number): Promise<void> {
  await waitFor(`${n} segments in the store`, async () => (await target.get<StoreCatalogResponse>('/data/v1/store/segments?limit=1000')).total === n, 30_000);
}

/** Deletes everything in a cache location the way a lost disk would, info_dir first so no file is seen lost while its info file remains. */
function wipe(location: string): void {
  rmSync(path.join(location, 'info_dir'), { recursive: true, force: true });
  for (const n of readdirSync(location)) rmSync(path.join(location, n), { recursive: true, force: true });
}

for (const layout of ['nested', 'flat'] as const) {
  describe(`restore into a ${layout} cache`, () => {
    let sample: SampleResult;
    let target: SidecarProcess;
    let source: SidecarProcess;
    let original: Map<string, string>;

    before(async () => {
      const root = tmpDir(`dbk-restore-${layout}-`);
      sample = await writeSampleCache({
        dir: path.join(root, 'historical'),
        segments: SEGMENTS,
        layout,
        dataSources: ['wikipedia', 'web_logs'],
        segmentSize: 48 * 1024,
        smooshChunkSize: 24 * 1024,
        seed: 41,
      });
      original = treeDigests(sample.location);
      target = await startSidecar(['--store', path.join(root, 'store')]);
      source = await startSidecar(['--config', sample.propertiesFile, '--target', target.url], { token: target.token, env: MANUAL_ONLY });
      await backedUp(target, SEGMENTS);
    });
    after(async () => {
      await source?.stop();
      await target?.stop();
    });

    test('back up, delete the cache, restore it with the CLI: segments and info_dir byte-identical', async () => {
      assert.ok(
        [...original.keys()].some((k) => k.endsWith('00001.smoosh')),
        'segments with several smoosh chunks',
      );
      wipe(sample.location);
      assert.equal(treeDigests(sample.location).size, 0);
      const r = await runCli(['restore', '--node', source.url, '--target', target.url, '--token', source.token, '--wait']);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, new RegExp(`restore job restore-\\S+ succeeded: ${SEGMENTS}/${SEGMENTS} segments \\(${SEGMENTS} done, 0 skipped, 0 failed\\)`));
      assert.deepEqual(treeDigests(sample.location), original, 'every file, segments and info_dir, as it was');
      assert.deepEqual(
        treePaths(sample.location).filter((p) => path.basename(p).startsWith('.')),
        [],
        'no staging left',
      );
    });

    test('a dry run answers with the plan and changes no file; what is there is skipped, what differs is overwritten', async () => {
      const [a, b] = sample.segmentIds as [string, string];
      // One segment gone (a Druid drop: info file first), one with a damaged file.
      const scan = JSON.parse((await runCli(['scan', '--config', sample.propertiesFile, '--json'])).stdout) as { segments: Array<{ id: string; dir: string }> };
      const dirOf = (id: string) => scan.segments.find((s) => s.id === id)!.dir;
      rmSync(path.join(sample.infoDir, a));
      rmSync(dirOf(a), { recursive: true });
      const damaged = path.join(dirOf(b), '00000.smoosh');
      const bytes = readFileSync(damaged);
      bytes[7] = bytes[7]! ^ 0x10;
      writeFileSync(damaged, bytes);
      const before = treeDigests(sample.location);
      const paths = treePaths(sample.location);

      const res = await source.request<RestorePlan>('POST', '/data/v1/restore', { target: target.url, dryRun: true });
      assert.equal(res.status, 200, res.text);
      const plan = res.json;
      assert.deepEqual(plan.totals, {
        segments: SEGMENTS,
        bytes: plan.segments.filter((s) => s.action !== 'skip').reduce((n, s) => n + s.size, 0),
        restore: 1,
        skip: SEGMENTS - 2,
        overwrite: 1,
      });
      const by = new Map(plan.segments.map((s) => [s.segmentId, s]));
      assert.equal(by.get(a)!.action, 'restore');
      assert.equal(by.get(a)!.path, dirOf(a), `restored in the ${layout} layout`);
      assert.equal(by.get(b)!.action, 'overwrite');
      assert.match(by.get(b)!.reason!, /00000\.smoosh differs/);
      assert.deepEqual(treeDigests(sample.location), before, 'a dry run changes no byte');
      assert.deepEqual(treePaths(sample.location), paths, 'and creates nothing');

      const cli = await runCli(['restore', '--node', source.url, '--target', target.url, '--token', source.token, '--dry-run']);
      assert.equal(cli.code, 0, cli.stderr);
      assert.match(
        cli.stdout,
        new RegExp(`plan: ${SEGMENTS} segments from ${target.url} into cache: 1 to restore, 1 to overwrite, ${SEGMENTS - 2} already there`),
      );
      assert.deepEqual(treeDigests(sample.location), before);

      const run = await source.request<JobAccepted>('POST', '/data/v1/restore', { target: target.url });
      assert.equal(run.status, 202, run.text);
      const job = await source.waitForJob(run.json.jobId);
      assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
      assert.equal(job.type, 'restore');
      assert.deepEqual([job.progress.segmentsDone, job.progress.segmentsSkipped, job.progress.segmentsFailed], [2, SEGMENTS - 2, 0]);
      assert.equal(job.progress.bytesDone, job.progress.bytesTotal);
      assert.deepEqual(treeDigests(sample.location), original, 'the dropped segment and its info file are back, the damaged file replaced');
    });
  });
}

describe('restore into local deep storage and into a directory', () => {
  let sample: SampleResult;
  let target: SidecarProcess;
  let source: SidecarProcess;
  let descriptors: Map<string, DataSegment>;

  before(async () => {
    const root = tmpDir('dbk-restore-deep-');
    sample = await writeSampleCache({
      dir: path.join(root, 'historical'),
      segments: 6,
      layout: 'nested',
      dataSources: ['kttm'],
      segmentSize: 40 * 1024,
      smooshChunkSize: 24 * 1024,
      seed: 43,
    });
    // Half the segments were pushed with druid.storage.zip=true: their loadSpec names index.zip.
    descriptors = new Map();
    sample.segmentIds.forEach((id, i) => {
      const file = path.join(sample.infoDir, id);
      const d = JSON.parse(readFileSync(file, 'utf8')) as DataSegment;
      if (i % 2 === 1) d.loadSpec = { ...d.loadSpec!, path: d.loadSpec!.path!.replace(/index\/$/, 'index.zip') };
      writeFileSync(file, JSON.stringify(d));
      descriptors.set(id, d);
    });
    target = await startSidecar(['--store', path.join(root, 'store')]);
    source = await startSidecar(['--config', sample.propertiesFile, '--target', target.url], { token: target.token, env: MANUAL_ONLY });
    await backedUp(target, 6);
  });
  after(async () => {
    await source?.stop();
    await target?.stop();
  });

  test('a lost deep storage is rebuilt: index/ or index.zip at each loadSpec path, with the same bytes', async () => {
    assert.deepEqual(readdirSync(sample.deepStorage), [], 'deep storage is empty: lost');
    const cache = treeDigests(sample.location);
    const res = await source.request<JobAccepted>('POST', '/data/v1/restore', { target: target.url, destination: 'deep-storage' });
    assert.equal(res.status, 202, res.text);
    const job = await source.waitForJob(res.json.jobId);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
    assert.equal(job.progress.segmentsDone, 6);
    const unzipped = tmpDir('dbk-unzipped-');
    const scan = JSON.parse((await runCli(['scan', '--config', sample.propertiesFile, '--json'])).stdout) as { segments: Array<{ id: string; dir: string }> };
    for (const [id, d] of descriptors) {
      const p = d.loadSpec!.path!;
      const expected = treeDigests(scan.segments.find((s) => s.id === id)!.dir);
      let got: Map<string, string>;
      if (p.endsWith('index.zip')) {
        const out = path.join(unzipped, id);
        // Python's zipfile, not the library that wrote it, reads it back.
        execFileSync('python3', ['-c', 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; z.extractall(sys.argv[2])', p, out]);
        got = treeDigests(out);
      } else {
        got = treeDigests(p);
      }
      assert.deepEqual(got, expected, `${id} at ${p}`);
    }
    assert.deepEqual(
      treePaths(sample.deepStorage).filter((p) => path.basename(p).startsWith('.')),
      [],
      'no staging left in deep storage',
    );
    assert.deepEqual(treeDigests(sample.location), cache, 'the cache was not touched');

    const again = await source.request<RestorePlan>('POST', '/data/v1/restore', { target: target.url, destination: 'deep-storage', dryRun: true });
    assert.equal(again.status, 200);
    assert.equal(again.json.totals.skip, 3, 'index/ directories with the right bytes are skipped');
    assert.equal(again.json.totals.overwrite, 3, 'an index.zip cannot be compared without unpacking: it is rewritten');
  });

  test('into a directory: laid out like a cache location, with info_dir, usable as one', async () => {
    const dest = path.join(tmpDir('dbk-restore-dir-'), 'restored');
    const res = await source.request<JobAccepted>('POST', '/data/v1/restore', { target: target.url, destination: dest, dataSource: 'kttm' });
    assert.equal(res.status, 202, res.text);
    const job = await source.waitForJob(res.json.jobId);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
    assert.deepEqual(treeDigests(dest), treeDigests(sample.location));
  });
});

describe('bad restore requests', () => {
  let sample: SampleResult;
  let target: SidecarProcess;
  let source: SidecarProcess;
  let tight: SidecarProcess;
  let emptyCache: string;

  before(async () => {
    const root = tmpDir('dbk-restore-bad-');
    sample = await writeSampleCache({
      dir: path.join(root, 'historical'),
      segments: 4,
      layout: 'flat',
      dataSources: ['wikipedia'],
      segmentSize: 16 * 1024,
      smooshChunkSize: 2147483647,
      seed: 47,
    });
    target = await startSidecar(['--store', path.join(root, 'store')]);
    // Allowed besides its own target: an address nobody listens on (the unreachable case below).
    source = await startSidecar(['--config', sample.propertiesFile, '--target', target.url], { token: target.token, allowedTargets: ['http://127.0.0.1:1'] });
    await backedUp(target, 4);
    // The same node with a cache location too small for one more segment.
    emptyCache = path.join(root, 'small-cache');
    mkdirSync(emptyCache);
    const props = path.join(root, 'tight.properties');
    writeFileSync(props, `druid.segmentCache.locations=[{"path":${JSON.stringify(emptyCache)},"maxSize":"20k"}]\ndruid.storage.type=hdfs\n`);
    tight = await startSidecar(['--config', props], { token: target.token, allowedTargets: [target.url] });
  });
  after(async () => {
    await tight?.stop();
    await source?.stop();
    await target?.stop();
  });

  test('each bad input gets a 4xx that says what is wrong, and nothing is written', async () => {
    const before = treePaths(sample.location);
    const id = sample.segmentIds[0]!;
    const cases: Array<[Record<string, unknown>, number, string, RegExp]> = [
      [
        { target: target.url, destination: 'restored/here' },
        400,
        'bad_request',
        /destination "restored\/here" is not "cache", "deep-storage" or an absolute path/,
      ],
      [{ target: target.url, destination: path.join(sample.location, 'x') }, 400, 'bad_request', /overlaps the cache location .* which Druid owns/],
      [{ target: target.url, destination: sample.propertiesFile }, 400, 'bad_request', /exists and is not a directory/],
      [{ target: target.url, destination: '/nonexistent-parent-dir/restored' }, 400, 'bad_request', /parent directory \/nonexistent-parent-dir does not exist/],
      [{ target: 'ftp://backup-host/x' }, 400, 'bad_request', /unsupported scheme ftp:/],
      [{ target: 'not a url' }, 400, 'bad_request', /is not a URL/],
      [{ target: target.url, segmentIds: ['wikipedia_yesterday'] }, 400, 'bad_segment_id', /is not a Druid segment id/],
      [{ target: target.url, segmentIds: [] }, 400, 'bad_request', /segmentIds/],
      [{ target: target.url, segmentIds: [id.replace('2024-01', '2023-01')] }, 404, 'not_found', /holds no backup of wikipedia_/],
      [{ target: target.url, interval: '2015-09-13/2015-09-12' }, 400, 'bad_interval', /the end is before the start/],
      [{ target: target.url, interval: 'last week' }, 400, 'bad_interval', /ISO-8601/],
      [{ target: target.url, dataSource: 'a/b' }, 400, 'bad_request', /contains "\/"/],
      [{ target: target.url, dryRun: 'maybe' }, 400, 'bad_request', /dryRun/],
      [{ target: target.url, overwrite: true }, 400, 'bad_request', /unknown field "overwrite"/],
      // Left out, "target" means the node's configured targets (issue 10); a list naming one twice is refused.
      [{ target: [target.url, target.url] }, 400, 'bad_request', /is listed twice/],
    ];
    for (const [body, status, code, re] of cases) {
      const r = await source.request<{ error: { code: string; message: string } }>('POST', '/data/v1/restore', body);
      assert.equal(r.status, status, `${JSON.stringify(body)}: ${r.text}`);
      assert.equal(r.json.error.code, code, JSON.stringify(body));
      assert.match(r.json.error.message, re, JSON.stringify(body));
      assert.doesNotMatch(r.text, /\n\s+at /, 'no stack trace');
    }
    assert.deepEqual(treePaths(sample.location), before, 'nothing written');
    const jobs = await source.get<{ items: Job[] }>('/data/v1/jobs?type=restore');
    assert.equal(jobs.items.length, 0, 'no job was started by a bad request');

    const unreachable = await source.request<{ error: { code: string; message: string } }>('POST', '/data/v1/restore', { target: 'http://127.0.0.1:1' });
    assert.equal(unreachable.json.error.code, 'target_unreachable');
    assert.match(unreachable.json.error.message, /127\.0\.0\.1:1 is unreachable/);
  });

  test('a cache location without room is refused before any byte, naming the location, free and needed bytes', async () => {
    const r = await tight.request<{ error: { code: string; message: string } }>('POST', '/data/v1/restore', { target: target.url });
    assert.equal(r.status, 507, r.text);
    assert.equal(r.json.error.code, 'no_space');
    assert.match(r.json.error.message, /small-cache has 19\.5 KiB \(20000 bytes\) free \(maxSize 19\.5 KiB with 0 B of segments/);
    assert.match(r.json.error.message, /the restore needs [\d.]+ KiB \(\d+ bytes\) for 4 segments/);
    assert.deepEqual(readdirSync(emptyCache), [], 'not a byte written');
    const deep = await tight.request<{ error: { message: string } }>('POST', '/data/v1/restore', { target: target.url, destination: 'deep-storage' });
    assert.equal(deep.status, 400);
    assert.match(deep.json.error.message, /deep storage is "hdfs" \(druid.storage.type\); only local deep storage can be rebuilt/);
    const cli = await runCli(['restore', '--node', tight.url, '--target', target.url, '--token', tight.token]);
    assert.equal(cli.code, 1);
    assert.match(cli.stderr, /^druid-backup: .*not enough room in the cache/);
  });
});

describe('cancelling a restore', () => {
  test('stops between verified segments: no staging left, each segment whole or absent, with its info file only when whole', async () => {
    const root = tmpDir('dbk-restore-cancel-');
    // Large segments, one at a time, so the cancel lands while bytes flow.
    const sample = await writeSampleCache({
      dir: path.join(root, 'historical'),
      segments: 3,
      layout: 'nested',
      dataSources: ['wikipedia'],
      segmentSize: 24 * 1024 * 1024,
      smooshChunkSize: 2147483647,
      seed: 49,
    });
    const original = treeDigests(sample.location);
    const target = await startSidecar(['--store', path.join(root, 'store')]);
    let source: SidecarProcess | undefined;
    try {
      source = await startSidecar(['--config', sample.propertiesFile, '--target', target.url], {
        token: target.token,
        env: { ...MANUAL_ONLY, DRUID_BACKUP_WORKERS: '1' },
      });
      await backedUp(target, 3);
      wipe(sample.location);
      const res = await source.request<JobAccepted>('POST', '/data/v1/restore', { target: target.url });
      assert.equal(res.status, 202, res.text);
      const jobId = res.json.jobId;
      await waitFor('bytes to flow', async () => (await source!.get<Job>(`/data/v1/jobs/${jobId}`)).progress.bytesDone > 0, 30_000, 20);
      const cancel = await source.request<Job>('DELETE', `/data/v1/jobs/${jobId}`);
      assert.equal(cancel.status, 202);
      const job = await source.waitForJob(jobId);
      assert.equal(job.state, 'cancelled');
      assert.ok(job.progress.segmentsDone < 3, 'stopped before the end');
      const now = treeDigests(sample.location);
      assert.deepEqual(
        treePaths(sample.location).filter((p) => path.basename(p).startsWith('.')),
        [],
        'no staging left',
      );
      const restoredIds = sample.segmentIds.filter((id) => now.has(path.join('info_dir', id)));
      assert.equal(restoredIds.length, job.progress.segmentsDone);
      for (const [file, digest] of now) assert.equal(digest, original.get(file), `${file} is whole and as it was`);
      const segmentFiles = [...now.keys()].filter((f) => !f.startsWith('info_dir'));
      assert.equal(segmentFiles.length, restoredIds.length * 4, 'only the restored segments have files (4 each)');
    } finally {
      await source?.stop();
      await target.stop();
    }
  });
});

describe('leftovers of a restore cut off by a crash', () => {
  test('are cleaned at start: staging removed, an old copy whose swap stopped halfway put back', async () => {
    const root = tmpDir('dbk-restore-crash-');
    const sample = await writeSampleCache({
      dir: path.join(root, 'historical'),
      segments: 3,
      layout: 'flat',
      dataSources: ['wikipedia'],
      segmentSize: 8 * 1024,
      smooshChunkSize: 2147483647,
      seed: 59,
    });
    const original = treeDigests(sample.location);
    // As a kill -9 between moving a present copy aside and renaming the new one in would leave it.
    const id = sample.segmentIds[1]!;
    const old = path.join(sample.location, '.druid-backup-old-0123456789abcdef');
    renameSync(path.join(sample.location, id), old);
    writeFileSync(`${old}.json`, JSON.stringify({ path: path.join(sample.location, id) }));
    mkdirSync(path.join(sample.location, '.druid-backup-restore-fedcba9876543210'));
    writeFileSync(path.join(sample.location, '.druid-backup-restore-fedcba9876543210', '00000.smoosh'), 'half');
    writeFileSync(path.join(sample.infoDir, '.druid-backup-tmp-0000000000000000'), '{');
    const node = await startSidecar(['--config', sample.propertiesFile]);
    try {
      assert.deepEqual(treeDigests(sample.location), original, 'the segment is back, nothing else is there');
      assert.ok(node.logLines().some((l) => l.msg === 'a restore was interrupted while swapping; the previous copies were put back'));
    } finally {
      await node.stop();
    }
  });
});
