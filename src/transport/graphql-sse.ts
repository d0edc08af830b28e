/**
 * The GraphQL over Server-Sent Events protocol (graphql-sse's PROTOCOL.md), both modes:
 *
 * - distinct connections: `GET`/`POST` with `Accept: text/event-stream` carries one operation and
 *   its results; closing the connection ends it.
 * - single connection: `PUT` reserves a stream (201 + token), `GET`/`POST` with the token header
 *   and `Accept: text/event-stream` opens it, `POST` with the token runs operations (202) whose
 *   results arrive on the stream tagged with `extensions.operationId`, `DELETE ?operationId=`
 *   stops one.
 *
 * On top of the protocol, Tidings adds: an `id:` line with the event cursor on every `next` frame,
 * `Last-Event-ID` honoured like `after`, a `retry:` hint and keepalive comments (see PROTOCOL.md
 * at the top of this repository).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { UNAUTHENTICATED_ADMIN, type Principal } from '../auth/principal.js';
import { HttpError, SlowConsumerError } from '../errors.js';
import { errorsBody, maskError, maskResult, MASKED_MESSAGE } from '../schema/mask.js';
import type { GraphQLParams } from '../stream/operation.js';
import type {
  FrameEncoder,
  RunningOperation,
  StreamMode,
  StreamService,
  StreamSink,
} from '../stream/types.js';
import {
  acceptsEventStream,
  completeFrame,
  nextFrame,
  type SseConnection,
  type SseRegistry,
} from './sse.js';

/** The answer to a token that names no reservation of the caller's. */
const STREAM_NOT_FOUND =
  'Stream not found: the reservation expired or its stream closed; make a new one with PUT';

/**
 * Most operations one single-connection stream runs at once (its reservation's, before and after
 * the stream connects); one more gets `429`.
 */
export const MAX_OPERATIONS_PER_STREAM = 100;

/** The header carrying a single-connection reservation token. */
export const TOKEN_HEADER = 'x-graphql-event-stream-token';

/** Dependencies of {@link createGraphQLSseHandler}. */
export interface GraphQLSseOptions {
  /** The stream engine the operations run on. */
  service: StreamService;
  sse: SseRegistry;
  logger: Logger;
  /** Reads a request body as text, enforcing the size limit. */
  readBody: (req: IncomingMessage) => Promise<string>;
  /**
   * How long a reservation waits for its stream before it is dropped, ms.
   * @default 60000
   */
  reservationTtlMs?: number;
  /**
   * Most reservations waiting for their stream at once (`PUT` made, stream not yet open); one
   * more gets `429`.
   * @default Infinity
   */
  maxReservations?: number;
  /**
   * Most reservations waiting for their stream at once per caller: its subject, else its address.
   * @default Infinity
   */
  maxReservationsPerCaller?: number;
}

/** A single-connection reservation. */
interface Reservation {
  /** The subject that made it; only it may use it. */
  owner: string | null;
  /**
   * Whom it counts against while it waits for its stream (its subject, else its address); null
   * once it no longer waits.
   */
  waiting: string | null;
  connection: SseConnection | null;
  /** The response of {@link Reservation.connection}. */
  response: ServerResponse | null;
  /** Frames produced before the stream connected. */
  pending: (string | Buffer)[];
  /**
   * Their size. Past the queue limits of a connected stream, its operations end as slow
   * consumers, their error waiting with the frames.
   */
  pendingBytes: number;
  /** Set while its operations are being ended for overflowing, so their last frames get in. */
  overflowing: boolean;
  /**
   * Set once what it keeps went past the queue limits before its stream connected: its
   * operations were ended, and new ones are refused until the stream connects.
   */
  full: boolean;
  operations: Map<string, RunningOperation | null>;
  expiry: NodeJS.Timeout | null;
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = body === null ? '' : JSON.stringify(body);
  res.writeHead(status, {
    ...(body === null ? {} : { 'content-type': 'application/json; charset=utf-8' }),
    ...headers,
  });
  res.end(text);
}

/**
 * The `x-request-id` header of a response, passed to `writeHead` rather than set beforehand: a
 * header set with `setHeader` makes Node keep every header of the response for its lifetime.
 */
function idHeader(reqId: string | null): Record<string, string> {
  return reqId === null ? {} : { 'x-request-id': reqId };
}

