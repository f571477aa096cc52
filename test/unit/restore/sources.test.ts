import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decide, explainVerdict } from '../../../sidecar/restore/sources.js';

const id = 'wikipedia_2015-09-12T00:00:00.000Z_2015-09-12T01:00:00.000Z_v1';

test('the four cases of a lost segment, from where its copies are', () => {
  const none = { good: [], damaged: [], unreachable: [], absent: [] };
  assert.equal(decide(id, { ...none, absent: ['http://a', 'http://b'] }).case, 'no_backup');
  assert.equal(decide(id, { ...none, good: ['http://b'], damaged: [{ target: 'http://a', problem: 'x' }] }).case, 'restorable');

  // A holder down is never "no backup": the segment waits on the holders the records know, else on every target down.
  const down = decide(id, {
    ...none,
    absent: ['http://c'],
    damaged: [{ target: 'http://a', problem: '00000.smoosh has sha256 1, the manifest 2' }],
    unreachable: [
      { target: 'http://b', why: 'ECONNREFUSED', holder: true },
      { target: 'http://d', why: 'ECONNREFUSED', holder: false },
    ],
  });
  assert.equal(down.case, 'holders_unreachable');
  assert.deepEqual(down.waitOn, ['http://b']);
  assert.match(explainVerdict(down), /unreachable.*waiting for one of http:\/\/b.*damaged: http:\/\/a \(00000\.smoosh/);
  assert.deepEqual(decide(id, { ...none, unreachable: [{ target: 'http://d', why: 'timeout', holder: false }] }).waitOn, ['http://d']);

  const rotten = decide(id, {
    ...none,
    damaged: [
      { target: 'http://a', problem: '00000.smoosh differs' },
      { target: 'http://b', problem: 'meta.smoosh differs' },
    ],
  });
  assert.equal(rotten.case, 'copies_damaged');
  assert.match(
    explainVerdict(rotten),
    /every reachable copy is damaged.*http:\/\/a \(00000\.smoosh differs\).*http:\/\/b \(meta\.smoosh differs\).*unrecoverable from backups/,
  );
});
