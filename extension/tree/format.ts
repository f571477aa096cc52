/**
 * How sizes, times and intervals read in the views. Pure: the unit tests load it without VS Code.
 */
import { formatBytes } from '../../sidecar/druid/bytes.js';

export { formatBytes };

/** `2024-01-01T00:00:00.000Z/2024-01-02T00:00:00.000Z` → `2024-01-01/2024-01-02`; times other than midnight stay. */
export function intervalLabel(interval: string): string {
  return interval
    .split('/')
    .map((t) => t.replace(/T00:00:00(\.000)?(Z|\+00:00)$/, '').replace(/:00\.000(Z|\+00:00)$/, 'Z'))
    .join('/');
}

/** "just now", "5 min ago", "3 h ago", "2 days ago", or the date beyond a month. */
export function timeAgo(iso: string | undefined, now: number): string {
  if (!iso) return '';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const s = Math.round((now - t) / 1000);
  if (s < 45) return 'just now';
  if (s < 3600) return `${Math.max(1, Math.round(s / 60))} min ago`;
  if (s < 86_400) return `${Math.round(s / 3600)} h ago`;
  if (s < 30 * 86_400) {
    const d = Math.round(s / 86_400);
    return `${d} day${d === 1 ? '' : 's'} ago`;
  }
  return iso.slice(0, 10);
}

/** A duration in a short word: "40 s", "5 min", "3 h", "2 days". */
export function formatDuration(ms: number): string {
  const s = Math.round(Math.max(0, ms) / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 86_400) return `${Math.round(s / 3600)} h`;
  const d = Math.round(s / 86_400);
  return `${d} day${d === 1 ? '' : 's'}`;
}

/** The count as a number whatever a server sent (a string would go into a tooltip as it is). */
export function plural(n: number, word: string, words = `${word}s`): string {
  const v = Number(n);
  return `${v.toLocaleString('en-US')} ${v === 1 ? word : words}`;
}

/**
 * Text from a server (names, ids, paths, messages) made literal for a MarkdownString tooltip: every ASCII punctuation
 * character backslash-escaped, as CommonMark allows, so no link, image, HTML, entity, code span or emphasis can
 * come out of it; line breaks and other control characters become spaces, so it cannot start a block either.
 */
export function md(text: unknown): string {
  return String(text)
    .replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ')
    .replace(/[\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e]/g, '\\$&');
}
