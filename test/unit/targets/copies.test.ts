import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { CopyCatalog } from '../../../sidecar/targets/copies.js';

const log = pino({ level: 'silent' });
const id = 'wikipedia_2015-09-12T00:00:00.000Z_2015-09-12T01:00:00.000Z_v1';
const digest = 'a'.repeat(64);

test('a damaged copy stays damaged through "held" answers and restarts, until it is verified clean', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dbk-copies-'));
  const c = new CopyCatalog(dir, log);
  c.holds(id, 'http://a', digest, true);
  c.holds(id, 'http://b', digest, true);
  c.damaged(id, 'http://a', '00000.smoosh has sha256 1, the manifest 2');
  // A listing or a have-it check says nothing of the bytes.
  c.holds(id, 'http://a', digest);
  assert.deepEqual(
    c.damagedCopies(id).map((d) => [d.target, d.problem]),
    [['http://a', '00000.smoosh has sha256 1, the manifest 2']],
  );
  // On disk at once: a kill -9 now keeps it.
  const after = new CopyCatalog(dir, log);
  assert.equal(after.damagedCopies(id).length, 1);
  after.holds(id, 'http://a', digest, true);
  assert.deepEqual(after.damagedCopies(id), []);
  after.close();
  c.close();
  assert.deepEqual(new CopyCatalog(dir, log).damagedCopies(id), []);
});
