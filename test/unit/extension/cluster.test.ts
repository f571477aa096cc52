/** The extension's model of the nodes: settings parsing, events applied to what is loaded, batched changes. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SidecarClient } from '../../../extension/client.js';
import { type Change, Cluster, consoleUrlOf, parseNodes, SEGMENT_GROUPING } from '../../../extension/cluster.js';
import { backoffDelay, parseEvent } from '../../../extension/live.js';
import { GroupedIndex } from '../../../extension/tree/index.js';
import { job, segment } from './fixtures.js';

test('druidBackup.nodes: URLs or objects, normalized, duplicates and bad entries reported', () => {
  const warnings: string[] = [];
  const nodes = parseNodes(
    [
      'http://h1:8484/',
      { url: 'https://h2:8484', name: 'Historical 2', consoleUrl: 'http://router:8888' },
      'http://h1:8484',
      'ftp://x',
      'http://user:secret@h3:8484',
      { name: 'no url' },
      42,
    ],
    (m) => warnings.push(m),
  );
  assert.deepEqual(nodes, [
    { url: 'http://h1:8484', name: undefined, consoleUrl: undefined },
    { url: 'https://h2:8484', name: 'Historical 2', consoleUrl: 'http://router:8888/' },
  ]);
  assert.equal(warnings.length, 4);
  assert.match(warnings.join('\n'), /not an http\(s\) URL/);
  assert.match(warnings.join('\n'), /token prompt, not in the URL/);
  assert.ok(!warnings.join('\n').includes('secret'), 'a credential in a URL is never echoed');
  assert.deepEqual(
    parseNodes(undefined, () => {}),
    [],
  );
});

test('reconnect delays grow from 1 s to at most 30 s, with jitter', () => {
  assert.equal(
    backoffDelay(0, undefined, () => 0.5),
    1000,
  );
  assert.equal(
    backoffDelay(3, undefined, () => 0.5),
    8000,
  );
  assert.equal(
    backoffDelay(50, undefined, () => 0.5),
    30_000,
  );
  assert.equal(
    backoffDelay(0, undefined, () => 0),
    800,
  );
  assert.equal(
    backoffDelay(10, undefined, () => 1),
    36_000,
  );
});

test('only known events are applied', () => {
  assert.deepEqual(parseEvent('{"type":"segment-removed","segmentId":"x"}'), { type: 'segment-removed', segmentId: 'x' });
  assert.equal(parseEvent('{"type":"hello"}'), undefined);
  assert.equal(parseEvent('not json'), undefined);
  assert.equal(parseEvent('null'), undefined);
});

test('events change what is loaded, and a burst reaches the views as one batch', () => {
  const cluster = new Cluster(60_000);
  const url = 'http://127.0.0.1:1';
  // A real client for an address nothing listens on: these tests never call it.
  cluster.setNodes([{ url }], (c) => new SidecarClient(c.url, { timeoutMs: 1000, log: { info() {}, error() {} } }));
  const batches: Change[][] = [];
  cluster.onChange((c) => batches.push(c));
  cluster.flush();
  batches.length = 0;

  const e = cluster.get(url)!;
  const a = segment('wikipedia', 0);
  e.segments = GroupedIndex.of(SEGMENT_GROUPING, [a]);
  e.jobs = [];
  cluster.apply(url, { type: 'segment', segment: { ...a, backup: { state: 'pending' } } });
  cluster.apply(url, { type: 'segment', segment: segment('wikipedia', 1) });
  cluster.apply(url, { type: 'segment-removed', segmentId: a.id });
  cluster.apply(url, { type: 'segment-removed', segmentId: 'not-there' });
  cluster.apply(url, { type: 'job', job: job('j1') });
  cluster.apply(url, { type: 'job', job: job('j1', { state: 'succeeded' }) });
  cluster.apply('http://elsewhere', { type: 'job', job: job('j9') });
  assert.equal(batches.length, 0, 'nothing goes out before the debounce');
  cluster.flush();
  assert.equal(batches.length, 1);
  assert.deepEqual(
    batches[0]!.map((c) => [c.view, c.segmentId ?? c.jobId, c.structural]),
    [
      ['nodes', a.id, false],
      ['nodes', segment('wikipedia', 1).id, true],
      ['nodes', a.id, true],
      ['jobs', 'j1', true],
      ['jobs', 'j1', false],
    ],
  );
  assert.equal(e.segments.size, 1);
  assert.equal(e.jobs[0]!.state, 'succeeded');

  // Not loaded yet: events are left for the fresh read.
  e.segments = undefined;
  cluster.apply(url, { type: 'segment', segment: a });
  cluster.flush();
  assert.equal(batches.length, 1);

  // A node that goes away is dropped with what was loaded.
  assert.deepEqual(
    cluster.setNodes([], () => assert.fail()),
    { added: [], removed: [url] },
  );
  assert.equal(cluster.get(url), undefined);
  cluster.dispose();
});

test('a bucket a node backs up to becomes a target answered by that node, with its token, and goes with it', () => {
  const cluster = new Cluster(60_000);
  const url = 'http://127.0.0.1:1';
  cluster.setNodes([{ url }], (c) => new SidecarClient(c.url, { token: 't', timeoutMs: 1000, log: { info() {}, error() {} } }));
  const source = cluster.get(url)!;
  source.info = {
    name: 'historical-1:8083',
    version: '0.1.0',
    roles: ['source'],
    druid: { locations: [{ path: '/cache' }], layout: 'nested', deepStorage: { type: 'local', zip: false } },
    target: 's3://backups/druid',
    targetKind: { name: 's3', answeredByNode: true },
    startedAt: '2024-06-01T00:00:00.000Z',
  };
  cluster.syncBuckets();
  const bucket = cluster.get('s3://backups/druid')!;
  assert.equal(bucket.via, url);
  assert.deepEqual(bucket.info?.roles, ['target']);
  assert.equal(bucket.client.url, url, 'asked of the source');
  assert.equal(bucket.client.bucket, 's3://backups/druid');
  bucket.reset();
  assert.equal(bucket.info?.name, 's3://backups/druid', 'a reset keeps what a bucket is');

  // Settings change but keep the source: the bucket stays; the source goes: so does the bucket.
  cluster.setNodes([{ url, name: 'renamed' }], () => assert.fail('the source is kept'));
  assert.ok(cluster.get('s3://backups/druid'));
  assert.deepEqual(
    cluster.setNodes([], () => assert.fail()),
    { added: [], removed: [url] },
  );
  assert.deepEqual(cluster.list(), []);
  cluster.dispose();
});

test("the Druid console: the node's consoleUrl when it is http(s), else the Router's port on the host of the node's URL", () => {
  assert.equal(consoleUrlOf({ url: 'http://h1:8484', consoleUrl: 'https://druid.example.org/' }), 'https://druid.example.org/');
  assert.equal(consoleUrlOf({ url: 'http://historical-1:8083' }), 'http://historical-1:8888/unified-console.html');
  assert.equal(consoleUrlOf({ url: 'https://10.1.2.3:8484' }), 'http://10.1.2.3:8888/unified-console.html');
  assert.equal(consoleUrlOf({ url: 'http://[::1]:8484' }), 'http://[::1]:8888/unified-console.html');
  // A server's answer has no say: whatever its druid.host, the node's own settings decide.
  const served = { url: 'http://h1:8484', info: { druid: { host: 'evil.example:1/x?' } } };
  assert.equal(consoleUrlOf(served), 'http://h1:8888/unified-console.html');
  // A consoleUrl of another scheme, or with credentials, is not opened.
  for (const bad of ['javascript:alert(1)', 'file:///etc/passwd', 'command:workbench.action.terminal.new', 'vscode://x', 'http://u:p@h/', 'not a url'])
    assert.equal(consoleUrlOf({ url: 'http://h1:8484', consoleUrl: bad }), 'http://h1:8888/unified-console.html', bad);
  const warnings: string[] = [];
  const nodes = parseNodes(
    [
      { url: 'http://h1:8484', consoleUrl: 'javascript:alert(1)' },
      { url: 'http://h2:8484', consoleUrl: 'https://console.example/' },
    ],
    (m) => warnings.push(m),
  );
  assert.deepEqual(
    nodes.map((n) => n.consoleUrl),
    [undefined, 'https://console.example/'],
  );
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /consoleUrl of http:\/\/h1:8484 is not an http:\/\/ or https:\/\/ URL/);
});
