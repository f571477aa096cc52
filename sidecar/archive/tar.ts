/**
 * The few tar primitives the wire format needs: POSIX ustar headers of regular files, block padding and the
 * end-of-archive marker. Entries are written by hand so each file can be hashed as it streams.
 *
 * Headers are encoded and decoded here, not by the `tar` package's Header: for a backup of 10,000 small segments,
 * its general-purpose encode and decode (object copies, regular expressions, Dates for every time field) took
 * 0.87 s of the source's CPU and 0.83 s of the target's (bench/backup.ts; docs/performance.md). What is written is
 * byte for byte what that Header writes for the same entry, and what is read is what it reads, or is refused
 * (test/unit/archive/tar.test.ts checks both against it, which stays a dev dependency as that oracle). Sizes from
 * 8 GiB are written in GNU base-256, as GNU tar writes and reads them.
 */
import { BackupError } from '../errors.js';

export const BLOCK = 512;
/** Two zero blocks end an archive. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);
const ZEROS = Buffer.alloc(BLOCK);

export function paddingFor(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

export function padding(size: number): Buffer {
  return ZEROS.subarray(0, paddingFor(size));
}

/** Bytes an entry of `size` bytes takes in the archive: header, data, padding. */
export function entryLength(size: number): number {
  return BLOCK + size + paddingFor(size);
}

// Field offsets and lengths of a ustar header.
const NAME = 0;
const MODE = 100;
const UID = 108;
const GID = 116;
const SIZE = 124;
const MTIME = 136;
const CHKSUM = 148;
const TYPEFLAG = 156;
const MAGIC = 257;
const DEVMAJOR = 329;
const DEVMINOR = 337;
const PREFIX = 345;
/** Largest number a 12-byte octal field holds (one byte is its terminator). */
const MAX_OCTAL_12 = 0o77777777777;
const USTAR = Buffer.from('ustar\u000000', 'latin1');

/** Writes `n` as the `len`-byte octal field tar writes: zero-padded digits, a space and a NUL (digits and a NUL when they fill it). */
function putOctal(block: Buffer, off: number, len: number, n: number): void {
  const digits = n.toString(8);
  let at = off;
  if (digits.length < len - 1) {
    for (let i = digits.length; i < len - 2; i++) block[at++] = 0x30;
    at += block.write(digits, at, 'latin1');
    block[at++] = 0x20;
  } else at += block.write(digits, at, 'latin1');
  block[at] = 0;
}

/** Writes `n` as GNU base-256: 0x80, then the number big-endian in the field's other bytes. */
function putBase256(block: Buffer, off: number, len: number, n: number): void {
  block[off] = 0x80;
  for (let i = off + len - 1; i > off; i--) {
    block[i] = n % 256;
    n = Math.floor(n / 256);
  }
}

/**
 * The header block of a regular file entry (mode 0644, owner 0, no user or group name): a new block, or written
 * into `into` at `at` (the block's 512 bytes there are overwritten whole).
 */
export function fileHeader(name: string, size: number, mtime: Date, into?: Buffer, at = 0): Buffer {
  const block = into ? into.subarray(at, at + BLOCK).fill(0) : Buffer.alloc(BLOCK);
  // A longer name, or one not in ASCII, would need a pax header; segment files have short plain names.
  if (name.length >= 100 || block.write(name, NAME, 100, 'utf8') !== name.length)
    throw new BackupError('internal', `tar entry name "${name}" needs a pax header`);
  if (!Number.isSafeInteger(size) || size < 0) throw new BackupError('internal', `tar entry "${name}" cannot have ${size} bytes`);
  putOctal(block, MODE, 8, 0o644);
  putOctal(block, UID, 8, 0);
  putOctal(block, GID, 8, 0);
  if (size > MAX_OCTAL_12) putBase256(block, SIZE, 12, size);
  else putOctal(block, SIZE, 12, size);
  putOctal(block, MTIME, 12, Math.min(Math.max(0, Math.floor(mtime.getTime() / 1000)), MAX_OCTAL_12));
  block[TYPEFLAG] = 0x30;
  USTAR.copy(block, MAGIC);
  putOctal(block, DEVMAJOR, 8, 0);
  putOctal(block, DEVMINOR, 8, 0);
  putOctal(block, CHKSUM, 8, checksum(block));
  return block;
}

