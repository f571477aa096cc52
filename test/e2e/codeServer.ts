/**
 * A real VS Code for the end-to-end test: code-server (installed by scripts/install-code-server.sh into
 * .cache/code-server), with the extension installed from its .vsix, on a free loopback port, everything it
 * writes under one temporary directory. `stop()` ends its whole process group (its file watchers too).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '../..');
export const CODE_SERVER = path.join(ROOT, '.cache/code-server/node_modules/code-server/out/node/entry.js');

export interface CodeServer {
  url: string;
  log(): string;
  stop(): Promise<void>;
}

function env(home: string): NodeJS.ProcessEnv {
  // Its config, data and sockets go under `home`, not the user's.
  return {
    ...process.env,
    HOME: home,
    XDG_CONFIG_HOME: path.join(home, 'config'),
    XDG_DATA_HOME: path.join(home, 'data'),
    XDG_CACHE_HOME: path.join(home, 'cache'),
    XDG_RUNTIME_DIR: path.join(home, 'run'),
    TMPDIR: path.join(home, 'tmp'),
  };
}

function dirs(home: string) {
  const d = {
    extensions: path.join(home, 'extensions'),
    userData: path.join(home, 'user-data'),
    config: path.join(home, 'config.yaml'),
  };
  for (const p of [d.extensions, path.join(d.userData, 'User'), path.join(home, 'tmp'), path.join(home, 'run'), path.join(home, 'config')])
    mkdirSync(p, { recursive: true });
  return d;
}

export function requireCodeServer(): void {
  if (!existsSync(CODE_SERVER))
    throw new Error(
      `code-server is not installed at ${CODE_SERVER}: npm test installs it on first use; run scripts/install-code-server.sh to install it or see what is missing`,
    );
}

/** Installs a .vsix the way a person does (`code-server --install-extension`). */
export function installExtension(home: string, vsix: string): string {
  const d = dirs(home);
  const r = spawnSync(
    process.execPath,
    [CODE_SERVER, '--config', d.config, '--extensions-dir', d.extensions, '--user-data-dir', d.userData, '--install-extension', vsix],
    {
      env: env(home),
      encoding: 'utf8',
      timeout: 120_000,
    },
  );
  const out = `${r.stdout}${r.stderr}`;
  if (r.status !== 0 || !/successfully installed/i.test(out)) throw new Error(`installing ${vsix} failed (${r.status}): ${out}`);
  return out;
}

export async function startCodeServer(opts: { home: string; folder: string; settings: Record<string, unknown> }): Promise<CodeServer> {
  const d = dirs(opts.home);
  writeFileSync(path.join(d.userData, 'User/settings.json'), JSON.stringify(opts.settings, null, 2));
  const args = [
    CODE_SERVER,
    '--config',
    d.config,
    '--auth',
    'none',
    '--bind-addr',
    '127.0.0.1:0',
    '--disable-telemetry',
    '--disable-update-check',
    '--disable-workspace-trust',
    '--disable-getting-started-override',
    '--extensions-dir',
    d.extensions,
    '--user-data-dir',
    d.userData,
    opts.folder,
  ];
  const child: ChildProcess = spawn(process.execPath, args, { env: env(opts.home), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout!.on('data', (b) => (log += b));
  child.stderr!.on('data', (b) => (log += b));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        // already gone
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      }, 5000);
      await exited;
      clearTimeout(timer);
    }
    // Its watchers and helpers share the group: make sure none is left.
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // none left
    }
  };
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`code-server did not start within 60 s:\n${log}`)), 60_000);
      const check = () => {
        const m = /HTTP server listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(log);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      };
      child.stdout!.on('data', check);
      child.stderr!.on('data', check);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`code-server exited with ${code}:\n${log}`));
      });
    });
    return { url, log: () => log, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
