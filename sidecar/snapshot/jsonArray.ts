/**
 * Splits a JSON array arriving in chunks into its elements, one at a time, without holding the whole answer: a
 * Coordinator lists 100,000 used segments in one array, and only one descriptor at a time is in memory here.
 * It tracks strings, escapes and nesting depth only; each element is then parsed by `JSON.parse`, which does the
 * real checking. An element longer than `maxElement` bytes, text outside the array, or an array that never ends
 * is an error naming `what`.
 */
import { BackupError } from '../errors.js';

const OPEN_SQ = 0x5b;
const CLOSE_SQ = 0x5d;
const OPEN_CU = 0x7b;
const CLOSE_CU = 0x7d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

export async function* jsonArrayElements(chunks: AsyncIterable<Uint8Array>, maxElement: number, what: string): AsyncGenerator<unknown> {
  const fail = (problem: string): never => {
    throw new BackupError('target_error', `${what} ${problem}`);
  };
  let state: 'before' | 'between' | 'element' | 'after' = 'before';
  let depth = 0;
  let inString = false;
  let escaped = false;
  let parts: Buffer[] = [];
  let partBytes = 0;
  let expectElement = true;
  let seen = false;
  for await (const raw of chunks) {
    const chunk = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    let start = -1;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      if (state === 'element') {
        if (inString) {
          if (escaped) escaped = false;
          else if (c === BACKSLASH) escaped = true;
          else if (c === QUOTE) inString = false;
          continue;
        }
        if (c === QUOTE) inString = true;
        else if (c === OPEN_SQ || c === OPEN_CU) depth++;
        else if (c === CLOSE_SQ || c === CLOSE_CU || (c === COMMA && depth === 0)) {
          if (depth > 0) {
            depth--;
            continue;
          }
          // The end of a top-level element: a comma, or the array's `]`.
          const piece = chunk.subarray(start < 0 ? 0 : start, i);
          parts.push(piece);
          partBytes += piece.length;
          if (partBytes > maxElement) fail(`has an element larger than ${maxElement} bytes`);
          const text = Buffer.concat(parts, partBytes).toString('utf8');
          parts = [];
          partBytes = 0;
          start = -1;
          let value: unknown;
          try {
            value = JSON.parse(text);
          } catch {
            fail('holds an element that is not JSON');
          }
          yield value;
          if (c === COMMA) {
            state = 'between';
            expectElement = true;
          } else state = 'after';
        }
        continue;
      }
      if (isSpace(c)) continue;
      if (state === 'before') {
        if (c !== OPEN_SQ) fail('is not a JSON array');
        state = 'between';
        expectElement = true;
        continue;
      }
      if (state === 'after') fail('has text after its array');
      // Between elements: `]` ends an empty array only; anything else begins an element, re-read as its first byte.
      if (c === CLOSE_SQ && expectElement && !seen) {
        state = 'after';
        continue;
      }
      if (!expectElement) fail('has elements without a comma between them');
      state = 'element';
      expectElement = false;
      seen = true;
      depth = 0;
      inString = false;
      escaped = false;
      start = i;
      i--;
    }
    if (state === 'element') {
      const piece = chunk.subarray(start < 0 ? 0 : start);
      parts.push(Buffer.from(piece));
      partBytes += piece.length;
      if (partBytes > maxElement) fail(`has an element larger than ${maxElement} bytes`);
    }
  }
  if ((state as string) !== 'after') fail('ends before its array does');
}
