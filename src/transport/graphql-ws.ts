/**
 * The GraphQL over WebSocket protocol (`graphql-transport-ws`, graphql-ws's PROTOCOL.md) over any
 * socket: `connection_init` (authenticated, within a deadline) and `connection_ack`, `ping` and
 * `pong` both ways, then `subscribe` / `next` / `error` / `complete` per operation id. Every
 * operation, subscriptions as well as queries and mutations, runs on the stream engine
 * (`StreamService`), which serialises each result once per group. Its UTF-8 bytes (with the
 * closing `}`) are made once per event and shared by every socket: each socket only puts its own
 * prefix `{"id":..,"type":"next","payload":` before them (see {@link WsSocket.prefixed}).
 *
 * It knows no socket library: `graphql-ws-node.ts` adapts the `ws` package to {@link WsSocket}.
 */
import type { Logger } from 'pino';
import type { Principal } from '../auth/principal.js';
import {
  AuthenticationError,
  LimitError,
  ShuttingDownError,
  SlowConsumerError,
  StoreUnavailableError,
  StreamEndedError,
  type TidingsError,
} from '../errors.js';
import type { GraphQLParams } from '../stream/operation.js';
import type { FrameEncoder, RunningOperation, StreamService } from '../stream/types.js';
import { errorResult, maskResult } from '../schema/mask.js';
import { MAX_OPERATIONS_PER_STREAM } from './graphql-sse.js';

/** The WebSocket subprotocol of graphql-ws (and of Apollo Client's and urql's graphql-ws links). */
export const GRAPHQL_TRANSPORT_WS = 'graphql-transport-ws';

/**
 * The close codes Tidings uses. The 4xxx ones are graphql-ws's; a graphql-ws client retries
 * after 1001, 1013 and 4403, and gives up after 4400, 4401, 4409, 4429 and 4500.
 */
export const CloseCode = {
  /** The server is shutting down: reconnect (to another instance) and resume. */
  GoingAway: 1001,
  /** The client read too slowly (its operations ended with `SLOW_CONSUMER`), or the store did not answer. */
  TryAgainLater: 1013,
  /** A message that is not JSON, not an object, of an unknown type or missing a field. */
  BadRequest: 4400,
  /** `subscribe` before the connection was acknowledged. */
  Unauthorized: 4401,
  /** No token, an invalid one, or the token expired. */
  Forbidden: 4403,
  /** No `connection_init` within the deadline. */
  ConnectionInitialisationTimeout: 4408,
  /** `subscribe` with the id of an operation that still runs. */
  SubscriberAlreadyExists: 4409,
  /** A second `connection_init`. */
  TooManyInitialisationRequests: 4429,
  /** Authentication failed unexpectedly (logged). */
  InternalServerError: 4500,
} as const;

/** A WebSocket, as the protocol sees it (see `graphql-ws-node.ts` for the `ws` one). */
export interface WsSocket {
  /** Sends one text message; ignored once the socket is closing. */
  send(message: string | Buffer): void;
  /**
   * A sender of text messages that are `prefix` followed by a body: the body is shared by many
   * sockets (the bytes of one result), so it is written as it is, never copied or changed.
   * Ignored once the socket is closing, like {@link send}.
   */
  prefixed(prefix: Buffer): (body: Buffer) => void;
  /** Whether the send buffer is full: what is sent now waits in memory. */
  full(): boolean;
  /** Bytes waiting to be sent. */
  queuedBytes(): number;
  /** A promise while the send buffer is full (resolved once it drained or closed); else null. */
  drained(): Promise<void> | null;
  /** Starts the closing handshake; `reason` is at most 123 bytes. */
  close(code: number, reason: string): void;
  /** Drops the connection at once, without a closing handshake. */
  terminate(): void;
}

/** What the socket adapter tells the protocol about one socket. */
export interface WsConnection {
  /** A text (or binary) message arrived. */
  message(data: string): void;
  /** The socket's send buffer drained. */
  drain(): void;
  /** The socket closed, by either side. */
  closed(code: number): void;
}

