/**
 * Druid's metadata, read through Druid's own APIs for a snapshot (issue 21): what a rebuilt cluster needs besides its
 * segments. Each part is kept as the JSON text Druid answered, byte for byte (narrowed to the chosen data sources by
 * cutting whole elements out, and with secrets replaced in place), so that a rule or a compaction config compares
 * equal to what Druid returns and a number such as Long.MAX_VALUE survives. A part that cannot be read is named in
 * `errors` with its status; the others are still kept. Shapes as a Druid 33 cluster answers them:
 * ../shared/notes/druid-metadata.md.
 */
import type { Logger } from 'pino';
import { BackupError, messageOf } from '../errors.js';
import type { ClusterMetadata } from '../snapshot/model.js';
import { ANSWER_LIMITS } from '../util/limitedRead.js';
import type { DruidAuth } from './druidHttp.js';
import { druidCall, statusPhrase } from './druidHttp.js';
import type { JsonNode, Splice } from './jsonText.js';
import { applySplices, JsonTextError, member, parseJsonText } from './jsonText.js';
import { redactJsonText } from './redact.js';

export interface CaptureOptions {
  coordinator: string;
  /** Default: the Coordinator (a Coordinator running the Overlord serves its APIs too). */
  overlord?: string;
  /** The snapshot's Broker, when configured; its row counts are read by countRows (rows.ts), not here. */
  broker?: string;
  auth?: DruidAuth;
  /** Only these data sources' rules, compaction configs and supervisors (the default rules are always kept). */
  dataSources?: string[];
  signal?: AbortSignal;
  log: Logger;
}

/** The parts of ClusterMetadata read from Druid as JSON text. */
type TextPart = 'rules' | 'compaction' | 'coordinatorDynamicConfig' | 'overlordDynamicConfig' | 'supervisors' | 'lookups';

interface PartSpec {
  part: TextPart;
  server: 'coordinator' | 'overlord';
  path: string;
  /** What the answer must be. */
  shape: 'object' | 'array' | 'rules';
  limit: number;
  /** Statuses that mean "none" rather than an error (lookups never configured: 404). */
  none?: number[];
  /** An empty body means "none" (the Overlord's worker config when it was never set). */
  emptyIsNone?: boolean;
  /** Narrows the part to the chosen data sources. */
  narrow?: (root: JsonNode, keep: Set<string>, text: string) => Splice[];
}

/** How each part is narrowed to the chosen data sources (the others are cluster-wide). */
export const PART_NARROW = {
  rules: narrowRules,
  compaction: (root: JsonNode, keep: Set<string>, text: string) =>
    narrowArray(text, member(root, 'compactionConfigs'), (item) => stringMember(item, 'dataSource'), keep),
  supervisors: (root: JsonNode, keep: Set<string>, text: string) => narrowArray(text, root, supervisorDataSource, keep),
};

const PARTS: PartSpec[] = [
  { part: 'rules', server: 'coordinator', path: '/druid/coordinator/v1/rules', shape: 'rules', limit: ANSWER_LIMITS.manifest, narrow: PART_NARROW.rules },
  {
    part: 'compaction',
    server: 'coordinator',
    path: '/druid/coordinator/v1/config/compaction',
    shape: 'object',
    limit: ANSWER_LIMITS.manifest,
    narrow: PART_NARROW.compaction,
  },
  { part: 'coordinatorDynamicConfig', server: 'coordinator', path: '/druid/coordinator/v1/config', shape: 'object', limit: ANSWER_LIMITS.manifest },
  { part: 'overlordDynamicConfig', server: 'overlord', path: '/druid/indexer/v1/worker', shape: 'object', limit: ANSWER_LIMITS.manifest, emptyIsNone: true },
  {
    part: 'supervisors',
    server: 'overlord',
    path: '/druid/indexer/v1/supervisor?full',
    shape: 'array',
    limit: ANSWER_LIMITS.page,
    narrow: PART_NARROW.supervisors,
  },
  { part: 'lookups', server: 'coordinator', path: '/druid/coordinator/v1/lookups/config/all', shape: 'object', limit: ANSWER_LIMITS.page, none: [404] },
];

/** Served by the druid-backup extension on the Overlord (druid-extension/OffsetsResource.java). */
export const OFFSETS_PATH = '/druid-ext/druid-backup/v1/offsets';
/** Data sources per call, as the extension takes them. */
export const OFFSETS_BATCH = 1000;

