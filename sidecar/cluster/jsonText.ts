/**
 * JSON text read with the position of every value, so that an answer from Druid can be narrowed and redacted while
 * everything else stays byte for byte as Druid wrote it: re-serialising would reorder nothing but would change
 * numbers (Jackson writes `9223372036854775807`, which a JavaScript number cannot hold) and spacing. Strict RFC 8259;
 * nesting is bounded so that hostile text cannot exhaust the stack.
 */
export type JsonNode =
  | { kind: 'object'; start: number; end: number; members: Array<{ key: string; value: JsonNode }> }
  | { kind: 'array'; start: number; end: number; items: JsonNode[] }
  | { kind: 'string'; start: number; end: number; value: string }
  | { kind: 'number' | 'true' | 'false' | 'null'; start: number; end: number };

/** Deeper than any configuration Druid keeps. */
export const MAX_DEPTH = 256;

export class JsonTextError extends Error {}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const WS = /[ \t\n\r]*/y;

/** Parses `text`; a syntax error, trailing text or nesting beyond MAX_DEPTH throws JsonTextError. */
export function parseJsonText(text: string): JsonNode {
  let i = 0;
  const ws = () => {
    WS.lastIndex = i;
    WS.exec(text);
    i = WS.lastIndex;
  };
  const fail = (what: string): never => {
    throw new JsonTextError(`${what} at offset ${i}`);
  };
  const str = (): { value: string; start: number; end: number } => {
    const start = i;
    i++;
    for (;;) {
      const c = text.charCodeAt(i);
      if (Number.isNaN(c)) fail('unterminated string');
      if (c === 0x22) break;
      if (c < 0x20) fail('control character in a string');
      if (c === 0x5c) {
        const e = text[i + 1];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) fail('bad \\u escape');
          i += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2;
        else fail('bad escape');
      } else i++;
    }
    i++;
    return { value: JSON.parse(text.slice(start, i)) as string, start, end: i };
  };
  const value = (depth: number): JsonNode => {
    if (depth > MAX_DEPTH) fail(`nesting deeper than ${MAX_DEPTH}`);
    ws();
    const start = i;
    const c = text[i];
    if (c === '{') {
      i++;
      const members: Array<{ key: string; value: JsonNode }> = [];
      ws();
      if (text[i] === '}') {
        i++;
        return { kind: 'object', start, end: i, members };
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a member name');
        const key = str().value;
        ws();
        if (text[i] !== ':') fail('expected ":"');
        i++;
        members.push({ key, value: value(depth + 1) });
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === '}') {
          i++;
          return { kind: 'object', start, end: i, members };
        } else fail('expected "," or "}"');
      }
    }
    if (c === '[') {
      i++;
      const items: JsonNode[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return { kind: 'array', start, end: i, items };
      }
      for (;;) {
        items.push(value(depth + 1));
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === ']') {
          i++;
          return { kind: 'array', start, end: i, items };
        } else fail('expected "," or "]"');
      }
    }
    if (c === '"') return { kind: 'string', ...str() };
    for (const word of ['true', 'false', 'null'] as const)
      if (text.startsWith(word, i)) {
        i += word.length;
        return { kind: word, start, end: i };
      }
    NUMBER.lastIndex = i;
    if (NUMBER.exec(text)) {
      i = NUMBER.lastIndex;
      return { kind: 'number', start, end: i };
    }
    return fail('expected a value');
  };
  const root = value(0);
  ws();
  if (i !== text.length) fail('unexpected text after the value');
  return root;
}

/** One replacement of a value's text. */
export interface Splice {
  start: number;
  end: number;
  text: string;
}

/** Applies non-overlapping replacements; the text between them is kept as it was. */
export function applySplices(text: string, splices: Splice[]): string {
  const sorted = [...splices].sort((a, b) => a.start - b.start);
  let out = '';
  let at = 0;
  for (const s of sorted) {
    if (s.start < at) throw new JsonTextError('overlapping replacements');
    out += text.slice(at, s.start) + s.text;
    at = s.end;
  }
  return out + text.slice(at);
}

/** A member of an object node, or undefined. */
export function member(node: JsonNode, key: string): JsonNode | undefined {
  return node.kind === 'object' ? node.members.find((m) => m.key === key)?.value : undefined;
}

/** A JSONPath step: `.name` for plain names, `["a.b"]` otherwise. */
export function pathStep(key: string | number): string {
  if (typeof key === 'number') return `[${key}]`;
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}
