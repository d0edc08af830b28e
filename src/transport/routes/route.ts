/**
 * What every HTTP route shares: the request in hand, and a few helpers. A route is a small
 * function that answers the requests it knows and lets the others through, like the plugins of
 * graphql-yoga (`use-health-check.ts`); the listener (`../http.ts`) tries them in order.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { isAdmin, type Principal } from '../../auth/principal.js';
import { HttpError } from '../../errors.js';

/** One request, as routes see it. */
export interface RouteContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  /** The request id, echoed in `x-request-id` and carried by the request's log lines. */
  readonly reqId: string;
  /** The request's logger (with `reqId`), made on first use. */
  log(): Logger;
  /**
   * The caller, authenticated once, and then named by the request's log lines; rejects with an
   * `AuthenticationError` (answered 401).
   */
  authenticate(): Promise<Principal>;
}

/**
 * Answers the request and resolves `true`, or resolves `false` to let the next route try; throws
 * an {@link HttpError} (or any error) for the listener to answer. Synchronous when it can be, so
 * the routes a request passes by cost it no turn of the event loop.
 */
export type Route = (ctx: RouteContext) => boolean | Promise<boolean>;

/** Answers `body` as JSON, never cached. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-cache',
  });
  res.end(JSON.stringify(body));
}

/** Throws a 403 {@link HttpError} unless `principal` is an admin. */
export function requireAdmin(principal: Principal, what: string): void {
  if (isAdmin(principal)) return;
  throw new HttpError(403, 'FORBIDDEN', `${what} needs a token with the scope "events:admin"`);
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
