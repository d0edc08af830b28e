/**
 * Browser rules, applied to every route before anything else runs:
 *
 * - `Host` must name this server, so a page of another site cannot reach it through DNS
 *   rebinding: `localhost`, `127.0.0.1` and `[::1]` (any port), the bound `HOST` itself, and the
 *   names of `TIDINGS_ALLOWED_HOSTS`. When `HOST` is not a loopback address, any IP literal is
 *   accepted too (a rebinding attack needs a host name; probes and scrapers call the pod's
 *   address), and, when no list is set, with `TIDINGS_AUTH=jwt` any name (a rebound page does not
 *   carry the victim's credentials).
 * - A request from a foreign origin (neither the server's own origin nor one listed in
 *   `TIDINGS_CORS_ORIGINS`) is refused when it would be trusted for where it comes from rather
 *   than what it proves: always with `TIDINGS_AUTH=none`, and with `jwt` whenever it carries the
 *   `tidings_token` cookie.
 * - A request without `Origin` (a page's `no-cors` fetch, an image, a link) whose Fetch Metadata
 *   says it comes from another site (`Sec-Fetch-Site: cross-site` or `same-site`) is refused on
 *   the same terms, except when it asks for a static page (GraphiQL, the console), which a link
 *   may open. Clients that send no Fetch Metadata (curl, scripts) are not browsers, and pass.
 * - CORS: `*` lets any origin read answers without credentials; a list lets those origins read
 *   them with credentials (the cookie), and nobody else. Their answers vary on `Origin`.
 */
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { isLoopback } from '../config.js';
import { HttpError } from '../errors.js';
import { cookieToken } from './jwt.js';

/** Options of {@link createBrowserRules}. */
export interface BrowserRulesOptions {
  /**
   * `*` (any origin may read answers, without credentials) or the origins that may, with
   * credentials.
   * @default '*'
   */
  corsOrigins?: '*' | readonly string[];
  /**
   * Whether callers must authenticate (`TIDINGS_AUTH=jwt`).
   * @default false
   */
  authRequired?: boolean;
  /**
   * The address the server listens on (`HOST`).
   * @default '127.0.0.1'
   */
  host?: string;
  /**
   * Further names a `Host` header may give (`TIDINGS_ALLOWED_HOSTS`); `*` accepts any.
   * @default []
   */
  allowedHosts?: readonly string[];
}

/** The browser rules of one instance. */
export interface BrowserRules {
  /**
   * Refuses a request whose `Host` does not name this server (403 `HOST_NOT_ALLOWED`), or whose
   * foreign `Origin`, or other site when it has none, may not use it (403 `FORBIDDEN`). `page`
   * says it asks for a static page that a link from anywhere may open.
   * @throws HttpError
   */
  check(req: IncomingMessage, page?: boolean): void;
  /**
   * The CORS headers of an answer to `req`: `Vary: Origin` only for a request without `Origin`
   * or from an origin that may not read it; with the preflight's methods, headers and max age
   * when `preflight`.
   */
  corsHeaders(req: IncomingMessage, preflight?: boolean): Record<string, string>;
}

/** Host names that always reach this machine itself. */
const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];

/** Methods a preflight may ask for. */
const METHODS = 'GET, POST, PUT, DELETE, OPTIONS';

/** Request headers the streams and the API use, allowed when a preflight names none. */
const HEADERS = 'content-type, authorization, last-event-id, x-graphql-event-stream-token';

/** Whether `HOST` accepts connections on every interface. */
const isWildcard = (host: string) => host === '0.0.0.0' || host === '::' || host === '[::]';

/** The name of a `Host` header or URL host, without its port, lower-cased; null if malformed. */
function hostName(host: string): string | null {
  try {
    return new URL(`http://${host}`).hostname;
  } catch {
    return null;
  }
}

/** `host:port` of an origin or `Host` header, as a URL normalises it; null if malformed. */
function authority(value: string): string | null {
  try {
    return new URL(value.includes('://') ? value : `http://${value}`).host;
  } catch {
    return null;
  }
}

