/**
 * The one rule for paths (sidecar/druid/paths.ts), tried with segment ids and descriptors built from a hostile
 * alphabet: every path derived from one (cache, both layouts; info_dir; a directory destination; local deep
 * storage; the local store; bucket keys; the restore planner's dry run) lies inside its root, or the segment is
 * refused with `bad_segment_id`.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { segmentIdOfDescriptor } from '../../../sidecar/druid/descriptor.js';
import type { SegmentParts } from '../../../sidecar/druid/paths.js';
import { cacheSegmentPath, deepStoragePath, infoFilePath, inside as joinInside, isInside, quoteId, storeSegmentPath } from '../../../sidecar/druid/paths.js';
import type { SegmentId } from '../../../sidecar/druid/segmentId.js';
import { formatSegmentId, parseSegmentId } from '../../../sidecar/druid/segmentId.js';
import { isBackupError } from '../../../sidecar/errors.js';
import type { DestinationSpec } from '../../../sidecar/restore/plan.js';
import { planRestore } from '../../../sidecar/restore/plan.js';
import { segmentPath } from '../../../sidecar/store/local/layout.js';
import type { Manifest } from '../../../sidecar/store/manifest.js';
import { segmentDigest } from '../../../sidecar/store/manifest.js';
import { ObjectLayout } from '../../../sidecar/store/object/layout.js';

const ROOT = '/r/cache';
const INFO = '/r/info_dir';
const DEEP = '/r/deep';
const DIR = '/r/restored';
const STORE = '/r/store';
const PREFIX = 'backups/prod/';

const S = '2015-09-12T00:00:00.000Z';
const E = '2015-09-13T00:00:00.000Z';

const piece = fc.constantFrom(
  '/',
  '\\',
  '..',
  '.',
  '\u0000',
  '\u0001',
  '\n',
  '\u007f',
  '\u0085',
  '\u2028',
  '%2e',
  '%2f',
  'é',
  '日本',
  '\u{1F600}',
  '_',
  '0',
  '7',
  'a',
  'Z',
  ':',
  ' ',
  '-',
  S,
  E,
  '2015-09-12',
  '/../',
  '../..',
);
const hostile = fc.array(piece, { maxLength: 8 }).map((a) => a.join(''));
const name = fc.oneof(hostile, fc.constantFrom('.', '..', 'wiki', 'v1', '', '../../../../tmp/x', 'v/../../../../../tmp/x'));
const instant = fc.oneof(fc.constantFrom(S, E, '2015-09-12', '-146136543-09-08T08:23:32.096Z', '146140482-04-24T15:36:27.903Z'), hostile);
const partition = fc.oneof(fc.integer({ min: 0, max: 5 }), fc.constantFrom(-1, 2147483647, 2147483648, 1.5, Number.NaN));

interface Case {
  dataSource: string;
  start: string;
  end: string;
  version: string;
  partition: number;
}
const parts = fc.record<Case>({ dataSource: name, start: instant, end: instant, version: name, partition });

function inside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}

/** Runs a derivation: the path when it lies inside `root`; undefined when refused with bad_segment_id; anything else fails. */
function derive(root: string, what: string, fn: () => string): string | undefined {
  let p: string;
  try {
    p = fn();
  } catch (e) {
    assert.ok(isBackupError(e) && e.code === 'bad_segment_id', `${what}: refused with ${String((e as Error).message)} (code ${(e as { code?: string }).code})`);
    assert.ok(!/[\u0000-\u001f]/.test(e.message), `${what}: the message carries no control character`);
    return undefined;
  }
  assert.ok(inside(root, p), `${what}: ${JSON.stringify(p)} is not inside ${root}`);
  return p;
}

function keyBelow(prefix: string, key: string): boolean {
  if (!key.startsWith(prefix)) return false;
  const rest = key.slice(prefix.length).split('/');
  if (rest[rest.length - 1] === '') rest.pop();
  return rest.every((p) => p !== '' && p !== '.' && p !== '..') && path.posix.normalize(key).startsWith(prefix);
}

