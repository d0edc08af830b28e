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
import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ExecutionResult } from 'graphql';
import type { Logger } from 'pino';
import { UNAUTHENTICATED_ADMIN, type Principal } from '../auth/principal.js';
import {
  HistoryGapError,
  LimitError,
  SlowConsumerError,
  StreamEndedError,
  type TidingsError,
  type TidingsErrorCode,
} from '../errors.js';
import { encodeCursor } from '../events/cursor.js';
import { createResultGroups } from '../hub/groups.js';
import type { Hub, HubStream } from '../hub/hub.js';
import type { Metrics, StreamEndReason } from '../observability/metrics.js';
import type { StreamControl, StreamMode, StreamOwner } from '../stream/types.js';
import {
  errorResult,
  errorsBody,
  HttpError,
  maskError,
  maskResult,
  MASKED_MESSAGE,
} from './errors.js';
import type { GraphQLParams, OperationPreparer, PreparedOperation } from '../stream/operation.js';
import {
  acceptsEventStream,
  completeFrame,
  nextFrame,
  type SseConnection,
  type SseRegistry,
} from './sse.js';

const tokenExpired = () =>
  new StreamEndedError(
    'TOKEN_EXPIRED',
    '[auth] the token of this stream expired: reconnect with a fresh token and resume from the ' +
      'last cursor you received',
  );

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
  hub: Hub;
  sse: SseRegistry;
  preparer: OperationPreparer;
  logger: Logger;
  /** Reads a request body as text, enforcing the size limit. */
  readBody: (req: IncomingMessage) => Promise<string>;
  /**
   * How long a reservation waits for its stream before it is dropped, ms.
   * @default 60000
   */
  reservationTtlMs?: number;
  /**
   * Most streams open at once per client: the client id a stream asks for, else the caller's
   * client id or subject. Streams with none of these are not counted.
   * @default Infinity
   */
  maxStreamsPerClient?: number;
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
  /** Where open streams, deliveries and ended streams are counted. */
  metrics?: Metrics;
}

/** A stream in the registry of open streams. */
interface OpenStream {
  id: string;
  /** The request that opened it. */
  reqId: string | null;
  owner: StreamOwner;
  mode: StreamMode;
  inboxes: readonly string[] | null;
  since: number;
  /** Its stream in the hub, which counts its deliveries (read only when listed or scraped). */
  hub: HubStream | null;
  /** Where its frames wait: its own response, or the reservation of its single connection. */
  queue: ServerResponse | Reservation;
  /** Set once the stream runs. */
  running: Running | null;
}

/** Why a stream that ended with `error` ended. */
const END_REASONS: Partial<Record<TidingsErrorCode, StreamEndReason>> = {
  SLOW_CONSUMER: 'slow_consumer',
  TOKEN_EXPIRED: 'token_expired',
  TOKEN_REVOKED: 'token_revoked',
  STREAM_ENDED: 'ended_by_admin',
  SHUTTING_DOWN: 'shutdown',
};

const endReason = (error: TidingsError): StreamEndReason => END_REASONS[error.code] ?? 'error';

/** Where an operation's frames go: its own connection, or a shared single connection. */
interface Outlet {
  /** Operation id in single-connection mode; null in distinct mode. */
  operationId: string | null;
  write(frame: string | Buffer): void;
  /** A promise while the connection's send buffer is full (see `SseConnection.drained`). */
  drained(): Promise<void> | null;
  /** Called once the operation has sent its `complete`. */
  done(): void;
  /** Where the frames wait: the operation's own response, or its reservation. */
  queue: ServerResponse | Reservation;
}

