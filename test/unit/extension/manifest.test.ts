/**
 * The extension's manifest (package.json `contributes`) and its bundle: every command id of the code is declared
 * and every declared one is registered; menus name declared commands; the bundle holds no sidecar server code.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { build } from 'esbuild';
import { Command, View } from '../../../extension/commands/ids.js';

const root = path.resolve(__dirname, '../../..');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));

test('commands, views and menus agree with the code', () => {
  const declared: string[] = (pkg.contributes.commands as Array<{ command: string }>).map((c) => c.command).sort();
  assert.deepEqual(declared, Object.values(Command).sort());
  const views = (pkg.contributes.views.druidBackup as Array<{ id: string }>).map((v) => v.id);
  assert.deepEqual(views, Object.values(View));
  assert.equal(pkg.contributes.viewsContainers.activitybar[0].title, 'Druid Backup');
  for (const [menu, items] of Object.entries(pkg.contributes.menus as Record<string, Array<{ command: string; when?: string }>>)) {
    for (const item of items) {
      assert.ok((declared as string[]).includes(item.command), `${menu} names ${item.command}`);
      if (menu !== 'commandPalette') assert.ok(item.when, `${menu} ${item.command} has a when clause`);
    }
  }
  // Every command is registered in extension.ts.
  const wiring = readFileSync(path.join(root, 'extension/extension.ts'), 'utf8');
  for (const key of Object.keys(Command)) assert.ok(wiring.includes(`register(Command.${key},`), `Command.${key} is registered`);
  const welcome = pkg.contributes.viewsWelcome.find((w: { view: string }) => w.view === View.Nodes);
  assert.match(welcome.contents, /\[Add Node\]\(command:druidBackup\.addNode\)/);
  assert.ok(!JSON.stringify(pkg.contributes.configuration).match(/"druidBackup\.token/), 'no token setting');
  assert.equal(pkg.main, './dist/extension.js');
});

test('the extension bundle holds no sidecar server code and no native module', async () => {
  const r = await build({
    entryPoints: [path.join(root, 'extension/extension.ts')],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    external: ['vscode'],
    write: false,
    metafile: true,
    logLevel: 'silent',
    absWorkingDir: root,
  });
  const inputs = Object.keys(r.metafile.inputs);
  const sidecar = inputs.filter((i) => i.startsWith('sidecar/'));
  assert.deepEqual(
    sidecar.filter((i) => !['sidecar/druid/bytes.ts', 'sidecar/druid/time.ts', 'sidecar/errors.ts'].includes(i)),
    [],
    'only pure formatting helpers come from sidecar/',
  );
  for (const banned of ['fastify', 'pino', 'chokidar', 'prom-client', '@aws-sdk']) {
    assert.ok(!inputs.some((i) => i.includes(`node_modules/${banned}/`)), `${banned} is not in the bundle`);
  }
  assert.ok(!inputs.some((i) => i.endsWith('.node')));
});
