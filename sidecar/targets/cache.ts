/**
 * The targets this sidecar has opened, by URL: every URL is parsed (targets/url.ts) and checked against the allow
 * list (targets/allow.ts) before anything is opened, so nothing a caller names is connected to unless allowed.
 * The configured targets stay open for good; the others (named in requests) live in a small LRU, so that naming
 * thousands of distinct targets cannot grow the sidecar's memory: an evicted one is closed (its idle connections
 * now, its busy ones when their call ends), and a job that still holds it goes on undisturbed.
 */
import type { Target } from '../store/target.js';
import type { AllowList } from './allow.js';
import { checkAllowed } from './allow.js';
import type { TargetUrl } from './url.js';
import { parseTargetUrl } from './url.js';

/** Targets named in requests kept open at once (a request's list has at most 32). */
export const OPEN_TARGETS = 64;

export interface TargetCacheOptions {
  allowed: AllowList;
  /** URLs of the configured targets, never evicted. */
  pinned: Iterable<string>;
  open(t: TargetUrl): Target;
  max?: number;
}

export class TargetCache {
  private readonly pinnedUrls: Set<string>;
  private readonly pinned = new Map<string, Target>();
  /** In order of use, least recent first. */
  private readonly recent = new Map<string, Target>();
  private readonly max: number;

  constructor(private readonly opts: TargetCacheOptions) {
    this.pinnedUrls = new Set([...opts.pinned].map((u) => parseTargetUrl(u, 'configured target').url));
    this.max = opts.max ?? OPEN_TARGETS;
  }

  /** The Target behind a URL: refused (400 or 403 target_not_allowed) before anything is opened. */
  get(raw: string, where = 'target'): Target {
    const t = parseTargetUrl(raw, where);
    checkAllowed(this.opts.allowed, t);
    if (this.pinnedUrls.has(t.url)) {
      let p = this.pinned.get(t.url);
      if (!p) this.pinned.set(t.url, (p = this.opts.open(t)));
      return p;
    }
    let target = this.recent.get(t.url);
    if (target) this.recent.delete(t.url);
    else target = this.opts.open(t);
    this.recent.set(t.url, target);
    while (this.recent.size > this.max) {
      const [url, old] = this.recent.entries().next().value as [string, Target];
      this.recent.delete(url);
      old.close?.();
    }
    return target;
  }

  /** Targets open now (the configured ones and those kept from requests). */
  get size(): number {
    return this.pinned.size + this.recent.size;
  }

  close(): void {
    for (const t of [...this.pinned.values(), ...this.recent.values()]) t.close?.();
    this.pinned.clear();
    this.recent.clear();
  }
}
