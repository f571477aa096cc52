import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { envName, loadSidecarConfig } from '../../../sidecar/config.js';

function druidConf(historical: string, common?: string) {
  const root = mkdtempSync(path.join(os.tmpdir(), 'dbk-conf-'));
  mkdirSync(path.join(root, 'conf/druid/historical'), { recursive: true });
  mkdirSync(path.join(root, 'cache'));
  const file = path.join(root, 'conf/druid/historical/runtime.properties');
  writeFileSync(file, historical.replaceAll('$ROOT', root));
  if (common !== undefined) {
    mkdirSync(path.join(root, 'conf/druid/_common'));
    writeFileSync(path.join(root, 'conf/druid/_common/common.runtime.properties'), common.replaceAll('$ROOT', root));
  }
  return { root, file };
}

const LOC = 'druid.segmentCache.locations=[{"path":"$ROOT/cache","maxSize":"300g","freeSpacePercent":1.0}]\n';

test('reads the cache, info_dir, deep storage and host from the service and common files', () => {
  const { root, file } = druidConf(
    `druid.service=druid/historical\ndruid.plaintextPort=8083\n${LOC}`,
    'druid.host=h1\ndruid.storage.type=local\ndruid.storage.storageDirectory=$ROOT/deep\n',
  );
  const c = loadSidecarConfig({ configFile: file, env: {}, baseDir: root });
  assert.deepEqual(c.druid.locations, [{ path: path.join(root, 'cache'), maxSize: 300e9, freeSpacePercent: 1 }]);
  assert.equal(c.druid.infoDir, path.join(root, 'cache/info_dir'));
  assert.deepEqual(c.druid.storage, { type: 'local', directory: path.join(root, 'deep'), zip: false });
  assert.equal(c.nodeName, 'h1:8083');
  assert.equal(c.port, 8484);
  assert.equal(c.files.length, 2);
  assert.equal(c.stateDir, path.join(root, 'var/druid-backup'));
});

test('the service file overrides common; an explicit infoDir wins', () => {
  const { root, file } = druidConf(`${LOC}druid.segmentCache.infoDir=$ROOT/info\ndruid.host=svc\n`, 'druid.host=common\n');
  const c = loadSidecarConfig({ configFile: file, env: {}, baseDir: root });
  assert.equal(c.druid.infoDir, path.join(root, 'info'));
  assert.equal(c.druid.host, 'svc');
});

test('druid.backup.* keys from the file, overridden by environment, overridden by flags', () => {
  const { root, file } = druidConf(`${LOC}druid.backup.port=9000\ndruid.backup.target=http://t:8484/\ndruid.backup.settleTime=PT10S\n`);
  let c = loadSidecarConfig({ configFile: file, env: {}, baseDir: root });
  assert.equal(c.port, 9000);
  assert.equal(c.target, 'http://t:8484');
  assert.equal(c.settleMs, 10_000);
  c = loadSidecarConfig({ configFile: file, env: { DRUID_BACKUP_PORT: '9001' }, baseDir: root });
  assert.equal(c.port, 9001);
  c = loadSidecarConfig({ configFile: file, env: { DRUID_BACKUP_PORT: '9001' }, flags: { port: '9002' }, baseDir: root });
  assert.equal(c.port, 9002);
  assert.equal(envName('druid.backup.stateDir'), 'DRUID_BACKUP_STATE_DIR');
});

test('every bad input stops with one line naming the file, key and problem', () => {
  const cases: Array<[string, RegExp]> = [
    ['druid.segmentCache.locations=[{"path":"/x",]\n', /runtime\.properties:1: druid\.segmentCache\.locations: not valid JSON/],
    ['druid.segmentCache.locations={"path":"/x"}\n', /must be a JSON list/],
    ['druid.segmentCache.locations=[{"maxSize":"1g"}]\n', /entry 0 has no "path"/],
    ['druid.segmentCache.locations=[{"path":"$ROOT/nope"}]\n', /cache location .*nope does not exist/],
    ['druid.segmentCache.locations=[{"path":"$ROOT/cache","maxSize":"lots"}]\n', /maxSize: "lots" is not a size/],
    [`${LOC}druid.backup.prot=1\n`, /runtime\.properties:2: druid\.backup\.prot: unknown key/],
    [`${LOC}druid.backup.Port=1\n`, /did you mean druid\.backup\.port/],
    [`${LOC}druid.backup.port=http\n`, /druid\.backup\.port: "http" is not a whole number/],
    [`${LOC}druid.backup.port=70000\n`, /70000 is outside 0\.\.65535/],
    [`${LOC}druid.backup.target=ftp://x\n`, /only http:\/\/ and https:\/\/ targets/],
    [`${LOC}druid.backup.target=not a url\n`, /is not a URL/],
    [`${LOC}druid.backup.settleTime=5 minutes\n`, /is not a duration/],
    [`${LOC}druid.backup.active=yes\n`, /"yes" is not true or false/],
    [`${LOC}druid.backup.restore.hashThread=maybe\n`, /druid\.backup\.restore\.hashThread: "maybe" is not true or false/],
    [`${LOC}druid.backup.token=short\n`, /shorter than 16 characters/],
    [`${LOC}druid.backup.tokenFile=$ROOT/missing\n`, /cannot read .*missing \(ENOENT\)/],
    [`${LOC}druid.backup.stateDir=$ROOT/cache/state\n`, /is inside the cache location/],
    ['druid.service=druid/broker\n', /druid\.segmentCache\.locations is not set/],
    ['a=\\uZZZZ\n', /runtime\.properties:1: malformed/],
  ];
  for (const [text, re] of cases) {
    const { root, file } = druidConf(text);
    assert.throws(
      () => loadSidecarConfig({ configFile: file, env: {}, baseDir: root }),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, 'bad_config', text);
        assert.match(e.message, re);
        assert.ok(!e.message.includes('\n'), 'one line');
        return true;
      },
    );
  }
  assert.throws(() => loadSidecarConfig({ configFile: '/nonexistent/runtime.properties', env: {} }), /no such file/);
  const { root, file } = druidConf(LOC);
  assert.throws(
    () => loadSidecarConfig({ configFile: file, env: { DRUID_BACKUP_WORKERS: '0' }, baseDir: root }),
    /environment DRUID_BACKUP_WORKERS: 0 is outside 1\.\.64/,
  );
});

