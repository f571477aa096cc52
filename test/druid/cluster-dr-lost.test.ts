/**
 * **Metadata store and deep storage lost**, on a real Apache Druid 33 (issue 22): two data sources ingested, a
 * retention rule, a compaction config and a Coordinator dynamic config set, every segment backed up by the
 * Historical's sidecar into a target, a snapshot taken. Then the disaster: the cluster stopped, its metadata store
 * (Derby), deep storage, ZooKeeper's data, the segment cache and the Historical sidecar's state deleted, an empty
 * cluster started (with the druid-backup extension), the cluster sidecar on a new state directory. `cluster-restore
 * --snapshot ID`, through the CLI: the dry run asserted step by step and changing nothing; the real run gives the
 * same SQL answers for both data sources, the rules and the compaction config read back as Druid returned them
 * before, the post-restore check succeeded; a second run plans nothing and changes nothing.
 *
 * Its own cluster (port offset 1000 unless DRUID_PORT_OFFSET says otherwise, its own folder under .cache).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import type { StepResult } from '../../sidecar/cluster/restore/step.js';
import type { Answer } from './dr.js';
import { brief, DrCluster, filesBelow, hashesBelow, indexSpec, rowsOf, STEP_TIMEOUT, stepOf } from './dr.js';

const CLICKS = 'clicks';
const VIEWS = 'views';

describe('metadata store and deep storage lost: a real Druid 33 rebuilt by cluster-restore', { concurrency: false, timeout: 3 * 3_600_000 }, () => {
  const dr = new DrCluster('dr-lost', process.env.DRUID_PORT_OFFSET ?? '1000');
  let broken: string | undefined;
  let snapshot: { id: string; time: string; dataSources: Array<{ name: string; bytes: number; segments: number }> } | undefined;
  const answers: Record<string, Answer> = {};
  const druidSaid: Record<string, string> = {};
  const usedBefore: Record<string, string[]> = {};
  const readBack = async () => ({
    rules: (await dr.druidText('/druid/coordinator/v1/rules')).text,
    compaction: (await dr.druidText('/druid/coordinator/v1/config/compaction')).text,
    dynamic: (await dr.druidText('/druid/coordinator/v1/config')).text,
  });

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

  step('two data sources ingested, a rule, a compaction config and a dynamic config set, backed up and snapshotted', async () => {
    await dr.task(indexSpec(CLICKS, rowsOf(1)));
    await dr.task(indexSpec(VIEWS, rowsOf(2)));
    for (const ds of [CLICKS, VIEWS]) {
      answers[ds] = await dr.served(ds);
      assert.equal(answers[ds].c, 9);
      usedBefore[ds] = await dr.used(ds);
      assert.equal(usedBefore[ds].length, 3);
    }
    await dr.post(`/druid/coordinator/v1/rules/${CLICKS}`, [{ type: 'loadByPeriod', period: 'P5000Y', tieredReplicants: { _default_tier: 1 } }, { type: 'dropForever' }]);
    // A skip offset far in the past keeps the Coordinator from compacting by itself while the test runs.
    await dr.post('/druid/coordinator/v1/config/compaction', { dataSource: VIEWS, skipOffsetFromLatest: 'P1000Y', inputSegmentSizeBytes: 123_456_789 });
    const dynamic = await dr.druidJson<Record<string, unknown>>('/druid/coordinator/v1/config');
    await dr.post('/druid/coordinator/v1/config', { ...dynamic, maxSegmentsToMove: 7 });
    Object.assign(druidSaid, await readBack());
    assert.match(druidSaid.rules!, /"clicks":\[\{[^\]]*"loadByPeriod"/);
    assert.match(druidSaid.compaction!, /"inputSegmentSizeBytes":123456789/);
    assert.match(druidSaid.dynamic!, /"maxSegmentsToMove":7/);
    snapshot = await dr.snapshot({ [CLICKS]: 9, [VIEWS]: 9 });
  });

  step('the disaster: metadata store, deep storage and every cache gone; an empty cluster answers for neither data source', async () => {
    await dr.loseEverything();
    await dr.startClusterSidecar('new-cluster-state');
    for (const ds of [CLICKS, VIEWS]) {
      assert.equal(await dr.gone(ds), true, `${ds} is gone`);
      assert.deepEqual(await dr.used(ds), []);
    }
    assert.deepEqual(filesBelow(dr.druid.DRUID_DEEP_STORAGE_DIR), [], 'deep storage is empty');
    assert.equal((await dr.druidText(`/druid/coordinator/v1/rules/${CLICKS}`)).text, '[]');
    assert.doesNotMatch((await dr.druidText('/druid/coordinator/v1/config')).text, /"maxSegmentsToMove":7/);
  });

  step('the dry run says what each step would do, and changes nothing', async () => {
    const plan = await dr.dryRun(['--snapshot', snapshot!.id]);
    assert.equal(plan.snapshot.id, snapshot!.id);
    assert.equal(plan.refused, false, JSON.stringify(plan));
    assert.deepEqual(plan.dataSources, [CLICKS, VIEWS]);
    assert.deepEqual(
      plan.steps.map((s) => [s.step, s.done]),
      [
        ['deep-storage', false],
        ['rollback', true],
        ['metadata-rows', false],
        ['druid-metadata', false],
        ['check', true],
      ],
    );
    const bytes = (ds: string) => snapshot!.dataSources.find((d) => d.name === ds)!.bytes;
    assert.deepEqual(brief(plan, 'deep-storage'), [
      ['write to deep storage', CLICKS, 3],
      ['write to deep storage', VIEWS, 3],
    ]);
    assert.deepEqual(
      stepOf(plan, 'deep-storage').items.map((i) => i.bytes),
      [bytes(CLICKS), bytes(VIEWS)],
    );
    assert.deepEqual(brief(plan, 'rollback'), []);
    assert.deepEqual(brief(plan, 'metadata-rows'), [
      ['insert rows', CLICKS, 3],
      ['insert rows', VIEWS, 3],
    ]);
    assert.deepEqual(
      stepOf(plan, 'druid-metadata').items.map((i) => [i.action, i.subject, i.detail]),
      [
        ['set rules', CLICKS, 'now: no rules; in the snapshot: loadByPeriod, dropForever'],
        ['set compaction config', VIEWS, 'none now'],
        ['set dynamic config', 'coordinatorDynamicConfig', 'differs in maxSegmentsToMove'],
      ],
    );
    assert.deepEqual(brief(plan, 'check'), [
      ['check loaded and rows', CLICKS, 3],
      ['check loaded and rows', VIEWS, 3],
    ]);
    assert.deepEqual(
      plan.steps.flatMap((s) => s.refusals),
      [],
    );
    const text = await dr.cli(['--snapshot', snapshot!.id, '--dry-run']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /1\. deep-storage: to do\n {3}write to deep storage: 6 segments/);
    assert.match(text.stdout, /3\. metadata-rows: to do\n {3}insert rows: 6 segments/);
    for (const ds of [CLICKS, VIEWS]) assert.deepEqual(await dr.used(ds), [], 'a dry run changes nothing');
    assert.deepEqual(filesBelow(dr.druid.DRUID_DEEP_STORAGE_DIR), []);
  });

  step('cluster-restore --snapshot: the same answers, rules, compaction config and dynamic config; the check succeeded', async () => {
    const started = Date.now();
    const r = await dr.run(['--snapshot', snapshot!.id]);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.equal(r.job.state, 'succeeded', JSON.stringify(r.job.errors));
    const results = r.job.result!.results as StepResult[];
    assert.deepEqual(
      results.map((s) => [s.step, s.items.map((i) => `${i.action} ${i.subject}: ${i.outcome}`)]),
      [
        ['deep-storage', [`write to deep storage ${CLICKS}: done`, `write to deep storage ${VIEWS}: done`]],
        ['rollback', []],
        ['metadata-rows', [`insert rows ${CLICKS}: done`, `insert rows ${VIEWS}: done`]],
        ['druid-metadata', [`set rules ${CLICKS}: done`, `set compaction config ${VIEWS}: done`, 'set dynamic config coordinatorDynamicConfig: done']],
        ['check', [`check loaded and rows ${CLICKS}: done`, `check loaded and rows ${VIEWS}: done`]],
      ],
    );
    process.stderr.write(`cluster-restore of the lost cluster took ${Math.round((Date.now() - started) / 1000)} s\n`);
    for (const ds of [CLICKS, VIEWS]) {
      assert.deepEqual(await dr.served(ds), answers[ds], `${ds}: the same SQL answer`);
      assert.deepEqual(await dr.used(ds), usedBefore[ds], `${ds}: the same segments`);
    }
    const now = await readBack();
    assert.equal(now.rules, druidSaid.rules, 'the rules as Druid returned them');
    assert.equal(now.compaction, druidSaid.compaction, 'the compaction config as Druid returned it');
    assert.equal(now.dynamic, druidSaid.dynamic, "the Coordinator's dynamic config as Druid returned it");
    assert.ok(filesBelow(path.join(dr.druid.DRUID_DEEP_STORAGE_DIR, CLICKS)).length > 0, 'deep storage rebuilt');
  });

  step('a second run plans nothing and changes nothing', async () => {
    const plan = await dr.dryRun(['--snapshot', snapshot!.id]);
    assert.deepEqual(
      plan.steps.map((s) => [s.step, s.done, s.step === 'check' ? [] : s.items.map((i) => i.action)]),
      [
        ['deep-storage', true, ['already whole in deep storage', 'already whole in deep storage']],
        ['rollback', true, []],
        ['metadata-rows', true, []],
        ['druid-metadata', true, []],
        ['check', true, []],
      ],
    );
    const deep = hashesBelow(dr.druid.DRUID_DEEP_STORAGE_DIR);
    const before_ = await readBack();
    const r = await dr.run(['--snapshot', snapshot!.id]);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const results = r.job.result!.results as StepResult[];
    assert.deepEqual(
      results.flatMap((s) => s.items.filter((i) => i.outcome === 'done' && s.step !== 'check').map((i) => `${s.step}: ${i.action} ${i.subject}`)),
      [],
      'nothing was done but the check',
    );
    for (const ds of [CLICKS, VIEWS]) {
      assert.deepEqual(await dr.used(ds), usedBefore[ds]);
      assert.deepEqual(await dr.answer(ds), answers[ds]);
    }
    assert.deepEqual(hashesBelow(dr.druid.DRUID_DEEP_STORAGE_DIR), deep, 'deep storage byte for byte');
    assert.deepEqual(await readBack(), before_);
  });
});
