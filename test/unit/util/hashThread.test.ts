/**
 * The hashing thread (sidecar/util/hashThread.ts): the same digests as an in-place sha256 whatever the pieces and
 * however many hashes run at once, the slots at the worker bounded, a hash left unfinished forgotten, and a worker
 * that dies failing its hashes (never a digest on a guess) and replaced for the next.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import fc from 'fast-check';
import { isBackupError } from '../../../sidecar/errors.js';
import { HashThread, IDLE_MS, MAX_IN_FLIGHT, OFF_THREAD_MIN, SLOT } from '../../../sidecar/util/hashThread.js';
import type { StreamHash } from '../../../sidecar/util/hashThread.js';

const threads: HashThread[] = [];
after(async () => {
  for (const t of threads) await t.close();
});
function thread(): HashThread {
  const t = new HashThread();
  threads.push(t);
  return t;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function feed(h: StreamHash, data: Buffer, cuts: number[]): Promise<string> {
  let off = 0;
  for (const cut of [...cuts.filter((c) => c > 0 && c < data.length).sort((a, b) => a - b), data.length]) {
    const wait = h.update(data.subarray(off, cut));
    if (wait) await wait;
    off = cut;
  }
  return h.digest();
}

test('digests are those of an in-place sha256, for files below and above the threshold, several at once', async () => {
  const t = thread();
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.record({
          size: fc.oneof(fc.integer({ min: 0, max: 4096 }), fc.integer({ min: OFF_THREAD_MIN - 2, max: 2 * SLOT + 5 })),
          cuts: fc.array(fc.nat(), { maxLength: 12 }),
        }),
        { minLength: 1, maxLength: 5 },
      ),
      async (files) => {
        const datas = files.map((f) => randomBytes(f.size));
        const got = await Promise.all(files.map((f, i) => feed(t.hash(f.size), datas[i]!, f.cuts.map((c) => c % (f.size + 1)))));
        assert.deepEqual(
          got,
          datas.map((d) => sha(d)),
        );
      },
    ),
    { numRuns: 60 },
  );
  assert.ok(t.current, 'the files of 1 MiB and more went to the worker');
});

test('at most MAX_IN_FLIGHT slots wait at the worker: a fast producer is made to wait, and slots are used again', async () => {
  const t = thread();
  const piece = randomBytes(256 * 1024);
  const h = t.hash(64 * OFF_THREAD_MIN);
  const whole = createHash('sha256');
  let waited = 0;
  for (let i = 0; i < 512; i++) {
    whole.update(piece);
    const wait = h.update(piece);
    if (wait) {
      waited++;
      await wait;
    }
  }
  assert.equal(await h.digest(), whole.digest('hex'));
  assert.ok(waited > 0, 'the producer waited for slots to come back');
  assert.ok(t.maxInFlight <= MAX_IN_FLIGHT, `${t.maxInFlight} slots were at the worker at once`);
  assert.ok(t.allocated <= MAX_IN_FLIGHT + 1, `${t.allocated} slots were allocated for 128 MiB`);
});

test('more hashes than slots, each holding a part-filled slot, all finish', async () => {
  const t = thread();
  const n = MAX_IN_FLIGHT * 3;
  const datas = Array.from({ length: n }, () => randomBytes(SLOT + 1000));
  const hashes = datas.map((d) => t.hash(d.length));
  // Every hash takes a slot and fills half of it before any finishes.
  for (const [i, h] of hashes.entries()) assert.equal(h.update(datas[i]!.subarray(0, 1000)), undefined);
  const got = await Promise.all(
    hashes.map(async (h, i) => {
      const wait = h.update(datas[i]!.subarray(1000));
      if (wait) await wait;
      return h.digest();
    }),
  );
  assert.deepEqual(
    got,
    datas.map((d) => sha(d)),
  );
});

test('a disposed hash is forgotten: its slot serves the next, whose digest is its own', async () => {
  const t = thread();
  const a = t.hash(2 * OFF_THREAD_MIN);
  a.update(randomBytes(SLOT + 10));
  a.dispose();
  a.dispose();
  const data = randomBytes(2 * OFF_THREAD_MIN);
  assert.equal(await feed(t.hash(data.length), data, [5, OFF_THREAD_MIN]), sha(data));
  await assert.rejects(a.digest(), (e) => isBackupError(e) && e.code === 'internal');
});

test('a worker that stops fails the hashes it held, and the next hash gets a new worker', async () => {
  const t = thread();
  const data = randomBytes(3 * SLOT);
  const h = t.hash(data.length);
  h.update(data.subarray(0, 2 * SLOT));
  const first = t.current!;
  await first.terminate();
  await assert.rejects(h.digest(), (e) => isBackupError(e) && e.code === 'internal' && /hashing thread stopped/.test(e.message));
  assert.equal(await feed(t.hash(data.length), data, [OFF_THREAD_MIN]), sha(data));
  assert.notEqual(t.current, first);
});

test('a worker that stops while a digest is asked for fails that digest', async () => {
  const t = thread();
  const data = randomBytes(2 * SLOT);
  const h = t.hash(data.length);
  const wait = h.update(data);
  if (wait) await wait;
  const digest = h.digest();
  await t.current!.terminate();
  // The worker may have answered before it stopped; if not, the digest fails. Either way it is never a wrong one.
  await digest.then(
    (hex) => assert.equal(hex, sha(data)),
    (e: unknown) => assert.ok(isBackupError(e) && e.code === 'internal'),
  );
});

test('the worker keeps a process alive only while it owes an answer: a digest asked for comes, an abandoned hash holds nothing', () => {
  const module = pathToFileURL(path.resolve('sidecar/util/hashThread.ts')).href;
  const script = `
    import { hashThread } from ${JSON.stringify(module)};
    const t = hashThread();
    const data = Buffer.alloc(3 * ${SLOT} + 1, 7);
    const done = t.hash(data.length);
    const wait = done.update(data);
    const abandoned = t.hash(data.length);
    abandoned.update(data.subarray(0, ${SLOT} + 5));
    (wait ?? Promise.resolve()).then(() => done.digest()).then((hex) => console.log(hex));
  `;
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'hash-thread-')), 'owes.mts');
  writeFileSync(file, script);
  const r = spawnSync(process.execPath, ['--import', 'tsx', file], { encoding: 'utf8', timeout: 20_000 });
  rmSync(path.dirname(file), { recursive: true, force: true });
  assert.equal(r.error, undefined, 'the process ended by itself');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), sha(Buffer.alloc(3 * SLOT + 1, 7)));
});

test('with no hash open the free slots are dropped at once and the worker stopped after IDLE_MS; the next hash starts one', async () => {
  const t = thread();
  const data = randomBytes(3 * SLOT);
  assert.equal(await feed(t.hash(data.length), data, [SLOT, 2 * SLOT]), sha(data));
  // The last slot comes back after the digest: none is kept.
  assert.equal(t.allocated, 0, `${t.allocated} slots kept with no hash open`);
  const first = t.current!;
  let exited = false;
  first.once('exit', () => (exited = true));
  await new Promise((r) => setTimeout(r, IDLE_MS + 500));
  assert.equal(t.current, undefined, 'the idle worker was stopped');
  assert.ok(exited, 'its thread ended');
  // A hash open keeps it: one begun, left open past IDLE_MS, finishes on the same worker.
  const h = t.hash(data.length);
  const second = t.current!;
  h.update(data.subarray(0, SLOT + 1));
  await new Promise((r) => setTimeout(r, IDLE_MS * 1.5));
  assert.equal(t.current, second, 'not stopped while a hash is open');
  const rest = h.update(data.subarray(SLOT + 1));
  if (rest) await rest;
  assert.equal(await h.digest(), sha(data));
});
