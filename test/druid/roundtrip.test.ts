/**
 * The round trip on a real Apache Druid (issue 7). A nano cluster of Druid 33.0.0 (nested cache layout) from
 * Maven Central runs the sidecar beside its Historical as one more line of its supervise config, configured by
 * `druid.backup.*` keys in the Historical's own runtime.properties, exactly as the README tells an operator to;
 * a target sidecar keeps the backups in a temporary store.
 *
 * 1. ingest 39,244 rows into 6 segments; the sidecar backs up every one, byte-identical to the cache;
 * 2. record COUNT(*) and SUM(added) through the Broker;
 * 3. stop the Historical, lose its whole segment cache (info_dir included) and the deep storage;
 * 4. restore through the sidecar's API into the cache and into deep storage;
 * 5. start the Historical: its log says it loaded the 6 segments from its cache on startup and pulled nothing
 *    from deep storage (the restored cache files keep their inodes), and the same query gives the same answer;
 * 6. delete one segment's files while the Historical serves it (its info file stays): the sidecar restores them
 *    by itself, byte-identical, and Druid loads them at its next start.
 *
 * Druid 37.0.0 (flat layout) does not resolve on Maven Central yet (druid-sql is missing), so the flat layout is
 * covered by the sample-cache tests only.
 *
 * Every step prints the relevant log tails when it fails; the cluster and the target are stopped in `after`.
 * Env: DRUID_PORT_OFFSET (default 200), DRUID_ROUNDTRIP_KEEP=1 keeps the cluster's folder after a pass.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import type { Job, JobAccepted, NodeInfo, RestorePlan, SegmentsResponse, StoreCatalogResponse } from '../../sidecar/api.js';
import type { DataSegment } from '../../sidecar/druid/descriptor.js';
import { cacheSegmentPath } from '../../sidecar/druid/paths.js';
import { parseSegmentId } from '../../sidecar/druid/segmentId.js';
import { segmentPath } from '../../sidecar/store/local/layout.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { metricValue, request, SIDECAR_JS, startSidecar, tmpDir, waitFor } from '../helpers/sidecar.js';
import type { DruidEnv } from './cluster.js';
import {
  configureCluster,
  historicalLog,
  ingest,
  loadedOnStartup,
  REPO_ROOT,
  sql,
  SqlError,
  startCluster,
  startService,
  stopCluster,
  stopService,
} from './cluster.js';
import type { FileFacts } from './files.js';
import { digests, filesOf, inodes, tail } from './files.js';

const DATA_SOURCE = 'wikipedia';
const SEGMENTS = 6;
const ROWS = 39_244;
const ANSWER_SQL = `SELECT COUNT(*) AS c, SUM(added) AS s FROM ${DATA_SOURCE}`;
/** Druid's class that copies (or hard-links) a segment from local deep storage into the cache: a pull. */
const PULL = /LocalDataSegmentPuller/;
const STEP_TIMEOUT = 10 * 60_000;

type Answer = { c: number; s: number };

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === 'object' ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

const q = (s: string) => `'${s.replaceAll(`'`, `'\\''`)}'`;

