/**
 * Snapshots (issue 21), in two roles:
 * - the cluster's: `POST /data/v1/snapshots` (202, a job), `GET /data/v1/snapshots`, `GET /data/v1/snapshots/{id}`,
 *   `PUT|DELETE /data/v1/snapshots/{id}/pin`, `DELETE /data/v1/snapshots/{id}` (forget), across the sidecar's targets;
 * - a target sidecar's store, for the http target of the taker (store/http/snapshots.ts):
 *   `PUT|HEAD|GET /data/v1/store/snapshots/blobs/{sha256}`, `PUT|GET|DELETE /data/v1/store/snapshots/{id}`,
 *   `GET /data/v1/store/snapshots` (ids and pins), `PUT|GET|DELETE …/{id}/pin`, `PUT|DELETE …/writing/{id}`,
 *   `GET /data/v1/store/prune/lease`, `PUT /data/v1/store/holdings/{node}`, and `POST /data/v1/store/prune` (a job;
 *   `dryRun` answers the plan).
 * Every id and digest is checked by the schema's pattern and again by the store (snapshot/check.ts).
 */
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { API_PREFIX } from '../../api.js';
import { BackupError, isBackupError, messageOf } from '../../errors.js';
import type { LocalStore } from '../../store/local/store.js';
import { MAX_HEADER_BYTES, MAX_LIST_BYTES, MAX_METADATA_BYTES, parseHeader, parsePin } from '../../snapshot/check.js';
import { jsonArrayElements } from '../../snapshot/jsonArray.js';
import { MAX_HOLDINGS_BYTES, MAX_HOLDINGS_ID_BYTES } from '../../snapshot/records.js';
import type { SnapshotService } from '../../snapshot/service.js';
import type { SidecarContext } from '../context.js';
import { commonErrors, jobAcceptedSchema } from '../schemas.js';

const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^\\d{8}T\\d{6}Z-[0-9a-f]{8}$' } } } as const;
const shaParams = { type: 'object', required: ['sha'], properties: { sha: { type: 'string', pattern: '^[0-9a-f]{64}$' } } } as const;
const pinBody = { type: 'object', additionalProperties: false, properties: { reason: { type: 'string', maxLength: 1000 } } } as const;
const MAX_BLOB = Math.max(MAX_LIST_BYTES, MAX_METADATA_BYTES);

type Id = { Params: { id: string } };

