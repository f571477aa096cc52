import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { nestedInterval, segmentOfNestedParts } from '../../../sidecar/druid/layout.js';
import { cacheSegmentPath } from '../../../sidecar/druid/paths.js';
import { scanCache } from '../../../sidecar/druid/scan.js';
import { parseSegmentId, segmentIdOf } from '../../../sidecar/druid/segmentId.js';
import { writeSampleCache } from '../../../sidecar/sample/sampleCache.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'dbk-scan-'));

test('nested and flat directories map to and from segment ids', () => {
  const s = parseSegmentId('web_logs_2015-09-12T00:00:00.000Z_2015-09-12T01:00:00.000Z_2024-01-01T00:00:00.000Z_2');
  assert.equal(cacheSegmentPath('/c', s, 'nested'), '/c/web_logs/2015-09-12T00:00:00.000Z_2015-09-12T01:00:00.000Z/2024-01-01T00:00:00.000Z/2');
  assert.equal(cacheSegmentPath('/c', s, 'flat'), `/c/${s.id}`);
  const back = segmentOfNestedParts('web_logs', '2015-09-12T00:00:00.000Z_2015-09-12T01:00:00.000Z', '2024-01-01T00:00:00.000Z', '2');
  assert.equal(back?.id, s.id);
  const p0 = segmentOfNestedParts('web_logs', '2015-09-12T00:00:00.000Z_2015-09-12T01:00:00.000Z', 'v_1', '0');
  assert.equal(p0?.id, 'web_logs_2015-09-12T00:00:00.000Z_2015-09-12T01:00:00.000Z_v_1');
  assert.equal(segmentOfNestedParts('ds', 'notaninterval', 'v', '0'), undefined);
  assert.equal(segmentOfNestedParts('ds', '2015-09-12T00:00:00.000Z_2015-09-12T01:00:00.000Z', 'v', '01'), undefined);
  assert.equal(segmentOfNestedParts('ds', '2015-09-12T00:00:00.000Z_2015-09-12T01:00:00.000Z', 'v', '-1'), undefined);
});

test('a nested interval directory read once for all its segments makes the segments its name makes, and refuses what it refuses', () => {
  // The reference: each segment's parts parsed on their own, through segmentIdOf (how the scan read them before).
  const reference = (ds: string, ivDir: string, version: string, partDir: string) => {
    if (!/^(0|[1-9]\d{0,9})$/.test(partDir) || Number(partDir) > 2147483647) return undefined;
    const parts = ivDir.split('_');
    if (parts.length !== 2) return undefined;
    try {
      const seg = segmentIdOf({ dataSource: ds, start: parts[0]!, end: parts[1]!, version, partition: Number(partDir) });
      return seg.startMs < seg.endMs ? seg : undefined;
    } catch {
      return undefined;
    }
  };
  const instant = fc.oneof(
    fc.date({ min: new Date(-1e13), max: new Date(1e13), noInvalidDate: true }).map((d) => d.toISOString()),
    fc.constantFrom('2015-09-12', '2015-09-12T01', '-146136543-09-08T08:23:32.096Z', '146140482-04-24T15:36:27.903Z', 'x', ''),
  );
  const ivDir = fc.oneof(
    fc.tuple(instant, instant).map(([a, b]) => `${a}_${b}`),
    fc.tuple(instant, instant, instant).map((a) => a.join('_')),
    instant,
  );
  const partDir = fc.oneof(fc.nat({ max: 3000000000 }).map(String), fc.constantFrom('01', '-1', '1.5', '', 'a'));
  fc.assert(
    fc.property(fc.constantFrom('wiki', 'a_b'), ivDir, fc.constantFrom('v1', 'v_1', '2024-01-01T00:00:00.000Z'), partDir, (ds, iv, ver, part) => {
      const want = reference(ds, iv, ver, part);
      assert.deepEqual(segmentOfNestedParts(ds, iv, ver, part), want);
      assert.deepEqual(segmentOfNestedParts(ds, nestedInterval(iv), ver, part), want);
    }),
    { numRuns: 2000 },
  );
});

