import assert from 'node:assert/strict';
import { createReadStream, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import pino from 'pino';
import type { CachedSegment } from '../../../sidecar/druid/scan.js';
import { scanCache } from '../../../sidecar/druid/scan.js';
import { AutoRestore } from '../../../sidecar/restore/auto.js';
import { DigestMemo } from '../../../sidecar/restore/digests.js';
import { executePlan, planFor } from '../../../sidecar/restore/restorer.js';
import { decide, surveyCopies } from '../../../sidecar/restore/sources.js';
import type { RestoreEnv, RestoreProgress } from '../../../sidecar/restore/restorer.js';
import { writeSampleCache } from '../../../sidecar/sample/sampleCache.js';
import { HttpTarget } from '../../../sidecar/store/http/target.js';
import { LocalStore } from '../../../sidecar/store/local/store.js';
import { tmpDir } from '../../helpers/sidecar.js';
import { treeDigests } from '../../helpers/tree.js';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino(
    { level: 'info' },
    new Writable({
      write(chunk, _enc, cb) {
        for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
        cb();
      },
    }),
  );
  return { log, lines };
}

const progress = (): RestoreProgress => ({
  signal: new AbortController().signal,
  setTotals() {},
  addBytes() {},
  setCurrent() {},
  segmentDone() {},
  segmentFailed() {},
  throwIfCancelled() {},
});

/** A node's cache with all but the last segment backed up to a local store, and an AutoRestore over them. */
async function setup() {
  const root = tmpDir('dbk-auto-unit-');
  const sample = await writeSampleCache({
    dir: path.join(root, 'historical'),
    segments: 5,
    layout: 'nested',
    dataSources: ['wikipedia'],
    segmentSize: 8 * 1024,
    smooshChunkSize: 2147483647,
    seed: 71,
  });
  const { log, lines } = capture();
  const store = LocalStore.open(path.join(root, 'store'), { log: pino({ level: 'silent' }) });
  const scan = await scanCache({ locations: [{ path: sample.location }] });
  const segs = new Map<string, CachedSegment>(scan.segments.map((s) => [s.id, s]));
  for (const s of scan.segments.slice(0, 4)) {
    await store.put({
      segmentId: s.id,
      descriptor: s.descriptor ?? null,
      node: 'h1:8083',
      files: s.files.map((f) => ({ name: f.name, size: f.size, open: () => createReadStream(path.join(s.dir, f.name)) })),
    });
  }
  const env: RestoreEnv = {
    druid: { locations: [{ path: sample.location }], infoDir: sample.infoDir, storage: { type: 'local', zip: false } },
    layout: 'auto',
    workers: 1,
    memo: new DigestMemo(),
  };
  const calls: Array<string[]> = [];
  let failNext = false;
  const auto = new AutoRestore({
    locations: [{ path: sample.location }],
    infoDir: sample.infoDir,
    target: store,
    nodeName: 'h1:8083',
    settleMs: 0,
    checkMs: 3000,
    scrubMs: 0,
    memo: env.memo,
    log,
    isBusy: () => false,
    survey: async (id) => decide(id, await surveyCopies(store, id)),
    restore: async (ids) => {
      calls.push(ids);
      if (failNext) return ids.map((segmentId) => ({ segmentId, case: 'restorable' as const }));
      const { plan, dest } = await planFor({ target: store.url, segmentIds: ids }, store, env);
      const out = await executePlan(plan, dest, store, env, progress());
      const failed = new Set(out.failed.map((f) => f.segmentId));
      return ids.map((segmentId) => ({ segmentId, case: failed.has(segmentId) ? ('restorable' as const) : ('restored' as const) }));
    },
  });
  return { sample, segs, auto, calls, lines, log, original: treeDigests(sample.location), setFail: (v: boolean) => (failNext = v) };
}