export function register(app: FastifyInstance, ctx: SidecarContext): void {
  const service = (): SnapshotService => {
    if (!ctx.snapshots) throw new BackupError('not_found', 'this sidecar takes no snapshots');
    return ctx.snapshots;
  };
  const store = (): LocalStore => {
    if (!ctx.store) throw new BackupError('not_found', 'this sidecar keeps no store; start it with --store DIR to make it a target');
    return ctx.store;
  };
  const tags = ['snapshots'];

  // ---- the cluster's snapshots ----
  app.post<{ Body: { dataSources?: string[] } | undefined }>(
    `${API_PREFIX}/snapshots`,
    {
      schema: {
        tags,
        summary: "Takes a snapshot of the cluster (a job): the Coordinator's used segments, their completeness in the targets, Druid's metadata",
        body: {
          type: 'object',
          additionalProperties: false,
          properties: { dataSources: { type: 'array', maxItems: 10_000, items: { type: 'string', minLength: 1, maxLength: 1024 } } },
        },
        response: { 202: jobAcceptedSchema, ...commonErrors },
      },
    },
    async (req, reply) => {
      const job = service().create(req.body ?? {});
      return reply.code(202).header('location', `${API_PREFIX}/jobs/${job.id}`).send({ jobId: job.id });
    },
  );
  app.get(`${API_PREFIX}/snapshots`, { schema: { tags, summary: "Every snapshot in this sidecar's targets, newest first" } }, async () => ({
    snapshots: await service().list(),
  }));
  app.get<Id>(`${API_PREFIX}/snapshots/:id`, { schema: { tags, summary: 'One snapshot: its header, pin and targets', params: idParams } }, async (req) =>
    service().show(req.params.id),
  );
  app.put<Id & { Body: { reason?: string } | undefined }>(
    `${API_PREFIX}/snapshots/:id/pin`,
    { schema: { tags, summary: 'Pins a snapshot: retention never removes it', params: idParams, body: pinBody } },
    async (req) => service().pin(req.params.id, { at: new Date().toISOString(), ...(req.body?.reason ? { reason: req.body.reason } : {}) }),
  );
  app.delete<Id>(`${API_PREFIX}/snapshots/:id/pin`, { schema: { tags, summary: 'Unpins a snapshot', params: idParams } }, async (req) =>
    service().pin(req.params.id, undefined),
  );
  app.delete<Id>(
    `${API_PREFIX}/snapshots/:id`,
    { schema: { tags, summary: 'Forgets a snapshot in every target (its segments go at the next prune unless kept otherwise)', params: idParams } },
    async (req) => service().forget(req.params.id),
  );

  // ---- a target sidecar's store ----
  app.register(async (scope) => {
    // The body stays a stream: a segment list of 100,000 descriptors is hashed and written as it arrives, never held.
    scope.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));
    scope.put<{ Params: { sha: string }; Body: Readable }>(
      `${API_PREFIX}/store/snapshots/blobs/:sha`,
      {
        schema: { tags, summary: 'Stores a snapshot blob if absent: 201 stored, 200 already held; 422 when its bytes are not its sha256', params: shaParams },
      },
      async (req, reply) => {
        if (!(req.body instanceof Readable)) throw new BackupError('bad_request', 'a blob is sent as application/octet-stream');
        const outcome = await store().snapshots.receiveBlob(req.params.sha, req.body, MAX_BLOB);
        return reply.code(outcome === 'stored' ? 201 : 200).send({ sha256: req.params.sha });
      },
    );
  });
  app.head<{ Params: { sha: string } }>(
    `${API_PREFIX}/store/snapshots/blobs/:sha`,
    { schema: { tags, summary: 'Whether the store holds a snapshot blob', params: shaParams } },
    async (req, reply) => reply.code((await store().snapshots.hasBlob(req.params.sha)) ? 200 : 404).send(),
  );
  app.get<{ Params: { sha: string } }>(
    `${API_PREFIX}/store/snapshots/blobs/:sha`,
    {
      schema: {
        tags,
        summary: 'A snapshot blob, streamed as stored (a segment list can hold 100,000 descriptors); the reader checks it against its sha256',
        params: shaParams,
      },
    },
    async (req, reply) => reply.type('application/octet-stream').send(await store().snapshots.openBlob(req.params.sha)),
  );
  app.get(`${API_PREFIX}/store/snapshots`, { schema: { tags, summary: "The store's snapshot ids and pinned ids" } }, async () => ({
    ids: await store().snapshots.listSnapshots(),
    pins: await store().snapshots.listPins(),
  }));
  app.put<Id & { Body: unknown }>(
    `${API_PREFIX}/store/snapshots/:id`,
    {
      bodyLimit: MAX_HEADER_BYTES,
      schema: { tags, summary: 'Writes a snapshot header, after its blobs; 409 when it exists or names a blob the store lacks', params: idParams },
    },
    async (req, reply) => {
      await store().snapshots.putHeader(parseHeaderFromRequest(req.body, req.params.id));
      return reply.code(201).send({ id: req.params.id });
    },
  );
  app.get<Id>(`${API_PREFIX}/store/snapshots/:id`, { schema: { tags, summary: 'A snapshot header', params: idParams } }, async (req) => {
    const h = await store().snapshots.getHeader(req.params.id);
    if (!h) throw new BackupError('not_found', `the store holds no snapshot ${req.params.id}`);
    return h;
  });
  app.delete<Id>(`${API_PREFIX}/store/snapshots/:id`, { schema: { tags, summary: 'Forgets a snapshot (header, then pin)', params: idParams } }, async (req) => {
    await store().snapshots.forget(req.params.id);
    return { forgotten: req.params.id };
  });
  app.put<Id & { Body: unknown }>(`${API_PREFIX}/store/snapshots/:id/pin`, { schema: { tags, summary: 'Pins a snapshot', params: idParams } }, async (req) => {
    await store().snapshots.setPin(req.params.id, parsePinFromRequest(req.body, req.params.id));
    return { pinned: req.params.id };
  });
  app.get<Id>(`${API_PREFIX}/store/snapshots/:id/pin`, { schema: { tags, summary: "A snapshot's pin", params: idParams } }, async (req) => {
    const p = await store().snapshots.getPin(req.params.id);
    if (!p) throw new BackupError('not_found', `snapshot ${req.params.id} is not pinned`);
    return p;
  });
  app.delete<Id>(`${API_PREFIX}/store/snapshots/:id/pin`, { schema: { tags, summary: 'Unpins a snapshot', params: idParams } }, async (req) => {
    await store().snapshots.setPin(req.params.id, undefined);
    return { unpinned: req.params.id };
  });
  app.put<Id & { Body: { expires?: unknown } }>(
    `${API_PREFIX}/store/snapshots/writing/:id`,
    { schema: { tags, summary: 'Marks a snapshot as being written (a prune sweeps nothing meanwhile); expires within a day', params: idParams } },
    async (req) => {
      const ms = typeof req.body?.expires === 'string' ? Date.parse(req.body.expires) : NaN;
      if (!Number.isFinite(ms)) throw new BackupError('bad_request', 'expires must be an ISO-8601 instant');
      const capped = Math.min(ms, Date.now() + 24 * 3600_000);
      await store().snapshots.putWriting(req.params.id, new Date(capped).toISOString());
      return { writing: req.params.id };
    },
  );
  app.delete<Id>(
    `${API_PREFIX}/store/snapshots/writing/:id`,
    { schema: { tags, summary: 'The snapshot is written (or given up)', params: idParams } },
    async (req) => {
      await store().snapshots.deleteWriting(req.params.id);
      return { done: req.params.id };
    },
  );
  app.get(`${API_PREFIX}/store/prune/lease`, { schema: { tags, summary: "The store's prune lease, while one is held" } }, async () => {
    const l = await store().snapshots.readLease();
    if (!l || Date.parse(l.expires) <= Date.now()) throw new BackupError('not_found', 'no prune runs');
    return l;
  });
  // A report is streamed (a node of 100,000 segments sends megabytes): the body reaches the store as it arrives,
  // each id checked there, at most MAX_HOLDINGS_BYTES; a report refused part-way leaves the previous one as it was.
  app.register(async (scope) => {
    scope.removeContentTypeParser('application/json');
    scope.addContentTypeParser('application/json', (_req, payload, done) => done(null, payload));
    scope.put<{ Params: { node: string }; Querystring: { at: string }; Body: AsyncIterable<Buffer> }>(
      `${API_PREFIX}/store/holdings/:node`,
      {
        schema: {
          tags,
          summary:
            'What a node holds now (its reconcile reports it), a JSON array of segment ids, streamed: retention keeps those segments. Replaces its previous report once whole',
          params: { type: 'object', required: ['node'], properties: { node: { type: 'string', minLength: 1, maxLength: 255 } } },
          querystring: { type: 'object', required: ['at'], properties: { at: { type: 'string', maxLength: 64 } } },
        },
      },
      async (req, reply) => {
        if (!req.body || typeof req.body[Symbol.asyncIterator] !== 'function')
          throw new BackupError('bad_request', 'a holdings report is a JSON array of segment ids (application/json)');
        let segments = 0;
        // The rest of a refused report is never read (a 413 may leave hundreds of MiB unsent): the connection
        // closes once the error is sent, so that no later request waits on a socket whose body is half-read.
        await asBadRequestAsync(() =>
          store().snapshots.putHoldings({
            node: req.params.node,
            at: req.query.at,
            segmentIds: (async function* () {
              for await (const v of jsonArrayElements(limitedBody(req.body), MAX_HOLDINGS_ID_BYTES, 'the holdings report')) {
                if (typeof v !== 'string') throw new BackupError('bad_request', 'a holdings report is a JSON array of segment ids');
                segments++;
                yield v;
              }
            })(),
          }),
        ).catch((e: unknown) => {
          void reply.header('connection', 'close');
          throw e;
        });
        return { node: req.params.node, segments };
      },
    );
  });
  app.post<{ Body: { dryRun?: boolean; target?: string } | undefined }>(
    `${API_PREFIX}/store/prune`,
    {
      schema: {
        tags,
        summary:
          'Prunes the store (or a bucket) by druid.backup.retention.*: a job; with dryRun its result is the plan, each snapshot and segment it would remove and why',
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            dryRun: { type: 'boolean' },
            target: { type: 'string', minLength: 1, maxLength: 2048, description: 'a bucket (s3://bucket/prefix) instead of this store' },
          },
        },
        response: { 202: jobAcceptedSchema, ...commonErrors },
      },
    },
    async (req, reply) => {
      const job = service().prune(req.body ?? {});
      return reply.code(202).header('location', `${API_PREFIX}/jobs/${job.id}`).send({ jobId: job.id });
    },
  );
}

