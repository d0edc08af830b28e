/**
 * graphql-ws on `node:http`: the `ws` package's WebSocketServer in noServer mode takes the HTTP
 * `upgrade` requests for `/graphql` and `/graphql/ws` with the subprotocol `graphql-transport-ws`,
 * and hands each socket to the protocol (`graphql-ws.ts`).
 *
 * WebSockets are not covered by CORS: a page of any site may open one to this server, and the
 * browser sends the `tidings_token` cookie with it. So before the handshake an upgrade goes
 * through the browser rules of every HTTP request (`auth/browser.ts`: `Host`, a foreign `Origin`
 * refused without auth or with the cookie), and a refused one gets an HTTP status with a JSON
 * body, never a socket. Messages are bounded by `maxPayload`, sockets waiting for
 * `connection_init` by `maxWaiting`, operations per socket by the protocol.
 */
import type { IncomingMessage } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Socket as NetSocket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import { createBrowserRules, type BrowserRulesOptions } from '../auth/browser.js';
import { tokenOf, type Authenticator } from '../auth/jwt.js';
import { AuthenticationError } from '../errors.js';
import type { StreamService } from '../stream/types.js';
import { HttpError } from '../errors.js';
import { errorsBody } from '../schema/mask.js';
import {
  createGraphQLWsServer,
  GRAPHQL_TRANSPORT_WS,
  type GraphQLWsServer,
  type WsSocket,
} from './graphql-ws.js';
import { requestIds } from './http.js';

/** The paths that take WebSocket upgrades. */
export const WEBSOCKET_PATHS: readonly string[] = ['/graphql', '/graphql/ws'];

/** How long shutdown waits for sockets to finish their closing handshake, ms. */
const CLOSE_GRACE_MS = 1_000;

/** Options of {@link createWebSocketTransport}. */
export interface WebSocketTransportOptions {
  streams: StreamService;
  logger: Logger;
  /** Authenticates the token of `connection_init`, or else the upgrade request. */
  authenticator: Authenticator;
  /** Called with every refused authentication, to count it. */
  onRejected?: (error: AuthenticationError) => void;
  /** The browser rules, as for HTTP requests. */
  browser: BrowserRulesOptions;
  /** Interval of the server's `ping`, ms (`TIDINGS_KEEPALIVE_MS`). */
  keepaliveMs: number;
  /** Largest message a client may send, bytes (`TIDINGS_MAX_REQUEST_BYTES`); past it: close 1009. */
  maxPayload: number;
  /** Most sockets waiting for `connection_init` at once; past it upgrades get 503. */
  maxWaiting: number;
  /** Whether the instance is shutting down (upgrades get 503). */
  isClosing: () => boolean;
  /**
   * How long a socket may wait before `connection_init`, ms.
   * @default 3000
   */
  initTimeoutMs?: number;
}

/** graphql-ws over `node:http` upgrades. */
export interface WebSocketTransport {
  /** The `upgrade` listener: `server.on('upgrade', transport.upgrade)`. */
  readonly upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  /** The protocol side, for counts. */
  readonly protocol: GraphQLWsServer<IncomingMessage>;
  /**
   * Ends every operation with `SHUTTING_DOWN`, closes every socket with 1001, and drops those
   * that have not finished closing within a second.
   */
  close(): Promise<void>;
}

