/**
 * The layering of sidecar/ (docs/architecture.md), read from the source itself so that a change breaking it fails here:
 * - backup/, restore/, store/, targets/ and services/ import nothing from server/ (the HTTP layer only translates);
 * - no code outside store/ and targets/ asks `instanceof` of a target class (a kind's capabilities are asked
 *   through the Target contract instead);
 * - the extension never reads a target's kind from its URL's scheme (the API reports `kind`);
 * - a target kind is its folder plus its registry entry: no other source file, nor the build or the bench runner,
 *   imports or names it.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { KINDS } from '../../sidecar/store/kinds.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const sidecar = path.join(root, 'sidecar');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => path.join(e.parentPath, e.name));
}

/** Every module a file imports (static, type-only, re-exports and dynamic imports), as written. */
function importsOf(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?\bfrom\s*['"]([^'"]+)['"]/g)) out.push(m[1]!);
  for (const m of text.matchAll(/\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g)) out.push(m[1]!);
  for (const m of text.matchAll(/(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g)) out.push(m[1]!);
  return out;
}

/** The file's text without comments, so that a comment naming a class or a scheme is no finding. */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:])\/\/.*$/gm, '$1');
}

test('importsOf finds every kind of import (the check below cannot pass by missing them)', () => {
  const found = importsOf(
    "import a from '../server/a.js';\nimport type { B } from '../server/b.js';\nexport { c } from '../server/c.js';\nconst d = await import('../server/d.js');\nimport '../server/e.js';\nimport {\n  f,\n} from '../server/f.js';",
  );
  assert.deepEqual(found.sort(), ['../server/a.js', '../server/b.js', '../server/c.js', '../server/d.js', '../server/e.js', '../server/f.js']);
});

test('backup/, restore/, store/, targets/ and services/ import nothing from server/', () => {
  const server = path.join(sidecar, 'server') + path.sep;
  const wrong: string[] = [];
  for (const layer of ['backup', 'restore', 'store', 'targets', 'services'])
    for (const file of sources(path.join(sidecar, layer)))
      for (const spec of importsOf(readFileSync(file, 'utf8'))) {
        if (!spec.startsWith('.')) continue;
        const to = path.resolve(path.dirname(file), spec);
        if (to.startsWith(server)) wrong.push(`${path.relative(root, file)} imports ${spec}`);
      }
  assert.deepEqual(wrong, []);
});

test('no instanceof of a target class outside store/ and targets/', () => {
  // The classes that implement Target (every kind's, and the set), found in their folders.
  // A class extending one of them (S3Target and AzureTarget extend ObjectTarget) is one too.
  const classes = new Set<string>();
  const extending: Array<[string, string]> = [];
  for (const layer of ['store', 'targets'])
    for (const file of sources(path.join(sidecar, layer))) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/\bclass\s+(\w+)[^{]*\bimplements\b[^{]*\bTarget\b/g)) classes.add(m[1]!);
      for (const m of text.matchAll(/\bclass\s+(\w+)\s+extends\s+(\w+)/g)) extending.push([m[1]!, m[2]!]);
    }
  for (let grew = true; grew; ) {
    grew = false;
    for (const [c, base] of extending) if (classes.has(base) && !classes.has(c)) grew = Boolean(classes.add(c));
  }
  for (const c of ['HttpTarget', 'ObjectTarget', 'S3Target', 'AzureTarget', 'LocalStore', 'TargetSet']) assert.ok(classes.has(c), `${c} is found as a target class`);
  const inside = [path.join(sidecar, 'store') + path.sep, path.join(sidecar, 'targets') + path.sep];
  const wrong: string[] = [];
  for (const file of [...sources(sidecar), ...sources(path.join(root, 'extension'))]) {
    if (inside.some((d) => file.startsWith(d))) continue;
    for (const m of code(readFileSync(file, 'utf8')).matchAll(/\binstanceof\s+(\w+)/g))
      if (classes.has(m[1]!)) wrong.push(`${path.relative(root, file)}: instanceof ${m[1]}`);
  }
  assert.deepEqual(wrong, []);
});

test('the extension reads no target kind from a URL scheme', () => {
  // http(s) is how the extension reaches every sidecar; the schemes of the other kinds are the registry's business.
  const schemes = KINDS.flatMap((k) => k.schemes).filter((s) => s !== 'http' && s !== 'https');
  assert.ok(schemes.includes('s3'));
  const wrong: string[] = [];
  for (const file of sources(path.join(root, 'extension'))) {
    const text = code(readFileSync(file, 'utf8'));
    for (const s of schemes) if (text.includes(`${s}://`) || text.includes(`'${s}:`)) wrong.push(`${path.relative(root, file)} names ${s}://`);
  }
  assert.deepEqual(wrong, []);
});

test('a target kind is its folder and its registry entry: nothing else imports or names it', () => {
  // Each kind's folder, read from the registry's own imports (`./azure/kind.js`).
  const registry = path.join(sidecar, 'store', 'kinds.ts');
  const folders = importsOf(readFileSync(registry, 'utf8'))
    .map((s) => /^\.\/([^/]+)\/kind\.js$/.exec(s)?.[1])
    .filter((f): f is string => f !== undefined);
  assert.equal(folders.length, KINDS.length, 'every kind of the registry has its folder');
  // The sidecar is built on two of them: the local store is what a sidecar with --store serves, and store/http/ holds
  // the client of the sidecar API that the CLI and the routes speak. Every other kind is its folder and nothing more.
  const own = folders.filter((f) => f !== 'local' && f !== 'http');
  assert.ok(own.includes('s3') && own.includes('azure'));
  // Druid's own S3 deep storage (s3_zip loadSpecs, written by a cluster restore) is not a target but the same service:
  // it is written with the S3 kind's client, SDK loader and bucket-name rule, and nothing else of that folder.
  const s3Service = new Map([[path.join(sidecar, 'cluster', 'restore', 'deepStorage.ts'), ['client.js', 'sdk.js', 'url.js']]]);
  const wrong: string[] = [];
  const build = path.join(root, 'scripts', 'build.mjs');
  const benchRunner = path.join(root, 'bench', 'run.ts');
  for (const file of [...sources(sidecar), build, benchRunner]) {
    if (file === registry) continue;
    const text = readFileSync(file, 'utf8');
    for (const folder of own) {
      const dir = path.join(sidecar, 'store', folder) + path.sep;
      if (file.startsWith(dir)) continue;
      for (const spec of importsOf(text)) {
        const to = path.resolve(path.dirname(file), spec);
        if (folder === 's3' && s3Service.get(file)?.some((f) => to === path.join(dir, f))) continue;
        if (spec.startsWith('.') && to.startsWith(dir)) wrong.push(`${path.relative(root, file)} imports ${spec}`);
      }
    }
  }
  // The build and the bench runner find what a kind brings (store/<kind>/bundle.mjs, bench/<kind>.ts) by name.
  for (const file of [build, benchRunner]) {
    const text = code(readFileSync(file, 'utf8'));
    for (const k of KINDS.filter((k) => own.some((f) => k.schemes.includes(f) || k.name === f)))
      if (new RegExp(`\\b${k.name}\\b`, 'i').test(text)) wrong.push(`${path.relative(root, file)} names the ${k.name} kind`);
  }
  assert.deepEqual(wrong, []);
});