/** Every path one segment may be given, each inside its root or refused. */
function allPaths(seg: SegmentParts, loadSpecPath: string): void {
  derive(ROOT, 'nested cache', () => cacheSegmentPath(ROOT, seg, 'nested'));
  derive(ROOT, 'flat cache', () => cacheSegmentPath(ROOT, seg, 'flat'));
  derive(DIR, 'directory destination', () => cacheSegmentPath(DIR, seg, 'nested'));
  derive(INFO, 'info_dir', () => infoFilePath(INFO, seg));
  derive(STORE, 'store', () => storeSegmentPath(STORE, seg, segmentPath(seg.dataSource, seg.id)));
  derive(DEEP, 'deep storage', () => deepStoragePath(seg, { type: 'local', path: loadSpecPath }, DEEP));
  const layout = new ObjectLayout(PREFIX);
  for (const key of [layout.manifestKey(seg.id), layout.segmentPrefix(seg.id), layout.fileKey(seg.id, 'node/../x', '00000.smoosh')]) {
    assert.ok(keyBelow(PREFIX, key), `bucket key ${JSON.stringify(key)} is not below ${PREFIX}`);
  }
  assert.throws(() => layout.fileKey(seg.id, 'n', '../../x'), { code: 'bad_segment_id' });
}

const loadSpec = fc.oneof(
  fc.constantFrom(`${DEEP}/wiki/x/index/`, `${DEEP}/../etc/index`, DEEP, '/etc/passwd', 'relative/index', `${DEEP}/a\u0000b`),
  hostile.map((h) => `${DEEP}/${h}`),
);

test('the prefix check of isInside and the one rule\'s join is path.relative\'s answer, for roots and paths of any shape', () => {
  // The oracle above (path.relative), given the resolved paths.
  const byRelative = (root: string, p: string) => inside(path.resolve(root), path.resolve(p));
  const seg = fc.oneof(fc.constantFrom('', '.', '..', 'r', 'r.', '.r', 'cache', 'cache2', 'cach', '...'), hostile);
  const abs = fc.array(seg, { maxLength: 6 }).map((a) => `/${a.join('/')}`);
  const trailing = fc.tuple(abs, fc.constantFrom('', '/', '//', '/.', '/..')).map(([a, t]) => a + t);
  const root = fc.oneof(trailing, fc.constantFrom('/', '//', '/r/cache', '/r/cache/'));
  const relative = fc.array(seg, { maxLength: 4 }).map((a) => a.join('/'));
  fc.assert(
    fc.property(root, fc.oneof(trailing, relative), (r, p) => {
      const full = path.isAbsolute(p) ? p : path.join(r, p);
      assert.equal(isInside(r, full), byRelative(r, full), `isInside(${JSON.stringify(r)}, ${JSON.stringify(full)})`);
      const parts = p.split('/');
      const joined = path.resolve(r, ...parts);
      if (byRelative(r, joined)) assert.equal(joinInside(r, parts, 'x'), joined);
      else assert.throws(() => joinInside(r, parts, 'x'), (e) => isBackupError(e) && e.code === 'bad_segment_id');
    }),
    { numRuns: 5000 },
  );
});

test('every path derived from hostile parts lies inside its root or is refused', () => {
  fc.assert(
    fc.property(parts, loadSpec, (p, spec) => {
      allPaths({ ...p, id: formatSegmentId(p) }, spec);
      // An id that disagrees with its parts (a forged SegmentId) is held to the same rule.
      allPaths({ ...p, id: `${p.dataSource}/../${p.version}` }, spec);
    }),
    { numRuns: 3000 },
  );
});

test('ids from outside: a hostile id is refused, or parses to parts whose every path lies inside its root', () => {
  const id = fc.oneof(
    parts.map((p) => formatSegmentId({ ...p, partition: Number.isInteger(p.partition) ? p.partition : 0 })),
    fc.array(piece, { maxLength: 16 }).map((a) => a.join('')),
  );
  fc.assert(
    fc.property(id, loadSpec, (raw, spec) => {
      let seg: SegmentId;
      try {
        seg = parseSegmentId(raw);
      } catch (e) {
        assert.ok(isBackupError(e) && e.code === 'bad_segment_id', String(e));
        return;
      }
      for (const what of ['dataSource', 'version'] as const) {
        assert.ok(!/[/\\\u0000-\u001f]/.test(seg[what]) && seg[what] !== '.' && seg[what] !== '..', `${what} ${quoteId(seg[what])} was accepted`);
      }
      allPaths(seg, spec);
    }),
    { numRuns: 3000 },
  );
});

