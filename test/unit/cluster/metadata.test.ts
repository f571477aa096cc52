import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { applySplices, JsonTextError, MAX_DEPTH, parseJsonText } from '../../../sidecar/cluster/jsonText.js';
import type { JsonNode } from '../../../sidecar/cluster/jsonText.js';
import { keepPart, PART_NARROW } from '../../../sidecar/cluster/metadata.js';
import { isSecretKey, redactJsonText } from '../../../sidecar/cluster/redact.js';
import { parseRows } from '../../../sidecar/cluster/rows.js';
import { REDACTED_MARKER } from '../../../sidecar/snapshot/model.js';

/** The value a node spans, through JSON.parse: the positions must cut exactly one value. */
function valueOf(text: string, n: JsonNode): unknown {
  return JSON.parse(text.slice(n.start, n.end));
}

test('parses what JSON.parse parses, with each value at its exact offsets', () => {
  fc.assert(
    fc.property(fc.json(), (text) => {
      const root = parseJsonText(text);
      assert.deepEqual(valueOf(text, root), JSON.parse(text));
      const walk = (n: JsonNode) => {
        assert.deepEqual(valueOf(text, n), JSON.parse(text.slice(n.start, n.end)));
        if (n.kind === 'object') for (const m of n.members) walk(m.value);
        if (n.kind === 'array') n.items.forEach(walk);
      };
      walk(root);
    }),
    { numRuns: 300 },
  );
});

test('refuses what is not JSON, trailing text and nesting past the bound', () => {
  for (const bad of ['', '{', '{"a":}', '[1,]', '{"a":1,}', "{'a':1}", '01', '1 2', '"\u0001"', '"\\x"', 'nul', 'NaN', '{"a" 1}', '[1]x'])
    assert.throws(() => parseJsonText(bad), JsonTextError, bad);
  assert.throws(() => parseJsonText('['.repeat(MAX_DEPTH + 2) + ']'.repeat(MAX_DEPTH + 2)), /nesting deeper/);
  assert.doesNotThrow(() => parseJsonText('['.repeat(100) + ']'.repeat(100)));
  // A large long as Jackson writes it survives as text (a JavaScript number would round it).
  const big = '{"maxTotalRows":9223372036854775807}';
  assert.equal(applySplices(big, []), big);
});

