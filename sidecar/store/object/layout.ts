/**
 * Where things live in a bucket or a container, whatever the service (docs/s3-layout.md is the operator's version):
 *
 *   {prefix}/manifests/{id}.json              the segment's manifest, written last, with If-None-Match: *
 *   {prefix}/segments/{id}/{node}/{file}      the segment's files, as uploaded by {node} (the manifest's first source)
 *   {prefix}/catalog.json.gz                  a cache of all manifests, checked against listings (catalog.ts)
 *
 * `{id}` and `{node}` are encoded so that any value is one safe key segment: letters, digits, `_` and `-` stay,
 * every other byte (`.`, `:`, `+`, `%`, `/`, spaces, non-ASCII) becomes `%XX`. An encoded name therefore never
 * holds `.`, `/` or `~`, which gives the layout its two properties:
 * - objects are only leaves: no key is the key of another followed by `/` (VersityGW keeps keys as paths and
 *   refuses a key below an object), and `segments/{id}/` never begins another segment's keys;
 * - no manifest key is a prefix of another (`.json` ends every encoded id), so a listing by prefix is exact.
 * A name longer than MAX_NAME bytes is cut at a `%XX` boundary and ends in `~` and the sha256 of the whole value,
 * which keeps every key segment under the 255 bytes of a file name and every key far under S3's 1024 (Azure's 1024 too).
 * The manifest holds the exact id, so nothing needs to decode a key. Every key of a segment is made through the
 * one rule for paths (druid/paths.ts `bucketKey`), which proves it lies below the prefix.
 */
import { createHash } from 'node:crypto';
import { bucketKey } from '../../druid/paths.js';

export const MANIFESTS_DIR = 'manifests';
export const SEGMENTS_DIR = 'segments';
export const CATALOG_NAME = 'catalog.json.gz';
export const MANIFEST_SUFFIX = '.json';
/** Longest encoded name before it is cut and hashed. */
export const MAX_NAME = 200;
/** Longest prefix accepted in a target URL, so that every key stays under S3's and Azure's 1024 bytes. */
export const MAX_PREFIX = 400;

const KEEP = /^[A-Za-z0-9_-]$/;

export function encodeName(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += KEEP.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  if (out.length <= MAX_NAME) return out;
  let cut = MAX_NAME - 65;
  // Never cut a %XX in two.
  const pct = out.lastIndexOf('%', cut - 1);
  if (pct >= 0 && pct > cut - 3) cut = pct;
  return `${out.slice(0, cut)}~${createHash('sha256').update(value, 'utf8').digest('hex')}`;
}

/** The keys of one target: a bucket and a prefix that is empty or ends in `/`. */
export class ObjectLayout {
  constructor(readonly prefix: string) {}

  get manifestsPrefix(): string {
    return `${this.prefix}${MANIFESTS_DIR}/`;
  }

  get segmentsPrefix(): string {
    return `${this.prefix}${SEGMENTS_DIR}/`;
  }

  get catalogKey(): string {
    return `${this.prefix}${CATALOG_NAME}`;
  }

  manifestKey(segmentId: string): string {
    return bucketKey(this.prefix, `${MANIFESTS_DIR}/${encodeName(segmentId)}${MANIFEST_SUFFIX}`, segmentId);
  }

  /** Listing prefix of the manifests of one data source (ids start with `{dataSource}_`); a superset when cut. */
  dataSourceManifestsPrefix(dataSource: string): string {
    const enc = encodeName(`${dataSource}_`);
    return `${this.manifestsPrefix}${enc.includes('~') ? enc.slice(0, enc.indexOf('~')) : enc}`;
  }

  segmentPrefix(segmentId: string): string {
    return bucketKey(this.prefix, `${SEGMENTS_DIR}/${encodeName(segmentId)}/`, segmentId);
  }

  /** Where the files of a segment uploaded by `node` live. */
  dataPrefix(segmentId: string, node: string): string {
    return bucketKey(this.prefix, `${SEGMENTS_DIR}/${encodeName(segmentId)}/${encodeName(node)}/`, segmentId);
  }

  fileKey(segmentId: string, node: string, file: string): string {
    return bucketKey(this.prefix, `${SEGMENTS_DIR}/${encodeName(segmentId)}/${encodeName(node)}/${file}`, segmentId);
  }

  isManifestKey(key: string): boolean {
    return key.startsWith(this.manifestsPrefix) && key.endsWith(MANIFEST_SUFFIX) && !key.slice(this.manifestsPrefix.length).includes('/');
  }

  /** The segment id a manifest key spells, when it was not cut (for naming a segment whose manifest is unreadable). */
  idOfManifestKey(key: string): string | undefined {
    const enc = key.slice(this.manifestsPrefix.length, -MANIFEST_SUFFIX.length);
    if (enc.includes('~')) return undefined;
    try {
      return decodeURIComponent(enc);
    } catch {
      return undefined;
    }
  }
}

/**
 * The prefix of a bucket or container target URL (the path after the bucket, `/a/b/` or ``), checked as written:
 * segments of letters, digits, `.`, `_` and `-`, none empty, `.` or `..`, at most MAX_PREFIX long. Returns it as
 * keys use it (`a/b/`, or `` for none); `bad` throws with what is wrong.
 */
export function parsePrefix(path: string, bad: (msg: string) => never): string {
  const segments = path.split('/').slice(1);
  if (segments.length > 0 && segments[segments.length - 1] === '') segments.pop();
  for (const s of segments) {
    if (s === '') bad('the prefix has an empty segment ("//")');
    if (s === '.' || s === '..') bad(`the prefix must not have "${s}" segments`);
    if (!/^[A-Za-z0-9._-]+$/.test(s)) bad(`prefix segment "${s.slice(0, 60)}" may hold only letters, digits, ".", "_" and "-"`);
  }
  const prefix = segments.map((s) => `${s}/`).join('');
  if (prefix.length > MAX_PREFIX) bad(`the prefix is longer than ${MAX_PREFIX} characters`);
  return prefix;
}
