/**
 * `druid-backup demo` (what `npm start` runs): the local dev cluster on an embedded default. A sample Historical
 * cache, a source sidecar beside it and a target sidecar with a store, both child processes on loopback sharing a
 * generated token, active backup between them; a summary (also written to `{dir}/cluster.json` for tools such as
 * the extension's end-to-end test); running until Ctrl-C, which stops both children.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { API_PREFIX } from '../api.js';
import type { SegmentsResponse } from '../api.js';
import { formatBytes } from '../druid/bytes.js';
import { scanCache } from '../druid/scan.js';
import { BackupError } from '../errors.js';
import { withNodeFlags } from '../runtime.js';
import { writeSampleCache } from '../sample/sampleCache.js';
import { generateToken } from '../server/auth.js';
import { ApiClient } from '../store/http/client.js';
import { intOption } from './options.js';

export const CLUSTER_FILE = 'cluster.json';

/** What `{dir}/cluster.json` holds while the demo runs. */
export interface DemoCluster {
  pid: number;
  dir: string;
  token: string;
  tokenFile: string;
  source: { url: string; node: string; cache: string; config: string; log: string };
  target: { url: string; node: string; store: string; log: string };
  segments: { count: number; bytes: number; dataSources: string[]; backedUp: number };
  startedAt: string;
}

interface Child {
  name: string;
  proc: ChildProcess;
  url: Promise<string>;
  log: string;
}

/** Starts `druid-backup sidecar ...args` as a child writing its log to `log`; resolves `url` once it listens. */
function startChild(name: string, args: string[], log: string, env: NodeJS.ProcessEnv): Child {
  const proc = spawn(process.execPath, [...withNodeFlags(process.execArgv), process.argv[1]!, 'sidecar', ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = createWriteStream(log, { flags: 'a' });
  let buffered = '';
  let errText = '';
  const url = new Promise<string>((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      out.write(d);
      buffered += d.toString('utf8');
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (!line.includes('"sidecar listening"')) continue;
        try {
          resolve(String((JSON.parse(line) as { url: string }).url));
        } catch {
          // not a log line
        }
      }
    });
    proc.stderr!.on('data', (d: Buffer) => {
      out.write(d);
      errText += d.toString('utf8');
    });
    proc.on('exit', (code) =>
      reject(new BackupError('internal', `the ${name} sidecar exited (${code}) before listening: ${errText.trim().split('\n').pop() ?? ''} (log: ${log})`)),
    );
  });
  url.catch(() => undefined);
  return { name, proc, url, log };
}

