/**
 * Snapshots and retention on a real Apache Druid 33 (issue 21, "What must be shown"): ingest, snapshot, compact with
 * Druid's own compaction task (the Coordinator's millisToWaitBeforeDeleting set to 0, so that it marks the old
 * versions unused and the Historical drops them), snapshot again, then prune:
 * - with keepLast=2 both snapshots stay, and a restore of the older one into deep storage gives back the
 *   pre-compaction segments byte-identical;
 * - with keepLast=1 and gracePeriod=PT0S the older snapshot and the old versions go: the store then holds only what
 *   Druid uses (the storage overhead is printed before and after), and a restore naming the older snapshot fails
 *   with a clear message.
 * The snapshots hold the retention rules and the compaction config the test set, byte for byte as Druid returns them.
 *
 * The Historical's sidecar backs up into a target sidecar's store (as in roundtrip.test.ts) and reconciles every 5 s,
 * so its holdings report follows the Historical's drops; a cluster sidecar (a Coordinator and a Broker, no cache)
 * takes the snapshots into the same target. The target prunes its own store by its druid.backup.retention.*: it is
 * restarted on the same port and store with the second policy.
 *
 * Its own cluster (port offset 700 unless DRUID_PORT_OFFSET says otherwise, its own folder under .cache), so it runs
 * beside the other Druid tests. DBK_KEEP_TMP=1 keeps the folders.
 */
import assert from 'node:assert/strict';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import type { Job, JobAccepted, RestorePlan, StoreCatalogResponse } from '../../sidecar/api.js';
import type { DataSegment } from '../../sidecar/druid/descriptor.js';
import { cacheSegmentPath } from '../../sidecar/druid/paths.js';
import { parseSegmentId } from '../../sidecar/druid/segmentId.js';
import { segmentPath } from '../../sidecar/store/local/layout.js';
import { listSegments } from '../../sidecar/snapshot/check.js';
import type { SnapshotSegment } from '../../sidecar/snapshot/model.js';
import type { ClusterMetadata } from '../../sidecar/snapshot/model.js';
import type { PruneResult } from '../../sidecar/snapshot/prune.js';
import type { SnapshotSummary } from '../../sidecar/snapshot/service.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { request, SIDECAR_JS, startSidecar, tmpDir, waitFor } from '../helpers/sidecar.js';
import type { DruidEnv } from './cluster.js';
import { configureCluster, ingest, REPO_ROOT, sql, startCluster, stopCluster } from './cluster.js';
import { digests, filesOf, tail } from './files.js';

const DS = 'wikipedia';
const STEP_TIMEOUT = 10 * 60_000;
/** The ingested data's days (scripts/druid-dev-cluster.sh generates 2015-09-12 .. 2015-09-16). */
const INTERVAL = '2015-09-12T00:00:00.000Z/2015-09-17T00:00:00.000Z';

type Retention = { stored: number; usedByLatest: number; keptByRetention: number; prunable: number; druidUses?: number; overhead?: number };

const q = (s: string) => `'${s.replaceAll(`'`, `'\\''`)}'`;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Druid's answer as text, exactly as it sent it. */
async function druidText(url: string, init?: RequestInit): Promise<{ status: number; text: string }> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(30_000) });
  return { status: res.status, text: await res.text() };
}