/**
 * The encoding of distinct-connections streams: the frame names no operation, so every such
 * stream of a group writes the very same bytes of an event.
 */
export const DISTINCT_ENCODER: FrameEncoder = {
  shareKey: 'graphql-sse-distinct',
  next: (payload, cursor) => nextFrame(cursor, payload),
  complete: () => completeFrame(null),
};

/** The encoding of one operation of a single connection: its frames carry its id. */
export function singleConnectionEncoder(operationId: string): FrameEncoder {
  const id = JSON.stringify(operationId);
  return {
    shareKey: null,
    next: (payload, cursor) => nextFrame(cursor, `{"id":${id},"payload":${payload}}`),
    complete: () => completeFrame(operationId),
  };
}

/** Who opens an operation, for the engine's presence, limits and logs. */
const opener = (principal: Principal, reqId: string | null, mode: StreamMode) => ({
  principal,
  reqId,
  mode,
});

function parseJsonObject(raw: string | null, what: string): Record<string, unknown> | null {
  if (raw === null || raw === '') return null;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    throw new HttpError(
      400,
      'BAD_USER_INPUT',
      `${what} is not valid JSON: ${(err as Error).message}`,
      { cause: err },
    );
  }
  if (value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new HttpError(400, 'BAD_USER_INPUT', `${what} must be a JSON object`);
  }
  return value as Record<string, unknown>;
}

function toParams(source: Record<string, unknown>): GraphQLParams {
  const { query, variables, operationName, extensions } = source;
  if (typeof query !== 'string' || query === '') {
    throw new HttpError(
      400,
      'BAD_USER_INPUT',
      'Missing query: send {"query": "..."} or ?query=...',
    );
  }
  if (operationName != null && typeof operationName !== 'string') {
    throw new HttpError(400, 'BAD_USER_INPUT', 'operationName must be a string');
  }
  const asObject = (v: unknown, what: string): Record<string, unknown> | null => {
    if (typeof v === 'string') return parseJsonObject(v, what);
    if (v == null) return null;
    if (typeof v !== 'object' || Array.isArray(v)) {
      throw new HttpError(400, 'BAD_USER_INPUT', `${what} must be a JSON object`);
    }
    return v as Record<string, unknown>;
  };
  return {
    query,
    variables: asObject(variables, 'variables'),
    operationName: operationName ?? null,
    extensions: asObject(extensions, 'extensions'),
  };
}

/** The operation of a `GET` (or `HEAD`) request, from its query string. */
function paramsOfUrl(url: URL): GraphQLParams {
  const p = url.searchParams;
  return toParams({
    query: p.get('query'),
    variables: p.get('variables'),
    operationName: p.get('operationName'),
    extensions: p.get('extensions'),
  });
}

