/**
 * A metadata store lost, put back on a real Apache Druid 33 (issue 22): ingest, set a retention rule and a compaction
 * config, take a snapshot; stop the cluster and delete its Derby metadata store (and ZooKeeper's data and every cache)
 * with deep storage kept; start it empty. The cluster-restore steps "metadata-rows" (the druid-backup extension on the
 * Overlord inserts the lost rows through Druid's own commitSegments) and "druid-metadata" (rules and compaction config
 * through Druid's APIs) are planned, item by item, and run: SQL answers as before, the rules and the compaction config
 * read back byte for byte as Druid returned them, and a second plan of each has nothing to do.
 *
 * Its own cluster (port offset 800 unless DRUID_PORT_OFFSET says otherwise, its own folder under .cache), so it runs
 * beside the other Druid tests. The Coordinator runs the Overlord, so it serves the extension's resources.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { captureClusterMetadata } from '../../sidecar/cluster/metadata.js';
import { registerSegments, SEGMENTS_PATH } from '../../sidecar/cluster/register.js';
import { druidMetadataStep } from '../../sidecar/cluster/restore/metadata.js';
import { unusedId } from '../../sidecar/cluster/restore/rollback.js';
import { metadataRowsStep } from '../../sidecar/cluster/restore/rows.js';
import type { ClusterRestoreContext } from '../../sidecar/cluster/restore/step.js';
import { readSegmentList } from '../../sidecar/snapshot/check.js';
import { MAX_METADATA_BYTES } from '../../sidecar/snapshot/check.js';
import type { ClusterMetadata, SnapshotSegment } from '../../sidecar/snapshot/model.js';
import { takeSnapshot } from '../../sidecar/snapshot/take.js';
import { LocalStore } from '../../sidecar/store/local/store.js';
import { configureCluster, ingest, REPO_ROOT, sql, startCluster, stopCluster } from './cluster.js';
import type { DruidEnv } from './cluster.js';

const DS = 'wikipedia';
const ANSWER = `SELECT COUNT(*) AS c, SUM(added) AS a, COUNT(DISTINCT "user") AS u FROM ${DS}`;
const log = pino({ level: 'silent' });

let tmp: string;
let druidHome: string;
let druid: DruidEnv | undefined;

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 300_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 2000));
  }
}

async function druidText(url: string, init?: RequestInit): Promise<{ status: number; text: string }> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(30_000) });
  return { status: res.status, text: await res.text() };
}

async function post(url: string, body: unknown): Promise<void> {
  const r = await druidText(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  assert.ok(r.status >= 200 && r.status < 300, `POST ${url}: ${r.status} ${r.text}`);
}

describe('a lost metadata store: segment rows and Druid metadata put back on a real Druid 33', { concurrency: false, timeout: 2_400_000 }, () => {
  before(async () => {
    execFileSync(process.execPath, [path.join(REPO_ROOT, 'scripts', 'build-druid-extension.mjs')], { stdio: 'inherit' });
    tmp = mkdtempSync(path.join(os.tmpdir(), 'dbk-rows-'));
    const extensions = path.join(tmp, 'extensions');
    mkdirSync(extensions);
    cpSync(path.join(REPO_ROOT, 'dist', 'druid-extension', 'druid-backup'), path.join(extensions, 'druid-backup'), { recursive: true });
    cpSync(path.join(REPO_ROOT, 'dist', 'druid-extension-test', 'druid-backup-test-auth'), path.join(extensions, 'druid-backup-test-auth'), {
      recursive: true,
    });
    mkdirSync(path.join(REPO_ROOT, '.cache'), { recursive: true });
    druidHome = mkdtempSync(path.join(REPO_ROOT, '.cache', 'druid-cluster-rows-'));
    configureCluster({
      DRUID_PORT_OFFSET: process.env.DRUID_PORT_OFFSET ?? '800',
      DRUID_DEV_HOME: druidHome,
      DRUID_EXTENSIONS_DIR: extensions,
      DRUID_BACKUP_SIDECAR_CMD: undefined,
      DRUID_COMMON_EXTRA: [
        // No sidecar is started: the steps are called in-process here.
        'druid.backup.sidecar.autostart=false',
        // Druid's authorization (test-only extension): a request with X-Test-Identity goes to an authorizer refusing
        // everything; all other traffic is allowed.
        'druid.auth.authenticatorChain=["testHeader","allowAll"]',
        'druid.auth.authenticator.testHeader.type=testHeader',
        'druid.auth.authenticator.testHeader.authorizerName=deny',
        'druid.auth.authenticator.allowAll.type=allowAll',
        'druid.auth.authorizers=["allowAll","deny"]',
        'druid.auth.authorizer.allowAll.type=allowAll',
        'druid.auth.authorizer.deny.type=testDeny',
      ].join('\n'),
    });
    druid = await startCluster();
    const answer = await ingest();
    assert.equal(answer.c, 39_244);
  });

  after(async () => {
    try {
      if (druid) await stopCluster();
    } finally {
      if (!process.env.DBK_KEEP_TMP) {
        if (tmp) rmSync(tmp, { recursive: true, force: true });
        if (druidHome) rmSync(druidHome, { recursive: true, force: true });
      }
    }
  });

  test('snapshot, lose the metadata store, plan and run metadata-rows and druid-metadata: the same answers, rules and compaction config', async () => {
    const c = druid!.DRUID_COORDINATOR_URL;
    await post(`${c}/druid/coordinator/v1/rules/${DS}`, [
      { type: 'loadByPeriod', period: 'P5000Y', tieredReplicants: { _default_tier: 1 } },
      { type: 'dropForever' },
    ]);
    // A skip offset far in the past keeps the Coordinator from compacting by itself while the test runs.
    await post(`${c}/druid/coordinator/v1/config/compaction`, { dataSource: DS, skipOffsetFromLatest: 'P1000Y', inputSegmentSizeBytes: 123_456_789 });
    const before = {
      answer: await sql(ANSWER),
      rules: await druidText(`${c}/druid/coordinator/v1/rules`),
      compaction: await druidText(`${c}/druid/coordinator/v1/config/compaction`),
    };
    assert.match(before.rules.text, /"wikipedia":\[\{[^\]]*"loadByPeriod"/);
    assert.match(before.compaction.text, /"inputSegmentSizeBytes":123456789/);

    const store = LocalStore.open(path.join(tmp, 'store'), { log });
    const taken = await takeSnapshot({
      coordinator: c,
      broker: druid!.DRUID_BROKER_URL,
      catalogs: [],
      targets: [store],
      node: 'cluster',
      captureMetadata: captureClusterMetadata,
      log,
    });
    const header = taken.header;
    const list = header.dataSources.find((d) => d.name === DS)!;
    const segments: SnapshotSegment[] = [];
    for await (const seg of readSegmentList(store.snapshots, list.list, DS, 'the test snapshot')) segments.push(seg);
    const metadata = JSON.parse((await store.snapshots.getBlob(header.metadata, MAX_METADATA_BYTES)).toString('utf8')) as ClusterMetadata;
    assert.ok(segments.length >= 2, 'the ingest wrote several segments');
    assert.ok(segments.every((s) => s.descriptor?.loadSpec?.type === 'local'));
    assert.equal(metadata.rules, before.rules.text);

    // The disaster: the metadata store (Derby), ZooKeeper's data and every cache gone; deep storage kept.
    await stopCluster();
    for (const dir of ['var/druid/metadata.db', 'var/zk', 'var/druid/segment-cache']) rmSync(path.join(druidHome, dir), { recursive: true, force: true });
    druid = await startCluster();
    assert.equal(druid.DRUID_COORDINATOR_URL, c);
    await assert.rejects(sql(ANSWER), /not found/, 'the data source is gone with the metadata store');
    assert.equal((await druidText(`${c}/druid/coordinator/v1/rules/${DS}`)).text, '[]');

    const ctx: ClusterRestoreContext = {
      snapshot: header,
      segments: new Map<string, SnapshotSegment[]>([[DS, segments]]),
      metadata,
      dataSources: [DS],
      intervals: [],
      target: store,
      coordinator: c,
      overlord: c,
      broker: druid.DRUID_BROKER_URL,
      author: 'cluster-rows test',
      comment: `restore of snapshot ${header.id}`,
    };
    const rows = metadataRowsStep();
    const meta = druidMetadataStep();
    const bytes = segments.reduce((n, s) => n + s.size, 0);

    const rowsPlan = await rows.plan(ctx);
    assert.deepEqual(rowsPlan, {
      step: 'metadata-rows',
      done: false,
      items: [
        {
          action: 'insert rows',
          subject: DS,
          segments: segments.length,
          bytes,
          detail: `${segments.length} of the snapshot's ${segments.length} segments have no row in the metadata store: written from their backed-up descriptors by the druid-backup extension on the Overlord`,
        },
      ],
      warnings: [],
      refusals: [],
    });
    const metaPlan = await meta.plan(ctx);
    assert.deepEqual(metaPlan, {
      step: 'druid-metadata',
      done: false,
      items: [
        { action: 'set rules', subject: DS, detail: 'now: no rules; in the snapshot: loadByPeriod, dropForever' },
        { action: 'set compaction config', subject: DS, detail: 'none now' },
      ],
      warnings: [],
      refusals: [],
    });

    const seen: string[] = [];
    const rowsRun = await rows.run(ctx, rowsPlan, (i) => seen.push(`${i.action} ${i.subject}`));
    assert.deepEqual(rowsRun.items.map((i) => [i.action, i.outcome, i.detail]), [['insert rows', 'done', `${segments.length} row(s) written`]]);
    const metaRun = await meta.run(ctx, metaPlan, (i) => seen.push(`${i.action} ${i.subject}`));
    assert.deepEqual(
      metaRun.items.map((i) => [i.action, i.outcome, i.error]),
      [
        ['set rules', 'done', undefined],
        ['set compaction config', 'done', undefined],
      ],
    );
    assert.deepEqual(seen, [`insert rows ${DS}`, `set rules ${DS}`, `set compaction config ${DS}`]);

    // Druid loads the segments again from deep storage and answers as before.
    const after = await waitFor('the restored data source to answer as before', async () => {
      const a = await sql(ANSWER).catch(() => undefined);
      return a && JSON.stringify(a) === JSON.stringify(before.answer) ? a : undefined;
    });
    assert.deepEqual(after, before.answer);
    assert.equal((await druidText(`${c}/druid/coordinator/v1/rules`)).text, before.rules.text, 'the rules as Druid returns them');
    assert.equal((await druidText(`${c}/druid/coordinator/v1/config/compaction`)).text, before.compaction.text, 'the compaction config as Druid returns it');
    // Druid's audit log says who put the rules back and why.
    const audit = await druidText(`${c}/druid/coordinator/v1/rules/${DS}/history?count=1`);
    assert.match(audit.text, /"author":"cluster-rows test"/);
    assert.match(audit.text, new RegExp(`"comment":"restore of snapshot ${header.id}"`));

    // A second run has nothing to do.
    const again = [await rows.plan(ctx), await meta.plan(ctx)];
    assert.deepEqual(
      again.map((p) => [p.step, p.done, p.items, p.warnings, p.refusals]),
      [
        ['metadata-rows', true, [], [], []],
        ['druid-metadata', true, [], [], []],
      ],
    );
  });

  test("a row that exists unused is the rollback's to mark used: metadata-rows has nothing to do; the extension skips ids already present", async () => {
    const c = druid!.DRUID_COORDINATOR_URL;
    const list = (await (await fetch(`${c}/druid/coordinator/v1/metadata/datasources/${DS}/segments?full`)).json()) as Array<{ identifier?: string } & Record<string, unknown>>;
    const victim = list[0]!;
    const id = String(victim.identifier);
    await post(`${c}/druid/coordinator/v1/datasources/${DS}/markUnused`, { segmentIds: [id] });
    const snapshotSegment: SnapshotSegment = { id, overshadowed: false, size: Number(victim.size), descriptor: victim as never, backedUp: true };
    const ctx = {
      snapshot: { dataSources: [{ name: DS }] },
      segments: new Map([[DS, [snapshotSegment]]]),
      metadata: { offsets: { captured: false }, redacted: [] },
      dataSources: [DS],
      intervals: [],
      coordinator: c,
      overlord: c,
      author: 'cluster-rows test',
      comment: 'mark used',
    } as unknown as ClusterRestoreContext;
    const rows = metadataRowsStep();
    // The row is there: the rollback step (which runs first) marks it used; this step counts it as present.
    const plan = await rows.plan(ctx);
    assert.deepEqual([plan.done, plan.items, plan.refusals], [true, [], []]);
    // The extension leaves a present row as it is (unused): marking it used is Druid's markUsed.
    const direct = await registerSegments({ overlord: c, dataSource: DS, segments: [{ id, descriptor: victim as never }] });
    assert.deepEqual(direct, { inserted: [], present: [id] });
    const unused = (await (await fetch(`${c}/druid/coordinator/v1/metadata/datasources/${DS}/unusedSegments`)).json()) as unknown[];
    assert.ok(unused.map(unusedId).includes(id), 'still unused: the extension did not touch it');
    // A hostile body is refused before anything is written.
    const bad = await druidText(`${c}${SEGMENTS_PATH}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ dataSource: DS, segments: [{ ...victim, dataSource: 'other' }] }),
    });
    assert.deepEqual({ status: bad.status, body: JSON.parse(bad.text) as unknown }, {
      status: 400,
      body: { error: { code: 'bad_request', message: 'segments[0] is not a segment of "wikipedia"' } },
    });
    // Druid's authorizer decides: a caller it refuses writes nothing, whatever the body.
    for (const body of [JSON.stringify({ dataSource: DS, segments: [victim] }), 'not json']) {
      const denied = await druidText(`${c}${SEGMENTS_PATH}`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Test-Identity': 'mallory' }, body });
      assert.equal(denied.status, 403, denied.text);
    }
    assert.match(
      (await druidText(`${c}${SEGMENTS_PATH}`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Test-Identity': 'mallory' }, body: JSON.stringify({ dataSource: DS, segments: [victim] }) })).text,
      /needs Druid's WRITE permission on STATE and on the data source wikipedia/,
    );
    // Committed offsets are written under the same rule: a caller Druid refuses writes none, a bad body is a 400.
    const offsets = '/druid-ext/druid-backup/v1/offsets';
    const committed = JSON.stringify({ dataSource: DS, metadata: { type: 'object', object: { p0: 1 } } });
    for (const body of [committed, 'not json']) {
      const denied = await druidText(`${c}${offsets}`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Test-Identity': 'mallory' }, body });
      assert.equal(denied.status, 403, denied.text);
      assert.match(denied.text, /writing committed offsets needs Druid's WRITE permission on STATE and on the data source/);
    }
    const badOffsets = await druidText(`${c}${offsets}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"dataSource":"wikipedia"}' });
    assert.equal(badOffsets.status, 400, badOffsets.text);
    assert.equal((await druidText(`${c}${offsets}?dataSource=${DS}`)).text, `{"dataSources":{"${DS}":null}}`, 'nothing was written');
  });
});
