/**
 * The event streams: `/graphql/stream` (graphql-sse, both modes), and `/graphql` when the request
 * accepts `text/event-stream`. The caller is authenticated here and handed to the graphql-sse
 * handler.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Principal } from '../../auth/principal.js';
import { acceptsEventStream } from '../../sse-frames.js';
import type { Route } from './route.js';

/**
 * Answers a stream request of `principal` (see `graphql-sse.ts`), with `x-request-id: reqId`
 * among its response headers.
 */
export type StreamHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  principal: Principal,
  reqId: string,
) => Promise<void>;

/** Whether a request is for an event stream. */
export function isStreamRequest(req: IncomingMessage, url: URL): boolean {
  return (
    url.pathname === '/graphql/stream' ||
    (url.pathname === '/graphql' && acceptsEventStream(req.headers.accept))
  );
}

/** Hands stream requests to `streams`. */
export function streamRoute(streams: StreamHandler): Route {
  return async ({ req, res, url, reqId, authenticate }) => {
    if (!isStreamRequest(req, url)) return false;
    await streams(req, res, url, await authenticate(), reqId);
    return true;
  };
}
