/**
 * `/healthz` (the process answers) and `/readyz` (the store and the bus answer: 503 with the
 * reason otherwise), open to anyone and answered even while the instance shuts down; then, for
 * every other request during shutdown, `503 SHUTTING_DOWN`.
 */
import type { Health } from '../../observability/health.js';
import { errorsBody } from '../../schema/mask.js';
import { sendJson, type Route } from './route.js';

/** The liveness and readiness checks. */
export function healthRoute(health: Health): Route {
  return ({ url, res }) => {
    if (url.pathname === '/healthz') {
      sendJson(res, 200, { status: 'ok' });
      return true;
    }
    if (url.pathname !== '/readyz') return false;
    return health.readiness().then((readiness) => {
      sendJson(res, readiness.status === 'ready' ? 200 : 503, readiness);
      return true;
    });
  };
}

/** Refuses every request that reaches it while `isClosing()`, so clients try elsewhere. */
export function shuttingDownRoute(isClosing: () => boolean): Route {
  return ({ res, reqId }) => {
    if (!isClosing()) return false;
    res.setHeader('x-request-id', reqId);
    res.setHeader('connection', 'close');
    sendJson(
      res,
      503,
      errorsBody(
        'The server is shutting down: retry on another instance or later',
        'SHUTTING_DOWN',
      ),
    );
    return true;
  };
}
