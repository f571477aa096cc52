/**
 * **A cluster-restore killed half-way, then run again**, on a real Apache Druid 33 (issue 22): two data sources
 * ingested, a retention rule set, committed metadata written for one of them through the druid-backup extension
 * (Druid's core ObjectMetadata: committed stream offsets without Kafka), snapshotted. Then the metadata store, deep
 * storage and every cache are lost twice:
 * - the first time `cluster-restore` runs uninterrupted: its end state is the reference (SQL answers, used and unused
 *   rows, every deep-storage file's SHA-256, the committed metadata, the rules), and its dry run shows the offsets it
 *   writes;
 * - the second time the cluster sidecar running the restore is killed with SIGKILL at a seeded random point inside
 *   the deep-storage or metadata-rows step (DBK_SEED repeats one; the seed and where it was killed are printed),
 *   started again on the same state directory, and `cluster-restore` run again: the end state must be exactly the
 *   reference, and a run after it plans nothing and changes nothing.
 *
 * Its own cluster (port offset 1200 unless DRUID_PORT_OFFSET says otherwise, its own folder under .cache).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import type { Job } from '../../sidecar/api.js';
import { unusedId } from '../../sidecar/cluster/restore/rollback.js';
import type { StepResult } from '../../sidecar/cluster/restore/step.js';
import type { Answer } from './dr.js';
import { seeded } from '../reliability/lib.js';
import { brief, DrCluster, filesBelow, hashesBelow, indexSpec, rowsOf, STEP_TIMEOUT, stepOf } from './dr.js';

const CLICKS = 'clicks';
const VIEWS = 'views';
const OFFSETS = '/druid-ext/druid-backup/v1/offsets';
/** What a stream supervisor would have committed: Druid's core ObjectMetadata, which needs no stream extension. */
const COMMITTED = { type: 'object', object: { 'partition-0': 42, 'partition-1': 7 } };

interface EndState {
  answers: Record<string, Answer>;
  used: Record<string, string[]>;
  unused: Record<string, string[]>;
  deep: Record<string, string>;
  offsets: string;
  rules: string;
}

