/**
 * The `tidings` command line. `serve` runs an instance; the other commands talk to one, or work
 * on its store.
 *
 * Each command's module is loaded with `import()` once the command is chosen, and this module
 * imports nothing at its top: `tidings --help` loads no package at all, and a command loads only
 * what it uses (a server's GraphQL, logging and validation are loaded by `serve` alone).
 */

/** A command: its arguments (after its name), its output streams, its environment; its exit code. */
type Command = (args: string[], io: CliIO, env: NodeJS.ProcessEnv) => Promise<number>;

/** Loads each command's module when it is chosen. */
const COMMANDS: Record<string, () => Promise<Command>> = {
  serve: async () => (await import('./serve.js')).serve,
  token: async () => (await import('./token.js')).token,
  tail: async () => (await import('./tail.js')).tail,
  publish: async () => (await import('./publish.js')).publish,
  events: async () => (await import('./events.js')).events,
  purge: async () => (await import('./maintenance.js')).purge,
  export: async () => (await import('./maintenance.js')).exportEvents,
};

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

/** Output streams, replaceable in tests. */
export interface CliIO {
  out: (text: string) => void;
  err: (text: string) => void;
}

const defaultIO: CliIO = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
};

/**
 * Runs the CLI with `argv` (without the node and script paths); resolves with the exit code.
 */
export async function main(
  argv: string[],
  io: CliIO = defaultIO,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const [command, ...rest] = argv;
  // Own keys only: `tidings constructor` is an unknown command, not a property of an object.
  const load = command !== undefined && Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : null;
  if (load) return (await load())(rest, io, env);
  switch (command) {
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
