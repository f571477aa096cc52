/**
 * Where a lost segment can come back from, and what to do when it cannot yet. A restore that fails, or that the
 * automatic restore is about to start, looks at the copies (the node's copy records and a have-it check of every
 * target, targets/set.ts) and tells four cases apart:
 *
 * - `restorable`: a target answers with a copy not known damaged;
 * - `holders_unreachable`: no good copy answers, but a target that holds (or may hold) one does not answer: the
 *   segment waits for it (`HolderWaits`), never given up as "no backup";
 * - `copies_damaged`: every copy that answers failed its digests (named with their targets and files);
 * - `no_backup`: every target answered, and none holds it.
 */
import type { Logger } from 'pino';
import type { LossCase, LossVerdict } from '../api.js';
import { isBackupError, messageOf } from '../errors.js';
import type { CopySurvey, Target, TransferOptions } from '../store/target.js';

/** How often a target a lost segment waits on is asked whether it answers again: not the general back-off. */
export const HOLDER_PROBE_MS = 2000;

/** The copies of a segment: a set says itself; one target is asked with a have-it check. */
export async function surveyCopies(target: Target, segmentId: string, opts: TransferOptions = {}): Promise<CopySurvey> {
  if (target.survey) return target.survey(segmentId, opts);
  const out: CopySurvey = { good: [], damaged: [], unreachable: [], absent: [] };
  try {
    const s = await target.head(segmentId, opts);
    if (!s) out.absent.push(target.url);
    else if (s.damaged) out.damaged.push({ target: target.url, problem: s.damaged });
    else out.good.push(target.url);
  } catch (e) {
    if (opts.signal?.aborted) throw e;
    // Our own request refused is no outage; anything else (refused connection, 5xx, timeout) is the target down.
    if (isBackupError(e) && e.status < 500 && e.code !== 'target_unreachable') throw e;
    out.unreachable.push({ target: target.url, why: messageOf(e), holder: true });
  }
  return out;
}

/** The case a survey shows, with the targets a waiting segment waits on (known holders first, else every one down). */
export function decide(segmentId: string, s: CopySurvey): LossVerdict {
  const base = {
    segmentId,
    ...(s.damaged.length ? { damaged: s.damaged } : {}),
    ...(s.unreachable.length ? { unreachable: s.unreachable.map((u) => ({ target: u.target, why: u.why })) } : {}),
  };
  if (s.good.length) return { ...base, case: 'restorable', good: s.good };
  if (s.unreachable.length) {
    const holders = s.unreachable.filter((u) => u.holder).map((u) => u.target);
    return { ...base, case: 'holders_unreachable', waitOn: holders.length ? holders : s.unreachable.map((u) => u.target) };
  }
  if (s.damaged.length) return { ...base, case: 'copies_damaged' };
  return { ...base, case: 'no_backup' };
}

/** One line a person can act on, per case. */
export function explainVerdict(v: LossVerdict): string {
  const damaged = v.damaged?.length ? `; damaged: ${v.damaged.map((d) => `${d.target} (${d.problem})`).join('; ')}` : '';
  const cases: Record<LossCase, string> = {
    restorable: `restorable from ${v.good?.join(', ')}`,
    restored: `restored${v.from ? ` from ${v.from}` : ''}`,
    holders_unreachable: `every target that may hold a good copy is unreachable (${v.unreachable?.map((u) => `${u.target}: ${u.why}`).join('; ')}); waiting for one of ${v.waitOn?.join(', ')} to answer${damaged}`,
    copies_damaged: `every reachable copy is damaged${damaged}; unrecoverable from backups until a good copy appears`,
    no_backup: 'no target holds a backup of it',
  };
  return cases[v.case];
}

/** Asks one target whether it answers now. */
export async function probeTarget(target: Target, url: string, signal?: AbortSignal): Promise<boolean> {
  if (target.probe) return target.probe(url, { signal });
  try {
    await target.stats({ signal: signal ?? AbortSignal.timeout(5000) });
    return true;
  } catch {
    return false;
  }
}

/**
 * Segments waiting for a target that holds them to answer: each such target is probed every `HOLDER_PROBE_MS`
 * (once for every segment waiting on it), and the segments go to `onAnswer` as soon as one of theirs does.
 */
export class HolderWaits {
  private readonly waits = new Map<string, { waitOn: string[]; since: number }>();
  private timer?: NodeJS.Timeout;
  private probing = false;

  constructor(
    private readonly o: {
      target: Target;
      log: Logger;
      onAnswer(segmentIds: string[], url: string): void;
      periodMs?: number;
    },
  ) {}

  has(id: string): boolean {
    return this.waits.has(id);
  }

  get size(): number {
    return this.waits.size;
  }

  /** Starts (or updates) a segment's wait; true when it was not waiting yet. */
  wait(id: string, waitOn: string[]): boolean {
    const fresh = !this.waits.has(id);
    this.waits.set(id, { waitOn, since: this.waits.get(id)?.since ?? Date.now() });
    this.timer ??= setInterval(() => void this.tick(), this.o.periodMs ?? HOLDER_PROBE_MS);
    this.timer.unref();
    return fresh;
  }

  /** Ends a wait (restored, or Druid took over); true when it was waiting. */
  end(id: string): boolean {
    const had = this.waits.delete(id);
    if (this.waits.size === 0) this.stop();
    return had;
  }

  ids(): string[] {
    return [...this.waits.keys()];
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async tick(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    try {
      const urls = new Set([...this.waits.values()].flatMap((w) => w.waitOn));
      for (const url of urls) {
        if (!(await probeTarget(this.o.target, url))) continue;
        const ids = [...this.waits].filter(([, w]) => w.waitOn.includes(url)).map(([id]) => id);
        for (const id of ids) this.waits.delete(id);
        this.o.log.info({ target: url, segmentIds: ids }, 'a target that lost segments wait on answers again; restoring them now');
        if (ids.length) this.o.onAnswer(ids, url);
      }
      if (this.waits.size === 0) this.stop();
    } catch (e) {
      this.o.log.warn({ err: messageOf(e) }, 'probing the targets lost segments wait on failed');
    } finally {
      this.probing = false;
    }
  }
}
