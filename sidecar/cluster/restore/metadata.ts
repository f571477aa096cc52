/**
 * The cluster-restore step "druid-metadata" (issue 22): Druid's own metadata put back from a snapshot through Druid's
 * APIs, each change with X-Druid-Author and X-Druid-Comment so that Druid's audit log says who and why.
 *
 * - Retention rules and compaction configs of the chosen data sources: set to the snapshot's (rules the snapshot does
 *   not hold are none: `[]`; a compaction config it does not hold is deleted). Each is posted as the JSON text Druid
 *   returned when the snapshot was taken, so it reads back identical.
 * - Cluster-wide settings, only when the whole cluster is restored (`clusterWide`): the default rules, the
 *   Coordinator's dynamic config, the Overlord's worker config, the compaction task slots, and lookups (initialised
 *   when the cluster never had any, then each missing lookup created).
 * - Supervisors of the chosen data sources that do not exist are re-created SUSPENDED, so that the operator decides
 *   when ingestion resumes.
 * - Committed stream offsets the snapshot recorded are written back after that, through the druid-backup extension on
 *   the leader Overlord (OFFSETS_PATH, Druid's own metadata-storage coordinator in-process), when they differ from
 *   the live ones and no running supervisor ingests into the data source (the extension refuses then, and so does
 *   the plan). Without the extension, the plan says what to reset the supervisor to by hand.
 * - What exists but differs and is not Druid's to overwrite from an old copy (a live supervisor, a live lookup whose
 *   version Druid would refuse to lower) is left alone, with a warning.
 * - Secrets: the snapshot holds REDACTED_MARKER where a secret was. A config that still holds one is never posted:
 *   it is skipped with a warning that names the JSON paths, unless the operator supplies every one of them
 *   (`secrets`, by the path the snapshot lists in `redacted`), in which case each goes in as a JSON string.
 * - A Druid version that differs from the snapshot's is a warning.
 * Compared as JSON with keys in any order and numbers as written; a plan shows a short diff. A second run plans nothing.
 */
import { BackupError, messageOf } from '../../errors.js';
import { quoteId } from '../../druid/paths.js';
import { REDACTED_MARKER } from '../../snapshot/model.js';
import { ANSWER_LIMITS } from '../../util/limitedRead.js';
import { druidCall, statusPhrase } from '../druidHttp.js';
import type { JsonNode, Splice } from '../jsonText.js';
import { applySplices, member, parseJsonText, pathStep } from '../jsonText.js';
import { OFFSETS_BATCH, OFFSETS_PATH, parseOffsets, supervisorDataSource } from '../metadata.js';
import type { ClusterRestoreContext, ClusterRestoreStep, PlanItem, StepPlan, StepResult } from './step.js';

export const METADATA_STEP = 'druid-metadata';

export interface MetadataStepOptions {
  /**
   * Also the cluster-wide settings (default rules, dynamic configs, compaction task slots, lookups). Default: when
   * every data source of the snapshot is chosen, i.e. the whole cluster is restored.
   */
  clusterWide?: boolean;
  /** Values of redacted secrets, by the JSON path the snapshot names (`ClusterMetadata.redacted`). */
  secrets?: Record<string, string>;
}

/** One change the plan found, and how to make it. */
interface Change {
  item: PlanItem;
  method: 'POST' | 'DELETE';
  server: 'coordinator' | 'overlord';
  path: string;
  body?: string;
}

/** A part of the snapshot's metadata: its JSON text parsed, or null (none), or undefined (not captured). */
interface Part {
  text: string;
  root: JsonNode;
}

function partOf(ctx: ClusterRestoreContext, name: 'rules' | 'compaction' | 'coordinatorDynamicConfig' | 'overlordDynamicConfig' | 'supervisors' | 'lookups'): Part | null | undefined {
  const v = ctx.metadata[name];
  if (v === null) return null;
  if (typeof v !== 'string') return undefined;
  try {
    return { text: v, root: parseJsonText(v) };
  } catch {
    throw new BackupError('target_error', `the snapshot's ${name} are not valid JSON`);
  }
}

/** JSON with object keys sorted and numbers as written: equal when Druid would read the same. */
export function canonical(node: JsonNode, text: string): string {
  switch (node.kind) {
    case 'object':
      return `{${[...node.members]
        .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
        .map((m) => `${JSON.stringify(m.key)}:${canonical(m.value, text)}`)
        .join(',')}}`;
    case 'array':
      return `[${node.items.map((i) => canonical(i, text)).join(',')}]`;
    case 'string':
      return JSON.stringify(node.value);
    default:
      return text.slice(node.start, node.end);
  }
}

