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
 *
 * This is the protocol only: reservations, tokens, operation ids and framing. Operations run on
 * the stream engine (`stream/service.ts`). Like graphql-sse's own handler, it takes a small
 * request of its own and returns what to send; `graphql-sse-http.ts` adapts it to `node:http`.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { UNAUTHENTICATED_ADMIN, type Principal } from '../auth/principal.js';
import { HttpError, SlowConsumerError } from '../errors.js';
import { errorsBody, maskError, maskResult, MASKED_MESSAGE } from '../schema/mask.js';
import { acceptsEventStream, completeFrame, nextFrame } from '../sse-frames.js';
import type { GraphQLParams } from '../stream/operation.js';
import type {
  FrameEncoder,
  RunningOperation,
  StreamMode,
  StreamService,
  StreamSink,
} from '../stream/types.js';

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

/** A request, as the handler needs it (see `graphql-sse-http.ts` for `node:http`). */
export interface GraphQLSseRequest {
  method: string;
  url: URL;
  /** The value of a header (its name in lower case), if sent. */
  header(name: string): string | undefined;
  /** Reads the body as text, enforcing the size limit. */
  body(): Promise<string>;
  /** The caller's address, which counts its reservations when it has no subject. */
  remoteAddress: string | null;
}

/**
 * An event stream the adapter opened for the handler (an SSE response): the handler writes
 * frames to it, and learns when it closes or its client reads too slowly.
 */
export interface EventStreamConnection {
  /** Writes a frame; ignored once closed. */
  write(frame: string | Buffer): void;
  /** A promise while the send buffer is full, resolved once it drained or closed. */
  drained(): Promise<void> | null;
  /** Bytes waiting to be sent. */
  queueBytes(): number;
  /** Ends the stream (idempotent). */
  end(): void;
  /** Runs `callback` once it ended, by either side (at once if it has). */
  onClose(callback: () => void): void;
  /** Runs `callback` once, when its client became a slow consumer. */
  onOverflow(callback: () => void): void;
}

/** What to answer: a complete response, or an event stream to open with `headers`. */
export type GraphQLSseResponse =
  | { status: number; headers: Record<string, string>; body: string }
  | {
      status: 200;
      headers: Record<string, string>;
      /** Called with the stream once it is open. */
      stream(connection: EventStreamConnection): void;
    };