describe(`a real Apache Druid round trip (${process.env.DRUID_VERSION ?? '33.0.0'})`, () => {
  const t0 = Date.now();
  const timings: Record<string, number> = {};
  let broken: string | undefined;
  let druid: DruidEnv;
  let home: string;
  let work: string;
  let storeDir: string;
  let target: SidecarProcess | undefined;
  let sidecarUrl: string;
  let token: string;
  let segmentIds: string[] = [];
  /** segment id → its info_dir descriptor and its cache files as Druid wrote them. */
  const original = new Map<string, { descriptor: DataSegment; files: Map<string, FileFacts> }>();
  let before_: Answer | undefined;
  let after_: Answer | undefined;

  const api = <T>(method: string, urlPath: string, body?: unknown) => request<T>(sidecarUrl, token, method, urlPath, body);
  const apiGet = async <T>(urlPath: string): Promise<T> => {
    const r = await api<T>('GET', urlPath);
    if (r.status !== 200) throw new Error(`GET ${urlPath}: ${r.status} ${r.text}`);
    return r.json;
  };
  const cacheDir = (id: string) => cacheSegmentPath(druid.DRUID_SEGMENT_CACHE_DIR, parseSegmentId(id, DATA_SOURCE), 'nested');
  const storedDir = (id: string) => path.join(storeDir, segmentPath(DATA_SOURCE, id));
  const infoFile = (id: string) => path.join(druid.DRUID_INFO_DIR, id);
  const answer = async () => (await sql<Answer>(ANSWER_SQL))[0]!;

  /**
   * Waits until the Broker sees every segment served, then until its SQL layer knows the table again (it rebuilds a
   * data source's schema from segment metadata queries a while after the segments return), and answers: never a
   * partial answer, and never polled until it equals what the test expects.
   */
  async function servedAnswer(what: string): Promise<Answer> {
    await waitFor(
      `the Broker to see ${SEGMENTS} available segments (${what})`,
      async () => {
        const rows = await sql<{ n: number }>(
          `SELECT COUNT(*) AS n FROM sys.segments WHERE datasource = '${DATA_SOURCE}' AND is_available = 1 AND is_overshadowed = 0`,
        );
        return rows[0]?.n === SEGMENTS;
      },
      180_000,
      500,
    );
    return waitFor(
      `the Broker's SQL to know ${DATA_SOURCE} again (${what})`,
      () =>
        answer().catch((e: unknown) => {
          if (e instanceof SqlError && /not found/i.test(e.body)) return undefined;
          throw e;
        }),
      180_000,
      500,
    );
  }

  async function restoreJob(body: Record<string, unknown>): Promise<Job> {
    const r = await api<JobAccepted>('POST', '/data/v1/restore', { target: target!.url, dataSource: DATA_SOURCE, ...body });
    assert.equal(r.status, 202, r.text);
    const job = await waitFor(
      `restore job ${r.json.jobId}`,
      async () => {
        const j = await apiGet<Job>(`/data/v1/jobs/${r.json.jobId}`);
        return ['succeeded', 'failed', 'cancelled'].includes(j.state) ? j : undefined;
      },
      120_000,
      250,
    );
    assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
    return job;
  }

  function report(why: string): void {
    const logs = druid ? druid.DRUID_LOG_DIR : '';
    const parts = [`\n===== ${why}: log tails (cluster folder kept: ${home}) =====`];
    if (logs) {
      for (const [name, lines] of [
        ['historical', 80],
        ['backup', 60],
        ['coordinator', 30],
        ['broker', 20],
        ['indexer', 20],
      ] as const) {
        parts.push(`----- ${path.join(logs, `${name}.log`)} (last ${lines} lines)\n${tail(path.join(logs, `${name}.log`), lines)}`);
      }
    }
    if (target) parts.push(`----- target sidecar (last 30 lines)\n${target.logs().split('\n').slice(-31).join('\n')}`);
    process.stderr.write(parts.join('\n') + '\n');
  }

  /** One step of the round trip: skipped after an earlier failure, log tails printed on its own. */
  function step(name: string, fn: (t: TestContext) => Promise<void>): void {
    test(name, { timeout: STEP_TIMEOUT }, async (t) => {
      if (broken) return t.skip(`an earlier step failed: ${broken}`);
      const s0 = Date.now();
      try {
        await fn(t);
      } catch (e) {
        broken = name;
        report(`step "${name}" failed`);
        throw e;
      } finally {
        timings[name] = Date.now() - s0;
      }
    });
  }

  before(
    async () => {
      try {
        mkdirSync(path.join(REPO_ROOT, '.cache'), { recursive: true });
        // A fresh home every run: segment versions are ingestion times, and Druid keeps overshadowed ones cached.
        home = mkdtempSync(path.join(REPO_ROOT, '.cache', 'druid-roundtrip-'));
        work = tmpDir('dbk-druid-roundtrip-');
        storeDir = path.join(work, 'store');
        target = await startSidecar(['--store', storeDir, '--node-name', 'backup-target'], { stateDir: path.join(work, 'target-state'), fast: false });
        token = target.token;
        const tokenFile = path.join(work, 'token');
        writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
        const port = await freePort();
        sidecarUrl = `http://127.0.0.1:${port}`;
        configureCluster({
          DRUID_DEV_HOME: home,
          DRUID_PORT_OFFSET: process.env.DRUID_PORT_OFFSET ?? '200',
          DRUID_EXTENSIONS_DIR: undefined,
          DRUID_COMMON_EXTRA: undefined,
          // What an operator adds to the Historical's runtime.properties (README: "Beside your own Druid").
          DRUID_HISTORICAL_EXTRA: [
            '# druid-backup sidecar (Druid ignores these keys)',
            `druid.backup.port=${port}`,
            'druid.backup.bindAddress=127.0.0.1',
            `druid.backup.tokenFile=${tokenFile}`,
            `druid.backup.target=${target.url}`,
            'druid.backup.stateDir=var/druid-backup',
          ].join('\n'),
          // ... and the one line of its supervise config, run from the distribution root.
          DRUID_BACKUP_SIDECAR_CMD: `${q(process.execPath)} ${q(SIDECAR_JS)} sidecar --config conf/druid/historical/runtime.properties --wait-for-cache PT10M`,
        });
        const c0 = Date.now();
        druid = await startCluster();
        timings['cluster start'] = Date.now() - c0;
        await waitFor('the supervised sidecar to answer', async () => (await request(sidecarUrl, null, 'GET', '/status/health')).status === 200, 60_000, 250);
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
      } catch (e) {
        process.stderr.write(`stopping the cluster failed: ${String(e)}\n`);
        broken ??= 'stopping the cluster';
      }
      await target?.stop();
      const summary = {
        druidVersion: druid?.DRUID_VERSION,
        totalSeconds: Math.round((Date.now() - t0) / 100) / 10,
        stepSeconds: Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, Math.round(v / 100) / 10])),
        answerBefore: before_,
        answerAfter: after_,
        segments: segmentIds.length,
      };
      process.stderr.write(`\n[druid round trip] ${JSON.stringify(summary, null, 2)}\n`);
      if (!broken && !process.env.DRUID_ROUNDTRIP_KEEP) {
        rmSync(home, { recursive: true, force: true });
        rmSync(work, { recursive: true, force: true });
      } else if (home) {
        process.stderr.write(`[druid round trip] kept ${home} (cluster) and ${work} (store)\n`);
      }
    },
    { timeout: 120_000 },
  );

  step('the sidecar runs as a supervised service beside the Historical, configured from its runtime.properties', async () => {
    const node = await apiGet<NodeInfo>('/data/v1/node');
    assert.deepEqual(node.roles, ['source']);
    assert.equal(node.target, target!.url);
    assert.deepEqual(
      node.druid.locations.map((l) => l.path),
      [druid.DRUID_SEGMENT_CACHE_DIR],
    );
    assert.equal(node.druid.deepStorage.type, 'local');
    assert.equal(node.druid.deepStorage.directory, druid.DRUID_DEEP_STORAGE_DIR);
    assert.match(
      readFileSync(druid.DRUID_SUPERVISE_CONF, 'utf8'),
      /^backup .*dist\/sidecar\.js' sidecar --config conf\/druid\/historical\/runtime\.properties --wait-for-cache PT10M$/m,
    );
  });

  step(`ingest: ${ROWS} rows in ${SEGMENTS} segments, served by the Historical`, async () => {
    const served = await ingest();
    // What the generator wrote: the rows and SUM(added) of the input file.
    const generated = JSON.parse(readFileSync(path.join(druid.DRUID_HOME, 'var/data/wikipedia.expected.json'), 'utf8')) as Answer;
    assert.deepEqual(served, { c: ROWS, s: generated.s });
    const rows = await sql<{ segment_id: string }>(
      `SELECT segment_id FROM sys.segments WHERE datasource = '${DATA_SOURCE}' AND is_published = 1 AND is_overshadowed = 0 ORDER BY segment_id`,
    );
    segmentIds = rows.map((r) => r.segment_id);
    assert.equal(segmentIds.length, SEGMENTS, segmentIds.join('\n'));
    assert.deepEqual(readdirSync(druid.DRUID_INFO_DIR).sort(), [...segmentIds].sort(), 'info_dir lists what Druid published');
  });

  step('the sidecar backs up every segment: the target holds all 6, byte-identical to the cache', async (t) => {
    const b0 = Date.now();
    await waitFor(
      `${SEGMENTS} segments backed up`,
      async () => (await apiGet<SegmentsResponse>(`/data/v1/segments?dataSource=${DATA_SOURCE}&state=backedUp&limit=1`)).total === SEGMENTS,
      180_000,
      500,
    );
    t.diagnostic(`all ${SEGMENTS} segments backed up ${Date.now() - b0} ms after the ingest step ended`);
    const catalog = await target!.get<StoreCatalogResponse>(`/data/v1/store/segments?dataSource=${DATA_SOURCE}&limit=1000`);
    assert.deepEqual(catalog.items.map((s) => s.segmentId).sort(), [...segmentIds].sort());
    let bytes = 0;
    for (const s of catalog.items) {
      const descriptor = JSON.parse(readFileSync(infoFile(s.segmentId), 'utf8')) as DataSegment;
      const files = await filesOf(cacheDir(s.segmentId));
      assert.deepEqual([...files.keys()].sort(), ['00000.smoosh', 'factory.json', 'meta.smoosh', 'version.bin'], s.segmentId);
      const stored = await filesOf(storedDir(s.segmentId), ['manifest.json']);
      assert.deepEqual(digests(stored), digests(files), `${s.segmentId}: stored files differ from the cache`);
      const manifest = JSON.parse(readFileSync(path.join(storedDir(s.segmentId), 'manifest.json'), 'utf8')) as {
        descriptor: DataSegment;
        sources: Array<{ node: string }>;
      };
      assert.deepEqual(
        manifest.descriptor,
        descriptor,
        `${s.segmentId}: the info_dir descriptor travels with the segment (null: sent before Druid wrote its info file)`,
      );
      assert.deepEqual(
        manifest.sources.map((x) => x.node),
        [`localhost:${druid.DRUID_HISTORICAL_PORT}`],
      );
      original.set(s.segmentId, { descriptor, files });
      bytes += s.size;
    }
    t.diagnostic(`${catalog.items.length} segments, ${bytes} bytes in the store`);
  });

  step('the Broker answers COUNT(*) and SUM(added)', async (t) => {
    before_ = await answer();
    assert.equal(before_.c, ROWS);
    t.diagnostic(`before: ${JSON.stringify(before_)}`);
  });

  step('the Historical loses its whole cache and the deep storage; the sidecar restores both; Druid serves the restored cache', async (t) => {
    await stopService('historical');
    // Lost at once, as a failed disk is: renamed away first so the sidecar never sees a half-deleted cache.
    for (const dir of [druid.DRUID_SEGMENT_CACHE_DIR, druid.DRUID_DEEP_STORAGE_DIR]) {
      renameSync(dir, `${dir}.lost`);
      rmSync(`${dir}.lost`, { recursive: true, force: true });
      assert.equal(existsSync(dir), false);
    }
    await waitFor(
      'the Broker to say that nothing serves the data source',
      () =>
        answer().then(
          () => false,
          (e: unknown) => /not found/i.test(String(e)),
        ),
      60_000,
      500,
    );

    const r0 = Date.now();
    const dry = await api<RestorePlan>('POST', '/data/v1/restore', { target: target!.url, dataSource: DATA_SOURCE, destination: 'cache', dryRun: true });
    assert.equal(dry.status, 200, dry.text);
    assert.equal(dry.json.totals.restore, SEGMENTS, JSON.stringify(dry.json.totals));
    const intoCache = await restoreJob({ destination: 'cache' });
    assert.equal(intoCache.progress.segmentsDone, SEGMENTS, JSON.stringify(intoCache.progress));
    const intoDeep = await restoreJob({ destination: 'deep-storage' });
    assert.equal(intoDeep.progress.segmentsDone, SEGMENTS, JSON.stringify(intoDeep.progress));
    t.diagnostic(`restored ${SEGMENTS} segments into the cache and into deep storage in ${Date.now() - r0} ms`);

    const restored = new Map<string, Map<string, FileFacts>>();
    for (const [id, was] of original) {
      const files = await filesOf(cacheDir(id));
      assert.deepEqual(digests(files), digests(was.files), `${id}: restored cache files differ`);
      assert.deepEqual(JSON.parse(readFileSync(infoFile(id), 'utf8')), was.descriptor, `${id}: restored info_dir descriptor differs`);
      const loadSpecPath = String(was.descriptor.loadSpec?.path);
      assert.ok(loadSpecPath.startsWith(`${druid.DRUID_DEEP_STORAGE_DIR}/`), `${id}: loadSpec ${loadSpecPath}`);
      assert.deepEqual(digests(await filesOf(loadSpecPath)), digests(was.files), `${id}: rebuilt deep storage at ${loadSpecPath} differs`);
      restored.set(id, files);
    }
    assert.deepEqual(readdirSync(druid.DRUID_INFO_DIR).sort(), [...segmentIds].sort());

    const h0 = Date.now();
    await startService('historical');
    after_ = await servedAnswer('after the restore');
    t.diagnostic(`Historical started and the Broker answered ${Date.now() - h0} ms later: ${JSON.stringify(after_)}`);
    const log = historicalLog({ sinceLastStart: true });
    assert.deepEqual(loadedOnStartup(log), [SEGMENTS], 'SegmentBootstrapper - Loaded [6] segments on startup');
    assert.doesNotMatch(log, PULL, 'the Historical pulled a segment from deep storage');
    for (const [id, files] of restored) assert.deepEqual(inodes(await filesOf(cacheDir(id))), inodes(files), `${id}: Druid replaced the restored files`);
    assert.deepEqual(after_, before_);
  });

  step("a segment's files deleted while the Historical serves it (info file kept) are restored by the sidecar itself", async (t) => {
    // The second partition of the busiest day: an id that ends in _1.
    const id = segmentIds.find((s) => s.endsWith('_1')) ?? segmentIds[0]!;
    const dir = cacheDir(id);
    const want = digests(original.get(id)!.files);
    const autoBefore = metricValue(await (await api('GET', '/metrics')).text, 'druid_backup_segments_restored_total', { mode: 'auto', outcome: 'restored' });
    const a0 = Date.now();
    for (const f of readdirSync(dir)) rmSync(path.join(dir, f));
    assert.equal(existsSync(infoFile(id)), true);
    await waitFor(
      `${id} restored by the sidecar`,
      async () => {
        if (!existsSync(dir)) return false;
        const now = await filesOf(dir).catch(() => new Map<string, FileFacts>());
        return JSON.stringify(digests(now)) === JSON.stringify(want);
      },
      120_000,
      250,
    );
    t.diagnostic(`files back ${Date.now() - a0} ms after they were deleted`);
    assert.deepEqual(digests(await filesOf(dir)), want);
    const autoAfter = metricValue(await (await api('GET', '/metrics')).text, 'druid_backup_segments_restored_total', { mode: 'auto', outcome: 'restored' });
    assert.equal(autoAfter - autoBefore, 1, 'one automatic restore');
    const jobs = await apiGet<{ items: Job[] }>('/data/v1/jobs?type=restore');
    const job = jobs.items.find((j) => j.type === 'restore' && Array.isArray(j.request.segmentIds) && (j.request.segmentIds as string[]).includes(id));
    assert.ok(job, 'the automatic restore is a job everyone can see');
    assert.equal(job.state, 'succeeded');
    assert.deepEqual(await answer(), before_);

    // Druid takes the restored files at its next start, again without a pull.
    await stopService('historical');
    await startService('historical');
    const log = historicalLog({ sinceLastStart: true });
    assert.deepEqual(loadedOnStartup(log), [SEGMENTS]);
    assert.doesNotMatch(log, PULL);
    assert.deepEqual(await servedAnswer('after the automatic restore and a restart'), before_);
  });
});