/** The sum of the header's bytes with its checksum field counted as spaces. */
function checksum(block: Buffer): number {
  let sum = 8 * 0x20;
  for (let i = 0; i < CHKSUM; i++) sum += block[i]!;
  for (let i = TYPEFLAG; i < BLOCK; i++) sum += block[i]!;
  return sum;
}

/** A NUL-terminated text field. */
function text(block: Buffer, off: number, len: number): string {
  const nul = block.indexOf(0, off);
  return block.toString('utf8', off, nul < 0 || nul > off + len ? off + len : nul);
}

/**
 * An octal field as tar writes it: optional leading spaces, octal digits, then only spaces and NULs. Undefined when
 * it is anything else (which tar's own readers would take only in part).
 */
function octal(block: Buffer, off: number, len: number): number | undefined {
  const end = off + len;
  let i = off;
  while (i < end && block[i] === 0x20) i++;
  let n = 0;
  const first = i;
  for (; i < end && block[i]! >= 0x30 && block[i]! <= 0x37; i++) n = n * 8 + block[i]! - 0x30;
  if (i === first) return undefined;
  for (; i < end; i++) if (block[i] !== 0 && block[i] !== 0x20) return undefined;
  return n;
}

/** The size field: octal, or GNU base-256 (positive only). Undefined when it is neither. */
function sizeField(block: Buffer): number | undefined {
  const lead = block[SIZE]!;
  if (!(lead & 0x80)) return octal(block, SIZE, 12);
  if (lead !== 0x80) return undefined;
  let n = 0;
  for (let i = SIZE + 1; i < SIZE + 12; i++) n = n * 256 + block[i]!;
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Names of the entry types, as the `tar` package names them, for error messages. */
const TYPE_NAMES: Record<string, string> = {
  '1': 'Link',
  '2': 'SymbolicLink',
  '3': 'CharacterDevice',
  '4': 'BlockDevice',
  '5': 'Directory',
  '6': 'FIFO',
  '7': 'ContiguousFile',
  g: 'GlobalExtendedHeader',
  x: 'ExtendedHeader',
  A: 'SolarisACL',
  D: 'GNUDumpDir',
  I: 'Inode',
  K: 'NextFileHasLongLinkpath',
  L: 'NextFileHasLongPath',
  M: 'ContinuationFile',
  N: 'OldGnuLongPath',
  S: 'SparseFile',
  V: 'TapeVolumeHeader',
  X: 'OldExtendedHeader',
};

export interface ParsedHeader {
  name: string;
  size: number;
  type: string;
  nullBlock: boolean;
}

function bad(why: string): never {
  throw new BackupError('bad_archive', `tar header ${why}: the stream is not a tar archive or is damaged`);
}

/** Decodes a header block; throws `bad_archive` when its checksum is wrong or a field cannot be read. */
export function parseHeader(block: Buffer): ParsedHeader {
  if (block.length < BLOCK) bad('is shorter than 512 bytes');
  const sum = octal(block, CHKSUM, 8);
  if (sum === undefined) {
    if (block.every((b) => b === 0)) return { name: '', size: 0, type: '', nullBlock: true };
    bad('checksum cannot be read');
  }
  if (sum !== checksum(block)) bad('checksum is wrong');
  let name = text(block, NAME, 100);
  const flag = block[TYPEFLAG]!;
  let type = flag === 0 || flag === 0x30 ? 'File' : (TYPE_NAMES[String.fromCharCode(flag)] ?? 'Unsupported');
  // Old tars marked a directory as a file whose name ends in a slash.
  if (type === 'File' && name.endsWith('/')) type = 'Directory';
  if (block.compare(USTAR, 0, USTAR.length, MAGIC, MAGIC + USTAR.length) === 0) {
    // A ustar prefix holds the leading directories of a long path: 155 bytes, or 130 where atime and ctime follow it
    // (then a 131st byte of 0). As the `tar` package reads it, so that both name the same entry.
    if (block[PREFIX + 130] !== 0) name = `${text(block, PREFIX, 155)}/${name}`;
    else {
      const prefix = text(block, PREFIX, 130);
      if (prefix) name = `${prefix}/${name}`;
    }
  }
  const size = type === 'Directory' ? 0 : sizeField(block);
  if (size === undefined) bad(`of "${name.slice(0, 100)}" has a size field that cannot be read`);
  return { name, size, type, nullBlock: false };
}
