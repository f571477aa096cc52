/** Parsers for command-line values: each rejects garbage with one clear line. */
import { InvalidArgumentError } from 'commander';
import { parseHumanBytes } from '../druid/bytes.js';
import { BackupError } from '../errors.js';
import { parseTargetUrl } from '../targets/url.js';

export function intOption(min: number, max: number) {
  return (v: string): number => {
    if (!/^\d+$/.test(v)) throw new InvalidArgumentError(`"${v}" is not a whole number`);
    const n = Number(v);
    if (n < min || n > max) throw new InvalidArgumentError(`${n} is outside ${min}..${max}`);
    return n;
  };
}

export function bytesOption(v: string): number {
  try {
    return parseHumanBytes(v, 'size');
  } catch (e) {
    throw new InvalidArgumentError((e as BackupError).message);
  }
}

export function choiceOption<T extends string>(choices: readonly T[]) {
  return (v: string): T => {
    if (!(choices as readonly string[]).includes(v)) throw new InvalidArgumentError(`"${v}" is not one of ${choices.join(', ')}`);
    return v as T;
  };
}

export function listOption(v: string): string[] {
  const items = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0) throw new InvalidArgumentError('expected a comma-separated list');
  return items;
}

/** A repeatable --target: each URL checked by the one target parser (targets/url.ts) before anything is sent. */
export function collectTargets(v: string, prev: string[]): string[] {
  try {
    return [...prev, parseTargetUrl(v, '--target').url];
  } catch (e) {
    throw new InvalidArgumentError((e as BackupError).message);
  }
}