/** A running operation that can be stopped. */
interface Running {
  /** Stops it silently (the client asked, or the connection is gone). */
  stop(reason?: StreamEndReason): void;
  /** Ends it with an error the client sees, then `complete` (e.g. a slow consumer). */
  fail(error: TidingsError): void;
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
  operations: Map<string, Running | null>;
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

/** Bytes waiting to be sent on a stream's response (or kept for a connection yet to open). */
function queueBytes(queue: ServerResponse | Reservation): number {
  if ('pendingBytes' in queue) {
    return queue.response ? queueBytes(queue.response) : queue.pendingBytes;
  }
  return queue.writableEnded || queue.destroyed ? 0 : queue.writableLength;
}

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
  const { hub, sse, preparer, logger, metrics } = options;
  const groups = createResultGroups();
  const reservationTtlMs = options.reservationTtlMs ?? 60_000;
  const reservations = new Map<string, Reservation>();
  const maxReservations = options.maxReservations ?? Infinity;
  const maxReservationsPerCaller = options.maxReservationsPerCaller ?? Infinity;
  /** Reservations waiting for their stream, per caller; and in all. */
  const waitingPerCaller = new Map<string, number>();
  let waiting = 0;
  const maxStreamsPerClient = options.maxStreamsPerClient ?? Infinity;
  /** Open subscription streams, for ending them by owner and listing them. */
  const openStreams = new Set<OpenStream>();
  /** Open streams per client key. */
  const perClient = new Map<string, number>();
  /** Events delivered by the streams that ended. */
  let endedDelivered = 0;
  const streamIdPrefix = randomBytes(4).toString('hex');
  let streamCount = 0;
  metrics?.readStreamsFrom(() => {
    const open = { distinct: 0, single: 0, websocket: 0 };
    let delivered = endedDelivered;
    for (const stream of openStreams) {
      open[stream.mode]++;
      delivered += stream.hub?.delivered ?? 0;
    }
    return { open, delivered, registered: hub.size };
  });

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

