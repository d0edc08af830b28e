/**
 * The HTTP entry point: routes `/graphql/stream` and event-stream requests on `/graphql` to the
 * graphql-sse handler, health checks to themselves, `/metrics` to Prometheus, `/console` to the
 * console page, `POST /debug/heap-snapshot` to V8, JSON `POST`s of queries and mutations to the
 * fast path (`execute-http.ts`), and the rest of `/graphql` to graphql-yoga (GET, GraphiQL, and
 * what the fast path hands back), after enforcing the request size limit.
 *
 * Every request gets a request id: the client's `x-request-id` when it is a plausible one, else a
 * new one (a random prefix per instance, a dash, and a counter in base 36). It is echoed back in
 * `x-request-id` and carried by the request's log lines as `reqId`.
 *
 * Before any route, the browser rules (`auth/browser.ts`) check `Host`, `Origin` and Fetch
 * Metadata. `POST /graphql` runs only with `Content-Type: application/json`, which a page of another
 * site cannot send without a preflight: forms and multipart posts never reach an operation. Yoga
 * sees only the path `/graphql`; other paths get 404. The HTML it answers (GraphiQL) may not be
 * framed.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeHeapSnapshot } from 'node:v8';
import type { Logger } from 'pino';
import type { YogaServerInstance } from 'graphql-yoga';
import { createBrowserRules } from '../auth/browser.js';
import { isAdmin, UNAUTHENTICATED_ADMIN, type Principal } from '../auth/principal.js';
import { serveConsole } from '../console/serve.js';
import { AuthenticationError, StoreBlockedError, StoreUnavailableError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import { errorsBody, HttpError, MASKED_MESSAGE } from './errors.js';
import { isJsonPost, negotiateJson, type HttpExecutor } from './execute-http.js';
import { acceptsEventStream } from '../sse-frames.js';

/** Options of {@link createRequestListener}. */
export interface RequestListenerOptions {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- yoga's context generics do not matter here
  yoga: YogaServerInstance<any, any>;
  /**
   * Answers a stream request of `principal` (see `graphql-sse.ts`), with `x-request-id: reqId`
   * among its response headers.
   */
  streams: (
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    principal: Principal,
    reqId: string,
  ) => Promise<void>;
  /**
   * The fast path for JSON `POST /graphql` requests (see `execute-http.ts`); without it, yoga
   * answers them.
   */
  execute?: HttpExecutor;
  logger: Logger;
  /** Largest request body, bytes; larger ones get 413. */
  maxRequestBytes: number;
  /** Resolves when the store and bus answer; rejects otherwise. */
  ready: () => Promise<void>;
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
   * Whether callers must authenticate (`TIDINGS_AUTH=jwt`). Decides who may take a heap snapshot:
   * admins when true, loopback callers when false.
   * @default false
   */
  authRequired?: boolean;
  /**
   * Where `POST /debug/heap-snapshot` writes, read at each snapshot.
   * @default `TIDINGS_HEAP_DIR`, else the system's temporary directory
   */
  heapSnapshotDir?: () => string;
  /**
   * Shortest time between two heap snapshots, ms; a request sooner gets 429.
   * @default 60000
   */
  heapSnapshotIntervalMs?: number;
  /**
   * Heap snapshots kept in the directory: the oldest are removed before a new one is written.
   * @default 3
   */
  heapSnapshotsKept?: number;
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

/**
 * Whether `req` comes straight from this machine: a loopback peer address and no proxy header
 * (a reverse proxy on the same machine forwards other machines' requests from loopback).
 */
export function isLoopback(req: IncomingMessage): boolean {
  const address = req.socket.remoteAddress ?? '';
  const local =
    address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
  const { headers } = req;
  return local && !headers['x-forwarded-for'] && !headers.forwarded && !headers['x-real-ip'];
}

const defaultHeapSnapshotDir = () => process.env.TIDINGS_HEAP_DIR || tmpdir();

/** Heap snapshots written by this process, to keep their file names apart. */
let heapSnapshots = 0;

/** The file names of heap snapshots, which start with the time they were taken. */
const HEAP_SNAPSHOT_FILE = /^tidings-.*\.heapsnapshot$/;

/** Removes the oldest heap snapshots of `dir` so that at most `keep` remain. */
function pruneHeapSnapshots(dir: string, keep: number, log: Logger): void {
  const files = readdirSync(dir)
    .filter((name) => HEAP_SNAPSHOT_FILE.test(name))
    .sort();
  for (const name of files.slice(0, Math.max(0, files.length - keep))) {
    try {
      rmSync(join(dir, name), { force: true });
      log.info({ path: join(dir, name) }, 'old heap snapshot removed');
    } catch (err) {
      log.warn({ err, path: join(dir, name) }, 'an old heap snapshot could not be removed');
    }
  }
}

/** Reads a request body, refusing one larger than `limit` bytes with a 413 {@link HttpError}. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > limit) {
    return Promise.reject(tooLarge(limit));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function tooLarge(limit: number): HttpError {
  return new HttpError(
    413,
    'PAYLOAD_TOO_LARGE',
    `Request body is larger than ${limit} bytes (TIDINGS_MAX_REQUEST_BYTES): send smaller batches`,
  );
}

/** Creates the Node request listener of one instance. */
export function createRequestListener(options: RequestListenerOptions) {
  const { yoga, streams, logger, maxRequestBytes, metrics } = options;
  const authenticate = options.authenticate ?? (async () => UNAUTHENTICATED_ADMIN);
  const heapSnapshotDir = options.heapSnapshotDir ?? defaultHeapSnapshotDir;
  const heapSnapshotIntervalMs = options.heapSnapshotIntervalMs ?? 60_000;
  const heapSnapshotsKept = options.heapSnapshotsKept ?? 3;
  /** When the last heap snapshot was started, ms since the epoch. */
  let lastHeapSnapshot = -Infinity;
  const requestIdOf = requestIds();
  const browser = createBrowserRules({
    corsOrigins: options.corsOrigins,
    authRequired: options.authRequired,
    host: options.host,
    allowedHosts: options.allowedHosts,
  });

  /** Whether a request asks for the GraphiQL page. */
  function isGraphiQL(req: IncomingMessage, url: URL): boolean {
    return (
      req.method === 'GET' &&
      url.pathname === '/graphql' &&
      !url.searchParams.has('query') &&
      (req.headers.accept ?? '').includes('text/html')
    );
  }

  /** Whether a request needs no caller: the GraphiQL page (its operations do), preflights. */
  function isPublic(req: IncomingMessage, url: URL): boolean {
    return req.method === 'OPTIONS' || isGraphiQL(req, url);
  }

  /** Hands a request to yoga; `read` is its body when it was read already. */
  async function toYoga(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    read?: Buffer,
  ): Promise<void> {
    const method = req.method ?? 'GET';
    const body =
      method === 'GET' || method === 'HEAD'
        ? undefined
        : (read ?? (await readBody(req, maxRequestBytes)));
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined) continue;
      for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
    }
    if (isJsonPost(req)) {
      // Yoga matches media types case-sensitively, and knows no other spelling of JSON.
      const type = headers.get('content-type') ?? '';
      const params = type.includes(';') ? type.slice(type.indexOf(';')) : '';
      headers.set('content-type', `application/json${params}`);
    }
    const response = await yoga.fetch(url.toString(), { method, headers, body }, { req, res });
    const outHeaders: Record<string, string | string[]> = {};
    response.headers.forEach((value, name) => {
      if (name === 'set-cookie') return;
      outHeaders[name] = value;
    });
    const cookies = response.headers.getSetCookie();
    if (cookies.length) outHeaders['set-cookie'] = cookies;
    if (response.headers.get('content-type')?.startsWith('text/html')) {
      // GraphiQL: a page of another site framing it could make the user run its operations.
      const csp = response.headers.get('content-security-policy');
      outHeaders['content-security-policy'] = csp
        ? `${csp}; frame-ancestors 'none'`
        : "frame-ancestors 'none'";
      outHeaders['x-frame-options'] = 'DENY';
    }
    res.writeHead(response.status, outHeaders);
    res.end(Buffer.from(await response.arrayBuffer()));
  }

  function json(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'cache-control': 'no-cache',
    });
    res.end(JSON.stringify(body));
  }

  /** Throws a 403 {@link HttpError} unless `principal` is an admin. */
  function requireAdmin(principal: Principal, what: string): void {
    if (isAdmin(principal)) return;
    throw new HttpError(403, 'FORBIDDEN', `${what} needs a token with the scope "events:admin"`);
  }

  /** `/metrics`: open to loopback callers, to admins otherwise (to anyone without auth). */
  async function serveMetrics(req: IncomingMessage, res: ServerResponse, m: Metrics) {
    if (!isLoopback(req)) requireAdmin(await authenticate(req), '/metrics from another machine');
    const text = await m.render();
    res.writeHead(200, { 'content-type': m.contentType, 'cache-control': 'no-cache' });
    res.end(req.method === 'HEAD' ? undefined : text);
  }

  /**
   * `POST /debug/heap-snapshot`: writes a V8 heap snapshot (the process pauses while it does) and
   * answers its path. Admins only with auth; loopback callers only without. At most one per
   * `heapSnapshotIntervalMs`, and `heapSnapshotsKept` files in the directory.
   */
  async function heapSnapshot(req: IncomingMessage, res: ServerResponse, log: Logger) {
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      throw new HttpError(405, 'BAD_USER_INPUT', 'Take a heap snapshot with POST');
    }
    if (options.authRequired) requireAdmin(await authenticate(req), 'A heap snapshot');
    else if (!isLoopback(req)) {
      throw new HttpError(
        403,
        'FORBIDDEN',
        'A heap snapshot may be taken only from this machine when auth is off (TIDINGS_AUTH=none)',
      );
    }
    const wait = lastHeapSnapshot + heapSnapshotIntervalMs - Date.now();
    if (wait > 0) {
      const seconds = Math.ceil(wait / 1000);
      res.setHeader('retry-after', String(seconds));
      throw new HttpError(
        429,
        'RATE_LIMITED',
        `A heap snapshot was taken less than ${heapSnapshotIntervalMs} ms ago: take the next ` +
          `one in ${seconds} s (TIDINGS_HEAP_SNAPSHOT_INTERVAL)`,
      );
    }
    // No await from here on: writeHeapSnapshot blocks the process, so snapshots never overlap,
    // and a request arriving meanwhile finds this one's time and waits its turn.
    lastHeapSnapshot = Date.now();
    const dir = heapSnapshotDir();
    mkdirSync(dir, { recursive: true });
    pruneHeapSnapshots(dir, heapSnapshotsKept - 1, log);
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const started = Date.now();
    const path = writeHeapSnapshot(
      join(dir, `tidings-${stamp}-${process.pid}-${++heapSnapshots}.heapsnapshot`),
    );
    log.info({ path, durationMs: Date.now() - started }, 'heap snapshot written');
    json(res, 200, { path });
  }

  return async function listener(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', `http://${req.headers.host ?? 'localhost'}`);
    const reqId = requestIdOf(req);
    const isStream =
      url.pathname === '/graphql/stream' ||
      (url.pathname === '/graphql' && acceptsEventStream(req.headers.accept));
    // A stream sends its id with the headers it writes at once: a header set beforehand would
    // make Node keep every header of the (long-lived) response in memory.
    if (!isStream) res.setHeader('x-request-id', reqId);
    /** What the request's log lines say about the caller, once authenticated. */
    const caller: { subject?: string; clientId?: string } = {};
    let requestLog: Logger | undefined;
    const log = () => (requestLog ??= logger.child({ reqId }));
    if (logger.isLevelEnabled('debug')) {
      const started = Date.now();
      res.once('finish', () =>
        log().debug(
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
      // The static pages may be opened by a link from anywhere.
      browser.check(req, url.pathname === '/console' || isGraphiQL(req, url));
      if (url.pathname === '/healthz') {
        json(res, 200, { status: 'ok' });
        return;
      }
      if (url.pathname === '/readyz') {
        try {
          await options.ready();
          json(res, 200, { status: 'ready' });
        } catch (err) {
          json(res, 503, {
            status: 'unavailable',
            // Operator-facing: a store outage's reason names its file.
            reason:
              err instanceof StoreBlockedError
                ? err.operatorMessage
                : err instanceof Error
                  ? err.message
                  : String(err),
          });
        }
        return;
      }
      if (url.pathname === '/metrics' && metrics) {
        await serveMetrics(req, res, metrics);
        return;
      }
      if (options.isClosing()) {
        res.setHeader('x-request-id', reqId);
        res.setHeader('connection', 'close');
        json(
          res,
          503,
          errorsBody(
            'The server is shutting down: retry on another instance or later',
            'SHUTTING_DOWN',
          ),
        );
        return;
      }
      if (url.pathname === '/console') {
        // A static page: no caller needed. Its EventSource sends the tidings_token cookie.
        serveConsole(req, res);
        return;
      }
      if (url.pathname === '/debug/heap-snapshot') {
        await heapSnapshot(req, res, log());
        return;
      }
      if (!isStream && url.pathname !== '/graphql') {
        // Yoga would take any path ending in /graphql, and parse forms there.
        throw new HttpError(
          404,
          'NOT_FOUND',
          `Nothing is served at ${url.pathname}: GraphQL is at /graphql, streams at ` +
            '/graphql/stream, the console at /console',
        );
      }
      const preflight = req.method === 'OPTIONS';
      for (const [name, value] of Object.entries(browser.corsHeaders(req, preflight))) {
        res.setHeader(name, value);
      }
      if (preflight) {
        res.writeHead(204, { 'x-request-id': reqId, 'content-length': '0' });
        res.end();
        return;
      }
      if (!isStream && req.method === 'POST' && !isJsonPost(req)) {
        throw new HttpError(
          415,
          'BAD_USER_INPUT',
          'Send POST /graphql as Content-Type: application/json: form, multipart, ' +
            'application/graphql and text/plain posts are refused, since a page of any site ' +
            'could send them with your credentials',
        );
      }
      const principal = isPublic(req, url) ? UNAUTHENTICATED_ADMIN : await authenticate(req);
      if (principal.subject !== null) caller.subject = principal.subject;
      if (principal.clientId !== null) caller.clientId = principal.clientId;
      if (isStream) {
        await streams(req, res, url, principal, reqId);
        return;
      }
      if (options.execute && url.pathname === '/graphql' && isJsonPost(req)) {
        const mediaType = negotiateJson(req.headers.accept);
        if (mediaType) {
          const body = await readBody(req, maxRequestBytes);
          if (!(await options.execute(req, res, body, mediaType, principal))) {
            await toYoga(req, res, url, body);
          }
          return;
        }
      }
      await toYoga(req, res, url);
    } catch (err) {
      if (!res.headersSent) res.setHeader('x-request-id', reqId);
      if (res.headersSent) {
        log().error({ err, ...caller }, 'request failed after the response started');
        res.end();
      } else if (err instanceof AuthenticationError) {
        res.setHeader('www-authenticate', 'Bearer error="invalid_token"');
        json(res, 401, errorsBody(err.message, err.code));
      } else if (err instanceof StoreUnavailableError) {
        // The store did not answer (the revocation check of the token, say): try again shortly.
        res.setHeader('retry-after', '1');
        json(res, 503, errorsBody(err.message, err.code));
      } else if (err instanceof HttpError) {
        json(res, err.status, errorsBody(err.message, err.code));
      } else {
        log().error({ err, ...caller }, 'request failed');
        json(res, 500, {
          errors: [{ message: MASKED_MESSAGE }],
        });
      }
    }
  };
}
