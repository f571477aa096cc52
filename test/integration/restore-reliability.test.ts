/**
 * Restore reliability with real sidecars (issue 19): a node keeps two copies (copies=2) on targets A and B; a byte
 * of A's copy rots, B goes down, the node loses its cache while the info_dir entries stay. The automatic restore
 * refuses A's copy, waits for B instead of giving the segment up, restores it within seconds of B answering, and
 * repairs A's copy, which then verifies clean. With no good copy anywhere the segment is reported unrecoverable
 * from backups with every holder named, and nothing is installed. A target's own verify marks a copy damaged and
 * the node repairs it after its next reconcile; a manual restore with `retry` goes again when its holder answers.
 * The same with the damaged copy in a bucket (VersityGW) and the good one on a sidecar, and a bucket copy the
 * node's verify finds damaged is repaired from the sidecar's copy when the node no longer serves the segment.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Job, JobAccepted, LossVerdict, SegmentsResponse, StoreCatalogResponse } from '../../sidecar/api.js';
import type { SampleResult } from '../../sidecar/sample/sampleCache.js';
import { writeSampleCache } from '../../sidecar/sample/sampleCache.js';
import { ObjectLayout } from '../../sidecar/store/object/layout.js';
import { runCli } from '../helpers/cli.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { storedSegmentDir } from '../helpers/store.js';
import { newToken, startSidecar, tmpDir, waitFor } from '../helpers/sidecar.js';
import { treeDigests } from '../helpers/tree.js';
import type { VersityGw } from '../helpers/versitygw.js';
import { startVersityGw } from '../helpers/versitygw.js';

const SEGMENTS = 4;

async function segmentDirs(props: string): Promise<Map<string, string>> {
  const r = await runCli(['scan', '--config', props, '--json']);
  return new Map((JSON.parse(r.stdout) as { segments: Array<{ id: string; dir: string }> }).segments.map((s) => [s.id, s.dir]));
}

/** Flips one byte in the middle of the largest file of a stored copy; returns the file. */
function rot(storeDir: string, segmentId: string): string {
  const dir = storedSegmentDir(storeDir, segmentId);
  const file = readdirSync(dir)
    .filter((n) => n !== 'manifest.json')
    .map((n) => path.join(dir, n))
    .sort((a, b) => statSync(b).size - statSync(a).size)[0]!;
  const b = readFileSync(file);
  b[b.length >> 1] = b[b.length >> 1]! ^ 0x01;
  writeFileSync(file, b);
  return file;
}

/** Flips one byte in the middle of a file; returns its bytes before. */
function flip(file: string): Buffer {
  const before = readFileSync(file);
  const b = Buffer.from(before);
  b[b.length >> 1] = b[b.length >> 1]! ^ 0x01;
  writeFileSync(file, b);
  return before;
}

/** Whether the cache holds the segment byte for byte as it was. */
function wholeAgain(original: Map<string, string>, location: string, dir: string): boolean {
  const rel = path.relative(location, dir);
  const now = treeDigests(dir);
  const want = [...original].filter(([k]) => k.startsWith(rel + path.sep));
  return now.size === want.length && want.every(([k, d]) => now.get(path.relative(dir, path.join(location, k))) === d);
}

async function stored(t: SidecarProcess): Promise<Set<string>> {
  return new Set((await t.get<StoreCatalogResponse>('/data/v1/store/segments?limit=1000')).items.map((s) => s.segmentId));
}

async function restoreJobs(source: SidecarProcess): Promise<Job[]> {
  return (await source.get<{ items: Job[] }>('/data/v1/jobs?type=restore&limit=1000')).items;
}

/** The verdict on a segment in the newest restore job that has one. */
async function verdictIn(source: SidecarProcess, id: string, wanted: LossVerdict['case']): Promise<{ job: Job; v: LossVerdict } | undefined> {
  for (const job of await restoreJobs(source)) {
    const v = ((job.result?.outcomes as LossVerdict[] | undefined) ?? []).find((x) => x.segmentId === id && x.case === wanted);
    if (v) return { job, v };
  }
  return undefined;
}

