import type { FastifyInstance } from 'fastify';
import type { SidecarContext } from '../context.js';

export function register(app: FastifyInstance, ctx: SidecarContext): void {
  app.get('/metrics', { schema: { summary: 'Prometheus metrics (text exposition format)', produces: ['text/plain'] } }, async (_req, reply) => {
    const text = await ctx.metrics.registry.metrics();
    return reply.type(ctx.metrics.registry.contentType).send(text);
  });
}
