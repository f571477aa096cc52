/**
 * Telling Druid about segments restored into deep storage: the Coordinator's
 * `POST /druid/coordinator/v1/datasources/{dataSource}/markUsed` with `{"segmentIds": [...]}`, one call per data
 * source, so the cluster loads them again. A dry run only says what would be marked.
 */
import type { DruidAuth } from '../cluster/druidHttp.js';
import { druidCall, statusPhrase } from '../cluster/druidHttp.js';
import { ANSWER_LIMITS } from '../util/limitedRead.js';
import { BackupError, messageOf } from '../errors.js';
import type { SidecarConfig } from '../config.js';
import { ALLOWED_TARGETS_KEY, isAllowed } from './allow.js';
import { parseTargetUrl } from './url.js';

/** Segment ids per call: a Coordinator takes a JSON body of this many ids without trouble. */
const BATCH = 1000;

export interface MarkUsedPlan {
  coordinator: string;
  /** Segment ids to mark, by data source. */
  segments: Record<string, string[]>;
}

export interface MarkUsedResult extends MarkUsedPlan {
  /** Per data source: segments the Coordinator changed (its `numChangedSegments`), or the error. */
  outcome: Record<string, { changed?: number; error?: string }>;
}

/**
 * A Coordinator named in a request: an http(s) URL, and the configured druid.backup.coordinator or one the allow list
 * allows, so a caller cannot make the sidecar post to any server it likes (403 target_not_allowed, nothing sent).
 */
export function checkCoordinatorUrl(raw: string, where: string, config: Pick<SidecarConfig, 'coordinator' | 'allowedTargets'>): string {
  const u = parseTargetUrl(raw, where);
  if (u.scheme !== 'http' && u.scheme !== 'https') throw new BackupError('bad_request', `${where}: the Coordinator is an http(s):// URL`);
  if (u.url !== config.coordinator && !isAllowed(config.allowedTargets, u))
    throw new BackupError(
      'target_not_allowed',
      `${where}: ${u.url} is not the Coordinator of this node: set druid.backup.coordinator, or add it to ${ALLOWED_TARGETS_KEY} (--allowed-targets)`,
    );
  return u.url;
}

export function planMarkUsed(coordinator: string, segments: Array<{ segmentId: string; dataSource: string }>): MarkUsedPlan {
  const by: Record<string, string[]> = {};
  for (const s of segments) (by[s.dataSource] ??= []).push(s.segmentId);
  return { coordinator, segments: by };
}

/**
 * The credentials for a Coordinator: druid.backup.druid.* go to the configured Coordinator only; one a request names
 * through the allow list is another cluster, which gets none of this one's credentials.
 */
export function druidAuthFor(coordinator: string, config: Pick<SidecarConfig, 'coordinator' | 'druidAuth'>): DruidAuth | undefined {
  return coordinator === config.coordinator ? config.druidAuth : undefined;
}

/**
 * Marks the segments used (or, with `action: 'markUnused'`, unused: a cluster restore's rollback); never throws for
 * the Coordinator's answer (the restore itself succeeded), reports it. `headers`: X-Druid-Author and
 * X-Druid-Comment, so Druid's audit log says who and why.
 *
 * With `overlord`, the call goes to the Overlord's `/druid/indexer/v1/datasources/{ds}/{action}` first: since Druid
 * 31 the Coordinator's endpoint only forwards there, and Druid 33's forwarded markUsed fails with a 500 (the
 * Overlord, asked without an Accept header, finds no writer for its answer; seen on the test cluster). A 404 there
 * (an older Druid) falls back to the Coordinator's endpoint.
 */
export async function markUsed(
  plan: MarkUsedPlan,
  opts: { auth?: DruidAuth; signal?: AbortSignal; action?: 'markUsed' | 'markUnused'; headers?: Record<string, string>; overlord?: string } = {},
): Promise<MarkUsedResult> {
  const action = opts.action ?? 'markUsed';
  const outcome: MarkUsedResult['outcome'] = {};
  for (const [ds, ids] of Object.entries(plan.segments)) {
    let changed = 0;
    const urls = [
      ...(opts.overlord ? [{ url: `${opts.overlord}/druid/indexer/v1/datasources/${encodeURIComponent(ds)}/${action}`, who: 'the Overlord' }] : []),
      { url: `${plan.coordinator}/druid/coordinator/v1/datasources/${encodeURIComponent(ds)}/${action}`, who: 'the Coordinator' },
    ];
    try {
      for (let i = 0; i < ids.length; i += BATCH) {
        for (const [n, { url, who }] of urls.entries()) {
          // The answer is a count: anything larger than a small answer is refused as it arrives.
          const res = await druidCall({
            method: 'POST',
            url,
            body: { segmentIds: ids.slice(i, i + BATCH) },
            auth: opts.auth,
            ...(opts.headers ? { headers: opts.headers } : {}),
            signal: opts.signal,
            limit: ANSWER_LIMITS.small,
            what: `${who}'s ${action} answer`,
          });
          if (res.status === 404 && n < urls.length - 1) continue;
          // Its status only: the answer's text is Druid's, never put into our messages.
          if (res.status < 200 || res.status >= 300) throw new Error(`${who} answered ${statusPhrase(res)}`);
          changed += numChanged(res.text);
          break;
        }
      }
      outcome[ds] = { changed };
    } catch (e) {
      outcome[ds] = { error: messageOf(e) };
    }
  }
  return { ...plan, outcome };
}

function numChanged(text: string): number {
  try {
    const n = (JSON.parse(text) as { numChangedSegments?: unknown })?.numChangedSegments;
    return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : 0;
  } catch {
    return 0;
  }
}
