/**
 * The target of a backup or restore request: the `target` field as one URL (exactly as before: that target
 * alone), as a list (a set of those targets, checked whole before anything is sent), or left out (the targets
 * this sidecar is configured with: `druid.backup.targets`, else `druid.backup.target`).
 */
import type { Logger } from 'pino';
import type { SidecarConfig } from '../config.js';
import { BackupError } from '../errors.js';
import type { Target } from '../store/target.js';
import type { TargetPool } from './set.js';
import { TargetSet } from './set.js';
import { checkAllowed } from './allow.js';
import { cannotTakeBackups } from './faults.js';
import { checkCopies, parseTargetList, placesFor } from './spec.js';
import { parseTargetUrl } from './url.js';

export type TargetField = string | string[] | undefined;

/** What resolving a request's target needs of the node: its settings, its opened targets, its configured set and pool. */
export interface NodeTargets {
  readonly config: Pick<SidecarConfig, 'allowedTargets' | 'copies' | 'zone'>;
  readonly log: Logger;
  /** The node's target: always a set (druid.backup.targets, or a set of one for druid.backup.target), when configured. */
  readonly targets?: TargetSet;
  readonly targetPool?: TargetPool;
  openTarget(url: string): Target;
}

/** The Target a request names; `copies` applies to a list (default druid.backup.copies, at most the list's length). */
export function resolveTarget(ctx: NodeTargets, field: TargetField, copies?: number): Target {
  if (typeof field === 'string') return ctx.openTarget(field);
  if (field === undefined) {
    if (copies !== undefined && ctx.targets && copies !== ctx.targets.copies) {
      checkCopies(copies, ctx.targets.specs, 'copies');
      return new TargetSet(ctx.targets.pool, ctx.targets.specs, { ...ctx.targets.opts, copies });
    }
    if (ctx.targets) return ctx.targets;
    throw new BackupError('bad_request', 'no target given and none configured: name one in "target" or set druid.backup.target or druid.backup.targets');
  }
  const specs = parseTargetList(field, 'target');
  // Every target of the list is allowed, or none is opened: a set connects to its members as it is made.
  for (const [i, s] of specs.entries()) checkAllowed(ctx.config.allowedTargets, parseTargetUrl(s.url, `target[${i}]`));
  const want = copies ?? Math.min(ctx.config.copies, placesFor(specs));
  checkCopies(want, specs, 'copies');
  if (!ctx.targetPool) throw new BackupError('internal', 'this sidecar keeps no target pool');
  return new TargetSet(ctx.targetPool, specs, { copies: want, localZone: ctx.config.zone, log: ctx.log.child({ component: 'targets' }) });
}

/**
 * Before a backup job: the target must answer (a set named in the request: every one of its targets; the
 * configured set: at least one), so a wrong URL is refused with a clear error and nothing is sent anywhere.
 */
export async function checkTarget(target: Target, named: boolean, timeoutMs: number): Promise<void> {
  const signal = AbortSignal.timeout(timeoutMs);
  if (target.check) return target.check(named, { signal });
  try {
    await target.stats({ signal });
  } catch (e) {
    throw cannotTakeBackups(target.url, e);
  }
}
