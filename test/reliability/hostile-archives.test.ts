/**
 * Hostile archives to `PUT /data/v1/store/segments/{id}`: entries with `..`, absolute paths, symlinks, hard links,
 * devices, directories, pax and GNU long-name headers, a ustar prefix that climbs out, names that differ from the
 * declaration, sizes that lie, truncated streams at every kind of boundary, an id in the URL that does not match
 * the content, and an archive far larger than declared. Each gets a 4xx JSON error without a stack trace; nothing
 * is written outside the store's temporary area (the directory around the store and the absolute paths aimed at
 * stay as they were), the temporary area is empty after each, and a segment stored before is untouched.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { Header } from 'tar';
import type { HeaderData } from 'tar';
import { packSegment } from '../../sidecar/archive/pack.js';
import { END_OF_ARCHIVE, fileHeader, padding } from '../../sidecar/archive/tar.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { startSidecar, tmpDir, waitFor } from '../helpers/sidecar.js';
import { SEGMENTS_DIR, segmentPath } from '../../sidecar/store/local/layout.js';
import { checkStore, rawHttp, treeDiff, treeSnapshot } from './lib.js';

const ID = 'hostile_2015-09-12T00:00:00.000Z_2015-09-12T01:00:00.000Z_2024-01-01T00:00:01.234Z';
const OTHER = 'hostile_2015-09-12T01:00:00.000Z_2015-09-12T02:00:00.000Z_2024-01-01T00:00:01.234Z';
const VB = Buffer.from([0, 0, 0, 9]);
const VB_SHA = '3b28a6c3766c6295adad976d349705ef49393fbfdebe4facb5862d2cdfa285d3';

function entry(name: string, body: Buffer | string): Buffer {
  const b = Buffer.from(body);
  return Buffer.concat([fileHeader(name, b.length, new Date(0)), b, padding(b.length)]);
}

/** A header of any type tar knows, with any path (no checks: that is the point). */
function rawHeader(h: Partial<HeaderData> & { path: string; type: HeaderData['type'] }, body: Buffer = Buffer.alloc(0)): Buffer {
  const block = Buffer.alloc(512);
  new Header({ mode: 0o644, uid: 0, gid: 0, mtime: new Date(0), size: body.length, ...h }).encode(block, 0);
  return Buffer.concat([block, body, padding(body.length)]);
}

/** A header whose ustar `prefix` field is set by hand: the reader joins prefix and name into one path. */
function prefixedHeader(prefix: string, name: string, size: number): Buffer {
  const block = fileHeader(name, size, new Date(0));
  block.write(prefix, 345, 'latin1');
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of block) sum += b;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return block;
}

function declaration(files: Array<{ name: string; size: number }>, id = ID, descriptor: unknown = null): Buffer {
  return entry('segment.json', JSON.stringify({ formatVersion: 1, segmentId: id, descriptor, files }));
}

function trailer(files: Array<{ name: string; size: number; sha256: string }>): Buffer {
  return entry('digests.json', JSON.stringify({ files }));
}

