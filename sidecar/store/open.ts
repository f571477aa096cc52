/**
 * `openTarget(url)`: the Target behind a parsed target URL (targets/url.ts), opened by its kind (kinds.ts).
 */
import type { TargetUrl } from './kind.js';
import type { KindOpenOptions } from './kind.js';
import { kindOfScheme } from './kinds.js';
import type { Target } from './target.js';
import { BackupError } from '../errors.js';

export type OpenTargetOptions = KindOpenOptions;

export function openTarget(t: TargetUrl, opts: OpenTargetOptions): Target {
  const kind = kindOfScheme(t.scheme);
  if (!kind) throw new BackupError('internal', `${t.url} is of no known target kind`);
  return kind.open(t, opts);
}
