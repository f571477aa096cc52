/**
 * Disk faults. The store on a small filesystem the test mounts (a tmpfs, when it runs as root): uploads that would
 * eat the space the store keeps free are refused with a clear no_space; the disk filled by someone else in the middle
 * of an upload (a real ENOSPC) fails that upload cleanly; no partial segment, nothing already stored harmed, and
 * the backlog drains once there is room. And a restore into a cache location without room (Druid's own maxSize)
 * is refused before any byte is written, then works once the location has room.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import type { SegmentsResponse } from '../../sidecar/api.js';
import { writeSampleCache } from '../../sidecar/sample/sampleCache.js';
import type { SampleResult } from '../../sidecar/sample/sampleCache.js';
import { FaultProxy } from '../helpers/faults.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { startSidecar, tmpDir, waitFor } from '../helpers/sidecar.js';
import { assertStoredOnce, cacheDirs, checkStore, logged, treeDiff, treeSnapshot } from './lib.js';

const MiB = 1024 * 1024;

/** Mounts a tmpfs of `mib` MiB at a new directory, or undefined when this process may not mount. */
function mountTmpfs(mib: number): string | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const dir = tmpDir('dbk-smallfs-');
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${mib}m`, 'tmpfs', dir]);
  return r.status === 0 ? dir : undefined;
}

function resize(dir: string, mib: number): void {
  const r = spawnSync('mount', ['-o', `remount,size=${mib}m`, dir], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

/** Fills the filesystem of `dir` until it refuses another byte. */
function fill(file: string): number {
  const fd = openSync(file, 'w');
  const block = Buffer.alloc(MiB);
  let n = 0;
  try {
    for (;;) n += writeSync(fd, block);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  } finally {
    closeSync(fd);
  }
  return n;
}

const mounts: string[] = [];
const procs: SidecarProcess[] = [];
const figures: Record<string, unknown> = {};
after(async () => {
  for (const p of procs) await p.stop();
  for (const m of mounts) spawnSync('umount', ['-l', m]);
  console.log(`disk faults: ${JSON.stringify(figures)}`);
});

async function started(args: string[], opts: Parameters<typeof startSidecar>[1] = {}): Promise<SidecarProcess> {
  const p = await startSidecar(args, opts);
  procs.push(p);
  return p;
}

const env = { DRUID_BACKUP_RECONCILE_PERIOD: 'PT1H', DRUID_BACKUP_RETRY_MAX_DELAY: 'PT1S', DRUID_BACKUP_AUTO_RESTORE: 'false' };

describe('the store on a small filesystem', () => {
  const canMount = mountTmpfs(1);
  if (canMount) spawnSync('umount', [canMount]);

  test(
    'uploads that do not fit are refused with no_space; nothing partial; the backlog drains once there is room',
    { skip: !canMount && 'needs root to mount a small tmpfs' },
    async () => {
      // Room for about six of the ten 1 MiB segments beyond the 64 MiB the store keeps free.
      const mnt = mountTmpfs(64 + 6)!;
      mounts.push(mnt);
      const storeDir = path.join(mnt, 'store');
      const sample = await writeSampleCache({
        dir: path.join(tmpDir('dbk-disk-'), 'historical'),
        segments: 10,
        layout: 'nested',
        dataSources: ['wikipedia'],
        segmentSize: 900 * 1024,
        smooshChunkSize: 512 * 1024,
        seed: 101,
      });
      const target = await started(['--store', storeDir], { env });
      const source = await started(['--config', sample.propertiesFile, '--target', target.url, '--node-name', 'disk-a'], { token: target.token, env });
      const settled = async () => {
        const ok = (await source.get<SegmentsResponse>('/data/v1/segments?state=backedUp&limit=1')).total;
        const failed = await source.get<SegmentsResponse>('/data/v1/segments?state=failed&limit=100');
        return ok + failed.total === sample.segmentIds.length && failed.total > 0 ? { ok, failed } : undefined;
      };
      const { ok, failed } = await waitFor('the store to fill up and refuse the rest', settled, 60_000, 200);
      assert.ok(ok > 0, 'some segments fit');
      // The source names the target's answer (status and code); the target's log says why.
      for (const s of failed.items) assert.match(s.backup.error ?? '', /answered 507 no_space \(no room there/, `a clear error: ${s.backup.error}`);
      assert.match(JSON.stringify(logged(target.stdout, 'request failed')), /free; a segment of .* would leave less than/);
      const check = checkStore(storeDir);
      assert.deepEqual(check.problems, []);
      assert.deepEqual(check.tmp, []);
      assert.equal(check.segments.size, ok);
      figures.smallFsStoredBeforeRoom = ok;
      figures.smallFsError = failed.items[0]!.backup.error;

      resize(mnt, 64 + 32);
      await waitFor(
        'the backlog to drain once there is room',
        async () => (await source.get<SegmentsResponse>('/data/v1/segments?state=backedUp&limit=1')).total === 10,
        60_000,
        200,
      );
      assertStoredOnce(storeDir, sample, 'disk-a', [target.stdout]);
    },
  );

  test(
    'the disk filled by someone else mid-upload (ENOSPC): that upload fails cleanly, nothing stored is harmed',
    { skip: !canMount && 'needs root to mount a small tmpfs' },
    async () => {
      const mnt = mountTmpfs(64 + 32)!;
      mounts.push(mnt);
      const storeDir = path.join(mnt, 'store');
      const sample = await writeSampleCache({
        dir: path.join(tmpDir('dbk-disk-'), 'historical'),
        segments: 6,
        layout: 'nested',
        dataSources: ['kttm'],
        segmentSize: 2 * MiB,
        smooshChunkSize: MiB,
        seed: 102,
      });
      const target = await started(['--store', storeDir], { env });
      const proxy = await FaultProxy.start(target.port);
      const source = await started(['--config', sample.propertiesFile, '--target', proxy.url, '--node-name', 'disk-b'], {
        token: target.token,
        env: { ...env, DRUID_BACKUP_WORKERS: '1' },
      });
      // Two segments go through, then the third upload is held halfway while the disk fills up.
      await proxy.holdAtUp(Math.floor(sample.bytes / 6) * 2 + MiB + 8192);
      await waitFor('the uploads before the held one to be committed', () => readdirSync(path.join(storeDir, '.tmp')).length === 1, 10_000, 20);
      const before = treeSnapshot(path.join(storeDir, 'segments'));
      const stored = checkStore(storeDir).segments.size;
      const filler = path.join(mnt, 'filler');
      figures.fillerBytes = fill(filler);
      proxy.release();
      await waitFor('the held upload to fail for want of room', () => logged(source.stdout, 'backup failed; will retry').length > 0, 30_000, 100);
      const err = String(logged(source.stdout, 'backup failed; will retry')[0]!.err);
      figures.enospcError = err;
      // The source says what the target answered (its status and code); the target's own log says why.
      assert.match(err, /answered 507 no_space \(no room there/, `a clear no_space, not an internal error: ${err}`);
      assert.match(JSON.stringify(logged(target.stdout, 'request failed')), /ran out of room while receiving .*ENOSPC.*nothing was stored/);
      await waitFor('the temporary area to be emptied', () => readdirSync(path.join(storeDir, '.tmp')).length === 0, 10_000, 50);
      const mid = checkStore(storeDir);
      assert.deepEqual(mid.problems, [], 'no partial or damaged segment');
      assert.equal(mid.segments.size, stored, 'nothing was committed while the disk was full');
      assert.deepEqual(treeDiff(before, treeSnapshot(path.join(storeDir, 'segments'))), [], 'what was stored is untouched');

      rmSync(filler);
      await waitFor(
        'the backlog to drain once the filler is gone',
        async () => (await source.get<SegmentsResponse>('/data/v1/segments?state=backedUp&limit=1')).total === 6,
        60_000,
        200,
      );
      assertStoredOnce(storeDir, sample, 'disk-b', [target.stdout]);
      await proxy.close();
    },
  );
});

describe("the store's own limit (druid.backup.storeQuota)", () => {
  test('uploads arriving at once never take the store past its quota; the backlog drains once the quota grows', async () => {
    const sample = await writeSampleCache({
      dir: path.join(tmpDir('dbk-quota-'), 'historical'),
      segments: 12,
      layout: 'nested',
      dataSources: ['wikipedia', 'kttm'],
      segmentSize: 512 * 1024,
      smooshChunkSize: 256 * 1024,
      seed: 104,
    });
    const quota = Math.floor(sample.bytes / 3);
    const storeDir = path.join(tmpDir('dbk-quota-store-'), 'store');
    let target = await started(['--store', storeDir, '--store-quota', String(quota)], { env });
    // Eight transfers at once: each upload must count the ones still arriving.
    const source = await started(['--config', sample.propertiesFile, '--target', target.url, '--node-name', 'quota'], {
      token: target.token,
      env: { ...env, DRUID_BACKUP_WORKERS: '8' },
    });
    const failed = await waitFor(
      'the store to reach its quota and refuse the rest',
      async () => {
        const ok = (await source.get<SegmentsResponse>('/data/v1/segments?state=backedUp&limit=1')).total;
        const f = await source.get<SegmentsResponse>('/data/v1/segments?state=failed&limit=100');
        return ok + f.total === 12 && f.total > 0 ? f : undefined;
      },
      60_000,
      100,
    );
    for (const s of failed.items) assert.match(s.backup.error ?? '', /answered 507 no_space .*storeQuota/, `a clear error: ${s.backup.error}`);
    assert.match(JSON.stringify(logged(target.stdout, 'request failed')), /quota/);
    const check = checkStore(storeDir);
    assert.deepEqual(check.problems, []);
    const held = [...check.segments.values()].reduce((n, m) => n + m.size, 0);
    figures.quota = { quota, held, stored: check.segments.size, refused: failed.total };
    assert.ok(held <= quota, `the store holds ${held} bytes, more than its quota of ${quota}`);

    const first = target;
    await target.stop();
    target = await started(['--store', storeDir, '--store-quota', String(sample.bytes * 2)], {
      env,
      token: target.token,
      port: target.port,
      stateDir: target.stateDir,
    });
    await waitFor(
      'the backlog to drain once the quota grew',
      async () => (await source.get<SegmentsResponse>('/data/v1/segments?state=backedUp&limit=1')).total === 12,
      60_000,
      200,
    );
    assertStoredOnce(storeDir, sample, 'quota', [first.stdout, target.stdout]);
  });
});

describe('a restore into a cache location without room', () => {
  let sample: SampleResult;

  function setMaxSize(maxSize: string): void {
    const text = readFileSync(sample.propertiesFile, 'utf8').replace(/"maxSize":"[^"]*"/, `"maxSize":"${maxSize}"`);
    writeFileSync(sample.propertiesFile, text);
  }

  test('is refused before any byte is written, and works once the location has room', async () => {
    sample = await writeSampleCache({
      dir: path.join(tmpDir('dbk-room-'), 'historical'),
      segments: 4,
      layout: 'nested',
      dataSources: ['wikipedia'],
      segmentSize: 64 * 1024,
      smooshChunkSize: 2147483647,
      seed: 103,
    });
    const dirs = cacheDirs(sample);
    const target = await started(['--store', path.join(tmpDir('dbk-room-store-'), 'store')], { env });
    const args = ['--config', sample.propertiesFile, '--target', target.url, '--node-name', 'room'];
    let source = await started(args, { token: target.token, env });
    await waitFor('the cache backed up', async () => (await source.get<SegmentsResponse>('/data/v1/segments?state=backedUp&limit=1')).total === 4, 30_000);
    await source.stop();

    // Two segments lost (their info files stay), and Druid's maxSize leaves no room for them.
    const lost = sample.segmentIds.slice(0, 2);
    const originals = new Map(lost.map((id) => [id, new Map(readdirSync(dirs.get(id)!).map((f) => [f, readFileSync(path.join(dirs.get(id)!, f))]))]));
    for (const id of lost) rmSync(dirs.get(id)!, { recursive: true });
    const remaining = [...dirs.entries()]
      .filter(([id]) => !lost.includes(id))
      .reduce((n, [, d]) => n + readdirSync(d).reduce((m, f) => m + readFileSync(path.join(d, f)).length, 0), 0);
    setMaxSize(String(remaining + 1024));
    source = await started(args, { token: target.token, env });
    const cacheBefore = treeSnapshot(sample.location);
    const r = await source.request<{ error?: { code: string; message: string }; jobId?: string }>('POST', '/data/v1/restore', {
      target: target.url,
      segmentIds: lost,
    });
    let message: string;
    if (r.status === 202) {
      const job = await source.waitForJob(r.json.jobId!);
      assert.equal(job.state, 'failed');
      message = JSON.stringify(job.errors);
    } else {
      assert.ok(r.status >= 400 && r.status < 600 && r.status !== 500, `${r.status} ${r.text}`);
      message = r.json.error!.message;
    }
    assert.match(message, /room|maxSize|space/i, message);
    figures.restoreNoRoom = message;
    assert.deepEqual(treeDiff(cacheBefore, treeSnapshot(sample.location)), [], 'not a byte was written into the cache');
    await source.stop();

    setMaxSize('300g');
    source = await started(args, { token: target.token, env });
    const again = await source.request<{ jobId: string }>('POST', '/data/v1/restore', { target: target.url, segmentIds: lost });
    assert.equal(again.status, 202, again.text);
    const job = await source.waitForJob(again.json.jobId);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
    for (const [id, files] of originals)
      for (const [name, bytes] of files) assert.ok(readFileSync(path.join(dirs.get(id)!, name)).equals(bytes), `${id}/${name} restored byte-identical`);
  });
});