async function packed(id: string, files: Record<string, Buffer>): Promise<Buffer> {
  const p = packSegment({
    segmentId: id,
    descriptor: null,
    node: 'n1',
    files: Object.entries(files).map(([name, body]) => ({ name, size: body.length, open: () => Readable.from([body]) })),
  });
  const parts: Buffer[] = [];
  for await (const c of p.stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

describe('hostile archives to PUT /data/v1/store/segments/{id}', () => {
  let sandbox: string;
  let storeDir: string;
  let target: SidecarProcess;
  let good: Buffer;
  /** Absolute paths the attacks aim at: none may come to exist. */
  const aimed: string[] = [];
  let outside: Map<string, string>;
  let storedBefore: Map<string, string>;
  const tally: Array<{ attack: string; status: number | undefined }> = [];

  const put = (id: string, body: Buffer, headers: Record<string, string> = {}) =>
    target.request('PUT', `/data/v1/store/segments/${encodeURIComponent(id)}`, undefined, {
      raw: body,
      headers: { 'content-type': 'application/x-tar', 'x-druid-backup-node': 'attacker', ...headers },
    });

  before(async () => {
    sandbox = tmpDir('dbk-hostile-');
    storeDir = path.join(sandbox, 'store');
    mkdirSync(path.join(sandbox, 'neighbour'));
    writeFileSync(path.join(sandbox, 'neighbour', 'keep.txt'), 'an operator file beside the store');
    target = await startSidecar(['--store', storeDir], { stateDir: path.join(sandbox, 'state') });
    good = await packed(ID, { 'version.bin': VB, '00000.smoosh': randomBytes(3000) });
    // A segment already stored, which no attack may touch.
    const first = await put(OTHER, await packed(OTHER, { 'version.bin': VB, '00000.smoosh': randomBytes(5000) }));
    assert.equal(first.status, 201, first.text);
    storedBefore = treeSnapshot(path.join(storeDir, 'segments'));
    outside = treeSnapshot(sandbox, (rel) => rel.startsWith('store/.tmp') || rel.startsWith('state'));
  });
  after(async () => {
    await target?.stop();
    console.log(`hostile archives: ${tally.length} attacks, statuses ${JSON.stringify(Object.fromEntries(tally.map((t) => [t.attack, t.status])))}`);
  });

  async function assertHarmless(what: string): Promise<void> {
    await waitFor(`the temporary area to be empty after ${what}`, () => readdirSync(path.join(storeDir, '.tmp')).length === 0, 10_000, 25);
    for (const p of aimed) assert.ok(!existsSync(p), `${what}: ${p} was created`);
    assert.deepEqual(
      treeDiff(
        outside,
        treeSnapshot(sandbox, (rel) => rel.startsWith('store/.tmp') || rel.startsWith('state')),
      ),
      [],
      `${what}: nothing changes outside .tmp`,
    );
    assert.deepEqual(treeDiff(storedBefore, treeSnapshot(path.join(storeDir, 'segments'))), [], `${what}: the stored segment is untouched`);
  }

  function assert4xx(what: string, r: { status?: number; text?: string; body?: string }, code?: string): void {
    const text = r.text ?? r.body ?? '';
    tally.push({ attack: what, status: r.status });
    assert.ok(r.status !== undefined && r.status >= 400 && r.status < 500, `${what}: expected a 4xx, got ${r.status}: ${text}`);
    const e = (JSON.parse(text) as { error?: { code: string; message: string } }).error;
    assert.ok(e && e.code && e.message, `${what}: a JSON error: ${text}`);
    if (code) assert.equal(e.code, code, `${what}: ${text}`);
    assert.doesNotMatch(text, /\n\s+at |node:internal|\.ts:\d+/, `${what}: no stack trace`);
  }

  test('entries that would write outside the segment: .., absolute, links, devices, directories, long names, prefixes', async () => {
    const evil = `/tmp/dbk-evil-${randomBytes(6).toString('hex')}`;
    const escape = path.join(sandbox, 'escaped');
    aimed.push(evil, escape, `${evil}.lnk`);
    const files = [{ name: 'version.bin', size: 4 }];
    const decl = declaration(files);
    const attacks: Array<[string, Buffer]> = [
      ['declared ../ name', Buffer.concat([declaration([{ name: '../../escaped', size: 4 }]), entry('../../escaped', VB), END_OF_ARCHIVE])],
      ['declared absolute name', Buffer.concat([declaration([{ name: evil, size: 4 }]), entry(evil, VB), END_OF_ARCHIVE])],
      ['entry ../ with a plain declaration', Buffer.concat([decl, entry('../../escaped', VB), END_OF_ARCHIVE])],
      ['entry absolute with a plain declaration', Buffer.concat([decl, entry(evil, VB), END_OF_ARCHIVE])],
      ['entry ./version.bin', Buffer.concat([decl, entry('./version.bin', VB), END_OF_ARCHIVE])],
      ['entry dir/../version.bin', Buffer.concat([decl, entry('x/../version.bin', VB), END_OF_ARCHIVE])],
      ['declared backslash name', Buffer.concat([declaration([{ name: '..\\..\\escaped', size: 4 }]), entry('..\\..\\escaped', VB), END_OF_ARCHIVE])],
      ['declared name with NUL', Buffer.concat([declaration([{ name: 'version.bin\u0000../../escaped', size: 4 }]), entry('version.bin', VB), END_OF_ARCHIVE])],
      [
        'declared name manifest.json',
        Buffer.concat([declaration([...files, { name: 'manifest.json', size: 2 }]), entry('version.bin', VB), entry('manifest.json', '{}'), END_OF_ARCHIVE]),
      ],
      ['symlink to /etc/passwd', Buffer.concat([decl, rawHeader({ path: 'version.bin', type: 'SymbolicLink', linkpath: '/etc/passwd' }), END_OF_ARCHIVE])],
      [
        'symlink out, then a file through it',
        Buffer.concat([decl, rawHeader({ path: 'version.bin', type: 'SymbolicLink', linkpath: escape }), entry('version.bin', VB), END_OF_ARCHIVE]),
      ],
      ['hard link to /etc/passwd', Buffer.concat([decl, rawHeader({ path: 'version.bin', type: 'Link', linkpath: '/etc/passwd' }), END_OF_ARCHIVE])],
      ['hard link to ../', Buffer.concat([decl, rawHeader({ path: 'version.bin', type: 'Link', linkpath: '../../escaped' }), END_OF_ARCHIVE])],
      ['character device', Buffer.concat([decl, rawHeader({ path: 'version.bin', type: 'CharacterDevice', devmaj: 1, devmin: 5 }), END_OF_ARCHIVE])],
      ['block device', Buffer.concat([decl, rawHeader({ path: 'version.bin', type: 'BlockDevice', devmaj: 8, devmin: 0 }), END_OF_ARCHIVE])],
      ['fifo', Buffer.concat([decl, rawHeader({ path: 'version.bin', type: 'FIFO' }), END_OF_ARCHIVE])],
      ['directory', Buffer.concat([decl, rawHeader({ path: 'version.bin/', type: 'Directory' }), END_OF_ARCHIVE])],
      ['contiguous file type', Buffer.concat([decl, rawHeader({ path: 'version.bin', type: 'ContiguousFile' }, VB), END_OF_ARCHIVE])],
      [
        'pax header renaming the next entry',
        Buffer.concat([
          decl,
          rawHeader({ path: 'PaxHeader/x', type: 'ExtendedHeader' }, Buffer.from('30 path=../../escaped/version\n')),
          entry('version.bin', VB),
          END_OF_ARCHIVE,
        ]),
      ],
      [
        'global pax header',
        Buffer.concat([
          rawHeader({ path: 'pax_global_header', type: 'GlobalExtendedHeader' }, Buffer.from('20 path=../../esc\n')),
          decl,
          entry('version.bin', VB),
          END_OF_ARCHIVE,
        ]),
      ],
      [
        'GNU long name',
        Buffer.concat([
          decl,
          rawHeader({ path: '././@LongLink', type: 'NextFileHasLongPath' }, Buffer.from(`../../escaped\0`)),
          entry('version.bin', VB),
          END_OF_ARCHIVE,
        ]),
      ],
      ['ustar prefix climbing out', Buffer.concat([decl, prefixedHeader('../..', 'version.bin', 4), VB, padding(4), END_OF_ARCHIVE])],
      ['segment.json as a symlink', Buffer.concat([rawHeader({ path: 'segment.json', type: 'SymbolicLink', linkpath: '/etc/passwd' }), END_OF_ARCHIVE])],
      ['segment.json under a prefix', Buffer.concat([prefixedHeader('..', 'segment.json', 2), Buffer.from('{}'), padding(2), END_OF_ARCHIVE])],
    ];
    for (const [what, body] of attacks) {
      assert4xx(what, await put(ID, body));
      await assertHarmless(what);
    }
  });

  test('names and sizes that lie: undeclared entries, wrong sizes, wrong trailers, duplicates, huge declarations', async () => {
    const files = [{ name: 'version.bin', size: 4 }];
    const decl = declaration(files);
    const body = randomBytes(700);
    const lies: Array<[string, Buffer, string?]> = [
      ['entry not in the declaration', Buffer.concat([decl, entry('other.bin', VB), END_OF_ARCHIVE]), 'bad_archive'],
      [
        'entries in another order',
        Buffer.concat([
          declaration([
            { name: 'version.bin', size: 4 },
            { name: 'a.smoosh', size: 700 },
          ]),
          entry('a.smoosh', body),
          entry('version.bin', VB),
          END_OF_ARCHIVE,
        ]),
        'bad_archive',
      ],
      [
        'header larger than declared',
        Buffer.concat([declaration([{ name: 'version.bin', size: 4 }]), entry('version.bin', Buffer.alloc(600)), END_OF_ARCHIVE]),
        'bad_archive',
      ],
      [
        'header smaller than declared',
        Buffer.concat([declaration([{ name: 'version.bin', size: 600 }]), entry('version.bin', VB), END_OF_ARCHIVE]),
        'bad_archive',
      ],
      [
        'header size lies about the data',
        Buffer.concat([decl, fileHeader('version.bin', 4, new Date(0)), Buffer.alloc(1024, 7), END_OF_ARCHIVE]),
        'bad_archive',
      ],
      [
        'trailer names another file',
        Buffer.concat([decl, entry('version.bin', VB), trailer([{ name: 'druid.segment', size: 4, sha256: VB_SHA }]), END_OF_ARCHIVE]),
        'bad_archive',
      ],
      [
        'trailer size lies',
        Buffer.concat([decl, entry('version.bin', VB), trailer([{ name: 'version.bin', size: 5, sha256: VB_SHA }]), END_OF_ARCHIVE]),
        'bad_archive',
      ],
      [
        'trailer digest lies',
        Buffer.concat([decl, entry('version.bin', VB), trailer([{ name: 'version.bin', size: 4, sha256: '0'.repeat(64) }]), END_OF_ARCHIVE]),
        'digest_mismatch',
      ],
      [
        'trailer lists fewer files',
        Buffer.concat([
          declaration([...files, { name: 'a.smoosh', size: 700 }]),
          entry('version.bin', VB),
          entry('a.smoosh', body),
          trailer([{ name: 'version.bin', size: 4, sha256: VB_SHA }]),
          END_OF_ARCHIVE,
        ]),
        'bad_archive',
      ],
      ['no trailer', Buffer.concat([decl, entry('version.bin', VB), END_OF_ARCHIVE]), 'bad_archive'],
      [
        'a file listed twice',
        Buffer.concat([declaration([...files, ...files]), entry('version.bin', VB), entry('version.bin', VB), END_OF_ARCHIVE]),
        'bad_archive',
      ],
      ['negative size', Buffer.concat([declaration([{ name: 'version.bin', size: -4 }]), END_OF_ARCHIVE]), 'bad_archive'],
      ['fractional size', Buffer.concat([declaration([{ name: 'version.bin', size: 4.5 }]), END_OF_ARCHIVE]), 'bad_archive'],
      ['size as a string', Buffer.concat([declaration([{ name: 'version.bin', size: '4' as unknown as number }]), END_OF_ARCHIVE]), 'bad_archive'],
      ['petabytes declared', Buffer.concat([declaration([{ name: 'version.bin', size: 2 ** 52 }]), END_OF_ARCHIVE]), 'payload_too_large'],
      [
        '10,001 files declared',
        Buffer.concat([declaration(Array.from({ length: 10_001 }, (_, i) => ({ name: i === 0 ? 'version.bin' : `f${i}`, size: 0 }))), END_OF_ARCHIVE]),
        'bad_archive',
      ],
      ['segment.json over 4 MB', Buffer.concat([entry('segment.json', `{"pad":"${'x'.repeat(4 * 1024 * 1024 + 10)}"}`), END_OF_ARCHIVE]), 'bad_archive'],
      ['segment.json not JSON', Buffer.concat([entry('segment.json', '{"formatVersion":1,'), END_OF_ARCHIVE]), 'bad_archive'],
      [
        'segment.json of another format version',
        Buffer.concat([entry('segment.json', JSON.stringify({ formatVersion: 99, segmentId: ID, files })), END_OF_ARCHIVE]),
        'bad_archive',
      ],
      ['damaged header checksum', Buffer.concat([Buffer.from(decl).fill(0x41, 148, 150), END_OF_ARCHIVE]), 'bad_archive'],
      ['not a tar archive at all', randomBytes(4096), 'bad_archive'],
      ['an empty body', Buffer.alloc(0), 'bad_archive'],
      ['only the end-of-archive marker', END_OF_ARCHIVE, 'bad_archive'],
    ];
    for (const [what, b, code] of lies) {
      const r = await put(ID, b);
      assert4xx(what, r, code);
      await assertHarmless(what);
    }
  });

  test('the id in the URL must match the content', async () => {
    const descriptor = {
      dataSource: 'hostile',
      interval: '2015-09-12T01:00:00.000Z/2015-09-12T02:00:00.000Z',
      version: '2024-01-01T00:00:01.234Z',
      shardSpec: { type: 'numbered', partitionNum: 0, partitions: 1 },
    };
    assert4xx('declaration for another segment', await put(ID, good.length ? await packed(OTHER, { 'version.bin': VB }) : good), 'bad_archive');
    await assertHarmless('declaration for another segment');
    assert4xx(
      'descriptor of another segment',
      await put(ID, Buffer.concat([declaration([{ name: 'version.bin', size: 4 }], ID, descriptor), entry('version.bin', VB), END_OF_ARCHIVE])),
      'bad_archive',
    );
    await assertHarmless('descriptor of another segment');
    assert4xx('URL id with a path', await put(`../${ID}`, good));
    assert4xx(
      'URL id encoded twice',
      await target.request('PUT', `/data/v1/store/segments/${encodeURIComponent(encodeURIComponent(ID))}`, undefined, {
        raw: good,
        headers: { 'content-type': 'application/x-tar', 'x-druid-backup-node': 'attacker' },
      }),
    );
    assert4xx(
      'URL id of a segment stored before, other bytes',
      await put(OTHER, await packed(OTHER, { 'version.bin': VB, '00000.smoosh': randomBytes(5000) })),
      'conflict',
    );
    // The differing copy is flagged in the stored segment's manifest (Druid replicas that disagree are evidence);
    // the stored files stay as they were.
    const manifestOfOther = path.join(path.relative(SEGMENTS_DIR, segmentPath('hostile', OTHER)), 'manifest.json');
    assert.deepEqual(treeDiff(storedBefore, treeSnapshot(path.join(storeDir, 'segments'))), [`changed: ${manifestOfOther}`]);
    assert.deepEqual(
      checkStore(storeDir)
        .segments.get(OTHER)
        ?.conflicts.map((c) => c.node),
      ['attacker'],
    );
    storedBefore = treeSnapshot(path.join(storeDir, 'segments'));
    outside = treeSnapshot(sandbox, (rel) => rel.startsWith('store/.tmp') || rel.startsWith('state'));
    await assertHarmless('URL id mismatch');
  });

  test('truncated streams: cut at every kind of boundary', async () => {
    // Offsets inside and at the edges of each entry: headers, data, padding, the trailer, the end marker.
    const cuts = new Set<number>([0, 1, 100, 511, 512, 513]);
    for (let off = 1024; off < good.length - 1024; off += 509) cuts.add(off);
    for (const end of [good.length - 1025, good.length - 1024 - 512, good.length - 1024 - 1]) cuts.add(end);
    for (const cut of [...cuts].sort((a, b) => a - b)) {
      assert4xx(`cut at ${cut} of ${good.length}`, await put(ID, good.subarray(0, cut)), 'bad_archive');
      await assertHarmless(`cut at ${cut}`);
    }
    // The connection itself cut: content-length promises more than comes, then the client goes away.
    const head = (len: number) =>
      `PUT /data/v1/store/segments/${encodeURIComponent(ID)} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${target.token}\r\ncontent-type: application/x-tar\r\nx-druid-backup-node: attacker\r\ncontent-length: ${len}\r\n\r\n`;
    const gone = await rawHttp(target.url, head(good.length), good.subarray(0, 2000), { endEarly: true, timeoutMs: 3000 });
    tally.push({ attack: 'connection closed mid-body', status: gone.status });
    await assertHarmless('connection closed mid-body');
    // content-length shorter than the archive: the server reads only that much.
    const short = await rawHttp(target.url, head(1500), good, { timeoutMs: 10_000 });
    // The bytes after the declared length are a malformed next request: whichever refusal comes first is a 4xx.
    assert4xx('content-length shorter than the archive', short);
    await assertHarmless('content-length shorter than the archive');
    assert.equal(checkStore(storeDir).segments.size, 1);
  });

  test('an archive far larger than declared is cut off early, not swallowed', async () => {
    const decl = declaration([{ name: 'version.bin', size: 4 }]);
    const total = 256 * 1024 * 1024;
    const huge = (fill: number) =>
      (function* () {
        yield Buffer.concat([decl, entry('version.bin', VB), trailer([{ name: 'version.bin', size: 4, sha256: VB_SHA }]), END_OF_ARCHIVE]);
        const block = Buffer.alloc(1 << 20, fill);
        for (let n = 0; n < total; n += block.length) yield block;
      })();
    const head = `PUT /data/v1/store/segments/${encodeURIComponent(ID)} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${target.token}\r\ncontent-type: application/x-tar\r\nx-druid-backup-node: attacker\r\ncontent-length: ${total + 4096}\r\n\r\n`;
    for (const [what, fill] of [
      ['256 MB of data after the declared archive', 0x41],
      ['256 MB of zero padding after the declared archive', 0],
    ] as const) {
      const r = await rawHttp(target.url, head, huge(fill), { timeoutMs: 60_000 });
      assert4xx(what, r, 'bad_archive');
      assert.ok(r.written < total / 4, `${what}: the server read ${r.written} bytes before refusing`);
      await assertHarmless(what);
    }
    // A file entry whose data runs on far past its declared size.
    const runOn = (function* () {
      yield Buffer.concat([decl, fileHeader('version.bin', 4, new Date(0))]);
      const block = Buffer.alloc(1 << 20, 0x42);
      for (let n = 0; n < total; n += block.length) yield block;
    })();
    const r = await rawHttp(target.url, head, runOn, { timeoutMs: 60_000 });
    assert4xx('file data far past its declared size', r, 'bad_archive');
    assert.ok(r.written < total / 4, `the server read ${r.written} bytes before refusing`);
    await assertHarmless('file data far past its declared size');
  });

  test('after every attack the store is sound and still takes a good upload', async () => {
    const r = await put(ID, good, { 'x-druid-backup-node': 'honest' });
    assert.equal(r.status, 201, r.text);
    const check = checkStore(storeDir);
    assert.deepEqual(check.problems, []);
    assert.deepEqual([...check.segments.keys()].sort(), [ID, OTHER].sort());
    assert.deepEqual(check.tmp, []);
  });
});
