/** `/metrics`: Prometheus, open to loopback callers, to admins otherwise (to anyone without auth). */
import type { Metrics } from '../../observability/metrics.js';
import { isLoopback, requireAdmin, type Route } from './route.js';

/** Serves `metrics` at `/metrics`. */
export function metricsRoute(metrics: Metrics): Route {
  return async ({ req, res, url, authenticate }) => {
    if (url.pathname !== '/metrics') return false;
    if (!isLoopback(req)) requireAdmin(await authenticate(), '/metrics from another machine');
    const text = await metrics.render();
    res.writeHead(200, { 'content-type': metrics.contentType, 'cache-control': 'no-cache' });
    res.end(req.method === 'HEAD' ? undefined : text);
    return true;
  };
}
