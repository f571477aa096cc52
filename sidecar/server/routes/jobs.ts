import type { FastifyInstance } from 'fastify';
import { API_PREFIX } from '../../api.js';
import type { Job, JobState, JobType } from '../../api.js';
import { BackupError } from '../../errors.js';
import type { SidecarContext } from '../context.js';
import { JOB_ID_PATTERN } from '../../services/jobs.js';
import { commonErrors, jobSchema } from '../schemas.js';

const idParams = {
  type: 'object',
  required: ['id'],
  additionalProperties: false,
  properties: { id: { type: 'string', pattern: JOB_ID_PATTERN, maxLength: 64 } },
} as const;

export function register(app: FastifyInstance, ctx: SidecarContext): void {
  app.get<{ Querystring: { type?: JobType; state?: JobState; limit: number } }>(
    `${API_PREFIX}/jobs`,
    {
      schema: {
        summary: 'Jobs, newest first',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            type: { type: 'string', enum: ['backup', 'restore', 'verify', 'snapshot', 'prune', 'recovery'] },
            state: { type: 'string', enum: ['queued', 'running', 'succeeded', 'failed', 'cancelled'] },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          },
        },
        response: { 200: { type: 'object', properties: { items: { type: 'array', items: jobSchema }, total: { type: 'integer' } } }, ...commonErrors },
      },
    },
    async (req): Promise<{ items: Job[]; total: number }> => {
      const all = ctx.jobs.list({ type: req.query.type, state: req.query.state });
      return { items: all.slice(0, req.query.limit), total: all.length };
    },
  );

  app.get<{ Params: { id: string } }>(
    `${API_PREFIX}/jobs/:id`,
    { schema: { summary: 'A job with its progress and errors', params: idParams, response: { 200: jobSchema, ...commonErrors } } },
    async (req): Promise<Job> => {
      const job = ctx.jobs.get(req.params.id);
      if (!job) throw new BackupError('not_found', `no job ${req.params.id}`);
      return job;
    },
  );

  app.delete<{ Params: { id: string } }>(
    `${API_PREFIX}/jobs/:id`,
    {
      schema: {
        summary: 'Cancels a job; it ends as cancelled once its current segment stops',
        params: idParams,
        response: { 202: jobSchema, ...commonErrors },
      },
    },
    async (req, reply) => reply.code(202).send(ctx.jobs.cancel(req.params.id)),
  );
}