  /**
   * Runs a prepared operation of the request `reqId`, writing its frames to `outlet`; returns a
   * handle to stop it.
   */
  function run(
    prepared: PreparedOperation,
    outlet: Outlet,
    principal: Principal,
    reqId: string | null,
  ): Running {
    let stopped = false;
    const resultFrame = (result: ExecutionResult, cursor: string | null) => {
      const masked = result.errors?.length ? maskResult(result, requestLogger(reqId)) : result;
      const data = JSON.stringify(
        outlet.operationId === null ? masked : { id: outlet.operationId, payload: masked },
      );
      return nextFrame(cursor, data);
    };
    const sendResult = (result: ExecutionResult, cursor: string | null) =>
      outlet.write(resultFrame(result, cursor));
    const complete = () => {
      if (stopped) return;
      stopped = true;
      outlet.write(completeFrame(outlet.operationId));
      outlet.done();
    };
    const once: Running = {
      stop: () => (stopped = true),
      // A query still running when its stream overflows answers with the error: its client
      // learns why the result did not come.
      fail(error) {
        if (stopped) return;
        sendResult(errorResult(error, requestLogger(reqId)), null);
        complete();
      },
    };
    if (prepared.kind === 'invalid') {
      sendResult({ errors: prepared.errors }, null);
      complete();
      return once;
    }
    if (prepared.kind === 'single') {
      prepared.run().then(
        (result) => {
          if (stopped) return;
          sendResult(result, null);
          complete();
        },
        (err: unknown) => {
          if (stopped) return;
          sendResult(errorResult(err, requestLogger(reqId)), null);
          complete();
        },
      );
      return once;
    }
    // A subscription. Its group renders each event once for every stream with the same
    // document, variables and visibility; this stream writes the group's bytes. Rendering is
    // synchronous unless a resolver is asynchronous; then frames wait in `pending`, in order.
    const streamOp = prepared;
    const owner: StreamOwner = { principal, clientId: streamOp.spec.clientId };
    const clientKey = owner.clientId ?? principal.clientId ?? principal.subject;
    if (clientKey !== null && (perClient.get(clientKey) ?? 0) >= maxStreamsPerClient) {
      const error = new LimitError(
        `[stream] client "${clientKey}" already has ${maxStreamsPerClient} open streams ` +
          '(TIDINGS_MAX_STREAMS_PER_CLIENT): close one, or use one stream for several inboxes',
        { details: { limit: maxStreamsPerClient } },
      );
      sendResult(errorResult(error, requestLogger(reqId)), null);
      complete();
      return once;
    }
    const group = groups.join(streamOp.groupKey, () => ({
      render: (event) => renderResult(streamOp.execute.bind(null, event)),
      frame: (cursor, payload, operationId) =>
        nextFrame(
          cursor,
          operationId === null
            ? payload
            : `{"id":${JSON.stringify(operationId)},"payload":${payload}}`,
        ),
    }));
    let pending: Promise<void> | null = null;
    let left = false;
    let expiry: NodeJS.Timeout | null = null;
    const record: OpenStream = {
      id: `${streamIdPrefix}-${(++streamCount).toString(36)}`,
      reqId,
      owner,
      mode: outlet.operationId === null ? 'distinct' : 'single',
      inboxes: streamOp.spec.requestedInboxes ?? null,
      since: Date.now(),
      hub: null,
      queue: outlet.queue,
      running: null,
    };
    openStreams.add(record);
    if (clientKey !== null) perClient.set(clientKey, (perClient.get(clientKey) ?? 0) + 1);
    logger.info({ ...describe(record), inboxes: record.inboxes }, 'stream opened');
    const leave = (reason: StreamEndReason) => {
      if (left) return;
      left = true;
      groups.leave(group);
      openStreams.delete(record);
      if (clientKey !== null) {
        const n = (perClient.get(clientKey) ?? 1) - 1;
        if (n === 0) perClient.delete(clientKey);
        else perClient.set(clientKey, n);
      }
      if (expiry) clearTimeout(expiry);
      const delivered = record.hub?.delivered ?? 0;
      endedDelivered += delivered;
      metrics?.streamEnded(reason);
      logger.info(
        {
          ...describe(record),
          durationMs: Date.now() - record.since,
          eventsDelivered: delivered,
          reason,
        },
        'stream ended',
      );
    };
    // A stream lives no longer than its token.
    const expiresAt = principal.expiresAt;
    const arm = () => {
      if (expiresAt === null) return;
      const left = expiresAt - Date.now();
      expiry = setTimeout(
        () => (Date.now() < expiresAt ? arm() : handle.fail(tokenExpired())),
        Math.max(0, Math.min(left, 2 ** 31 - 1)),
      );
      expiry.unref();
    };
    /** Writes a frame now, or after the frames still being rendered, keeping their order. */
    const emit = (frame: string | Buffer | Promise<string | Buffer>) => {
      if (pending === null && !(frame instanceof Promise)) {
        outlet.write(frame);
        return;
      }
      const mine: Promise<void> = (pending ?? Promise.resolve())
        .then(() => frame)
        .then((bytes) => {
          if (!stopped) outlet.write(bytes);
          if (pending === mine) pending = null;
        });
      pending = mine;
    };
    const stream: HubStream = hub.open(streamOp.spec, {
      deliver(event) {
        if (!stopped) emit(group.frameFor(event, outlet.operationId));
      },
      gap({ afterSeq, purgedThrough }) {
        if (stopped) return;
        // The frame's `id:` is the horizon, so a reconnecting `EventSource` resumes after the
        // gap instead of being told about it again.
        const horizon = encodeCursor(purgedThrough);
        const error = new HistoryGapError(encodeCursor(afterSeq), horizon);
        emit(resultFrame(errorResult(error, requestLogger(reqId)), horizon));
      },
      // A replay waits for frames still being rendered and for the client to read.
      backlog: () => pending ?? outlet.drained(),
      end(error: TidingsError | null) {
        leave(error ? endReason(error) : 'completed');
        if (error) {
          // The client resumes from the last cursor it received, so frames still being rendered
          // are dropped and the error (the resume hint at shutdown) goes out now: after them, it
          // could come too late for a connection that is about to close.
          if (stopped) return;
          sendResult(errorResult(error, requestLogger(reqId)), null);
          complete();
          return;
        }
        if (pending) void pending.then(complete);
        else complete();
      },
    });
    const handle: Running = {
      stop(reason = 'client_gone') {
        stopped = true;
        leave(reason);
        stream.close();
      },
      fail(error) {
        if (stopped) return;
        leave(endReason(error));
        stream.close();
        sendResult(errorResult(error, requestLogger(reqId)), null);
        complete();
      },
    };
    record.hub = stream;
    record.running = handle;
    if (!left) arm();
    return handle;
  }

  /** The logger of the request `reqId`, made only to log an error. */
  function requestLogger(reqId: string | null): Logger {
    return reqId === null ? logger : logger.child({ reqId });
  }

