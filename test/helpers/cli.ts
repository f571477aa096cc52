/** Runs the built CLI (dist/sidecar.js) as a real process. */
import { spawn } from 'node:child_process';
import path from 'node:path';

/** DBK_SIDECAR_JS runs another build (the benchmark compares a copy of an older dist/ with the current one). */
export const SIDECAR_JS = process.env.DBK_SIDECAR_JS ? path.resolve(process.env.DBK_SIDECAR_JS) : path.resolve(__dirname, '../../dist/sidecar.js');

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SIDECAR_JS, ...args], { env: { ...process.env, ...opts.env }, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}
