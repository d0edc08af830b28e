/**
 * The `tidings` command line. `serve` runs an instance; more commands join it over time.
 */
import { parseArgs } from 'node:util';
import { DEFAULT_CONFIG, loadConfig, redactUrl, SETTINGS } from '../config.js';
import { TidingsError } from '../errors.js';
import { events } from './events.js';
import { exportEvents, printableConfig, purge } from './maintenance.js';
import { publish } from './publish.js';
import { startServer } from './serve.js';
import { tail } from './tail.js';
import { token } from './token.js';

const USAGE = `Usage: tidings <command> [options]

Commands:
  serve     run a Tidings server (configuration from flags or environment variables)
  token     print a signed JWT for a server with TIDINGS_AUTH=jwt (for testing)
  tail      print events live as they are published; resumes by itself after a disconnect
  publish   publish an event from flags, or JSON / NDJSON events from stdin
  events    list past events, newest first, as a table or NDJSON
  purge     remove events older than the retention now (the server also does it in the background)
  export    write events received before a date as NDJSON, for cold storage

Run "tidings <command> --help" for a command's options. tail, publish and events talk to the
server at TIDINGS_URL (default http://127.0.0.1:4000) with the token in TIDINGS_TOKEN, if any.
`;

function serveUsage(): string {
  const extra = `  --${'print-config'.padEnd(22)} ${''.padEnd(30)} print the effective configuration (secrets redacted) and exit`;
  const lines = SETTINGS.map((s) => {
    const def = DEFAULT_CONFIG[s.key];
    return `  --${s.flag.padEnd(22)} ${s.env.padEnd(30)} ${s.help} (default ${JSON.stringify(def)})`;
  });
  return `Usage: tidings serve [options]\n\nEach option can also be set by the environment variable beside it.\n\n${lines.join('\n')}\n${extra}\n`;
}

/** Output streams, replaceable in tests. */
export interface CliIO {
  out: (text: string) => void;
  err: (text: string) => void;
}

const defaultIO: CliIO = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
};

async function serve(args: string[], io: CliIO, env: NodeJS.ProcessEnv): Promise<number> {
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

/**
 * Runs the CLI with `argv` (without the node and script paths); resolves with the exit code.
 */
export async function main(
  argv: string[],
  io: CliIO = defaultIO,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve(rest, io, env);
    case 'token':
      return token(rest, io, env);
    case 'tail':
      return tail(rest, io, env);
    case 'publish':
      return publish(rest, io, env);
    case 'events':
      return events(rest, io, env);
    case 'purge':
      return purge(rest, io, env);
    case 'export':
      return exportEvents(rest, io, env);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      io.out(USAGE);
      return command === undefined ? 2 : 0;
    default:
      io.err(`tidings: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}
