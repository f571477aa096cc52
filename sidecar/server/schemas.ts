/**
 * JSON schemas of the API, shared by the route modules. Request schemas reject unknown fields
 * (`additionalProperties: false`); response schemas document the shapes of api.ts for `/openapi.json` and allow
 * extra fields, so a field added to api.ts is never silently dropped from an answer.
 */
import { MAX_SEGMENT_ID_LENGTH } from '../druid/segmentId.js';

const open = { additionalProperties: true } as const;

export const errorSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } },
  },
} as const;

/**
 * The error answers every authenticated route can give; 403 is a target the allow list does not allow
 * (target_not_allowed), or Druid refusing the caller when the Druid extension forwards the call.
 */
export const commonErrors = { 400: errorSchema, 401: errorSchema, 403: errorSchema, 404: errorSchema, 500: errorSchema } as const;

export const segmentIdParams = {
  type: 'object',
  required: ['id'],
  additionalProperties: false,
  properties: { id: { type: 'string', minLength: 1, maxLength: MAX_SEGMENT_ID_LENGTH, description: 'Druid segment id, URL-encoded' } },
} as const;

export const listQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    dataSource: { type: 'string', minLength: 1, maxLength: 512 },
    interval: { type: 'string', minLength: 1, maxLength: 200, description: 'ISO-8601 interval; segments overlapping it' },
    state: { type: 'string', maxLength: 32 },
    limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
    cursor: { type: 'string', maxLength: 4096 },
  },
} as const;

export const selectorProperties = {
  dataSource: { type: 'string', minLength: 1, maxLength: 512 },
  interval: { type: 'string', minLength: 1, maxLength: 200 },
  segmentIds: { type: 'array', maxItems: 100_000, items: { type: 'string', minLength: 1, maxLength: MAX_SEGMENT_ID_LENGTH } },
} as const;

/** The `target` field of backup and restore: one URL (as always), a list of them, or left out (the configured targets). */
export const targetFieldSchema = {
  anyOf: [
    { type: 'string', minLength: 1, maxLength: 2048 },
    { type: 'array', minItems: 1, maxItems: 32, items: { anyOf: [{ type: 'string', minLength: 1, maxLength: 2048 }, { type: 'object' }] } },
  ],
} as const;

export const copiesSchema = { type: 'integer', minimum: 1, maximum: 16, description: 'with a list of targets: on how many each segment is kept' } as const;

export const maxBytesPerSecondSchema = {
  type: 'integer',
  minimum: 1,
  description: "this job's own bandwidth limit in bytes per second: lower than the node's (a higher one is refused with 400)",
} as const;

export const jobAcceptedSchema = { type: 'object', required: ['jobId'], properties: { jobId: { type: 'string' } } } as const;

export const jobSchema = {
  type: 'object',
  ...open,
  properties: {
    id: { type: 'string' },
    type: { type: 'string', enum: ['backup', 'restore', 'verify', 'snapshot', 'prune', 'recovery'] },
    state: { type: 'string', enum: ['queued', 'running', 'succeeded', 'failed', 'cancelled'] },
    target: { type: 'string' },
    request: { type: 'object', ...open },
    progress: {
      type: 'object',
      ...open,
      properties: {
        segmentsTotal: { type: 'integer' },
        segmentsDone: { type: 'integer' },
        segmentsSkipped: { type: 'integer' },
        segmentsFailed: { type: 'integer' },
        bytesTotal: { type: 'integer' },
        bytesDone: { type: 'integer' },
        current: { type: 'string' },
        maxBytesPerSecond: { type: 'integer' },
      },
    },
    errors: { type: 'array', items: { type: 'object', ...open, properties: { segmentId: { type: 'string' }, message: { type: 'string' } } } },
    createdAt: { type: 'string' },
    startedAt: { type: 'string' },
    finishedAt: { type: 'string' },
    result: { type: 'object', ...open },
  },
} as const;

const fileSchema = { type: 'object', ...open, properties: { name: { type: 'string' }, size: { type: 'integer' }, sha256: { type: 'string' } } } as const;
const sourceSchema = { type: 'object', ...open, properties: { node: { type: 'string' }, digest: { type: 'string' }, at: { type: 'string' } } } as const;

export const manifestSchema = {
  type: 'object',
  ...open,
  properties: {
    formatVersion: { type: 'integer' },
    segmentId: { type: 'string' },
    dataSource: { type: 'string' },
    interval: { type: 'string' },
    version: { type: 'string' },
    partition: { type: 'integer' },
    descriptor: { type: ['object', 'null'], ...open },
    files: { type: 'array', items: fileSchema },
    size: { type: 'integer' },
    digest: { type: 'string' },
    sources: { type: 'array', items: sourceSchema },
    conflicts: { type: 'array', items: sourceSchema },
    createdAt: { type: 'string' },
    updatedAt: { type: 'string' },
  },
} as const;

export const storedSegmentSchema = {
  type: 'object',
  ...open,
  properties: {
    segmentId: { type: 'string' },
    dataSource: { type: 'string' },
    interval: { type: 'string' },
    version: { type: 'string' },
    partition: { type: 'integer' },
    size: { type: 'integer' },
    fileCount: { type: 'integer' },
    digest: { type: 'string' },
    sources: { type: 'array', items: { type: 'string' } },
    conflicts: { type: 'array', items: { type: 'string' } },
    createdAt: { type: 'string' },
    updatedAt: { type: 'string' },
  },
} as const;

export const segmentInfoSchema = {
  type: 'object',
  ...open,
  properties: {
    id: { type: 'string' },
    dataSource: { type: 'string' },
    interval: { type: 'string' },
    version: { type: 'string' },
    partition: { type: 'integer' },
    size: { type: 'integer' },
    files: { type: 'array', items: fileSchema },
    layout: { type: 'string', enum: ['nested', 'flat'] },
    state: { type: 'string', enum: ['complete', 'downloading', 'incomplete', 'missing', 'damaged', 'restoring'] },
    hasInfoFile: { type: 'boolean' },
    backup: {
      type: 'object',
      ...open,
      properties: {
        state: { type: 'string', enum: ['backedUp', 'pending', 'failed', 'none'] },
        target: { type: 'string' },
        at: { type: 'string' },
        digest: { type: 'string' },
        error: { type: 'string' },
        copies: { type: 'integer' },
        targets: { type: 'array', items: { type: 'string' } },
      },
    },
  },
} as const;

export function pageSchema(items: object) {
  return { type: 'object', ...open, properties: { items: { type: 'array', items }, total: { type: 'integer' }, nextCursor: { type: 'string' } } } as const;
}