test('redaction keeps every byte but the secrets, and names each one', () => {
  const text =
    '{ "consumerProperties": {"bootstrap.servers":"k:9092", "sasl.jaas.config" : "org.apache.kafka.common.security.plain.PlainLoginModule required username=\\"u\\" password=\\"p\\";",' +
    '"ssl.key.password":{"type":"default","password":"kp"},"ssl.truststore.password":{"type":"environment","variable":"TS_PW"}},' +
    '"connectorConfig":{"connectURI":"jdbc:mysql://db:3306/druid","user":"druid","password":"secret1"},' +
    '"properties":{"accessKeyId":{"type":"default","password":"AKIAABCDEFGHIJKLMNOP"},"secretAccessKey":"xyz"},' +
    '"uri":"https://u:pw@host/x","note":"jdbc:postgresql://h/db?password=p2","token":null,"emptySecret":"","maxTotalRows":9223372036854775807}';
  const r = redactJsonText(text, 'supervisors');
  const M = JSON.stringify(REDACTED_MARKER);
  assert.deepEqual(r.paths, [
    'supervisors.consumerProperties["sasl.jaas.config"]',
    'supervisors.consumerProperties["ssl.key.password"].password',
    'supervisors.connectorConfig.password',
    'supervisors.properties.accessKeyId.password',
    'supervisors.properties.secretAccessKey',
    'supervisors.uri',
    'supervisors.note',
  ]);
  const v = JSON.parse(r.text);
  assert.equal(v.consumerProperties['sasl.jaas.config'], REDACTED_MARKER);
  assert.deepEqual(v.consumerProperties['ssl.key.password'], { type: 'default', password: REDACTED_MARKER });
  // An environment PasswordProvider names a variable, which a restore needs: kept.
  assert.deepEqual(v.consumerProperties['ssl.truststore.password'], { type: 'environment', variable: 'TS_PW' });
  assert.equal(v.connectorConfig.user, 'druid');
  assert.equal(v.token, null);
  assert.equal(v.emptySecret, '');
  // Everything else byte for byte: the spacing and the long Jackson wrote.
  assert.ok(r.text.startsWith('{ "consumerProperties": {"bootstrap.servers":"k:9092", "sasl.jaas.config" : ' + M + ','));
  assert.ok(r.text.endsWith('"maxTotalRows":9223372036854775807}'));
  assert.ok(!/secret1|"kp"|AKIA|xyz|pw@|p2|password=\\"p/.test(r.text));
});

const secretName = fc.constantFrom(
  'password',
  'sasl.jaas.config',
  'secretAccessKey',
  'awsSecretAccessKey',
  'sessionToken',
  'apiKey',
  'ssl.key.password',
  'clientSecret',
  'accessKey',
);

test('a secret put anywhere in any JSON is gone after redaction, and the rest is unchanged', () => {
  fc.assert(
    fc.property(fc.jsonValue(), fc.array(fc.oneof(fc.string({ minLength: 1 }), fc.nat(5)), { maxLength: 4 }), secretName, (doc, where, key) => {
      const secret = 'S3cr3t-' + 'q'.repeat(8);
      // Puts {key: secret} at a path made of the generated steps (objects are created as needed).
      let root: unknown = { [key]: secret };
      for (const step of [...where].reverse()) root = typeof step === 'number' ? [root] : { [step]: root };
      const text = JSON.stringify({ doc, root });
      const r = redactJsonText(text, 'p');
      assert.ok(!r.text.includes(secret), r.text);
      assert.ok(r.paths.length >= 1);
      // Redacting the redacted text changes nothing more.
      assert.equal(redactJsonText(r.text, 'p').text, r.text);
      // Putting the secrets back at the named places gives the original: nothing else was touched.
      const back = JSON.parse(r.text);
      const orig = JSON.parse(text);
      assert.equal(JSON.stringify(replaceMarkers(back, orig)), JSON.stringify(orig));
    }),
    { numRuns: 300 },
  );
});

/** `redacted` with each marker replaced by the original's value at the same place. */
function replaceMarkers(redacted: unknown, original: unknown): unknown {
  if (redacted === REDACTED_MARKER) return original;
  if (Array.isArray(redacted)) return redacted.map((x, i) => replaceMarkers(x, (original as unknown[])[i]));
  if (redacted && typeof redacted === 'object')
    return Object.fromEntries(Object.entries(redacted).map(([k, x]) => [k, replaceMarkers(x, (original as Record<string, unknown>)[k])]));
  return redacted;
}

test('names that are not secrets are left alone', () => {
  for (const k of ['dataSource', 'bypass', 'keyFormat', 'maxRowsInMemory', 'type', 'ssl.keystore.location', 'variable']) assert.equal(isSecretKey(k), false, k);
  for (const k of ['password', 'PASSWORD', 'sasl.jaas.config', 'secretAccessKey', 'accessKeyId', 'authToken', 'api_key', 'privateKey', 'credentials'])
    assert.equal(isSecretKey(k), true, k);
});

test('a part is checked against the shape Druid answers, then narrowed to the chosen data sources byte for byte', () => {
  const rules =
    '{"_default":[{"tieredReplicants":{"_default_tier":2},"useDefaultTierForNull":true,"type":"loadForever"}],"demo":[{"type":"dropForever"}],"other":[]}';
  assert.equal(keepPart({ part: 'rules', shape: 'rules' }, rules).text, rules);
  const rulesSpec = { part: 'rules' as const, shape: 'rules' as const, narrow: PART_NARROW.rules };
  assert.equal(
    keepPart(rulesSpec, rules, new Set(['demo'])).text,
    '{"_default":[{"tieredReplicants":{"_default_tier":2},"useDefaultTierForNull":true,"type":"loadForever"}],"demo":[{"type":"dropForever"}]}',
  );
  const compaction =
    '{"compactionConfigs":[{"dataSource":"a","inputSegmentSizeBytes":100000000000000},{"dataSource":"demo","skipOffsetFromLatest":"PT0S"}],"compactionTaskSlotRatio":0.1,"maxCompactionTaskSlots":2147483647}';
  assert.equal(
    keepPart({ part: 'compaction', shape: 'object', narrow: PART_NARROW.compaction }, compaction, new Set(['demo'])).text,
    '{"compactionConfigs":[{"dataSource":"demo","skipOffsetFromLatest":"PT0S"}],"compactionTaskSlotRatio":0.1,"maxCompactionTaskSlots":2147483647}',
  );
  const supervisors =
    '[{"id":"k1","spec":{"type":"kafka","spec":{"dataSchema":{"dataSource":"wiki"}}}},{"id":"k2","spec":{"dataSchema":{"dataSource":"demo"}}}]';
  assert.equal(
    keepPart({ part: 'supervisors', shape: 'array', narrow: PART_NARROW.supervisors }, supervisors, new Set(['demo'])).text,
    '[{"id":"k2","spec":{"dataSchema":{"dataSource":"demo"}}}]',
  );
  assert.throws(() => keepPart({ part: 'rules', shape: 'rules' }, '{"_default":{}}'), /not a list of rules for "_default"/);
  assert.throws(() => keepPart({ part: 'rules', shape: 'rules' }, '[]'), /not a JSON object/);
  assert.throws(() => keepPart({ part: 'supervisors', shape: 'array' }, '{}'), /not a JSON list/);
  assert.throws(() => keepPart({ part: 'lookups', shape: 'object' }, '<html>'), /not valid JSON/);
});

test("the Broker's sys.segments rows are checked: only the ids asked, counts that are whole numbers", () => {
  const asked = new Set(['a', 'b']);
  assert.deepEqual(parseRows('[{"segment_id":"a","num_rows":10,"is_available":1},{"segment_id":"b","num_rows":null,"is_available":0}]', asked), [
    { segment_id: 'a', num_rows: 10, is_available: 1 },
    { segment_id: 'b', num_rows: null, is_available: 0 },
  ]);
  for (const bad of [
    '{}',
    'x',
    '[{"segment_id":"c","num_rows":1}]',
    '[{"segment_id":"a","num_rows":-1}]',
    '[{"segment_id":"a","num_rows":1.5}]',
    '[{"segment_id":"a","num_rows":"1"}]',
    '[null]',
  ])
    assert.throws(() => parseRows(bad, asked), /row counts/, bad);
});
