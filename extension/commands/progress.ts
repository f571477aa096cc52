/**
 * Follows one or more jobs of the sidecars in a progress notification that can be cancelled: it polls each job,
 * shows segments and bytes done, and on Cancel asks every node to cancel (DELETE /data/v1/jobs/{id}) and waits
 * for the jobs to stop.
 */
import * as vscode from 'vscode';
import type { Job } from '../../sidecar/api.js';
import type { NodeEntry } from '../cluster.js';
import { isJobActive, jobProgress } from '../tree/rows.js';
import { errorText, type ExtensionState } from './context.js';

export interface StartedJob {
  node: NodeEntry;
  jobId: string;
}

export interface JobsOutcome {
  jobs: Array<{ node: NodeEntry; job: Job }>;
  cancelled: boolean;
}

function sumProgress(jobs: Job[]): Job['progress'] {
  const p = { segmentsTotal: 0, segmentsDone: 0, segmentsSkipped: 0, segmentsFailed: 0, bytesTotal: 0, bytesDone: 0 } as Job['progress'];
  for (const j of jobs) {
    p.segmentsTotal += j.progress.segmentsTotal;
    p.segmentsDone += j.progress.segmentsDone;
    p.segmentsSkipped += j.progress.segmentsSkipped;
    p.segmentsFailed += j.progress.segmentsFailed;
    p.bytesTotal += j.progress.bytesTotal;
    p.bytesDone += j.progress.bytesDone;
    p.current ??= j.progress.current;
  }
  return p;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function followJobs(ext: ExtensionState, title: string, started: StartedJob[]): Thenable<JobsOutcome> {
  return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, async (progress, token) => {
    const latest = new Map<string, Job>();
    let cancelled = false;
    let lastPct = 0;
    const cancelAll = async () => {
      for (const s of started) {
        const j = latest.get(s.jobId);
        if (j && !isJobActive(j)) continue;
        try {
          await s.node.client.cancelJob(s.jobId);
          ext.output.info(`cancel asked for job ${s.jobId} on ${s.node.url}`);
        } catch (e) {
          ext.output.error(`cancelling job ${s.jobId} on ${s.node.url}: ${errorText(e)}`);
        }
      }
    };
    token.onCancellationRequested(() => {
      cancelled = true;
      void cancelAll();
    });
    let failures = 0;
    for (;;) {
      try {
        for (const s of started) {
          const known = latest.get(s.jobId);
          if (known && !isJobActive(known)) continue;
          const j = await s.node.client.job(s.jobId);
          latest.set(s.jobId, j);
          ext.cluster.jobSeen(s.node.url, j);
        }
        failures = 0;
      } catch (e) {
        // A node that stops answering for a while should not end the notification at once.
        if (++failures >= 5) throw e;
      }
      const jobs = [...latest.values()];
      if (jobs.length === started.length && jobs.every((j) => !isJobActive(j))) break;
      if (jobs.length) {
        const p = sumProgress(jobs);
        const fake = { ...jobs[0]!, progress: p };
        const done = p.segmentsDone + p.segmentsSkipped + p.segmentsFailed;
        const pct = p.bytesTotal > 0 ? (100 * p.bytesDone) / p.bytesTotal : p.segmentsTotal > 0 ? (100 * done) / p.segmentsTotal : 0;
        progress.report({
          increment: Math.max(0, pct - lastPct),
          message: `${cancelled ? 'cancelling… ' : ''}${jobProgress(fake)}${p.current ? ` · ${p.current}` : ''}`,
        });
        lastPct = Math.max(lastPct, pct);
      }
      await sleep(ext.settings().jobPollMs);
    }
    return {
      jobs: started.map((s) => ({ node: s.node, job: latest.get(s.jobId)! })),
      cancelled: cancelled || [...latest.values()].some((j) => j.state === 'cancelled'),
    };
  });
}

/** One line about how the jobs ended: "3 restored, 1 skipped", or the first errors. */
export function outcomeText(o: JobsOutcome, verb: string): { ok: boolean; text: string } {
  const jobs = o.jobs.map((x) => x.job);
  const p = sumProgress(jobs);
  const failed = jobs.filter((j) => j.state === 'failed');
  const parts = [`${p.segmentsDone} ${verb}`];
  if (p.segmentsSkipped) parts.push(`${p.segmentsSkipped} skipped (already in place)`);
  if (p.segmentsFailed) parts.push(`${p.segmentsFailed} failed`);
  if (o.cancelled) return { ok: false, text: `cancelled after ${parts.join(', ')}` };
  if (failed.length || p.segmentsFailed) {
    const errors = jobs.flatMap((j) => j.errors).slice(0, 3);
    return {
      ok: false,
      text: `${parts.join(', ')}${errors.length ? `: ${errors.map((e) => (e.segmentId ? `${e.segmentId}: ${e.message}` : e.message)).join('; ')}` : ''}`,
    };
  }
  return { ok: true, text: parts.join(', ') };
}
