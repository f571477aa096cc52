/** What the timeline page may send to the extension, checked where it enters: the page is a web page. Pure. */

export type FromPage = { type: 'ready' } | { type: 'select'; key: string } | { type: 'details'; key: string } | { type: 'restore' | 'backup'; keys: string[] };

/** A page message, checked: anything else is dropped. */
export function parseMessage(m: unknown): FromPage | undefined {
  if (!m || typeof m !== 'object') return undefined;
  const o = m as { type?: unknown; key?: unknown; keys?: unknown };
  if (o.type === 'ready') return { type: 'ready' };
  if ((o.type === 'select' || o.type === 'details') && typeof o.key === 'string') return { type: o.type, key: o.key };
  if ((o.type === 'restore' || o.type === 'backup') && Array.isArray(o.keys) && o.keys.length <= 100_000 && o.keys.every((k) => typeof k === 'string'))
    return { type: o.type, keys: o.keys as string[] };
  return undefined;
}
