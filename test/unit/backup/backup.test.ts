import assert from 'node:assert/strict';
import { appendFileSync, cpSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, utimesSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { SourceState, STATE_FILE } from '../../../sidecar/backup/state.js';
import { sendSegment } from '../../../sidecar/backup/sender.js';
import { CacheWatcher } from '../../../sidecar/backup/watcher.js';
import { scanCache } from '../../../sidecar/druid/scan.js';
import { writeSampleCache } from '../../../sidecar/sample/sampleCache.js';
import { Metrics } from '../../../sidecar/services/metrics.js';
import { HttpTarget } from '../../../sidecar/store/http/target.js';
import { LocalStore } from '../../../sidecar/store/local/store.js';

const log = pino({ level: 'silent' });
const tmp = (p = 'dbk-backup-') => mkdtempSync(path.join(os.tmpdir(), p));

test('the state journal survives a reopen, skips a torn line and compacts', () => {
  const dir = tmp();
  const s = new SourceState(dir, log);
  for (let i = 0; i < 50; i++) s.setBackup({ id: `seg${i}`, dir: `/c/${i}` }, { target: 't', state: 'pending', since: i });
  for (let i = 0; i < 50; i++) s.setBackup({ id: `seg${i}`, dir: `/c/${i}` }, { target: 't', state: 'backedUp', digest: 'd', at: 'now' });
  s.delete('seg0');
  s.close();
  const file = path.join(dir, 'backup', STATE_FILE);
  assert.equal(readFileSync(file, 'utf8').trim().split('\n').length, 101);
  appendFileSync(file, '{"v":1,"id":"seg1","r":{"id":"seg1","dir":"/c/1","backup":{"target":"t","st');
  const again = new SourceState(dir, log);
  assert.equal(again.size, 49);
  assert.equal(again.get('seg0'), undefined);
  assert.equal(again.get('seg1')?.backup?.state, 'backedUp');
  // Opening compacts to one line per segment.
  assert.equal(readFileSync(file, 'utf8').trim().split('\n').length, 49);
  again.close();
});

test('cached digests are used only while every file keeps its size, mtime and inode', async () => {
  const dir = tmp();
  const sample = await writeSampleCache({
    dir,
    segments: 2,
    layout: 'flat',
    dataSources: ['wikipedia'],
    segmentSize: 4096,
    smooshChunkSize: 2147483647,
    seed: 3,
  });
  const [seg] = (await scanCache({ locations: [{ path: sample.location }] })).segments;
  const s = new SourceState(tmp(), log);
  assert.equal(s.cachedDigests(seg!), undefined);
  const files = seg!.files.map((f) => ({ name: f.name, size: f.size, sha256: 'a'.repeat(64) }));
  s.setDigests(seg!, files);
  assert.deepEqual(s.cachedDigests(seg!), files);
  utimesSync(path.join(seg!.dir, 'meta.smoosh'), new Date(), new Date(Date.now() + 5000));
  const [rescanned] = (await scanCache({ locations: [{ path: sample.location }] })).segments;
  assert.equal(s.cachedDigests(rescanned!), undefined, 'a touched file is hashed again');
  s.close();
});

test('sendSegment: one read when the target lacks the segment, none the next time, a source record for a replica', async () => {
  const sample = await writeSampleCache({
    dir: tmp(),
    segments: 3,
    layout: 'nested',
    dataSources: ['kttm'],
    segmentSize: 8192,
    smooshChunkSize: 2147483647,
    seed: 4,
  });
  const segs = (await scanCache({ locations: [{ path: sample.location }] })).segments;
  const store = LocalStore.open(tmp(), { log });
  const metrics = new Metrics();
  const stateA = new SourceState(tmp(), log);
  const a = { target: store, node: 'a', state: stateA, metrics, log };
  const first = await sendSegment(segs[0]!, a);
  assert.equal(first.outcome, 'stored');
  assert.equal(first.bytesSent, segs[0]!.size);
  const second = await sendSegment(segs[0]!, a);
  assert.equal(second.outcome, 'identical');
  assert.equal(second.bytesSent, 0);
  // Node b has the same bytes but no digests yet: it reads its files once, sends nothing, is recorded.
  const stateB = new SourceState(tmp(), log);
  const b = { ...a, node: 'b', state: stateB };
  const replica = await sendSegment(segs[0]!, b);
  assert.equal(replica.outcome, 'source-added');
  assert.equal(
    (await metrics.registry.getSingleMetricAsString('druid_backup_segments_hashed_total')).trim().split('\n').pop(),
    'druid_backup_segments_hashed_total 1',
  );
  assert.deepEqual((await store.head(segs[0]!.id))!.sources, ['a', 'b']);
  assert.equal((await sendSegment(segs[0]!, b)).outcome, 'identical');
  stateA.close();
  stateB.close();
});

/** The number of inotify watches this process holds (libuv keeps one inotify instance; one wd per watched path). */
function inotifyWatches(): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    let link = '';
    try {
      link = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue;
    }
    if (link !== 'anon_inode:inotify') continue;
    n += readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('inotify wd:')).length;
  }
  return n;
}