/** Creates the protocol handler; it answers every request it is given. */
export function createGraphQLSseHandler(options: GraphQLSseOptions) {
  const { service, sse, logger } = options;
  const reservationTtlMs = options.reservationTtlMs ?? 60_000;
  const reservations = new Map<string, Reservation>();
  const maxReservations = options.maxReservations ?? Infinity;
  const maxReservationsPerCaller = options.maxReservationsPerCaller ?? Infinity;
  /** Reservations waiting for their stream, per caller; and in all. */
  const waitingPerCaller = new Map<string, number>();
  let waiting = 0;

  async function readParams(req: IncomingMessage, url: URL): Promise<GraphQLParams> {
    if (req.method === 'GET') return paramsOfUrl(url);
    const type = req.headers['content-type'] ?? '';
    if (!/^application\/(graphql-response\+)?json\b/i.test(type)) {
      throw new HttpError(
        415,
        'BAD_USER_INPUT',
        'Send the request as Content-Type: application/json',
      );
    }
    const body = parseJsonObject(await options.readBody(req), 'The request body');
    if (!body) throw new HttpError(400, 'BAD_USER_INPUT', 'The request body must be a JSON object');
    return toParams(body);
  }

  /** Distinct connections mode: the operation owns the response. */
  async function distinct(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    principal: Principal,
    reqId: string | null,
  ): Promise<void> {
    const params = await readParams(req, url);
    const lastEventId = req.headers['last-event-id'];
    const prepared = service.prepare(params, {
      method: req.method ?? 'GET',
      resumeAfter: typeof lastEventId === 'string' && lastEventId ? lastEventId : null,
      principal,
    });
    const conn = sse.open(req, res, idHeader(reqId));
    const sink: StreamSink = {
      encoder: DISTINCT_ENCODER,
      write: (frame) => conn.write(frame),
      drained: () => conn.drained(),
      done: () => conn.end(),
      queueBytes: () => conn.queueBytes(),
    };
    const running = service.run(prepared, sink, opener(principal, reqId, 'distinct'));
    conn.onClose(() => running.stop());
    conn.onOverflow(() => running.fail(new SlowConsumerError(service.limits)));
  }

  function reserve(req: IncomingMessage, res: ServerResponse, principal: Principal): void {
    const caller = principal.subject ?? `address ${req.socket.remoteAddress ?? 'unknown'}`;
    const callerWaiting = waitingPerCaller.get(caller) ?? 0;
    if (callerWaiting >= maxReservationsPerCaller || waiting >= maxReservations) {
      const message =
        callerWaiting >= maxReservationsPerCaller
          ? `${principal.subject === null ? 'This address' : `Subject "${principal.subject}"`} ` +
            `already has ${callerWaiting} reservations waiting for their stream ` +
            '(TIDINGS_MAX_RESERVATIONS_PER_CALLER): open the stream of one (GET with its token) ' +
            'before reserving another; an unused one is dropped after a minute'
          : `The server already has ${waiting} reservations waiting for their stream ` +
            '(TIDINGS_MAX_RESERVATIONS): retry in a few seconds, or use distinct connections mode';
      sendJson(res, 429, errorsBody(message, 'LIMIT_EXCEEDED'), { 'retry-after': '5' });
      return;
    }
    waitingPerCaller.set(caller, callerWaiting + 1);
    waiting++;
    const token = randomUUID();
    const reservation: Reservation = {
      owner: principal.subject,
      waiting: caller,
      connection: null,
      response: null,
      pending: [],
      pendingBytes: 0,
      overflowing: false,
      full: false,
      operations: new Map(),
      expiry: null,
    };
    reservation.expiry = setTimeout(() => dropReservation(token), reservationTtlMs);
    reservation.expiry.unref();
    reservations.set(token, reservation);
    res.writeHead(201, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(token);
  }

  /** Stops counting a reservation as waiting for its stream (it connected, or is gone). */
  function stopWaiting(reservation: Reservation): void {
    const caller = reservation.waiting;
    if (caller === null) return;
    reservation.waiting = null;
    waiting--;
    const n = (waitingPerCaller.get(caller) ?? 1) - 1;
    if (n === 0) waitingPerCaller.delete(caller);
    else waitingPerCaller.set(caller, n);
  }

  /**
   * Keeps a frame for a stream that has not connected yet. The frames count against the queue
   * limits of a connected stream: the frame that goes past them is the last one kept; the
   * reservation's operations then end as slow consumers (only their error and `complete` get in
   * after it), and the client finds their frames then `SLOW_CONSUMER` when it connects.
   */
  function keepPending(reservation: Reservation, frame: string | Buffer, reqId: string | null) {
    if (reservation.full && !reservation.overflowing) {
      // Every operation ended when it filled up, and new ones are refused: nothing should come.
      logger.warn({ ...(reqId === null ? {} : { reqId }) }, 'frame of a full reservation dropped');
      return;
    }
    reservation.pending.push(frame);
    reservation.pendingBytes += typeof frame === 'string' ? Buffer.byteLength(frame) : frame.length;
    const { maxBytes, maxEvents } = service.limits;
    if (reservation.full) return;
    if (reservation.pendingBytes <= maxBytes && reservation.pending.length <= maxEvents) return;
    reservation.full = true;
    logger.warn(
      { ...(reqId === null ? {} : { reqId }), pendingBytes: reservation.pendingBytes },
      'reservation overflowed before its stream connected: its operations end as slow consumers',
    );
    endKept(reservation);
  }

  /** Ends the operations of a full reservation as slow consumers, their last frames kept. */
  function endKept(reservation: Reservation): void {
    reservation.overflowing = true;
    const error = new SlowConsumerError(service.limits);
    for (const op of [...reservation.operations.values()]) op?.fail(error);
    reservation.overflowing = false;
  }

  function dropReservation(token: string): void {
    const reservation = reservations.get(token);
    if (!reservation) return;
    reservations.delete(token);
    stopWaiting(reservation);
    if (reservation.expiry) clearTimeout(reservation.expiry);
    for (const op of reservation.operations.values()) op?.stop('client_gone');
    reservation.operations.clear();
    reservation.connection?.end();
  }

  function openReserved(
    req: IncomingMessage,
    res: ServerResponse,
    token: string,
    reservation: Reservation,
    reqId: string | null,
  ): void {
    if (reservation.connection) {
      sendJson(res, 409, errorsBody('Stream already open', 'CONFLICT'), idHeader(reqId));
      return;
    }
    if (reservation.expiry) clearTimeout(reservation.expiry);
    reservation.expiry = null;
    stopWaiting(reservation);
    const conn = sse.open(req, res, idHeader(reqId));
    reservation.connection = conn;
    reservation.response = res;
    for (const frame of reservation.pending.splice(0)) conn.write(frame);
    reservation.pendingBytes = 0;
    reservation.full = false;
    conn.onClose(() => dropReservation(token));
    conn.onOverflow(() => {
      // Every operation ends with the resumable error, queued behind what the client has yet to
      // read; then the connection ends once that is flushed.
      const error = new SlowConsumerError(service.limits);
      for (const op of [...reservation.operations.values()]) op?.fail(error);
      conn.end();
    });
  }

  async function operate(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    token: string,
    reservation: Reservation,
    principal: Principal,
    reqId: string | null,
  ) {
    const params = await readParams(req, url);
    const operationId = params.extensions?.operationId;
    if (typeof operationId !== 'string' || operationId === '') {
      sendJson(
        res,
        400,
        errorsBody('Operation ID is missing: set extensions.operationId', 'BAD_USER_INPUT'),
      );
      return;
    }
    if (reservation.operations.has(operationId)) {
      sendJson(
        res,
        409,
        errorsBody('Operation with ID already exists: pick another operationId', 'CONFLICT'),
      );
      return;
    }
    const refusal = refuseOperation(reservation);
    if (refusal !== null) {
      sendJson(res, 429, errorsBody(refusal, 'LIMIT_EXCEEDED'));
      return;
    }
    const prepared = service.prepare(params, {
      method: req.method ?? 'POST',
      resumeAfter: null,
      principal,
    });
    if (prepared.kind === 'invalid') {
      sendJson(res, 400, { errors: maskResult({ errors: prepared.errors }, logger).errors });
      return;
    }
    reservation.operations.set(operationId, null);
    const sink: StreamSink = {
      encoder: singleConnectionEncoder(operationId),
      write(frame) {
        if (reservations.get(token) !== reservation) return;
        if (reservation.connection) reservation.connection.write(frame);
        else keepPending(reservation, frame, reqId);
      },
      drained: () => reservation.connection?.drained() ?? null,
      done: () => reservation.operations.delete(operationId),
      queueBytes: () => reservation.connection?.queueBytes() ?? reservation.pendingBytes,
    };
    const running = service.run(prepared, sink, opener(principal, reqId, 'single'));
    if (reservation.operations.has(operationId)) reservation.operations.set(operationId, running);
    // It filled up while this operation started: it ends like the others did.
    if (reservation.full && !reservation.connection) endKept(reservation);
    sendJson(res, 202, null);
  }

  /** Why a reservation takes no more operations now, or `null` when it does. */
  function refuseOperation(reservation: Reservation): string | null {
    if (reservation.full && !reservation.connection) {
      return (
        `This stream's reservation already keeps ${reservation.pendingBytes} bytes in ` +
        `${reservation.pending.length} frames for a stream that has not connected, past ` +
        'TIDINGS_MAX_QUEUE_BYTES or TIDINGS_MAX_QUEUE, and its operations ended as SLOW_CONSUMER: ' +
        'open its stream (GET with its token) to receive them, then send operations again'
      );
    }
    if (reservation.operations.size >= MAX_OPERATIONS_PER_STREAM) {
      return (
        `This stream already runs ${reservation.operations.size} operations, the most one ` +
        'stream may run: stop one (DELETE ?operationId=) or wait until one completes, or use ' +
        'another stream'
      );
    }
    return null;
  }

  /**
   * `HEAD` on a distinct-connections stream URL: the status its `GET` would open with (`200`, or
   * the `4xx` of an operation that cannot run), with the error code in `tidings-error-code`, and
   * no stream. It lets a browser whose `EventSource` gave up learn why without subscribing again.
   */
  function check(req: IncomingMessage, res: ServerResponse, url: URL, principal: Principal) {
    const prepared = service.prepare(paramsOfUrl(url), {
      method: 'GET',
      resumeAfter: null,
      principal,
    });
    const error =
      prepared.kind === 'invalid'
        ? prepared.errors[0]
        : prepared.kind === 'once'
          ? prepared.refusal
          : undefined;
    if (!error) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.end();
      return;
    }
    const shown = maskError(error, logger);
    const code = String(
      shown.extensions.code ??
        (shown.message.startsWith('Syntax Error')
          ? 'GRAPHQL_PARSE_FAILED'
          : 'GRAPHQL_VALIDATION_FAILED'),
    );
    res.writeHead(code === 'FORBIDDEN' ? 403 : 400, {
      'tidings-error-code': code,
      'access-control-expose-headers': 'tidings-error-code',
    });
    res.end();
  }

  async function handle(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    principal: Principal = UNAUTHENTICATED_ADMIN,
    reqId: string | null = null,
  ): Promise<void> {
    try {
      const method = req.method ?? 'GET';
      const headerToken = req.headers[TOKEN_HEADER];
      const token =
        (typeof headerToken === 'string' ? headerToken : null) ?? url.searchParams.get('token');
      const found = token ? reservations.get(token) : undefined;
      // A reservation is its owner's: to anyone else it does not exist.
      const reservation = found && found.owner === principal.subject ? found : undefined;
      if (acceptsEventStream(req.headers.accept) && (method === 'GET' || method === 'POST')) {
        // The request id goes out with the stream's headers (see `idHeader`).
        if (!token) await distinct(req, res, url, principal, reqId);
        else if (reservation) openReserved(req, res, token, reservation, reqId);
        else sendJson(res, 404, errorsBody(STREAM_NOT_FOUND, 'NOT_FOUND'), idHeader(reqId));
        return;
      }
      if (reqId !== null) res.setHeader('x-request-id', reqId);
      if (method === 'HEAD' && !token) {
        check(req, res, url, principal);
        return;
      }
      if (method === 'PUT') {
        reserve(req, res, principal);
        return;
      }
      if (!token || !reservation) {
        sendJson(
          res,
          404,
          token
            ? errorsBody(STREAM_NOT_FOUND, 'NOT_FOUND')
            : errorsBody(
                'Send Accept: text/event-stream for a stream, or reserve one with PUT (single connection mode)',
                'NOT_FOUND',
              ),
        );
        return;
      }
      if (method === 'DELETE') {
        const operationId = url.searchParams.get('operationId');
        if (!operationId) {
          sendJson(
            res,
            400,
            errorsBody('Operation ID is missing: DELETE ?operationId=<id>', 'BAD_USER_INPUT'),
          );
          return;
        }
        reservation.operations.get(operationId)?.stop('client_gone');
        reservation.operations.delete(operationId);
        sendJson(res, 200, null);
        return;
      }
      if (method !== 'GET' && method !== 'POST') {
        sendJson(res, 405, errorsBody(`Method ${method} is not allowed here`, 'BAD_REQUEST'), {
          allow: 'GET, POST, PUT, DELETE',
        });
        return;
      }
      await operate(req, res, url, token, reservation, principal, reqId);
    } catch (err) {
      const withId = reqId === null ? {} : { reqId };
      if (res.headersSent) {
        logger.error({ err, ...withId }, 'stream request failed after the response started');
        res.end();
        return;
      }
      if (reqId !== null) res.setHeader('x-request-id', reqId);
      if (err instanceof HttpError) sendJson(res, err.status, errorsBody(err.message, err.code));
      else {
        logger.error({ err, ...withId }, 'stream request failed');
        sendJson(res, 500, errorsBody(MASKED_MESSAGE, 'INTERNAL_SERVER_ERROR'));
      }
    }
  }

  return Object.assign(handle, { control: service.control });
}

/**
 * The handler returned by {@link createGraphQLSseHandler}: answers a stream request of
 * `principal`, and has `control` (the engine's) to end open streams.
 */
export type GraphQLSseHandler = ReturnType<typeof createGraphQLSseHandler>;
