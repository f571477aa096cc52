/**
 * Snapshot metadata on a real Apache Druid 33 (issue 21): a retention rule and a compaction config set through
 * Druid's API come back from captureClusterMetadata byte for byte as Druid returns them; the row counts of the
 * ingested segments, from sys.segments, add up to what SQL counts; and the cluster sidecar, started by the Druid
 * extension beside the Coordinator, answers with its role.
 *
 * Its own cluster (port offset 600 unless DRUID_PORT_OFFSET says otherwise, its own folder under .cache), so it runs
 * beside the other Druid tests. The extension is loaded by every service; the Historical's sidecar is not started
 * (autostart=false), only the Coordinator's; the Coordinator runs the Overlord, so it also serves the committed offsets.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import type { NodeInfo } from '../../sidecar/api.js';
import { isLeader } from '../../sidecar/cluster/leader.js';
import { captureClusterMetadata } from '../../sidecar/cluster/metadata.js';
import { countRows } from '../../sidecar/cluster/rows.js';
import { configureCluster, ingest, REPO_ROOT, startCluster, stopCluster } from './cluster.js';
import type { DruidEnv } from './cluster.js';
import { tail } from './files.js';

const SIDECAR_JS = path.join(REPO_ROOT, 'dist', 'sidecar.js');
const TOKEN = `meta-${Date.now()}-${Math.random().toString(36).slice(2)}-token`;
const TOKEN_VARIABLE = 'DBK_CLUSTER_META_TEST_TOKEN';
const DS = 'wikipedia';
const log = pino({ level: 'silent' });

let tmp: string;
let druidHome: string;
let druid: DruidEnv | undefined;
let sidecarUrl: string;

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

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 180_000): Promise<T> {
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
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** Druid's answer as text, exactly as it sent it. */
async function druidText(url: string, init?: RequestInit): Promise<{ status: number; text: string }> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(30_000) });
  return { status: res.status, text: await res.text() };
}

