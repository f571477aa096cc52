/**
 * A reader for Java `.properties` files with the exact rules of `java.util.Properties.load`: `=`, `:` or
 * whitespace between key and value, `#` and `!` comment lines, a trailing odd `\` continues the line (the next
 * line's leading whitespace is dropped), `\t \n \r \f \uXXXX` escapes, any other escaped character stands for
 * itself. Later keys override earlier ones. The line of each key is kept so errors can name it.
 */
import { readFileSync } from 'node:fs';
import { BackupError } from '../errors.js';

export interface PropertyEntry {
  value: string;
  line: number;
  file: string;
}

export type Properties = Map<string, PropertyEntry>;

const WS = new Set([' ', '\t', '\f']);

function unescape(raw: string, file: string, line: number): string {
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const n = raw[++i];
    if (n === undefined) break;
    if (n === 'u') {
      const hex = raw.slice(i + 1, i + 5);
      if (!/^[0-9a-fA-F]{4}$/.test(hex)) throw new BackupError('bad_config', `${file}:${line}: malformed \\uxxxx escape "\\u${hex}"`);
      out += String.fromCharCode(parseInt(hex, 16));
      i += 4;
    } else out += n === 't' ? '\t' : n === 'n' ? '\n' : n === 'r' ? '\r' : n === 'f' ? '\f' : n;
  }
  return out;
}

/** Splits text into logical lines (continuations joined), each with the number of its first natural line. */
function logicalLines(text: string): Array<{ text: string; line: number }> {
  const natural = text.split(/\r\n|\r|\n/);
  const out: Array<{ text: string; line: number }> = [];
  let current: { text: string; line: number } | undefined;
  for (let i = 0; i < natural.length; i++) {
    let s = natural[i]!;
    // Leading whitespace is skipped on every natural line, continuation or not.
    let k = 0;
    while (k < s.length && WS.has(s[k]!)) k++;
    s = s.slice(k);
    if (!current) {
      if (s === '' || s[0] === '#' || s[0] === '!') continue;
      current = { text: '', line: i + 1 };
    }
    let backslashes = 0;
    for (let j = s.length - 1; j >= 0 && s[j] === '\\'; j--) backslashes++;
    if (backslashes % 2 === 1) {
      current.text += s.slice(0, -1);
      continue;
    }
    current.text += s;
    out.push(current);
    current = undefined;
  }
  if (current) out.push(current);
  return out;
}

export function parseProperties(text: string, file = '<properties>'): Properties {
  if (text.includes('\u0000')) throw new BackupError('bad_config', `${file}: not a text properties file (it contains NUL bytes)`);
  const props: Properties = new Map();
  for (const { text: l, line } of logicalLines(text)) {
    let i = 0;
    let escaped = false;
    for (; i < l.length; i++) {
      const c = l[i]!;
      if (escaped) {
        escaped = false;
        continue;
      }
      if (c === '\\') escaped = true;
      else if (c === '=' || c === ':' || WS.has(c)) break;
    }
    const rawKey = l.slice(0, i);
    while (i < l.length && WS.has(l[i]!)) i++;
    if (l[i] === '=' || l[i] === ':') i++;
    while (i < l.length && WS.has(l[i]!)) i++;
    props.set(unescape(rawKey, file, line), { value: unescape(l.slice(i), file, line), line, file });
  }
  return props;
}

export function readPropertiesFile(file: string): Properties {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new BackupError(
      'bad_config',
      code === 'ENOENT'
        ? `${file}: no such file`
        : code === 'EISDIR'
          ? `${file}: is a directory, not a properties file`
          : `${file}: cannot read (${code ?? e})`,
    );
  }
  // Druid reads properties as UTF-8; a file that is not valid UTF-8 is read as Latin-1, as Properties.load(InputStream) does.
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch {
    text = buf.toString('latin1');
  }
  return parseProperties(text, file);
}

/** Merges property sets, later ones winning, as Druid layers common and service properties. */
export function mergeProperties(...sets: Properties[]): Properties {
  const out: Properties = new Map();
  for (const s of sets) for (const [k, v] of s) out.set(k, v);
  return out;
}