/** Creates the browser rules of one instance. */
export function createBrowserRules(options: BrowserRulesOptions = {}): BrowserRules {
  const corsOrigins = options.corsOrigins ?? '*';
  const authRequired = options.authRequired ?? false;
  const bound = options.host ?? '127.0.0.1';
  const listed = options.allowedHosts ?? [];
  const anyHost = listed.includes('*');
  const names = new Set([...LOOPBACK_NAMES, ...listed]);
  const boundName = isWildcard(bound)
    ? null
    : hostName(bound.includes(':') && !bound.startsWith('[') ? `[${bound}]` : bound);
  if (boundName) names.add(boundName);
  // Away from loopback and without a list, the names clients use are not known in advance.
  const open = !isLoopback(bound) && listed.length === 0;

  function hostAllowed(name: string): boolean {
    if (anyHost || names.has(name)) return true;
    if (isLoopback(bound)) return false;
    // A rebinding attack needs a host name: an IP literal is a probe, a scraper or a direct call.
    if (isIP(name.replace(/^\[|\]$/g, '')) !== 0) return true;
    return open && authRequired;
  }

  /** Refuses a request that is trusted for where it comes from, naming where in `from`. */
  function refuseAmbient(req: IncomingMessage, from: string): void {
    if (!authRequired) {
      throw new HttpError(
        403,
        'FORBIDDEN',
        `Requests from ${from} are refused: without auth (TIDINGS_AUTH=none) ` +
          'only pages of this server may call it; list the origin in TIDINGS_CORS_ORIGINS ' +
          'if it is yours',
      );
    }
    if (cookieToken(req) !== null) {
      throw new HttpError(
        403,
        'FORBIDDEN',
        `The tidings_token cookie is refused from ${from}: list the origin in ` +
          'TIDINGS_CORS_ORIGINS if it is yours, or send the token as Authorization: Bearer',
      );
    }
  }

  /** Whether `origin` is the server's own (the one `Host` names) or a listed one. */
  function trusted(origin: string, req: IncomingMessage): boolean {
    if (corsOrigins !== '*' && corsOrigins.includes(origin)) return true;
    const own = req.headers.host === undefined ? null : authority(req.headers.host);
    return own !== null && authority(origin) === own;
  }

  return {
    check(req, page = false) {
      const host = req.headers.host;
      if (host !== undefined) {
        const name = hostName(host);
        if (name === null || !hostAllowed(name)) {
          throw new HttpError(
            403,
            'HOST_NOT_ALLOWED',
            `Host "${host}" does not name this server: call it by the name it is served under ` +
              '(a reverse proxy must pass it), or add that name to TIDINGS_ALLOWED_HOSTS',
          );
        }
      }
      const origin = req.headers.origin;
      if (origin === undefined) {
        // No Origin: a browser's no-cors request or navigation, or not a browser at all.
        const site = req.headers['sec-fetch-site'];
        if (!page && (site === 'cross-site' || site === 'same-site')) {
          refuseAmbient(
            req,
            `a page of another site sending no Origin (Sec-Fetch-Site: ${site}; a CORS request sends it)`,
          );
        }
        return;
      }
      if (!trusted(origin, req)) refuseAmbient(req, `the origin ${origin}`);
    },
    corsHeaders(req, preflight = false) {
      const origin = req.headers.origin;
      // Whether and what the answer allows depends on Origin: a cache must not mix them up.
      const vary = preflight ? 'Origin, Access-Control-Request-Headers' : 'Origin';
      if (origin === undefined) return { vary };
      let headers: Record<string, string>;
      if (corsOrigins === '*') headers = { 'access-control-allow-origin': '*', vary };
      else if (corsOrigins.includes(origin)) {
        headers = {
          'access-control-allow-origin': origin,
          'access-control-allow-credentials': 'true',
          vary,
        };
      } else return { vary };
      if (!preflight) return headers;
      return {
        ...headers,
        'access-control-allow-methods': METHODS,
        'access-control-allow-headers': req.headers['access-control-request-headers'] || HEADERS,
        'access-control-max-age': '600',
      };
    },
  };
}
