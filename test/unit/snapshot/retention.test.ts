import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  applyRetention,
  cadenceOf,
  describePolicy,
  hasRule,
  isoWeek,
  policyFromSettings,
  retentionOutlook,
  segmentVerdict,
} from '../../../sidecar/snapshot/retention.js';
import type { RetentionPolicy, SnapshotFacts } from '../../../sidecar/snapshot/retention.js';
import { newSnapshotId } from '../../../sidecar/snapshot/check.js';

const H = 3600_000;
const D = 24 * H;
const T0 = Date.UTC(2026, 11, 6, 12, 0, 0);

function snaps(times: number[], pinned: number[] = []): SnapshotFacts[] {
  return times.map((t, i) => ({ id: `s${String(i).padStart(3, '0')}`, timeMs: t, pinned: pinned.includes(i) }));
}
const kept = (v: ReturnType<typeof applyRetention>) =>
  v
    .filter((x) => x.keep)
    .map((x) => x.id)
    .sort();

const arbSnaps = fc
  .array(fc.record({ t: fc.integer({ min: 0, max: 120 * D }), pinned: fc.boolean() }), { maxLength: 60 })
  .map((xs) => xs.map((x, i) => ({ id: `s${String(i).padStart(3, '0')}`, timeMs: T0 - x.t, pinned: x.pinned })));
const count = fc.option(fc.integer({ min: 0, max: 10 }), { nil: undefined });
const arbPolicy: fc.Arbitrary<RetentionPolicy> = fc.record({
  keepLast: count,
  keepHourly: count,
  keepDaily: count,
  keepWeekly: count,
  keepMonthly: count,
  keepWithinMs: fc.option(fc.integer({ min: 0, max: 30 * D }), { nil: undefined }),
  gracePeriodMs: fc.constant(0),
});

test('keepLast=1 keeps only the newest, whatever the order they are listed in', () => {
  const s = snaps([T0 - 2 * H, T0, T0 - H]);
  const v = applyRetention(s, { keepLast: 1, gracePeriodMs: 0 });
  assert.deepEqual(kept(v), ['s001']);
  assert.equal(v[0]!.id, 's001');
  assert.match(v.find((x) => x.id === 's000')!.reasons[0]!, /no rule keeps it \(keepLast=1\)/);
});

test('keepDaily counts days that have a snapshot, and keeps the newest of each', () => {
  // Two on day 0, none on day 1, one on day 2, two on day 3.
  const s = snaps([T0, T0 - H, T0 - 2 * D, T0 - 3 * D, T0 - 3 * D - H]);
  assert.deepEqual(kept(applyRetention(s, { keepDaily: 3, gracePeriodMs: 0 })), ['s000', 's002', 's003']);
});

test('a pinned snapshot is kept and does not use up a count', () => {
  const s = snaps([T0, T0 - H, T0 - 2 * H], [0]);
  assert.deepEqual(kept(applyRetention(s, { keepLast: 1, gracePeriodMs: 0 })), ['s000', 's001']);
});

test('keepWithin is measured from the newest snapshot, not from now', () => {
  const s = snaps([T0 - 100 * D, T0 - 101 * D, T0 - 110 * D]);
  assert.deepEqual(kept(applyRetention(s, { keepWithinMs: 5 * D, gracePeriodMs: 0 })), ['s000', 's001']);
});

test('ISO weeks: 2026-12-31 (Thursday) is in 2026-W53, 2027-01-04 (Monday) in 2027-W01', () => {
  assert.equal(isoWeek(Date.UTC(2026, 11, 31)), '2026-W53');
  assert.equal(isoWeek(Date.UTC(2027, 0, 3)), '2026-W53');
  assert.equal(isoWeek(Date.UTC(2027, 0, 4)), '2027-W01');
  assert.equal(isoWeek(Date.UTC(2024, 11, 30)), '2025-W01');
});

test('property: the newest and every pinned snapshot are always kept; no rule at all keeps everything', () => {
  fc.assert(
    fc.property(arbSnaps, arbPolicy, (s, p) => {
      const v = applyRetention(s, p);
      assert.equal(v.length, s.length);
      if (s.length) assert.equal(v[0]!.keep, true);
      for (const x of s) if (x.pinned) assert.equal(v.find((y) => y.id === x.id)!.keep, true);
      const none = applyRetention(s, { gracePeriodMs: 0 });
      assert.ok(none.every((x) => x.keep));
    }),
  );
});

