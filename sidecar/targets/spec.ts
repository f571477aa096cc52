/**
 * The target list (`druid.backup.targets`, or the `target` field of a backup or restore request given as a list):
 * a JSON list, as Druid's own list settings are, of URLs or `{"url", "zone"?, "weight"?}` objects. Pure: checked
 * here once, so nothing downstream meets a duplicate, a URL it cannot use, or more copies than places for them.
 */
import { BackupError, messageOf } from '../errors.js';
import { parseTargetUrl } from './url.js';

export interface TargetSpec {
  url: string;
  zone?: string;
  /** Share of new segments among otherwise equal targets (default 1). */
  weight: number;
}

export const MAX_TARGETS = 32;
export const MAX_WEIGHT = 1000;
export const MAX_COPIES = 16;

function bad(where: string, msg: string): never {
  throw new BackupError('bad_request', `${where}: ${msg}`);
}

/** A target URL in the one spelling used everywhere (no trailing slash), or a clear error (targets/url.ts). */
export function normalizeTargetUrl(raw: unknown, where: string): string {
  return parseTargetUrl(raw, where).url;
}

/** One entry of the list: a URL string or `{url, zone?, weight?}`. */
function entry(raw: unknown, where: string): TargetSpec {
  if (typeof raw === 'string') return { url: normalizeTargetUrl(raw, where), weight: 1 };
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) bad(where, 'each target is a URL or an object {"url", "zone"?, "weight"?}');
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o))
    if (!['url', 'zone', 'weight'].includes(k)) bad(where, `unknown field "${k.slice(0, 50)}" (a target has url, zone and weight)`);
  const spec: TargetSpec = { url: normalizeTargetUrl(o.url, `${where}.url`), weight: 1 };
  if (o.zone !== undefined) {
    if (typeof o.zone !== 'string' || !/^[\w.:-]{1,64}$/.test(o.zone))
      bad(`${where}.zone`, 'a zone is a name of 1 to 64 letters, digits, ".", ":", "_" or "-"');
    spec.zone = o.zone;
  }
  if (o.weight !== undefined) {
    if (typeof o.weight !== 'number' || !Number.isFinite(o.weight) || o.weight <= 0 || o.weight > MAX_WEIGHT)
      bad(`${where}.weight`, `a weight is a number above 0 and at most ${MAX_WEIGHT}`);
    spec.weight = o.weight;
  }
  return spec;
}

/** Checks a list of targets (already parsed from JSON): non-empty, every entry usable, no target twice. */
export function parseTargetList(raw: unknown, where: string): TargetSpec[] {
  if (!Array.isArray(raw)) bad(where, 'expected a JSON list of target URLs or {"url","zone","weight"} objects');
  if (raw.length === 0) bad(where, 'the list of targets is empty');
  if (raw.length > MAX_TARGETS) bad(where, `${raw.length} targets; at most ${MAX_TARGETS}`);
  const out = raw.map((r, i) => entry(r, `${where}[${i}]`));
  const seen = new Set<string>();
  for (const t of out) {
    if (seen.has(t.url)) bad(where, `${t.url} is listed twice; each target once`);
    seen.add(t.url);
  }
  return out;
}

/** `druid.backup.targets` as written in runtime.properties, a flag or the environment: JSON text. */
export function parseTargetsSetting(text: string, where: string): TargetSpec[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    bad(where, `not valid JSON (${messageOf(e)}); write a list such as ["http://a:8484", {"url": "http://b:8484", "zone": "z2"}]`);
  }
  return parseTargetList(raw, where);
}

/**
 * The places a segment's copies can go: distinct zones when zones are given (a target without a zone is a place of
 * its own), so `copies` larger than that can never be met and is refused up front.
 */
export function placesFor(specs: TargetSpec[]): number {
  return new Set(specs.map((s) => s.zone ?? `url:${s.url}`)).size;
}

export function checkCopies(copies: number, specs: TargetSpec[], where: string): void {
  if (!Number.isInteger(copies) || copies < 1 || copies > MAX_COPIES) bad(where, `copies must be a whole number from 1 to ${MAX_COPIES}`);
  if (copies > specs.length) bad(where, `copies is ${copies} but only ${specs.length} target${specs.length === 1 ? '' : 's'} are given`);
  const places = placesFor(specs);
  if (copies > places) bad(where, `copies is ${copies} but the targets are in only ${places} distinct zones (each copy goes to another zone)`);
}
