/**
 * Paging of list endpoints: items sorted by a unique key; the cursor is the last key of the page, opaque to
 * clients (base64url), so a page boundary stays right while items are added or removed.
 */
import { BackupError } from '../errors.js';
import type { Page } from '../api.js';

export const DEFAULT_LIMIT = 100;

export function encodeCursor(key: string): string {
  return Buffer.from(JSON.stringify({ after: key })).toString('base64url');
}

export function decodeCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  try {
    const o = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { after?: unknown };
    if (typeof o.after === 'string') return o.after;
  } catch {
    // fall through to the error
  }
  throw new BackupError('bad_request', 'cursor is not one this API gave out; pass nextCursor of the previous page unchanged');
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * One page of `sorted` (already in `key` order), after the cursor's key; only the page's items are built. Paging
 * through 100,000 segments then costs a binary search and one page per call, not a copy and a sort of everything.
 */
export function pageSorted<E, T>(sorted: readonly E[], key: (e: E) => string, build: (e: E) => T, limit = DEFAULT_LIMIT, cursor?: string): Page<T> {
  const after = decodeCursor(cursor);
  let start = 0;
  if (after !== undefined) {
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compare(key(sorted[mid]!), after) <= 0) lo = mid + 1;
      else hi = mid;
    }
    start = lo;
  }
  const page = sorted.slice(start, start + limit);
  const more = start + limit < sorted.length;
  return { items: page.map(build), total: sorted.length, ...(more && page.length ? { nextCursor: encodeCursor(key(page[page.length - 1]!)) } : {}) };
}

/** One page of `items` (any order), sorted by `key`, after the cursor's key. */
export function paginate<T>(items: readonly T[], key: (t: T) => string, limit = DEFAULT_LIMIT, cursor?: string): Page<T> {
  return pageSorted(
    [...items].sort((a, b) => compare(key(a), key(b))),
    key,
    (t) => t,
    limit,
    cursor,
  );
}
