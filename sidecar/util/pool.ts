/** Runs `fn` over `items` with at most `limit` calls in flight, keeping the input order in the result. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/**
 * Runs `fn` over `items` as they are read, started in their order, while the weights of the calls in flight add up
 * to at most `capacity` (an item heavier than that runs alone), so no more items are held than the calls in flight and
 * the one waiting for room. The first failure (of a call, or of reading the items) starts no new call; it is thrown
 * once the calls under way end, so none runs after the caller has moved on (released a lease, removed a file).
 */
export async function eachWeighted<T>(
  items: Iterable<T> | AsyncIterable<T>,
  capacity: number,
  weight: (item: T) => number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  const running = new Set<Promise<void>>();
  let inUse = 0;
  let failed: { e: unknown } | undefined;
  const roomFor = async (w: number) => {
    while (running.size > 0 && inUse + w > capacity && !failed) await Promise.race(running);
  };
  try {
    for await (const item of items) {
      if (failed) break;
      const w = weight(item);
      await roomFor(w);
      if (failed) break;
      inUse += w;
      const p: Promise<void> = fn(item)
        .catch((e: unknown) => {
          failed ??= { e };
        })
        .finally(() => {
          inUse -= w;
          running.delete(p);
        });
      running.add(p);
      // Full: the next item is not read until a call ends (none weighs less than 1).
      await roomFor(1);
    }
  } catch (e) {
    failed ??= { e };
  }
  await Promise.all(running);
  if (failed) throw failed.e;
}

/** `eachWeighted` with every item weighing 1: at most `limit` calls in flight, and no item read ahead of them. */
export function eachLimit<T>(items: AsyncIterable<T>, limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  return eachWeighted(items, limit, () => 1, fn);
}
