/**
 * `tidings serve`, and {@link startServer}, which it shares with embedding services and tests:
 * an instance listening on a port. The instance itself (`buildApp`, and GraphQL, logging and
 * validation with it) is loaded when a server starts, not when `serve --help` is asked for.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import type { buildApp, TidingsApp } from '../app.js';
import { DEFAULT_CONFIG, loadConfig, redactUrl, SETTINGS, type TidingsConfig } from '../config.js';
import { TidingsError } from '../errors.js';
import type { CliIO } from './main.js';
import { printableConfig } from './maintenance.js';

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
  const { buildApp: build } = await import('../app.js');
  const app = await build(config, options);
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

function serveUsage(): string {
  const extra = `  --${'print-config'.padEnd(22)} ${''.padEnd(30)} print the effective configuration (secrets redacted) and exit`;
  const lines = SETTINGS.map((s) => {
    const def = DEFAULT_CONFIG[s.key];
    return `  --${s.flag.padEnd(22)} ${s.env.padEnd(30)} ${s.help} (default ${JSON.stringify(def)})`;
  });
  return `Usage: tidings serve [options]\n\nEach option can also be set by the environment variable beside it.\n\n${lines.join('\n')}\n${extra}\n`;
}

/**
 * `tidings serve`: runs a server until SIGTERM or SIGINT. Exit 0 once stopped, 1 when it cannot
 * start, 2 on usage.
 */
export async function serve(args: string[], io: CliIO, env: NodeJS.ProcessEnv): Promise<number> {
  const options = Object.fromEntries(SETTINGS.map((s) => [s.flag, { type: 'string' as const }]));
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        ...options,
        help: { type: 'boolean', short: 'h' },
        'print-config': { type: 'boolean' },
      },
      strict: true,
    }));
  } catch (err) {
    io.err(`tidings serve: ${(err as Error).message}\n`);
    return 2;
  }
  if (values.help) {
    io.out(serveUsage());
    return 0;
  }
  const { help: _help, 'print-config': printConfig, ...flags } = values;
  let config;
  try {
    config = loadConfig(env, flags as Record<string, string>);
  } catch (err) {
    io.err(`tidings serve: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
  if (printConfig) {
    io.out(`${JSON.stringify(printableConfig(config), null, 2)}\n`);
    return 0;
  }
  let running;
  try {
    running = await startServer(config);
  } catch (err) {
    const why = err instanceof TidingsError || err instanceof Error ? err.message : String(err);
    io.err(`tidings serve: cannot start: ${why}\n`);
    // A configuration the store refuses (another server on it, say) is a usage error too.
    return err instanceof TidingsError && err.code === 'BAD_CONFIG' ? 2 : 1;
  }
  const { app, url } = running;
  app.logger.info(
    { url, store: redactUrl(config.store), bus: redactUrl(config.bus) },
    `Tidings listening on ${url}/graphql`,
  );
  await new Promise<void>((resolve) => {
    const shutdown = (signal: string) => {
      app.logger.info({ signal }, 'shutting down');
      running.stop().then(resolve, (err: unknown) => {
        app.logger.error({ err }, 'shutdown failed');
        resolve();
      });
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
  });
  app.logger.info('stopped');
  return 0;
}