async function druidPost(url: string, body: unknown): Promise<string> {
  const r = await druidText(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  assert.ok(r.status >= 200 && r.status < 300, `POST ${url}: ${r.status} ${r.text}`);
  return r.text;
}

describe('snapshots, compaction and retention on a real Druid 33', { concurrency: false, timeout: 3_600_000 }, () => {
  let broken: string | undefined;
  let druid: DruidEnv | undefined;
  let home: string;
  let work: string;
  let storeDir: string;
  let token: string;
  let target: SidecarProcess | undefined;
  let cluster: SidecarProcess | undefined;
  let historicalSidecar: string;
  let rulesText: string;
  let compactionText: string;
  let s1: string;
  let s2: string;
  /** The pre-compaction segments: descriptor and deep storage files as Druid wrote them. */
  const v1 = new Map<string, { descriptor: DataSegment; files: Record<string, string> }>();
  let v2Ids: string[] = [];
  const figures: Record<string, Retention> = {};

  const coordinator = () => druid!.DRUID_COORDINATOR_URL;
  const cacheDir = (id: string) => cacheSegmentPath(druid!.DRUID_SEGMENT_CACHE_DIR, parseSegmentId(id, DS), 'nested');
  const node = <T>(method: string, urlPath: string, body?: unknown) => request<T>(historicalSidecar, token, method, urlPath, body);

  async function job(s: { request: SidecarProcess['request'] }, urlPath: string, body: unknown): Promise<Job> {
    const r = await s.request<JobAccepted>('POST', urlPath, body);
    assert.equal(r.status, 202, r.text);
    return waitFor(
      `job ${r.json.jobId}`,
      async () => {
        const j = (await s.request<Job>('GET', `/data/v1/jobs/${r.json.jobId}`)).json;
        return ['succeeded', 'failed', 'cancelled'].includes(j.state) ? j : undefined;
      },
      300_000,
      250,
    );
  }
  const nodeApi = { request: node as SidecarProcess['request'] };

  async function usedIds(): Promise<string[]> {
    const r = await druidText(`${coordinator()}/druid/coordinator/v1/metadata/datasources/${DS}/segments`);
    assert.equal(r.status, 200, r.text);
    return (JSON.parse(r.text) as string[]).sort();
  }

  async function storedIds(): Promise<string[]> {
    const c = await target!.get<StoreCatalogResponse>(`/data/v1/store/segments?dataSource=${DS}&limit=1000`);
    return c.items.map((s) => s.segmentId).sort();
  }

  async function takeSnapshot(): Promise<string> {
    const j = await job(cluster!, '/data/v1/snapshots', { dataSources: [DS] });
    assert.equal(j.state, 'succeeded', JSON.stringify(j.errors));
    const r = j.result as { snapshot: string; complete: boolean; written: string[] };
    assert.deepEqual(r.written, [target!.url]);
    return r.snapshot;
  }

  /** The retention figures the target measured at or after `since` (a prune measures them again when it ends). */
  async function retention(since: number): Promise<Retention> {
    return waitFor(
      'the retention figures',
      async () => {
        const s = await target!.get<{ retention?: Retention & { at: string } }>('/data/v1/store/stats');
        return s.retention && Date.parse(s.retention.at) >= since ? s.retention : undefined;
      },
      60_000,
      250,
    );
  }

  async function startTarget(keepLast: number, port = 0): Promise<SidecarProcess> {
    return startSidecar(['--store', storeDir, '--node-name', 'backup-target'], {
      token,
      port,
      stateDir: path.join(work, 'target-state'),
      fast: false,
      env: { DRUID_BACKUP_RETENTION_KEEP_LAST: String(keepLast), DRUID_BACKUP_RETENTION_GRACE_PERIOD: 'PT0S' },
    });
  }

  function report(why: string): void {
    const parts = [`\n===== ${why}: log tails (cluster folder ${home}) =====`];
    if (druid)
      for (const [name, lines] of [
        ['backup', 60],
        ['coordinator', 40],
        ['historical', 30],
        ['indexer', 20],
      ] as const)
        parts.push(`----- ${name}.log (last ${lines} lines)\n${tail(path.join(druid.DRUID_LOG_DIR, `${name}.log`), lines)}`);
    for (const [name, s] of [
      ['target', target],
      ['cluster', cluster],
    ] as const)
      if (s) parts.push(`----- ${name} sidecar (last 30 lines)\n${s.logs().split('\n').slice(-31).join('\n')}`);
    process.stderr.write(parts.join('\n') + '\n');
  }

  /** One step: skipped after an earlier failure, log tails printed on its own. */
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
        assert.ok(existsSync(SIDECAR_JS), 'dist/sidecar.js: run npm run build');
        mkdirSync(path.join(REPO_ROOT, '.cache'), { recursive: true });
        home = mkdtempSync(path.join(REPO_ROOT, '.cache', 'druid-snapshots-'));
        work = tmpDir('dbk-druid-snapshots-');
        storeDir = path.join(work, 'store');
        token = `snap-${Date.now()}-${Math.random().toString(36).slice(2)}-token`;
        target = await startTarget(2);
        const tokenFile = path.join(work, 'token');
        writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
        const port = await freePort();
        historicalSidecar = `http://127.0.0.1:${port}`;
        configureCluster({
          DRUID_DEV_HOME: home,
          DRUID_PORT_OFFSET: process.env.DRUID_PORT_OFFSET ?? '700',
          DRUID_EXTENSIONS_DIR: undefined,
          DRUID_COMMON_EXTRA: undefined,
          DRUID_HISTORICAL_EXTRA: [
            `druid.backup.port=${port}`,
            'druid.backup.bindAddress=127.0.0.1',
            `druid.backup.tokenFile=${tokenFile}`,
            `druid.backup.target=${target.url}`,
            'druid.backup.stateDir=var/druid-backup',
            // Holdings follow the Historical's drops within seconds (the default is every 5 minutes).
            'druid.backup.reconcilePeriod=PT5S',
          ].join('\n'),
          DRUID_BACKUP_SIDECAR_CMD: `${q(process.execPath)} ${q(SIDECAR_JS)} sidecar --config conf/druid/historical/runtime.properties`,
        });
        druid = await startCluster();
        cluster = await startSidecar(['--coordinator', druid.DRUID_COORDINATOR_URL, '--broker', druid.DRUID_BROKER_URL, '--target', target.url], {
          token,
          stateDir: path.join(work, 'cluster-state'),
          fast: false,
        });
        await waitFor(
          'the supervised sidecar to answer',
          async () => (await request(historicalSidecar, null, 'GET', '/status/health')).status === 200,
          60_000,
          250,
        );
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
        process.stderr.write(`\n[druid snapshots] retention figures: ${JSON.stringify(figures, null, 2)}\n`);
        if (!broken && !process.env.DBK_KEEP_TMP) {
          if (home) rmSync(home, { recursive: true, force: true });
          if (work) rmSync(work, { recursive: true, force: true });
        } else process.stderr.write(`[druid snapshots] kept ${home} (cluster) and ${work} (store)\n`);
      }
    },
    { timeout: 180_000 },
  );

  step('ingest; every segment backed up; rules and a compaction config set; the first snapshot holds them byte for byte', async () => {
    const answer = await ingest();
    assert.equal(answer.c, 39_244);
    const used = await usedIds();
    assert.equal(used.length, 6, used.join('\n'));
    await waitFor(`${used.length} segments in the target`, async () => JSON.stringify(await storedIds()) === JSON.stringify(used), 180_000, 500);
    const c = coordinator();
    await druidPost(`${c}/druid/coordinator/v1/rules/${DS}`, [{ type: 'loadForever', tieredReplicants: { _default_tier: 1 } }]);
    // A skip offset far in the past keeps the Coordinator from compacting by itself: the test compacts with a task.
    await druidPost(`${c}/druid/coordinator/v1/config/compaction`, { dataSource: DS, skipOffsetFromLatest: 'P1000Y' });
    rulesText = (await druidText(`${c}/druid/coordinator/v1/rules`)).text;
    compactionText = (await druidText(`${c}/druid/coordinator/v1/config/compaction`)).text;
    assert.match(rulesText, /"wikipedia":\[\{/);
    assert.match(compactionText, /"dataSource":"wikipedia"/);
    for (const id of used) {
      const d = JSON.parse(readFileSync(path.join(druid!.DRUID_INFO_DIR, id), 'utf8')) as DataSegment;
      const dir = String(d.loadSpec?.path);
      assert.ok(dir.startsWith(`${druid!.DRUID_DEEP_STORAGE_DIR}/`), `${id}: loadSpec ${dir}`);
      v1.set(id, { descriptor: d, files: digests(await filesOf(dir)) });
    }

    // The Broker learns each segment's row count from its metadata queries, a while after the segment is served.
    await waitFor(
      'the Broker to know the row counts',
      async () => (await sql<{ n: number }>(`SELECT SUM(num_rows) AS n FROM sys.segments WHERE datasource = '${DS}' AND is_published = 1`))[0]?.n === 39_244,
      180_000,
      1000,
    );
    s1 = await takeSnapshot();
    const h = await cluster!.get<SnapshotSummary>(`/data/v1/snapshots/${s1}`);
    assert.equal(h.complete, true);
    assert.equal(h.segments, 6);
    const list: SnapshotSegment[] = [];
    const sha = h.dataSources[0]!.list;
    for await (const seg of listSegments(createReadStream(path.join(storeDir, 'snapshots', 'blobs', sha)), sha, DS, s1)) list.push(seg);
    assert.deepEqual(
      list.map((s) => s.id),
      used,
    );
    assert.ok(list.every((s) => s.backedUp && !s.overshadowed));
    assert.equal(
      list.reduce((n, s) => n + (s.rows ?? 0), 0),
      39_244,
      'row counts from sys.segments',
    );
    const meta = JSON.parse(readFileSync(path.join(storeDir, 'snapshots', 'blobs', h.metadata), 'utf8')) as ClusterMetadata;
    assert.equal(meta.rules, rulesText, 'the rules byte for byte as Druid returns them');
    assert.equal(meta.compaction, compactionText, 'the compaction config byte for byte as Druid returns them');
  });

  step("Druid's compaction replaces the old versions; the Coordinator marks them unused and the Historical drops them", async (t) => {
    const c = coordinator();
    const dynamic = JSON.parse((await druidText(`${c}/druid/coordinator/v1/config`)).text) as Record<string, unknown>;
    await druidPost(`${c}/druid/coordinator/v1/config`, { ...dynamic, millisToWaitBeforeDeleting: 0 });
    const task = JSON.parse(
      await druidPost(`${c}/druid/indexer/v1/task`, {
        type: 'compact',
        dataSource: DS,
        ioConfig: { type: 'compact', inputSpec: { type: 'interval', interval: INTERVAL } },
        granularitySpec: { segmentGranularity: 'day' },
      }),
    ) as { task: string };
    const status = await waitFor(
      `compaction task ${task.task}`,
      async () => {
        const s = JSON.parse((await druidText(`${c}/druid/indexer/v1/task/${encodeURIComponent(task.task)}/status`)).text) as { status?: { status?: string } };
        return s.status?.status === 'RUNNING' || s.status?.status === undefined ? undefined : s.status.status;
      },
      300_000,
      1000,
    );
    assert.equal(status, 'SUCCESS');
    const c0 = Date.now();
    v2Ids = await waitFor(
      'the Coordinator to mark the old versions unused',
      async () => {
        const ids = await usedIds();
        return ids.every((id) => !v1.has(id)) ? ids : undefined;
      },
      300_000,
      1000,
    );
    assert.equal(v2Ids.length, 5, 'one segment a day');
    await waitFor(
      'the Historical to drop the old versions (info_dir and files)',
      async () => {
        const info = readdirSync(druid!.DRUID_INFO_DIR).sort();
        return JSON.stringify(info) === JSON.stringify(v2Ids) && [...v1.keys()].every((id) => !existsSync(cacheDir(id)));
      },
      300_000,
      1000,
    );
    await waitFor(
      'the new versions in the target',
      async () => JSON.stringify(await storedIds()) === JSON.stringify([...v1.keys(), ...v2Ids].sort()),
      180_000,
      500,
    );
    // The Historical's sidecar reports what it holds now: the new versions only.
    await waitFor(
      "the Historical's holdings report without the old versions",
      () => {
        const dir = path.join(storeDir, 'holdings');
        const files = existsSync(dir) ? readdirSync(dir) : [];
        if (files.length !== 1) return false;
        const h = JSON.parse(readFileSync(path.join(dir, files[0]!), 'utf8')) as { segmentIds: string[] };
        return JSON.stringify([...h.segmentIds].sort()) === JSON.stringify(v2Ids);
      },
      120_000,
      500,
    );
    t.diagnostic(`old versions unused, dropped and reported ${Date.now() - c0} ms after the compaction task ended`);
    s2 = await takeSnapshot();
    const h = await cluster!.get<SnapshotSummary>(`/data/v1/snapshots/${s2}`);
    assert.equal(h.segments, 5);
    assert.equal(h.complete, true);
    const meta = JSON.parse(readFileSync(path.join(storeDir, 'snapshots', 'blobs', h.metadata), 'utf8')) as ClusterMetadata;
    assert.equal(meta.rules, rulesText);
    assert.equal(meta.compaction, (await druidText(`${c}/druid/coordinator/v1/config/compaction`)).text);
  });

  step('keepLast=2: both snapshots and every version stay; the older restores into deep storage byte-identical', async (t) => {
    const p0 = Date.now();
    const pruned = await job(target!, '/data/v1/store/prune', {});
    assert.equal(pruned.state, 'succeeded', JSON.stringify(pruned.errors));
    const r = pruned.result as unknown as PruneResult;
    assert.deepEqual(
      r.snapshots.map((s) => [s.id, s.keep]),
      [
        [s2, true],
        [s1, true],
      ],
    );
    assert.deepEqual(r.removed, { snapshots: 0, segments: 0, bytes: 0, orphans: 0, blobs: 0 });
    assert.equal((await storedIds()).length, 11);
    figures.keepLast2 = await retention(p0);
    t.diagnostic(`keepLast=2: ${JSON.stringify(figures.keepLast2)}`);

    // The old versions' deep storage is lost; a restore of the older snapshot brings them back, and only them.
    for (const { descriptor } of v1.values()) rmSync(String(descriptor.loadSpec?.path), { recursive: true, force: true });
    const plan = await node<RestorePlan>('POST', '/data/v1/restore', {
      snapshot: s1,
      target: target!.url,
      destination: 'deep-storage',
      markUsed: false,
      dryRun: true,
    });
    assert.equal(plan.status, 200, plan.text);
    assert.deepEqual(plan.json.snapshot, { id: s1, missing: [] });
    assert.deepEqual(plan.json.segments.map((s) => s.segmentId).sort(), [...v1.keys()]);
    const restored = await job(nodeApi, '/data/v1/restore', { snapshot: s1, target: target!.url, destination: 'deep-storage', markUsed: false });
    assert.equal(restored.state, 'succeeded', JSON.stringify(restored.errors));
    assert.equal(restored.progress.segmentsDone, 6);
    for (const [id, was] of v1)
      assert.deepEqual(digests(await filesOf(String(was.descriptor.loadSpec?.path))), was.files, `${id}: restored deep storage differs`);
  });

  step('keepLast=1, gracePeriod=PT0S: the older snapshot and the old versions go; the store holds only what Druid uses', async (t) => {
    const port = target!.port;
    await target!.stop();
    target = await startTarget(1, port);
    const m0 = Date.now();
    figures.before = await retention(m0);
    const dry = await job(target, '/data/v1/store/prune', { dryRun: true });
    assert.equal(dry.state, 'succeeded', JSON.stringify(dry.errors));
    const plan = dry.result as unknown as PruneResult;
    assert.deepEqual(
      plan.snapshots.map((s) => [s.id, s.keep]),
      [
        [s2, true],
        [s1, false],
      ],
    );
    assert.deepEqual(plan.remove.map((s) => s.segmentId).sort(), [...v1.keys()]);
    for (const s of plan.remove) assert.match(s.reason, /no kept snapshot names it, no node reports holding it/);
    assert.equal((await storedIds()).length, 11, 'a dry run removes nothing');

    const p0 = Date.now();
    const pruned = await job(target, '/data/v1/store/prune', {});
    assert.equal(pruned.state, 'succeeded', JSON.stringify(pruned.errors));
    const r = pruned.result as unknown as PruneResult;
    assert.equal(r.removed.snapshots, 1);
    assert.equal(r.removed.segments, 6);
    assert.equal(r.removed.bytes, figures.before.prunable);
    figures.after = await retention(p0);
    t.diagnostic(
      `storage overhead ${figures.before.overhead} -> ${figures.after.overhead} (stored ${figures.before.stored} -> ${figures.after.stored} bytes; Druid uses ${figures.after.druidUses})`,
    );
    assert.ok(figures.before.overhead! > 1.5, `overhead before: ${figures.before.overhead}`);
    assert.equal(figures.after.overhead, 1, 'stored bytes / bytes Druid uses');
    assert.equal(figures.after.prunable, 0);
    assert.equal(figures.after.stored, figures.after.usedByLatest, 'every stored byte is used by the latest snapshot');
    assert.deepEqual(await storedIds(), v2Ids, 'the store holds exactly what Druid uses');
    assert.deepEqual(await usedIds(), v2Ids);
    for (const id of v1.keys()) assert.equal(existsSync(path.join(storeDir, segmentPath(DS, id))), false);
    const listed = await cluster!.get<{ snapshots: SnapshotSummary[] }>('/data/v1/snapshots');
    assert.deepEqual(
      listed.snapshots.map((s) => s.id),
      [s2],
    );

    // A restore naming the older snapshot fails, and says why.
    const gone = await node<{ message?: string }>('POST', '/data/v1/restore', {
      snapshot: s1,
      target: target.url,
      destination: 'deep-storage',
      markUsed: false,
    });
    assert.equal(gone.status, 404, gone.text);
    assert.match(gone.text, new RegExp(`snapshot ${s1} is in none of this sidecar's targets: retention may have removed it`));
    // The newest still restores whole.
    const plan2 = await node<RestorePlan>('POST', '/data/v1/restore', {
      snapshot: s2,
      target: target.url,
      destination: 'deep-storage',
      markUsed: false,
      dryRun: true,
    });
    assert.equal(plan2.status, 200, plan2.text);
    assert.deepEqual(plan2.json.snapshot, { id: s2, missing: [] });
    assert.deepEqual(plan2.json.segments.map((s) => s.segmentId).sort(), v2Ids);
  });
});