/** Answers a refused upgrade: an HTTP status with a JSON error body, then the connection ends. */
function refuse(socket: Duplex, error: HttpError, headers: Record<string, string>): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify(errorsBody(error.message, error.code));
  const lines = [
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? ''}`,
    'content-type: application/json; charset=utf-8',
    `content-length: ${Buffer.byteLength(body)}`,
    'cache-control: no-cache',
    'connection: close',
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
}

/** Whether a `Sec-WebSocket-Protocol` header offers graphql-ws's subprotocol. */
function offersGraphQLWs(header: string | undefined): boolean {
  return (header ?? '').split(',').some((p) => p.trim() === GRAPHQL_TRANSPORT_WS);
}

const textOf = (data: RawData): string =>
  Array.isArray(data)
    ? Buffer.concat(data).toString('utf8')
    : Buffer.isBuffer(data)
      ? data.toString('utf8')
      : Buffer.from(new Uint8Array(data)).toString('utf8');

/**
 * The start of an unmasked, unfragmented text frame whose payload is `length` bytes and begins
 * with `prefix`: the frame header (RFC 6455 §5.2: 2 bytes up to 125, 4 up to 65535, else 10),
 * then `prefix`. A server's frames are never masked (§5.1), so the payload follows as it is.
 */
export function textFrameStart(length: number, prefix: Buffer): Buffer {
  const headerLength = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const start = Buffer.allocUnsafe(headerLength + prefix.length);
  start[0] = 0x81; // FIN, opcode 1 (text)
  if (headerLength === 2) {
    start[1] = length;
  } else if (headerLength === 4) {
    start[1] = 126;
    start.writeUInt16BE(length, 2);
  } else {
    start[1] = 127;
    start.writeUInt16BE(0, 2);
    start.writeUIntBE(length, 4, 6);
  }
  prefix.copy(start, headerLength);
  return start;
}

/**
 * A `ws` socket as the protocol sees it; `raw` is its TCP socket.
 *
 * A `prefixed` message (a `next`: its operation's prefix, then the result's bytes shared by every
 * socket of the group) is framed here and written on `raw` as [header and prefix, body], corked
 * with the other frames of the same tick into one `writev`, so the body is never copied. That
 * bypasses ws's `Sender`, which is safe when no
 * extension was negotiated (permessage-deflate is off, see the server's options): the `Sender`
 * then writes each frame synchronously (`send` → `dispatch` → `sendFrame`, which corks and writes
 * header and data at once) and never queues one (only compression and Blob data set its `_state`
 * and fill its `_queue`), so a frame of ours can never land inside one of its frames. Bytes
 * written here are in `raw`'s writable buffer, which `bufferedAmount`, `writableNeedDrain` and
 * `drain` all see. Otherwise, or before the socket is open, messages go through `ws.send`.
 */
export function adaptWebSocket(ws: WebSocket, raw: NetSocket): WsSocket {
  /** One promise for every operation waiting on the same full buffer. */
  let draining: Promise<void> | null = null;
  // Fixed by the handshake, which is over.
  const ownFrames = ws.extensions === '';
  // The hub delivers the events of one commit in one tick: corked until the next tick, a socket
  // sends all of their frames in one `writev` (as `node:http` does with a response's chunks),
  // instead of one system call per frame. Frames ws writes meanwhile are held in order with them.
  let corked = false;
  const uncork = () => {
    corked = false;
    raw.uncork();
  };
  const holdUntilNextTick = () => {
    if (corked) return;
    corked = true;
    raw.cork();
    process.nextTick(uncork);
  };
  return {
    send(message) {
      if (ws.readyState === WebSocket.OPEN) ws.send(message, { binary: false });
    },
    prefixed(prefix) {
      if (!ownFrames) {
        return (body) => {
          if (ws.readyState === WebSocket.OPEN) {
            ws.send(Buffer.concat([prefix, body]), { binary: false });
          }
        };
      }
      // Consecutive results are often the same size: the frame start is then reused.
      let length = -1;
      let start = prefix;
      return (body) => {
        if (ws.readyState !== WebSocket.OPEN) return;
        const total = prefix.length + body.length;
        if (total !== length) {
          length = total;
          start = textFrameStart(total, prefix);
        }
        holdUntilNextTick();
        raw.write(start);
        raw.write(body);
        // A burst (a replay, a large commit) goes out in batches of a socket buffer: what is
        // held stays small, and a client that reads is never taken for a slow consumer.
        if (raw.writableLength >= raw.writableHighWaterMark) {
          raw.uncork();
          raw.cork();
        }
      };
    },
    full: () => raw.writableNeedDrain,
    queuedBytes: () => ws.bufferedAmount,
    drained() {
      if (ws.readyState !== WebSocket.OPEN || !raw.writableNeedDrain) return null;
      draining ??= new Promise<void>((resolve) => {
        const done = () => {
          raw.off('drain', done);
          ws.off('close', done);
          draining = null;
          resolve();
        };
        raw.on('drain', done);
        ws.on('close', done);
      });
      return draining;
    },
    close(code, reason) {
      ws.close(code, reason);
    },
    terminate() {
      ws.terminate();
    },
  };
}

/** Creates the WebSocket transport of an instance. */
export function createWebSocketTransport(options: WebSocketTransportOptions): WebSocketTransport {
  const { logger, authenticator } = options;
  const browser = createBrowserRules(options.browser);
  const requestIdOf = requestIds();
  const open = new Set<WebSocket>();
  /** Resolves shutdown's wait once the last socket closed. */
  let emptied: (() => void) | null = null;
  const protocol = createGraphQLWsServer<IncomingMessage>({
    streams: options.streams,
    logger,
    keepaliveMs: options.keepaliveMs,
    initTimeoutMs: options.initTimeoutMs,
    async authenticate(token, req) {
      try {
        if (token !== null) return await authenticator.verify(token);
        if (authenticator.required && tokenOf(req) === null) {
          throw new AuthenticationError(
            'No token: pass connectionParams {"authorization": "Bearer <jwt>"}, or the ' +
              'tidings_token cookie',
          );
        }
        return await authenticator.authenticate(req);
      } catch (err) {
        if (err instanceof AuthenticationError) options.onRejected?.(err);
        throw err;
      }
    },
  });
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: options.maxPayload,
    perMessageDeflate: false,
    clientTracking: false,
    handleProtocols: (offered) =>
      offered.has(GRAPHQL_TRANSPORT_WS) ? GRAPHQL_TRANSPORT_WS : false,
  });

  /** Why an upgrade is refused, or null when it may go ahead. */
  function check(req: IncomingMessage): HttpError | null {
    try {
      browser.check(req, false);
    } catch (err) {
      if (err instanceof HttpError) return err;
      throw err;
    }
    const { pathname } = new URL(req.url ?? '/', 'http://localhost');
    if (!WEBSOCKET_PATHS.includes(pathname)) {
      return new HttpError(
        404,
        'NOT_FOUND',
        `No WebSocket is served at ${pathname}: graphql-ws is at /graphql and /graphql/ws`,
      );
    }
    if (options.isClosing()) {
      return new HttpError(
        503,
        'SHUTTING_DOWN',
        'The server is shutting down: retry on another instance or later',
      );
    }
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
      return new HttpError(
        400,
        'BAD_USER_INPUT',
        `Upgrade: ${req.headers.upgrade ?? ''} is not served: only WebSocket upgrades are`,
      );
    }
    if (!offersGraphQLWs(req.headers['sec-websocket-protocol'])) {
      return new HttpError(
        400,
        'BAD_USER_INPUT',
        `Offer the WebSocket subprotocol ${GRAPHQL_TRANSPORT_WS} (graphql-ws's createClient, ` +
          "Apollo's GraphQLWsLink, urql with graphql-ws); subscriptions-transport-ws is not served",
      );
    }
    if (protocol.waiting >= options.maxWaiting) {
      return new HttpError(
        503,
        'LIMIT_EXCEEDED',
        `${protocol.waiting} WebSockets are waiting for their connection_init ` +
          '(TIDINGS_MAX_RESERVATIONS): retry in a second',
      );
    }
    return null;
  }

  function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const reqId = requestIdOf(req);
    // Until `ws` owns it, an error of the connection (a reset) must not go unhandled.
    const early = (err: Error) => logger.debug({ err, reqId }, 'upgrade connection failed');
    socket.on('error', early);
    let refusal: HttpError | null;
    try {
      refusal = check(req);
    } catch (err) {
      logger.error({ err, reqId }, 'upgrade failed');
      refusal = new HttpError(500, 'BAD_USER_INPUT', 'Unexpected error: the server logged it');
    }
    if (refusal) {
      const headers: Record<string, string> = { 'x-request-id': reqId };
      if (refusal.status === 503) headers['retry-after'] = '1';
      logger.debug({ reqId, status: refusal.status, code: refusal.code }, 'upgrade refused');
      refuse(socket, refusal, headers);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      socket.off('error', early);
      open.add(ws);
      const connection = protocol.opened(adaptWebSocket(ws, socket as NetSocket), req, reqId);
      ws.on('message', (data) => connection.message(textOf(data)));
      socket.on('drain', () => connection.drain());
      ws.on('error', (err) => logger.debug({ err, reqId }, 'websocket error'));
      ws.on('close', (code) => {
        open.delete(ws);
        connection.closed(code);
        if (open.size === 0) emptied?.();
      });
    });
  }

  return {
    upgrade,
    protocol,
    async close() {
      protocol.close();
      if (open.size > 0) {
        let timer: NodeJS.Timeout | undefined;
        await new Promise<void>((resolve) => {
          emptied = resolve;
          timer = setTimeout(resolve, CLOSE_GRACE_MS);
        });
        clearTimeout(timer);
      }
      for (const ws of open) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
