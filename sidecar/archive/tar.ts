/**
 * The few tar primitives the wire format needs: POSIX ustar headers (encoded and decoded by the `tar` package's
 * Header, which writes sizes beyond 8 GiB in GNU base-256 as GNU tar reads them), block padding and the
 * end-of-archive marker. Entries are written by hand so each file can be hashed as it streams.
 */
import { Header } from 'tar';
import { BackupError, messageOf } from '../errors.js';

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

/** The header block of a regular file entry. */
export function fileHeader(name: string, size: number, mtime: Date): Buffer {
  const block = Buffer.alloc(BLOCK);
  const h = new Header({ path: name, mode: 0o644, uid: 0, gid: 0, size, mtime, type: 'File', uname: '', gname: '' });
  if (h.encode(block, 0)) throw new BackupError('internal', `tar entry name "${name}" needs a pax header`);
  return block;
}

export interface ParsedHeader {
  name: string;
  size: number;
  type: string;
  nullBlock: boolean;
}

/** Decodes a header block; throws `bad_archive` when its checksum is wrong. */
export function parseHeader(block: Buffer): ParsedHeader {
  let h: Header;
  try {
    h = new Header(block);
  } catch (e) {
    // Garbage can make the decoder itself throw (a size field in invalid base-256, say).
    throw new BackupError('bad_archive', `tar header cannot be read (${messageOf(e)}): the stream is not a tar archive or is damaged`);
  }
  if (h.nullBlock) return { name: '', size: 0, type: '', nullBlock: true };
  if (!h.cksumValid) throw new BackupError('bad_archive', 'tar header checksum is wrong: the stream is not a tar archive or is damaged');
  return { name: h.path ?? '', size: h.size ?? -1, type: h.type, nullBlock: false };
}