test('property: keepLast=n keeps exactly the n newest unpinned, the pinned, and the newest', () => {
  fc.assert(
    fc.property(arbSnaps, fc.integer({ min: 1, max: 10 }), (s, n) => {
      const v = applyRetention(s, { keepLast: n, gracePeriodMs: 0 });
      const order = [...s].sort((a, b) => b.timeMs - a.timeMs || (a.id < b.id ? 1 : -1));
      const want = new Set([...order.filter((x) => !x.pinned).slice(0, n), ...order.filter((x) => x.pinned), ...order.slice(0, 1)].map((x) => x.id));
      assert.deepEqual(kept(v), [...want].sort());
    }),
  );
});

test('property: keepDaily=n never keeps more than n unpinned (plus the newest), one per day, the most recent days', () => {
  fc.assert(
    fc.property(arbSnaps, fc.integer({ min: 1, max: 10 }), (s, n) => {
      const v = applyRetention(s, { keepDaily: n, gracePeriodMs: 0 });
      const byId = new Map(s.map((x) => [x.id, x]));
      const keptUnpinned = v.filter((x) => x.keep && !byId.get(x.id)!.pinned && x.reasons.some((r) => r.startsWith('daily')));
      const days = keptUnpinned.map((x) => new Date(byId.get(x.id)!.timeMs).toISOString().slice(0, 10));
      assert.equal(new Set(days).size, days.length);
      const allDays = [...new Set(s.filter((x) => !x.pinned).map((x) => new Date(x.timeMs).toISOString().slice(0, 10)))].sort().reverse();
      assert.deepEqual([...days].sort().reverse(), allDays.slice(0, n));
      for (const k of keptUnpinned) {
        const day = new Date(byId.get(k.id)!.timeMs).toISOString().slice(0, 10);
        const newer = s.filter((x) => !x.pinned && new Date(x.timeMs).toISOString().slice(0, 10) === day && x.timeMs > byId.get(k.id)!.timeMs);
        assert.equal(newer.length, 0, 'the kept one is the newest of its day');
      }
      assert.ok(v.filter((x) => x.keep && !byId.get(x.id)!.pinned).length <= n + 1);
    }),
  );
});

test('property: raising any count or widening keepWithin never drops a snapshot that was kept', () => {
  fc.assert(
    fc.property(arbSnaps, arbPolicy, fc.constantFrom('keepLast', 'keepHourly', 'keepDaily', 'keepWeekly', 'keepMonthly', 'keepWithinMs'), (s, p, k) => {
      const before = new Set(kept(applyRetention(s, p)));
      const more = { ...p, [k]: (p[k as keyof RetentionPolicy] ?? 0) + (k === 'keepWithinMs' ? D : 1) };
      const after = new Set(kept(applyRetention(s, more)));
      for (const id of before) assert.ok(after.has(id), `${id} dropped after raising ${k}`);
    }),
  );
});

test('property: the verdict does not depend on the order snapshots are listed in', () => {
  fc.assert(
    fc.property(arbSnaps, arbPolicy, (s, p) => {
      assert.deepEqual(kept(applyRetention(s, p)), kept(applyRetention([...s].reverse(), p)));
    }),
  );
});

test('segments: kept while a kept snapshot names them or a node holds them, then for the grace period', () => {
  const p = { gracePeriodMs: 7 * D };
  assert.equal(segmentVerdict({ id: 'x', inKeptSnapshot: 'a', lastReferencedMs: 0 }, p, T0).keep, true);
  assert.equal(segmentVerdict({ id: 'x', heldBy: 'h1', lastReferencedMs: 0 }, p, T0).keep, true);
  assert.equal(segmentVerdict({ id: 'x', lastReferencedMs: T0 - 6 * D }, p, T0).keep, true);
  const gone = segmentVerdict({ id: 'x', lastReferencedMs: T0 - 7 * D }, p, T0);
  assert.equal(gone.keep, false);
  assert.match(gone.reason, /grace period P7D/);
  assert.equal(segmentVerdict({ id: 'x', lastReferencedMs: T0 }, { gracePeriodMs: 0 }, T0).keep, false);
});

test('settings: periods are parsed, a bad one or a negative count is a config error, grace defaults to P7D', () => {
  assert.deepEqual(policyFromSettings({ keepLast: 2, keepWithin: 'P2D' }), { keepLast: 2, keepWithinMs: 2 * D, gracePeriodMs: 7 * D });
  assert.equal(policyFromSettings({ gracePeriod: 'PT0S' }).gracePeriodMs, 0);
  assert.equal(policyFromSettings({ keepWithin: 'P1M' }).keepWithinMs, 31 * D);
  assert.throws(() => policyFromSettings({ gracePeriod: 'a week' }), /gracePeriod/);
  assert.throws(() => policyFromSettings({ keepLast: -1 }), /keepLast/);
});

