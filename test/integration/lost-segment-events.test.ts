/**
 * A segment whose files leave the cache while its info_dir entry stays is lost (Druid believes it serves it): the
 * sidecar keeps listing it as `missing` and publishes that as a `segment` event, so the VS Code views keep it as a
 * lost row. A Druid drop (info_dir entry first, files after) is a `segment-removed` event and leaves the listing.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { SegmentsResponse } from '../../sidecar/api.js';
import type { SampleResult } from '../../sidecar/sample/sampleCache.js';
import { writeSampleCache } from '../../sidecar/sample/sampleCache.js';
import { runCli } from '../helpers/cli.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { startSidecar, tmpDir, waitFor } from '../helpers/sidecar.js';

async function segmentDirs(props: string): Promise<Map<string, string>> {
  const r = await runCli(['scan', '--config', props, '--json']);
  return new Map((JSON.parse(r.stdout) as { segments: Array<{ id: string; dir: string }> }).segments.map((s) => [s.id, s.dir]));
}

describe('lost and dropped segments as the API reports them', () => {
  let source: SidecarProcess;
  let sample: SampleResult;
  let events = '';
  const ac = new AbortController();

  before(async () => {
    sample = await writeSampleCache({
      dir: tmpDir('dbk-lost-cache-'),
      segments: 3,
      layout: 'nested',
      dataSources: ['wikipedia'],
      segmentSize: 4096,
      smooshChunkSize: 2147483647,
      seed: 11,
    });
    source = await startSidecar(['--config', sample.propertiesFile, '--node-name', 'lost-source']);
    await source.get<SegmentsResponse>('/data/v1/segments?limit=1000');
    const res = await fetch(`${source.url}/data/v1/events`, { headers: { authorization: `Bearer ${source.token}` }, signal: ac.signal });
    assert.equal(res.status, 200);
    void (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) events += decoder.decode(chunk);
    })().catch(() => undefined);
  });
  after(async () => {
    ac.abort();
    await source?.stop();
  });

  test('files gone with the info_dir entry kept: listed and published as missing; a drop: removed', async () => {
    const dirs = await segmentDirs(sample.propertiesFile);
    const [lostId, droppedId] = sample.segmentIds;
    rmSync(dirs.get(lostId!)!, { recursive: true, force: true });
    // Druid's drop order: the info_dir entry, then the files.
    rmSync(path.join(sample.infoDir, droppedId!), { force: true });
    rmSync(dirs.get(droppedId!)!, { recursive: true, force: true });

    // A passive node reads its cache again on a listing once its index is a few seconds old.
    const listed = await waitFor(
      'the lost segment listed as missing',
      async () => {
        const page = await source.get<SegmentsResponse>('/data/v1/segments?limit=1000');
        return page.items.find((s) => s.id === lostId && s.state === 'missing') ? page : undefined;
      },
      20_000,
      500,
    );
    assert.equal(
      listed.items.find((s) => s.id === droppedId),
      undefined,
      'a dropped segment leaves the listing',
    );
    await waitFor('the lost segment published as missing', () =>
      events.split('\n\n').some((e) => e.includes('event: segment\n') && e.includes(`"id":"${lostId}"`) && e.includes('"state":"missing"')),
    );
    await waitFor('the dropped segment published as removed', () =>
      events.split('\n\n').some((e) => e.includes('event: segment-removed') && e.includes(droppedId!)),
    );
    assert.ok(!events.split('\n\n').some((e) => e.includes('event: segment-removed') && e.includes(lostId!)), 'the lost one is not removed');
  });
});