/** Options of {@link createGraphQLWsServer}; `Request` is what the upgrade request is to the adapter. */
export interface GraphQLWsOptions<Request> {
  streams: StreamService;
  logger: Logger;
  /**
   * The caller of a socket: from the token of `connection_init`'s payload when there is one
   * (`token` is null otherwise), else from the upgrade request (cookie, `Authorization`).
   * @throws AuthenticationError (closed with 4403), StoreUnavailableError (1013)
   */
  authenticate(token: string | null, request: Request): Promise<Principal>;
  /** Interval of the server's `ping`; a socket that sent nothing since the last one is dropped. */
  keepaliveMs: number;
  /**
   * How long a socket may wait before `connection_init`, ms.
   * @default 3000
   */
  initTimeoutMs?: number;
  /**
   * Most operations one socket runs at once; one more gets an `error` (`LIMIT_EXCEEDED`).
   * @default MAX_OPERATIONS_PER_STREAM (100)
   */
  maxOperations?: number;
}

/** The protocol side of every WebSocket of an instance. */
export interface GraphQLWsServer<Request> {
  /** A socket was opened (its handshake is done); returns what its adapter calls. */
  opened(socket: WsSocket, request: Request, reqId: string | null): WsConnection;
  /** Sockets that have not sent `connection_init` yet. */
  readonly waiting: number;
  /** Open sockets. */
  readonly size: number;
  /**
   * Shutdown: every operation ends with `SHUTTING_DOWN`, then every socket closes with 1001; new
   * sockets are closed at once, new operations get an `error`.
   */
  close(): void;
}

/** The longest close reason a WebSocket can carry, bytes. */
const MAX_REASON_BYTES = 123;

/** `reason` when it fits in a close frame, else `short`. */
export function closeReason(reason: string, short: string): string {
  return Buffer.byteLength(reason) <= MAX_REASON_BYTES ? reason : short;
}

/** The longest a `setTimeout` waits, ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** A message of a client, checked; or why it is not one. */
type ClientMessage =
  | { type: 'connection_init'; payload: Record<string, unknown> | null }
  | { type: 'ping'; payload: Record<string, unknown> | null }
  | { type: 'pong' }
  | { type: 'subscribe'; id: string; payload: GraphQLParams }
  | { type: 'complete'; id: string };

/** Parses and checks a client's message; returns what is wrong with it as a string. */
export function parseClientMessage(data: string): ClientMessage | string {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return 'Invalid message: not JSON';
  }
  if (!isObject(value)) return 'Invalid message: not a JSON object';
  const { type, id, payload } = value;
  switch (type) {
    case 'connection_init':
    case 'ping':
    case 'pong':
      if (payload != null && !isObject(payload))
        return `Invalid ${type}: payload must be an object`;
      return type === 'pong' ? { type } : { type, payload: payload ?? null };
    case 'subscribe': {
      if (typeof id !== 'string' || id === '') return 'Invalid subscribe: id must be a string';
      if (!isObject(payload)) return 'Invalid subscribe: payload must be an object';
      const { query, variables, operationName, extensions } = payload;
      if (typeof query !== 'string') return 'Invalid subscribe: payload.query must be a string';
      if (variables != null && !isObject(variables)) {
        return 'Invalid subscribe: payload.variables must be an object';
      }
      if (operationName != null && typeof operationName !== 'string') {
        return 'Invalid subscribe: payload.operationName must be a string';
      }
      if (extensions != null && !isObject(extensions)) {
        return 'Invalid subscribe: payload.extensions must be an object';
      }
      return {
        type,
        id,
        payload: {
          query,
          variables: variables ?? null,
          operationName: operationName ?? null,
          extensions: extensions ?? null,
        },
      };
    }
    case 'complete':
      if (typeof id !== 'string' || id === '') return 'Invalid complete: id must be a string';
      return { type, id };
    default:
      return typeof type === 'string'
        ? `Invalid message type "${type.slice(0, 40)}" from a client`
        : 'Invalid message: type must be a string';
  }
}

/**
 * The token of a `connection_init` payload: `{"authorization": "Bearer <jwt>"}` (any case of the
 * key, as Apollo users often write it) or `{"token": "<jwt>"}`; null when it has none.
 * @throws AuthenticationError when `authorization` is not a bearer token
 */