/** Reads every part; never throws for what Druid answers (that goes to `errors`), only when aborted. */
export async function captureClusterMetadata(opts: CaptureOptions): Promise<ClusterMetadata> {
  const base = { coordinator: trimSlash(opts.coordinator), overlord: trimSlash(opts.overlord ?? opts.coordinator) };
  const keep = opts.dataSources ? new Set(opts.dataSources) : undefined;
  const meta: ClusterMetadata = { offsets: { captured: false }, redacted: [] };
  const errors: Record<string, string> = {};

  try {
    const status = await druidCall({
      method: 'GET',
      url: `${base.coordinator}/status`,
      auth: opts.auth,
      limit: ANSWER_LIMITS.manifest,
      what: "the Coordinator's /status",
      signal: opts.signal,
    });
    if (status.status !== 200) errors.druidVersion = statusPhrase(status);
    else {
      const version = stringMember(parseJsonText(status.text), 'version');
      if (version === undefined) errors.druidVersion = 'the answer has no "version"';
      else meta.druidVersion = version;
    }
  } catch (e) {
    if (opts.signal?.aborted) throw e;
    errors.druidVersion = messageOf(e);
  }

  for (const spec of PARTS) {
    try {
      const answer = await druidCall({
        method: 'GET',
        url: base[spec.server] + spec.path,
        auth: opts.auth,
        limit: spec.limit,
        what: `${spec.part} (${spec.path})`,
        signal: opts.signal,
      });
      if (spec.none?.includes(answer.status) || (spec.emptyIsNone && answer.status === 200 && answer.text.trim() === '')) {
        meta[spec.part] = null;
        continue;
      }
      if (answer.status !== 200) {
        errors[spec.part] = statusPhrase(answer) + (answer.status === 404 ? ' (the feature may not be enabled on this cluster)' : '');
        continue;
      }
      const { text, redacted } = keepPart(spec, answer.text, keep);
      meta[spec.part] = text;
      meta.redacted.push(...redacted);
    } catch (e) {
      if (opts.signal?.aborted) throw e;
      errors[spec.part] = messageOf(e);
    }
  }
  meta.offsets = await captureOffsets(base.overlord, offsetDataSources(meta.supervisors, opts.dataSources), opts);
  if (Object.keys(errors).length) {
    meta.errors = errors;
    opts.log.warn({ errors }, "some of Druid's metadata could not be read");
  }
  if (meta.redacted.length) opts.log.info({ redacted: meta.redacted }, 'values that look like secrets were replaced in the snapshot');
  return meta;
}

/** The data sources whose offsets are asked: the chosen ones, else those of the supervisors read. */
function offsetDataSources(supervisors: unknown, chosen: string[] | undefined): string[] {
  if (chosen) return chosen;
  if (typeof supervisors !== 'string') return [];
  const root = parseJsonText(supervisors);
  if (root.kind !== 'array') return [];
  return [...new Set(root.items.map(supervisorDataSource).filter((d): d is string => d !== undefined))];
}

/**
 * Committed stream offsets: no Druid HTTP API gives them, so the druid-backup extension on the Overlord reads them
 * in-process. Without it (404), or from an Overlord that does not lead, the snapshot says they were not captured and why.
 */
async function captureOffsets(overlord: string, dataSources: string[], opts: CaptureOptions): Promise<ClusterMetadata['offsets']> {
  if (dataSources.length === 0) return { captured: false, reason: 'no stream supervisor: there are no committed offsets to capture' };
  const out: Record<string, string | null> = {};
  try {
    for (let i = 0; i < dataSources.length; i += OFFSETS_BATCH) {
      const query = dataSources
        .slice(i, i + OFFSETS_BATCH)
        .map((d) => `dataSource=${encodeURIComponent(d)}`)
        .join('&');
      const answer = await druidCall({
        method: 'GET',
        url: `${overlord}${OFFSETS_PATH}?${query}`,
        auth: opts.auth,
        limit: ANSWER_LIMITS.page,
        what: 'the committed offsets',
        signal: opts.signal,
      });
      if (answer.status === 404)
        return {
          captured: false,
          reason: 'Druid has no HTTP API for committed stream offsets, and the druid-backup extension that reads them is not loaded on the Overlord',
        };
      if (answer.status === 503) return { captured: false, reason: 'the Overlord asked is not the leader (503): set druid.backup.overlord to the leader' };
      if (answer.status !== 200) return { captured: false, reason: `the Overlord answered ${statusPhrase(answer)}` };
      Object.assign(out, parseOffsets(answer.text));
    }
  } catch (e) {
    if (opts.signal?.aborted) throw e;
    return { captured: false, reason: messageOf(e) };
  }
  return { captured: true, dataSources: out };
}

