import { statfsSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { API_PREFIX } from '../../api.js';
import type { NodeInfo } from '../../api.js';
import { kindInfo } from '../../store/kinds.js';
import { VERSION } from '../../version.js';
import type { SidecarContext } from '../context.js';
import { commonErrors } from '../schemas.js';

function freeBytes(dir: string): number | undefined {
  try {
    const s = statfsSync(dir);
    return s.bavail * s.bsize;
  } catch {
    return undefined;
  }
}

export function register(app: FastifyInstance, ctx: SidecarContext): void {
  app.get(
    `${API_PREFIX}/node`,
    {
      schema: {
        summary: 'Identity, roles, cache locations, layout, store and version of this sidecar',
        response: { 200: { type: 'object', additionalProperties: true }, ...commonErrors },
      },
    },
    async (): Promise<NodeInfo & { active?: unknown }> => {
      const c = ctx.config;
      const storeStats = ctx.store ? await ctx.store.stats() : undefined;
      return {
        name: c.nodeName,
        version: VERSION,
        roles: [
          ...(ctx.cache ? (['source'] as const) : []),
          ...(ctx.store ? (['target'] as const) : []),
          ...(c.role === 'cluster' ? (['cluster'] as const) : []),
        ],
        druid: {
          service: c.druid.service,
          host: c.druid.host,
          plaintextPort: c.druid.plaintextPort,
          locations: c.druid.locations.map((l) => ({ path: l.path, maxSize: l.maxSize, freeBytes: freeBytes(l.path) })),
          infoDir: ctx.cache?.infoDir ?? c.druid.infoDir,
          layout: ctx.cache?.layout ?? 'empty',
          deepStorage: { type: c.druid.storage.type, directory: c.druid.storage.directory, zip: c.druid.storage.zip },
        },
        target: c.target,
        targetKind: c.target ? kindInfo(c.target) : undefined,
        store: ctx.store && storeStats ? { path: ctx.store.root, segments: storeStats.segments, bytes: storeStats.bytes } : undefined,
        maxBytesPerSecond: ctx.bandwidth.limits(),
        startedAt: ctx.startedAt,
        active: ctx.active?.status(),
      };
    },
  );
}
