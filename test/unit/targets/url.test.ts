/** The one target URL parser, the allow-list matcher and the bounded cache of opened targets. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { loadSidecarConfig } from '../../../sidecar/config.js';
import type { Target } from '../../../sidecar/store/target.js';
import { isAllowed, parseAllowList } from '../../../sidecar/targets/allow.js';
import { TargetCache } from '../../../sidecar/targets/cache.js';
import type { TargetUrl } from '../../../sidecar/targets/url.js';
import { parseTargetUrl } from '../../../sidecar/targets/url.js';

const refused = (raw: unknown, re: RegExp, allowFile = false) =>
  assert.throws(
    () => parseTargetUrl(raw, 'target', { allowFile }),
    (e: Error & { code?: string }) => e.code === 'bad_request' && re.test(e.message),
    JSON.stringify(raw),
  );

test('target URLs: the canonical spelling, default ports made explicit, the path without a trailing slash', () => {
  const p = (raw: string) => {
    const t = parseTargetUrl(raw, 'target');
    return [t.url, t.scheme, t.host, t.port, t.path];
  };
  assert.deepEqual(p('http://backup-1:8484'), ['http://backup-1:8484', 'http', 'backup-1', 8484, '']);
  assert.deepEqual(p('HTTP://Backup-1:8484/'), ['http://backup-1:8484', 'http', 'backup-1', 8484, '']);
  assert.deepEqual(p('https://b.example.com/api/v2/'), ['https://b.example.com/api/v2', 'https', 'b.example.com', 443, '/api/v2']);
  assert.deepEqual(p('http://b.example.com:80'), ['http://b.example.com', 'http', 'b.example.com', 80, '']);
  assert.deepEqual(p('http://[::1]:8484'), ['http://[::1]:8484', 'http', '[::1]', 8484, '']);
  assert.deepEqual(p('S3://druid-backups/prod/'), ['s3://druid-backups/prod', 's3', 'druid-backups', 0, '/prod']);
  const f = parseTargetUrl('FiLe:///var/backups/store/', '--target', { allowFile: true });
  assert.deepEqual([f.url, f.scheme, f.dir], ['file:///var/backups/store', 'file', '/var/backups/store/']);
});

test('target URLs: control characters and white space anywhere, file:// in any case, other schemes and odd parts are refused', () => {
  for (const c of ['\u0000', '\u0001', '\t', '\n', '\r', ' ', '\u001f', '\u007f', '\u0085', '\u00a0', '\u2028', '\ufeff', '\u200b']) {
    for (const raw of [`${c}file:///tmp/x`, `${c}http://a:8484`, `http://a:8484${c}`, `http://a${c}b:8484`, `s3://bucket/a${c}b`])
      refused(raw, /white space or a control character/);
  }
  for (const raw of ['file:///tmp/x', 'FiLe:///tmp/x', 'FILE://localhost/tmp', 'file:']) refused(raw, /file:\/\/ targets are not served over the API/);
  refused('file://otherhost/tmp', /names a local directory/, true);
  refused('ftp://host/x', /unsupported scheme ftp:/);
  refused('javascript:alert(1)', /unsupported scheme javascript:/);
  refused('not a url', /white space/);
  refused('backup-1:8484', /unsupported scheme backup-1:/);
  refused('//backup-1:8484', /is not a URL/);
  refused('', /non-empty URL string/);
  refused(42, /non-empty URL string/);
  refused(`http://a/${'x'.repeat(2100)}`, /at most 2048 characters/);
  refused('http://user:pw@127.0.0.1:1', /credentials do not belong/);
  refused('http://allowed.example\\@evil.example', /credentials do not belong/);
  refused('http://allowed.example\\evil', /the host may hold only/);
  refused('http://a:8484/?x=1', /no query or fragment/);
  refused('http://a:8484#f', /no query or fragment/);
  refused('http://a:8484/x/../y', /path segment/);
  refused('http://a:8484/%2e%2e/y', /path segment/);
  refused('http://a:8484//y', /path segment/);
  refused('http:///x', /the host is missing/);
  refused('http://a:99999', /is not a URL/);
  refused('http://a:0', /port 0/);
  refused('http://a.example.:8484', /the host may hold only/);
  refused('s3://bucket/../etc', /"\.\." segments/);
  refused('s3://bucket:9000/p', /no port/);
});

test('any string with a control character or white space is refused, whatever else it holds', () => {
  const bad = fc.constantFrom(...'\u0000\u0001\u0009\u000a\u000d\u0020\u007f\u0080\u009f\u00a0\u1680\u2000\u2028\u3000\ufeff'.split(''));
  fc.assert(
    fc.property(fc.string(), bad, fc.string(), fc.boolean(), (a, c, b, allowFile) => {
      assert.throws(() => parseTargetUrl(`${a}${c}${b}`, 'target', { allowFile }), /white space or a control character/);
    }),
    { numRuns: 2000 },
  );
});

const allow = (entries: string[], url: string) => isAllowed(parseAllowList(JSON.stringify(entries), 'allowedTargets'), parseTargetUrl(url, 'target'));

test('the allow list matches the parsed URL: scheme, explicit port, host or *.subdomain, path prefix at a "/"', () => {
  const yes: Array<[string[], string]> = [
    [['s3://druid-backups/prod'], 's3://druid-backups/prod'],
    [['s3://druid-backups/prod'], 's3://druid-backups/prod/x'],
    [['s3://druid-backups/prod/'], 'S3://druid-backups/prod/x/y/'],
    [['s3://druid-backups'], 's3://druid-backups/anything'],
    [['http://backup-1:8484'], 'http://BACKUP-1:8484/'],
    [['http://backup-1:80'], 'http://backup-1'],
    [['https://backup-1'], 'https://backup-1:443'],
    [['http://*.backups.example.com:8484'], 'http://b1.backups.example.com:8484'],
    [['http://*.backups.example.com:8484'], 'http://a.b.backups.example.com:8484'],
    [['http://127.0.0.1:8484'], 'http://127.0.0.1:8484'],
    [['*'], 'http://anything.example:1'],
    [['*'], 's3://any-bucket/x'],
  ];
  const no: Array<[string[], string]> = [
    [['s3://druid-backups/prod'], 's3://druid-backups-evil'],
    [['s3://druid-backups/prod'], 's3://druid-backups-evil/prod'],
    [['s3://druid-backups/prod'], 's3://druid-backups/production'],
    [['s3://druid-backups/prod'], 's3://druid-backups'],
    [['s3://druid-backups/prod'], 's3://druid-backups/pro'],
    [['http://backup-1:8484'], 'https://backup-1:8484'],
    [['http://backup-1:8484'], 'http://backup-1:8485'],
    [['http://backup-1:8484'], 'http://backup-1'],
    [['http://backup-1:8484'], 'http://backup-10:8484'],
    [['http://backup-1:8484'], 'http://backup-1.evil.example:8484'],
    [['http://backup-1:8484'], 'http://evil-backup-1:8484'],
    [['http://backup-1:8484/a'], 'http://backup-1:8484/ab'],
    [['http://backup-1:8484/a'], 'http://backup-1:8484'],
    [['http://*.backups.example.com:8484'], 'http://backups.example.com:8484'],
    [['http://*.backups.example.com:8484'], 'http://evilbackups.example.com:8484'],
    [['http://*.backups.example.com:8484'], 'http://b1.backups.example.com.evil.example:8484'],
    [['http://*.backups.example.com:8484'], 'http://b1.backups.example.com:8485'],
    [['http://127.0.0.1:8484'], 'http://127.0.0.2:8484'],
    [['http://127.0.0.1:8484'], 'http://localhost:8484'],
    [['http://backup-1:8484'], 's3://backup-1'],
    [[], 'http://backup-1:8484'],
  ];
  for (const [entries, url] of yes) assert.ok(allow(entries, url), `${JSON.stringify(entries)} allows ${url}`);
  for (const [entries, url] of no) assert.ok(!allow(entries, url), `${JSON.stringify(entries)} must not allow ${url}`);
});

test('look-alike URLs generated around an entry are allowed only when they name the same place', () => {
  const entry = 'http://backup.example.com:8484/store';
  const list = parseAllowList(JSON.stringify([entry]), 'allowedTargets');
  const label = fc.stringMatching(/^[a-z0-9-]{1,8}$/);
  const host = fc.oneof(
    fc.constant('backup.example.com'),
    fc.constant('BACKUP.example.com'),
    label.map((l) => `${l}.backup.example.com`),
    label.map((l) => `backup.example.com${l}`),
    label.map((l) => `backup${l}.example.com`),
    label,
  );
  const port = fc.constantFrom('', ':80', ':8484', ':8485', ':08484');
  const pathPart = fc.constantFrom('', '/', '/store', '/store/', '/store/x', '/storex', '/stor', '/other/store');
  const scheme = fc.constantFrom('http', 'HTTP', 'https');
  fc.assert(
    fc.property(scheme, host, port, pathPart, (s, h, p, pa) => {
      let t: TargetUrl;
      try {
        t = parseTargetUrl(`${s}://${h}${p}${pa}`, 'target');
      } catch {
        return;
      }
      const same = t.scheme === 'http' && t.host === 'backup.example.com' && t.port === 8484 && (t.path === '/store' || t.path.startsWith('/store/'));
      assert.equal(isAllowed(list, t), same, t.url);
    }),
    { numRuns: 3000 },
  );
});

test('bad allow lists stop the configuration with the key named', () => {
  for (const [text, re] of [
    ['http://a:8484', /not valid JSON/],
    ['{"a":1}', /expected a JSON list/],
    ['["*", "http://a:8484"]', /list nothing else beside it/],
    ['["file:///tmp"]', /file:\/\/ targets are not served/],
    ['["http://*.com:8484"]', /"\*\." goes before a domain/],
    ['["http://*.0.0.1:8484"]', /"\*\." goes before a domain|is not a URL/],
    ['["http://*.example:8484"]', /"\*\." goes before a domain/],
    ['["http://a:8484\\n"]', /control character/],
  ] as const)
    assert.throws(
      () => parseAllowList(text, 'druid.backup.allowedTargets'),
      (e: Error & { code?: string }) => e.code === 'bad_config' && re.test(e.message) && e.message.includes('druid.backup.allowedTargets'),
      text,
    );
});

test("the configuration allows the node's own targets besides druid.backup.allowedTargets", () => {
  const base = { store: '/tmp/dbk-never-created', stateDir: '/tmp/dbk-never-created-state' };
  const load = (flags: Record<string, string>) => loadSidecarConfig({ flags: { ...base, ...flags }, env: {} }).allowedTargets;
  const own = load({ target: 'http://backup-1:8484', 'allowed-targets': '["s3://druid-backups/prod"]' });
  assert.ok(own !== '*');
  const t = (u: string) => parseTargetUrl(u, 'target');
  assert.ok(isAllowed(own, t('http://backup-1:8484')));
  assert.ok(isAllowed(own, t('s3://druid-backups/prod/x')));
  assert.ok(!isAllowed(own, t('http://backup-2:8484')));
  const set = load({ targets: '["http://a:8484", {"url": "http://b:8484", "zone": "z2"}]' });
  assert.ok(isAllowed(set, t('http://b:8484')) && !isAllowed(set, t('http://c:8484')));
  assert.equal(load({ 'allowed-targets': '["*"]' }), '*');
  assert.deepEqual(load({}), []);
  assert.throws(() => load({ target: '\u0001file:///tmp' }), /control character/);
  assert.throws(() => load({ target: 'FILE:///tmp' }), /file:\/\/ targets are not served/);
});

test('a URL the configuration gives a service (Coordinator, endpoint, the sidecar) passes the target URL rules, http(s) only', () => {
  const base = { store: '/tmp/dbk-never-created', stateDir: '/tmp/dbk-never-created-state' };
  const load = (flags: Record<string, string>) => loadSidecarConfig({ flags: { ...base, ...flags }, env: {} });
  assert.equal(load({ coordinator: 'HTTP://Coordinator:8081/' }).coordinator, 'http://coordinator:8081');
  assert.equal(load({ coordinator: 'https://c.example.com:443/druid/' }).coordinator, 'https://c.example.com/druid');
  const refusedKey = (flags: Record<string, string>, re: RegExp) =>
    assert.throws(
      () => load(flags),
      (e: Error & { code?: string }) => e.code === 'bad_config' && re.test(e.message) && e.message.includes('--coordinator'),
      JSON.stringify(flags),
    );
  refusedKey({ coordinator: 'coordinator:8081' }, /only http:\/\/ and https:\/\/ URLs/);
  refusedKey({ coordinator: 's3://bucket' }, /only http:\/\/ and https:\/\/ URLs/);
  refusedKey({ coordinator: 'http://admin:pw@c:8081' }, /credentials do not belong in the URL; use the token settings/);
  refusedKey({ coordinator: 'http://c:8081/?x=1' }, /no query or fragment/);
  refusedKey({ coordinator: 'http://c:8081/a/../b' }, /path segment/);
  refusedKey({ coordinator: 'http://c:8081\u0000' }, /control character/);
});

/** A target that counts its closes; nothing is opened for real. */
function fakeTarget(url: string, closed: string[]): Target {
  return { url, close: () => closed.push(url) } as unknown as Target;
}

