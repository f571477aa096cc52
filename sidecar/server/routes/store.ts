/**
 * The target role: `HEAD/PUT/GET /data/v1/store/segments/{id}`, the catalog, manifests, sources and stats of the
 * local store. On a sidecar without `--store` each answers 404 `not_found` saying so. The catalog, a manifest and
 * the stats also take `?target=s3://bucket/prefix`: a bucket has no sidecar of its own, so the node that backs up
 * to it answers for it.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { API_PREFIX } from '../../api.js';
import { compileSelector } from '../../druid/selector.js';
import { parseSegmentId } from '../../druid/segmentId.js';
import { BackupError, isBackupError } from '../../errors.js';
import type { PackedSegment } from '../../archive/pack.js';
import type { LocalStore } from '../../store/local/store.js';
import type { Target } from '../../store/target.js';
import { hasCapability } from '../../store/target.js';
import { answeredByNodeSchemes, kindOfScheme } from '../../store/kinds.js';
import { parseTargetUrl } from '../../targets/url.js';
import { nodeNameProblem } from '../../store/manifest.js';
import { DAMAGED_HEADER, DIGEST_HEADER, NODE_HEADER, SIZE_HEADER, SOURCES_HEADER, TAR_CONTENT_TYPE, encodeSources } from '../../store/http/target.js';
import type { ReadEntry } from '../../store/http/batch.js';
import { BATCH_CONTENT_TYPE, BATCH_LIMITS, BATCH_MAX_BYTES, BATCH_MAX_SEGMENTS, BATCH_PATH, READ_BATCH_PATH, READ_PART_MAX, encodeReadHeader } from '../../store/http/batch.js';
import type { SidecarContext } from '../context.js';
import { commonErrors, errorSchema, listQuery, manifestSchema, pageSchema, segmentIdParams, storedSegmentSchema } from '../schemas.js';

type IdParams = { Params: { id: string } };
type ListQ = { Querystring: { dataSource?: string; interval?: string; state?: string; limit: number; cursor?: string; target?: string } };
type TargetQ = { Querystring: { target?: string } };
const targetProperty = {
  target: { type: 'string', minLength: 1, maxLength: 2048, description: 'a bucket (s3://bucket/prefix) to answer for instead of this store' },
} as const;
const targetQuery = { type: 'object', additionalProperties: false, properties: targetProperty } as const;

/** The sending node of an upload (a single PUT or a batch), once its Content-Type and node header are checked. */
function uploadingNode(headers: IncomingHttpHeaders, contentType: string): string {
  const ct = String(headers['content-type'] ?? '')
    .split(';', 1)[0]!
    .trim();
  if (ct !== contentType) throw new BackupError('bad_request', `Content-Type must be ${contentType}`, 415);
  const node = String(headers[NODE_HEADER]);
  const problem = nodeNameProblem(node);
  if (problem) throw new BackupError('bad_request', `${NODE_HEADER}: ${problem}`);
  return node;
}

/**
 * Runs the receive of an upload's body. A sender that goes silent (it died, or the network between us did, without
 * a FIN) is dropped after the stall timeout, so its half-received upload does not hold a temporary directory
 * forever. The rest of a refused upload is never read: the connection closes once the error is sent, so no later
 * request lands on a socket whose body is half-read (it would hang there until the keep-alive timeout).
 */
async function whileReceiving<T>(socket: Socket, reply: FastifyReply, stallMs: number, receive: () => Promise<T>): Promise<T> {
  const silent = () => socket.destroy();
  socket.setTimeout(stallMs, silent);
  try {
    return await receive();
  } catch (e) {
    void reply.header('connection', 'close');
    throw e;
  } finally {
    socket.setTimeout(0);
    socket.off('timeout', silent);
  }
}

const outcomeSchema = { type: 'object', properties: { outcome: { type: 'string', enum: ['stored', 'identical'] }, manifest: manifestSchema } } as const;
const batchAnswerSchema = {
  type: 'object',
  properties: {
    results: {
      type: 'array',
      description: "each segment's outcome, in the order of the batch's header",
      items: {
        type: 'object',
        properties: {
          segmentId: { type: 'string' },
          outcome: { type: 'string', enum: ['stored', 'identical', 'conflict', 'refused'] },
          status: { type: 'integer', description: 'refused: the status a single PUT of this segment would have answered' },
          error: errorSchema.properties.error,
        },
      },
    },
  },
} as const;
const storeListQuery = {
  ...listQuery,
  properties: {
    ...listQuery.properties,
    ...targetProperty,
    state: { type: 'string', enum: ['conflict'], description: 'conflict: only segments with a differing replica flagged' },
  },
} as const;

