/**
 * The graphql-sse handler over `node:http`: turns an `IncomingMessage` into the handler's request,
 * and writes its answer, opening an event stream on the SSE connection registry when it is one.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { UNAUTHENTICATED_ADMIN, type Principal } from '../auth/principal.js';
import type { GraphQLSseHandler, GraphQLSseRequest } from './graphql-sse.js';
import { readBody } from './body.js';
import type { SseRegistry } from './sse.js';

/** Dependencies of {@link graphQLSseOverHttp}. */
export interface GraphQLSseHttpOptions {
  sse: SseRegistry;
  logger: Logger;
  /** Largest request body, bytes; larger ones get 413. */
  maxRequestBytes: number;
}

/** The handler's view of a `node:http` request. */
function requestOf(req: IncomingMessage, url: URL, maxRequestBytes: number): GraphQLSseRequest {
  return {
    method: req.method ?? 'GET',
    url,
    header(name) {
      const value = req.headers[name];
      return Array.isArray(value) ? value.join(', ') : value;
    },
    body: async () => (await readBody(req, maxRequestBytes)).toString('utf8'),
    remoteAddress: req.socket.remoteAddress ?? null,
  };
}

/**
 * Answers stream requests with `handler`: the request listener's `streams` route
 * (`(req, res, url, principal, reqId)`).
 */
export function graphQLSseOverHttp(handler: GraphQLSseHandler, options: GraphQLSseHttpOptions) {
  const { sse, logger, maxRequestBytes } = options;
  return async function streams(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    principal: Principal = UNAUTHENTICATED_ADMIN,
    reqId: string | null = null,
  ): Promise<void> {
    const response = await handler(requestOf(req, url, maxRequestBytes), principal, reqId);
    if (!('stream' in response)) {
      res.writeHead(response.status, response.headers);
      res.end(response.body);
      return;
    }
    // The headers go with writeHead rather than setHeader: a header set beforehand would make Node
    // keep every header of the (long-lived) response in memory.
    const conn = sse.open(req, res, response.headers);
    try {
      response.stream(conn);
    } catch (err) {
      logger.error(
        { err, ...(reqId === null ? {} : { reqId }) },
        'stream request failed after the response started',
      );
      conn.end();
      return;
    }
    // The client may have gone while its request was read: its stream ends now, not never.
    if (res.destroyed) conn.end();
  };
}