describe('copies=2: a rotten copy on A, B down, the cache lost', () => {
  const token = newToken();
  const root = tmpDir('dbk-reliab-');
  const storeA = path.join(root, 'a');
  const storeB = path.join(root, 'b');
  let sample: SampleResult;
  let a: SidecarProcess;
  let b: SidecarProcess;
  let source: SidecarProcess;
  let original: Map<string, string>;
  let dirs: Map<string, string>;

  before(async () => {
    sample = await writeSampleCache({
      dir: path.join(root, 'historical'),
      segments: SEGMENTS,
      layout: 'nested',
      dataSources: ['wikipedia'],
      segmentSize: 32 * 1024,
      smooshChunkSize: 2147483647,
      seed: 91,
    });
    original = treeDigests(sample.location);
    dirs = await segmentDirs(sample.propertiesFile);
    a = await startSidecar(['--store', storeA], { token });
    b = await startSidecar(['--store', storeB], { token, stateDir: path.join(root, 'b-state') });
    source = await startSidecar(['--config', sample.propertiesFile, '--targets', JSON.stringify([a.url, b.url]), '--copies', '2'], {
      token,
      env: { DRUID_BACKUP_RECONCILE_PERIOD: 'PT1S' },
    });
    await waitFor('every segment on A and B', async () => (await stored(a)).size === SEGMENTS && (await stored(b)).size === SEGMENTS, 30_000);
    await waitFor('no segment under-replicated', async () => (await source.metric('druid_backup_segments_under_replicated')) === 0);
  });
  after(async () => {
    await source?.stop();
    await a?.stop();
    await b?.stop();
  });

  test('the segment waits for B, comes back byte-identical within seconds of B answering, and A is repaired', async () => {
    const id = sample.segmentIds[1]!;
    const rotten = rot(storeA, id);
    const rottenName = path.basename(rotten);
    const bPort = b.port;
    await b.stop();
    // The node loses its cache; Druid's info_dir entries stay.
    for (const d of dirs.values()) rmSync(d, { recursive: true, force: true });

    // A refuses its damaged copy, B cannot be asked: the segment waits, named as such in the log and the job.
    const waiting = await waitFor('the restore job to say the segment waits for B', () => verdictIn(source, id, 'holders_unreachable'), 30_000, 200);
    assert.deepEqual(waiting.v.waitOn, [b.url]);
    assert.ok(
      waiting.v.damaged?.some((d) => d.target === a.url && d.problem.includes(rottenName)),
      JSON.stringify(waiting.v),
    );
    assert.ok(
      source
        .logLines()
        .some((l) => l.segmentId === id && l.case === 'holders_unreachable' && /every target that may hold a good copy is unreachable/.test(String(l.msg))),
      'logged which case applied',
    );
    // The other segments had a good copy on A and are back.
    for (const other of sample.segmentIds.filter((x) => x !== id)) await waitFor(`${other} restored`, () => existsSync(dirs.get(other)!), 20_000);
    // With B down every segment is short of a copy; the lost one is among them.
    assert.equal(await source.metric('druid_backup_segments_under_replicated'), SEGMENTS);
    assert.equal(await source.metric('druid_backup_lost_segments_waiting'), 1);
    const shown = await waitFor(
      'the lost segment listed with its damaged copy',
      async () => (await source.get<SegmentsResponse>('/data/v1/segments?limit=1000')).items.find((s) => s.id === id && s.backup.damagedCopies),
      10_000,
    );
    assert.equal(shown.state, 'missing');
    assert.ok(
      shown?.backup.damagedCopies?.some((d) => d.target === a.url && d.problem.includes(rottenName)),
      JSON.stringify(shown?.backup),
    );

    // Several probe periods later it still waits: never given up as "no backup" while B is merely down.
    await new Promise((r) => setTimeout(r, 5000));
    assert.ok(!existsSync(dirs.get(id)!));
    assert.ok(!source.logLines().some((l) => l.segmentId === id && /no target holds a backup/.test(String(l.msg))));
    assert.equal(await source.metric('druid_backup_lost_segment_verdicts_total', { case: 'no_backup' }), 0);

    // The under-replicated count from here on, sampled often: B back leaves only the segment with A's damaged copy.
    const counts: Array<{ at: number; n: number }> = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        counts.push({ at: Date.now(), n: await source.metric('druid_backup_segments_under_replicated') });
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    b = await startSidecar(['--store', storeB], { token, port: bPort, stateDir: path.join(root, 'b-state') });
    const answeredAt = Date.now();
    const rel = path.relative(sample.location, dirs.get(id)!);
    const whole = () => {
      const now = treeDigests(dirs.get(id)!);
      const want = [...original].filter(([k]) => k.startsWith(rel + path.sep));
      return now.size === want.length && want.every(([k, d]) => now.get(path.relative(dirs.get(id)!, path.join(sample.location, k))) === d);
    };
    await waitFor('the segment back byte-identical', whole, 20_000, 100);
    const tookMs = Date.now() - answeredAt;
    console.log(`restored ${tookMs} ms after B answered`);
    assert.ok(tookMs < 8000, `restored ${tookMs} ms after B answered`);
    const done = await waitFor('the job to say it was restored from B', () => verdictIn(source, id, 'restored'), 10_000);
    assert.equal(done.v.from, b.url);

    // A's copy is replaced from the restored cache and verifies clean; the count of under-replicated goes to 0.
    await waitFor('A repaired', async () => (await source.metric('druid_backup_copies_repaired_total', { outcome: 'repaired' })) >= 1, 20_000);
    await waitFor('no segment under-replicated', async () => (await source.metric('druid_backup_segments_under_replicated')) === 0, 10_000);
    sampling = false;
    await sampler;
    // The sampler's last request may have left before the count reached 0 and come back after the wait above saw it.
    counts.push({ at: Date.now(), n: await source.metric('druid_backup_segments_under_replicated') });
    const seq = counts.map((c) => c.n).filter((n, i, all) => i === 0 || all[i - 1] !== n);
    console.log(`under-replicated while B came back: ${seq.join(' -> ')}`);
    // Every segment short of B while it is down; once B answers only the one whose copy on A is damaged; then none.
    assert.equal(seq[0], SEGMENTS, seq.join(','));
    assert.equal(seq.at(-1), 0, seq.join(','));
    assert.ok(
      seq.every((n, i) => i === 0 || n < seq[i - 1]!),
      `only ever down: ${seq.join(',')}`,
    );
    const v = await a.request<JobAccepted>('POST', '/data/v1/store/verify', {});
    assert.equal(v.status, 202, v.text);
    const vj = await a.waitForJob(v.json.jobId);
    assert.equal(vj.state, 'succeeded', JSON.stringify(vj.errors));
    assert.deepEqual(vj.result?.bad, []);
    assert.ok(source.logLines().some((l) => l.segmentId === id && l.target === a.url && /replaced and verified clean/.test(String(l.msg))));
    const after = await source.get<SegmentsResponse>('/data/v1/segments?limit=1000');
    assert.equal(after.items.find((s) => s.id === id)?.backup.damagedCopies, undefined);
  });

  test('no good copy anywhere: unrecoverable from backups, every holder named with its damaged file, nothing installed', async () => {
    const id = sample.segmentIds[2]!;
    const fileA = path.basename(rot(storeA, id));
    const fileB = path.basename(rot(storeB, id));
    // B's own verify finds its copy damaged: marked so, answered as damaged, and never served as good.
    const v = await b.request<JobAccepted>('POST', '/data/v1/store/verify', { segmentIds: [id] });
    assert.equal(v.status, 202, v.text);
    await b.waitForJob(v.json.jobId);
    const head = await b.request('HEAD', `/data/v1/store/segments/${encodeURIComponent(id)}`);
    assert.equal(head.status, 200);
    assert.match(decodeURIComponent(head.headers.get('x-druid-backup-damaged') ?? ''), new RegExp(fileB.replace('.', '\\.')));
    const listed = (await b.get<StoreCatalogResponse>('/data/v1/store/segments?limit=1000')).items.find((s) => s.segmentId === id);
    assert.ok(listed?.damaged?.includes(fileB), JSON.stringify(listed));
    const get = await b.request('GET', `/data/v1/store/segments/${encodeURIComponent(id)}`);
    assert.equal(get.status, 422, 'a copy marked damaged is not served');

    rmSync(dirs.get(id)!, { recursive: true, force: true });
    const found = await waitFor('the restore job to say every copy is damaged', () => verdictIn(source, id, 'copies_damaged'), 30_000, 200);
    const named = new Map((found.v.damaged ?? []).map((d) => [d.target, d.problem]));
    assert.deepEqual([...named.keys()].sort(), [a.url, b.url].sort());
    assert.ok(named.get(a.url)!.includes(fileA), named.get(a.url));
    assert.ok(named.get(b.url)!.includes(fileB), named.get(b.url));
    assert.ok(
      source
        .logLines()
        .some((l) => l.segmentId === id && l.case === 'copies_damaged' && /every reachable copy is damaged.*unrecoverable from backups/.test(String(l.msg))),
      'logged as unrecoverable from backups',
    );
    assert.ok(!existsSync(dirs.get(id)!), 'nothing installed');
    assert.ok(!source.logLines().some((l) => l.segmentId === id && /no target holds a backup/.test(String(l.msg))));
    assert.ok((await source.metric('druid_backup_lost_segment_verdicts_total', { case: 'copies_damaged' })) >= 1);
  });

  test("a target's own verify marks a copy damaged: the node's next reconcile learns it and repairs it from its cache", async () => {
    const id = sample.segmentIds[0]!;
    const file = rot(storeA, id);
    const v = await a.request<JobAccepted>('POST', '/data/v1/store/verify', { segmentIds: [id] });
    const found = await a.waitForJob(v.json.jobId);
    assert.deepEqual(
      (found.result?.bad as Array<{ segmentId: string }>).map((x) => x.segmentId),
      [id],
    );
    assert.ok((await a.get<StoreCatalogResponse>('/data/v1/store/segments?limit=1000')).items.find((s) => s.segmentId === id)?.damaged);
    await waitFor(
      "A's copy repaired from the node's cache",
      () =>
        source.logLines().some((l) => l.segmentId === id && l.msg === 'repairing damaged copies' && l.from === 'the cache') &&
        source.logLines().some((l) => l.segmentId === id && l.target === a.url && /replaced and verified clean/.test(String(l.msg))),
      30_000,
      200,
    );
    assert.ok(readFileSync(file).equals(readFileSync(path.join(storedSegmentDir(storeB, id), path.basename(file)))), "byte-identical to B's copy");
    assert.equal((await a.get<StoreCatalogResponse>('/data/v1/store/segments?limit=1000')).items.find((s) => s.segmentId === id)?.damaged, undefined);
  });

  test('a manual restore with "retry": the segment that fails while B is down goes again as soon as B answers', async () => {
    const id = sample.segmentIds[3]!;
    rot(storeA, id);
    const bPort = b.port;
    await b.stop();
    const dest = tmpDir('dbk-reliab-dest-');
    const r = await source.request<JobAccepted>('POST', '/data/v1/restore', { segmentIds: [id], destination: dest, retry: true });
    assert.equal(r.status, 202, r.text);
    const first = await source.waitForJob(r.json.jobId);
    const outcomes = first.result?.outcomes as LossVerdict[];
    assert.equal(outcomes.length, 1);
    assert.equal(outcomes[0]!.case, 'holders_unreachable');
    assert.deepEqual(outcomes[0]!.waitOn, [b.url]);
    assert.ok(outcomes[0]!.damaged?.some((d) => d.target === a.url));

    b = await startSidecar(['--store', storeB], { token, port: bPort, stateDir: path.join(root, 'b-state') });
    const again = await waitFor(
      'the restore started again',
      async () => (await restoreJobs(source)).find((j) => j.id !== first.id && j.request.destination === dest && j.request.retry === true),
      10_000,
    );
    const done = await source.waitForJob(again.id);
    assert.equal(done.state, 'succeeded', JSON.stringify(done.errors));
    assert.equal((done.result?.outcomes as LossVerdict[])[0]!.case, 'restored');
    const rel = path.relative(sample.location, dirs.get(id)!);
    const got = treeDigests(dest);
    const want = [...original].filter(([k]) => k.startsWith(rel + path.sep));
    assert.ok(want.length > 0);
    for (const [k, d] of want) assert.equal(got.get(k), d, k);
  });
});

