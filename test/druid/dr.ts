/**
 * What the disaster-recovery tests on a real Apache Druid 33 share (cluster-dr-lost, cluster-dr-kill): a nano cluster
 * with the druid-backup Druid extension loaded (the Overlord inserts lost segment rows in-process) and the sidecar
 * beside its Historical backing up into a target sidecar's store; a cluster sidecar started here (the cluster's local
 * deep storage, its Coordinator and Broker, the target) runs the snapshots and the restores, which the tests ask for
 * through the CLI (dist/sidecar.js) as an operator would.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ClusterRestorePlan, Job, JobAccepted } from '../../sidecar/api.js';
import { runCli } from '../helpers/cli.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { request, SIDECAR_JS, startSidecar, tmpDir, waitFor } from '../helpers/sidecar.js';
import { freePort } from '../helpers/versitygw.js';
import type { DruidEnv } from './cluster.js';
import { configureCluster, REPO_ROOT, sql, SqlError, startCluster, stopCluster } from './cluster.js';
import { tail } from './files.js';

export const STEP_TIMEOUT = 30 * 60_000;
const q = (s: string) => `'${s.replaceAll(`'`, `'\\''`)}'`;

export type Answer = { c: number; s: number };

/** Rows of a small data source: three days, three hours each, a dimension k and a metric v. */
export function rowsOf(seed: number): object[] {
  return [12, 13, 14].flatMap((d) => [1, 2, 3].map((h) => ({ time: `2015-09-${d}T0${h}:00:00Z`, k: `k${h}`, v: seed * 1000 + d * 10 + h })));
}

