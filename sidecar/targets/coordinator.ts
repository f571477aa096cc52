/**
 * Telling Druid about segments restored into deep storage: the Coordinator's
 * `POST /druid/coordinator/v1/datasources/{dataSource}/markUsed` with `{"segmentIds": [...]}`, one call per data
 * source, so the cluster loads them again. A dry run only says what would be marked.
 */
import axios from 'axios';
import { ANSWER_LIMITS } from '../util/limitedRead.js';
import { BackupError, messageOf } from '../errors.js';
import type { SidecarConfig } from '../config.js';
import { ALLOWED_TARGETS_KEY, isAllowed } from './allow.js';
import { parseTargetUrl } from './url.js';

const TIMEOUT_MS = 30_000;
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

/** Marks the segments used; never throws for the Coordinator's answer (the restore itself succeeded), reports it. */
export async function markUsed(plan: MarkUsedPlan, signal?: AbortSignal): Promise<MarkUsedResult> {
  const outcome: MarkUsedResult['outcome'] = {};
  for (const [ds, ids] of Object.entries(plan.segments)) {
    let changed = 0;
    try {
      for (let i = 0; i < ids.length; i += BATCH) {
        const res = await axios.post<{ numChangedSegments?: number }>(
          `${plan.coordinator}/druid/coordinator/v1/datasources/${encodeURIComponent(ds)}/markUsed`,
          { segmentIds: ids.slice(i, i + BATCH) },
          // The answer is a count: anything larger than a small answer is refused by axios as it arrives.
          { timeout: TIMEOUT_MS, signal, validateStatus: () => true, maxRedirects: 0, maxContentLength: ANSWER_LIMITS.small },
        );
        if (res.status < 200 || res.status >= 300)
          // Its status only: the answer's text is the Coordinator's, never put into our messages.
          throw new Error(`the Coordinator answered ${res.status}`);
        changed += typeof res.data?.numChangedSegments === 'number' ? res.data.numChangedSegments : 0;
      }
      outcome[ds] = { changed };
    } catch (e) {
      outcome[ds] = { error: messageOf(e) };
    }
  }
  return { ...plan, outcome };
}
