import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseProperties } from '../../../sidecar/druid/properties.js';
import { parseHumanBytes } from '../../../sidecar/druid/bytes.js';

const get = (text: string) => Object.fromEntries([...parseProperties(text, 'f.properties')].map(([k, v]) => [k, v.value]));

test('separators =, : and whitespace; spaces around them are dropped', () => {
  assert.deepEqual(get('a=1\nb: 2\nc 3\nd   =   4  \n  e\t:5'), { a: '1', b: '2', c: '3', d: '4  ', e: '5' });
  assert.deepEqual(get('k==v'), { k: '=v' });
  assert.deepEqual(get('empty\nnovalue='), { empty: '', novalue: '' });
});

test('# and ! comments, blank lines, CRLF', () => {
  assert.deepEqual(get('# c\n! c\n\r\n  # indented comment\na=1\r\nb=2\r'), { a: '1', b: '2' });
});

test('a value may contain # and !, and the last duplicate wins', () => {
  assert.deepEqual(get('a=x#y!z\na=second'), { a: 'second' });
});

test("backslash continuation drops the next line's leading whitespace; an even count does not continue", () => {
  assert.deepEqual(get('druid.segmentCache.locations=[{"path":"/a",\\\n     "maxSize":"1g"}]'), {
    'druid.segmentCache.locations': '[{"path":"/a","maxSize":"1g"}]',
  });
  assert.deepEqual(get('a=x\\\\\nb=y'), { a: 'x\\', b: 'y' });
  assert.deepEqual(get('a=x\\\n# not a comment\nb=y'), { a: 'x# not a comment', b: 'y' });
  assert.deepEqual(get('a=x\\\n\nb=y'), { a: 'x', b: 'y' });
});

test('escapes: \\t \\n \\uXXXX, escaped separators in keys, unknown escapes stand for themselves', () => {
  assert.deepEqual(get('a\\=b\\ c=v\\t\\n\\u00e9\\q'), { 'a=b c': 'v\t\né' + 'q' });
  assert.deepEqual(get('path=C\\:\\\\data'), { path: 'C:\\data' });
});

test('line numbers are kept for error messages', () => {
  const p = parseProperties('\n# x\na=1\nb=\\\n 2\nc=3', 'f');
  assert.equal(p.get('a')!.line, 3);
  assert.equal(p.get('b')!.line, 4);
  assert.equal(p.get('c')!.line, 6);
});

test('malformed \\u escapes and binary files are clear errors naming the file and line', () => {
  assert.throws(() => parseProperties('a=1\nb=\\u12', 'x.properties'), /x\.properties:2: malformed \\uxxxx/);
  assert.throws(() => parseProperties('a=\u0000\u0001', 'bin.properties'), /bin\.properties: not a text properties file/);
});

test("Druid's human-readable sizes", () => {
  assert.equal(parseHumanBytes('300g'), 300e9);
  assert.equal(parseHumanBytes('300G'), 300e9);
  assert.equal(parseHumanBytes('10GiB'), 10 * 1024 ** 3);
  assert.equal(parseHumanBytes('1kib'), 1024);
  assert.equal(parseHumanBytes(' 5000 '), 5000);
  assert.equal(parseHumanBytes(42), 42);
  for (const bad of ['', '-1', '1.5g', '10gb', '10 g', 'g', '1xb', '99999999p']) assert.throws(() => parseHumanBytes(bad), { code: 'bad_config' }, bad);
});