test('a loss is restored, a drop is left alone, a segment without backup is said once; a failed restore waits before the next try', async () => {
  const { sample, segs, auto, calls, lines, original, setFail } = await setup();
  const [a, b, c, d, notBackedUp] = [...segs.values()] as [CachedSegment, CachedSegment, CachedSegment, CachedSegment, CachedSegment];
  await auto.sweepAndRepair(); // first sight: every served segment observed, nothing read
  assert.equal(calls.length, 0);

  rmSync(a.dir, { recursive: true }); // lost: info file stays
  rmSync(path.join(sample.infoDir, b.id)); // dropped: info file first...
  rmSync(b.dir, { recursive: true }); // ...then the files
  await auto.sweepAndRepair(); // seen lost
  await auto.sweepAndRepair(); // still lost after the settle time: restored
  assert.deepEqual(calls, [[a.id]]);
  const now = treeDigests(sample.location);
  for (const [f, dg] of original) if (!f.includes(b.id) && !f.startsWith(path.relative(sample.location, b.dir))) assert.equal(now.get(f), dg, f);
  assert.equal(now.size, original.size - b.files.length - 1, 'the dropped segment and its info file stay gone');

  // A byte changed in place is a change of mtime: hashed, found damaged, restored.
  const f = path.join(c.dir, '00000.smoosh');
  const bytes = readFileSync(f);
  bytes[5] = bytes[5]! ^ 1;
  writeFileSync(f, bytes);
  await auto.sweepAndRepair();
  await auto.sweepAndRepair();
  assert.deepEqual(calls.at(-1), [c.id]);
  assert.equal(treeDigests(sample.location).get(path.relative(sample.location, f)), original.get(path.relative(sample.location, f)));

  rmSync(notBackedUp.dir, { recursive: true });
  await auto.sweepAndRepair();
  await auto.sweepAndRepair();
  await auto.sweepAndRepair();
  assert.equal(
    lines.filter((l) => l.segmentId === notBackedUp.id && /no target holds a backup/.test(String(l.msg)) && l.case === 'no_backup').length,
    1,
    'said once',
  );
  assert.ok(!calls.some((ids) => ids.includes(notBackedUp.id)));

  setFail(true);
  rmSync(d.dir, { recursive: true });
  const before = calls.length;
  for (let i = 0; i < 5; i++) await auto.sweepAndRepair();
  assert.equal(calls.length, before + 1, 'one attempt, then a wait of seconds, not a try every sweep');
  assert.ok(lines.some((l) => l.segmentId === d.id && l.msg === 'lost segment not restored; trying again later' && l.retryInMs === 5000));
});

test('a lost segment whose target does not answer waits for it (never "no backup"), until Druid drops it or downloads it itself', async () => {
  const { sample, segs, lines, log } = await setup();
  // A port nothing listens on: the node's target is down.
  const dead = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => dead.once('listening', r));
  const port = (dead.address() as net.AddressInfo).port;
  await new Promise((r) => dead.close(r));
  const target = new HttpTarget(`http://127.0.0.1:${port}`);
  const restores: string[][] = [];
  const auto = new AutoRestore({
    locations: [{ path: sample.location }],
    infoDir: sample.infoDir,
    target,
    nodeName: 'h1:8083',
    settleMs: 0,
    checkMs: 3000,
    scrubMs: 0,
    memo: new DigestMemo(),
    log,
    probeMs: 50,
    isBusy: () => false,
    survey: async (id) => decide(id, await surveyCopies(target, id)),
    restore: async (ids) => {
      restores.push(ids);
      return [];
    },
  });
  const [a, b] = [...segs.values()] as [CachedSegment, CachedSegment];
  await auto.sweepAndRepair();
  rmSync(a.dir, { recursive: true });
  rmSync(b.dir, { recursive: true });
  await auto.sweepAndRepair();
  await auto.sweepAndRepair();
  assert.deepEqual(auto.waiting.sort(), [a.id, b.id].sort());
  for (const id of [a.id, b.id]) {
    const said = lines.filter((l) => l.segmentId === id && l.case === 'holders_unreachable');
    assert.equal(said.length, 1, 'said once when the wait starts');
    assert.match(String(said[0]!.msg), /every target that may hold a good copy is unreachable.*waiting/);
  }
  // Probed every 50 ms meanwhile, and still down: it keeps waiting, and is never given up as "no backup".
  await new Promise((r) => setTimeout(r, 300));
  for (let i = 0; i < 3; i++) await auto.sweepAndRepair();
  assert.equal(auto.waiting.length, 2);
  assert.ok(!lines.some((l) => /no target holds a backup/.test(String(l.msg))));

  // Druid downloads a itself (its downloadStartMarker), and drops b (its info file goes): both waits end.
  mkdirSync(a.dir, { recursive: true });
  writeFileSync(path.join(a.dir, 'downloadStartMarker'), '');
  rmSync(path.join(sample.infoDir, b.id));
  await auto.sweepAndRepair();
  assert.deepEqual(auto.waiting, []);
  assert.ok(lines.some((l) => l.segmentId === a.id && /no longer waits/.test(String(l.msg)) && /downloadStartMarker/.test(String(l.why))));
  assert.ok(lines.some((l) => l.segmentId === b.id && /no longer waits/.test(String(l.msg)) && /info_dir entry is gone/.test(String(l.why))));
  assert.deepEqual(restores, [], 'nothing was restored from a target that never answered');
  await auto.stop();
});
