/**
 * The HTTP entry point of an instance: a short listener that gives every request an id, applies
 * the browser rules, and tries the routes (`routes/`) in order: health checks, `/metrics`, the
 * shutdown refusal, `/console`, `/debug/heap-snapshot`, CORS on the API, the event streams
 * (`/graphql/stream`, and `/graphql` accepting `text/event-stream`), then `/graphql` (GraphiQL and
 * the GraphQL-over-HTTP engine). Whatever no route takes gets 404; whatever a route throws is
 * answered here.
 *
 * Every request gets a request id: the client's `x-request-id` when it is a plausible one, else a
 * new one (a random prefix per instance, a dash, and a counter in base 36). It is echoed back in
 * `x-request-id` and carried by the request's log lines as `reqId`.
 *
 * Before any route, the browser rules (`auth/browser.ts`) check `Host`, `Origin` and Fetch
 * Metadata; the static pages (the console, GraphiQL) may be opened by a link from anywhere.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { createBrowserRules } from '../auth/browser.js';
import { UNAUTHENTICATED_ADMIN, type Principal } from '../auth/principal.js';
import { AuthenticationError, HttpError, StoreUnavailableError } from '../errors.js';
import type { Health } from '../observability/health.js';
import type { Metrics } from '../observability/metrics.js';
import { errorsBody, MASKED_MESSAGE } from '../schema/mask.js';
import type { HttpExecutor } from './execute-http.js';
import { consoleRoute } from './routes/console.js';
import { corsRoute } from './routes/cors.js';
import { graphqlRoute, isGraphiQLPage } from './routes/graphql.js';
import { healthRoute, shuttingDownRoute } from './routes/health.js';
import { heapSnapshotRoute, type HeapSnapshotOptions } from './routes/heap-snapshot.js';
import { metricsRoute } from './routes/metrics.js';
import { sendJson, type Route, type RouteContext } from './routes/route.js';
import { isStreamRequest, streamRoute, type StreamHandler } from './routes/stream.js';

/** Options of {@link createRequestListener}. */
export interface RequestListenerOptions {
  /** Answers stream requests (see `graphql-sse.ts`). */
  streams: StreamHandler;
  /** Answers queries and mutations sent to `/graphql` (see `execute-http.ts`). */
  execute: HttpExecutor;
  logger: Logger;
  /** Largest request body, bytes; larger ones get 413. */
  maxRequestBytes: number;
  /** Readiness, answered at `/readyz`. */
  health: Health;
  /** Whether the instance is shutting down (new requests get 503). */
  isClosing: () => boolean;
  /**
   * The caller of a request; rejects with an `AuthenticationError` (answered 401).
   * @default every caller is an admin
   */
  authenticate?: (req: IncomingMessage) => Promise<Principal>;
  /**
   * Origins allowed by CORS on `/graphql` and `/graphql/stream`: `*` (any origin, no
   * credentials) or a list (echoed back, with credentials, so the token cookie works).
   * @default '*'
   */
  corsOrigins?: '*' | readonly string[];
  /**
   * The address the server listens on, which `Host` headers must name (see `auth/browser.ts`).
   * @default '127.0.0.1'
   */
  host?: string;
  /**
   * Further names `Host` headers may give (`TIDINGS_ALLOWED_HOSTS`).
   * @default []
   */
  allowedHosts?: readonly string[];
  /** Served at `/metrics`; without it, `/metrics` is not found. */
  metrics?: Metrics;
  /**
   * Whether callers must authenticate (`TIDINGS_AUTH=jwt`); decides, among others, who may take
   * a heap snapshot: admins when true, loopback callers when false.
   * @default false
   */
  authRequired?: boolean;
  /** `POST /debug/heap-snapshot`: where, how often, how many are kept. */
  heapSnapshot?: Omit<HeapSnapshotOptions, 'authRequired'>;
}

/** Request ids taken from clients: printable, no spaces, at most 128 characters. */
const REQUEST_ID = /^[A-Za-z0-9._:/+=@-]{1,128}$/;

/**
 * Makes request ids: a random prefix, then a counter. Unique enough to find a request in the logs
 * of several instances, and far cheaper than a UUID (no randomness per request, and a short flat
 * string where `randomUUID()` builds a rope of small pieces).
 */
