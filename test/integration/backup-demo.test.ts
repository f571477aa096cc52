/**
 * `npm start` (the demo): a sample cache, a source and a target sidecar as child processes, active backup, a
 * summary and cluster.json; Ctrl-C stops both children.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { StoreCatalogResponse } from '../../sidecar/api.js';
import type { DemoCluster } from '../../sidecar/commands/demo.js';
import { SIDECAR_JS, request, tmpDir, waitFor } from '../helpers/sidecar.js';

test('the demo runs a source and a target with active backup, writes cluster.json and stops on Ctrl-C', async () => {
  const dir = tmpDir('dbk-demo-');
  const demo = spawn(process.execPath, [SIDECAR_JS, 'demo', '--dir', dir, '--segments', '8', '--port', '0', '--target-port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, DRUID_BACKUP_SETTLE_TIME: 'PT0.2S' },
  });
  let out = '';
  demo.stdout.on('data', (d) => (out += d));
  demo.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => demo.on('exit', (code) => r(code)));
  try {
    const file = path.join(dir, 'cluster.json');
    const cluster = await waitFor('cluster.json', () => (existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as DemoCluster) : undefined), 60_000);
    assert.equal(cluster.segments.count, 8);
    assert.equal(cluster.segments.backedUp, 8);
    assert.equal(cluster.token, readFileSync(cluster.tokenFile, 'utf8').trim());
    await waitFor('the summary', () => out.includes('Ctrl-C stops it'));
    assert.ok(out.includes(cluster.source.url) && out.includes(cluster.target.url) && out.includes(cluster.token), out);
    const catalog = await request<StoreCatalogResponse>(cluster.target.url, cluster.token, 'GET', '/data/v1/store/segments');
    assert.equal(catalog.json.total, 8);
    assert.deepEqual(catalog.json.items[0]!.sources, ['demo-historical']);
    assert.equal((await request(cluster.source.url, null, 'GET', '/data/v1/node')).status, 401);

    demo.kill('SIGINT');
    assert.equal(await exited, 0, out);
    assert.ok(!existsSync(file), 'cluster.json is removed when the demo stops');
    for (const url of [cluster.source.url, cluster.target.url]) await assert.rejects(fetch(`${url}/status/health`), `${url} is stopped`);
  } finally {
    demo.kill('SIGKILL');
  }
});
