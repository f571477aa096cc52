/**
 * How a target makes a batch of small segments durable (druid.backup.storeFlush, util/syncfs.ts), on real target
 * sidecars over loopback. The `sync` on the target's PATH is the test's own: it logs each call and fails while a
 * file says so, which is what the real one cannot be made to do. With `filesystem`, a batch is flushed once before its
 * renames and once after, however many segments it holds; a failed flush makes none of it visible (every segment
 * refused with why, the temporary area emptied, the store consistent) and the same batch sent again is stored. With
 * `files`, no filesystem flush is run at all.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BATCH_CONTENT_TYPE } from '../../sidecar/store/http/batch.js';
import type { AnsweredOutcome as Outcome } from '../helpers/batch.js';
import { VERSION_BIN as VB, batchBody, hourSegmentId as idOf, packedUpload } from '../helpers/batch.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { runCli } from '../helpers/cli.js';
import { startSidecar, tmpDir } from '../helpers/sidecar.js';
import { storedSegmentDir } from '../helpers/store.js';
import { checkStore, loggingSync } from './lib.js';


describe('a batch made durable by flushing the filesystem', () => {
  let sandbox: string;
  let failFlag: string;
  let env: Record<string, string>;
  const started: SidecarProcess[] = [];

  let flushes: () => string[];
  const post = (target: SidecarProcess, body: Buffer) =>
    target.request<{ results: Outcome[] }>('POST', '/data/v1/store/batch', undefined, {
      raw: body,
      headers: { 'content-type': BATCH_CONTENT_TYPE, 'x-druid-backup-node': 'n1' },
    });
  const segments = async (ds: string, n: number) => {
    const files = Array.from({ length: n }, () => ({ 'version.bin': VB, '00000.smoosh': randomBytes(3000), 'meta.smoosh': randomBytes(200) }));
    const ids = files.map((_, h) => idOf(ds, h));
    const parts = await Promise.all(ids.map(async (id, i) => [id, await packedUpload(id, files[i]!)] as [string, Buffer]));
    return { ids, files, body: batchBody(parts) };
  };
  const start = async (name: string, extraEnv: Record<string, string> = {}) => {
    const storeDir = path.join(sandbox, name);
    const t = await startSidecar(['--store', storeDir], { stateDir: path.join(sandbox, `${name}-state`), env: { ...env, ...extraEnv } });
    started.push(t);
    return { t, storeDir };
  };

  before(() => {
    sandbox = tmpDir('dbk-batch-flush-');
    ({ env, failFlag, flushes } = loggingSync(sandbox));
  });
  after(async () => {
    for (const t of started) await t.stop();
    rmSync(sandbox, { recursive: true, force: true });
  });

  test('one flush before the renames and one after, for a whole batch; byte for byte', async () => {
    const { t, storeDir } = await start('store-fs');
    const probed = flushes().length;
    assert.equal(probed, 1, 'the store tried the flush once when it opened');
    const { ids, files, body } = await segments('fsflush', 12);
    const r = await post(t, body);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(
      r.json.results.map((o) => o.outcome),
      ids.map(() => 'stored'),
    );
    assert.deepEqual(flushes().slice(probed), [`--file-system -- ${storeDir}`, `--file-system -- ${storeDir}`], '12 segments, 2 flushes');
    for (const [i, id] of ids.entries()) {
      const dir = storedSegmentDir(storeDir, id);
      for (const [name, b] of Object.entries(files[i]!)) assert.ok(readFileSync(path.join(dir, name)).equals(b), `${id}/${name}`);
    }
    assert.deepEqual(checkStore(storeDir).problems, []);
  });

  test('a failed flush makes nothing of the batch visible; sent again, it is stored', async () => {
    const { t, storeDir } = await start('store-fail');
    const { ids, body } = await segments('failflush', 5);
    writeFileSync(failFlag, '');
    try {
      const r = await post(t, body);
      assert.equal(r.status, 200, r.text);
      for (const o of r.json.results) {
        assert.equal(o.outcome, 'refused', JSON.stringify(o));
        assert.equal(o.status, 500);
        assert.match(o.error!.message, /could not flush .*Input\/output error.*nothing of it was stored/);
      }
    } finally {
      rmSync(failFlag);
    }
    const store = checkStore(storeDir);
    assert.deepEqual(store.problems, []);
    assert.equal(store.segments.size, 0, 'none of the batch is in the store');
    assert.ok(!existsSync(path.join(storeDir, 'segments', 'failflush')) || readdirSync(path.join(storeDir, 'segments', 'failflush')).length === 0);
    assert.deepEqual(readdirSync(path.join(storeDir, '.tmp')), [], 'the temporary area is empty');
    const catalog = await t.get<{ items: unknown[] }>('/data/v1/store/segments?limit=100');
    assert.equal(catalog.items.length, 0);
    assert.ok(
      t.logLines().some((l) => l.msg === 'the store could not flush its disk' && /Input\/output error/.test(String(l.err))),
      'the target logged why',
    );

    const again = await post(t, body);
    assert.deepEqual(
      again.json.results.map((o) => o.outcome),
      ids.map(() => 'stored'),
    );
    assert.equal(checkStore(storeDir).segments.size, 5);
  });

  test('a druid.backup.storeFlush that is neither is refused at start with one clear line, the store untouched', async () => {
    const storeDir = path.join(sandbox, 'store-bad');
    const r = await runCli(['sidecar', '--store', storeDir, '--port', '0', '--state-dir', path.join(sandbox, 'bad-state')], {
      env: { ...env, DRUID_BACKUP_STORE_FLUSH: 'sometimes' },
    });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^druid-backup: environment DRUID_BACKUP_STORE_FLUSH: "sometimes" is not one of filesystem, files$/m);
    assert.ok(!existsSync(storeDir), 'nothing made');
  });

  test('druid.backup.storeFlush=files flushes file by file and never the filesystem', async () => {
    const before = flushes().length;
    const { t, storeDir } = await start('store-files', { DRUID_BACKUP_STORE_FLUSH: 'files' });
    const { ids, body } = await segments('fileflush', 6);
    const r = await post(t, body);
    assert.deepEqual(
      r.json.results.map((o) => o.outcome),
      ids.map(() => 'stored'),
    );
    assert.equal(flushes().length, before, 'no sync run, not even to try it');
    assert.equal(checkStore(storeDir).segments.size, 6);
  });
});