for (const layout of ['nested', 'flat'] as const) {
  test(`scans a ${layout} sample cache: every segment complete, with its descriptor`, async () => {
    const dir = tmp();
    const r = await writeSampleCache({
      dir,
      segments: 30,
      layout,
      dataSources: ['wikipedia', 'web_logs'],
      segmentSize: 4096,
      smooshChunkSize: 2147483647,
      seed: 7,
    });
    const scan = await scanCache({ locations: [{ path: r.location }] });
    assert.equal(scan.issues.length, 0, JSON.stringify(scan.issues));
    assert.equal(scan.layout, layout);
    assert.deepEqual(
      scan.segments.map((s) => s.id),
      [...r.segmentIds].sort(),
    );
    for (const s of scan.segments) {
      assert.equal(s.state, 'complete');
      assert.equal(s.layout, layout);
      assert.ok(s.descriptor, `descriptor of ${s.id}`);
      assert.equal(s.descriptor!.size, s.size, 'descriptor size matches the files');
      assert.deepEqual(
        s.files.map((f) => f.name),
        ['00000.smoosh', 'factory.json', 'meta.smoosh', 'version.bin'],
      );
    }
    // The `_1` versions are read as versions, not partitions, because the descriptor says so (flat) or the path does (nested).
    const suffixed = scan.segments.filter((s) => s.version.endsWith('_1'));
    assert.ok(suffixed.length > 0);
    assert.equal(scan.missing.length, 0);
  });
}

test('states, strays, unparseable directories and info entries without files', async () => {
  const dir = tmp();
  const r = await writeSampleCache({ dir, segments: 6, layout: 'nested', dataSources: ['ds'], segmentSize: 2048, smooshChunkSize: 2147483647, seed: 1 });
  const scan0 = await scanCache({ locations: [{ path: r.location }] });
  const [a, b, c, d] = scan0.segments;
  await fs.writeFile(path.join(a!.dir, 'downloadStartMarker'), '');
  await fs.rm(path.join(b!.dir, 'version.bin'));
  await fs.rm(c!.dir, { recursive: true });
  await fs.rm(path.join(r.infoDir, d!.id));
  await fs.writeFile(path.join(r.location, 'stray.txt'), 'x');
  await fs.mkdir(path.join(r.location, 'ds', 'garbage', 'v', '0'), { recursive: true });
  await fs.mkdir(path.join(r.location, '.druid-backup-staging-1'), { recursive: true });
  await fs.writeFile(path.join(r.infoDir, 'not-a-segment'), '{}');
  const scan = await scanCache({ locations: [{ path: r.location }] });
  const byId = new Map(scan.segments.map((s) => [s.id, s]));
  assert.equal(byId.get(a!.id)!.state, 'downloading');
  assert.equal(byId.get(b!.id)!.state, 'incomplete');
  assert.equal(byId.has(c!.id), false);
  assert.deepEqual(
    scan.missing.map((m) => m.id),
    [c!.id],
  );
  assert.equal(byId.get(d!.id)!.descriptor, undefined);
  assert.equal(byId.get(d!.id)!.state, 'complete');
  const problems = scan.issues.map((i) => `${path.relative(r.location, i.path)}: ${i.problem}`).sort();
  assert.equal(problems.length, 3, problems.join('\n'));
  assert.match(problems.join('\n'), /ds\/garbage\/v\/0: not a segment directory/);
  assert.match(problems.join('\n'), /info_dir\/not-a-segment: not a segment descriptor/);
  assert.match(problems.join('\n'), /stray\.txt: stray file/);
});

test('a missing location is not fatal; several locations are scanned', async () => {
  const a = await writeSampleCache({ dir: tmp(), segments: 3, layout: 'flat', dataSources: ['x'], segmentSize: 2048, smooshChunkSize: 2147483647, seed: 1 });
  const b = await writeSampleCache({ dir: tmp(), segments: 3, layout: 'flat', dataSources: ['y'], segmentSize: 2048, smooshChunkSize: 2147483647, seed: 2 });
  const scan = await scanCache({ locations: [{ path: a.location }, { path: b.location }, { path: '/nonexistent/x' }] });
  assert.equal(scan.segments.length, 6);
  // Only the first location's info_dir is Druid's; the second one's is just a directory to Druid.
  assert.equal(scan.segments.filter((s) => s.descriptor).length, 3);
});

