/**
 * `POST /data/v1/cluster/restore` between real sidecars, input checked before anything is done (issue 22): a cluster
 * sidecar with a snapshot in a target sidecar's store, and a Coordinator answering as Druid 33 does (test/helpers).
 * Each bad request gets one clear 4xx; a dry run answers the plan, here refusing segments whose loadSpec lies outside
 * the cluster sidecar's deep storage, and the CLI prints it and exits 1.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import type { ClusterRestorePlan, Job } from '../../sidecar/api.js';
import { HttpTarget } from '../../sidecar/store/http/target.js';
import { runCli } from '../helpers/cli.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { newToken, startSidecar, tmpDir, waitFor } from '../helpers/sidecar.js';
import { coordinator, seg } from '../helpers/snapshots.js';

describe('the cluster restore API', () => {
  let target: SidecarProcess;
  let cluster: SidecarProcess;
  let c: Awaited<ReturnType<typeof coordinator>>;
  let snapshot: string;
  const token = newToken();

  before(async () => {
    c = await coordinator();
    target = await startSidecar(['--store', tmpDir('dbk-crstore-')], { token });
    cluster = await startSidecar(['--coordinator', c.url, '--target', target.url], { token });
    const http = new HttpTarget(target.url, { token });
    for (const d of [1, 2]) await http.put(seg(d, 'v1'));
    c.used.push({ day: 1, version: 'v1' }, { day: 2, version: 'v1' });
    const r = await cluster.request<{ jobId: string }>('POST', '/data/v1/snapshots', {});
    assert.equal(r.status, 202, r.text);
    const job = await waitFor('the snapshot', async () => {
      const j = await cluster.get<Job>(`/data/v1/jobs/${r.json.jobId}`);
      return j.state === 'running' || j.state === 'queued' ? undefined : j;
    });
    assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
    snapshot = (job.result as { snapshot: string }).snapshot;
  });
  after(async () => {
    await cluster?.stop();
    await target?.stop();
    c?.close();
  });

  const post = (body: unknown) => cluster.request<{ error?: { code: string; message: string } } & ClusterRestorePlan>('POST', '/data/v1/cluster/restore', body);

  test('bad requests get one clear 4xx, before anything is done', async () => {
    const cases: Array<[unknown, number, RegExp]> = [
      [{ dryRun: true }, 400, /--snapshot ID\) or a time \(--as-of TIME\)/],
      [{ snapshot: snapshot, asOf: '2024-01-01T00:00:00Z', dryRun: true }, 400, /one of them/],
      [{ snapshot: '../../etc', dryRun: true }, 400, /pattern|snapshot/],
      [{ asOf: 'yesterday', dryRun: true }, 400, /not an ISO-8601 instant/],
      [{ asOf: '2000-01-01T00:00:00Z', dryRun: true }, 404, /no snapshot was taken at or before/],
      [{ snapshot: '20000101T000000Z-00000000', dryRun: true }, 404, /in none of the targets/],
      [{ snapshot, dataSources: ['nope'], dryRun: true }, 404, /has no data source "nope"; it has demo/],
      [{ snapshot, intervals: ['2024-01-02'], dryRun: true }, 400, /interval/],
      [{ snapshot, deepStorage: 'relative/dir', dryRun: true }, 400, /absolute directory/],
      [{ snapshot, deepStorage: 's3://someone-elses-bucket/x', dryRun: true }, 403, /neither this cluster's deep storage bucket/],
      [{ snapshot, checkTimeout: 'soon', dryRun: true }, 400, /not an ISO-8601 period/],
      [{ snapshot, target: 'http://169.254.169.254', dryRun: true }, 403, /not allowed|allowedTargets/],
      [{ snapshot, extra: 1 }, 400, /must NOT have additional properties|extra/],
      [{ snapshot, secrets: { 'supervisors[0].spec.password': { nested: 1 } }, dryRun: true }, 400, /secrets.*string|must be string/],
      [{ snapshot, secrets: ['hunter2'], dryRun: true }, 400, /secrets.*object|must be object/],
    ];
    for (const [body, status, message] of cases) {
      const r = await post(body);
      assert.equal(r.status, status, `${JSON.stringify(body)}: ${r.text}`);
      assert.match(r.json.error!.message, message, JSON.stringify(body));
    }
  });

  test('a dry run answers the plan; segments whose loadSpec is outside this deep storage are refused, and the CLI exits 1', async () => {
    const r = await post({ asOf: new Date(Date.now() + 60_000).toISOString(), dryRun: true });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.snapshot.id, snapshot);
    assert.deepEqual(r.json.dataSources, ['demo']);
    assert.equal(r.json.refused, true);
    const deep = r.json.steps.find((s) => s.step === 'deep-storage')!;
    assert.match(deep.refusals.join('\n'), /its loadSpec is local, but this node's deep storage is "local" with no druid.storage.storageDirectory/);
    const cli = await runCli(['cluster-restore', '--node', cluster.url, '--token', token, '--snapshot', snapshot]);
    assert.equal(cli.code, 1, cli.stderr);
    assert.match(cli.stdout, /1\. deep-storage: REFUSES/);
    assert.match(cli.stdout, /the plan refuses: nothing was done/);
    const jobs = await cluster.get<{ items: Job[] }>('/data/v1/jobs?type=recovery');
    assert.deepEqual(jobs.items, [], 'no job was started');
  });

  test("a secret given for the restore is used, never kept: the job keeps its path only, the state directory and the log hold no value", async () => {
    const value = `hunter2-${newToken()}`;
    const r = await post({ snapshot, secrets: { 'supervisors[0].spec.ioConfig.consumerProperties["sasl.jaas.config"]': value } });
    assert.equal(r.status, 202, r.text);
    const jobId = (r.json as unknown as { jobId: string }).jobId;
    const job = await waitFor('the restore job to end', async () => {
      const j = await cluster.get<Job>(`/data/v1/jobs/${jobId}`);
      return j.state === 'running' || j.state === 'queued' ? undefined : j;
    });
    assert.deepEqual(job.request.secrets, ['supervisors[0].spec.ioConfig.consumerProperties["sasl.jaas.config"]']);
    assert.doesNotMatch(JSON.stringify(job), new RegExp(value));
    const stored = spawnSync('grep', ['-rl', value, cluster.stateDir], { encoding: 'utf8' });
    assert.deepEqual([stored.status, stored.stdout], [1, ''], 'no file of the state directory holds the value');
    assert.doesNotMatch(cluster.logs(), new RegExp(value));
  });
});
