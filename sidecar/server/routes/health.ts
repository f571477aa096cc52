import type { FastifyInstance } from 'fastify';
import type { HealthResponse } from '../../api.js';
import { VERSION } from '../../version.js';

export function register(app: FastifyInstance): void {
  app.get(
    '/status/health',
    {
      schema: {
        summary: 'Liveness; needs no token',
        security: [],
        response: { 200: { type: 'object', properties: { status: { type: 'string', enum: ['ok'] }, version: { type: 'string' } } } },
      },
    },
    async (): Promise<HealthResponse> => ({ status: 'ok', version: VERSION }),
  );
}