function asBadRequest<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof BackupError && e.code === 'target_error') throw new BackupError('bad_request', e.message);
    throw e;
  }
}
const parseHeaderFromRequest = (b: unknown, id: string) => asBadRequest(() => parseHeader(b, id));
const parsePinFromRequest = (b: unknown, id: string) => asBadRequest(() => parsePin(b, id));
async function asBadRequestAsync<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof BackupError && e.code === 'target_error') throw new BackupError('bad_request', e.message);
    throw e;
  }
}

/** A request body, at most MAX_HOLDINGS_BYTES: a 413 past that; a body cut off (the sender's connection reset) is a 400, not an internal error. */
async function* limitedBody(body: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let total = 0;
  const it = body[Symbol.asyncIterator]();
  let done = false;
  try {
    for (;;) {
      let r: IteratorResult<Buffer>;
      try {
        r = await it.next();
      } catch (e) {
        done = true;
        throw isBackupError(e) ? e : new BackupError('bad_request', `the holdings report was cut off: ${messageOf(e)}`);
      }
      if (r.done) {
        done = true;
        return;
      }
      total += r.value.length;
      if (total > MAX_HOLDINGS_BYTES) throw new BackupError('payload_too_large', `a holdings report is larger than ${MAX_HOLDINGS_BYTES} bytes`);
      yield r.value;
    }
  } finally {
    // As a for-await would: a reader that stops early releases the body.
    if (!done) await it.return?.();
  }
}
