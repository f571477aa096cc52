import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { CacheIndex } from '../../../sidecar/backup/cacheIndex.js';
import { SourceState } from '../../../sidecar/backup/state.js';
import type { SidecarConfig } from '../../../sidecar/config.js';
import { writeSampleCache } from '../../../sidecar/sample/sampleCache.js';
import { EventBus } from '../../../sidecar/services/events.js';

const log = pino({ level: 'silent' });

test("a transfer's refresh keeps the segment held when nothing changed, and makes a new one (the held one as it was) when its files or info_dir entry did", async () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'dbk-cacheindex-'));
  const sample = await writeSampleCache({ dir: path.join(root, 'historical'), segments: 3, layout: 'flat', dataSources: ['ds'], segmentSize: 2048, smooshChunkSize: 2147483647, seed: 3 });
  const config = { druid: { locations: [{ path: sample.location }], infoDir: sample.infoDir } } as unknown as SidecarConfig;
  const index = new CacheIndex({ config, state: new SourceState(path.join(root, 'state'), log), events: new EventBus(), log });
  await index.scan();
  const [a, b, c] = index.all().sort((x, y) => (x.id < y.id ? -1 : 1));
  const held = structuredClone([a, b, c]);

  assert.equal(await index.refresh(a!.dir), a, 'unchanged: the object held');

  const rewritten = { ...JSON.parse(readFileSync(path.join(sample.infoDir, a!.id), 'utf8')), binaryVersion: 9 };
  writeFileSync(path.join(sample.infoDir, a!.id), JSON.stringify(rewritten));
  const a2 = await index.refresh(a!.dir);
  assert.notEqual(a2, a);
  assert.equal((a2!.descriptor as { binaryVersion?: number }).binaryVersion, 9, 'the descriptor read again');
  assert.equal(index.get(a!.id), a2);

  rmSync(path.join(sample.infoDir, b!.id));
  const b2 = await index.refresh(b!.dir);
  assert.notEqual(b2, b);
  assert.equal(b2!.descriptor, undefined);
  assert.equal(b2!.infoFile, undefined);

  appendFileSync(path.join(c!.dir, 'meta.smoosh'), 'x');
  const c2 = await index.refresh(c!.dir);
  assert.notEqual(c2, c);
  assert.equal(c2!.size, c!.size + 1);

  assert.deepEqual([a, b, c], held, 'what was held is as it was');
});
