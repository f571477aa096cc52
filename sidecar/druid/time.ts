/**
 * ISO-8601 instants, periods and intervals as Druid writes and reads them.
 *
 * Druid formats instants with Joda's `DateTime.toString()`, e.g. `2015-09-12T00:00:00.000Z`, and accepts
 * the wider ISO grammar on input (`2015-09-12`, `2015-09-12T01`, offsets). Years may be signed and longer
 * than four digits: `Intervals.ETERNITY` is `-146136543-09-08T08:23:32.096Z/146140482-04-24T15:36:27.903Z`.
 */
import { BackupError } from '../errors.js';

const INSTANT = /^([+-]?\d{4,9})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?)?)?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/;

/** The pattern Druid uses to spot an instant written by `DateTime.toString()` inside a segment id. */
export const COMMON_DATE_TIME = /[0-9]{4}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9]\.[0-9]{3}(Z|[+-][0-9]{2}(:[0-9]{2}))/g;

function daysFromCivil(y: number, m: number, d: number): number {
  // Howard Hinnant's algorithm: works for any proleptic Gregorian year, unlike Date.UTC's range.
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function daysInMonth(y: number, m: number): number {
  if (m === 2) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(m) ? 30 : 31;
}

/**
 * Milliseconds since the epoch of an ISO instant, or undefined when the text is not one.
 * Values beyond ±2^53 ms (only Druid's eternity bounds) are approximate, which is fine for ordering.
 */
export function parseInstant(text: string): number | undefined {
  if (text.length > RECENT_INSTANT_CHARS) return parseInstantText(text);
  const known = recentInstants.get(text);
  if (known !== undefined || recentInstants.has(text)) return known;
  const ms = parseInstantText(text);
  if (recentInstants.size >= RECENT_INSTANTS) recentInstants.clear();
  recentInstants.set(text, ms);
  return ms;
}

/**
 * The instants parsed lately, by text: a segment id is parsed several times on its way (the batch header, the
 * declaration, the descriptor, the store's path), and its instants repeat across segments (an hour's segments share
 * their interval), so a target receiving 10,000 small segments ran the pattern for 0.27 s, mostly on texts it had
 * just parsed. Bounded in entries and in the length of a text kept (an instant is at most 41 characters); cleared
 * when full.
 */
const recentInstants = new Map<string, number | undefined>();
const RECENT_INSTANTS = 4096;
const RECENT_INSTANT_CHARS = 48;

function parseInstantText(text: string): number | undefined {
  const m = INSTANT.exec(text);
  if (!m) return undefined;
  const year = Number(m[1]);
  const month = m[2] ? Number(m[2]) : 1;
  const day = m[3] ? Number(m[3]) : 1;
  const hour = m[4] ? Number(m[4]) : 0;
  const minute = m[5] ? Number(m[5]) : 0;
  const second = m[6] ? Number(m[6]) : 0;
  const millis = m[7] ? Math.floor(Number(`0.${m[7]}`) * 1000 + 1e-6) : 0;
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 24 || minute > 59 || second > 59 || (hour === 24 && (minute || second || millis))) return undefined;
  let offsetMinutes = 0;
  const zone = m[8];
  if (zone && zone !== 'Z') {
    const sign = zone[0] === '-' ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    const oh = Number(digits.slice(0, 2));
    const om = digits.length > 2 ? Number(digits.slice(2, 4)) : 0;
    if (oh > 23 || om > 59) return undefined;
    offsetMinutes = sign * (oh * 60 + om);
  }
  const days = daysFromCivil(year, month, day);
  return ((days * 24 + hour) * 60 + minute - offsetMinutes) * 60_000 + second * 1000 + millis;
}

/** Formats epoch millis the way Druid's `DateTime.toString()` does in UTC. */
export function formatInstant(ms: number): string {
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) throw new RangeError(`instant out of range: ${ms}`);
  const y = d.getUTCFullYear();
  const year = y >= 0 && y <= 9999 ? String(y).padStart(4, '0') : (y < 0 ? '-' : '') + String(Math.abs(y)).padStart(4, '0');
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${year}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())}T${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}.${p(d.getUTCMilliseconds(), 3)}Z`;
}

const PERIOD = /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d{1,3})?)S)?)?$/;

export interface Period {
  years: number;
  months: number;
  millis: number;
}

/** Parses an ISO-8601 period such as `PT30S`, `P1D`, `P1M`; undefined when it is not one. */
export function parsePeriod(text: string): Period | undefined {
  const m = PERIOD.exec(text);
  if (!m || text === 'P' || text.endsWith('T')) return undefined;
  const n = (i: number) => (m[i] ? Number(m[i]) : 0);
  return {
    years: n(1),
    months: n(2),
    millis: ((n(3) * 7 + n(4)) * 24 * 3600 + n(5) * 3600 + n(6) * 60) * 1000 + Math.round(n(7) * 1000),
  };
}

/** A period without years or months as milliseconds (for durations such as `PT5M`). */
export function periodToMillis(text: string): number | undefined {
  const p = parsePeriod(text);
  if (!p || p.years || p.months) return undefined;
  return p.millis;
}

function addPeriod(ms: number, p: Period, sign: 1 | -1): number {
  let t = ms;
  if (p.years || p.months) {
    const d = new Date(ms);
    d.setUTCMonth(d.getUTCMonth() + sign * (p.years * 12 + p.months));
    t = d.getTime();
  }
  return t + sign * p.millis;
}

export interface Interval {
  start: string;
  end: string;
  startMs: number;
  endMs: number;
}

/**
 * Parses `start/end`, `start/period` or `period/end`, as Druid's interval JSON allows.
 * Throws a `bad_interval` error that says what is wrong.
 */
export function parseInterval(text: string): Interval {
  if (typeof text !== 'string' || text.length > 200) throw new BackupError('bad_interval', 'interval must be a string like 2015-09-12/2015-09-13');
  const parts = text.split('/');
  if (parts.length !== 2)
    throw new BackupError('bad_interval', `interval "${text}" must be two ISO-8601 instants (or an instant and a period) separated by "/"`);
  const [a, b] = parts as [string, string];
  let startMs = parseInstant(a);
  let endMs = parseInstant(b);
  if (startMs === undefined && endMs !== undefined) {
    const p = parsePeriod(a);
    if (p) startMs = addPeriod(endMs, p, -1);
  } else if (startMs !== undefined && endMs === undefined) {
    const p = parsePeriod(b);
    if (p) endMs = addPeriod(startMs, p, 1);
  }
  if (startMs === undefined) throw new BackupError('bad_interval', `interval "${text}": "${a}" is not an ISO-8601 instant`);
  if (endMs === undefined) throw new BackupError('bad_interval', `interval "${text}": "${b}" is not an ISO-8601 instant or period`);
  if (endMs < startMs) throw new BackupError('bad_interval', `interval "${text}": the end is before the start`);
  return { start: a, end: b, startMs, endMs };
}

/** True when two half-open intervals [start, end) overlap, as Druid's `Interval.overlaps`. */
export function overlaps(a: { startMs: number; endMs: number }, b: { startMs: number; endMs: number }): boolean {
  if (a.startMs === a.endMs) return b.startMs <= a.startMs && a.startMs < b.endMs;
  if (b.startMs === b.endMs) return a.startMs <= b.startMs && b.startMs < a.endMs;
  return a.startMs < b.endMs && b.startMs < a.endMs;
}