test('a target-only sidecar needs no Druid config', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dbk-store-'));
  const c = loadSidecarConfig({ flags: { store: dir }, env: {} });
  assert.equal(c.store, dir);
  assert.deepEqual(c.druid.locations, []);
  assert.throws(() => loadSidecarConfig({ env: {} }), /nothing to do/);
});

test('a Coordinator with neither a cache nor a store is the cluster sidecar, on its own default port', () => {
  const { root, file } = druidConf('druid.service=druid/coordinator\ndruid.plaintextPort=8081\ndruid.backup.coordinator=http://localhost:8081\n');
  const c = loadSidecarConfig({ configFile: file, env: {}, baseDir: root });
  assert.equal(c.role, 'cluster');
  assert.equal(c.port, 8486);
  assert.deepEqual(c.druid.locations, []);
  assert.equal(c.overlord, 'http://localhost:8081', 'the Overlord defaults to the Coordinator');
  assert.equal(c.stateDir, path.join(root, 'var/druid-backup-cluster'), "apart from a Historical's sidecar's state");
  // Without a file too, as a bin/supervise line.
  assert.equal(loadSidecarConfig({ flags: { coordinator: 'http://c:8081', broker: 'http://b:8082' }, env: {}, baseDir: root }).role, 'cluster');
  // An explicit port or the extension's URL wins.
  assert.equal(loadSidecarConfig({ configFile: file, flags: { port: '9000' }, env: {}, baseDir: root }).port, 9000);
  // A node with a cache, or a target, that knows its Coordinator stays a node on 8484.
  const node = druidConf(`${LOC}druid.backup.coordinator=http://localhost:8081\n`);
  const n = loadSidecarConfig({ configFile: node.file, env: {}, baseDir: node.root });
  assert.deepEqual([n.role, n.port, n.stateDir], ['node', 8484, path.join(node.root, 'var/druid-backup')]);
  const t = loadSidecarConfig({ flags: { store: path.join(root, 'store'), coordinator: 'http://c:8081' }, env: {}, baseDir: root });
  assert.deepEqual([t.role, t.port], ['node', 8484]);
});

test("Druid's credentials: a user and a PasswordProvider-style password, both or neither", () => {
  const { root, file } = druidConf(
    'druid.backup.coordinator=http://c:8081\ndruid.backup.overlord=http://o:8090\ndruid.backup.druid.user=admin\ndruid.backup.druid.password={"type":"environment","variable":"DRUID_PW"}\n',
  );
  const c = loadSidecarConfig({ configFile: file, env: { DRUID_PW: 'pw1' }, baseDir: root });
  assert.deepEqual(c.druidAuth, { user: 'admin', password: 'pw1' });
  assert.equal(c.overlord, 'http://o:8090');
  assert.throws(() => loadSidecarConfig({ configFile: file, env: {}, baseDir: root }), /DRUID_PW is not set/);
  const plain = druidConf('druid.backup.coordinator=http://c:8081\ndruid.backup.druid.user=admin\ndruid.backup.druid.password=plain pw\n');
  assert.deepEqual(loadSidecarConfig({ configFile: plain.file, env: {}, baseDir: plain.root }).druidAuth, { user: 'admin', password: 'plain pw' });
  const half = druidConf('druid.backup.coordinator=http://c:8081\ndruid.backup.druid.user=admin\n');
  assert.throws(
    () => loadSidecarConfig({ configFile: half.file, env: {}, baseDir: half.root }),
    /needs both druid.backup.druid.user and druid.backup.druid.password/,
  );
  const other = druidConf('druid.backup.coordinator=http://c:8081\ndruid.backup.druid.user=a\ndruid.backup.druid.password={"type":"hashicorp"}\n');
  assert.throws(() => loadSidecarConfig({ configFile: other.file, env: {}, baseDir: other.root }), /for type "hashicorp"/);
  assert.equal(loadSidecarConfig({ flags: { coordinator: 'http://c:8081' }, env: {}, baseDir: root }).druidAuth, undefined);
});