async function stopChild(c: Child): Promise<void> {
  if (c.proc.exitCode !== null || c.proc.signalCode !== null) return;
  const exited = new Promise((r) => c.proc.once('exit', r));
  c.proc.kill('SIGTERM');
  const timer = setTimeout(() => c.proc.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

export function register(program: Command): void {
  program
    .command('demo')
    .description('run the local dev cluster: a sample Historical cache, a source and a target sidecar on loopback, active backup, a summary; Ctrl-C stops it')
    .option('--dir <dir>', 'where the demo keeps its files (cache, store, state, logs, cluster.json)', '.cache/demo')
    .option('--segments <n>', 'segments in the sample cache when it is created', intOption(1, 100_000), 50)
    .option('--port <port>', 'port of the source sidecar (0: a free one)', intOption(0, 65535), 8484)
    .option('--target-port <port>', 'port of the target sidecar (0: a free one)', intOption(0, 65535), 8485)
    .option('--fresh', 'start from nothing: remove the cache, store and state of an earlier run')
    .action(async (o: { dir: string; segments: number; port: number; targetPort: number; fresh?: boolean }) => {
      const dir = path.resolve(o.dir);
      if (o.fresh) rmSync(dir, { recursive: true, force: true });
      mkdirSync(path.join(dir, 'logs'), { recursive: true });
      const historical = path.join(dir, 'historical');
      const config = path.join(historical, 'runtime.properties');
      if (!existsSync(config)) {
        process.stdout.write(`writing a sample Historical cache of ${o.segments} segments to ${historical} ...\n`);
        await writeSampleCache({
          dir: historical,
          segments: o.segments,
          layout: 'nested',
          dataSources: ['wikipedia', 'web_logs', 'kttm'],
          segmentSize: 256 * 1024,
          smooshChunkSize: 2147483647,
          seed: 1,
        });
      }
      const tokenFile = path.join(dir, 'token');
      if (!existsSync(tokenFile)) writeFileSync(tokenFile, `${generateToken()}\n`, { mode: 0o600 });
      const token = readFileSync(tokenFile, 'utf8').trim();
      const store = path.join(dir, 'store');
      const logs = { source: path.join(dir, 'logs', 'source.log'), target: path.join(dir, 'logs', 'target.log') };
      const common = ['--bind', '127.0.0.1', '--token-file', tokenFile];

      const children: Child[] = [];
      let stopping = false;
      const stopAll = async (code: number) => {
        if (stopping) return;
        stopping = true;
        process.stdout.write('\nstopping the demo cluster ...\n');
        await Promise.all(children.map(stopChild));
        rmSync(path.join(dir, CLUSTER_FILE), { force: true });
        process.stdout.write('stopped.\n');
        process.exit(code);
      };
      process.on('SIGINT', () => void stopAll(0));
      process.on('SIGTERM', () => void stopAll(0));

      const target = startChild(
        'target',
        ['--store', store, '--state-dir', path.join(dir, 'target-state'), '--port', String(o.targetPort), '--node-name', 'demo-target', ...common],
        logs.target,
        {},
      );
      children.push(target);
      const targetUrl = await target.url;
      const source = startChild(
        'source',
        [
          '--config',
          config,
          '--target',
          targetUrl,
          '--state-dir',
          path.join(dir, 'source-state'),
          '--port',
          String(o.port),
          '--node-name',
          'demo-historical',
          ...common,
        ],
        logs.source,
        { DRUID_BACKUP_SETTLE_TIME: process.env.DRUID_BACKUP_SETTLE_TIME ?? 'PT1S' },
      );
      children.push(source);
      const sourceUrl = await source.url;
      for (const c of children) {
        c.proc.on('exit', (code) => {
          if (stopping) return;
          process.stderr.write(`the ${c.name} sidecar exited unexpectedly (${code}); see ${c.log}\n`);
          void stopAll(1);
        });
      }

      const scan = await scanCache({ locations: [{ path: path.join(historical, 'segment-cache') }] });
      const complete = scan.segments.filter((s) => s.state === 'complete');
      const client = new ApiClient(sourceUrl, { token, echoMessages: true });
      let backedUp = 0;
      for (let i = 0; ; i++) {
        backedUp = (await client.get<SegmentsResponse>(`${API_PREFIX}/segments`, { state: 'backedUp', limit: 1 })).total;
        if (backedUp >= complete.length || i >= 600) break;
        if (i % 10 === 0) process.stdout.write(`active backup: ${backedUp} of ${complete.length} segments backed up ...\n`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const bytes = complete.reduce((n, s) => n + s.size, 0);
      const dataSources = [...new Set(complete.map((s) => s.dataSource))].sort();
      const cluster: DemoCluster = {
        pid: process.pid,
        dir,
        token,
        tokenFile,
        source: { url: sourceUrl, node: 'demo-historical', cache: path.join(historical, 'segment-cache'), config, log: logs.source },
        target: { url: targetUrl, node: 'demo-target', store, log: logs.target },
        segments: { count: complete.length, bytes, dataSources, backedUp },
        startedAt: new Date().toISOString(),
      };
      writeFileSync(path.join(dir, CLUSTER_FILE), `${JSON.stringify(cluster, null, 2)}\n`);
      const rel = (p: string) => path.relative(process.cwd(), p) || '.';
      process.stdout.write(
        [
          '',
          'druid-backup demo cluster is running; Ctrl-C stops it.',
          '',
          `  source sidecar  ${sourceUrl}   beside the sample Historical cache ${rel(cluster.source.cache)}`,
          `  target sidecar  ${targetUrl}   keeping backups in ${rel(store)}`,
          `  token           ${token}   (in ${rel(tokenFile)})`,
          `  backed up       ${backedUp} of ${complete.length} segments, ${formatBytes(bytes)}, data sources ${dataSources.join(', ')}`,
          `  logs            ${rel(logs.source)}, ${rel(logs.target)}`,
          `  cluster.json    ${rel(path.join(dir, CLUSTER_FILE))}`,
          '',
          'Try:',
          `  curl -H "Authorization: Bearer $(cat ${rel(tokenFile)})" '${sourceUrl}/data/v1/segments?limit=5'`,
          `  curl -H "Authorization: Bearer $(cat ${rel(tokenFile)})" '${targetUrl}/data/v1/store/segments?limit=5'`,
          `  node dist/sidecar.js backup --node ${sourceUrl} --target ${targetUrl} --token-file ${rel(tokenFile)} --wait`,
          `  node dist/sidecar.js sample-cache /tmp/more --segments 5 --data-sources extra --seed 2 && cp -r /tmp/more/segment-cache/extra ${rel(cluster.source.cache)}/   # backed up within seconds`,
          '',
        ].join('\n'),
      );
      await new Promise<never>(() => undefined);
    });
}
