/**
 * `POST /data/v1/store/verify`: a verify job over this sidecar's store: every selected segment's files re-read
 * against its manifest. Each bad segment is a failed segment of the job, and the job's result lists every
 * problem by segment id (missing, extra, wrong size, wrong digest, unreadable manifest). With `target`, a bucket
 * (`s3://bucket/prefix`, any kind the node answers for) is verified instead, by this sidecar reading its objects (store/object/verify.ts).
 */
import type { FastifyInstance } from 'fastify';
import { API_PREFIX } from '../../api.js';
import type { VerifyRequest } from '../../api.js';
import { compileSelector, isEmptySelector } from '../../druid/selector.js';
import { BackupError } from '../../errors.js';
import type { TargetVerifyReport } from '../../store/target.js';
import { hasCapability } from '../../store/target.js';
import { answeredByNodeSchemes, kindOfScheme } from '../../store/kinds.js';
import { parseTargetUrl } from '../../targets/url.js';
import type { VerifyReport } from '../../verify/store.js';
import { verifyStore } from '../../verify/store.js';
import type { SidecarContext } from '../context.js';
import { commonErrors, jobAcceptedSchema, selectorProperties } from '../schemas.js';

/** A verify report as the job's result: where each bad copy lies stays on this side. */
function jobResult(report: TargetVerifyReport | VerifyReport): Record<string, unknown> {
  return {
    store: report.store,
    segments: report.segments,
    ok: report.ok,
    bytes: report.bytes,
    bad: report.bad.map((b) => ({ segmentId: b.segmentId, problems: b.problems })),
  };
}

export function register(app: FastifyInstance, ctx: SidecarContext): void {
  app.post<{ Body: VerifyRequest | undefined }>(
    `${API_PREFIX}/store/verify`,
    {
      schema: {
        summary: "Verifies the store's segments against their manifests (a job; its result lists the bad segments)",
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            target: { type: 'string', minLength: 1, maxLength: 2048, description: 'a bucket to verify (s3://bucket/prefix) instead of this store' },
            ...selectorProperties,
          },
        },
        response: { 202: jobAcceptedSchema, ...commonErrors },
      },
    },
    async (req, reply) => {
      if (req.body?.target !== undefined) {
        const { target: url, ...request } = req.body;
        // Bad filters and a bad URL are refused here, before any job.
        compileSelector(request);
        const parsed = parseTargetUrl(url, 'target');
        if (!kindOfScheme(parsed.scheme)?.answeredByNode)
          throw new BackupError(
            'bad_request',
            `target ${parsed.url}: only buckets (${answeredByNodeSchemes()}) are verified from here; verify a target sidecar's store on that sidecar`,
          );
        const target = ctx.openTarget(parsed.url);
        if (!hasCapability(target, 'verify')) throw new BackupError('internal', `target ${target.url} cannot be verified from here`);
        const member = ctx.targets?.specs.find((sp) => ctx.openTarget(sp.url) === target)?.url;
        const damaged: string[] = [];
        const job = ctx.jobs.create({
          type: 'verify',
          request: { ...req.body },
          target: target.url,
          run: async (job) => {
            let segments = 0;
            let bytes = 0;
            for await (const m of target.list(request, { signal: job.signal })) {
              segments++;
              bytes += m.size;
            }
            job.setTotals(segments, bytes);
            const report = await target.verify(request, {
              signal: job.signal,
              onBytes: (n) => job.addBytes(n),
              onSegment: (id, problems) => {
                job.setCurrent(id);
                if (problems.length === 0) job.segmentDone('done');
                else {
                  job.segmentFailed(id, problems.map((p) => p.message).join('; '));
                  // A bucket of this node's targets: the damaged copy is recorded, and repaired from a good one.
                  if (member) ctx.targetPool?.catalog.damaged(id, member, problems.map((p) => p.message).join('; '));
                  damaged.push(id);
                }
              },
            });
            if (damaged.length) void ctx.restore.repairCopies(damaged);
            return jobResult(report);
          },
        });
        return reply.code(202).send({ jobId: job.id });
      }
      const store = ctx.store;
      if (!store) throw new BackupError('bad_request', 'this sidecar keeps no store (start it with --store DIR to make it a target)');
      const request = req.body ?? {};
      const sel = compileSelector(request);
      const job = ctx.jobs.create({
        type: 'verify',
        request: { ...request },
        target: store.url,
        run: async (job) => {
          if (isEmptySelector(sel)) {
            const st = await store.stats();
            job.setTotals(st.segments, st.bytes);
          } else {
            let segments = 0;
            let bytes = 0;
            for await (const m of store.list(request)) {
              segments++;
              bytes += m.size;
            }
            job.setTotals(segments, bytes);
          }
          const report = await verifyStore(store.root, sel, {
            signal: job.signal,
            onBytes: (n) => job.addBytes(n),
            onSegment: (id, problems) => {
              job.setCurrent(id);
              // A damaged copy is marked so, and served as such, until a node holding the segment replaces it.
              void store
                .verified(
                  id,
                  problems.map((p) => p.message),
                )
                .catch((e: unknown) => job.log.warn({ segmentId: id, err: String(e) }, 'cannot mark the copy'));
              if (problems.length === 0) job.segmentDone('done');
              else job.segmentFailed(id, problems.map((p) => p.message).join('; '));
            },
          });
          return jobResult(report);
        },
      });
      return reply.code(202).send({ jobId: job.id });
    },
  );
}
