/**
 * A real S3 server for tests and benchmarks: VersityGW (installed into .cache/bin by scripts/install-versitygw.sh,
 * which `npm test`, `npm run test:e2e` and `npm run bench` run first), started on a free loopback port with a
 * temporary posix root. Objects are plain files under
 * `{root}/{bucket}/{key}`, so a test can hash what arrived without an S3 client.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';

export const VERSITYGW_BIN = process.env.VERSITYGW_BIN ?? path.resolve(__dirname, '../../.cache/bin/versitygw');

/**
 * Throws, saying why, when VersityGW is not installed. A test file calls it at its top, so that a missing server fails
 * the file with this line instead of cancelling its tests behind a failed `before`.
 */
export function requireVersityGw(): void {
  if (!existsSync(VERSITYGW_BIN))
    throw new Error(
      `VersityGW is not installed at ${VERSITYGW_BIN}: npm test installs it on first use; run scripts/install-versitygw.sh to install it or see what is missing (it needs Go)`,
    );
}

/** For the benches: installs VersityGW on first use into .cache/bin (the script says what is missing, e.g. Go). */
export function installVersityGw(forWhat: string): void {
  try {
    execFileSync('bash', [path.resolve(__dirname, '../../scripts/install-versitygw.sh')], { stdio: 'inherit' });
  } catch {
    throw new Error(`VersityGW could not be installed for ${forWhat}: scripts/install-versitygw.sh says why above`);
  }
}

export interface VersityGw {
  /** `http://127.0.0.1:PORT` */
  endpoint: string;
  port: number;
  /** The posix root: bucket `b`, key `k` is the file `{root}/b/k`. */
  root: string;
  accessKey: string;
  secretKey: string;
  /** The standard AWS variables that point an SDK (and the sidecar) at this server. */
  env: Record<string, string>;
  client: S3Client;
  process: ChildProcess;
  createBucket(name: string): Promise<void>;
  /** Stops the server (SIGKILL when `hard`, as a crash) and keeps the root; `start` can bring it back on the same port. */
  stop(opts?: { hard?: boolean }): Promise<void>;
  start(): Promise<void>;
  /** Stops the server and removes the root. */
  close(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

async function waitHealthy(endpoint: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`versitygw exited (${child.exitCode ?? child.signalCode}): ${output().slice(-2000)}`);
    try {
      const r = await fetch(`${endpoint}/health`);
      if (r.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`versitygw did not answer ${endpoint}/health within 15 s: ${output().slice(-2000)}`);
}

export async function startVersityGw(opts: { rootParent?: string } = {}): Promise<VersityGw> {
  requireVersityGw();
  const root = mkdtempSync(path.join(opts.rootParent ?? os.tmpdir(), 'dbk-s3root-'));
  const accessKey = 'dbk-test-key';
  const secretKey = `secret-${randomBytes(12).toString('hex')}`;
  let port = 0;
  let child: ChildProcess | undefined;
  let output = '';

  const launch = async (): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      if (!port || attempt > 0) port = await freePort();
      output = '';
      const c = spawn(VERSITYGW_BIN, ['--port', `127.0.0.1:${port}`, '--health', '/health', '--quiet', 'posix', root], {
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? root, ROOT_ACCESS_KEY: accessKey, ROOT_SECRET_KEY: secretKey },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      c.stdout!.on('data', (d) => (output += d));
      c.stderr!.on('data', (d) => (output += d));
      child = c;
      try {
        await waitHealthy(`http://127.0.0.1:${port}`, c, () => output);
        return;
      } catch (e) {
        c.kill('SIGKILL');
        // another test may have taken the port between freePort() and the bind: try another one
        if (attempt >= 3 || !/address already in use/i.test(output)) throw e;
      }
    }
  };
  const stopChild = async (signal: NodeJS.Signals): Promise<void> => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill(signal);
    await exited;
  };

  await launch();
  // The SDK is pinned; its notice about Node releases of 2027 is noise in test output.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: accessKey, secretAccessKey: secretKey } });
  const gw: VersityGw = {
    endpoint,
    port,
    root,
    accessKey,
    secretKey,
    env: { AWS_ENDPOINT_URL_S3: endpoint, AWS_ACCESS_KEY_ID: accessKey, AWS_SECRET_ACCESS_KEY: secretKey, AWS_REGION: 'us-east-1' },
    client,
    get process() {
      return child!;
    },
    async createBucket(name) {
      await client.send(new CreateBucketCommand({ Bucket: name }));
    },
    async stop({ hard = false } = {}) {
      await stopChild(hard ? 'SIGKILL' : 'SIGTERM');
    },
    async start() {
      const keep = port;
      output = '';
      const c = spawn(VERSITYGW_BIN, ['--port', `127.0.0.1:${keep}`, '--health', '/health', '--quiet', 'posix', root], {
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? root, ROOT_ACCESS_KEY: accessKey, ROOT_SECRET_KEY: secretKey },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      c.stdout!.on('data', (d) => (output += d));
      c.stderr!.on('data', (d) => (output += d));
      child = c;
      await waitHealthy(endpoint, c, () => output);
    },
    async close() {
      client.destroy();
      await stopChild('SIGKILL');
      rmSync(root, { recursive: true, force: true });
    },
  };
  return gw;
}