async function post(url: string, body: unknown): Promise<void> {
  const r = await druidText(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  assert.ok(r.status >= 200 && r.status < 300, `POST ${url}: ${r.status} ${r.text}`);
}

describe('snapshot metadata on a real Druid 33', { concurrency: false, timeout: 1_800_000 }, () => {
  before(async () => {
    assert.ok(existsSync(SIDECAR_JS), 'dist/sidecar.js: run npm run build');
    execFileSync(process.execPath, [path.join(REPO_ROOT, 'scripts', 'build-druid-extension.mjs')], { stdio: 'inherit' });
    tmp = mkdtempSync(path.join(os.tmpdir(), 'dbk-meta-'));
    const extensions = path.join(tmp, 'extensions');
    mkdirSync(extensions);
    cpSync(path.join(REPO_ROOT, 'dist', 'druid-extension', 'druid-backup'), path.join(extensions, 'druid-backup'), { recursive: true });
    sidecarUrl = `http://127.0.0.1:${await freePort()}`;
    mkdirSync(path.join(REPO_ROOT, '.cache'), { recursive: true });
    druidHome = mkdtempSync(path.join(REPO_ROOT, '.cache', 'druid-cluster-meta-'));
    configureCluster({
      DRUID_PORT_OFFSET: process.env.DRUID_PORT_OFFSET ?? '600',
      DRUID_DEV_HOME: druidHome,
      DRUID_EXTENSIONS_DIR: extensions,
      DRUID_BACKUP_SIDECAR_CMD: undefined,
      DRUID_HISTORICAL_EXTRA: 'druid.backup.sidecar.autostart=false',
      [TOKEN_VARIABLE]: TOKEN,
      // Read by the Coordinator's extension and by the cluster sidecar it starts (the sidecar reads _common too).
      DRUID_COMMON_EXTRA: [
        `druid.backup.sidecar.url=${sidecarUrl}`,
        `druid.backup.sidecar.token={"type":"environment","variable":"${TOKEN_VARIABLE}"}`,
        `druid.backup.stateDir=${tmp}/cluster-sidecar`,
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

  test('the rules and the compaction config set come back byte for byte as Druid returns them', async () => {
    const c = druid!.DRUID_COORDINATOR_URL;
    await post(`${c}/druid/coordinator/v1/rules/${DS}`, [
      { type: 'loadByPeriod', period: 'P5000Y', tieredReplicants: { _default_tier: 1 } },
      { type: 'dropForever' },
    ]);
    // A skip offset far in the past keeps the Coordinator from compacting by itself while the test runs.
    await post(`${c}/druid/coordinator/v1/config/compaction`, {
      dataSource: DS,
      skipOffsetFromLatest: 'P1000Y',
      tuningConfig: { partitionsSpec: { type: 'dynamic', maxRowsPerSegment: 5_000_000, maxTotalRows: 9_000_000 } },
    });
    const rules = await druidText(`${c}/druid/coordinator/v1/rules`);
    const compaction = await druidText(`${c}/druid/coordinator/v1/config/compaction`);
    assert.equal(rules.status, 200);
    assert.match(rules.text, /"wikipedia":\[\{[^\]]*"loadByPeriod"/);
    assert.match(compaction.text, /"dataSource":"wikipedia"/);

    const m = await captureClusterMetadata({ coordinator: c, log });
    assert.equal(m.rules, rules.text, 'the rules byte for byte');
    assert.equal(m.compaction, compaction.text, 'the compaction config byte for byte');
    assert.equal(m.druidVersion, druid!.DRUID_VERSION);
    assert.equal(m.coordinatorDynamicConfig, (await druidText(`${c}/druid/coordinator/v1/config`)).text);
    assert.equal(m.supervisors, '[]');
    // Never configured on this cluster: 404 for lookups and an empty worker config both mean none.
    assert.equal(m.lookups, null);
    assert.equal(m.overlordDynamicConfig, null);
    assert.equal(m.errors, undefined, JSON.stringify(m.errors));
    assert.deepEqual(m.redacted, []);
    assert.equal(m.offsets.captured, false);
    // Narrowed to a data source without rules: the default rules only, the same bytes.
    const other = await captureClusterMetadata({ coordinator: c, dataSources: ['other'], log });
    const defaults = (JSON.parse(rules.text) as Record<string, unknown>)._default;
    assert.deepEqual(JSON.parse(other.rules as string), { _default: defaults });
    assert.ok(rules.text.includes((other.rules as string).slice('{"_default":'.length, -1)));
  });

  test('committed offsets come from the druid-backup extension on the Overlord (the Coordinator running it)', async () => {
    const c = druid!.DRUID_COORDINATOR_URL;
    const direct = await druidText(`${c}/druid-ext/druid-backup/v1/offsets?dataSource=${DS}`);
    // A batch data source has no committed metadata: null, from Druid's own metadata store.
    assert.deepEqual({ status: direct.status, json: JSON.parse(direct.text) as unknown }, { status: 200, json: { dataSources: { [DS]: null } } });
    assert.equal((await druidText(`${c}/druid-ext/druid-backup/v1/offsets`)).status, 400);
    const m = await captureClusterMetadata({ coordinator: c, dataSources: [DS], log });
    assert.deepEqual(m.offsets, { captured: true, dataSources: { [DS]: null } });
  });

  test('row counts from sys.segments for exactly the used segments add up to what SQL counts', async () => {
    const ids = (await (await fetch(`${druid!.DRUID_COORDINATOR_URL}/druid/coordinator/v1/metadata/datasources/${DS}/segments`)).json()) as string[];
    assert.ok(ids.length > 0);
    const counts = await waitFor('the Broker to know every row count', async () => {
      const r = await countRows(druid!.DRUID_BROKER_URL, { [DS]: [...ids, `${DS}_2000-01-01T00:00:00.000Z_2000-01-02T00:00:00.000Z_v'); --`] });
      return r.byDataSource[DS]?.counted === ids.length ? r : undefined;
    });
    assert.deepEqual(counts.byDataSource[DS], { rows: 39_244, counted: ids.length, unknown: 1 });
  });

  test('the Coordinator leads; the cluster sidecar the extension started beside it answers with role cluster', async () => {
    assert.equal(await isLeader(druid!.DRUID_COORDINATOR_URL), true);
    const node = await waitFor('the cluster sidecar', async () => {
      const res = await fetch(`${sidecarUrl}/data/v1/node`, { headers: { Authorization: `Bearer ${TOKEN}` }, signal: AbortSignal.timeout(5000) });
      return res.status === 200 ? ((await res.json()) as NodeInfo) : undefined;
    }).catch((e: unknown) => {
      throw new Error(`${String(e)}\n${tail(path.join(druid!.DRUID_LOG_DIR, 'coordinator.log'), 80)}`);
    });
    assert.deepEqual(node.roles, ['cluster']);
    assert.deepEqual(node.druid.locations, []);
    const coordinatorLog = readFileSync(path.join(druid!.DRUID_LOG_DIR, 'coordinator.log'), 'utf8');
    assert.match(
      coordinatorLog,
      new RegExp(`starting the druid-backup sidecar: .*--coordinator http://127\\.0\\.0\\.1:${new URL(druid!.DRUID_COORDINATOR_URL).port}`),
    );
  });
});
