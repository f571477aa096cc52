/**
 * The cluster restore as the extension asks for it and shows it (issue 22), against real sidecars (no VS Code):
 * a target sidecar holding a snapshot, and a cluster sidecar (role `cluster`) whose deep storage is a local
 * directory. The Coordinator here is NOT one of our parts: it is a Druid stand-in (test/e2e/druidStandIn.ts), a small
 * HTTP server answering the few GETs the cluster sidecar makes to snapshot, plan and check, as Druid 33 does.
 * Checked: the client's dry run and its parsing, the modal's words and the Markdown plan (refusals and warnings
 * first, the sidecar's text literal), the recovery job started and followed to its end with its effect on disk, the
 * intervals a rollback is offered, and the sidecar's own errors for bad requests.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Job } from '../../sidecar/api.js';
import { HttpTarget } from '../../sidecar/store/http/target.js';
import { SidecarClient, SidecarRequestError } from '../../extension/client.js';
import { md } from '../../extension/tree/format.js';
import { clusterPlanMarkdown, clusterPlanWords, rollbackIntervals } from '../../extension/views/clusterPlan.js';
import { idOf } from '../helpers/snapshots.js';
import { clusterProperties, druidStandIn, segment } from './druidStandIn.js';
import { type SidecarProcess, startSidecar, tmpDir, waitFor } from '../helpers/sidecar.js';

const quiet = { info() {}, error() {} };
let dir: string;
let deep: string;
let target: SidecarProcess;
let cluster: SidecarProcess;
let c: Awaited<ReturnType<typeof druidStandIn>>;
let snapshot: string;

const client = (s: SidecarProcess) => new SidecarClient(s.url, { token: s.token, timeoutMs: 10_000, log: quiet });

before(async () => {
  dir = tmpDir('dbk-ext-cluster-');
  deep = path.join(dir, 'deep');
  mkdirSync(deep, { recursive: true });
  c = await druidStandIn(deep);
  target = await startSidecar(['--store', path.join(dir, 'store'), '--node-name', 'target-1'], { stateDir: path.join(dir, 'target-state') });
  const conf = path.join(dir, 'cluster.properties');
  writeFileSync(conf, clusterProperties(deep, c.url, target.url));
  cluster = await startSidecar(['--config', conf, '--node-name', 'cluster-1'], { token: target.token, stateDir: path.join(dir, 'cluster-state') });
  const http = new HttpTarget(target.url, { token: target.token });
  for (const d of [1, 2]) await http.put(segment(deep, d, 'v1'));
  c.used.push({ day: 1, version: 'v1' }, { day: 2, version: 'v1' });
  snapshot = await takeSnapshot();
});

after(async () => {
  await cluster?.stop();
  await target?.stop();
  c?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Follows a job to its end, as the Jobs view and the progress notification do. */
async function finished(s: SidecarProcess, jobId: string): Promise<Job> {
  return waitFor(`job ${jobId}`, async () => {
    const j = await client(s).job(jobId);
    return j.state === 'running' || j.state === 'queued' ? undefined : j;
  });
}

async function takeSnapshot(): Promise<string> {
  const { jobId } = (await cluster.request<{ jobId: string }>('POST', '/data/v1/snapshots', {})).json;
  const job = await finished(cluster, jobId);
  assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
  return (job.result as { snapshot: string }).snapshot;
}

/** A segment written back into local deep storage: its `index/` directory at the loadSpec. */
const written = (day: number, version: string) => existsSync(path.join(deep, `demo/${day}/${version}/0/index/00000.smoosh`));

