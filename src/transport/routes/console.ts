/**
 * `/console`: the live console, a static page that needs no caller (its `EventSource` sends the
 * `tidings_token` cookie).
 */
import { serveConsole } from '../../console/serve.js';
import type { Route } from './route.js';

/** Serves the console page. */
export const consoleRoute: Route = ({ req, res, url }) => {
  if (url.pathname !== '/console') return false;
  serveConsole(req, res);
  return true;
};