export function indexSpec(ds: string, rows: object[]) {
  return {
    type: 'index_parallel',
    spec: {
      dataSchema: {
        dataSource: ds,
        timestampSpec: { column: 'time', format: 'iso' },
        dimensionsSpec: { dimensions: ['k'] },
        metricsSpec: [{ type: 'longSum', name: 'v', fieldName: 'v' }],
        granularitySpec: { type: 'uniform', segmentGranularity: 'day', queryGranularity: 'none', rollup: false },
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

/** Every regular file below `dir` (none when it does not exist). */
export function filesBelow(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...filesBelow(p));
    else out.push(p);
  }
  return out;
}

export class DrCluster {
  druid!: DruidEnv;
  home!: string;
  work!: string;
  target: SidecarProcess | undefined;
  cluster: SidecarProcess | undefined;
  private conf!: string;

  constructor(
    private readonly name: string,
    private readonly offset: string,
  ) {}

  get coordinator(): string {
    return this.druid.DRUID_COORDINATOR_URL;
  }

  async start(): Promise<void> {
    const extension = path.join(REPO_ROOT, 'dist', 'druid-extension', 'druid-backup');
    assert.ok(existsSync(extension), `${extension}: run npm run build:druid-extension`);
    mkdirSync(path.join(REPO_ROOT, '.cache'), { recursive: true });
    this.home = mkdtempSync(path.join(REPO_ROOT, '.cache', `druid-${this.name}-`));
    this.work = tmpDir(`dbk-${this.name}-`);
    const extensions = path.join(this.work, 'extensions');
    cpSync(extension, path.join(extensions, 'druid-backup'), { recursive: true });
    this.target = await startSidecar(['--store', path.join(this.work, 'store'), '--node-name', 'backup-target'], {
      stateDir: path.join(this.work, 'target-state'),
      fast: false,
    });
    const tokenFile = path.join(this.work, 'token');
    writeFileSync(tokenFile, `${this.target.token}\n`, { mode: 0o600 });
    configureCluster({
      DRUID_DEV_HOME: this.home,
      DRUID_PORT_OFFSET: this.offset,
      DRUID_EXTENSIONS_DIR: extensions,
      // The Historical's sidecar is the supervised "backup" service below; the extension starts none.
      DRUID_COMMON_EXTRA: 'druid.backup.sidecar.autostart=false',
      DRUID_HISTORICAL_EXTRA: [
        `druid.backup.port=${await freePort()}`,
        'druid.backup.bindAddress=127.0.0.1',
        `druid.backup.tokenFile=${tokenFile}`,
        `druid.backup.target=${this.target.url}`,
        'druid.backup.stateDir=var/druid-backup',
      ].join('\n'),
      DRUID_BACKUP_SIDECAR_CMD: `${q(process.execPath)} ${q(SIDECAR_JS)} sidecar --config conf/druid/historical/runtime.properties`,
      DRUID_START_TIMEOUT: '600',
    });
    this.druid = await startCluster();
    this.conf = path.join(this.work, 'cluster-sidecar', 'runtime.properties');
    mkdirSync(path.dirname(this.conf), { recursive: true });
    writeFileSync(
      this.conf,
      [
        'druid.storage.type=local',
        `druid.storage.storageDirectory=${this.druid.DRUID_DEEP_STORAGE_DIR}`,
        `druid.backup.coordinator=${this.druid.DRUID_COORDINATOR_URL}`,
        `druid.backup.broker=${this.druid.DRUID_BROKER_URL}`,
        `druid.backup.target=${this.target.url}`,
        'druid.backup.snapshotPeriod=PT0S',
      ].join('\n') + '\n',
    );
    await this.startClusterSidecar('cluster-state');
  }

  /** The cluster sidecar, with a state directory of its own (a new one is a sidecar on a new machine). */
  async startClusterSidecar(state: string): Promise<void> {
    await this.cluster?.stop();
    this.cluster = await startSidecar(['--config', this.conf], { token: this.target!.token, stateDir: path.join(this.work, state) });
  }

  /** The disaster: every Druid service stopped, then the metadata store (Derby), deep storage, ZooKeeper's data,
   * the segment cache and the Historical sidecar's state deleted; an empty cluster started again. */
  async loseEverything(): Promise<void> {
    await stopCluster();
    for (const dir of ['var/druid', 'var/zk', 'var/druid-backup']) rmSync(path.join(this.home, dir), { recursive: true, force: true });
    this.druid = await startCluster();
  }

  async stop(broken: boolean): Promise<void> {
    try {
      if (this.druid) await stopCluster();
    } finally {
      await this.cluster?.stop();
      await this.target?.stop();
      if (!broken && !process.env.DBK_KEEP_TMP) {
        if (this.home) rmSync(this.home, { recursive: true, force: true });
        if (this.work) rmSync(this.work, { recursive: true, force: true });
      }
    }
  }

  report(why: string): void {
    const logs = this.druid?.DRUID_LOG_DIR;
    const parts = [`\n===== ${why} (cluster folder kept: ${this.home}) =====`];
    if (logs) for (const name of ['coordinator', 'historical', 'backup', 'indexer']) parts.push(`----- ${name}.log\n${tail(path.join(logs, `${name}.log`), 40)}`);
    if (this.cluster) parts.push(`----- cluster sidecar\n${this.cluster.logs().split('\n').slice(-40).join('\n')}`);
    process.stderr.write(parts.join('\n') + '\n');
  }

  async druidText(urlPath: string, init?: RequestInit): Promise<{ status: number; text: string }> {
    const res = await fetch(`${this.coordinator}${urlPath}`, { ...init, signal: AbortSignal.timeout(60_000) });
    return { status: res.status, text: await res.text() };
  }

  async druidJson<T>(urlPath: string, init?: RequestInit): Promise<T> {
    const r = await this.druidText(urlPath, init);
    if (r.status < 200 || r.status >= 300) throw new Error(`${init?.method ?? 'GET'} ${urlPath}: ${r.status} ${r.text.slice(0, 500)}`);
    return (r.text ? JSON.parse(r.text) : undefined) as T;
  }

  post<T>(urlPath: string, body: unknown): Promise<T> {
    return this.druidJson<T>(urlPath, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  }

  /** The ids of the used segments, read from the metadata store (Druid answers 404 for a data source with none). */
  async used(ds: string): Promise<string[]> {
    const r = await this.druidText(`/druid/coordinator/v1/metadata/datasources/${ds}/segments`);
    if (r.status === 404) return [];
    assert.equal(r.status, 200, r.text);
    return (JSON.parse(r.text) as string[]).sort();
  }

  async task(spec: unknown): Promise<void> {
    const { task: id } = await this.post<{ task: string }>('/druid/indexer/v1/task', spec);
    await waitFor(
      `task ${id}`,
      async () => {
        const s = (await this.druidJson<{ status: { status: string } }>(`/druid/indexer/v1/task/${id}/status`)).status.status;
        if (s === 'FAILED') throw new Error(`task ${id} failed`);
        return s === 'SUCCESS';
      },
      900_000,
      2000,
    );
  }

  answer(ds: string): Promise<Answer> {
    return sql<Answer>(`SELECT COUNT(*) AS c, SUM(v) AS s FROM ${ds}`).then((r) => r[0]!);
  }

  /** Whether the Broker knows no such table. */
  async gone(ds: string): Promise<boolean> {
    try {
      await this.answer(ds);
      return false;
    } catch (e) {
      if (e instanceof SqlError && /not found/i.test(e.body)) return true;
      throw e;
    }
  }

  /** Every used segment served and the SQL layer knowing the table: the answer, never a partial one. */
  async served(ds: string, want?: Answer): Promise<Answer> {
    await waitFor(
      `every used segment of ${ds} loaded`,
      async () =>
        (
          await this.druidJson<Record<string, number>>(
            `/druid/coordinator/v1/datasources/${ds}/loadstatus?forceMetadataRefresh=true&interval=1000-01-01_3000-01-01`,
          )
        )[ds] === 100,
      600_000,
      2000,
    );
    return waitFor(
      `the Broker to answer for ${ds}`,
      async () => {
        const a = await this.answer(ds).catch((e: unknown) => {
          if (e instanceof SqlError && /not found/i.test(e.body)) return undefined;
          throw e;
        });
        return a && (!want || (a.c === want.c && a.s === want.s)) ? a : undefined;
      },
      600_000,
      2000,
    );
  }

  /** A complete snapshot, once every used segment is backed up and the Broker knows every row count. */
  async snapshot(rows: Record<string, number>, request: { dataSources?: string[] } = {}): Promise<{ id: string; time: string; dataSources: Array<{ name: string; bytes: number; segments: number }> }> {
    type Header = { id: string; time: string; complete: boolean; dataSources: Array<{ name: string; rows?: number; bytes: number; segments: number }> };
    return waitFor(
      'a complete snapshot with row counts',
      async () => {
        const r = await this.api<JobAccepted>('POST', '/data/v1/snapshots', request);
        assert.equal(r.status, 202, r.text);
        const job = await this.cluster!.waitForJob(r.json.jobId, 300_000);
        assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
        const s = await this.cluster!.get<Header>(`/data/v1/snapshots/${String(job.result!.snapshot)}`);
        if (s.complete && Object.entries(rows).every(([ds, n]) => s.dataSources.find((d) => d.name === ds)?.rows === n)) return s;
        await new Promise((r) => setTimeout(r, 5000));
        return undefined;
      },
      900_000,
      0,
    );
  }

  api<T>(method: string, urlPath: string, body?: unknown) {
    return request<T>(this.cluster!.url, this.cluster!.token, method, urlPath, body);
  }

  /** `druid-backup cluster-restore` against the cluster sidecar, as an operator runs it. */
  cli(args: string[]) {
    return runCli(['cluster-restore', '--node', this.cluster!.url, '--token', this.cluster!.token, ...args]);
  }

  /** The dry run through the CLI (`--dry-run --json`): the plan it printed. */
  async dryRun(args: string[]): Promise<ClusterRestorePlan> {
    const r = await this.cli([...args, '--dry-run', '--json']);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    return JSON.parse(r.stdout) as ClusterRestorePlan;
  }

  /** The real run through the CLI (`--json`): the plan it printed first, then the finished job. */
  async run(args: string[]): Promise<{ code: number | null; job: Job; stdout: string; stderr: string }> {
    const r = await this.cli([...args, '--json']);
    // Two JSON documents, the plan then the job, each printed with JSON.stringify(…, null, 2).
    const at = r.stdout.indexOf('\n}\n{');
    assert.ok(at > 0, `${r.stdout}\n${r.stderr}`);
    return { code: r.code, job: JSON.parse(r.stdout.slice(at + 3)) as Job, stdout: r.stdout, stderr: r.stderr };
  }
}

/** Every file below `dir` by its path relative to it, with its SHA-256: deep storage byte for byte. */
export function hashesBelow(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of filesBelow(dir).sort()) out[path.relative(dir, f)] = createHash('sha256').update(readFileSync(f)).digest('hex');
  return out;
}

export const stepOf = (p: ClusterRestorePlan, name: string) => p.steps.find((s) => s.step === name)!;
export const brief = (p: ClusterRestorePlan, name: string) => stepOf(p, name).items.map((i) => [i.action, i.subject, i.segments ?? null]);
