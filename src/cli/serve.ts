import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildApp, type TidingsApp } from '../app.js';
import type { TidingsConfig } from '../config.js';

/** How long a request (headers and body) may take to arrive, ms: Node's default. */
const REQUEST_TIMEOUT_MS = 300_000;

/** A Tidings instance listening on a port. */
export interface RunningServer {
  app: TidingsApp;
  server: Server;
  /** Base URL, e.g. `http://127.0.0.1:4000`. */
  url: string;
  /** Stops accepting, ends streams with a resume hint, closes the store. Idempotent. */
  stop(): Promise<void>;
}

/** Builds an instance and listens on `config.port` (0 picks a free port) and `config.host`. */
export async function startServer(
  config: Partial<TidingsConfig>,
  options: Parameters<typeof buildApp>[1] = {},
) {
  const app = await buildApp(config, options);
  const { headerTimeoutMs } = app.config;
  // A connection that sends no complete request headers within the timeout (nothing at all, or
  // half a request line) is answered 408 and closed; Node checks every `connectionsCheckingInterval`.
  const server = createServer(
    { connectionsCheckingInterval: Math.min(1_000, Math.ceil(headerTimeoutMs / 4)) },
    (req, res) => void app.listener(req, res),
  );
  server.on('upgrade', app.upgrade);
  server.headersTimeout = headerTimeoutMs;
  // Node measures both from the start of a request until it has been received: a stream's
  // response, however long it lasts, is not bounded by them, only a request that is slow to arrive.
  server.requestTimeout = Math.max(REQUEST_TIMEOUT_MS, headerTimeoutMs);
  server.keepAliveTimeout = 5_000;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(app.config.port, app.config.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await app.close();
    throw err;
  }
  const { port } = server.address() as AddressInfo;
  const host = app.config.host.includes(':') ? `[${app.config.host}]` : app.config.host;
  let stopping: Promise<void> | null = null;
  const running: RunningServer = {
    app,
    server,
    url: `http://${host}:${port}`,
    stop() {
      stopping ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        await app.close();
        server.closeAllConnections();
        await closed;
      })();
      return stopping;
    },
  };
  return running;
}
