/**
 * The registry of target kinds: every kind the sidecar can back up to, each defined in its own folder
 * (store/<kind>/kind.ts, see kind.ts for what a kind says). The URL parser (targets/url.ts), the configuration
 * (config.ts: each kind's keys and settings), opening a target (open.ts) and the API (each target's `kind`) read
 * this list; nothing else names a kind.
 *
 * Adding a kind (docs/architecture.md, "How to add a target kind"): write store/<kind>/ with a `Target` and a
 * `kind.ts` exporting its `TargetKind`, then add it to KINDS below. Its schemes must not be another kind's.
 */
import { BackupError } from '../errors.js';
import { azureKind } from './azure/kind.js';
import { httpKind } from './http/kind.js';
import type { TargetKindInfo } from '../api.js';
import type { KeySpec } from '../config.js';
import type { TargetKind } from './kind.js';
import { localKind } from './local/kind.js';
import { s3Kind } from './s3/kind.js';

export const KINDS: readonly TargetKind[] = [httpKind, s3Kind, azureKind, localKind];

const BY_SCHEME = new Map<string, TargetKind>();
for (const k of KINDS)
  for (const s of k.schemes) {
    if (BY_SCHEME.has(s)) throw new BackupError('internal', `target kinds ${BY_SCHEME.get(s)!.name} and ${k.name} both claim ${s}://`);
    BY_SCHEME.set(s, k);
  }

/** The kind of a lower-case scheme, if any. */
export function kindOfScheme(scheme: string): TargetKind | undefined {
  return BY_SCHEME.get(scheme);
}

/**
 * The kind of a URL already parsed (targets/url.ts), by its scheme; a set's URL (several, comma-separated) is of the
 * kind of its first member.
 */
export function kindOf(url: string): TargetKind {
  const scheme = /^([a-z][a-z0-9+.-]*):/.exec(url)?.[1];
  const k = scheme ? BY_SCHEME.get(scheme) : undefined;
  if (!k) throw new BackupError('internal', `${url.slice(0, 200)} is of no known target kind`);
  return k;
}

/** Every kind's configuration keys, in registry order (config.ts lists them in BACKUP_KEYS). */
export function kindKeys(): KeySpec[] {
  return KINDS.flatMap((k) => k.keys ?? []);
}

/** Each kind's settings from the typed values of its keys, by kind name (SidecarConfig.kindSettings). */
export function kindSettings(value: (key: string) => unknown): Record<string, unknown> {
  return Object.fromEntries(KINDS.filter((k) => k.settings).map((k) => [k.name, k.settings!(value)]));
}

/** The schemes of the kinds a node answers for (`s3://, azure://`), for messages refusing any other. */
export function answeredByNodeSchemes(): string {
  return KINDS.filter((k) => k.answeredByNode)
    .flatMap((k) => k.schemes.map((s) => `${s}://`))
    .join(', ');
}

/** `a target sidecar (http://host:port), a bucket (s3://bucket/prefix) or ...`: the kinds a configured target may be of. */
export function servedKinds(): string {
  const all = KINDS.filter((k) => !k.cliOnly).map((k) => `${k.role} (${k.example})`);
  return all.length > 1 ? `${all.slice(0, -1).join(', ')} or ${all[all.length - 1]}` : all.join('');
}

/** What the API tells clients of a target's kind (they never parse the URL's scheme). */
export function kindInfo(url: string): TargetKindInfo {
  const k = kindOf(url);
  return { name: k.name, answeredByNode: k.answeredByNode };
}
