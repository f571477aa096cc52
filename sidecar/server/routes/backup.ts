import type { FastifyInstance } from 'fastify';
import { API_PREFIX } from '../../api.js';
import type { BackupRequest, JobAccepted } from '../../api.js';
import { backupJob } from '../../backup/passive.js';
import { compileSelector } from '../../druid/selector.js';
import { BackupError } from '../../errors.js';
import type { SidecarContext } from '../context.js';
import { checkTarget, resolveTarget } from '../../targets/resolve.js';
import { commonErrors, copiesSchema, errorSchema, jobAcceptedSchema, maxBytesPerSecondSchema, selectorProperties, targetFieldSchema } from '../schemas.js';

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
          additionalProperties: false,
          properties: {
            target: {
              ...targetFieldSchema,
              description:
                'URL of the target sidecar, e.g. http://backup-host:8484; or a list of URLs or {"url","zone","weight"} (each segment kept on `copies` of them); left out: the targets this sidecar is configured with',
            },
            copies: copiesSchema,
            maxBytesPerSecond: maxBytesPerSecondSchema,
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
      const limit = ctx.bandwidth.limit('backup', body.maxBytesPerSecond);
      const target = resolveTarget(ctx, body.target, body.copies);
      await checkTarget(target, Array.isArray(body.target), CHECK_TIMEOUT_MS);
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
          limit,
        }),
      });
      const accepted: JobAccepted = { jobId: job.id };
      return reply.code(202).header('location', `${API_PREFIX}/jobs/${job.id}`).send(accepted);
    },
  );
}
