/**
 * Druid's human-readable byte sizes (`HumanReadableBytes`): a plain number, or a number with a
 * case-insensitive unit: k, m, g, t, p (powers of 1000) or KiB, MiB, GiB, TiB, PiB (powers of 1024).
 */
import { BackupError } from '../errors.js';

const UNITS: Record<string, [number, number]> = { k: [1e3, 1024], m: [1e6, 1024 ** 2], g: [1e9, 1024 ** 3], t: [1e12, 1024 ** 4], p: [1e15, 1024 ** 5] };

export function parseHumanBytes(input: string | number, what = 'size'): number {
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input) || input < 0) throw new BackupError('bad_config', `${what}: ${input} is not a non-negative whole number of bytes`);
    return input;
  }
  const raw = String(input).trim();
  const s = raw.toLowerCase();
  const m = /^(\d+)(?:([kmgtp])(ib)?)?$/.exec(s);
  if (!m) throw new BackupError('bad_config', `${what}: "${raw}" is not a size (use bytes or a unit: 500m, 10g, 300GiB)`);
  const n = Number(m[1]);
  const unit = m[2] ? UNITS[m[2]]![m[3] ? 1 : 0] : 1;
  const v = n * unit;
  if (!Number.isSafeInteger(v)) throw new BackupError('bad_config', `${what}: "${raw}" is too large`);
  return v;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${units[i]}`;
}
