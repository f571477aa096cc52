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
 * Runs `fn` over `items`, started in their order, while the weights of the calls in flight add up to at most
 * `capacity`; an item heavier than that runs alone. Resolves once every call has ended; the first failure starts no
 * new call and is thrown once those under way end.
 */
export async function mapWeighted<T>(items: readonly T[], capacity: number, weight: (item: T) => number, fn: (item: T) => Promise<void>): Promise<void> {
  const running = new Set<Promise<void>>();
  let inUse = 0;
  let failed: { e: unknown } | undefined;
  for (const item of items) {
    const w = weight(item);
    while (running.size > 0 && inUse + w > capacity && !failed) await Promise.race(running);
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
  }
  await Promise.all(running);
  if (failed) throw failed.e;
}

/**
 * Runs `fn` over `items` as they are read, with at most `limit` calls in flight, so no more than `limit` items are
 * held however long the input. The first failure starts no new call; it is thrown once those under way end, so
 * none runs after the caller has moved on (released a lease, removed a file).
 */
export async function eachLimit<T>(items: AsyncIterable<T>, limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const running = new Set<Promise<void>>();
  let failed: { e: unknown } | undefined;
  try {
    for await (const item of items) {
      if (failed) break;
      const p: Promise<void> = fn(item)
        .catch((e: unknown) => {
          failed ??= { e };
        })
        .finally(() => running.delete(p));
      running.add(p);
      if (running.size >= limit) await Promise.race(running);
    }
  } catch (e) {
    failed ??= { e };
  }
  await Promise.all(running);
  if (failed) throw failed.e;
}