export function payloadToken(payload: Record<string, unknown> | null): string | null {
  if (payload === null) return null;
  const key = Object.keys(payload).find((k) => k.toLowerCase() === 'authorization');
  const header = key === undefined ? undefined : payload[key];
  if (header != null) {
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match?.[1]) {
      throw new AuthenticationError(
        'authorization must be "Bearer <token>" in connection_init payload',
      );
    }
    return match[1];
  }
  const { token } = payload;
  if (token == null) return null;
  if (typeof token !== 'string' || token === '') {
    throw new AuthenticationError('token must be a string in connection_init payload');
  }
  return token;
}

/**
 * The end of a `next` message, `<payload>}`, as UTF-8: what follows the operation's prefix. It
 * names no operation, so every socket's encoder shares it ({@link NEXT_SHARE_KEY}): the result
 * group encodes it once per event, and every socket writes the same Buffer after its own prefix.
 */
const nextBody = (payload: string): Buffer => Buffer.from(`${payload}}`);

/** The share key of graphql-ws encoders: their `next` bodies are the same for every socket. */
const NEXT_SHARE_KEY = 'graphql-ws';

/** The error a socket's operations end with when its token expires. */
const tokenExpired = () =>
  new StreamEndedError(
    'TOKEN_EXPIRED',
    '[auth] the token of this socket expired: reconnect with a fresh token and resume from the ' +
      'last cursor you received',
  );

/** One socket's state. */
interface Socket {
  socket: WsSocket;
  reqId: string | null;
  /** Set once `connection_init` arrived. */
  initialised: boolean;
  /** Set once acknowledged: its caller, fixed for the socket's life. */
  principal: Principal | null;
  /** Running operations by id (`running` is null while the engine starts one). */
  operations: Map<string, { running: RunningOperation | null }>;
  /** Whether it sent anything since the last `ping`. */
  alive: boolean;
  /** Set once it overflowed: its operations were ended, it is closing. */
  slow: boolean;
  /** Set once the server started closing it: what the client sends from then on is ignored. */
  closing: boolean;
  closed: boolean;
  timer: NodeJS.Timeout | null;
}