test('the sample cache: meta.smoosh offsets match the chunks, large segments get several chunks, deterministic', async () => {
  const d1 = tmp();
  const d2 = tmp();
  const o = { segments: 2, layout: 'nested' as const, dataSources: ['ds'], segmentSize: 300_000, smooshChunkSize: 100_000, seed: 3 };
  await writeSampleCache({ dir: d1, ...o });
  await writeSampleCache({ dir: d2, ...o });
  const s1 = await scanCache({ locations: [{ path: path.join(d1, 'segment-cache') }] });
  const s2 = await scanCache({ locations: [{ path: path.join(d2, 'segment-cache') }] });
  for (const [i, seg] of s1.segments.entries()) {
    const meta = (await fs.readFile(path.join(seg.dir, 'meta.smoosh'), 'utf8')).trim().split('\n');
    const [v, max, n] = meta[0]!.split(',');
    assert.equal(v, 'v1');
    assert.equal(Number(max), 100_000);
    assert.ok(Number(n) >= 3);
    const ends = new Map<number, number>();
    for (const line of meta.slice(1)) {
      const [, chunk, , end] = line.split(',');
      ends.set(Number(chunk), Math.max(ends.get(Number(chunk)) ?? 0, Number(end)));
    }
    for (const [chunk, end] of ends) assert.equal((await fs.stat(path.join(seg.dir, `${String(chunk).padStart(5, '0')}.smoosh`))).size, end);
    assert.equal(Buffer.compare(await fs.readFile(path.join(seg.dir, 'version.bin')), Buffer.from([0, 0, 0, 9])), 0);
    const other = s2.segments[i]!;
    for (const f of seg.files) assert.ok((await fs.readFile(path.join(seg.dir, f.name))).equals(await fs.readFile(path.join(other.dir, f.name))), f.name);
  }
});

test('a descriptor rewritten in info_dir is read again, even in place with the same size', async () => {
  const dir = tmp();
  const r = await writeSampleCache({ dir, segments: 4, layout: 'flat', dataSources: ['ds'], segmentSize: 2048, smooshChunkSize: 2147483647, seed: 3 });
  const first = await scanCache({ locations: [{ path: r.location }] });
  const s = first.segments[0]!;
  const file = path.join(r.infoDir, s.id);
  const text = await fs.readFile(file, 'utf8');
  // Same length, different content: a binary version the scan must see.
  const changed = text.replace('"binaryVersion":9', '"binaryVersion":8');
  assert.notEqual(changed, text);
  assert.equal(changed.length, text.length);
  const fh = await fs.open(file, 'r+');
  await fh.write(changed, 0, 'utf8');
  await fh.close();
  const again = await scanCache({ locations: [{ path: r.location }] });
  assert.equal(again.segments.find((x) => x.id === s.id)!.descriptor!.binaryVersion, 8);
  // A descriptor replaced by one naming another segment is refused on the next scan, not served from memory.
  const other = first.segments[1]!;
  await fs.writeFile(file, await fs.readFile(path.join(r.infoDir, other.id)));
  const third = await scanCache({ locations: [{ path: r.location }] });
  assert.equal(third.segments.find((x) => x.id === s.id)!.descriptor, undefined);
  assert.ok(third.issues.some((i) => i.path === file && /names .* but its descriptor is segment/.test(i.problem)));
  // Removed: the segment has no descriptor any more.
  await fs.rm(path.join(r.infoDir, other.id));
  const fourth = await scanCache({ locations: [{ path: r.location }] });
  assert.equal(fourth.segments.find((x) => x.id === other.id)!.descriptor, undefined);
});

