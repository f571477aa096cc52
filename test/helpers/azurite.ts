/**
 * A real Azure Blob service for tests and benchmarks: Azurite, Microsoft's emulator (devDependency `azurite`), started
 * on a free loopback port with a temporary workspace, with the emulator's well-known account. It refuses API versions
 * newer than its own unless told not to: `--skipApiVersionCheck`, since the SDK is newer than the emulator.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { freePort } from './versitygw.js';

const AZURITE_BIN = path.resolve(__dirname, '../../node_modules/.bin/azurite-blob');
/** The emulator's documented development account (not a secret: it is in Microsoft's docs and Azurite's source). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface Azurite {
  /** `http://127.0.0.1:PORT/devstoreaccount1`: the blob service URL. */
  endpoint: string;
  port: number;
  connectionString: string;
  /** The variables that point the SDK (and the sidecar) at this emulator, as an operator sets them. */
  env: Record<string, string>;
  service: BlobServiceClient;
  createContainer(name: string): Promise<void>;
  /** Stops the emulator (SIGKILL when `hard`) and keeps its workspace; `start` brings it back on the same port. */
  stop(opts?: { hard?: boolean }): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

async function waitListening(endpoint: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`azurite exited (${child.exitCode ?? child.signalCode}): ${output().slice(-2000)}`);
    try {
      // Any HTTP answer (400 for an unsigned request) means it listens.
      await fetch(`${endpoint}?comp=list`);
      return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`azurite did not answer ${endpoint} within 30 s: ${output().slice(-2000)}`);
}

export async function startAzurite(): Promise<Azurite> {
  const location = mkdtempSync(path.join(os.tmpdir(), 'dbk-azurite-'));
  let port = 0;
  let child: ChildProcess | undefined;
  let output = '';
  const spawnAt = (p: number): ChildProcess => {
    output = '';
    const c = spawn(
      process.execPath,
      [AZURITE_BIN, '--location', location, '--blobHost', '127.0.0.1', '--blobPort', String(p), '--skipApiVersionCheck', '--disableTelemetry', '--silent'],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? location } },
    );
    c.stdout!.on('data', (d) => (output += d));
    c.stderr!.on('data', (d) => (output += d));
    child = c;
    return c;
  };
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    const c = spawnAt(port);
    try {
      await waitListening(`http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`, c, () => output);
      break;
    } catch (e) {
      c.kill('SIGKILL');
      if (attempt >= 3 || !/EADDRINUSE|address already in use/i.test(output)) throw e;
    }
  }
  const stopChild = async (signal: NodeJS.Signals): Promise<void> => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill(signal);
    await exited;
  };
  const endpoint = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
  const connectionString = `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${endpoint};`;
  const service = BlobServiceClient.fromConnectionString(connectionString);
  return {
    endpoint,
    port,
    connectionString,
    env: { AZURE_STORAGE_CONNECTION_STRING: connectionString },
    service,
    async createContainer(name) {
      await service.getContainerClient(name).create();
    },
    async stop({ hard = false } = {}) {
      await stopChild(hard ? 'SIGKILL' : 'SIGTERM');
    },
    async start() {
      const c = spawnAt(port);
      await waitListening(endpoint, c, () => output);
    },
    async close() {
      await stopChild('SIGKILL');
      rmSync(location, { recursive: true, force: true });
    },
  };
}
