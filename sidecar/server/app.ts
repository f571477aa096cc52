/**
 * The sidecar's HTTP API: a fastify app with bearer-token auth, JSON-schema validation that rejects unknown fields,
 * one error handler, `/openapi.json` generated from the route schemas and `/metrics`. Routes live one file per
 * group in routes/ and are registered from the list in routes/index.ts.
 *
 * The server's limits (druid.backup.http.*) keep a caller from exhausting it: a JSON body limit, a connection limit,
 * and a headers timeout checked often enough that a connection which sends part of a request and stalls is closed
 * within it. There is no request timeout by default: a segment upload streams for as long as the segment takes, and
 * its route drops it when it stays silent for druid.backup.stallTimeout.
 */
import type { Socket } from 'node:net';
import swagger from '@fastify/swagger';
import Fastify from 'fastify';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { HttpLimits } from '../config.js';
import { BackupError } from '../errors.js';
import { TAR_CONTENT_TYPE } from '../store/http/target.js';
import { VERSION } from '../version.js';
import { OPEN_PATHS, TokenCheck } from './auth.js';
import type { SidecarContext } from './context.js';
import { clientErrorHandler, errorHandler, frameworkErrors, lingeringClose, toHttpError } from './errors.js';
import { ROUTES } from './routes/index.js';

export interface AppOptions {
  token: string;
  limits: HttpLimits;
  /** Serve HTTPS with this PEM certificate and key (druid.backup.tls.*). */
  https?: { cert: Buffer; key: Buffer };
}

/** How often Node looks for connections past their headers timeout: a tenth of it, so one is closed within 1.1 times it. */
export function connectionsCheckingInterval(headersTimeoutMs: number): number {
  return Math.min(1000, Math.max(50, Math.floor(headersTimeoutMs / 10)));
}

export async function buildApp(ctx: SidecarContext, opts: AppOptions): Promise<FastifyInstance> {
  const { limits } = opts;
  // Options of Node's server that fastify passes through (only at creation: the checking interval starts with it).
  const serverOptions = {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    connectionsCheckingInterval: connectionsCheckingInterval(limits.headersTimeoutMs),
  };
  // An https.Server serves the same routes; the instance is typed as the plain HTTP one either way.
  const app = (Fastify as unknown as (o: object) => FastifyInstance)({
    ...(opts.https ? { https: { ...opts.https, ...serverOptions } } : { http: serverOptions }),
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // A line per request (at info) would drown the log of a busy target; they show at debug and trace.
    loggerInstance: ctx.log.child({ component: 'http' }, { level: ['debug', 'trace'].includes(ctx.log.level) ? ctx.log.level : 'warn' }) as FastifyBaseLogger,
    bodyLimit: limits.bodyLimit,
    exposeHeadRoutes: false,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    // Segment ids run to 1024 characters, three times that when percent-encoded.
    routerOptions: { maxParamLength: 4096 },
    clientErrorHandler,
    frameworkErrors,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false } },
  });
  app.server.maxConnections = limits.maxConnections;
  const token = new TokenCheck(opts.token);
  // Node closes a `connection: close` socket as soon as the answer is written; with request bytes still unread the
  // client then gets a reset instead of the 4xx that says why.
  app.server.on('connection', (socket: Socket) => {
    socket.destroySoon = () => lingeringClose(socket);
  });

  // The API speaks JSON (and tar for segments); a text body is a client mistake, answered 415.
  app.removeContentTypeParser('text/plain');
  // Segment uploads are streamed by their route, never buffered: the body is the raw request stream.
  app.addContentTypeParser(TAR_CONTENT_TYPE, (_req, payload, done) => done(null, payload));

  app.addHook('onRequest', async (req) => {
    const pathOnly = req.url.split('?', 1)[0]!;
    if (OPEN_PATHS.has(pathOnly)) return;
    token.check(req.headers.authorization);
  });
  app.addHook('onResponse', async (req, reply) => {
    ctx.metrics.httpRequests.inc({ method: req.method, route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) });
  });
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((req, reply) => {
    const { status, body } = toHttpError(new BackupError('not_found', `no route ${req.method} ${req.url.split('?', 1)[0]!.slice(0, 200)}`));
    void reply.code(status).send(body);
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'druid-backup sidecar API',
        version: VERSION,
        description: 'Backs up and restores Apache Druid segments. Every call but /status/health needs `Authorization: Bearer <token>`.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  for (const r of ROUTES) await r.register(app, ctx);
  return app;
}