test('descriptors from outside (uploads, manifests, info_dir): refused, or every path inside its root', () => {
  const descriptor = fc.record({
    dataSource: name,
    interval: fc.oneof(
      fc.tuple(instant, instant).map(([a, b]) => `${a}/${b}`),
      hostile,
    ),
    version: name,
    shardSpec: fc.record({ type: fc.constant('numbered'), partitionNum: partition }),
    loadSpec: fc.record({ type: fc.constant('local'), path: loadSpec }),
  });
  fc.assert(
    fc.property(descriptor, (d) => {
      let seg: SegmentId;
      try {
        seg = segmentIdOfDescriptor(d);
      } catch (e) {
        assert.ok(isBackupError(e), String(e));
        return;
      }
      allPaths(seg, d.loadSpec.path);
    }),
    { numRuns: 3000 },
  );
});

const sha = (c: string) => c.repeat(64);

/** A manifest as a hostile target may send it: fields and id taken as given, not parsed. */
function rawManifest(p: Case, spec: string, id = formatSegmentId(p)): Manifest {
  const files = [{ name: 'version.bin', size: 4, sha256: sha('a') }];
  return {
    formatVersion: 1,
    segmentId: id,
    dataSource: p.dataSource,
    interval: `${p.start}/${p.end}`,
    version: p.version,
    partition: p.partition,
    descriptor: { dataSource: p.dataSource, interval: `${p.start}/${p.end}`, version: p.version, loadSpec: { type: 'local', path: spec } },
    files,
    size: 4,
    digest: segmentDigest(files),
    sources: [],
    conflicts: [],
    createdAt: '',
    updatedAt: '',
  };
}

test('the restore planner (and so the dry run) plans no path outside its root; a refused segment fails alone', () => {
  const room = (p: string) => ({ path: p, used: 0, diskFree: 1e12, diskKeep: 0 });
  const dests: DestinationSpec[] = [
    { kind: 'cache', name: 'cache', layout: 'nested', infoDir: INFO, rooms: [room(ROOT)] },
    { kind: 'cache', name: 'cache', layout: 'flat', infoDir: INFO, rooms: [room(ROOT)] },
    { kind: 'cache', name: DIR, layout: 'nested', infoDir: path.join(DIR, 'info_dir'), rooms: [room(DIR)] },
    { kind: 'deep-storage', name: 'deep-storage', directory: DEEP, room: room(DEEP) },
  ];
  const good: Case = { dataSource: 'wiki', start: S, end: E, version: 'v1', partition: 0 };
  fc.assert(
    fc.property(fc.array(fc.tuple(parts, loadSpec), { minLength: 1, maxLength: 5 }), (list) => {
      const manifests = [rawManifest(good, `${DEEP}/wiki/index/`), ...list.map(([p, spec]) => rawManifest(p, spec))];
      for (const dest of dests) {
        const { items, refused, plan } = planRestore({ target: 'http://t', destination: dest, manifests, present: new Map() });
        const root = dest.kind === 'deep-storage' ? dest.directory : dest.rooms[0]!.path;
        assert.ok(
          items.some((i) => i.segmentId === formatSegmentId(good)),
          'the good segment is still planned',
        );
        assert.equal(items.length + refused.length, manifests.length, 'each segment is planned or refused');
        for (const i of items) {
          assert.ok(inside(root, i.path), `planned ${JSON.stringify(i.path)} outside ${root}`);
          if (i.infoFile && dest.kind === 'cache')
            assert.ok(inside(dest.infoDir, i.infoFile), `info file ${JSON.stringify(i.infoFile)} outside ${dest.infoDir}`);
        }
        for (const s of plan.segments) assert.ok(inside(root, s.path));
        for (const r of refused) assert.match(r.message, /^(segment|target)/);
      }
    }),
    { numRuns: 500 },
  );
});

test('a refusal names the id escaped and cut short', () => {
  const id = `ds_${S}_${E}_v/../../x\u0000${'y'.repeat(400)}`;
  assert.throws(
    () => parseSegmentId(id),
    (e: Error) => isBackupError(e) && e.code === 'bad_segment_id' && !e.message.includes('\u0000') && e.message.length < 400,
  );
  assert.throws(() => parseSegmentId(`ds_${S}_${E}_v/../../../../../tmp/x`), {
    code: 'bad_segment_id',
    message: /segment "ds_2015.*tmp\/x" is refused: its version contains a path separator/,
  });
  assert.throws(() => parseSegmentId(`.._${S}_${E}_v`), { code: 'bad_segment_id' });
  assert.throws(() => parseSegmentId(`ds_${S}_${E}_..`), { code: 'bad_segment_id', message: /its version is "\.\."/ });
  assert.throws(() => parseSegmentId(`ds_${S}_${E}_a\\b`), { code: 'bad_segment_id', message: /path separator/ });
});