test('given the last scan, an unchanged segment is that same object; any change makes a new one and leaves the old as it was', async () => {
  const dir = tmp();
  const r = await writeSampleCache({ dir, segments: 5, layout: 'nested', dataSources: ['ds'], segmentSize: 2048, smooshChunkSize: 2147483647, seed: 4 });
  const first = await scanCache({ locations: [{ path: r.location }] });
  const byId = new Map(first.segments.map((s) => [s.id, s]));
  const snapshot = structuredClone(first.segments);
  const [grown, marked, undescribed, touched] = first.segments;

  await fs.appendFile(path.join(grown!.dir, 'factory.json'), ' ');
  await fs.writeFile(path.join(marked!.dir, 'downloadStartMarker'), '');
  await fs.rm(path.join(r.infoDir, undescribed!.id));
  // Same size, a new mtime: rewritten in place.
  const t = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
  await fs.utimes(path.join(touched!.dir, 'version.bin'), t, t);

  const second = await scanCache({ locations: [{ path: r.location }], previous: (id) => byId.get(id) });
  const now = new Map(second.segments.map((s) => [s.id, s]));
  assert.equal(second.segments.length, 5);
  for (const s of [grown, marked, undescribed, touched]) assert.notEqual(now.get(s!.id), s, `${s!.id} is read anew`);
  assert.equal(now.get(grown!.id)!.size, grown!.size + 1);
  assert.equal(now.get(marked!.id)!.state, 'downloading');
  assert.equal(now.get(undescribed!.id)!.descriptor, undefined);
  assert.equal(now.get(undescribed!.id)!.infoFile, undefined);
  assert.equal(now.get(touched!.id)!.files.find((f) => f.name === 'version.bin')!.mtimeMs, t.getTime());
  const kept = first.segments[4]!;
  assert.equal(now.get(kept.id), kept, 'the unchanged segment is the object given');
  assert.ok(kept.descriptor);
  // What the caller held is as the first scan left it, so it can tell what changed.
  assert.deepEqual(first.segments, snapshot);

  // The descriptor back in info_dir: the segment is a copy with it, the object given keeps none.
  await fs.writeFile(path.join(r.infoDir, undescribed!.id), JSON.stringify(snapshot[2]!.descriptor));
  const held = now.get(undescribed!.id)!;
  const third = await scanCache({ locations: [{ path: r.location }], previous: (id) => now.get(id) });
  const back = third.segments.find((s) => s.id === undescribed!.id)!;
  assert.notEqual(back, held);
  assert.deepEqual(back.descriptor, snapshot[2]!.descriptor);
  assert.equal(held.descriptor, undefined);

  // A segment given for an id but found at another path is not taken for the one here: each is read and parsed anew.
  const elsewhere = new Map(third.segments.map((x) => [x.id, { ...x, dir: `${x.dir}-moved`, version: 'other' }]));
  const fourth = await scanCache({ locations: [{ path: r.location }], previous: (id) => elsewhere.get(id) });
  assert.deepEqual(
    fourth.segments.map((x) => [x.id, x.dir, x.version]),
    third.segments.map((x) => [x.id, x.dir, x.version]),
  );
  for (const x of fourth.segments) assert.notEqual(x, elsewhere.get(x.id));
});