/** Creates the protocol side of an instance's WebSockets. */
export function createGraphQLWsServer<Request>(
  options: GraphQLWsOptions<Request>,
): GraphQLWsServer<Request> {
  const { streams, logger } = options;
  const initTimeoutMs = options.initTimeoutMs ?? 3_000;
  const maxOperations = options.maxOperations ?? MAX_OPERATIONS_PER_STREAM;
  const sockets = new Set<Socket>();
  let waiting = 0;
  let closing = false;

  // One timer for every socket: a `ping` to each, and a socket silent since the previous one is
  // dropped (its peer is gone, or something in between dropped the connection without closing it).
  const keepalive = setInterval(() => {
    for (const s of sockets) {
      if (s.principal === null) continue;
      if (!s.alive) {
        logger.info({ reqId: s.reqId }, 'websocket dropped: no answer to the last ping');
        s.socket.terminate();
        continue;
      }
      s.alive = false;
      s.socket.send('{"type":"ping"}');
    }
  }, options.keepaliveMs);
  keepalive.unref();

  /** Ends every operation of `s` with `error` (then their `complete`). */
  function failAll(s: Socket, error: TidingsError): void {
    for (const op of [...s.operations.values()]) op.running?.fail(error);
  }

  function close(s: Socket, code: number, reason: string): void {
    if (s.closed || s.closing) return;
    s.closing = true;
    s.socket.close(code, reason);
  }

  /**
   * Sends a message (a string), or the body of a `next` (a Buffer) with `sendNext`; a socket whose
   * queue passes the limits is a slow consumer.
   */
  function send(
    s: Socket,
    frame: string | Buffer,
    watch: ReturnType<StreamService['watchQueue']>,
    sendNext: (body: Buffer) => void,
  ) {
    if (s.closed) return;
    const wasFull = s.socket.full();
    if (typeof frame === 'string') s.socket.send(frame);
    else sendNext(frame);
    if (s.slow || !s.socket.full()) return;
    if (!watch.wrote(s.socket.queuedBytes(), wasFull)) return;
    s.slow = true;
    logger.warn(
      { reqId: s.reqId, queuedBytes: s.socket.queuedBytes() },
      'websocket is a slow consumer: its operations end with SLOW_CONSUMER',
    );
    // Their errors wait behind what the client has yet to read; the close frame after them.
    failAll(s, new SlowConsumerError(streams.limits));
    close(
      s,
      CloseCode.TryAgainLater,
      'Slow consumer: read faster, resubscribe with after: <last cursor>',
    );
  }

  /** Arms the timer that ends the socket when its token expires. */
  function expireAt(s: Socket, expiresAt: number): void {
    const left = expiresAt - Date.now();
    s.timer = setTimeout(
      () => {
        if (Date.now() < expiresAt) return expireAt(s, expiresAt);
        logger.info({ reqId: s.reqId }, 'websocket token expired');
        failAll(s, tokenExpired());
        close(
          s,
          CloseCode.Forbidden,
          'Token expired: reconnect with a fresh token, resume after your last cursor',
        );
      },
      Math.min(Math.max(left, 0), MAX_TIMER_MS),
    );
    s.timer.unref();
  }

  async function init(
    s: Socket,
    payload: Record<string, unknown> | null,
    request: Request,
  ): Promise<void> {
    let principal: Principal;
    try {
      principal = await options.authenticate(payloadToken(payload), request);
    } catch (err) {
      if (s.closed) return;
      if (err instanceof AuthenticationError) {
        logger.info({ reqId: s.reqId, code: err.code, reason: err.message }, 'websocket refused');
        close(
          s,
          CloseCode.Forbidden,
          closeReason(
            `Forbidden: ${err.message}`,
            `Forbidden (${err.code}): the token was refused; reconnect with a valid one`,
          ),
        );
      } else if (err instanceof StoreUnavailableError) {
        close(
          s,
          CloseCode.TryAgainLater,
          'The store did not answer the token check: retry shortly',
        );
      } else {
        logger.error({ err, reqId: s.reqId }, 'websocket authentication failed');
        close(s, CloseCode.InternalServerError, 'Internal server error: the server logged it');
      }
      return;
    }
    if (s.closed) return;
    s.principal = principal;
    if (principal.expiresAt !== null) expireAt(s, principal.expiresAt);
    s.socket.send('{"type":"connection_ack"}');
  }

  function subscribe(s: Socket, id: string, params: GraphQLParams): void {
    const principal = s.principal;
    if (principal === null) {
      close(s, CloseCode.Unauthorized, 'Unauthorized: wait for connection_ack before subscribe');
      return;
    }
    if (s.operations.has(id)) {
      close(
        s,
        CloseCode.SubscriberAlreadyExists,
        closeReason(`Subscriber for ${id} already exists`, 'Subscriber for this id already exists'),
      );
      return;
    }
    const refuse = (error: TidingsError) => {
      const { errors } = errorResult(error, logger);
      s.socket.send(JSON.stringify({ id, type: 'error', payload: errors }));
    };
    if (closing) return refuse(new ShuttingDownError());
    if (s.operations.size >= maxOperations) {
      return refuse(
        new LimitError(
          `This socket already runs ${s.operations.size} operations, the most one socket may ` +
            'run: complete one, or open another socket',
          { details: { limit: maxOperations } },
        ),
      );
    }
    const prepared = streams.prepare(params, {
      method: 'WEBSOCKET',
      resumeAfter: null,
      principal,
    });
    if (prepared.kind === 'invalid') {
      // Refused before it ran: graphql-ws's `error` message, which ends the operation.
      const { errors } = maskResult({ errors: prepared.errors }, logger);
      s.socket.send(JSON.stringify({ id, type: 'error', payload: errors }));
      return;
    }
    const idJson = JSON.stringify(id);
    // A `next` frame is the shared body of its message, a Buffer; every other frame is a whole
    // message, a string.
    const sendNext = s.socket.prefixed(Buffer.from(`{"id":${idJson},"type":"next","payload":`));
    const encoder: FrameEncoder = {
      shareKey: NEXT_SHARE_KEY,
      next: nextBody,
      complete: () => `{"id":${idJson},"type":"complete"}`,
    };
    const entry: { running: RunningOperation | null } = { running: null };
    s.operations.set(id, entry);
    const running = streams.run(
      prepared,
      {
        encoder,
        write: (frame) => send(s, frame, watch(s), sendNext),
        drained: () => (s.closed ? null : s.socket.drained()),
        done: () => {
          if (s.operations.get(id) === entry) s.operations.delete(id);
        },
        queueBytes: () => (s.closed ? 0 : s.socket.queuedBytes()),
      },
      { principal, reqId: s.reqId, mode: 'websocket' },
    );
    if (s.operations.get(id) !== entry) return;
    entry.running = running;
    // The socket overflowed while the operation started: it ends like the others did.
    if (s.slow) running.fail(new SlowConsumerError(streams.limits));
  }

  /** The slow-consumer policy of each socket, made when it first writes. */
  const watches = new WeakMap<Socket, ReturnType<StreamService['watchQueue']>>();
  function watch(s: Socket): ReturnType<StreamService['watchQueue']> {
    let w = watches.get(s);
    if (!w) {
      w = streams.watchQueue();
      watches.set(s, w);
    }
    return w;
  }

  return {
    opened(socket, request, reqId) {
      const s: Socket = {
        socket,
        reqId,
        initialised: false,
        principal: null,
        operations: new Map(),
        alive: true,
        slow: false,
        closing: false,
        closed: false,
        timer: null,
      };
      sockets.add(s);
      waiting++;
      logger.debug({ reqId }, 'websocket opened');
      if (closing) {
        close(s, CloseCode.GoingAway, 'Server shutting down: reconnect to another instance');
      } else {
        s.timer = setTimeout(() => {
          if (!s.initialised) {
            close(
              s,
              CloseCode.ConnectionInitialisationTimeout,
              'Connection initialisation timeout',
            );
          }
        }, initTimeoutMs);
        s.timer.unref();
      }
      return {
        message(data) {
          if (s.closed || s.closing) return;
          s.alive = true;
          const message = parseClientMessage(data);
          if (typeof message === 'string') return close(s, CloseCode.BadRequest, message);
          switch (message.type) {
            case 'connection_init':
              if (s.initialised) {
                return close(
                  s,
                  CloseCode.TooManyInitialisationRequests,
                  'Too many initialisation requests',
                );
              }
              s.initialised = true;
              waiting--;
              if (s.timer) clearTimeout(s.timer);
              s.timer = null;
              void init(s, message.payload, request);
              return;
            case 'ping':
              s.socket.send(
                message.payload === null
                  ? '{"type":"pong"}'
                  : JSON.stringify({ type: 'pong', payload: message.payload }),
              );
              return;
            case 'pong':
              return;
            case 'subscribe':
              return subscribe(s, message.id, message.payload);
            case 'complete': {
              const op = s.operations.get(message.id);
              s.operations.delete(message.id);
              op?.running?.stop('client_gone');
              return;
            }
          }
        },
        drain() {
          watches.get(s)?.drained();
        },
        closed(code) {
          if (s.closed) return;
          s.closed = true;
          sockets.delete(s);
          if (!s.initialised) waiting--;
          if (s.timer) clearTimeout(s.timer);
          const operations = [...s.operations.values()];
          s.operations.clear();
          for (const op of operations) op.running?.stop(closing ? 'shutdown' : 'client_gone');
          logger.debug({ reqId, code }, 'websocket closed');
        },
      };
    },
    get waiting() {
      return waiting;
    },
    get size() {
      return sockets.size;
    },
    close() {
      closing = true;
      clearInterval(keepalive);
      for (const s of [...sockets]) {
        failAll(s, new ShuttingDownError());
        close(
          s,
          CloseCode.GoingAway,
          'Server shutting down: reconnect, resume after your last cursor',
        );
      }
    },
  };
}