/** Dependencies of {@link createGraphQLSseHandler}. */
export interface GraphQLSseOptions {
  /** The stream engine the operations run on. */
  service: StreamService;
  logger: Logger;
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
  connection: EventStreamConnection | null;
  /** Set once a request claimed its stream, which then opens. */
  claimed: boolean;
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

/** A JSON answer (empty for a `null` body). */
function json(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): GraphQLSseResponse {
  return {
    status,
    headers: {
      ...(body === null ? {} : { 'content-type': 'application/json; charset=utf-8' }),
      ...headers,
    },
    body: body === null ? '' : JSON.stringify(body),
  };
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
  const { service, logger } = options;
  const reservationTtlMs = options.reservationTtlMs ?? 60_000;
  const reservations = new Map<string, Reservation>();
  const maxReservations = options.maxReservations ?? Infinity;
  const maxReservationsPerCaller = options.maxReservationsPerCaller ?? Infinity;
  /** Reservations waiting for their stream, per caller; and in all. */
  const waitingPerCaller = new Map<string, number>();
  let waiting = 0;

  async function readParams(request: GraphQLSseRequest): Promise<GraphQLParams> {
    if (request.method === 'GET') return paramsOfUrl(request.url);
    const type = request.header('content-type') ?? '';
    if (!/^application\/(graphql-response\+)?json\b/i.test(type)) {
      throw new HttpError(
        415,
        'BAD_USER_INPUT',
        'Send the request as Content-Type: application/json',
      );
    }
    const body = parseJsonObject(await request.body(), 'The request body');
    if (!body) throw new HttpError(400, 'BAD_USER_INPUT', 'The request body must be a JSON object');
    return toParams(body);
  }

  /** Distinct connections mode: the operation owns the stream. */
  async function distinct(
    request: GraphQLSseRequest,
    principal: Principal,
    reqId: string | null,
  ): Promise<GraphQLSseResponse> {
    const params = await readParams(request);
    const prepared = service.prepare(params, {
      method: request.method,
      resumeAfter: request.header('last-event-id') || null,
      principal,
    });
    return {
      status: 200,
      headers: {},
      stream(conn) {
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
      },
    };
  }

  function reserve(request: GraphQLSseRequest, principal: Principal): GraphQLSseResponse {
    const caller = principal.subject ?? `address ${request.remoteAddress ?? 'unknown'}`;
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
      return json(429, errorsBody(message, 'LIMIT_EXCEEDED'), { 'retry-after': '5' });
    }
    waitingPerCaller.set(caller, callerWaiting + 1);
    waiting++;
    const token = randomUUID();
    const reservation: Reservation = {
      owner: principal.subject,
      waiting: caller,
      connection: null,
      claimed: false,
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
    return { status: 201, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: token };
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

  /** Opens the stream of a reservation, which then carries its operations' frames. */
  function openReserved(token: string, reservation: Reservation): GraphQLSseResponse {
    if (reservation.claimed) return json(409, errorsBody('Stream already open', 'CONFLICT'));
    // Claimed now, not once open: another request for it must get 409 meanwhile.
    reservation.claimed = true;
    if (reservation.expiry) clearTimeout(reservation.expiry);
    reservation.expiry = null;
    stopWaiting(reservation);
    return {
      status: 200,
      headers: {},
      stream: (conn) => connectReserved(token, reservation, conn),
    };
  }

  function connectReserved(
    token: string,
    reservation: Reservation,
    conn: EventStreamConnection,
  ): void {
    reservation.connection = conn;
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
    request: GraphQLSseRequest,
    token: string,
    reservation: Reservation,
    principal: Principal,
    reqId: string | null,
  ): Promise<GraphQLSseResponse> {
    const params = await readParams(request);
    const operationId = params.extensions?.operationId;
    if (typeof operationId !== 'string' || operationId === '') {
      return json(
        400,
        errorsBody('Operation ID is missing: set extensions.operationId', 'BAD_USER_INPUT'),
      );
    }
    if (reservation.operations.has(operationId)) {
      return json(
        409,
        errorsBody('Operation with ID already exists: pick another operationId', 'CONFLICT'),
      );
    }
    const refusal = refuseOperation(reservation);
    if (refusal !== null) return json(429, errorsBody(refusal, 'LIMIT_EXCEEDED'));
    const prepared = service.prepare(params, {
      method: request.method,
      resumeAfter: null,
      principal,
    });
    if (prepared.kind === 'invalid') {
      return json(400, { errors: maskResult({ errors: prepared.errors }, logger).errors });
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
    return json(202, null);
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
  function check(url: URL, principal: Principal): GraphQLSseResponse {
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
      return {
        status: 200,
        headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' },
        body: '',
      };
    }
    const shown = maskError(error, logger);
    const code = String(
      shown.extensions.code ??
        (shown.message.startsWith('Syntax Error')
          ? 'GRAPHQL_PARSE_FAILED'
          : 'GRAPHQL_VALIDATION_FAILED'),
    );
    return {
      status: code === 'FORBIDDEN' ? 403 : 400,
      headers: {
        'tidings-error-code': code,
        'access-control-expose-headers': 'tidings-error-code',
      },
      body: '',
    };
  }

  /** Answers a request of `principal`; throws an {@link HttpError} for a bad one. */
  async function route(
    request: GraphQLSseRequest,
    principal: Principal,
    reqId: string | null,
  ): Promise<GraphQLSseResponse> {
    const { method, url } = request;
    const token = request.header(TOKEN_HEADER) ?? url.searchParams.get('token');
    const found = token ? reservations.get(token) : undefined;
    // A reservation is its owner's: to anyone else it does not exist.
    const reservation = found && found.owner === principal.subject ? found : undefined;
    if (acceptsEventStream(request.header('accept')) && (method === 'GET' || method === 'POST')) {
      if (!token) return distinct(request, principal, reqId);
      if (reservation) return openReserved(token, reservation);
      return json(404, errorsBody(STREAM_NOT_FOUND, 'NOT_FOUND'));
    }
    if (method === 'HEAD' && !token) return check(url, principal);
    if (method === 'PUT') return reserve(request, principal);
    if (!token || !reservation) {
      return json(
        404,
        token
          ? errorsBody(STREAM_NOT_FOUND, 'NOT_FOUND')
          : errorsBody(
              'Send Accept: text/event-stream for a stream, or reserve one with PUT (single connection mode)',
              'NOT_FOUND',
            ),
      );
    }
    if (method === 'DELETE') {
      const operationId = url.searchParams.get('operationId');
      if (!operationId) {
        return json(
          400,
          errorsBody('Operation ID is missing: DELETE ?operationId=<id>', 'BAD_USER_INPUT'),
        );
      }
      reservation.operations.get(operationId)?.stop('client_gone');
      reservation.operations.delete(operationId);
      return json(200, null);
    }
    if (method !== 'GET' && method !== 'POST') {
      return json(405, errorsBody(`Method ${method} is not allowed here`, 'BAD_REQUEST'), {
        allow: 'GET, POST, PUT, DELETE',
      });
    }
    return operate(request, token, reservation, principal, reqId);
  }

  /**
   * Answers a stream request of `principal`; never throws. The request id goes out with the
   * answer's headers.
   */
  return async function handle(
    request: GraphQLSseRequest,
    principal: Principal = UNAUTHENTICATED_ADMIN,
    reqId: string | null = null,
  ): Promise<GraphQLSseResponse> {
    let response: GraphQLSseResponse;
    try {
      response = await route(request, principal, reqId);
    } catch (err) {
      if (err instanceof HttpError) response = json(err.status, errorsBody(err.message, err.code));
      else {
        logger.error({ err, ...(reqId === null ? {} : { reqId }) }, 'stream request failed');
        response = json(500, errorsBody(MASKED_MESSAGE, 'INTERNAL_SERVER_ERROR'));
      }
    }
    if (reqId !== null) response.headers['x-request-id'] = reqId;
    return response;
  };
}

/** The handler returned by {@link createGraphQLSseHandler}. */
export type GraphQLSseHandler = ReturnType<typeof createGraphQLSseHandler>;