/** A short diff of two objects: the top-level keys whose values differ. */
export function keysThatDiffer(now: JsonNode | undefined, nowText: string, then: JsonNode, thenText: string): string {
  if (!now) return 'none now';
  if (now.kind !== 'object' || then.kind !== 'object') return 'differs';
  const keys = new Set([...now.members.map((m) => m.key), ...then.members.map((m) => m.key)]);
  const differ = [...keys].filter((k) => {
    const a = member(now, k);
    const b = member(then, k);
    return !a || !b || canonical(a, nowText) !== canonical(b, thenText);
  });
  const shown = differ.slice(0, 5).join(', ') + (differ.length > 5 ? `, and ${differ.length - 5} more` : '');
  return `differs in ${shown}`;
}

function ruleTypes(node: JsonNode | undefined): string {
  if (node?.kind !== 'array' || !node.items.length) return 'no rules';
  return node.items.map((r) => (member(r, 'type') as { value?: string } | undefined)?.value ?? '?').join(', ');
}

/** The markers REDACTED_MARKER inside `node`, with their paths from the part's root (as `redacted` names them). */
function markersIn(root: JsonNode, base: string, within: JsonNode): Array<{ node: JsonNode; path: string }> {
  const out: Array<{ node: JsonNode; path: string }> = [];
  const walk = (n: JsonNode, path: string) => {
    if (n.end <= within.start || n.start >= within.end) return;
    if (n.kind === 'object') for (const m of n.members) walk(m.value, path + pathStep(m.key));
    else if (n.kind === 'array') n.items.forEach((item, i) => walk(item, path + pathStep(i)));
    else if (n.kind === 'string' && n.value === REDACTED_MARKER && n.start >= within.start && n.end <= within.end) out.push({ node: n, path });
  };
  walk(root, base);
  return out;
}

/**
 * The text of `node` (a config inside a part) ready to post: secrets supplied put in, more splices applied; or the
 * paths of the secrets still missing.
 */
function bodyOf(part: Part, base: string, node: JsonNode, secrets: Record<string, string>, extra: Splice[] = []): { text: string } | { missing: string[] } {
  const markers = markersIn(part.root, base, node);
  const missing = markers.filter((m) => secrets[m.path] === undefined).map((m) => m.path);
  if (missing.length) return { missing };
  const splices: Splice[] = [
    ...markers.map((m) => ({ start: m.node.start - node.start, end: m.node.end - node.start, text: JSON.stringify(secrets[m.path]) })),
    ...extra.map((s) => ({ ...s, start: s.start - node.start, end: s.end - node.start })),
  ];
  return { text: applySplices(part.text.slice(node.start, node.end), splices) };
}

/** The reason in an error answer (the extension's `{"error":{"message"}}`, Druid's `{"error": "..."}`), cut short. */
function reasonOf(text: string): string {
  let root: JsonNode;
  try {
    root = parseJsonText(text);
  } catch {
    return '';
  }
  const error = member(root, 'error');
  const message = error?.kind === 'object' ? member(error, 'message') : error;
  return message?.kind === 'string' ? `: ${message.value.slice(0, 300)}` : '';
}

function missingSecrets(what: string, paths: string[]): string {
  return `${what} is not restored: the snapshot holds redacted secrets at ${paths.join(', ')}; supply them (by these paths) and run again`;
}

/** Druid's answer as text; 404 as undefined when `none404`. */
async function read(ctx: ClusterRestoreContext, server: 'coordinator' | 'overlord', path: string, what: string, none404 = false): Promise<string | undefined> {
  const answer = await druidCall({
    method: 'GET',
    url: `${ctx[server].replace(/\/+$/, '')}${path}`,
    auth: ctx.auth,
    limit: ANSWER_LIMITS.page,
    what,
    signal: ctx.signal,
  });
  if (none404 && answer.status === 404) return undefined;
  if (answer.status !== 200) throw new BackupError('target_error', `${what}: Druid answered ${statusPhrase(answer)}`);
  return answer.text;
}

function parseLive(text: string, what: string): JsonNode {
  try {
    return parseJsonText(text);
  } catch {
    throw new BackupError('target_error', `${what}: Druid's answer is not valid JSON`);
  }
}