test('deep storage lost: the dry run as the modal and the plan show it, the recovery job writes it back, and a second plan has nothing to do', async () => {
  const cc = client(cluster);
  assert.ok((await cc.node()).roles.includes('cluster'), 'the cluster sidecar has role cluster');
  assert.ok(
    (await cc.snapshots()).some((x) => x.id === snapshot),
    'the cluster sidecar lists the snapshot',
  );
  assert.equal(written(1, 'v1'), false);

  const plan = await cc.clusterRestorePlan({ snapshot });
  assert.equal(plan.refused, false);
  assert.deepEqual(
    plan.steps.map((x) => [x.step, x.done]),
    [
      ['deep-storage', false],
      ['rollback', true],
      ['metadata-rows', true],
      ['druid-metadata', true],
      ['check', true],
    ],
  );
  const words = clusterPlanWords(plan, 'Restore the cluster');
  assert.equal(words.title, `Restore the cluster from snapshot ${snapshot}?`);
  assert.equal(words.refused, false);
  assert.equal(words.nothingToDo, false);
  const detail = words.detail.split('\n');
  assert.ok(detail.includes('Intervals: all (nothing is marked unused).'), words.detail);
  assert.ok(detail.includes(`1. deep-storage: to do — write to deep storage: 2 segments, 32 B`), words.detail);
  assert.ok(detail.includes('2. rollback: nothing to do'), words.detail);
  // Warnings come before the steps: no Broker is configured, so the check compares no rows.
  const warn = detail.indexOf('⚠ Warnings (1):');
  assert.ok(warn > 0 && warn < detail.indexOf('Steps:'), words.detail);
  assert.match(detail[warn + 1]!, /^ {2}• check: no Broker is configured/);
  assert.ok(!words.detail.includes('Refused'), words.detail);

  const markdown = clusterPlanMarkdown(plan, 'Restore the cluster');
  assert.match(markdown, /^\*\*Dry run: nothing has been changed yet\.\*\*$/m);
  assert.match(markdown, /^## 1\. deep\\-storage: to do$/m);
  assert.match(markdown, /^### write to deep storage: 2 segments, 32 B$/m);
  assert.match(markdown, /^## ⚠ Warnings \(1\)$/m);

  // Confirmed: the job starts, is listed among the node's jobs (the Jobs view) and writes deep storage back.
  const { jobId } = await cc.clusterRestore({ snapshot });
  assert.ok(
    (await cc.jobs()).some((j) => j.id === jobId && j.type === 'recovery'),
    'the recovery job is listed',
  );
  const job = await finished(cluster, jobId);
  assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
  assert.ok(written(1, 'v1') && written(2, 'v1'), 'each segment written at its loadSpec');
  assert.ok(
    c.asked.some((a) => a.startsWith('GET /druid/coordinator/v1/datasources/demo/segments/')),
    'the post-restore check asked Druid',
  );

  const again = await cc.clusterRestorePlan({ snapshot });
  const second = clusterPlanWords(again, 'Restore the cluster');
  assert.equal(second.nothingToDo, true, second.detail);
  assert.equal(second.title, `The cluster already has what snapshot ${snapshot} holds: nothing to do.`);
});

test('roll back: the intervals offered are those a rollback would touch, and the plan with one lists what is marked unused', async () => {
  const cc = client(cluster);
  // A bad overwrite of day 1 after the snapshot: version v2 is used now.
  c.used.push({ day: 2, version: 'v2' });
  try {
    const survey = await cc.clusterRestorePlan({ snapshot, dataSources: ['demo'] });
    assert.deepEqual(rollbackIntervals(survey, 'demo'), ['2024-01-02T00:00:00.000Z/2024-01-03T00:00:00.000Z']);
    assert.deepEqual(rollbackIntervals(survey, 'dem'), [], 'another data source name that is a prefix takes nothing');
    const plan = await cc.clusterRestorePlan({ snapshot, dataSources: ['demo'], intervals: rollbackIntervals(survey, 'demo') });
    assert.deepEqual(plan.intervals, ['2024-01-02T00:00:00.000Z/2024-01-03T00:00:00.000Z']);
    const words = clusterPlanWords(plan, 'Roll back demo');
    assert.equal(words.title, `Roll back demo from snapshot ${snapshot}?`);
    assert.ok(words.detail.includes('Intervals: 2024-01-02/2024-01-03.'), words.detail);
    assert.match(words.detail, /^2\. rollback: to do — mark unused: 1 segment, 16 B/m);
    assert.ok(clusterPlanMarkdown(plan, 'Roll back demo').includes(`- ${md(idOf(2, 'v2'))} (1 segment, 16 B): ${md('demo: used now, not in the snapshot')}`));
  } finally {
    c.used.pop();
  }
});

test('a refused plan: refusals first in the modal and the plan, every text from the sidecar literal in Markdown, and nothing offered to run', async () => {
  const cc = client(cluster);
  // A segment in a deep storage the sidecar cannot write (HDFS).
  const hdfs = { type: 'hdfs', path: 'hdfs://nn/druid/demo/3/v1/0/index.zip' };
  await new HttpTarget(target.url, { token: target.token }).put(segment(deep, 3, 'v1', hdfs));
  c.used.push({ day: 3, version: 'v1', loadSpec: hdfs });
  try {
    const refusedSnapshot = await takeSnapshot();
    const plan = await cc.clusterRestorePlan({ snapshot: refusedSnapshot });
    assert.equal(plan.refused, true);
    const words = clusterPlanWords(plan, 'Restore the cluster');
    assert.equal(words.refused, true);
    assert.match(words.title, /^Restore the cluster from snapshot \S+ is refused: nothing can be done \(1 refusal\)\.$/);
    const detail = words.detail.split('\n');
    const refusedAt = detail.indexOf('⛔ Refused (1):');
    assert.ok(refusedAt > 0 && refusedAt < detail.indexOf('Steps:'), words.detail);
    assert.match(detail[refusedAt + 1]!, /^ {2}• deep-storage: .*hdfs/);
    assert.ok(detail.includes('1. deep-storage: REFUSED — already whole in deep storage: 2 segments, 32 B'), words.detail);
    const markdown = clusterPlanMarkdown(plan, 'Restore the cluster');
    assert.match(markdown, /^\*\*The plan is REFUSED/m);
    assert.ok(markdown.indexOf('## ⛔ Refusals (1)') < markdown.indexOf('## 1.'), markdown);
    // The sidecar's words are made literal: its quotes and parentheses are escaped, not read as Markdown.
    assert.match(markdown, /^- \*\*deep\\-storage\*\*: 1 segment with \\"hdfs\\" loadSpecs\\: only local and s3\\_zip/m);
  } finally {
    c.used.pop();
  }
});

test("bad requests come back as the sidecar's own error; a dry run on a target sidecar says it needs a Coordinator", async () => {
  const cc = client(cluster);
  await assert.rejects(
    cc.clusterRestorePlan({ snapshot, deepStorage: 's3://someone-elses-bucket/x' }),
    (e: unknown) => e instanceof SidecarRequestError && e.status === 403 && /neither this cluster's deep storage bucket/.test(e.message),
  );
  await assert.rejects(
    cc.clusterRestorePlan({ snapshot, dataSources: ['nope'] }),
    (e: unknown) => e instanceof SidecarRequestError && e.status === 404 && /has no data source "nope"/.test(e.message),
  );
  await assert.rejects(
    client(target).clusterRestorePlan({ snapshot }),
    (e: unknown) => e instanceof SidecarRequestError && e.status! >= 400 && e.status! < 500 && /needs the Coordinator/.test(e.message),
  );
});
