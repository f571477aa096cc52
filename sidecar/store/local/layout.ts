/**
 * Where a segment lives in a local store: `{store}/segments/{dataSource}/{segmentId}/`, names encoded so any id is
 * one safe directory name: letters, digits and `. _ - : +` stay (ids stay readable for an operator with `ls` and
 * `cp`), every other byte becomes `%XX`, a leading `.` too (so no name is hidden, `.` or `..`), and a name longer
 * than 200 bytes is cut and ends in `~` and a hash of the whole (file names stop at 255 bytes). `manifest.json`
 * inside holds the exact id.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';

export const SEGMENTS_DIR = 'segments';
export const TMP_DIR = '.tmp';
const MAX_NAME = 200;

export function encodeName(s: string): string {
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9._:+-]/.test(c) && !(c === '.' && out === '') ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  if (out.length > MAX_NAME) out = `${out.slice(0, MAX_NAME - 17)}~${createHash('sha256').update(s).digest('hex').slice(0, 16)}`;
  return out;
}

/** The directory of a segment, relative to the store root. */
export function segmentPath(dataSource: string, segmentId: string): string {
  return path.join(SEGMENTS_DIR, encodeName(dataSource), encodeName(segmentId));
}
