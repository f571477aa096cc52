/**
 * The one place where thrown errors become HTTP answers: `{"error": {"code", "message"}}` with a 4xx status for
 * bad input, 5xx for faults on this side or a target's, never a stack trace.
 */
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { ApiError } from '../api.js';
import type { ErrorCode } from '../errors.js';
import { BackupError, isBackupError } from '../errors.js';

export function errorBody(code: ErrorCode | string, message: string): ApiError {
  return { error: { code, message } };
}

/** Fastify's own 4xx errors, by their code, as the project's codes. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'bad_request',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'bad_request',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'bad_request',
  FST_ERR_CTP_INVALID_JSON_BODY: 'bad_request',
};

/** Turns a validation error into one sentence: which field, what is wrong. */
function validationMessage(e: FastifyError): string {
  const first = e.validation?.[0];
  if (!first) return e.message;
  const where = e.validationContext ?? 'request';
  const field = first.instancePath ? `${where}${first.instancePath.replace(/\//g, '.')}` : where;
  const params = first.params as Record<string, unknown>;
  if (first.keyword === 'additionalProperties') return `${field}: unknown field "${String(params.additionalProperty)}"`;
  if (first.keyword === 'required') return `${field}: missing field "${String(params.missingProperty)}"`;
  return `${field} ${first.message ?? 'is not valid'}`;
}

export function toHttpError(e: unknown): { status: number; body: ApiError; log: boolean } {
  if (isBackupError(e)) return { status: e.status, body: errorBody(e.code, e.message), log: e.status >= 500 };
  const fe = e as FastifyError;
  if (fe && fe.validation) return { status: 400, body: errorBody('bad_request', validationMessage(fe)), log: false };
  if (fe && typeof fe.code === 'string' && FASTIFY_CODES[fe.code]) {
    const code = FASTIFY_CODES[fe.code]!;
    const message =
      fe.code === 'FST_ERR_CTP_INVALID_JSON_BODY'
        ? `the body is not valid JSON: ${fe.message}`
        : fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
          ? 'unsupported Content-Type: send application/json (segment uploads: application/x-tar)'
          : fe.message;
    return { status: fe.statusCode ?? new BackupError(code, '').status, body: errorBody(code, message), log: false };
  }
  if (fe && typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    const message = typeof fe.message === 'string' && fe.message ? fe.message : STATUS_CODES[fe.statusCode] ?? 'bad request';
    return { status: fe.statusCode, body: errorBody(fe.statusCode === 404 ? 'not_found' : 'bad_request', message), log: false };
  }
  return { status: 500, body: errorBody('internal', 'internal error; see the sidecar log'), log: true };
}

export function errorHandler(this: unknown, e: unknown, req: FastifyRequest, reply: FastifyReply): void {
  const { status, body, log } = toHttpError(e);
  if (log) req.log.error({ err: e, url: req.url, method: req.method }, 'request failed');
  else req.log.debug({ code: body.error.code, msg: body.error.message, url: req.url }, 'request rejected');
  // A hijacked or half-sent reply (a tar stream that failed midway) can only be cut off.
  if (reply.sent || reply.raw.headersSent) {
    reply.raw.destroy();
    return;
  }
  void reply.code(status).type('application/json').send(body);
}

/**
 * Answers what Node's HTTP parser refused before any route saw it (a malformed request line or headers, bytes after
 * a body shorter than its content-length, headers too large, a request too slow) in the API's error format, then
 * closes the connection.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  // Node's parser goes on reading while the connection lingers after the answer (lingeringClose ended it), and
  // reports the same error again. Destroying the socket here reset the connection with request bytes unread, and the
  // client lost the answer (seen with a 100 KB header sent in small pieces).
  if (socket.writableEnded) return;
  const [status, message] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'the request took too long to arrive']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'the request headers are too large']
        : [400, 'malformed HTTP request'];
  const body = JSON.stringify(errorBody('bad_request', message));
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.write(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
  lingeringClose(socket as Socket);
}

/** Connections answered and closing: lingeringClose sets each up once, however often Node calls destroySoon. */
const lingering = new WeakSet<Duplex>();

/** How long, and for how many bytes, a connection closed after an answer keeps reading what the client still sends. */
const LINGER_MS = 2000;
const LINGER_BYTES = 16 * 1024 * 1024;

/**
 * Closes a connection after its last answer (`connection: close`, as after refusing a body too large or an upload
 * the store will not take) the way a careful server does: the answer and a FIN go out, then what the client is still
 * sending is read and dropped for a moment before the socket closes. Closing at once with request bytes unread
 * makes the kernel reset the connection, and the client loses the answer that says why it was refused.
 */
export function lingeringClose(socket: Socket): void {
  if (socket.destroyed || lingering.has(socket)) return;
  lingering.add(socket);
  if (!socket.writableEnded) socket.end();
  let read = 0;
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  socket.on('data', (d: Buffer) => {
    read += d.length;
    if (read > LINGER_BYTES) socket.destroy();
  });
  socket.resume();
}

/** Fastify's own refusals before routing (a URL with bad percent-encoding, a path parameter too long), in the API's format. */
export function frameworkErrors(e: FastifyError, _req: FastifyRequest, reply: FastifyReply): void {
  const tooLong = e.code === 'FST_ERR_MAX_PARAM_LENGTH';
  void reply
    .code(tooLong ? 414 : 400)
    .type('application/json')
    .send(errorBody('bad_request', tooLong ? 'a path parameter of the URL is too long' : 'the URL is not valid (bad percent-encoding)'));
}