test('opened targets: allow-checked before opening, an LRU bounded besides the configured ones, evicted ones closed', () => {
  const opened: string[] = [];
  const closed: string[] = [];
  const cache = new TargetCache({
    allowed: '*',
    pinned: ['http://configured:8484/'],
    max: 3,
    open: (t) => {
      opened.push(t.url);
      return fakeTarget(t.url, closed);
    },
  });
  const pinned = cache.get('http://configured:8484');
  for (let i = 1; i <= 5; i++) cache.get(`http://t${i}:8484`);
  assert.equal(cache.size, 4, 'the configured target and the 3 most recent');
  assert.deepEqual(closed, ['http://t1:8484', 'http://t2:8484']);
  cache.get('http://t3:8484/');
  cache.get('http://t6:8484');
  assert.deepEqual(closed, ['http://t1:8484', 'http://t2:8484', 'http://t4:8484'], 't3 was used again: t4 went');
  assert.equal(cache.get('HTTP://CONFIGURED:8484'), pinned, 'the configured target is never evicted nor opened again');
  assert.equal(opened.filter((u) => u === 'http://configured:8484').length, 1);

  const strict = new TargetCache({
    allowed: parseAllowList('["http://ok:8484"]', 'k'),
    pinned: [],
    open: (t) => (opened.push(t.url), fakeTarget(t.url, closed)),
  });
  const before = opened.length;
  assert.throws(
    () => strict.get('http://evil:8484'),
    (e: Error & { code?: string; status?: number }) => e.code === 'target_not_allowed' && e.status === 403,
  );
  assert.throws(
    () => strict.get('\u0000file:///tmp'),
    (e: Error & { code?: string }) => e.code === 'bad_request',
  );
  assert.equal(opened.length, before, 'nothing opened for a refused URL');
  strict.get('http://ok:8484');
  assert.equal(opened.length, before + 1);
});