test('the watcher watches directories, never files, and reports new segment directories', async () => {
  for (const layout of ['nested', 'flat'] as const) {
    const sample = await writeSampleCache({
      dir: tmp(),
      segments: 60,
      layout,
      dataSources: ['wikipedia', 'kttm'],
      segmentSize: 1024,
      smooshChunkSize: 2147483647,
      seed: 5,
    });
    const scan = await scanCache({ locations: [{ path: sample.location }] });
    const fileCount = scan.segments.reduce((n, s) => n + s.files.length, 0);
    const before = inotifyWatches();
    const changed: string[] = [];
    const w = new CacheWatcher([sample.location], sample.infoDir, { changed: (d) => changed.push(d), removed: () => undefined }, log);
    await w.start();
    const watches = inotifyWatches() - before;
    assert.ok(watches > 0, `${layout}: the watcher holds inotify watches`);
    // Nested: location, data sources, intervals, versions. Flat: the location and the segment directories.
    assert.ok(watches <= scan.segments.length + 10, `${layout}: ${watches} watches for ${scan.segments.length} segments`);
    assert.ok(watches < fileCount / 3, `${layout}: ${watches} watches, ${fileCount} files`);
    const more = await writeSampleCache({ dir: tmp(), segments: 1, layout, dataSources: ['late'], segmentSize: 1024, smooshChunkSize: 2147483647, seed: 6 });
    const top = layout === 'flat' ? more.segmentIds[0]! : 'late';
    cpSync(path.join(more.location, top), path.join(sample.location, top), { recursive: true });
    // The segment directory itself: {id} (flat) or late/{interval}/{version}/0 (nested).
    const isNewSegmentDir = (d: string) => {
      const parts = path.relative(sample.location, d).split(path.sep);
      return parts[0] === top && parts.length === (layout === 'flat' ? 1 : 4);
    };
    const deadline = Date.now() + 10_000;
    while (!changed.some(isNewSegmentDir) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await w.close();
    assert.ok(changed.some(isNewSegmentDir), `${layout}: the new segment directory was reported (${changed.join(', ')})`);
    assert.ok(!changed.some((d) => d.startsWith(sample.infoDir)), 'info_dir is not watched');
  }
});

test('a target that stops reading fails the transfer after the idle timeout instead of hanging', async () => {
  // Accepts the upload's connection and headers, then never reads the body nor answers.
  const server = http.createServer(() => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const sample = await writeSampleCache({
      dir: tmp(),
      segments: 1,
      layout: 'flat',
      dataSources: ['kttm'],
      segmentSize: 8 * 1024 * 1024,
      smooshChunkSize: 2147483647,
      seed: 8,
    });
    const [seg] = (await scanCache({ locations: [{ path: sample.location }] })).segments;
    const target = new HttpTarget(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, {
      token: 'x'.repeat(20),
      idleTimeoutMs: 500,
      requestTimeoutMs: 500,
    });
    const state = new SourceState(tmp(), log);
    const t0 = Date.now();
    await assert.rejects(sendSegment(seg!, { target, node: 'n', state, metrics: new Metrics(), log }, { remote: null }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'target_unreachable');
      assert.match(e.message, /no progress/);
      return true;
    });
    assert.ok(Date.now() - t0 < 10_000);
    state.close();
  } finally {
    server.closeAllConnections();
    server.close();
  }
});
