/**
 * The wire format's tar headers (sidecar/archive/tar.ts) against the `tar` package's Header, which wrote and read
 * them before: the same bytes for every entry we write, and nothing read that Header would read otherwise.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Header } from 'tar';
import type { HeaderData } from 'tar';
import { BLOCK, fileHeader, parseHeader } from '../../../sidecar/archive/tar.js';
import { isBackupError } from '../../../sidecar/errors.js';

const MAX_OCTAL_12 = 0o77777777777;

/** What the `tar` package writes for a regular file entry as the packer describes it. */
function theirs(name: string, size: number, mtime: Date): Buffer {
  const block = Buffer.alloc(BLOCK);
  const needPax = new Header({ path: name, mode: 0o644, uid: 0, gid: 0, size, mtime, type: 'File', uname: '', gname: '' }).encode(block, 0);
  assert.equal(needPax, false);
  return block;
}

/**
 * What the `tar` package reads from a block, as parseHeader reports it; undefined where parseHeader must refuse it
 * (a wrong checksum, no size), 'unreadable' where the package cannot read it at all (it throws on a malformed
 * base-256 number in any field, those parseHeader ignores included).
 */
function theirRead(block: Buffer): { name: string; size: number; type: string; nullBlock: boolean } | undefined | 'unreadable' {
  let h: Header;
  try {
    h = new Header(block);
  } catch {
    return 'unreadable';
  }
  // The package cuts a text field at its first NUL by /\0.*/, whose `.` stops at a line break: bytes after the NUL
  // come back from the first line break on. parseHeader cuts at the NUL, as the format says.
  const afterNul = (from: number, to: number) => {
    const nul = block.indexOf(0, from);
    return nul >= 0 && nul < to ? block.subarray(nul, to) : Buffer.alloc(0);
  };
  if ([afterNul(0, 100), afterNul(345, 500)].some((rest) => rest.some((b) => b === 0x0a || b === 0x0d || b === 0xe2))) return 'unreadable';
  if (h.nullBlock) return { name: '', size: 0, type: '', nullBlock: true };
  if (!h.cksumValid || h.size === undefined) return undefined;
  return { name: h.path ?? '', size: h.size, type: h.type === 'OldFile' ? 'File' : h.type, nullBlock: false };
}

function ourRead(block: Buffer): ReturnType<typeof parseHeader> | undefined {
  try {
    return parseHeader(block);
  } catch (e) {
    assert.ok(isBackupError(e) && e.code === 'bad_archive', `a refusal is bad_archive: ${String(e)}`);
    return undefined;
  }
}

const names = fc.string({ unit: fc.integer({ min: 1, max: 0x7f }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 99 });
const sizes = fc.oneof(fc.integer({ min: 0, max: 4096 }), fc.integer({ min: 0, max: MAX_OCTAL_12 }));
const mtimes = fc.integer({ min: 0, max: MAX_OCTAL_12 * 1000 }).map((ms) => new Date(ms));

test('property: a header is written byte for byte as the tar package writes it, and read back as written by both', () => {
  fc.assert(
    fc.property(names, sizes, mtimes, (name, size, mtime) => {
      const ours = fileHeader(name, size, mtime);
      assert.deepEqual(ours, theirs(name, size, mtime));
      const read = { name, size, type: name.endsWith('/') ? 'Directory' : 'File', nullBlock: false };
      if (read.type === 'Directory') read.size = 0;
      assert.deepEqual(parseHeader(ours), read);
      assert.deepEqual(theirRead(ours), read);
    }),
    { numRuns: 2000 },
  );
});

test('property: a size from 8 GiB is written in GNU base-256, which the tar package reads as the same size', () => {
  fc.assert(
    fc.property(fc.integer({ min: MAX_OCTAL_12 + 1, max: Number.MAX_SAFE_INTEGER }), (size) => {
      const block = fileHeader('00000.smoosh', size, new Date(0));
      assert.equal(block[124], 0x80);
      assert.equal(parseHeader(block).size, size);
      assert.deepEqual(theirRead(block), parseHeader(block));
    }),
  );
});

test('a name that would need a pax header, or a size that is not a whole number, is refused when writing', () => {
  assert.throws(() => fileHeader('x'.repeat(100), 1, new Date()), /needs a pax header/);
  assert.throws(() => fileHeader('café.bin', 1, new Date()), /needs a pax header/);
  assert.throws(() => fileHeader('a.bin', -1, new Date()), /cannot have -1 bytes/);
  assert.throws(() => fileHeader('a.bin', 1.5, new Date()), /cannot have 1.5 bytes/);
});

/** Headers of any kind the tar package writes: other types, long paths split into a prefix, link names, owners, times. */
const anyHeader = fc
  .record({
    path: fc.oneof(names, fc.array(names, { minLength: 2, maxLength: 4 }).map((p) => p.join('/'))),
    type: fc.constantFrom('File', 'OldFile', 'Directory', 'SymbolicLink', 'Link', 'CharacterDevice', 'FIFO', 'ContiguousFile', 'ExtendedHeader', 'NextFileHasLongPath'),
    size: sizes,
    mode: fc.integer({ min: 0, max: 0o7777 }),
    uid: fc.integer({ min: 0, max: 0o7777777 }),
    linkpath: fc.option(names, { nil: undefined }),
    uname: fc.option(fc.string({ maxLength: 31 }), { nil: undefined }),
    mtime: mtimes,
    atime: fc.option(mtimes, { nil: undefined }),
  })
  .map((d) => {
    const block = Buffer.alloc(BLOCK);
    new Header(d as HeaderData).encode(block, 0);
    return block;
  });

test('property: any header the tar package writes is read as it reads it', () => {
  fc.assert(
    fc.property(anyHeader, (block) => {
      const ours = ourRead(block);
      assert.ok(ours, 'read');
      assert.deepEqual(ours, theirRead(block));
    }),
    { numRuns: 2000 },
  );
});

test('property: a damaged or hostile block is refused, or read exactly as the tar package reads it', () => {
  const damaged = fc.tuple(anyHeader, fc.array(fc.tuple(fc.integer({ min: 0, max: BLOCK - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), fc.boolean()).map(([block, changes, fixSum]) => {
    for (const [at, b] of changes) block[at] = b;
    if (fixSum) {
      // A checksum made right again, so what is judged is the damaged fields, not the sum.
      let sum = 8 * 0x20;
      for (let i = 0; i < BLOCK; i++) if (i < 148 || i >= 156) sum += block[i]!;
      block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    }
    return block;
  });
  fc.assert(
    fc.property(fc.oneof(damaged, fc.uint8Array({ minLength: BLOCK, maxLength: BLOCK }).map((a) => Buffer.from(a))), (block) => {
      const ours = ourRead(block);
      const their = theirRead(block);
      if (ours && their !== 'unreadable') assert.deepEqual(ours, their);
      if (their === undefined) assert.equal(ours, undefined, 'what the package finds wrong is refused');
    }),
    { numRuns: 3000 },
  );
  assert.deepEqual(parseHeader(Buffer.alloc(BLOCK)), { name: '', size: 0, type: '', nullBlock: true });
  assert.throws(() => parseHeader(Buffer.alloc(BLOCK, 0x41)), /checksum cannot be read/);
});
