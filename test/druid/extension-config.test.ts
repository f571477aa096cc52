/**
 * The sidecar reads the Druid extension's `druid.backup.sidecar.*` keys from the same runtime.properties (issue 12):
 * it accepts all of them, listens where the extension calls and takes the token the extension sends.
 * No cluster needed.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { loadSidecarConfig } from '../../sidecar/config.js';

const TOKEN = '0123456789abcdef0123456789abcdef';
const roots: string[] = [];
after(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

function historical(lines: string): { root: string; file: string } {
  const root = mkdtempSync(path.join(os.tmpdir(), 'dbk-extconf-'));
  roots.push(root);
  mkdirSync(path.join(root, 'conf/druid/historical'), { recursive: true });
  mkdirSync(path.join(root, 'cache'));
  const file = path.join(root, 'conf/druid/historical/runtime.properties');
  writeFileSync(file, `druid.segmentCache.locations=[{"path":"${root}/cache","maxSize":"1g"}]\n${lines}`);
  return { root, file };
}

const load = (file: string, root: string, env: NodeJS.ProcessEnv = {}, flags: Record<string, string> = {}) =>
  loadSidecarConfig({ configFile: file, env, flags, baseDir: root });

test('every key of the extension is accepted', () => {
  const { root, file } = historical(
    [
      'druid.backup.sidecar.url=http://127.0.0.1:8584',
      `druid.backup.sidecar.token=${TOKEN}`,
      'druid.backup.sidecar.autostart=true',
      'druid.backup.sidecar.node=/usr/bin/node',
      'druid.backup.sidecar.connectTimeout=PT2S',
      '',
    ].join('\n'),
  );
  const c = load(file, root);
  assert.equal(c.port, 8584);
  assert.equal(c.token, TOKEN);
});

test('the port comes from druid.backup.sidecar.url unless druid.backup.port, the environment or a flag says otherwise', () => {
  let { root, file } = historical('druid.backup.sidecar.url=http://localhost:9100/\n');
  assert.equal(load(file, root).port, 9100);
  assert.equal(load(file, root, { DRUID_BACKUP_PORT: '9200' }).port, 9200);
  assert.equal(load(file, root, {}, { port: '0' }).port, 0);
  ({ root, file } = historical('druid.backup.sidecar.url=http://localhost\n'));
  assert.equal(load(file, root).port, 80);
  ({ root, file } = historical('druid.backup.port=9100\ndruid.backup.sidecar.url=http://localhost:9100\n'));
  assert.equal(load(file, root).port, 9100);
  ({ root, file } = historical('druid.backup.port=9101\ndruid.backup.sidecar.url=http://localhost:9100\n'));
  assert.throws(() => load(file, root), /druid\.backup\.port: 9101 differs from the port of druid\.backup\.sidecar\.url \(http:\/\/localhost:9100\)/);
  ({ root, file } = historical('druid.backup.sidecar.url=localhost:9100\n'));
  assert.throws(() => load(file, root), /druid\.backup\.sidecar\.url: "localhost:9100" is not a URL|only http/);
});

test('the token is a value or a PasswordProvider the sidecar can read', () => {
  let { root, file } = historical(`druid.backup.sidecar.token={"type":"environment","variable":"MY_BACKUP_TOKEN"}\n`);
  assert.equal(load(file, root, { MY_BACKUP_TOKEN: TOKEN }).token, TOKEN);
  assert.throws(() => load(file, root), /druid\.backup\.sidecar\.token: environment variable MY_BACKUP_TOKEN is not set or empty/);
  ({ root, file } = historical(`druid.backup.sidecar.token={"type":"default","password":"${TOKEN}"}\n`));
  assert.equal(load(file, root).token, TOKEN);
  ({ root, file } = historical(`druid.backup.sidecar.token={"type":"mapString","key":"x"}\n`));
  assert.throws(() => load(file, root), /for type "mapString" give it druid\.backup\.token or druid\.backup\.tokenFile/);
  ({ root, file } = historical(`druid.backup.sidecar.token={"type":\n`));
  assert.throws(() => load(file, root), /druid\.backup\.sidecar\.token: not valid JSON/);
  ({ root, file } = historical(`druid.backup.sidecar.token=short\n`));
  assert.throws(() => load(file, root), /shorter than 16 characters/);
});

test("the sidecar's own token wins when it is the same, and a different one is refused", () => {
  let { root, file } = historical(`druid.backup.token=${TOKEN}\ndruid.backup.sidecar.token=${TOKEN}\n`);
  assert.equal(load(file, root).token, TOKEN);
  ({ root, file } = historical(`druid.backup.sidecar.token=${TOKEN}\n`));
  // What an autostarted sidecar gets: the extension hands the resolved token over in the environment.
  assert.equal(load(file, root, { DRUID_BACKUP_TOKEN: TOKEN }).token, TOKEN);
  ({ root, file } = historical(`druid.backup.token=${TOKEN}\ndruid.backup.sidecar.token=${TOKEN.toUpperCase()}\n`));
  assert.throws(() => load(file, root), /druid\.backup\.sidecar\.token: differs from druid\.backup\.token/);
});

test('a misspelt extension key is still refused', () => {
  const { root, file } = historical('druid.backup.sidecar.autoStart=true\n');
  assert.throws(() => load(file, root), /unknown key \(did you mean druid\.backup\.sidecar\.autostart\?\)/);
});
