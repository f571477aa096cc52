/**
 * `POST /data/v1/restore`: restores segments from a target into this node's cache, its local deep storage or a
 * directory. A dry run answers 200 with the plan and changes nothing; otherwise 202 with the job. The request
 * is checked and the restore planned (catalog, what is present, room) before answering, so bad input and a
 * restore that does not fit are refused at once, before any byte is written.
 */
import type { FastifyInstance } from 'fastify';
import { API_PREFIX } from '../../api.js';
import type { RestoreRequest } from '../../api.js';
import type { SidecarContext } from '../context.js';
import { commonErrors, errorSchema, jobAcceptedSchema, maxBytesPerSecondSchema, selectorProperties, targetFieldSchema } from '../schemas.js';

const open = { additionalProperties: true } as const;

export const restorePlanSchema = {
  type: 'object',
  ...open,
  properties: {
    target: { type: 'string' },
    destination: { type: 'string' },
    segments: {
      type: 'array',
      items: {
        type: 'object',
        ...open,
        properties: {
          segmentId: { type: 'string' },
          size: { type: 'integer' },
          action: { type: 'string', enum: ['restore', 'skip', 'overwrite'] },
          reason: { type: 'string' },
          path: { type: 'string' },
        },
      },
    },
    refused: {
      type: 'array',
      description: 'segments refused before any byte is written (a bad manifest, an id or loadSpec naming no path inside its root), each with why',
      items: { type: 'object', ...open, properties: { segmentId: { type: 'string' }, reason: { type: 'string' } } },
    },
    markUsed: { type: 'object', ...open, properties: { coordinator: { type: 'string' }, segments: { type: 'object', ...open } } },
    snapshot: {
      type: 'object',
      ...open,
      properties: {
        id: { type: 'string' },
        missing: { type: 'array', items: { type: 'object', ...open, properties: { segmentId: { type: 'string' }, reason: { type: 'string' } } } },
      },
    },
    totals: {
      type: 'object',
      ...open,
      properties: {
        segments: { type: 'integer' },
        bytes: { type: 'integer' },
        restore: { type: 'integer' },
        skip: { type: 'integer' },
        overwrite: { type: 'integer' },
      },
    },
  },
} as const;

const restoreBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    target: {
      ...targetFieldSchema,
      description:
        'URL of the target holding the backups (http://host:8484); or a list of them (read from the nearest good copy); left out: the targets this sidecar is configured with',
    },
    coordinator: {
      type: 'string',
      minLength: 1,
      maxLength: 2048,
      description: 'after a restore into deep storage, mark the segments used on this Coordinator',
    },
    markUsed: { type: 'boolean', description: 'false: do not mark the segments used even when druid.backup.coordinator is set' },
    ...selectorProperties,
    destination: {
      type: 'string',
      minLength: 1,
      maxLength: 4096,
      description: '"cache" (default), "deep-storage" (rebuild index/ or index.zip at each loadSpec path) or an absolute directory',
    },
    dryRun: { type: 'boolean', description: 'answer with the plan and change nothing' },
    snapshot: {
      type: 'string',
      pattern: '^\\d{8}T\\d{6}Z-[0-9a-f]{8}$',
      description:
        'restore exactly the segments this snapshot names (of dataSource when given); any that no target holds is named in the plan, and a restore is refused',
    },
    maxBytesPerSecond: maxBytesPerSecondSchema,
    retry: {
      type: 'boolean',
      description: 'segments that fail while every target holding a good copy is unreachable are restored again as soon as one answers',
    },
  },
} as const;

export function register(app: FastifyInstance, ctx: SidecarContext): void {
  // The restore service is the daemon's (started and stopped with the sidecar); this route only translates.
  const service = ctx.restore;

  app.post<{ Body: RestoreRequest }>(
    `${API_PREFIX}/restore`,
    {
      schema: {
        summary: 'Restores segments from a target into the cache, local deep storage or a directory; dryRun answers with the plan',
        body: restoreBody,
        response: { 200: restorePlanSchema, 202: jobAcceptedSchema, 409: errorSchema, 422: errorSchema, 502: errorSchema, 507: errorSchema, ...commonErrors },
      },
    },
    async (req, reply) => {
      const r = await service.request(req.body);
      if ('plan' in r) return reply.code(200).send(r.plan);
      return reply.code(202).send({ jobId: r.job.id });
    },
  );
}
