/**
 * Automatic restore with real processes. Files of a served segment that vanish or change while its info_dir entry
 * remains are restored from the backup by the sidecar itself, logged and counted; a segment whose info file went
 * first (a Druid drop) is left alone. The scrub finds damage that changed no file's size or time.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Job, StoreCatalogResponse } from '../../sidecar/api.js';
import type { SampleResult } from '../../sidecar/sample/sampleCache.js';
import { writeSampleCache } from '../../sidecar/sample/sampleCache.js';
import { runCli } from '../helpers/cli.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { startSidecar, tmpDir, waitFor } from '../helpers/sidecar.js';
import { treeDigests } from '../helpers/tree.js';

async function segmentDirs(props: string): Promise<Map<string, string>> {
  const r = await runCli(['scan', '--config', props, '--json']);
  return new Map((JSON.parse(r.stdout) as { segments: Array<{ id: string; dir: string }> }).segments.map((s) => [s.id, s.dir]));
}

function flipByte(file: string, at: number): void {
  const b = readFileSync(file);
  b[at] = b[at]! ^ 0x01;
  // Into the same inode, as bit rot or a stray write would.
  writeFileSync(file, b);
}

async function autoJobs(source: SidecarProcess): Promise<Job[]> {
  return (await source.get<{ items: Job[] }>('/data/v1/jobs?type=restore')).items;
}

describe('automatic restore', () => {
  let sample: SampleResult;
  let target: SidecarProcess;
  let source: SidecarProcess;
  let original: Map<string, string>;
  let dirs: Map<string, string>;
  const ids: string[] = [];

  before(async () => {
    const root = tmpDir('dbk-auto-');
    sample = await writeSampleCache({
      dir: path.join(root, 'historical'),
      segments: 8,
      layout: 'nested',
      dataSources: ['wikipedia'],
      segmentSize: 32 * 1024,
      smooshChunkSize: 2147483647,
      seed: 51,
    });
    original = treeDigests(sample.location);
    dirs = await segmentDirs(sample.propertiesFile);
    ids.push(...sample.segmentIds);
    target = await startSidecar(['--store', path.join(root, 'store')]);
    // The production check period (PT3S); the test helper only shortens the settle time.
    source = await startSidecar(['--config', sample.propertiesFile, '--target', target.url], { token: target.token });
    await waitFor('every segment backed up', async () => (await target.get<StoreCatalogResponse>('/data/v1/store/segments')).total === 8, 30_000);
  });
  after(async () => {
    await source?.stop();
    await target?.stop();
  });

  const restored = (id: string) => {
    const dir = dirs.get(id)!;
    const rel = path.relative(sample.location, dir);
    const now = treeDigests(dir);
    return (
      now.size > 0 &&
      [...now].every(([f, d]) => original.get(path.join(rel, f)) === d) &&
      now.size === [...original.keys()].filter((k) => k.startsWith(rel + path.sep)).length
    );
  };

  test("a segment's files deleted while its info file stays are restored by the sidecar within seconds", async () => {
    const id = ids[0]!;
    rmSync(dirs.get(id)!, { recursive: true });
    await waitFor(`${id} restored`, () => restored(id), 20_000, 100);
    assert.ok(
      source.logLines().some((l) => l.segmentId === id && /info_dir entry remains; restoring it from the backup/.test(String(l.msg))),
      'logged',
    );
    assert.ok((await source.metric('druid_backup_segments_lost_total', { reason: 'vanished' })) >= 1);
    assert.ok((await source.metric('druid_backup_segments_restored_total', { mode: 'auto', outcome: 'restored' })) >= 1);
    const job = (await autoJobs(source)).find((j) => (j.request.segmentIds as string[]).includes(id))!;
    assert.equal(job.request.automatic, 'auto');
    await waitFor('the restore job to finish', async () => (await source.get<Job>(`/data/v1/jobs/${job.id}`)).state === 'succeeded');
  });

  test('one file deleted, or one byte changed in place, is restored too', async () => {
    const [gone, rotten] = [ids[1]!, ids[2]!];
    rmSync(path.join(dirs.get(gone)!, 'meta.smoosh'));
    flipByte(path.join(dirs.get(rotten)!, '00000.smoosh'), 1000);
    assert.ok(!restored(gone) && !restored(rotten));
    await waitFor('both restored', () => restored(gone) && restored(rotten), 20_000, 100);
    assert.ok((await source.metric('druid_backup_segments_lost_total', { reason: 'damaged' })) >= 1, 'the changed file was hashed and found damaged');
  });

  test('a segment whose info file went first (a Druid drop) is left alone', async () => {
    const [dropped, lost] = [ids[3]!, ids[4]!];
    const lostBefore = await source.metric('druid_backup_segments_lost_total');
    rmSync(path.join(sample.infoDir, dropped));
    rmSync(dirs.get(dropped)!, { recursive: true });
    // A real loss afterwards: once it is restored, the sidecar has looked at the cache since the drop.
    rmSync(dirs.get(lost)!, { recursive: true });
    await waitFor(`${lost} restored`, () => restored(lost), 20_000, 100);
    assert.equal(treeDigests(dirs.get(dropped)!).size, 0, 'the dropped segment stays gone');
    assert.equal(treeDigests(sample.infoDir).has(dropped), false, 'and so does its info file');
    assert.equal(await source.metric('druid_backup_segments_lost_total'), lostBefore + 1, 'only the real loss was counted');
    assert.ok(!source.logLines().some((l) => l.segmentId === dropped && /restor/.test(String(l.msg))), 'nothing logged about restoring it');
  });
});

describe('scrub', () => {
  test('finds a damaged file whose size and place did not change, and repairs it', async () => {
    const root = tmpDir('dbk-scrub-');
    const sample = await writeSampleCache({
      dir: path.join(root, 'historical'),
      segments: 4,
      layout: 'flat',
      dataSources: ['kttm'],
      segmentSize: 32 * 1024,
      smooshChunkSize: 2147483647,
      seed: 53,
    });
    const original = treeDigests(sample.location);
    const target = await startSidecar(['--store', path.join(root, 'store')]);
    let source: SidecarProcess | undefined;
    try {
      const first = await startSidecar(['--config', sample.propertiesFile, '--target', target.url], {
        token: target.token,
        stateDir: path.join(root, 'state'),
      });
      await waitFor('every segment backed up', async () => (await target.get<StoreCatalogResponse>('/data/v1/store/segments')).total === 4, 30_000);
      await first.stop();
      // Damaged while the sidecar was down: nothing it saw changing, only the scrub's re-read can tell.
      const id = sample.segmentIds[1]!;
      const file = path.join(sample.location, id, '00000.smoosh');
      flipByte(file, 2000);
      source = await startSidecar(['--config', sample.propertiesFile, '--target', target.url], {
        token: target.token,
        stateDir: path.join(root, 'state'),
        env: { DRUID_BACKUP_SCRUB_PERIOD: 'PT1S' },
      });
      await waitFor(
        'the scrub to repair it',
        async () => (await source!.metric('druid_backup_segments_restored_total', { mode: 'scrub', outcome: 'restored' })) >= 1,
        30_000,
        200,
      );
      assert.deepEqual(treeDigests(sample.location), original);
      assert.ok((await source.metric('druid_backup_segments_scrubbed_total', { outcome: 'damaged' })) >= 1);
      assert.ok((await source.metric('druid_backup_segments_scrubbed_total', { outcome: 'ok' })) >= 3);
      assert.ok(source.logLines().some((l) => l.segmentId === id && /scrub found a damaged segment/.test(String(l.msg))));
    } finally {
      await source?.stop();
      await target.stop();
    }
  });
});
