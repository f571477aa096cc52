/**
 * A cluster restore plan as the extension takes it from a sidecar (issue 22): an answer that is not a plan is one
 * clear error, a step that refuses makes the plan refused whatever its flag says, text that would be Markdown or
 * HTML stays literal in the preview, typed intervals are checked, and the two commands are on snapshot rows only.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { checkInterval, clusterPlanMarkdown, clusterPlanWords, parseClusterPlan, rollbackIntervals } from '../../../extension/views/clusterPlan.js';

const pkg = JSON.parse(readFileSync(path.resolve(__dirname, '../../../package.json'), 'utf8'));

const plan = (over: Record<string, unknown> = {}) => ({
  snapshot: { id: '20240101T000000Z-0123abcd', time: '2024-01-01T00:00:00Z', complete: true },
  target: 'http://t:8080',
  dataSources: ['demo'],
  intervals: [],
  steps: [
    { step: 'deep-storage', done: false, items: [{ action: 'write to deep storage', subject: 'demo', segments: 2, bytes: 2048 }], warnings: [], refusals: [] },
  ],
  refused: false,
  ...over,
});

test('an answer that is not a plan is one clear error', () => {
  const cases: unknown[] = [
    null,
    'plan',
    [],
    plan({ snapshot: undefined }),
    plan({ steps: 'none' }),
    plan({ dataSources: [1] }),
    plan({ steps: [{ step: 'x', done: true, items: [], warnings: [] }] }),
    plan({ steps: [{ step: 'x', done: true, items: [{ action: 'a', subject: 's', segments: -1 }], warnings: [], refusals: [] }] }),
    plan({ steps: [{ step: 'x', done: true, items: [{ action: 'a', subject: 's', bytes: '9' }], warnings: [], refusals: [] }] }),
  ];
  for (const c of cases) assert.throws(() => parseClusterPlan(c), /the sidecar answered no cluster restore plan/, JSON.stringify(c));
  assert.equal(parseClusterPlan(plan()).refused, false);
});

test('a step that refuses, or a plan without its flag, is refused: never offered to run', () => {
  const refusing = plan({ steps: [{ step: 'rollback', done: false, items: [], warnings: [], refusals: ['an ingestion task holds the interval'] }] });
  const p = parseClusterPlan(refusing);
  assert.equal(p.refused, true);
  const words = clusterPlanWords(p, 'Restore the cluster');
  assert.equal(words.refused, true);
  assert.match(words.detail, /⛔ Refused \(1\):\n {2}• rollback: an ingestion task holds the interval/);
  assert.equal(parseClusterPlan(plan({ refused: undefined })).refused, true);
});

test('every text from the sidecar stays literal in the Markdown plan', () => {
  const evil = '<img src=x onerror=alert(1)> [click](http://evil) `code` # heading';
  const p = parseClusterPlan(
    plan({
      dataSources: [evil],
      steps: [{ step: evil, done: false, items: [{ action: evil, subject: evil, detail: evil }], warnings: [evil], refusals: [] }],
    }),
  );
  const text = clusterPlanMarkdown(p, 'Restore the cluster');
  // Each character that could start markup comes escaped: none is left bare.
  assert.doesNotMatch(text, /(^|[^\\])(<img|\]\(http|`code)/m, text);
  assert.ok(text.includes('\\<img src\\=x onerror\\=alert\\(1\\)\\>'), text);
  // Ten refusals in the modal: eight listed, the rest counted.
  const many = parseClusterPlan(
    plan({ steps: [{ step: 's', done: false, items: [], warnings: [], refusals: Array.from({ length: 10 }, (_, i) => `r${i}`) }] }),
  );
  assert.match(clusterPlanWords(many, 'x').detail, /• s: r7\n {2}…and 2 more \(Show Plan lists every one\)/);
});

test('rollback intervals come from the segments of that data source only; typed intervals are checked', () => {
  const item = (subject: string, detail: string) => ({ action: 'would mark unused with --interval', subject, segments: 1, bytes: 1, detail });
  const p = parseClusterPlan(
    plan({
      dataSources: ['a', 'a_b'],
      steps: [
        {
          step: 'rollback',
          done: true,
          items: [
            item('a_b_2024-01-01T00:00:00.000Z_2024-01-02T00:00:00.000Z_v2', 'a_b: used now, not in the snapshot; left used'),
            item('a_2024-01-03T00:00:00.000Z_2024-01-04T00:00:00.000Z_v2', 'a: used now, not in the snapshot; left used'),
            item('a_not-a-time_2024-01-04T00:00:00.000Z_v2', 'a: used now'),
          ],
          warnings: [],
          refusals: [],
        },
      ],
    }),
  );
  assert.deepEqual(rollbackIntervals(p, 'a'), ['2024-01-03T00:00:00.000Z/2024-01-04T00:00:00.000Z']);
  assert.deepEqual(rollbackIntervals(p, 'a_b'), ['2024-01-01T00:00:00.000Z/2024-01-02T00:00:00.000Z']);
  assert.equal(checkInterval(' 2024-01-01/2024-01-02 '), '2024-01-01/2024-01-02');
  for (const bad of ['2024-01-02/2024-01-01', '2024-01-01', 'a/b', '2024-01-01/2024-01-02/2024-01-03']) assert.equal(checkInterval(bad), undefined, bad);
});

test('both commands are on snapshot rows of the Backups view, and hidden from the palette', () => {
  const menus = pkg.contributes.menus;
  for (const id of ['druidBackup.restoreCluster', 'druidBackup.rollBackDataSource']) {
    const entry = menus['view/item/context'].find((m: { command: string }) => m.command === id);
    assert.equal(entry.when, 'view == druidBackup.backups && viewItem =~ /^snapshot\\b/');
    assert.equal(menus.commandPalette.find((m: { command: string }) => m.command === id).when, 'false');
  }
});
