import type { FastifyInstance } from 'fastify';
import { API_PREFIX } from '../../api.js';
import type { SidecarEvent } from '../../api.js';
import { BackupError } from '../../errors.js';
import type { SidecarContext } from '../context.js';

/** Clients streaming at once; each holds a socket. */
export const MAX_EVENT_CLIENTS = 64;
/** A client that stops reading is cut off once this much is queued for it, so it cannot grow our memory. */
const MAX_QUEUED_BYTES = 4 * 1024 * 1024;
const HEARTBEAT_MS = 15_000;

export function register(app: FastifyInstance, ctx: SidecarContext): void {
  const closers = new Set<() => void>();
  // Open streams would hold app.close() forever.
  app.addHook('onClose', async () => {
    for (const c of [...closers]) c();
  });

  app.get(
    `${API_PREFIX}/events`,
    {
      schema: {
        summary: 'Server-sent events: segment, segment-removed, job and stored changes (event name = type, data = JSON)',
        produces: ['text/event-stream'],
      },
    },
    async (req, reply) => {
      if (ctx.events.listeners >= MAX_EVENT_CLIENTS) throw new BackupError('conflict', `already ${MAX_EVENT_CLIENTS} event streams open`, 429);
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      res.write(': druid-backup events\n\n');
      const send = (e: SidecarEvent) => {
        if (res.writableLength > MAX_QUEUED_BYTES) {
          close();
          return;
        }
        res.write(`event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
      };
      const unsubscribe = ctx.events.subscribe(send);
      const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
      const close = () => {
        unsubscribe();
        clearInterval(heartbeat);
        closers.delete(close);
        if (!res.writableEnded) res.end();
      };
      closers.add(close);
      req.raw.on('close', close);
      res.on('error', close);
    },
  );
}
