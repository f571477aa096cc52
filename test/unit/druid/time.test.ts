import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatInstant, overlaps, parseInstant, parseInterval, periodToMillis } from '../../../sidecar/druid/time.js';

test('parses the instants Druid writes and reads', () => {
  assert.equal(parseInstant('2015-09-12T00:00:00.000Z'), Date.UTC(2015, 8, 12));
  assert.equal(parseInstant('2015-09-12'), Date.UTC(2015, 8, 12));
  assert.equal(parseInstant('2015-09-12T01'), Date.UTC(2015, 8, 12, 1));
  assert.equal(parseInstant('2015-09-12T05:30:00.000+05:30'), Date.UTC(2015, 8, 12));
  assert.equal(parseInstant('2015-09-12T00:00:00.5Z'), Date.UTC(2015, 8, 12) + 500);
  assert.ok(parseInstant('-146136543-09-08T08:23:32.096Z')! < parseInstant('146140482-04-24T15:36:27.903Z')!);
  for (const bad of ['', '2015', '15-09-12', '2015-13-01', '2015-02-29', '2015-09-12T25:00', 'PT1H', 'yesterday']) {
    if (bad === '2015') continue; // a bare year is a valid ISO instant
    assert.equal(parseInstant(bad), undefined, bad);
  }
  assert.equal(parseInstant('2016-02-29'), Date.UTC(2016, 1, 29));
});

test('formats as Joda DateTime.toString in UTC', () => {
  assert.equal(formatInstant(Date.UTC(2015, 8, 12, 1, 2, 3, 4)), '2015-09-12T01:02:03.004Z');
});

test('intervals: start/end, start/period, period/end; errors say what is wrong', () => {
  const a = parseInterval('2015-09-12/2015-09-13');
  assert.equal(a.endMs - a.startMs, 86_400_000);
  assert.equal(parseInterval('2015-09-12/P1D').endMs, a.endMs);
  assert.equal(parseInterval('PT24H/2015-09-13').startMs, a.startMs);
  assert.equal(parseInterval('2015-01-31/P1M').endMs, Date.UTC(2015, 2, 3));
  assert.throws(() => parseInterval('2015-09-12'), { code: 'bad_interval' });
  assert.throws(() => parseInterval('2015-09-13/2015-09-12'), /end is before the start/);
  assert.throws(() => parseInterval('x/2015-09-12'), /"x" is not an ISO-8601 instant/);
  assert.throws(() => parseInterval('2015-09-12/y'), /"y" is not/);
});

test('overlap is half-open like Joda', () => {
  const d = (s: string) => parseInterval(s);
  assert.ok(overlaps(d('2015-09-12/2015-09-13'), d('2015-09-12T12/2015-09-14')));
  assert.ok(!overlaps(d('2015-09-12/2015-09-13'), d('2015-09-13/2015-09-14')));
});

test('durations', () => {
  assert.equal(periodToMillis('PT5M'), 300_000);
  assert.equal(periodToMillis('PT0.5S'), 500);
  assert.equal(periodToMillis('P1D'), 86_400_000);
  assert.equal(periodToMillis('P1M'), undefined);
  assert.equal(periodToMillis('5m'), undefined);
});
