/** `cluster-restore --secret PATH=VALUE`: split at the first "=" outside a quoted path step; garbage refused. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidArgumentError } from 'commander';
import { secretOption } from '../../../sidecar/commands/clusterRestore.js';

test('--secret splits at the first "=" outside a quoted path step; a value may hold "="', () => {
  assert.deepEqual(secretOption('lookups.t.l.password=a=b==', []), [['lookups.t.l.password', 'a=b==']]);
  assert.deepEqual(secretOption('supervisors[0].spec.ioConfig.consumerProperties["sasl.jaas.config"]=x', [['a', 'b']]), [
    ['a', 'b'],
    ['supervisors[0].spec.ioConfig.consumerProperties["sasl.jaas.config"]', 'x'],
  ]);
  assert.deepEqual(secretOption('x["a=b\\"c"]=v=w', []), [['x["a=b\\"c"]', 'v=w']]);
  assert.deepEqual(secretOption('p=', []), [['p', '']]);
});

test('--secret without a path or an "=" is refused with one line', () => {
  for (const bad of ['novalue', '=value', '', 'x["open=v']) assert.throws(() => secretOption(bad, []), InvalidArgumentError, bad);
});