test("a segment directory's listing is reused once settled: its files are still lstat'ed, and an entry added or a marker is seen", async () => {
  const dir = tmp();
  const r = await writeSampleCache({ dir, segments: 5, layout: 'flat', dataSources: ['ds'], segmentSize: 2048, smooshChunkSize: 2147483647, seed: 9 });
  const first = await scanCache({ locations: [{ path: r.location }] });
  for (const s of first.segments) assert.ok(s.listing, `${s.id} has a listing`);
  // Forged previous reads that omit factory.json: a scan that reuses a listing lists what it names, so the omission
  // shows whether the directory was listed again.
  const omit = (s: (typeof first.segments)[number], at: number) => ({
    ...s,
    files: s.files.filter((f) => f.name !== 'factory.json'),
    listing: { ...s.listing!, at },
  });
  const names = (s: { files: Array<{ name: string }> } | undefined) => s?.files.map((f) => f.name);
  const [reused, racy, added, marked, moved] = first.segments as [(typeof first.segments)[number], ...(typeof first.segments)];
  const later = (s: typeof reused) => Math.max(s.listing!.mtimeMs, s.listing!.ctimeMs) + 5_000;
  const forged = new Map([
    [reused.id, omit(reused, later(reused))],
    // Read within a second of the directory's last change: a change in the same clock tick would not show, so listed again.
    [racy!.id, omit(racy!, Math.max(racy!.listing!.mtimeMs, racy!.listing!.ctimeMs) + 500)],
    [added!.id, omit(added!, later(added!))],
    [marked!.id, omit(marked!, later(marked!))],
    [moved!.id, { ...omit(moved!, later(moved!)), listing: { ...moved!.listing!, ino: moved!.listing!.ino + 1, at: later(moved!) } }],
  ]);
  await fs.appendFile(path.join(reused.dir, 'meta.smoosh'), 'x'); // changed in place: the directory's entries are the same
  await fs.writeFile(path.join(added!.dir, 'extra.bin'), 'y');
  await fs.writeFile(path.join(marked!.dir, 'downloadStartMarker'), '');
  const second = await scanCache({ locations: [{ path: r.location }], previous: (id) => forged.get(id) });
  const now = new Map(second.segments.map((s) => [s.id, s]));
  assert.deepEqual(names(now.get(reused.id)), ['00000.smoosh', 'meta.smoosh', 'version.bin'], 'the settled listing was reused');
  assert.equal(now.get(reused.id)!.files.find((f) => f.name === 'meta.smoosh')!.size, reused.files.find((f) => f.name === 'meta.smoosh')!.size + 1);
  assert.deepEqual(names(now.get(racy!.id)), names(racy), 'an unsettled listing is read again');
  assert.deepEqual(names(now.get(added!.id)), [...names(added)!, 'extra.bin'].sort(), 'an entry added is seen');
  assert.equal(now.get(marked!.id)!.state, 'downloading');
  assert.deepEqual(names(now.get(moved!.id)), names(moved), 'another directory at the same path is listed');
});

test('a rescan with a settled listing keeps an unchanged segment as it was, and sees a file rewritten in place or linked elsewhere', async () => {
  const dir = tmp();
  const r = await writeSampleCache({ dir, segments: 3, layout: 'nested', dataSources: ['ds'], segmentSize: 2048, smooshChunkSize: 2147483647, seed: 10 });
  const first = await scanCache({ locations: [{ path: r.location }] });
  // Listings read well after the directories last changed: reusable (as they are a second after a change).
  const settled = new Map(first.segments.map((s) => [s.id, { ...s, listing: { ...s.listing!, at: Math.max(s.listing!.mtimeMs, s.listing!.ctimeMs) + 5_000 } }]));
  const [same, rewritten, linked] = first.segments.map((s) => settled.get(s.id)!) as [(typeof first.segments)[number], ...(typeof first.segments)];
  // Same size, same directory entries: only the file's mtime says it changed.
  const file = path.join(rewritten!.dir, 'meta.smoosh');
  const bytes = await fs.readFile(file);
  await fs.writeFile(file, Buffer.from(bytes.map((b) => b ^ 1)));
  await fs.utimes(file, new Date(), new Date(Date.now() + 60_000));
  // A hard link made elsewhere: the segment directory is as it was, the file's link count is not.
  await fs.link(path.join(linked!.dir, 'version.bin'), path.join(dir, 'elsewhere.bin'));
  const second = await scanCache({ locations: [{ path: r.location }], previous: (id) => settled.get(id) });
  const now = new Map(second.segments.map((s) => [s.id, s]));
  assert.equal(now.get(same.id), same, 'unchanged: the same object');
  const re = now.get(rewritten!.id)!;
  assert.notEqual(re, rewritten);
  assert.ok(re.mtimeMs > rewritten!.mtimeMs, 'the new mtime is seen');
  const li = now.get(linked!.id)!;
  assert.notEqual(li, linked);
  assert.equal(li.files.find((f) => f.name === 'version.bin')!.nlink, 2);
});