export function register(app: FastifyInstance, ctx: SidecarContext): void {
  const store = (): LocalStore => {
    if (!ctx.store) throw new BackupError('not_found', 'this sidecar keeps no store; start it with --store DIR to make it a target');
    return ctx.store;
  };
  const bucket = (url: string): Target & Required<Pick<Target, 'catalogPage'>> => {
    const parsed = parseTargetUrl(url, 'target');
    if (!kindOfScheme(parsed.scheme)?.answeredByNode)
      throw new BackupError('bad_request', `target ${parsed.url}: only buckets (${answeredByNodeSchemes()}) are answered for here; ask the target sidecar itself`);
    const t = ctx.openTarget(parsed.url);
    if (!hasCapability(t, 'catalogPage')) throw new BackupError('internal', `target ${t.url} has no catalog to answer with`);
    return t;
  };
  const tags = ['store'];

  app.head<IdParams>(
    `${API_PREFIX}/store/segments/:id`,
    { schema: { tags, summary: 'Whether the store holds a segment: 200 with its digest, sources and size headers, or 404', params: segmentIdParams } },
    async (req, reply) => {
      const id = parseSegmentId(req.params.id).id;
      const s = await store().head(id);
      if (!s) return reply.code(404).send();
      if (s.damaged) void reply.header(DAMAGED_HEADER, encodeURIComponent(s.damaged));
      return reply.code(200).header(DIGEST_HEADER, s.digest).header(SOURCES_HEADER, encodeSources(s.sources)).header(SIZE_HEADER, String(s.size)).send();
    },
  );

  app.put<IdParams & { Querystring: { replace?: boolean } }>(
    `${API_PREFIX}/store/segments/:id`,
    {
      schema: {
        tags,
        summary: `Receives a segment as a tar stream (${TAR_CONTENT_TYPE}; segment.json, files, digests.json): 201 stored, 200 identical copy already held, 409 differing replica flagged; with replace=true, a damaged copy is replaced (201) when the bytes are its manifest's`,
        params: segmentIdParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            replace: { type: 'boolean', description: 'repair: store these bytes over the held copy; only the bytes its manifest names are taken (else 409)' },
          },
        },
        headers: { type: 'object', required: [NODE_HEADER], properties: { [NODE_HEADER]: { type: 'string', minLength: 1, maxLength: 255 } } },
        consumes: [TAR_CONTENT_TYPE],
        response: { 200: outcomeSchema, 201: outcomeSchema, 409: errorSchema, 413: errorSchema, 422: errorSchema, 507: errorSchema, ...commonErrors },
      },
    },
    async (req, reply) => {
      const s = store();
      const id = parseSegmentId(req.params.id).id;
      const node = uploadingNode(req.headers, TAR_CONTENT_TYPE);
      const r = await whileReceiving(req.raw.socket, reply, ctx.config.stallMs, () =>
        s.receive(req.body as Readable, { segmentId: id, node, leaveBodyOpen: true, replace: req.query.replace === true }),
      );
      if (r.outcome === 'conflict') {
        throw new BackupError(
          'conflict',
          `the store holds different bytes for ${id} (digest ${r.manifest.digest}); this copy from ${node} was flagged as a conflict and not stored`,
        );
      }
      return reply.code(r.outcome === 'stored' ? 201 : 200).send({ outcome: r.outcome, manifest: r.manifest });
    },
  );

  app.register(async (scope) => {
    // Streamed by the route like a single upload, never buffered.
    scope.addContentTypeParser(BATCH_CONTENT_TYPE, (_req, payload, done) => done(null, payload));
    scope.post(
      BATCH_PATH,
      {
        schema: {
          tags,
          summary: `Receives several small segments in one request (${BATCH_CONTENT_TYPE}: a JSON header line {"formatVersion":1,"segments":[{"segmentId","length"}]}, then each segment's upload as a single PUT's tar body, exactly length bytes), each checked as a single PUT, committed together; 200 with each segment's outcome. At most ${BATCH_MAX_SEGMENTS} segments and ${BATCH_MAX_BYTES} bytes (413 beyond); 404 when the store does not offer it (druid.backup.storeBatch)`,
          headers: { type: 'object', required: [NODE_HEADER], properties: { [NODE_HEADER]: { type: 'string', minLength: 1, maxLength: 255 } } },
          consumes: [BATCH_CONTENT_TYPE],
          response: { 200: batchAnswerSchema, 413: errorSchema, 415: errorSchema, 507: errorSchema, ...commonErrors },
        },
      },
      async (req, reply) => {
        const s = store();
        if (!ctx.config.storeBatch) throw new BackupError('not_found', 'this store does not offer batch uploads (druid.backup.storeBatch=false); send single PUTs');
        const node = uploadingNode(req.headers, BATCH_CONTENT_TYPE);
        const results = await whileReceiving(req.raw.socket, reply, ctx.config.stallMs, () => s.receiveBatch(req.body as Readable, { node }));
        // A segment refused for the target's own reason (no room, the quota) is logged as a single PUT's refusal
        // is (errors.ts: 5xx are), so the target's log says why; an internal failure the store logged itself.
        for (const r of results)
          if (r.outcome === 'refused' && r.status >= 500 && r.error.code !== 'internal')
            req.log.error({ err: r.error, segmentId: r.segmentId, url: req.url, method: req.method }, 'request failed');
        return { results };
      },
    );
  });

  app.post<{ Body: { segmentIds: string[] } }>(
    READ_BATCH_PATH,
    {
      schema: {
        tags,
        summary: `Several small stored segments in one answer (${BATCH_CONTENT_TYPE}: a JSON header line {"formatVersion":1,"segments":[{"segmentId","length"} or {"segmentId","status","error"}]}, one entry for each id asked in its order, then each sent segment exactly as a single GET's tar body, length bytes), for a restore that installs them together. At most ${BATCH_MAX_SEGMENTS} distinct ids; a segment the store does not send (absent, damaged, over ${READ_PART_MAX} bytes) has the status and error a single GET would answer`,
        body: {
          type: 'object',
          required: ['segmentIds'],
          additionalProperties: false,
          properties: { segmentIds: { type: 'array', minItems: 1, maxItems: BATCH_MAX_SEGMENTS, uniqueItems: true, items: { type: 'string', minLength: 1, maxLength: 1024 } } },
        },
        produces: [BATCH_CONTENT_TYPE],
      },
    },
    async (req, reply) => {
      const s = store();
      const ids = req.body.segmentIds.map((id) => parseSegmentId(id).id);
      if (new Set(ids).size !== ids.length) throw new BackupError('bad_request', 'a batch read lists each segment once');
      const entries: ReadEntry[] = [];
      const packs: PackedSegment[] = [];
      for (const id of ids) {
        try {
          // pack refuses a copy marked damaged as a GET does (422, what the verify found).
          const packed = await s.pack(id);
          if (packed.length > READ_PART_MAX) {
            packed.stream.destroy();
            throw new BackupError('payload_too_large', `segment ${id} is too large for a batch read (${packed.length} bytes); read it alone`, 413);
          }
          entries.push({ segmentId: id, length: packed.length });
          packs.push(packed);
        } catch (e) {
          if (!isBackupError(e)) throw e;
          entries.push({ segmentId: id, status: e.status, error: { code: e.code, message: e.message } });
        }
      }
      const header = encodeReadHeader(entries);
      const length = packs.reduce((n, p) => n + p.length, header.length);
      async function* body(): AsyncGenerator<Buffer> {
        yield header;
        for (const p of packs) yield* p.stream as AsyncIterable<Buffer>;
      }
      const stream = Readable.from(body(), { objectMode: false });
      stream.on('error', (e) => {
        for (const p of packs) p.stream.destroy();
        req.log.warn({ err: e.message }, 'sending a batch read failed');
      });
      return reply.type(BATCH_CONTENT_TYPE).header('content-length', String(length)).send(stream);
    },
  );

  app.get<IdParams>(
    `${API_PREFIX}/store/segments/:id`,
    { schema: { tags, summary: 'A stored segment as a tar stream: manifest.json, then its files', params: segmentIdParams, produces: [TAR_CONTENT_TYPE] } },
    async (req, reply) => {
      const id = parseSegmentId(req.params.id).id;
      // A copy marked damaged is refused (422): the header says what the verify found, as HEAD does.
      const damaged = (await store().head(id))?.damaged;
      if (damaged) void reply.header(DAMAGED_HEADER, encodeURIComponent(damaged));
      const packed = await store().pack(id);
      packed.stream.on('error', (e) => req.log.warn({ segmentId: id, err: e.message }, 'sending a stored segment failed'));
      return reply.type(TAR_CONTENT_TYPE).header('content-length', String(packed.length)).send(packed.stream);
    },
  );

  app.get<IdParams & TargetQ>(
    `${API_PREFIX}/store/segments/:id/manifest`,
    {
      schema: {
        tags,
        summary: "A stored segment's manifest",
        params: segmentIdParams,
        querystring: targetQuery,
        response: { 200: manifestSchema, ...commonErrors },
      },
    },
    async (req) => {
      const id = parseSegmentId(req.params.id).id;
      const m = await (req.query.target ? bucket(req.query.target) : store()).manifest(id);
      if (!m) throw new BackupError('not_found', `the store holds no segment ${id}`);
      return m;
    },
  );

  app.post<IdParams & { Body: { node: string; digest: string } }>(
    `${API_PREFIX}/store/segments/:id/sources`,
    {
      schema: {
        tags,
        summary: 'Records that another node holds the segment with this digest, without a transfer: 200 identical (source added), 409 different (flagged)',
        params: segmentIdParams,
        body: {
          type: 'object',
          required: ['node', 'digest'],
          additionalProperties: false,
          properties: { node: { type: 'string', minLength: 1, maxLength: 255 }, digest: { type: 'string', pattern: '^[0-9a-f]{64}$' } },
        },
        response: { 200: { type: 'object', properties: { outcome: { type: 'string' } } }, 409: errorSchema, ...commonErrors },
      },
    },
    async (req) => {
      const id = parseSegmentId(req.params.id).id;
      const outcome = await store().addSource(id, req.body.node, req.body.digest);
      if (outcome === 'conflict')
        throw new BackupError('conflict', `the store holds different bytes for ${id}; ${req.body.node}'s copy was flagged as a conflict`);
      return { outcome };
    },
  );

  app.get<ListQ>(
    `${API_PREFIX}/store/segments`,
    {
      schema: {
        tags,
        summary: 'The catalog of stored segments, by segment id, with filters and paging',
        querystring: storeListQuery,
        response: { 200: pageSchema(storedSegmentSchema), ...commonErrors },
      },
    },
    async (req) => {
      const q = req.query;
      const sel = compileSelector({ dataSource: q.dataSource, interval: q.interval });
      if (q.target) return bucket(q.target).catalogPage(
          { dataSource: q.dataSource, interval: q.interval },
          { limit: q.limit, cursor: q.cursor, onlyConflicts: q.state === 'conflict' },
        );
      return store().catalog(sel, q.limit, q.cursor, q.state === 'conflict');
    },
  );

  app.get<ListQ>(
    `${API_PREFIX}/store/manifests`,
    {
      schema: {
        tags,
        summary: 'Whole manifests of stored segments, by segment id, with filters and paging (for restore planning)',
        querystring: listQuery,
        response: { 200: pageSchema(manifestSchema), ...commonErrors },
      },
    },
    async (req) => {
      const q = req.query;
      return store().manifests(compileSelector({ dataSource: q.dataSource, interval: q.interval }), q.limit, q.cursor);
    },
  );

  app.get<TargetQ>(
    `${API_PREFIX}/store/stats`,
    {
      schema: {
        tags,
        summary: 'Segments and bytes held, free space',
        querystring: targetQuery,
        response: {
          200: {
            type: 'object',
            properties: {
              segments: { type: 'integer' },
              bytes: { type: 'integer' },
              freeBytes: { type: 'integer' },
              quotaBytes: { type: 'integer' },
              batch: {
                type: 'object',
                description: `present when the store takes batch uploads (${BATCH_PATH}): the most segments and bytes of one batch`,
                properties: { maxSegments: { type: 'integer' }, maxBytes: { type: 'integer' } },
              },
              retention: {
                type: 'object',
                description:
                  'stored bytes by retention (issue 21), as last measured: used by the latest snapshot, kept by retention, prunable; overhead = stored / bytes Druid uses',
                additionalProperties: true,
              },
            },
          },
          ...commonErrors,
        },
      },
    },
    async (req) => {
      if (req.query.target) return bucket(req.query.target).stats();
      const stats = { ...(await store().stats()), ...(ctx.config.storeBatch ? { batch: BATCH_LIMITS } : {}) };
      const retention = ctx.snapshots?.figures();
      return retention ? { ...stats, retention } : stats;
    },
  );
}