export function druidMetadataStep(options: MetadataStepOptions = {}): ClusterRestoreStep {
  const planned = new WeakMap<StepPlan, Change[]>();
  const secrets = options.secrets ?? {};

  async function plan(ctx: ClusterRestoreContext): Promise<StepPlan> {
    const changes: Change[] = [];
    const warnings: string[] = [];
    const chosen = new Set(ctx.dataSources);
    const clusterWide = options.clusterWide ?? ctx.snapshot.dataSources.every((d) => chosen.has(d.name));
    const meta = ctx.metadata;

    const status = parseLive((await read(ctx, 'coordinator', '/status', "the Coordinator's /status")) ?? '', "the Coordinator's /status");
    const version = (member(status, 'version') as { value?: string } | undefined)?.value;
    if (meta.druidVersion && version !== meta.druidVersion)
      warnings.push(`Druid ${version ?? '(unknown)'} runs now; the snapshot was taken on Druid ${meta.druidVersion}: configs are put back as that version wrote them`);
    for (const [part, why] of Object.entries(meta.errors ?? {})) warnings.push(`the snapshot has no ${part} (${why} when it was taken): not restored`);

    // Rules.
    const rules = partOf(ctx, 'rules');
    if (rules === undefined) {
      if (!meta.errors?.rules) warnings.push('the snapshot has no rules: not restored');
    } else if (rules) {
      const liveText = (await read(ctx, 'coordinator', '/druid/coordinator/v1/rules', 'the rules'))!;
      const live = parseLive(liveText, 'the rules');
      const names = [...new Set([...(clusterWide ? ['_default'] : []), ...[...chosen].sort()])];
      for (const ds of names) {
        const then = member(rules.root, ds);
        const now = member(live, ds);
        const thenCanon = then ? canonical(then, rules.text) : '[]';
        const nowCanon = now ? canonical(now, liveText) : '[]';
        if (thenCanon === nowCanon || (!then && ds === '_default')) continue;
        const body = then ? bodyOf(rules, 'rules', then, secrets) : { text: '[]' };
        if ('missing' in body) {
          warnings.push(missingSecrets(`the rules of ${quoteId(ds)}`, body.missing));
          continue;
        }
        changes.push({
          item: { action: 'set rules', subject: ds, detail: `now: ${ruleTypes(now)}; in the snapshot: ${ruleTypes(then)}` },
          method: 'POST',
          server: 'coordinator',
          path: `/druid/coordinator/v1/rules/${encodeURIComponent(ds)}`,
          body: body.text,
        });
      }
    }

    // Compaction configs.
    const compaction = partOf(ctx, 'compaction');
    if (compaction === undefined) {
      if (!meta.errors?.compaction) warnings.push('the snapshot has no compaction configs: not restored');
    } else if (compaction) {
      const liveText = (await read(ctx, 'coordinator', '/druid/coordinator/v1/config/compaction', 'the compaction configs'))!;
      const live = parseLive(liveText, 'the compaction configs');
      const byDs = (root: JsonNode) => {
        const m = new Map<string, JsonNode>();
        const list = member(root, 'compactionConfigs');
        if (list?.kind === 'array') for (const c of list.items) m.set((member(c, 'dataSource') as { value?: string } | undefined)?.value ?? '', c);
        return m;
      };
      const thenAll = byDs(compaction.root);
      const nowAll = byDs(live);
      for (const ds of [...chosen].sort()) {
        const then = thenAll.get(ds);
        const now = nowAll.get(ds);
        if (!then && !now) continue;
        if (then && now && canonical(then, compaction.text) === canonical(now, liveText)) continue;
        if (!then) {
          changes.push({
            item: { action: 'delete compaction config', subject: ds, detail: 'none in the snapshot' },
            method: 'DELETE',
            server: 'coordinator',
            path: `/druid/coordinator/v1/config/compaction/${encodeURIComponent(ds)}`,
          });
          continue;
        }
        const body = bodyOf(compaction, 'compaction', then, secrets);
        if ('missing' in body) {
          warnings.push(missingSecrets(`the compaction config of ${quoteId(ds)}`, body.missing));
          continue;
        }
        changes.push({
          item: { action: 'set compaction config', subject: ds, detail: keysThatDiffer(now, liveText, then, compaction.text) },
          method: 'POST',
          server: 'coordinator',
          path: '/druid/coordinator/v1/config/compaction',
          body: body.text,
        });
      }
      if (clusterWide) {
        const slots = (root: JsonNode, text: string) =>
          ['compactionTaskSlotRatio', 'maxCompactionTaskSlots'].map((k) => {
            const v = member(root, k);
            return v?.kind === 'number' ? text.slice(v.start, v.end) : undefined;
          });
        const [ratio, max] = slots(compaction.root, compaction.text);
        const [nowRatio, nowMax] = slots(live, liveText);
        if (ratio !== undefined && max !== undefined && (ratio !== nowRatio || max !== nowMax))
          changes.push({
            item: { action: 'set compaction task slots', subject: 'compaction', detail: `ratio ${nowRatio} → ${ratio}, max ${nowMax} → ${max}` },
            method: 'POST',
            server: 'coordinator',
            path: `/druid/coordinator/v1/config/compaction/taskslots?ratio=${encodeURIComponent(ratio)}&max=${encodeURIComponent(max)}`,
          });
        for (const k of ['compactionPolicy', 'useSupervisors', 'engine']) {
          const a = member(compaction.root, k);
          const b = member(live, k);
          if (a && (!b || canonical(a, compaction.text) !== canonical(b, liveText)))
            warnings.push(`the cluster's compaction ${k} differs from the snapshot's: set it on the Overlord's compaction config by hand`);
        }
      }
    }

    if (clusterWide) {
      // Dynamic configs: each posted whole.
      for (const [name, server, path, what] of [
        ['coordinatorDynamicConfig', 'coordinator', '/druid/coordinator/v1/config', "the Coordinator's dynamic config"],
        ['overlordDynamicConfig', 'overlord', '/druid/indexer/v1/worker', "the Overlord's worker config"],
      ] as const) {
        const part = partOf(ctx, name);
        if (!part) continue;
        const liveText = (await read(ctx, server, path, what)) ?? '';
        const live = liveText.trim() === '' ? undefined : parseLive(liveText, what);
        if (live && canonical(live, liveText) === canonical(part.root, part.text)) continue;
        const body = bodyOf(part, name, part.root, secrets);
        if ('missing' in body) {
          warnings.push(missingSecrets(what, body.missing));
          continue;
        }
        changes.push({
          item: { action: 'set dynamic config', subject: name, detail: keysThatDiffer(live, liveText, part.root, part.text) },
          method: 'POST',
          server,
          path,
          body: body.text,
        });
      }
      planLookups(await lookupsNow(ctx), ctx, changes, warnings);
    }

    await planSupervisors(ctx, chosen, changes, warnings);
    await planOffsets(ctx, chosen, changes, warnings);

    const p: StepPlan = { step: METADATA_STEP, done: changes.length === 0, items: changes.map((c) => c.item), warnings, refusals: [] };
    planned.set(p, changes);
    return p;
  }

  async function lookupsNow(ctx: ClusterRestoreContext): Promise<{ text: string; root: JsonNode } | undefined> {
    const text = await read(ctx, 'coordinator', '/druid/coordinator/v1/lookups/config/all', 'the lookups', true);
    return text === undefined ? undefined : { text, root: parseLive(text, 'the lookups') };
  }

  function planLookups(live: { text: string; root: JsonNode } | undefined, ctx: ClusterRestoreContext, changes: Change[], warnings: string[]): void {
    const lookups = partOf(ctx, 'lookups');
    if (!lookups || lookups.root.kind !== 'object') return;
    const wanted = lookups.root.members.flatMap((tier) => (tier.value.kind === 'object' ? tier.value.members.map((l) => ({ tier: tier.key, name: l.key, spec: l.value })) : []));
    if (!wanted.length) return;
    if (!live)
      changes.push({
        item: { action: 'initialise lookups', subject: 'lookups', detail: 'this cluster has never had lookups' },
        method: 'POST',
        server: 'coordinator',
        path: '/druid/coordinator/v1/lookups/config',
        body: '{}',
      });
    for (const l of wanted) {
      const tier = live ? member(live.root, l.tier) : undefined;
      const now = tier ? member(tier, l.name) : undefined;
      if (now) {
        if (canonical(now, live!.text) !== canonical(l.spec, lookups.text))
          warnings.push(`lookup ${quoteId(l.name)} of tier ${quoteId(l.tier)} exists and differs from the snapshot's: left as it is (Druid only takes a newer version)`);
        continue;
      }
      const body = bodyOf(lookups, 'lookups', l.spec, secrets);
      if ('missing' in body) {
        warnings.push(missingSecrets(`lookup ${quoteId(l.name)} of tier ${quoteId(l.tier)}`, body.missing));
        continue;
      }
      changes.push({
        item: { action: 'create lookup', subject: `${l.tier}/${l.name}` },
        method: 'POST',
        server: 'coordinator',
        path: `/druid/coordinator/v1/lookups/config/${encodeURIComponent(l.tier)}/${encodeURIComponent(l.name)}`,
        body: body.text,
      });
    }
  }

  async function planSupervisors(ctx: ClusterRestoreContext, chosen: Set<string>, changes: Change[], warnings: string[]): Promise<void> {
    const supervisors = partOf(ctx, 'supervisors');
    if (!supervisors || supervisors.root.kind !== 'array') return;
    const mine = supervisors.root.items.filter((s) => chosen.has(supervisorDataSource(s) ?? ''));
    if (!mine.length) return;
    const liveText = (await read(ctx, 'overlord', '/druid/indexer/v1/supervisor', 'the supervisors'))!;
    let live: unknown;
    try {
      live = JSON.parse(liveText);
    } catch {
      live = undefined;
    }
    if (!Array.isArray(live) || !live.every((x) => typeof x === 'string')) throw new BackupError('target_error', "the Overlord's supervisors are not a list of ids");
    const exists = new Set(live as string[]);
    const offsets = ctx.metadata.offsets;
    for (const s of supervisors.root.items.filter((x) => mine.includes(x))) {
      const id = (member(s, 'id') as { value?: string } | undefined)?.value;
      const spec = member(s, 'spec');
      const ds = supervisorDataSource(s)!;
      if (!id || spec?.kind !== 'object') {
        warnings.push(`a supervisor of ${quoteId(ds)} in the snapshot has no id or spec: not restored`);
        continue;
      }
      if (exists.has(id)) continue;
      // Re-created suspended: the operator resumes ingestion when the restore is checked.
      const flag = member(spec, 'suspended');
      const suspend: Splice = flag ? { start: flag.start, end: flag.end, text: 'true' } : { start: spec.start + 1, end: spec.start + 1, text: `"suspended":true${spec.members.length ? ',' : ''}` };
      const body = bodyOf(supervisors, 'supervisors', spec, secrets, [suspend]);
      if ('missing' in body) {
        warnings.push(missingSecrets(`supervisor ${quoteId(id)}`, body.missing));
        continue;
      }
      const committed = offsets.dataSources?.[ds];
      if (!offsets.captured)
        warnings.push(`supervisor ${quoteId(id)}: its committed offsets were not captured (${offsets.reason ?? 'unknown reason'}); it resumes where its ioConfig says`);
      else if (committed === null || committed === undefined) warnings.push(`supervisor ${quoteId(id)}: the snapshot recorded no committed offsets for ${quoteId(ds)}`);
      changes.push({
        item: { action: 'create supervisor (suspended)', subject: id, detail: `ingests into ${ds}` },
        method: 'POST',
        server: 'overlord',
        path: '/druid/indexer/v1/supervisor',
        body: body.text,
      });
    }
  }

  /**
   * The snapshot's committed offsets of the chosen data sources that differ from the live ones, written after the
   * supervisors are re-created (suspended, so they never block it). A data source with a running supervisor is left
   * alone: the extension refuses to write under it, and the plan says so first.
   */
  async function planOffsets(ctx: ClusterRestoreContext, chosen: Set<string>, changes: Change[], warnings: string[]): Promise<void> {
    const offsets = ctx.metadata.offsets;
    if (!offsets.captured || !offsets.dataSources) return;
    const wanted = [...chosen].sort().flatMap((ds) => {
      const v = offsets.dataSources![ds];
      if (typeof v !== 'string') return [];
      let root: JsonNode | undefined;
      try {
        root = parseJsonText(v);
      } catch {
        root = undefined;
      }
      if (root?.kind !== 'object') throw new BackupError('target_error', `the snapshot's committed offsets of ${quoteId(ds)} are not a JSON object`);
      if (member(root, 'type')?.kind !== 'string') {
        // Kept by an extension that wrote them without their type: Druid cannot read them back.
        warnings.push(
          `the committed offsets of ${quoteId(ds)} are not written back: the snapshot holds them without their "type" (taken with an older druid-backup extension); reset the supervisor by hand to ${v.slice(0, 500)}`,
        );
        return [];
      }
      return [{ ds, text: v, root }];
    });
    const live: Record<string, string | null> = {};
    for (let i = 0; i < wanted.length; i += OFFSETS_BATCH) {
      const batch = wanted.slice(i, i + OFFSETS_BATCH);
      const answer = await druidCall({
        method: 'GET',
        url: `${ctx.overlord.replace(/\/+$/, '')}${OFFSETS_PATH}?${batch.map((w) => `dataSource=${encodeURIComponent(w.ds)}`).join('&')}`,
        auth: ctx.auth,
        limit: ANSWER_LIMITS.page,
        what: 'the committed offsets',
        signal: ctx.signal,
      });
      if (answer.status === 404 || answer.status === 503) {
        const why =
          answer.status === 404
            ? 'the druid-backup extension that writes them is not loaded on the Overlord'
            : 'the Overlord asked is not the leader (503): set druid.backup.overlord to the leader';
        for (const w of wanted)
          warnings.push(
            `the committed offsets of ${quoteId(w.ds)} are not written back: ${why}; before resuming its supervisor, reset it to the snapshot's (POST /druid/indexer/v1/supervisor/{id}/resetOffsets with ${w.text.slice(0, 500)})`,
          );
        return;
      }
      if (answer.status !== 200) throw new BackupError('target_error', `the committed offsets: the Overlord answered ${statusPhrase(answer)}`);
      Object.assign(live, parseOffsets(answer.text));
    }
    const differ = wanted.filter((w) => {
      const now = live[w.ds];
      return typeof now !== 'string' || canonical(parseJsonText(now), now) !== canonical(w.root, w.text);
    });
    if (!differ.length) return;
    const running = await runningSupervisors(ctx, new Set(differ.map((w) => w.ds)));
    for (const w of differ) {
      const ids = running.get(w.ds) ?? [];
      if (ids.length) {
        warnings.push(
          `the committed offsets of ${quoteId(w.ds)} are not written back: supervisor ${ids.map(quoteId).join(', ')} is running on it and would overwrite them; suspend it and run again`,
        );
        continue;
      }
      const now = live[w.ds];
      changes.push({
        item: { action: 'write committed offsets', subject: w.ds, detail: `now: ${typeof now === 'string' ? now.slice(0, 200) : 'none'}; in the snapshot: ${w.text.slice(0, 200)}` },
        method: 'POST',
        server: 'overlord',
        path: OFFSETS_PATH,
        body: `{"dataSource":${JSON.stringify(w.ds)},"metadata":${w.text}}`,
      });
    }
  }

  /** The live supervisors that are not suspended, by the data source they ingest into. */
  async function runningSupervisors(ctx: ClusterRestoreContext, dataSources: Set<string>): Promise<Map<string, string[]>> {
    const text = (await read(ctx, 'overlord', '/druid/indexer/v1/supervisor?full', 'the supervisors'))!;
    const root = parseLive(text, 'the supervisors');
    if (root.kind !== 'array') throw new BackupError('target_error', "the Overlord's supervisors are not a list");
    const out = new Map<string, string[]>();
    for (const item of root.items) {
      const ds = supervisorDataSource(item);
      const id = member(item, 'id');
      if (!ds || !dataSources.has(ds) || id?.kind !== 'string') continue;
      const spec = member(item, 'spec');
      const suspended = [member(item, 'suspended'), spec && member(spec, 'suspended')].some((v) => v?.kind === 'true');
      if (!suspended) (out.get(ds) ?? out.set(ds, []).get(ds)!).push(id.value);
    }
    return out;
  }

  async function run(ctx: ClusterRestoreContext, p: StepPlan, progress: (item: PlanItem) => void): Promise<StepResult> {
    const result: StepResult = { step: METADATA_STEP, items: [] };
    const changes = planned.get(p) ?? planned.get((p = await plan(ctx)))!;
    for (const c of changes) {
      progress(c.item);
      try {
        const answer = await druidCall({
          method: c.method,
          url: `${ctx[c.server].replace(/\/+$/, '')}${c.path}`,
          auth: ctx.auth,
          ...(c.body !== undefined ? { body: c.body } : {}),
          headers: { 'X-Druid-Author': ctx.author, 'X-Druid-Comment': ctx.comment },
          limit: ANSWER_LIMITS.small,
          what: `Druid's answer to ${c.item.action} ${c.item.subject}`,
          signal: ctx.signal,
        });
        if (answer.status < 200 || answer.status >= 300) throw new BackupError('target_error', `Druid answered ${statusPhrase(answer)}${reasonOf(answer.text)}`);
        result.items.push({ ...c.item, outcome: 'done' });
      } catch (e) {
        if (ctx.signal?.aborted) throw e;
        result.items.push({ ...c.item, outcome: 'failed', error: messageOf(e) });
      }
    }
    return result;
  }

  return { name: METADATA_STEP, plan, run };
}