export function requestIds(): (req: IncomingMessage) => string {
  const prefix = randomBytes(4).toString('hex');
  let count = 0;
  return (req) => {
    const sent = req.headers['x-request-id'];
    if (typeof sent === 'string' && REQUEST_ID.test(sent)) return sent;
    return `${prefix}-${(++count).toString(36)}`;
  };
}

/** Answers an error a route threw: its own status for the known ones, a masked 500 otherwise. */
function answerError(ctx: RouteContext, err: unknown, caller: object): void {
  const { res } = ctx;
  if (res.headersSent) {
    ctx.log().error({ err, ...caller }, 'request failed after the response started');
    res.end();
    return;
  }
  res.setHeader('x-request-id', ctx.reqId);
  if (err instanceof AuthenticationError) {
    res.setHeader('www-authenticate', 'Bearer error="invalid_token"');
    sendJson(res, 401, errorsBody(err.message, err.code));
  } else if (err instanceof StoreUnavailableError) {
    // The store did not answer (the revocation check of the token, say): try again shortly.
    res.setHeader('retry-after', '1');
    sendJson(res, 503, errorsBody(err.message, err.code));
  } else if (err instanceof HttpError) {
    sendJson(res, err.status, errorsBody(err.message, err.code));
  } else {
    ctx.log().error({ err, ...caller }, 'request failed');
    sendJson(res, 500, { errors: [{ message: MASKED_MESSAGE }] });
  }
}

/** Creates the Node request listener of one instance. */
export function createRequestListener(options: RequestListenerOptions) {
  const { logger } = options;
  const authenticate = options.authenticate ?? (async () => UNAUTHENTICATED_ADMIN);
  const requestIdOf = requestIds();
  const browser = createBrowserRules({
    corsOrigins: options.corsOrigins,
    authRequired: options.authRequired,
    host: options.host,
    allowedHosts: options.allowedHosts,
  });
  const routes: Route[] = [
    healthRoute(options.health),
    ...(options.metrics ? [metricsRoute(options.metrics)] : []),
    shuttingDownRoute(options.isClosing),
    consoleRoute,
    heapSnapshotRoute({ ...options.heapSnapshot, authRequired: options.authRequired }),
    corsRoute(browser),
    streamRoute(options.streams),
    graphqlRoute({ execute: options.execute, maxRequestBytes: options.maxRequestBytes }),
  ];

  return async function listener(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', `http://${req.headers.host ?? 'localhost'}`);
    const reqId = requestIdOf(req);
    // A stream sends its id with the headers it writes at once: a header set beforehand would
    // make Node keep every header of the (long-lived) response in memory.
    if (!isStreamRequest(req, url)) res.setHeader('x-request-id', reqId);
    /** What the request's log lines say about the caller, once authenticated. */
    const caller: { subject?: string; clientId?: string } = {};
    let requestLog: Logger | undefined;
    let principal: Promise<Principal> | undefined;
    const ctx: RouteContext = {
      req,
      res,
      url,
      reqId,
      log: () => (requestLog ??= logger.child({ reqId })),
      authenticate: () =>
        (principal ??= authenticate(req).then((p) => {
          if (p.subject !== null) caller.subject = p.subject;
          if (p.clientId !== null) caller.clientId = p.clientId;
          return p;
        })),
    };
    if (logger.isLevelEnabled('debug')) {
      const started = Date.now();
      res.once('finish', () =>
        ctx.log().debug(
          {
            method: req.method,
            path: url.pathname,
            status: res.statusCode,
            durationMs: Date.now() - started,
            ...caller,
          },
          'request completed',
        ),
      );
    }
    try {
      browser.check(req, url.pathname === '/console' || isGraphiQLPage(req, url));
      for (const route of routes) {
        const handled = route(ctx);
        if (handled === true || (handled !== false && (await handled))) return;
      }
      throw new HttpError(
        404,
        'NOT_FOUND',
        `Nothing is served at ${url.pathname}: GraphQL is at /graphql, streams at ` +
          '/graphql/stream, the console at /console',
      );
    } catch (err) {
      answerError(ctx, err, caller);
    }
  };
}
