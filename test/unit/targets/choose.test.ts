/** The choice of targets (sidecar/targets/choose.ts) and the target list settings (spec.ts): pure rules. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Candidate } from '../../../sidecar/targets/choose.js';
import { SAFETY_MIN_BYTES, choose, neededBytes } from '../../../sidecar/targets/choose.js';
import { statsProblem } from '../../../sidecar/targets/health.js';
import { checkCopies, parseTargetsSetting } from '../../../sidecar/targets/spec.js';

const MiB = 1024 * 1024;

function cand(url: string, o: Partial<Candidate> = {}): Candidate {
  return { url, weight: 1, available: true, freeBytes: 1024 * MiB, inFlightBytes: 0, rttMs: 1, sentBytes: 0, ...o };
}

test('availability, then capacity with the margin, then latency: each decision has its reason', () => {
  const c = choose(
    [
      cand('http://down', { available: false, down: 'down: connect ECONNREFUSED' }),
      cand('http://full', { freeBytes: 1.5 * MiB }),
      cand('http://far', { rttMs: 150 }),
      cand('http://near', { rttMs: 2 }),
    ],
    { bytes: MiB, copies: 1, holders: [] },
  );
  assert.deepEqual(c.chosen, ['http://near']);
  assert.deepEqual(c.fallbacks, ['http://far']);
  assert.match(c.reasons.get('http://down')!, /^skipped: down: connect ECONNREFUSED/);
  assert.match(c.reasons.get('http://full')!, /^skipped: 1\.50 MiB free, the segment needs 2\.00 MiB with the safety margin/);
  assert.match(c.reasons.get('http://far')!, /^not chosen: RTT 150\.0 ms/);
  assert.match(c.reasons.get('http://near')!, /^chosen: RTT 2\.0 ms, the nearest/);
});

test('the margin: at least 1 MiB, else 10 % of the segment; bytes in flight count against free space', () => {
  assert.equal(neededBytes(1000), 1000 + SAFETY_MIN_BYTES);
  assert.equal(neededBytes(100 * MiB), 110 * MiB);
  const c = choose([cand('http://a', { freeBytes: 20 * MiB, inFlightBytes: 15 * MiB }), cand('http://b', { rttMs: 40 })], {
    bytes: 5 * MiB,
    copies: 1,
    holders: [],
  });
  assert.deepEqual(c.chosen, ['http://b']);
  assert.match(c.reasons.get('http://a')!, /after transfers under way/);
});

test('near targets tie: same zone first, then the least loaded per weight', () => {
  const zone = choose([cand('http://a', { zone: 'z1', rttMs: 1 }), cand('http://b', { zone: 'z2', rttMs: 3 })], {
    bytes: 1,
    copies: 1,
    holders: [],
    localZone: 'z2',
  });
  assert.deepEqual(zone.chosen, ['http://b']);
  assert.match(zone.reasons.get('http://b')!, /same zone/);
  const weight = choose([cand('http://a', { sentBytes: 100 }), cand('http://b', { sentBytes: 150, weight: 2 })], { bytes: 1, copies: 1, holders: [] });
  assert.deepEqual(weight.chosen, ['http://b'], '150 bytes per 2 weight is less than 100 per 1');
  const far = choose([cand('http://a', { zone: 'z1', rttMs: 1 }), cand('http://b', { zone: 'z2', rttMs: 90 })], {
    bytes: 1,
    copies: 1,
    holders: [],
    localZone: 'z2',
  });
  assert.deepEqual(far.chosen, ['http://a'], 'latency comes before the zone');
});

test('copies go to distinct zones; holders count and take their zones', () => {
  const cands = [cand('http://a1', { zone: 'a' }), cand('http://a2', { zone: 'a' }), cand('http://b1', { zone: 'b', rttMs: 30 })];
  assert.deepEqual(choose(cands, { bytes: 1, copies: 2, holders: [] }).chosen, ['http://a1', 'http://b1']);
  const held = choose(cands, { bytes: 1, copies: 2, holders: ['http://b1'] });
  assert.deepEqual(held.chosen, ['http://a1']);
  assert.equal(held.reasons.get('http://b1'), 'holds a copy already');
  assert.match(held.reasons.get('http://a2')!, /not chosen/);
  assert.deepEqual(choose(cands, { bytes: 1, copies: 2, holders: ['http://a1', 'http://b1'] }).chosen, []);
  assert.deepEqual(choose(cands, { bytes: 1, copies: 1, holders: [], exclude: new Set(['http://a1']) }).chosen, ['http://a2']);
});

test('druid.backup.targets: JSON list of URLs or objects; duplicates, bad entries and too many copies refused', () => {
  assert.deepEqual(parseTargetsSetting('["http://a:8484/", {"url": "http://b:8484", "zone": "z2", "weight": 2}]', 'k'), [
    { url: 'http://a:8484', weight: 1 },
    { url: 'http://b:8484', zone: 'z2', weight: 2 },
  ]);
  assert.throws(() => parseTargetsSetting('http://a', 'k'), /not valid JSON/);
  assert.throws(() => parseTargetsSetting('[]', 'k'), /empty/);
  assert.throws(() => parseTargetsSetting('["http://a", "http://a/"]', 'k'), /listed twice/);
  assert.throws(() => parseTargetsSetting('[{"url":"http://u:p@a"}]', 'k'), /credentials/);
  assert.throws(() => parseTargetsSetting('[{"url":"http://a","zone":"a b"}]', 'k'), /zone/);
  const specs = parseTargetsSetting('[{"url":"http://a","zone":"z"},{"url":"http://b","zone":"z"},"http://c"]', 'k');
  checkCopies(2, specs, 'copies');
  assert.throws(() => checkCopies(3, specs, 'copies'), /only 2 distinct zones/);
  assert.throws(() => checkCopies(4, specs, 'copies'), /only 3 targets/);
});

test('stats that make no sense are named', () => {
  assert.equal(statsProblem({ segments: 1, bytes: 2, freeBytes: 3 }), undefined);
  assert.equal(statsProblem({ segments: 1, bytes: 2, freeBytes: 3, quotaBytes: 10 }), undefined);
  assert.match(statsProblem({ segments: 1, bytes: 2, freeBytes: -1 })!, /freeBytes is -1/);
  assert.match(statsProblem({ segments: '1', bytes: 2, freeBytes: 1 })!, /segments/);
  assert.match(statsProblem([])!, /not a JSON object/);
  assert.match(statsProblem({ segments: 1, bytes: 2, freeBytes: 1, quotaBytes: 1.5 })!, /quotaBytes/);
});