describe('the damaged copy in a bucket (VersityGW), the good one on a sidecar', () => {
  const token = newToken();
  const root = tmpDir('dbk-reliab-s3-');
  const bucket = 'backups';
  const s3url = `s3://${bucket}/druid`;
  const layout = new ObjectLayout('druid/');
  const node = 'historical-r:8083';
  let gw: VersityGw;
  let sample: SampleResult;
  let a: SidecarProcess;
  let source: SidecarProcess;
  let original: Map<string, string>;
  let dirs: Map<string, string>;

  before(async () => {
    gw = await startVersityGw();
    await gw.createBucket(bucket);
    sample = await writeSampleCache({
      dir: path.join(root, 'historical'),
      segments: 3,
      layout: 'nested',
      dataSources: ['kttm'],
      segmentSize: 32 * 1024,
      smooshChunkSize: 2147483647,
      seed: 93,
    });
    original = treeDigests(sample.location);
    dirs = await segmentDirs(sample.propertiesFile);
    a = await startSidecar(['--store', path.join(root, 'a')], { token, stateDir: path.join(root, 'a-state') });
    source = await startSidecar(['--config', sample.propertiesFile, '--node-name', node, '--targets', JSON.stringify([s3url, a.url]), '--copies', '2'], {
      token,
      env: gw.env,
    });
    await waitFor(
      'no segment under-replicated',
      async () => {
        const segs = await source.get<SegmentsResponse>('/data/v1/segments?limit=1000');
        return segs.items.length === 3 && segs.items.every((x) => x.backup.copies === 2);
      },
      30_000,
    );
  });
  after(async () => {
    await source?.stop();
    await a?.stop();
    await gw?.close();
  });

  test('read from the bucket, found damaged, waits for the sidecar; restored from it; the objects are overwritten and verify clean', async () => {
    const id = sample.segmentIds[0]!;
    const object = path.join(gw.root, bucket, layout.fileKey(id, node, '00000.smoosh'));
    const good = flip(object);
    const aPort = a.port;
    await a.stop();
    rmSync(dirs.get(id)!, { recursive: true, force: true });

    const waiting = await waitFor('the job to say the segment waits for the sidecar', () => verdictIn(source, id, 'holders_unreachable'), 30_000, 200);
    assert.deepEqual(waiting.v.waitOn, [a.url]);
    assert.ok(
      waiting.v.damaged?.some((d) => d.target === s3url && d.problem.includes('00000.smoosh')),
      JSON.stringify(waiting.v),
    );

    a = await startSidecar(['--store', path.join(root, 'a')], { token, port: aPort, stateDir: path.join(root, 'a-state') });
    const answeredAt = Date.now();
    await waitFor('the segment back byte-identical', () => wholeAgain(original, sample.location, dirs.get(id)!), 20_000, 100);
    console.log(`restored ${Date.now() - answeredAt} ms after the sidecar answered`);
    assert.ok(Date.now() - answeredAt < 8000);
    assert.equal((await waitFor('restored from the sidecar', () => verdictIn(source, id, 'restored'))).v.from, a.url);

    await waitFor('the bucket copy repaired', async () => (await source.metric('druid_backup_copies_repaired_total', { outcome: 'repaired' })) >= 1, 20_000);
    assert.ok(readFileSync(object).equals(good), 'the object holds the good bytes again');
    await waitFor('no segment under-replicated', async () => (await source.metric('druid_backup_segments_under_replicated')) === 0, 10_000);
    const r = await source.request<JobAccepted>('POST', '/data/v1/store/verify', { target: s3url });
    assert.equal(r.status, 202, r.text);
    const job = await source.waitForJob(r.json.jobId);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.errors));
    assert.deepEqual(job.result?.bad, []);
  });

  test("the node's verify of the bucket finds a damaged copy of a segment it no longer serves: repaired from the sidecar's copy", async () => {
    const id = sample.segmentIds[1]!;
    // Druid dropped it from this node: info file first, then the files.
    rmSync(path.join(sample.infoDir, id));
    rmSync(dirs.get(id)!, { recursive: true, force: true });
    const object = path.join(gw.root, bucket, layout.fileKey(id, node, '00000.smoosh'));
    const good = flip(object);

    const r = await source.request<JobAccepted>('POST', '/data/v1/store/verify', { target: s3url });
    const found = await source.waitForJob(r.json.jobId);
    assert.deepEqual(
      (found.result?.bad as Array<{ segmentId: string }>).map((x) => x.segmentId),
      [id],
    );
    await waitFor(
      'the bucket copy replaced from the sidecar and verified clean',
      () => source.logLines().some((l) => l.segmentId === id && l.target === s3url && /replaced and verified clean/.test(String(l.msg))),
      20_000,
    );
    assert.ok(source.logLines().some((l) => l.segmentId === id && l.msg === 'repairing damaged copies' && l.from === 'a good copy on another target'));
    assert.ok(readFileSync(object).equals(good));
    const again = await source.request<JobAccepted>('POST', '/data/v1/store/verify', { target: s3url });
    assert.deepEqual((await source.waitForJob(again.json.jobId)).result?.bad, []);
    assert.ok(!existsSync(dirs.get(id)!), 'the dropped segment stays dropped');
  });
});