test('snapshot ids are sortable by time', () => {
  const a = newSnapshotId(T0);
  const b = newSnapshotId(T0 + 1000);
  assert.match(a, /^20261206T120000Z-[0-9a-f]{8}$/);
  assert.ok(a < b);
});

test('the outlook: when the policy lets each snapshot go, as applyRetention says once the snapshots to come are taken', () => {
  const policyArb: fc.Arbitrary<RetentionPolicy> = fc.record({
    keepLast: fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined }),
    keepHourly: fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined }),
    keepDaily: fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined }),
    keepWeekly: fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }),
    keepMonthly: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
    keepWithinMs: fc.option(fc.integer({ min: 0, max: 20 * D }), { nil: undefined }),
    gracePeriodMs: fc.constant(0),
  });
  const snapsArb = fc
    .array(fc.record({ t: fc.integer({ min: 0, max: 60 * D }), pinned: fc.boolean() }), { minLength: 1, maxLength: 20 })
    .map((xs) => xs.map((x, i) => ({ id: `s${String(i).padStart(3, '0')}`, timeMs: T0 - x.t, pinned: x.pinned && i % 3 === 0 })));
  fc.assert(
    fc.property(snapsArb, policyArb, fc.constantFrom(H, 6 * H, D, 3 * D, 10 * D), fc.integer({ min: 0, max: 90 * D }), (snapshots, policy, cadenceMs, late) => {
      const nowMs = T0 + late;
      const outlook = retentionOutlook(snapshots, policy, { nowMs, cadenceMs });
      const verdicts = applyRetention(snapshots, policy);
      const newest = Math.max(...snapshots.map((s) => s.timeMs));
      const next = Math.max(newest + cadenceMs, nowMs);
      const future = (j: number): SnapshotFacts[] =>
        Array.from({ length: j }, (_, k) => ({ id: `z${String(k).padStart(5, '0')}`, timeMs: next + k * cadenceMs, pinned: false }));
      const keptWith = (j: number, id: string) => applyRetention([...snapshots, ...future(j)], policy).find((v) => v.id === id)!.keep;
      for (const v of verdicts) {
        const o = outlook.get(v.id)!;
        assert.equal(o.keep, v.keep);
        assert.deepEqual(o.reasons, v.reasons);
        const s = snapshots.find((x) => x.id === v.id)!;
        if (!v.keep || s.pinned || !hasRule(policy)) {
          assert.equal(o.until, undefined, `${v.id}: ${v.reasons.join('; ')}`);
          continue;
        }
        assert.ok(o.until, `${v.id} kept by ${v.reasons.join('; ')} lapses at some time`);
        const j = (Date.parse(o.until) - next) / cadenceMs + 1;
        assert.ok(Number.isInteger(j) && j >= 1, `${o.until} is the time of a snapshot to come`);
        assert.ok(keptWith(j - 1, v.id), `${v.id} still kept before ${o.until}`);
        assert.ok(!keptWith(j, v.id), `${v.id} let go at ${o.until} (${policy ? describePolicy(policy) : ''})`);
      }
    }),
    { numRuns: 300 },
  );
});

test('the outlook without a cadence: no time, the verdict only; the cadence is the usual gap', () => {
  const s = snaps([T0 - 2 * H, T0 - H, T0], [0]);
  const o = retentionOutlook(s, { keepLast: 1, gracePeriodMs: 0 }, { nowMs: T0 });
  assert.deepEqual(o.get('s002'), { keep: true, reasons: ['newest', 'last 1 of 1'], policy: 'keepLast=1' });
  assert.deepEqual(o.get('s000'), { keep: true, reasons: ['pinned'], policy: 'keepLast=1' });
  assert.equal(o.get('s001')!.keep, false);
  const timed = retentionOutlook(s, { keepLast: 2, gracePeriodMs: 0 }, { nowMs: T0, cadenceMs: H });
  assert.equal(timed.get('s001')!.until, new Date(T0 + H).toISOString(), 'the next snapshot makes it the third');
  assert.equal(timed.get('s002')!.until, new Date(T0 + 2 * H).toISOString());
  assert.equal(timed.get('s000')!.until, undefined, 'pinned: never');
  assert.equal(cadenceOf([T0, T0 - H, T0 - 2 * H, T0 - 26 * H]), H);
  assert.equal(cadenceOf([T0]), undefined);
});
