/**
 * `GET /data/v1/targets`: every target this sidecar backs up to, with its state (up, down with its circuit open,
 * invalid stats), free space and quota, rolling RTT, zone, weight, the copies it holds and why it was or was not
 * chosen last. The targets are asked for fresh stats first (at most every few seconds), so the answer is current.
 */
import type { FastifyInstance } from 'fastify';
import { API_PREFIX } from '../../api.js';
import type { TargetStatus, TargetsResponse } from '../../api.js';
import type { SidecarContext } from '../context.js';
import { commonErrors } from '../schemas.js';

const open = { additionalProperties: true } as const;

const targetStatusSchema = {
  type: 'object',
  ...open,
  properties: {
    url: { type: 'string' },
    kind: { type: 'string', description: 'the kind of target (http: a target sidecar, s3: a bucket, ...)' },
    zone: { type: 'string' },
    weight: { type: 'number' },
    state: { type: 'string', enum: ['up', 'down', 'unknown', 'invalid'] },
    circuit: { type: 'string', enum: ['closed', 'open', 'half-open'] },
    freeBytes: { type: 'integer' },
    quotaBytes: { type: 'integer' },
    storedBytes: { type: 'integer' },
    segments: { type: 'integer' },
    rttMs: { type: 'number' },
    failures: { type: 'integer' },
    lastError: { type: 'string' },
    retryAt: { type: 'string' },
    copies: { type: 'integer' },
    lastChoice: {
      type: 'object',
      ...open,
      properties: { segmentId: { type: 'string' }, chosen: { type: 'boolean' }, reason: { type: 'string' }, at: { type: 'string' } },
    },
  },
} as const;

export function register(app: FastifyInstance, ctx: SidecarContext): void {
  app.get(
    `${API_PREFIX}/targets`,
    {
      schema: {
        summary: 'The targets this sidecar backs up to: state, free space, quota, RTT, zone, weight, copies held, and why each was or was not chosen last',
        response: {
          200: {
            type: 'object',
            ...open,
            properties: {
              copies: { type: 'integer' },
              zone: { type: 'string' },
              underReplicated: { type: 'integer' },
              targets: { type: 'array', items: targetStatusSchema },
            },
          },
          ...commonErrors,
        },
      },
    },
    async (): Promise<TargetsResponse> => {
      // One configured target is a set of one (targets/wire.ts), measured the same way.
      const set = ctx.targets;
      if (!set) return { copies: ctx.config.copies, ...(ctx.config.zone ? { zone: ctx.config.zone } : {}), underReplicated: 0, targets: [] };
      await set.refresh(false);
      const targets: TargetStatus[] = set.describe();
      let underReplicated = 0;
      if (ctx.targets && ctx.cache) for (const s of ctx.cache.all()) if (ctx.targets.underReplicated(s.id, ctx.state?.get(s.id)?.digest)) underReplicated++;
      return { copies: set.copies, ...(ctx.config.zone ? { zone: ctx.config.zone } : {}), underReplicated, targets };
    },
  );
}
