/**
 * Crash trials of prune on S3 (crash-prune-trial.ts says what each trial does and checks): a bucket on VersityGW,
 * pruned by a sidecar configured with it (`POST /data/v1/store/prune {"target": "s3://…"}`). The other node uploads
 * and the restore reads the bucket directly, as nodes do, so they go on while the pruner is dead. The bucket is
 * re-read from VersityGW's files, apart from the sidecar: every manifest's files hashing to it, no segment's files
 * without a manifest, no removal record left.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { Manifest } from '../../sidecar/store/manifest.js';
import { encodeName } from '../../sidecar/store/object/layout.js';
import { S3Target } from '../../sidecar/store/s3/target.js';
import { runCli } from '../helpers/cli.js';
import { newToken, startSidecar } from '../helpers/sidecar.js';
import type { VersityGw } from '../helpers/versitygw.js';
import { requireVersityGw, startVersityGw } from '../helpers/versitygw.js';
import { after, before } from 'node:test';
import { PRUNE_ENV, crashPruneTrials, log } from './crash-prune-trial.js';

requireVersityGw();

const PREFIX = 'backups';

/** The bucket as VersityGW stores it (`{root}/{bucket}/{key}`), read without the sidecar. */
function checkBucket(dir: string): { ids: Set<string>; problems: string[] } {
  const ids = new Set<string>();
  const problems: string[] = [];
  const manifests = path.join(dir, 'manifests');
  const segments = path.join(dir, 'segments');
  const withManifest = new Set<string>();
  for (const name of existsSync(manifests) ? readdirSync(manifests) : []) {
    let m: Manifest;
    try {
      m = JSON.parse(readFileSync(path.join(manifests, name), 'utf8')) as Manifest;
    } catch (e) {
      problems.push(`manifests/${name}: unreadable (${(e as Error).message})`);
      continue;
    }
    if (`${encodeName(m.segmentId)}.json` !== name) problems.push(`manifests/${name}: names another segment (${m.segmentId})`);
    ids.add(m.segmentId);
    withManifest.add(encodeName(m.segmentId));
    const data = path.join(segments, encodeName(m.segmentId), encodeName(m.sources[0]!.node));
    for (const f of m.files) {
      const file = path.join(data, f.name);
      if (!existsSync(file)) problems.push(`${m.segmentId}/${f.name}: missing`);
      else if (createHash('sha256').update(readFileSync(file)).digest('hex') !== f.sha256) problems.push(`${m.segmentId}/${f.name}: damaged`);
    }
  }
  for (const name of existsSync(segments) ? readdirSync(segments) : [])
    if (!withManifest.has(name)) problems.push(`segments/${name}: files without a manifest (a half-removed segment)`);
  const removing = path.join(dir, 'prune', 'removing');
  for (const name of existsSync(removing) ? readdirSync(removing) : []) problems.push(`prune/removing/${name}: a removal left unfinished`);
  return { ids, problems };
}

let gw: VersityGw;
let n = 0;
before(async () => {
  gw = await startVersityGw();
  Object.assign(process.env, gw.env);
});
after(async () => {
  await gw?.close();
});

crashPruneTrials(
  'S3',
  async () => {
    const bucket = `dbk-crashprune-${++n}`;
    await gw.createBucket(bucket);
    const url = `s3://${bucket}/${PREFIX}`;
    const token = newToken();
    const opened: S3Target[] = [];
    const open = (node: string) => {
      const t = S3Target.open(url, { log, node, settings: { endpoint: gw.endpoint } });
      opened.push(t);
      return t;
    };
    return {
      direct: open('h1'),
      // The cluster sidecar, which prunes the buckets it is configured with; it takes no snapshot of its own here.
      start: (coordinator, port) =>
        startSidecar(['--coordinator', coordinator, '--target', url, '--node-name', 'pruner'], {
          token,
          env: { ...gw.env, ...PRUNE_ENV, DRUID_BACKUP_SNAPSHOT_PERIOD: 'PT0S' },
          ...(port ? { port } : {}),
        }),
      pruneBody: { target: url },
      reach: () => open('h2'),
      throughPruner: false,
      oldLeft: () => {
        const m = path.join(gw.root, bucket, PREFIX, 'manifests');
        return existsSync(m) ? readdirSync(m).filter((n) => n.endsWith('_v1.json')).length : 0;
      },
      // A removal's first step in a bucket is its record (prune/removing/{id}), before its manifest goes.
      sweeping: () =>
        existsSync(path.join(gw.root, bucket, PREFIX, 'prune', 'removing')) && readdirSync(path.join(gw.root, bucket, PREFIX, 'prune', 'removing')).length > 0,
      check: async () => checkBucket(path.join(gw.root, bucket, PREFIX)),
      verify: async () => {
        const r = await runCli(['verify', '--target', url], { env: gw.env });
        return { status: r.code, output: r.stdout + r.stderr };
      },
      close: async () => {
        for (const t of opened) t.close();
      },
    };
  },
  { old: 150, newUploads: 20, killWithinMs: 3000 },
);
