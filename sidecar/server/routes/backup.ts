import type { FastifyInstance } from 'fastify';
import { API_PREFIX } from '../../api.js';
import type { BackupRequest, JobAccepted } from '../../api.js';
import { backupJob } from '../../backup/passive.js';
import { compileSelector } from '../../druid/selector.js';
import { BackupError, isBackupError, messageOf } from '../../errors.js';
import type { SidecarContext } from '../context.js';
import { commonErrors, errorSchema, jobAcceptedSchema, selectorProperties } from '../schemas.js';

/** How long the target may take to answer the reachability check before the job is refused. */
const CHECK_TIMEOUT_MS = 10_000;

export function register(app: FastifyInstance, ctx: SidecarContext): void {
  app.post<{ Body: BackupRequest }>(
    `${API_PREFIX}/backup`,
    {
      schema: {
        summary: 'Starts a passive backup job of the complete segments that match to a target: 202 {jobId}; 502 when the target cannot be reached',
        body: {
          type: 'object',
          required: ['target'],
          additionalProperties: false,
          properties: {
            target: { type: 'string', minLength: 1, maxLength: 2048, description: 'URL of the target sidecar, e.g. http://backup-host:8484' },
            ...selectorProperties,
          },
        },
        response: { 202: jobAcceptedSchema, 502: errorSchema, ...commonErrors },
      },
    },
    async (req, reply) => {
      const cache = ctx.cache;
      if (!cache || !ctx.state)
        throw new BackupError(
          'bad_request',
          'this sidecar watches no segment cache, so it has nothing to back up (start it with --config and the node runtime.properties)',
        );
      const body = req.body;
      const sel = compileSelector(body);
      const target = ctx.openTarget(body.target);
      try {
        await target.stats({ signal: AbortSignal.timeout(CHECK_TIMEOUT_MS) });
      } catch (e) {
        // Unreachable, or refused with a 4xx the target itself named (an S3 bucket that does not exist, refused credentials).
        if (isBackupError(e) && (e.code === 'target_unreachable' || (e.code === 'target_error' && e.status < 500))) throw e;
        throw new BackupError('target_error', `target ${target.url} cannot take backups: ${messageOf(e)}`);
      }
      const job = ctx.jobs.create({
        type: 'backup',
        request: { ...body },
        target: target.url,
        run: backupJob(body, sel, target, {
          cache,
          state: ctx.state,
          workers: ctx.config.workers,
          node: ctx.config.nodeName,
          metrics: ctx.metrics,
          log: ctx.log,
          activeTarget: ctx.active?.target.url,
        }),
      });
      const accepted: JobAccepted = { jobId: job.id };
      return reply.code(202).header('location', `${API_PREFIX}/jobs/${job.id}`).send(accepted);
    },
  );
}
