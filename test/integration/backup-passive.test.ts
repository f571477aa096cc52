/**
 * Passive backup with real processes: the documented call `POST {source}/data/v1/backup {"target": target}` as
 * existing clients make it, job progress and filters, a second run that sends nothing, cancelling, and the
 * `druid-backup backup` and `jobs` commands.
 */
import assert from 'node:assert/strict';
import { cpSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Job, JobAccepted, SegmentsResponse, StoreCatalogResponse } from '../../sidecar/api.js';
import type { SampleResult } from '../../sidecar/sample/sampleCache.js';
import { writeSampleCache } from '../../sidecar/sample/sampleCache.js';
import { runCli } from '../helpers/cli.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { startSidecar, tmpDir } from '../helpers/sidecar.js';

describe('passive backup', () => {
  let sample: SampleResult;
  let target: SidecarProcess;
  let source: SidecarProcess;

  before(async () => {
    const root = tmpDir('dbk-passive-');
    sample = await writeSampleCache({
      dir: path.join(root, 'historical'),
      segments: 30,
      layout: 'flat',
      dataSources: ['wikipedia', 'kttm'],
      segmentSize: 16 * 1024,
      smooshChunkSize: 2147483647,
      seed: 21,
    });
    target = await startSidecar(['--store', path.join(root, 'store')]);
    // No --target: this source backs up only when asked.
    // It may be asked to back up to any target (this test also names a stalled server of its own).
    source = await startSidecar(['--config', sample.propertiesFile, '--node-name', 'historical-p'], { token: target.token, allowedTargets: ['*'] });
  });
  after(async () => {
    await source?.stop();
    await target?.stop();
  });

  test('the documented call POST {source}/data/v1/backup {"target": target} works as written', async () => {
    // Exactly what existing clients send: a bare fetch, JSON body with the target only.
    const res = await fetch(`${source.url}/data/v1/backup`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${source.token}` },
      body: JSON.stringify({ target: target.url }),
    });
    assert.equal(res.status, 202);
    const { jobId } = (await res.json()) as JobAccepted;
    assert.match(jobId, /^backup-/);
    const job = await source.waitForJob(jobId);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
    assert.equal(job.type, 'backup');
    assert.equal(job.target, target.url);
    assert.deepEqual(job.request, { target: target.url });
    assert.equal(job.progress.segmentsTotal, 30);
    assert.equal(job.progress.segmentsDone, 30);
    assert.equal(job.progress.segmentsFailed, 0);
    assert.equal(job.progress.bytesDone, job.progress.bytesTotal);
    assert.equal(job.progress.bytesTotal, sample.bytes);
    const catalog = await target.get<StoreCatalogResponse>('/data/v1/store/segments?limit=1000');
    assert.deepEqual(catalog.items.map((s) => s.segmentId).sort(), [...sample.segmentIds].sort());
    const segs = await source.get<SegmentsResponse>('/data/v1/segments?state=backedUp&limit=1');
    assert.equal(segs.total, 30, 'the backup state of each segment is kept');
  });

  test('a second run sends nothing; filters select segments', async () => {
    const putsBefore = await target.metric('druid_backup_store_puts_total');
    const again = await source.request<JobAccepted>('POST', '/data/v1/backup', { target: target.url });
    const job = await source.waitForJob(again.json.jobId);
    assert.equal(job.state, 'succeeded');
    assert.equal(job.progress.segmentsSkipped, 30);
    assert.equal(job.progress.segmentsDone, 0);
    assert.equal(await target.metric('druid_backup_store_puts_total'), putsBefore, 'no upload for segments the target holds');

    const interval = '2015-09-12T00:00:00.000Z/2015-09-12T02:00:00.000Z';
    const ids = sample.segmentIds.filter((id) => id.startsWith('kttm_2015-09-12T00') || id.startsWith('kttm_2015-09-12T01'));
    const filtered = await source.request<JobAccepted>('POST', '/data/v1/backup', { target: target.url, dataSource: 'kttm', interval });
    const fj = await source.waitForJob(filtered.json.jobId);
    assert.equal(fj.progress.segmentsTotal, ids.length);
    const one = await source.request<JobAccepted>('POST', '/data/v1/backup', {
      target: target.url,
      segmentIds: [sample.segmentIds[3], 'kttm_2001-01-01T00:00:00.000Z_2001-01-02T00:00:00.000Z_v1'],
    });
    const oj = await source.waitForJob(one.json.jobId);
    assert.equal(oj.state, 'failed', 'a requested segment that is not in the cache fails the job');
    assert.equal(oj.progress.segmentsTotal, 1);
    assert.deepEqual(
      oj.errors.map((e) => e.segmentId),
      ['kttm_2001-01-01T00:00:00.000Z_2001-01-02T00:00:00.000Z_v1'],
    );
    assert.match(oj.errors[0]!.message, /not in this node's cache/);
  });

  test('DELETE /data/v1/jobs/{id} cancels a running job', async () => {
    // A target that answers its health and stats but never anything else: the job hangs on its first segment.
    const stalled = http.createServer((req, res) => {
      if (req.url?.startsWith('/data/v1/store/stats')) {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ segments: 0, bytes: 0, freeBytes: 1e12 }));
      }
    });
    await new Promise<void>((r) => stalled.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(stalled.address() as AddressInfo).port}`;
      const r = await source.request<JobAccepted>('POST', '/data/v1/backup', {
        target: url,
        dataSource: 'wikipedia',
        interval: '2015-09-12T00:00:00.000Z/2015-09-12T03:00:00.000Z',
      });
      assert.equal(r.status, 202, r.text);
      const running = await source.get<Job>(`/data/v1/jobs/${r.json.jobId}`);
      assert.ok(['queued', 'running'].includes(running.state));
      const del = await source.request<Job>('DELETE', `/data/v1/jobs/${r.json.jobId}`);
      assert.equal(del.status, 202);
      const job = await source.waitForJob(r.json.jobId, 10_000);
      assert.equal(job.state, 'cancelled');
    } finally {
      stalled.closeAllConnections();
      stalled.close();
    }
  });

  test('druid-backup backup --wait and druid-backup jobs', async () => {
    const ok = await runCli(['backup', '--node', source.url, '--target', target.url, '--token', source.token, '--data-source', 'wikipedia', '--wait']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /backup job backup-\S+ succeeded: 15\/15 segments \(0 done, 15 skipped, 0 failed\)/);
    assert.match(ok.stderr, /succeeded/, 'progress lines go to stderr when it is not a terminal');

    const noWait = await runCli(['backup', '--node', source.url, '--target', target.url, '--segment-id', sample.segmentIds[0]!], {
      env: { DRUID_BACKUP_TOKEN: source.token },
    });
    assert.equal(noWait.code, 0, noWait.stderr);
    const jobId = noWait.stdout.trim();
    assert.match(jobId, /^backup-/);

    const list = await runCli(['jobs', '--node', source.url, '--token', source.token]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /ID\s+TYPE\s+STATE/);
    assert.match(list.stdout, new RegExp(jobId));
    const one = await runCli(['jobs', '--node', source.url, '--token', source.token, jobId, '--json']);
    assert.equal(JSON.parse(one.stdout).id, jobId);

    const failures: Array<[string[], RegExp, number]> = [
      [['backup', '--node', source.url, '--target', 'http://127.0.0.1:1', '--token', source.token, '--wait'], /127\.0\.0\.1:1 is unreachable/, 1],
      [['backup', '--node', source.url, '--target', target.url, '--token', 'wrong-token-wrong-token', '--wait'], /refused the token/, 1],
      [
        ['backup', '--node', source.url, '--target', target.url, '--interval', 'soon', '--token', source.token],
        /interval "soon" must be two ISO-8601 instants/,
        2,
      ],
      [['backup', '--node', 'nota url', '--target', target.url, '--token', source.token], /not a URL/, 2],
      [['backup', '--node', source.url, '--target', target.url], /no token/, 2],
      // Without --target the node uses its configured targets (issue 10); this one has none.
      [['backup', '--node', source.url, '--token', source.token], /no target given and none configured/, 2],
      [['jobs', '--node', source.url, '--token', source.token, 'backup-nope-00000000'], /no job backup-nope-00000000/, 1],
    ];
    for (const [args, re, code] of failures) {
      const r = await runCli(args, { env: { DRUID_BACKUP_TOKEN: '' } });
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re, args.join(' '));
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
  });

  test('a segment Druid loads after the start is listed, without a backup and without a watcher', async () => {
    const listed = async () => (await source.get<SegmentsResponse>('/data/v1/segments?dataSource=late&limit=10')).items.map((s) => s.id);
    assert.deepEqual(await listed(), []);
    const late = await writeSampleCache({
      dir: tmpDir('dbk-passive-late-'),
      segments: 1,
      layout: 'flat',
      dataSources: ['late'],
      segmentSize: 4096,
      smooshChunkSize: 2147483647,
      seed: 22,
    });
    const id = late.segmentIds[0]!;
    // As Druid loads a segment: its directory in the location, then its descriptor in info_dir.
    cpSync(path.join(late.location, id), path.join(sample.location, id), { recursive: true });
    cpSync(path.join(late.infoDir, id), path.join(sample.infoDir, id));
    const deadline = Date.now() + 15_000;
    let ids = await listed();
    while (ids.length === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      ids = await listed();
    }
    assert.deepEqual(ids, [id]);
  });

  test('a run over segments backed up from here trusts only unchanged files: a touched file is read again, changed bytes are a conflict', async () => {
    // Every segment of the cache backed up first (over CATALOG_THRESHOLD of them, so the run reads the target's catalog).
    const first = await source.request<JobAccepted>('POST', '/data/v1/backup', { target: target.url });
    assert.equal((await source.waitForJob(first.json.jobId)).state, 'succeeded');
    const n = (await source.get<SegmentsResponse>('/data/v1/segments?limit=1')).total;
    assert.ok(n > 20);
    const [touched, rewritten] = [...sample.segmentIds].sort();
    // The same bytes with a new mtime, and new bytes of the same size with the mtime kept: only a fingerprint change tells.
    const t = new Date(Date.now() + 120_000);
    utimesSync(path.join(sample.location, touched!, 'factory.json'), t, t);
    const file = path.join(sample.location, rewritten!, 'factory.json');
    const old = statSync(file);
    const text = readFileSync(file, 'utf8');
    writeFileSync(file, text.replace(/.$/s, text.endsWith(' ') ? '\n' : ' '));
    utimesSync(file, old.atime, old.mtime);
    assert.equal(statSync(file).size, old.size);
    const hashed = await source.metric('druid_backup_segments_hashed_total');
    const identical = await source.metric('druid_backup_segments_backed_up_total', { outcome: 'identical' });
    const puts = await target.metric('druid_backup_store_puts_total');
    const r = await source.request<JobAccepted>('POST', '/data/v1/backup', { target: target.url });
    const job = await source.waitForJob(r.json.jobId);
    assert.equal(job.progress.segmentsTotal, n);
    assert.equal(job.progress.segmentsSkipped, n - 1);
    assert.equal(job.progress.segmentsFailed, 1);
    assert.deepEqual(
      job.errors.map((e) => e.segmentId),
      [rewritten],
    );
    assert.equal(job.progress.bytesDone, job.progress.bytesTotal);
    assert.equal(await source.metric('druid_backup_segments_hashed_total'), hashed + 2, 'the two changed segments are read, no other');
    assert.equal(await source.metric('druid_backup_segments_backed_up_total', { outcome: 'identical' }), identical + n - 1);
    assert.equal(await target.metric('druid_backup_store_puts_total'), puts + 1, 'only the changed bytes are sent (flagged there)');
  });
});
