/**
 * eachLimit, the pool the prune sweep runs its batches in as it reads them from its spool: never more than `limit`
 * calls in flight nor items read ahead of them, and the first failure stops reading and is thrown only once the
 * calls under way have ended (the sweep then releases its lease: nothing may run after that).
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import fc from 'fast-check';
import { eachLimit, eachWeighted } from '../../../sidecar/util/pool.js';

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
  // Measured as each item is read too, not only as its call starts: a pool that read the next item before room was
  // free would hold a fourth here, which the call-start measure does not see.
  const measured = (async function* () {
    for await (const i of items) {
      peakAhead = Math.max(peakAhead, read() - done.length);
      yield i;
    }
  })();
  await eachLimit(measured, 3, async (i) => {
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

/**
 * eachWeighted, the pool a backup job's groups run in (a large segment takes a whole worker, a group of small ones half
 * of one): every item runs once, in the order given, the weights in flight never above the capacity (an item
 * heavier than it alone), and the capacity used when the next item fits.
 */
test('eachWeighted: each item once, started in order, weights in flight within the capacity', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.record({ w: fc.integer({ min: 1, max: 5 }), ms: fc.integer({ min: 0, max: 3 }) }), { maxLength: 30 }), fc.integer({ min: 1, max: 6 }), async (items, capacity) => {
      const started: number[] = [];
      let inUse = 0;
      let running = 0;
      const indexed = items.map((it, i) => ({ ...it, i }));
      await eachWeighted(indexed, capacity, (it) => it.w, async (it) => {
        started.push(it.i);
        inUse += it.w;
        running++;
        assert.ok(running === 1 || inUse <= capacity, `weights ${inUse} in flight, capacity ${capacity}`);
        await sleep(it.ms);
        inUse -= it.w;
        running--;
      });
      assert.deepEqual(started, indexed.map((it) => it.i));
      assert.equal(running, 0);
    }),
    { numRuns: 60 },
  );
});

test('eachWeighted runs as many light items at once as the capacity holds, a heavy one alone', async () => {
  let peak = 0;
  let running = 0;
  const seen: string[] = [];
  await eachWeighted(['a', 'b', 'c', 'd', 'HEAVY', 'e'], 4, (x) => (x === 'HEAVY' ? 9 : 1), async (x) => {
    running++;
    peak = Math.max(peak, running);
    if (x === 'HEAVY') seen.push(`HEAVY with ${running - 1} others`);
    await sleep(10);
    running--;
  });
  assert.equal(peak, 4);
  assert.deepEqual(seen, ['HEAVY with 0 others']);
});

test('eachWeighted: the first failure starts no new call and is thrown once those under way end', async () => {
  let ended = 0;
  const started: number[] = [];
  await assert.rejects(
    eachWeighted([0, 1, 2, 3, 4, 5, 6, 7], 2, () => 1, async (i) => {
      started.push(i);
      try {
        if (i === 1) throw new Error('boom 1');
        await sleep(20);
      } finally {
        ended++;
      }
    }),
    /boom 1/,
  );
  assert.equal(ended, started.length);
  assert.deepEqual(started, [0, 1]);
});
