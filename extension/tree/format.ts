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

export function plural(n: number, word: string): string {
  return `${n.toLocaleString('en-US')} ${word}${n === 1 ? '' : 's'}`;
}

/** Escapes text for a MarkdownString tooltip. */
export function md(text: string): string {
  return text.replace(/[\\`*_{}[\]()#+\-.!|<>]/g, '\\$&');
}
