/**
 * CORS on the API (`/graphql`, `/graphql/stream`): every request there gets the CORS headers the
 * browser rules allow (`auth/browser.ts`), and a preflight is answered `204` here, needing no
 * caller. Other paths have no CORS.
 */
import type { BrowserRules } from '../../auth/browser.js';
import type { Route } from './route.js';

/** Whether `pathname` is the API's. */
export const isApiPath = (pathname: string): boolean =>
  pathname === '/graphql' || pathname === '/graphql/stream';

/** Sets the CORS headers of API requests, and answers their preflights. */
export function corsRoute(browser: BrowserRules): Route {
  return ({ req, res, url, reqId }) => {
    if (!isApiPath(url.pathname)) return false;
    const preflight = req.method === 'OPTIONS';
    for (const [name, value] of Object.entries(browser.corsHeaders(req, preflight))) {
      res.setHeader(name, value);
    }
    if (!preflight) return false;
    res.writeHead(204, { 'x-request-id': reqId, 'content-length': '0' });
    res.end();
    return true;
  };
}
