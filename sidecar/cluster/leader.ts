/**
 * Whether a Coordinator is the leader: only the leader's cluster sidecar takes snapshots, so it asks before each
 * periodic one (`GET /druid/coordinator/v1/isLeader`: 200 `{"leader":true}`, 404 `{"leader":false}`).
 */
import { BackupError } from '../errors.js';
import { ANSWER_LIMITS } from '../util/limitedRead.js';
import type { DruidAuth } from './druidHttp.js';
import { druidCall, statusPhrase } from './druidHttp.js';

export async function isLeader(coordinator: string, auth?: DruidAuth, signal?: AbortSignal): Promise<boolean> {
  const answer = await druidCall({
    method: 'GET',
    url: `${coordinator.replace(/\/+$/, '')}/druid/coordinator/v1/isLeader`,
    auth,
    signal,
    limit: ANSWER_LIMITS.small,
    what: "the Coordinator's isLeader answer",
  });
  if (answer.status !== 200 && answer.status !== 404) throw new BackupError('target_error', `isLeader: the Coordinator answered ${statusPhrase(answer)}`);
  let leader: unknown;
  try {
    leader = (JSON.parse(answer.text) as { leader?: unknown })?.leader;
  } catch {
    leader = undefined;
  }
  if (typeof leader !== 'boolean' || leader !== (answer.status === 200))
    throw new BackupError('target_error', `isLeader: the Coordinator's answer (${statusPhrase(answer)}) does not say whether it leads`);
  return leader;
}
