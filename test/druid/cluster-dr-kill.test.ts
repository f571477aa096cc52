/**
 * **Accidental kill**, on a real Apache Druid 33 (issue 22): two data sources ingested, backed up by the Historical's
 * sidecar into a target and snapshotted; one of them marked unused and a kill task run, so its segments are gone
 * from deep storage and from the metadata store (both asserted). `cluster-restore --data-source` it, through the CLI:
 * the dry run asserted step by step and changing nothing; the real run gives the same SQL answer and leaves the other
 * data source as it was; a second run plans nothing and changes nothing.
 *
 * Its own cluster (port offset 1100 unless DRUID_PORT_OFFSET says otherwise, its own folder under .cache).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import { unusedId } from '../../sidecar/cluster/restore/rollback.js';
import type { StepResult } from '../../sidecar/cluster/restore/step.js';
import { waitFor } from '../helpers/sidecar.js';
import type { Answer } from './dr.js';
import { brief, DrCluster, filesBelow, hashesBelow, indexSpec, rowsOf, STEP_TIMEOUT, stepOf } from './dr.js';

const KILLED = 'orders';
const KEPT = 'payments';

describe('accidental kill: a data source put back by cluster-restore --data-source on a real Druid 33', { concurrency: false, timeout: 3 * 3_600_000 }, () => {
  const dr = new DrCluster('dr-kill', process.env.DRUID_PORT_OFFSET ?? '1100');
  let broken: string | undefined;
  let snapshot: { id: string; time: string; dataSources: Array<{ name: string; bytes: number; segments: number }> } | undefined;
  const answers: Record<string, Answer> = {};
  const usedBefore: Record<string, string[]> = {};
  const unused = async (ds: string) => {
    const r = await dr.druidText(`/druid/coordinator/v1/metadata/datasources/${ds}/unusedSegments`);
    if (r.status === 404 || r.status === 204 || r.text === '') return [];
    assert.equal(r.status, 200, r.text);
    return (JSON.parse(r.text) as unknown[]).map(unusedId);
  };
  const deepFiles = (ds: string) => filesBelow(path.join(dr.druid.DRUID_DEEP_STORAGE_DIR, ds));

  function step(name: string, fn: (t: TestContext) => Promise<void>): void {
    test(name, { timeout: STEP_TIMEOUT }, async (t) => {
      if (broken) return t.skip(`an earlier step failed: ${broken}`);
      try {
        await fn(t);
      } catch (e) {
        broken = name;
        dr.report(`step "${name}" failed`);
        throw e;
      }
    });
  }

  before(
    async () => {
      try {
        await dr.start();
      } catch (e) {
        broken = 'starting the cluster';
        dr.report('starting the cluster failed');
        throw e;
      }
    },
    { timeout: STEP_TIMEOUT },
  );

  after(() => dr.stop(broken !== undefined), { timeout: 180_000 });

  step('two data sources ingested, backed up and snapshotted', async () => {
    await dr.task(indexSpec(KILLED, rowsOf(3)));
    await dr.task(indexSpec(KEPT, rowsOf(4)));
    for (const ds of [KILLED, KEPT]) {
      answers[ds] = await dr.served(ds);
      assert.equal(answers[ds].c, 9);
      usedBefore[ds] = await dr.used(ds);
      assert.equal(usedBefore[ds].length, 3);
    }
    snapshot = await dr.snapshot({ [KILLED]: 9, [KEPT]: 9 });
  });

  step('the accident: marked unused and killed, its segments are gone from deep storage and the metadata store', async () => {
    assert.ok(deepFiles(KILLED).length > 0);
    await dr.druidJson(`/druid/coordinator/v1/datasources/${KILLED}`, { method: 'DELETE' });
    await waitFor('the data source to go unused', async () => (await dr.used(KILLED)).length === 0, 120_000, 1000);
    await dr.task({ type: 'kill', dataSource: KILLED, interval: '1000-01-01/3000-01-01' });
    assert.deepEqual(await dr.used(KILLED), [], 'no used row');
    assert.deepEqual(await unused(KILLED), [], 'no unused row either: the kill deleted them');
    assert.deepEqual(deepFiles(KILLED), [], 'no file in deep storage');
    await waitFor(`the Broker to forget ${KILLED}`, () => dr.gone(KILLED), 600_000, 2000);
    assert.deepEqual(await dr.used(KEPT), usedBefore[KEPT]);
  });

  step('the dry run with --data-source says what each step would do, and changes nothing', async () => {
    const plan = await dr.dryRun(['--snapshot', snapshot!.id, '--data-source', KILLED]);
    assert.equal(plan.refused, false, JSON.stringify(plan));
    assert.deepEqual(plan.dataSources, [KILLED]);
    assert.deepEqual(
      plan.steps.map((s) => [s.step, s.done]),
      [
        ['deep-storage', false],
        ['rollback', true],
        ['metadata-rows', false],
        ['druid-metadata', true],
        ['check', true],
      ],
    );
    assert.deepEqual(brief(plan, 'deep-storage'), [['write to deep storage', KILLED, 3]]);
    assert.equal(stepOf(plan, 'deep-storage').items[0]!.bytes, snapshot!.dataSources.find((d) => d.name === KILLED)!.bytes);
    assert.deepEqual(brief(plan, 'rollback'), []);
    assert.deepEqual(brief(plan, 'metadata-rows'), [['insert rows', KILLED, 3]]);
    assert.deepEqual(brief(plan, 'druid-metadata'), [], 'a --data-source run leaves the cluster-wide settings alone');
    assert.deepEqual(brief(plan, 'check'), [['check loaded and rows', KILLED, 3]]);
    assert.match(stepOf(plan, 'check').items[0]!.detail!, /^9 rows recorded for 3 segment/);
    const text = await dr.cli(['--snapshot', snapshot!.id, '--data-source', KILLED, '--dry-run']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /3\. metadata-rows: to do\n {3}insert rows: 3 segments/);
    assert.deepEqual(await dr.used(KILLED), [], 'a dry run changes nothing');
    assert.deepEqual(deepFiles(KILLED), []);
  });

  step('cluster-restore --data-source: the same answer; the other data source untouched', async () => {
    const started = Date.now();
    const r = await dr.run(['--snapshot', snapshot!.id, '--data-source', KILLED]);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.equal(r.job.state, 'succeeded', JSON.stringify(r.job.errors));
    assert.deepEqual(
      (r.job.result!.results as StepResult[]).map((s) => [s.step, s.items.map((i) => `${i.action} ${i.subject}: ${i.outcome}`)]),
      [
        ['deep-storage', [`write to deep storage ${KILLED}: done`]],
        ['rollback', []],
        ['metadata-rows', [`insert rows ${KILLED}: done`]],
        ['druid-metadata', []],
        ['check', [`check loaded and rows ${KILLED}: done`]],
      ],
    );
    process.stderr.write(`cluster-restore of the killed data source took ${Math.round((Date.now() - started) / 1000)} s\n`);
    assert.deepEqual(await dr.served(KILLED), answers[KILLED]);
    assert.deepEqual(await dr.used(KILLED), usedBefore[KILLED], 'the same segments');
    assert.equal(deepFiles(KILLED).length > 0, true, 'back in deep storage');
    assert.deepEqual(await dr.used(KEPT), usedBefore[KEPT]);
    assert.deepEqual(await dr.answer(KEPT), answers[KEPT]);
  });

  step('a second run plans nothing and changes nothing', async () => {
    const args = ['--snapshot', snapshot!.id, '--data-source', KILLED];
    const plan = await dr.dryRun(args);
    assert.deepEqual(
      plan.steps.map((s) => [s.step, s.done, s.step === 'check' ? [] : s.items.map((i) => i.action)]),
      [
        ['deep-storage', true, ['already whole in deep storage']],
        ['rollback', true, []],
        ['metadata-rows', true, []],
        ['druid-metadata', true, []],
        ['check', true, []],
      ],
    );
    const deep = hashesBelow(dr.druid.DRUID_DEEP_STORAGE_DIR);
    const unusedBefore = { [KILLED]: await unused(KILLED), [KEPT]: await unused(KEPT) };
    const r = await dr.run(args);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.deepEqual(
      (r.job.result!.results as StepResult[]).flatMap((s) => s.items.filter((i) => i.outcome === 'done' && s.step !== 'check').map((i) => `${s.step}: ${i.action}`)),
      [],
      'nothing was done but the check',
    );
    assert.deepEqual(await dr.used(KILLED), usedBefore[KILLED]);
    assert.deepEqual(await dr.answer(KILLED), answers[KILLED]);
    assert.deepEqual(hashesBelow(dr.druid.DRUID_DEEP_STORAGE_DIR), deep, 'deep storage byte for byte, both data sources');
    assert.deepEqual({ [KILLED]: await unused(KILLED), [KEPT]: await unused(KEPT) }, unusedBefore, 'no row marked unused');
    assert.deepEqual(await dr.used(KEPT), usedBefore[KEPT]);
  });
});