  /** What the log lines of a stream say about it. */
  function describe(stream: OpenStream) {
    const { subject } = stream.owner.principal;
    const clientId = stream.owner.clientId ?? stream.owner.principal.clientId;
    return {
      ...(stream.reqId === null ? {} : { reqId: stream.reqId }),
      streamId: stream.id,
      mode: stream.mode,
      ...(subject === null ? {} : { subject }),
      ...(clientId === null ? {} : { clientId }),
    };
  }

  /** Executes, masks and serialises one result; never rejects. */
  function renderResult(
    executeOnce: () => ExecutionResult | Promise<ExecutionResult>,
  ): string | Promise<string> {
    const serialise = (result: ExecutionResult) => JSON.stringify(maskResult(result, logger));
    const fail = (err: unknown) => serialise(errorResult(err, logger));
    try {
      const result = executeOnce();
      return result instanceof Promise ? result.then(serialise, fail) : serialise(result);
    } catch (err) {
      return fail(err);
    }
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
    const prepared = preparer.prepare(
      params,
      req.method ?? 'GET',
      typeof lastEventId === 'string' && lastEventId ? lastEventId : null,
      principal,
    );
    const conn = sse.open(req, res, idHeader(reqId));
    const running = run(
      prepared,
      {
        operationId: null,
        write: (f) => conn.write(f),
        drained: () => conn.drained(),
        done: () => conn.end(),
        queue: res,
      },
      principal,
      reqId,
    );
    conn.onClose(() => running.stop());
    conn.onOverflow(() => running.fail(new SlowConsumerError(sse.limits)));
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
    const { maxBytes, maxEvents } = sse.limits;
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
    const error = new SlowConsumerError(sse.limits);
    for (const op of [...reservation.operations.values()]) op?.fail(error);
    reservation.overflowing = false;
  }

  function dropReservation(token: string, reason: StreamEndReason = 'client_gone'): void {
    const reservation = reservations.get(token);
    if (!reservation) return;
    reservations.delete(token);
    stopWaiting(reservation);
    if (reservation.expiry) clearTimeout(reservation.expiry);
    for (const op of reservation.operations.values()) op?.stop(reason);
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
      const error = new SlowConsumerError(sse.limits);
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
    const prepared = preparer.prepare(params, req.method ?? 'POST', null, principal);
    if (prepared.kind === 'invalid') {
      sendJson(res, 400, { errors: maskResult({ errors: prepared.errors }, logger).errors });
      return;
    }
    reservation.operations.set(operationId, null);
    const running = run(
      prepared,
      {
        operationId,
        write(frame) {
          if (reservations.get(token) !== reservation) return;
          if (reservation.connection) reservation.connection.write(frame);
          else keepPending(reservation, frame, reqId);
        },
        drained: () => reservation.connection?.drained() ?? null,
        done: () => reservation.operations.delete(operationId),
        queue: reservation,
      },
      principal,
      reqId,
    );
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
    const prepared = preparer.prepare(paramsOfUrl(url), 'GET', null, principal);
    const error =
      prepared.kind === 'invalid'
        ? prepared.errors[0]
        : prepared.kind === 'single'
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

  const control: StreamControl = {
    end(match, error) {
      let ended = 0;
      for (const stream of [...openStreams]) {
        if (!match(stream.owner)) continue;
        stream.running?.fail(error);
        ended++;
      }
      return ended;
    },
    owners: () => [...openStreams].map((s) => s.owner),
    list: () =>
      [...openStreams].map((s) => ({
        id: s.id,
        mode: s.mode,
        subject: s.owner.principal.subject,
        clientId: s.owner.clientId ?? s.owner.principal.clientId,
        inboxes: s.inboxes,
        since: s.since,
        eventsDelivered: s.hub?.delivered ?? 0,
        queueBytes: queueBytes(s.queue),
      })),
  };

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

  return Object.assign(handle, { control });
}

/**
 * The handler returned by {@link createGraphQLSseHandler}: answers a stream request of
 * `principal`, and has `control` to end open streams.
 */
export type GraphQLSseHandler = ReturnType<typeof createGraphQLSseHandler>;
