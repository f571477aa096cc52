/**
 * `POST /data/v1/cluster/restore` (issue 22): a cluster brought back to a snapshot. A dry run answers 200 with the
 * plan (every step, what it would do with counts and bytes, its warnings and refusals) and changes nothing;
 * otherwise 202 with a `recovery` job whose progress follows the plan's items. The request is checked and its
 * snapshot found before it is answered.
 */
import type { FastifyInstance } from 'fastify';
import { API_PREFIX } from '../../api.js';
import type { ClusterRestoreRequest } from '../../api.js';
import { BackupError } from '../../errors.js';
import type { SidecarContext } from '../context.js';
import { commonErrors, errorSchema, jobAcceptedSchema } from '../schemas.js';

const open = { additionalProperties: true } as const;
const text = (max: number) => ({ type: 'string', minLength: 1, maxLength: max }) as const;

export const clusterRestorePlanSchema = {
  type: 'object',
  ...open,
  properties: {
    snapshot: { type: 'object', ...open, properties: { id: { type: 'string' }, time: { type: 'string' }, complete: { type: 'boolean' } } },
    target: { type: 'string' },
    dataSources: { type: 'array', items: { type: 'string' } },
    intervals: { type: 'array', items: { type: 'string' } },
    refused: { type: 'boolean' },
    steps: {
      type: 'array',
      items: {
        type: 'object',
        ...open,
        properties: {
          step: { type: 'string' },
          done: { type: 'boolean' },
          items: {
            type: 'array',
            items: {
              type: 'object',
              ...open,
              properties: {
                action: { type: 'string' },
                subject: { type: 'string' },
                segments: { type: 'integer' },
                bytes: { type: 'integer' },
                detail: { type: 'string' },
              },
            },
          },
          warnings: { type: 'array', items: { type: 'string' } },
          refusals: { type: 'array', items: { type: 'string' } },
        },
      },
    },
  },
} as const;

const body = {
  type: 'object',
  additionalProperties: false,
  properties: {
    target: { ...text(2048), description: 'the target holding the snapshot and its segments; left out: the targets this sidecar is configured with' },
    snapshot: { type: 'string', pattern: '^\\d{8}T\\d{6}Z-[0-9a-f]{8}$', description: 'the snapshot to restore' },
    asOf: { ...text(64), description: 'instead of snapshot: the newest snapshot taken at or before this ISO-8601 instant' },
    dataSources: { type: 'array', maxItems: 10_000, items: text(1024), description: 'default: every data source of the snapshot' },
    intervals: {
      type: 'array',
      maxItems: 1000,
      items: text(200),
      description: 'a rollback marks unused only segments inside these; without any, nothing is marked unused',
    },
    deepStorage: { ...text(2048), description: "a new cluster's deep storage: an absolute directory or s3://bucket/baseKey" },
    suspendCompaction: { type: 'boolean', description: "take the data sources' compaction configs away while the restore runs" },
    checkTimeout: { ...text(64), description: 'how long the post-restore check waits for every segment to load (ISO-8601 period, default PT10M)' },
    secrets: {
      type: 'object',
      maxProperties: 1000,
      propertyNames: { maxLength: 2048 },
      additionalProperties: { type: 'string', maxLength: 65_536 },
      description: "values of the snapshot's redacted secrets, by the JSON path its plan names; never kept in the job",
    },
    dryRun: { type: 'boolean', description: 'answer with the plan and change nothing' },
  },
} as const;

export function register(app: FastifyInstance, ctx: SidecarContext): void {
  app.post<{ Body: ClusterRestoreRequest }>(
    `${API_PREFIX}/cluster/restore`,
    {
      schema: {
        tags: ['snapshots'],
        summary: 'Restores the cluster from a snapshot: deep storage, rollback, metadata, then a check; dryRun answers with the plan',
        body,
        response: { 200: clusterRestorePlanSchema, 202: jobAcceptedSchema, 409: errorSchema, 502: errorSchema, ...commonErrors },
      },
    },
    async (req, reply) => {
      const service = ctx.clusterRestore;
      if (!service) throw new BackupError('not_found', 'this sidecar restores no cluster');
      if (req.body.dryRun) return reply.code(200).send(await service.plan(req.body));
      const job = await service.start(req.body);
      return reply.code(202).header('location', `${API_PREFIX}/jobs/${job.id}`).send({ jobId: job.id });
    },
  );
}
