/**
 * eachLimit, the pool the prune sweep runs its batches in as it reads them from its spool: never more than `limit`
 * calls in flight nor items read ahead of them, and the first failure stops reading and is thrown only once the
 * calls under way have ended (the sweep then releases its lease: nothing may run after that).
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { eachLimit } from '../../../sidecar/util/pool.js';

/** 0..n-1, counting how many were read. */
function counted(n: number): { items: AsyncIterable<number>; read: () => number } {
  let read = 0;
  return {
    items: (async function* () {
      for (let i = 0; i < n; i++) {
        read++;
        yield i;
      }
    })(),
    read: () => read,
  };
}

test('eachLimit runs every item, at most limit at once, reading no further ahead than the calls in flight', async () => {
  const { items, read } = counted(40);
  let inFlight = 0;
  let peak = 0;
  let peakAhead = 0;
  const done: number[] = [];
  await eachLimit(items, 3, async (i) => {
    inFlight++;
    peak = Math.max(peak, inFlight);
    peakAhead = Math.max(peakAhead, read() - done.length);
    await sleep(i % 4);
    done.push(i);
    inFlight--;
  });
  assert.deepEqual(
    [...done].sort((a, b) => a - b),
    Array.from({ length: 40 }, (_, i) => i),
  );
  assert.equal(peak, 3);
  assert.ok(peakAhead <= 3, `read ${peakAhead} items ahead of those finished`);
});

test('eachLimit: the first failure starts no new call and is thrown only after the calls under way end', async () => {
  const { items, read } = counted(100);
  const started: number[] = [];
  let ended = 0;
  let inFlight = 0;
  await assert.rejects(
    eachLimit(items, 4, async (i) => {
      started.push(i);
      inFlight++;
      try {
        if (i === 5) throw new Error('boom 5');
        if (i === 7) throw new Error('boom 7');
        await sleep(20);
      } finally {
        inFlight--;
        ended++;
      }
    }),
    /boom 5/,
  );
  assert.equal(inFlight, 0, 'a call was still running when the failure was thrown');
  assert.equal(ended, started.length);
  assert.ok(started.length < 12, `${started.length} calls started after the failure`);
  assert.ok(read() < 13, `read ${read()} items`);
});

test('eachLimit: a failure reading the items is thrown once the calls under way end', async () => {
  let ended = 0;
  const items = (async function* () {
    yield 1;
    yield 2;
    throw new Error('unreadable');
  })();
  await assert.rejects(
    eachLimit(items, 4, async () => {
      await sleep(20);
      ended++;
    }),
    /unreadable/,
  );
  assert.equal(ended, 2);
});