describe('a cluster-restore killed half-way is finished by the next run, on a real Druid 33', { concurrency: false, timeout: 3 * 3_600_000 }, () => {
  const dr = new DrCluster('dr-interrupt', process.env.DRUID_PORT_OFFSET ?? '1200');
  const seed = Number(process.env.DBK_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const random = seeded(seed);
  let broken: string | undefined;
  let snapshot: { id: string } | undefined;
  let reference: EndState | undefined;
  const before_: Record<string, Answer> = {};
  const args = () => ['--snapshot', snapshot!.id];

  const unused = async (ds: string) => {
    const r = await dr.druidText(`/druid/coordinator/v1/metadata/datasources/${ds}/unusedSegments`);
    if (r.status === 404 || r.status === 204 || r.text === '') return [];
    assert.equal(r.status, 200, r.text);
    return (JSON.parse(r.text) as unknown[]).map((x) => unusedId(x) ?? `unreadable ${JSON.stringify(x)}`).sort();
  };
  const offsets = async () => {
    const r = await dr.druidText(`${OFFSETS}?dataSource=${CLICKS}&dataSource=${VIEWS}`);
    assert.equal(r.status, 200, r.text);
    return r.text;
  };
  const endState = async (): Promise<EndState> => {
    const s: EndState = { answers: {}, used: {}, unused: {}, deep: hashesBelow(dr.druid.DRUID_DEEP_STORAGE_DIR), offsets: await offsets(), rules: '' };
    for (const ds of [CLICKS, VIEWS]) {
      s.answers[ds] = await dr.served(ds);
      s.used[ds] = await dr.used(ds);
      s.unused[ds] = await unused(ds);
    }
    s.rules = (await dr.druidText('/druid/coordinator/v1/rules')).text;
    return s;
  };
  const lose = async (state: string) => {
    await dr.loseEverything();
    await dr.startClusterSidecar(state);
    for (const ds of [CLICKS, VIEWS]) assert.deepEqual(await dr.used(ds), []);
    assert.deepEqual(filesBelow(dr.druid.DRUID_DEEP_STORAGE_DIR), []);
    assert.equal(await offsets(), '{"dataSources":{"clicks":null,"views":null}}', 'the committed metadata went with the metadata store');
  };

  function step(name: string, fn: (t: TestContext) => Promise<void>): void {
    test(name, { timeout: STEP_TIMEOUT }, async (t) => {
      if (broken) return t.skip(`an earlier step failed: ${broken}`);
      try {
        await fn(t);
      } catch (e) {
        broken = name;
        dr.report(`step "${name}" failed (DBK_SEED=${seed})`);
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

  step('two data sources, a rule and committed metadata written through the extension, snapshotted', async () => {
    await dr.task(indexSpec(CLICKS, rowsOf(5)));
    await dr.task(indexSpec(VIEWS, rowsOf(6)));
    for (const ds of [CLICKS, VIEWS]) before_[ds] = await dr.served(ds);
    await dr.post(`/druid/coordinator/v1/rules/${CLICKS}`, [{ type: 'loadForever', tieredReplicants: { _default_tier: 1 } }]);
    // No supervisor ingests into it, so the extension writes; the same metadata again changes nothing.
    assert.deepEqual(await dr.post(OFFSETS, { dataSource: CLICKS, metadata: COMMITTED }), { dataSource: CLICKS, outcome: 'inserted' });
    assert.deepEqual(await dr.post(OFFSETS, { dataSource: CLICKS, metadata: COMMITTED }), { dataSource: CLICKS, outcome: 'unchanged' });
    const bad = await dr.druidText(OFFSETS, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ dataSource: CLICKS, metadata: { type: 'kafka' } }) });
    assert.equal(bad.status, 400, bad.text);
    assert.match(bad.text, /is the extension of its type, such as druid-kafka-indexing-service, loaded on this Overlord/);
    assert.deepEqual(JSON.parse(await offsets()), { dataSources: { [CLICKS]: COMMITTED, [VIEWS]: null } });
    snapshot = await dr.snapshot({ [CLICKS]: 9, [VIEWS]: 9 }, { dataSources: [CLICKS, VIEWS] });
  });

  step('lost once: the dry run shows the committed metadata it writes; the uninterrupted run is the reference', async () => {
    await lose('state-reference');
    const plan = await dr.dryRun(args());
    assert.equal(plan.refused, false, JSON.stringify(plan));
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
    assert.deepEqual(brief(plan, 'deep-storage'), [
      ['write to deep storage', CLICKS, 3],
      ['write to deep storage', VIEWS, 3],
    ]);
    assert.deepEqual(brief(plan, 'metadata-rows'), [
      ['insert rows', CLICKS, 3],
      ['insert rows', VIEWS, 3],
    ]);
    const offsetItem = stepOf(plan, 'druid-metadata').items.find((i) => i.action === 'write committed offsets');
    assert.deepEqual(offsetItem, { action: 'write committed offsets', subject: CLICKS, detail: `now: none; in the snapshot: ${JSON.stringify(COMMITTED)}` });
    assert.equal(await offsets(), '{"dataSources":{"clicks":null,"views":null}}', 'a dry run writes nothing');

    const r = await dr.run(args());
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.equal(r.job.state, 'succeeded', JSON.stringify(r.job.errors));
    const metadataStep = (r.job.result!.results as StepResult[]).find((s) => s.step === 'druid-metadata')!;
    assert.ok(metadataStep.items.some((i) => i.action === 'write committed offsets' && i.subject === CLICKS && i.outcome === 'done'));
    reference = await endState();
    assert.deepEqual(reference.answers, before_, 'the answers from before the disaster');
    assert.deepEqual(JSON.parse(reference.offsets), { dataSources: { [CLICKS]: COMMITTED, [VIEWS]: null } }, 'the committed metadata is back');
    assert.ok(Object.keys(reference.deep).length >= 6, JSON.stringify(reference.deep));
  });

  step('lost again, and the run killed with SIGKILL inside a step: the next run ends exactly as the uninterrupted one', async () => {
    await lose('state-killed');
    // Where to kill, from the seed: in deep-storage once k files of the reference's are written (staging counts:
    // a segment being received), or in metadata-rows a few ms after it starts on one of the two data sources.
    const inDeep = random() < 0.5;
    const files = Object.keys(reference!.deep).length;
    const k = 1 + Math.floor(random() * (files - 1));
    const subject = random() < 0.5 ? CLICKS : VIEWS;
    const delay = Math.floor(random() * 100);
    const where = inDeep ? `deep-storage, once ${k} of ${files} files are in deep storage` : `metadata-rows, ${delay} ms after it starts on ${subject}`;
    process.stderr.write(`DBK_SEED=${seed}: killing the cluster sidecar in ${where}\n`);
    const running = dr.run(args()).catch((e: unknown) => e);
    let seenAt: number | undefined;
    let last: Job | undefined;
    for (const deadline = Date.now() + 600_000; ; ) {
      assert.ok(Date.now() < deadline, `the restore never reached ${where}: last seen ${JSON.stringify(last?.progress)}`);
      if (inDeep) {
        if (filesBelow(dr.druid.DRUID_DEEP_STORAGE_DIR).length >= k) break;
      } else {
        const jobs = await dr.cluster!.get<{ items: Job[] }>('/data/v1/jobs').catch(() => undefined);
        const job = jobs?.items.find((j) => j.type === 'recovery' && j.state === 'running');
        if (job) last = job;
        if (seenAt === undefined && job?.progress.current === `metadata-rows: insert rows ${subject}`) seenAt = Date.now();
        if (seenAt !== undefined && Date.now() - seenAt >= delay) break;
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    await dr.cluster!.kill9();
    await running;
    const left = filesBelow(dr.druid.DRUID_DEEP_STORAGE_DIR);
    const staged = left.filter((f) => f.includes('/.druid-backup-')).length;
    // The Coordinator's view of the metadata store lags its poll period (5 s here).
    await new Promise((r) => setTimeout(r, 6000));
    const rows = (await dr.used(CLICKS)).length + (await dr.used(VIEWS)).length;
    const offsetsNow = await offsets();
    process.stderr.write(`killed: ${left.length} files in deep storage (${staged} in staging), ${rows} used rows of 6, offsets ${offsetsNow}\n`);
    assert.ok(left.length - staged < files || rows < 6 || offsetsNow !== reference!.offsets, 'the kill left the restore unfinished');

    // The same machine after the crash: the same state directory.
    await dr.startClusterSidecar('state-killed');
    const r = await dr.run(args());
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.equal(r.job.state, 'succeeded', JSON.stringify(r.job.errors));
    const now = await endState();
    assert.deepEqual(now.answers, reference!.answers, 'the same SQL answers');
    assert.deepEqual(now.used, reference!.used, 'the same used rows, none extra');
    assert.deepEqual(now.unused, reference!.unused, 'no unused row left behind');
    assert.deepEqual(now.deep, reference!.deep, 'deep storage byte for byte, nothing left of the killed run');
    assert.equal(now.offsets, reference!.offsets, 'the same committed metadata');
    assert.equal(now.rules, reference!.rules, 'the same rules');
  });

  step('a run after it plans nothing and changes nothing', async () => {
    const plan = await dr.dryRun(args());
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
    const r = await dr.run(args());
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.deepEqual(
      (r.job.result!.results as StepResult[]).flatMap((s) => s.items.filter((i) => i.outcome === 'done' && s.step !== 'check').map((i) => `${s.step}: ${i.action} ${i.subject}`)),
      [],
      'nothing was done but the check',
    );
    assert.deepEqual(await endState(), reference);
  });
});
