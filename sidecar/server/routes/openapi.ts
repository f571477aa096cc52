import type { FastifyInstance } from 'fastify';

export function register(app: FastifyInstance): void {
  app.get('/openapi.json', { schema: { summary: 'This API as an OpenAPI 3 document' } }, async () => app.swagger());
}
