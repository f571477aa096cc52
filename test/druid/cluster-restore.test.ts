/**
 * Cluster restore on a real Apache Druid 33 (issue 22).
 *
 * A nano cluster (port offset 900 unless DRUID_PORT_OFFSET says otherwise, its own folder under .cache) runs the
 * sidecar beside its Historical, backing up into a target sidecar's store; a cluster sidecar (started here, with a
 * configuration of its own: the cluster's local deep storage, and Druid's S3 keys pointing at a VersityGW) takes
 * the snapshots and runs the restores.
 *
 * - **Bad overwrite rolled back**: ingest wikipedia and a second data source, snapshot; overwrite one day of
 *   wikipedia with other rows (index_parallel, appendToExisting=false) and see the answer change; the dry runs
 *   (without and with --interval) asserted step by step; `cluster-restore --as-of` the snapshot's time
 *   `--data-source wikipedia --interval` that day, through the CLI: the original answers are back, the bad segment is
 *   unused and its files still in deep storage, the other data source untouched; a second run changes nothing.
 * - **S3 deep storage**: the same snapshot restored with `--deep-storage s3://bucket/base` writes index.zip objects
 *   that Druid's own CompressionUtils (druid-processing, from Maven Central, run with `java`) unzips byte-identical
 *   to the backup; a second run writes nothing.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import type { ClusterRestorePlan, Job, JobAccepted } from '../../sidecar/api.js';
import { loadSpecAt } from '../../sidecar/cluster/restore/deepStorage.js';
import { unusedId } from '../../sidecar/cluster/restore/rollback.js';
import type { StepResult } from '../../sidecar/cluster/restore/step.js';
import type { DataSegment } from '../../sidecar/druid/descriptor.js';
import { parseSegmentId } from '../../sidecar/druid/segmentId.js';
import { segmentPath } from '../../sidecar/store/local/layout.js';
import { runCli } from '../helpers/cli.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { request, SIDECAR_JS, startSidecar, tmpDir, waitFor } from '../helpers/sidecar.js';
import type { VersityGw } from '../helpers/versitygw.js';
import { freePort, requireVersityGw, startVersityGw } from '../helpers/versitygw.js';
import type { DruidEnv } from './cluster.js';
import { configureCluster, ingest, REPO_ROOT, sql, SqlError, startCluster, stopCluster } from './cluster.js';
import { sha256File, tail } from './files.js';

requireVersityGw();

const WIKI = 'wikipedia';
const OTHER = 'other';
const DAY = '2015-09-13T00:00:00.000Z/2015-09-14T00:00:00.000Z';
const STEP_TIMEOUT = 15 * 60_000;
const BUCKET = 'restored-deep-storage';
const q = (s: string) => `'${s.replaceAll(`'`, `'\\''`)}'`;

type Answer = { c: number; s: number };

describe('cluster restore on a real Druid 33', { concurrency: false, timeout: 3_600_000 }, () => {
  let druid: DruidEnv;
  let home: string;
  let work: string;
  let storeDir: string;
  let target: SidecarProcess | undefined;
  let cluster: SidecarProcess | undefined;
  let s3: VersityGw | undefined;
  let broken: string | undefined;
  let snapshot: { id: string; time: string } | undefined;
  const before_: Record<string, Answer> = {};
  let otherUsedBefore: string[] = [];
  let badSegment: string | undefined;

  const coordinator = () => druid.DRUID_COORDINATOR_URL;
  const druidJson = async <T>(urlPath: string, init?: RequestInit): Promise<T> => {
    const res = await fetch(`${coordinator()}${urlPath}`, { ...init, signal: AbortSignal.timeout(30_000) });
    const text = await res.text();
    if (!res.ok) throw new Error(`${init?.method ?? 'GET'} ${urlPath}: ${res.status} ${text.slice(0, 500)}`);
    return (text ? JSON.parse(text) : undefined) as T;
  };
  const post = (urlPath: string, body: unknown) =>
    druidJson(urlPath, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  const used = (ds: string) => druidJson<string[]>(`/druid/coordinator/v1/metadata/datasources/${ds}/segments`);
  const answer = async (ds: string, where = ''): Promise<Answer> =>
    (await sql<Answer>(`SELECT COUNT(*) AS c, SUM(${ds === WIKI ? 'added' : 'v'}) AS s FROM ${ds}${where}`))[0]!;
  const dayAnswer = () => answer(WIKI, ` WHERE __time >= TIMESTAMP '2015-09-13' AND __time < TIMESTAMP '2015-09-14'`);

  async function task(spec: unknown): Promise<void> {
    const { task: id } = (await post('/druid/indexer/v1/task', spec)) as { task: string };
    await waitFor(
      `task ${id}`,
      async () => {
        const s = (await druidJson<{ status: { status: string } }>(`/druid/indexer/v1/task/${id}/status`)).status.status;
        if (s === 'FAILED') throw new Error(`task ${id} failed`);
        return s === 'SUCCESS';
      },
      600_000,
      1000,
    );
  }

  function indexSpec(ds: string, rows: object[], dimensions: string[], metric: string, interval?: string) {
    return {
      type: 'index_parallel',
      spec: {
        dataSchema: {
          dataSource: ds,
          timestampSpec: { column: 'time', format: 'iso' },
          dimensionsSpec: { dimensions },
          metricsSpec: [{ type: 'longSum', name: metric, fieldName: metric }],
          granularitySpec: {
            type: 'uniform',
            segmentGranularity: 'day',
            queryGranularity: 'none',
            rollup: false,
            ...(interval ? { intervals: [interval] } : {}),
          },
        },
        ioConfig: {
          type: 'index_parallel',
          inputSource: { type: 'inline', data: rows.map((r) => JSON.stringify(r)).join('\n') },
          inputFormat: { type: 'json' },
          appendToExisting: false,
        },
        tuningConfig: { type: 'index_parallel', maxNumConcurrentSubTasks: 1 },
      },
    };
  }

  /** Every used segment served and the SQL layer knowing the table: the answer, never a partial one. */
  async function served(ds: string, ask: () => Promise<Answer | undefined> = () => answer(ds)): Promise<Answer> {
    await waitFor(
      `every used segment of ${ds} loaded`,
      async () =>
        (
          await druidJson<Record<string, number>>(`/druid/coordinator/v1/datasources/${ds}/loadstatus?forceMetadataRefresh=true&interval=1000-01-01_3000-01-01`)
        )[ds] === 100,
      300_000,
      1000,
    );
    return waitFor(
      `the Broker to answer for ${ds}`,
      () =>
        ask().catch((e: unknown) => {
          if (e instanceof SqlError && /not found/i.test(e.body)) return undefined;
          throw e;
        }),
      300_000,
      1000,
    );
  }

  const api = <T>(method: string, urlPath: string, body?: unknown) => request<T>(cluster!.url, cluster!.token, method, urlPath, body);
  async function dryRun(body: Record<string, unknown>): Promise<ClusterRestorePlan> {
    const r = await api<ClusterRestorePlan>('POST', '/data/v1/cluster/restore', { ...body, dryRun: true });
    assert.equal(r.status, 200, r.text);
    return r.json;
  }
  const stepOf = (p: ClusterRestorePlan, name: string) => p.steps.find((s) => s.step === name)!;
  const brief = (p: ClusterRestorePlan, name: string) => stepOf(p, name).items.map((i) => [i.action, i.subject, i.segments ?? null]);
  const cli = (args: string[]) => runCli(['cluster-restore', '--node', cluster!.url, '--token', cluster!.token, ...args]);

  function report(why: string): void {
    const logs = druid?.DRUID_LOG_DIR;
    const parts = [`\n===== ${why} (cluster folder kept: ${home}) =====`];
    if (logs)
      for (const name of ['coordinator', 'historical', 'backup', 'indexer']) parts.push(`----- ${name}.log\n${tail(path.join(logs, `${name}.log`), 40)}`);
    if (cluster) parts.push(`----- cluster sidecar\n${cluster.logs().split('\n').slice(-40).join('\n')}`);
    process.stderr.write(parts.join('\n') + '\n');
  }

  function step(name: string, fn: (t: TestContext) => Promise<void>): void {
    test(name, { timeout: STEP_TIMEOUT }, async (t) => {
      if (broken) return t.skip(`an earlier step failed: ${broken}`);
      try {
        await fn(t);
      } catch (e) {
        broken = name;
        report(`step "${name}" failed`);
        throw e;
      }
    });
  }

  before(
    async () => {
      try {
        mkdirSync(path.join(REPO_ROOT, '.cache'), { recursive: true });
        home = mkdtempSync(path.join(REPO_ROOT, '.cache', 'druid-cluster-restore-'));
        work = tmpDir('dbk-cluster-restore-');
        storeDir = path.join(work, 'store');
        target = await startSidecar(['--store', storeDir, '--node-name', 'backup-target'], { stateDir: path.join(work, 'target-state'), fast: false });
        const tokenFile = path.join(work, 'token');
        writeFileSync(tokenFile, `${target.token}\n`, { mode: 0o600 });
        const historicalSidecarPort = await freePort();
        configureCluster({
          DRUID_DEV_HOME: home,
          DRUID_PORT_OFFSET: process.env.DRUID_PORT_OFFSET ?? '900',
          DRUID_EXTENSIONS_DIR: undefined,
          DRUID_COMMON_EXTRA: undefined,
          DRUID_HISTORICAL_EXTRA: [
            `druid.backup.port=${historicalSidecarPort}`,
            'druid.backup.bindAddress=127.0.0.1',
            `druid.backup.tokenFile=${tokenFile}`,
            `druid.backup.target=${target.url}`,
            'druid.backup.stateDir=var/druid-backup',
          ].join('\n'),
          DRUID_BACKUP_SIDECAR_CMD: `${q(process.execPath)} ${q(SIDECAR_JS)} sidecar --config conf/druid/historical/runtime.properties`,
        });
        druid = await startCluster();
        s3 = await startVersityGw();
        await s3.createBucket(BUCKET);
        // The cluster sidecar's own configuration: the cluster's deep storage as Druid's _common has it, and Druid's
        // S3 keys (read as Druid's S3 extension reads them) for the new cluster's deep storage.
        const conf = path.join(work, 'cluster-sidecar', 'runtime.properties');
        mkdirSync(path.dirname(conf), { recursive: true });
        writeFileSync(
          conf,
          [
            'druid.storage.type=local',
            `druid.storage.storageDirectory=${druid.DRUID_DEEP_STORAGE_DIR}`,
            `druid.storage.bucket=${BUCKET}`,
            `druid.s3.endpoint.url=${s3.endpoint}`,
            'druid.s3.endpoint.signingRegion=us-east-1',
            'druid.s3.enablePathStyleAccess=true',
            `druid.s3.accessKey=${s3.accessKey}`,
            'druid.s3.secretKey={"type":"environment","variable":"DBK_TEST_S3_SECRET"}',
            `druid.backup.coordinator=${druid.DRUID_COORDINATOR_URL}`,
            `druid.backup.broker=${druid.DRUID_BROKER_URL}`,
            `druid.backup.target=${target.url}`,
            'druid.backup.snapshotPeriod=PT0S',
          ].join('\n') + '\n',
        );
        cluster = await startSidecar(['--config', conf], {
          token: target.token,
          stateDir: path.join(work, 'cluster-state'),
          env: { DBK_TEST_S3_SECRET: s3.secretKey },
        });
        // Overshadowed segments go unused at once (not after 15 minutes), as on a cluster that has run for a while.
        const dynamic = await druidJson<Record<string, unknown>>('/druid/coordinator/v1/config');
        await post('/druid/coordinator/v1/config', { ...dynamic, millisToWaitBeforeDeleting: 0 });
      } catch (e) {
        broken = 'starting the cluster';
        report('starting the cluster failed');
        throw e;
      }
    },
    { timeout: STEP_TIMEOUT },
  );

  after(
    async () => {
      try {
        if (druid) await stopCluster();
      } finally {
        await cluster?.stop();
        await target?.stop();
        await s3?.close();
        if (!broken && !process.env.DBK_KEEP_TMP) {
          rmSync(home, { recursive: true, force: true });
          rmSync(work, { recursive: true, force: true });
        }
      }
    },
    { timeout: 120_000 },
  );

  step('two data sources ingested, backed up, and snapshotted with their row counts', async () => {
    assert.equal((await ingest()).c, 39_244);
    const rows = [12, 13, 14].flatMap((d) => [1, 2, 3].map((h) => ({ time: `2015-09-${d}T0${h}:00:00Z`, k: `k${h}`, v: d * 10 + h })));
    await task(indexSpec(OTHER, rows, ['k'], 'v'));
    before_[WIKI] = await served(WIKI);
    before_.day = await dayAnswer();
    before_[OTHER] = await served(OTHER);
    assert.equal(before_[OTHER]!.c, 9);
    otherUsedBefore = (await used(OTHER)).sort();
    // Until every used segment is backed up and the Broker knows every row count.
    const taken = await waitFor(
      'a complete snapshot with row counts',
      async () => {
        const r = await api<JobAccepted>('POST', '/data/v1/snapshots', {});
        assert.equal(r.status, 202, r.text);
        const job = await cluster!.waitForJob(r.json.jobId, 120_000);
        assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
        const s = await cluster!.get<{ id: string; time: string; complete: boolean; dataSources: Array<{ name: string; rows?: number }> }>(
          `/data/v1/snapshots/${String(job.result!.snapshot)}`,
        );
        const complete = s.complete && s.dataSources.find((d) => d.name === WIKI)?.rows === 39_244 && s.dataSources.find((d) => d.name === OTHER)?.rows === 9;
        if (complete) return s;
        await new Promise((r) => setTimeout(r, 3000));
        return undefined;
      },
      300_000,
      0,
    );
    snapshot = { id: taken.id, time: taken.time };
  });

  step('a bad overwrite of one day changes the answer', async () => {
    const old = (await used(WIKI)).filter((id) => id.startsWith(`${WIKI}_2015-09-13T`));
    assert.equal(old.length, 1);
    await task(
      indexSpec(
        WIKI,
        [1, 2, 3, 4, 5].map((h) => ({ time: `2015-09-13T0${h}:00:00Z`, channel: '#bad', page: 'Bad', added: 1 })),
        ['channel', 'page'],
        'added',
        DAY,
      ),
    );
    const day = await served(WIKI, async () => {
      const a = await dayAnswer();
      return a.c === before_.day!.c ? undefined : a;
    });
    assert.deepEqual(day, { c: 5, s: 5 });
    assert.notDeepEqual(await answer(WIKI), before_[WIKI]);
    // The old version goes unused (millisToWaitBeforeDeleting 0); the new one is the bad segment.
    const now = await waitFor(
      'the overshadowed version to go unused',
      async () => {
        const ids = await used(WIKI);
        return ids.includes(old[0]!) ? undefined : ids;
      },
      120_000,
      1000,
    );
    badSegment = now.find((id) => id.startsWith(`${WIKI}_2015-09-13T`));
    assert.ok(badSegment && badSegment !== old[0]);
  });

  step('the dry runs say what each step would do; without --interval nothing is marked unused', async () => {
    const wide = await dryRun({ asOf: snapshot!.time, dataSources: [WIKI] });
    assert.equal(wide.snapshot.id, snapshot!.id, '--as-of the snapshot time chooses it');
    assert.deepEqual(wide.dataSources, [WIKI]);
    assert.deepEqual(
      brief(wide, 'rollback').filter(([a]) => a !== 'mark used'),
      [['would mark unused with --interval', badSegment!, 1]],
    );

    const plan = await dryRun({ asOf: snapshot!.time, dataSources: [WIKI], intervals: [DAY] });
    assert.equal(plan.refused, false, JSON.stringify(plan));
    assert.deepEqual(
      plan.steps.map((s) => s.step),
      ['deep-storage', 'rollback', 'metadata-rows', 'druid-metadata', 'check'],
    );
    const deep = stepOf(plan, 'deep-storage');
    assert.equal(deep.done, true, 'the snapshot segment of the day is whole in local deep storage');
    assert.deepEqual(brief(plan, 'deep-storage'), [['already whole in deep storage', WIKI, 1]]);
    const rollback = stepOf(plan, 'rollback');
    assert.equal(rollback.done, false);
    assert.deepEqual(brief(plan, 'rollback'), [
      ['mark unused', badSegment!, 1],
      ['mark used', WIKI, 1],
    ]);
    assert.deepEqual(rollback.refusals, []);
    assert.deepEqual(brief(plan, 'check'), [['check loaded and rows', WIKI, 1]]);
    assert.match(stepOf(plan, 'check').items[0]!.detail!, /^7000 rows recorded for 1 segment/);
    const text = await cli(['--as-of', snapshot!.time, '--data-source', WIKI, '--interval', DAY, '--dry-run']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /2\. rollback: to do\n {3}mark unused: 1 segment/);
    assert.equal((await used(WIKI)).includes(badSegment!), true, 'a dry run changes nothing');
  });

  step('cluster-restore --as-of --data-source --interval: the original answer is back, the bad segment unused, the other data source untouched', async () => {
    const r = await cli(['--as-of', snapshot!.time, '--data-source', WIKI, '--interval', DAY]);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /check: check loaded and rows wikipedia: done/);
    // The check waited until the Historical dropped the bad segment; the Broker's view follows within seconds.
    const same = (a: Answer, b: Answer) => JSON.stringify(a) === JSON.stringify(b);
    await waitFor('the Broker to answer as before the overwrite', async () => same(await dayAnswer(), before_.day!), 60_000, 1000);
    assert.deepEqual(await served(WIKI), before_[WIKI]);
    assert.deepEqual(await dayAnswer(), before_.day);
    const unused = await druidJson<unknown[]>(`/druid/coordinator/v1/metadata/datasources/${WIKI}/unusedSegments`);
    assert.ok(unused.map(unusedId).includes(badSegment), 'the bad segment is unused');
    const badDir = path.join(druid.DRUID_DEEP_STORAGE_DIR, WIKI);
    const version = badSegment!.split('_')[3]!;
    assert.ok(
      readdirSync(badDir).some((d) => existsSync(path.join(badDir, d, version))),
      'the bad segment is still in deep storage (marked unused, never deleted)',
    );
    assert.deepEqual((await used(OTHER)).sort(), otherUsedBefore);
    assert.deepEqual(await answer(OTHER), before_[OTHER]);
  });

  step('a second run plans nothing and changes nothing', async () => {
    const usedBefore = (await used(WIKI)).sort();
    const plan = await dryRun({ asOf: snapshot!.time, dataSources: [WIKI], intervals: [DAY] });
    assert.deepEqual(
      plan.steps.map((s) => [s.step, s.done]),
      [
        ['deep-storage', true],
        ['rollback', true],
        ['metadata-rows', true],
        ['druid-metadata', true],
        ['check', true],
      ],
    );
    assert.deepEqual(brief(plan, 'rollback'), []);
    const r = await api<JobAccepted>('POST', '/data/v1/cluster/restore', { asOf: snapshot!.time, dataSources: [WIKI], intervals: [DAY] });
    assert.equal(r.status, 202, r.text);
    const job: Job = await cluster!.waitForJob(r.json.jobId, 600_000);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
    const results = job.result!.results as StepResult[];
    assert.deepEqual(
      results.flatMap((s) => s.items.filter((i) => i.outcome === 'done' && s.step !== 'check').map((i) => `${s.step}: ${i.action}`)),
      [],
      'nothing was done but the check',
    );
    assert.deepEqual((await used(WIKI)).sort(), usedBefore);
  });

  step('S3 deep storage: index.zip objects that Druid unzips byte-identical to the backup; a second run writes nothing', async () => {
    const body = { snapshot: snapshot!.id, dataSources: [WIKI], deepStorage: `s3://${BUCKET}/druid/segments` };
    const plan = await dryRun(body);
    assert.equal(plan.refused, false, JSON.stringify(plan));
    assert.deepEqual(brief(plan, 'deep-storage'), [
      ['write index.zip to S3 deep storage', WIKI, 6],
      ['point loadSpecs at the new deep storage', WIKI, 6],
    ]);
    assert.equal(
      stepOf(plan, 'deep-storage').items[0]!.bytes,
      (await cluster!.get<{ dataSources: Array<{ name: string; bytes: number }> }>(`/data/v1/snapshots/${snapshot!.id}`)).dataSources.find(
        (d) => d.name === WIKI,
      )!.bytes,
    );
    assert.match(stepOf(plan, 'deep-storage').items[1]!.detail!, new RegExp(`s3://${BUCKET}/druid/segments`));
    const r = await api<JobAccepted>('POST', '/data/v1/cluster/restore', body);
    assert.equal(r.status, 202, r.text);
    const job = await cluster!.waitForJob(r.json.jobId, 600_000);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));

    // Druid's own unzip (the S3 puller's: CompressionUtils.unzip of the object's stream) over every object.
    const javaDir = path.join(work, 'java');
    mkdirSync(javaDir, { recursive: true });
    writeFileSync(
      path.join(javaDir, 'Unzip.java'),
      'public class Unzip { public static void main(String[] a) throws Exception { org.apache.druid.utils.CompressionUtils.unzip(new java.io.FileInputStream(a[0]), new java.io.File(a[1])); } }\n',
    );
    const cp = path.join(druid.DRUID_LIB_DIR, '*');
    const objects = execFileSync('find', [path.join(s3!.root, BUCKET), '-name', 'index.zip', '-type', 'f'], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean);
    const ids = await used(WIKI);
    assert.equal(objects.length, ids.length);
    for (const id of ids) {
      const backup = path.join(storeDir, segmentPath(WIKI, id));
      const manifest = JSON.parse(readFileSync(path.join(backup, 'manifest.json'), 'utf8')) as { descriptor: DataSegment };
      const spec = loadSpecAt(parseSegmentId(id, WIKI), manifest.descriptor.loadSpec!, { kind: 's3', bucket: BUCKET, baseKey: 'druid/segments' });
      const key = String(spec.key);
      assert.match(key, new RegExp(`^druid/segments/${WIKI}/[^/]+_[^/]+/[^/]+/\\d+/(.+/)?index\\.zip$`), 'the same relative place as in the old deep storage');
      const zip = path.join(s3!.root, BUCKET, key);
      assert.ok(objects.includes(zip), `${key} was written`);
      const out = path.join(work, 'unzipped', id);
      // Druid's unzip of a stream writes into an existing directory (its puller makes it first).
      mkdirSync(out, { recursive: true });
      execFileSync('java', ['-cp', cp, path.join(javaDir, 'Unzip.java'), zip, out], { stdio: 'pipe' });
      const want = readdirSync(backup)
        .filter((f) => f !== 'manifest.json')
        .sort();
      assert.deepEqual(readdirSync(out).sort(), want, `${id}: the files of the backup`);
      for (const f of want) assert.equal(await sha256File(path.join(out, f)), await sha256File(path.join(backup, f)), `${id}/${f} byte-identical`);
    }
    const again = await dryRun(body);
    assert.equal(stepOf(again, 'deep-storage').done, true);
    assert.deepEqual(brief(again, 'deep-storage'), [
      ['already whole in deep storage', WIKI, 6],
      ['point loadSpecs at the new deep storage', WIKI, 6],
    ]);
  });
});