/** `{"dataSources":{"ds": {...} | null}}`: each data source's committed metadata as the JSON text Druid wrote. */
export function parseOffsets(text: string): Record<string, string | null> {
  let root: JsonNode;
  try {
    root = parseJsonText(text);
  } catch {
    throw new BackupError('target_error', "the Overlord's committed offsets are not valid JSON");
  }
  const ds = member(root, 'dataSources');
  if (ds?.kind !== 'object') throw new BackupError('target_error', 'the Overlord\'s committed offsets have no "dataSources" object');
  const out: Record<string, string | null> = {};
  for (const m of ds.members) {
    if (m.value.kind !== 'object' && m.value.kind !== 'null')
      throw new BackupError('target_error', `the Overlord's committed offsets of ${JSON.stringify(m.key)} are not an object`);
    out[m.key] = m.value.kind === 'null' ? null : text.slice(m.value.start, m.value.end);
  }
  return out;
}

/** Validates one answer, narrows it to the chosen data sources and redacts it; the text otherwise as Druid sent it. */
export function keepPart(spec: Pick<PartSpec, 'part' | 'shape' | 'narrow'>, raw: string, keep?: Set<string>): { text: string; redacted: string[] } {
  let root: JsonNode;
  try {
    root = parseJsonText(raw);
  } catch (e) {
    throw new BackupError('target_error', `${spec.part}: Druid's answer is not valid JSON (${e instanceof JsonTextError ? e.message : messageOf(e)})`);
  }
  checkShape(spec, root);
  let text = raw;
  if (keep && spec.narrow) {
    const cut = spec.narrow(root, keep, raw);
    if (cut.length) text = applySplices(raw, cut);
  }
  const r = redactJsonText(text, spec.part);
  return { text: r.text, redacted: r.paths };
}

function checkShape(spec: Pick<PartSpec, 'part' | 'shape'>, root: JsonNode): void {
  const bad = (what: string) => new BackupError('target_error', `${spec.part}: Druid's answer is not ${what}`);
  if (spec.shape === 'array' && root.kind !== 'array') throw bad('a JSON list');
  if (spec.shape === 'object' && root.kind !== 'object') throw bad('a JSON object');
  if (spec.shape === 'rules') {
    if (root.kind !== 'object') throw bad('a JSON object of rules by data source');
    for (const m of root.members) if (m.value.kind !== 'array') throw bad(`a list of rules for ${JSON.stringify(m.key)}`);
  }
}

function stringMember(node: JsonNode | undefined, key: string): string | undefined {
  const v = node && member(node, key);
  return v?.kind === 'string' ? v.value : undefined;
}

/** The data source a supervisor ingests into: `spec.dataSchema.dataSource` (Kafka, Kinesis), else its `id`. */
export function supervisorDataSource(item: JsonNode): string | undefined {
  const spec = member(item, 'spec');
  const schema = spec && (member(spec, 'dataSchema') ?? member(member(spec, 'spec') ?? spec, 'dataSchema'));
  return stringMember(schema, 'dataSource') ?? stringMember(spec, 'dataSource') ?? stringMember(item, 'id');
}

/** The rules of the chosen data sources and the default ones. */
function narrowRules(root: JsonNode, keep: Set<string>, text: string): Splice[] {
  if (root.kind !== 'object') return [];
  const kept = root.members.filter((m) => m.key === '_default' || keep.has(m.key));
  if (kept.length === root.members.length) return [];
  return [{ start: root.start, end: root.end, text: `{${kept.map((m) => `${JSON.stringify(m.key)}:${text.slice(m.value.start, m.value.end)}`).join(',')}}` }];
}

/** The elements of a list that belong to the chosen data sources, each element's text as it was. */
function narrowArray(text: string, list: JsonNode | undefined, dataSourceOf: (item: JsonNode) => string | undefined, keep: Set<string>): Splice[] {
  if (list?.kind !== 'array') return [];
  const kept = list.items.filter((item) => {
    const ds = dataSourceOf(item);
    return ds !== undefined && keep.has(ds);
  });
  if (kept.length === list.items.length) return [];
  return [{ start: list.start, end: list.end, text: `[${kept.map((item) => text.slice(item.start, item.end)).join(',')}]` }];
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}
