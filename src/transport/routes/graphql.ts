/**
 * `/graphql` for everything but streams: GraphiQL for browsers, and every query and mutation,
 * `GET` or `POST`, through the GraphQL-over-HTTP engine (`../execute-http.ts`).
 *
 * A `POST` runs only with a JSON `Content-Type`, which a page of another site cannot send without
 * a preflight: forms, multipart and `text/plain` posts get `415` before anything is read.
 */
import type { IncomingMessage } from 'node:http';
import { HttpError } from '../../errors.js';
import { isJsonContentType, type HttpExecutor } from '../execute-http.js';
import { graphiqlPage, wantsGraphiQL } from '../graphiql.js';
import { readBody } from '../body.js';
import type { Route } from './route.js';

/**
 * Whether a request asks for the bare GraphiQL page: a static page that needs no caller and may be
 * opened by a link from anywhere. With a `query` in the URL it is not: a link from another site
 * could fill in an operation for the user to run.
 */
export function isGraphiQLPage(req: IncomingMessage, url: URL): boolean {
  return (
    url.pathname === '/graphql' &&
    !url.searchParams.has('query') &&
    wantsGraphiQL(req.method, req.headers.accept)
  );
}

/** Options of {@link graphqlRoute}. */
export interface GraphQLRouteOptions {
  /** Answers queries and mutations. */
  execute: HttpExecutor;
  /** Largest request body, bytes; larger ones get 413. */
  maxRequestBytes: number;
}

/** Serves GraphiQL and the GraphQL-over-HTTP engine at `/graphql`. */
export function graphqlRoute({ execute, maxRequestBytes }: GraphQLRouteOptions): Route {
  return async ({ req, res, url, authenticate }) => {
    if (url.pathname !== '/graphql') return false;
    const method = req.method ?? 'GET';
    if (method === 'POST' && !isJsonContentType(req.headers['content-type'])) {
      throw new HttpError(
        415,
        'BAD_USER_INPUT',
        'Send POST /graphql as Content-Type: application/json: form, multipart, ' +
          'application/graphql and text/plain posts are refused, since a page of any site ' +
          'could send them with your credentials',
      );
    }
    if (wantsGraphiQL(method, req.headers.accept)) {
      if (!isGraphiQLPage(req, url)) await authenticate();
      // A page of another site framing GraphiQL could make the user run its operations.
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'content-security-policy': "frame-ancestors 'none'",
        'x-frame-options': 'DENY',
      });
      res.end(graphiqlPage());
      return true;
    }
    const principal = await authenticate();
    const body = method === 'POST' ? (await readBody(req, maxRequestBytes)).toString('utf8') : '';
    const answer = await execute(
      { method, search: url.searchParams, accept: req.headers.accept, body },
      principal,
    );
    res.writeHead(answer.status, {
      ...answer.headers,
      'content-length': String(Buffer.byteLength(answer.body)),
    });
    res.end(answer.body);
    return true;
  };
}
