/**
 * `tidings tail`: prints events as they are published, until a signal, `--limit` or a server
 * error. The typed client's subscription reconnects and resumes by itself; its state changes and
 * history gaps are noted on stderr, so stdout holds events only.
 */
import type { TidingsClientOptions } from '../client/index.js';
import type { CliIO } from './main.js';
import {
  FILTER_HELP,
  FILTER_OPTIONS,
  REMOTE_HELP,
  REMOTE_OPTIONS,
  UsageError,
  connect,
  formatEvent,
  given,
  onBrokenPipe,
  parseCount,
  parseFilter,
  parseFlags,
  runCommand,
  wantsColour,
} from './remote.js';

/** The usage text of `tidings tail --help`. */
export const TAIL_USAGE = `Usage: tidings tail [filters] [options]

Prints events as they are published, one per line, until Ctrl-C (SIGINT) or SIGTERM. A dropped
connection is reopened and resumes after the last event printed; notes such as "live",
"reconnecting…" and history gaps go to stderr. Lines show time, severity, inbox, type, message
and cursor; pass a cursor to --after to continue from there later.

Options:
  --client-id <id>         also receive the events targeted to this client
  --after <cursor>         first replay the stored events after this cursor
  --limit <n>              exit after n events
  --json                   print NDJSON: one event object per line
${REMOTE_HELP}

${FILTER_HELP}

Exit status: 0 after a signal or --limit, 1 when the server refuses the stream, 2 on a usage error.
`;

const OPTIONS = {
  ...REMOTE_OPTIONS,
  ...FILTER_OPTIONS,
  'client-id': { type: 'string' },
  after: { type: 'string' },
  limit: { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** What a caller other than the `tidings` executable may set. */
export interface TailOptions {
  /**
   * Stops the tail (exit code 0) when aborted. Without it, SIGINT and SIGTERM stop it, and so
   * does a stdout that can no longer be written.
   */
  signal?: AbortSignal;
  /** Colour severities. @default from FORCE_COLOR, NO_COLOR and whether stdout is a terminal */
  colour?: boolean;
  /** Passed to the client (e.g. `backoff`, `keepaliveMs`). */
  client?: Partial<TidingsClientOptions>;
}

/**
 * Runs `tidings tail` with `args` (the arguments after `tail`); resolves with the exit code once
 * stopped: 0 after a signal (or `options.signal`) or `--limit` events, 1 when the server refused
 * the stream, 2 on a usage error.
 */
export async function tail(
  args: string[],
  io: CliIO,
  env: Readonly<Record<string, string | undefined>>,
  options: TailOptions = {},
): Promise<number> {
  return runCommand('tail', io, async () => {
    const values = parseFlags('tail', args, OPTIONS);
    if (values.help) {
      io.out(TAIL_USAGE);
      return 0;
    }
    const { inboxes, filter } = parseFilter(values);
    const limit = values.limit === undefined ? null : parseCount('limit', values.limit);
    const clientId = given(values['client-id']);
    if (values['client-id'] !== undefined && clientId === null) {
      throw new UsageError('--client-id is empty: leave it out to receive broadcast events only');
    }
    const after = given(values.after);
    if (values.after !== undefined && after === null) {
      throw new UsageError('--after is empty: give a cursor printed by tail or events');
    }
    const { client } = connect(values, env, options.client);
    const colour = options.colour ?? wantsColour(env, process.stdout.isTTY);

    let stoppedBySignal = false;
    const sub = client.subscribe({
      ...(inboxes ? { inboxes } : {}),
      ...(clientId === null ? {} : { clientId }),
      ...(after === null ? {} : { after }),
      filter,
      onStateChange: (state) => {
        if (state === 'live') io.err('tidings tail: live\n');
        if (state === 'reconnecting') {
          const from = sub.lastCursor === null ? '' : ` (resuming after ${sub.lastCursor})`;
          io.err(`tidings tail: reconnecting…${from}\n`);
        }
      },
      onGap: (gap) => {
        io.err(
          `tidings tail: history gap: the events after ${gap.after} through ${gap.purgedThrough} ` +
            'were removed by retention before they could be replayed\n',
        );
      },
    });
    const stop = () => {
      stoppedBySignal = true;
      sub.close();
    };
    // The reader went away: where it stopped reading is unknown, so no cursor is suggested.
    const readerGone = () => sub.close();
    const detach: (() => void)[] = [];
    if (options.signal) {
      if (options.signal.aborted) stop();
      options.signal.addEventListener('abort', stop, { once: true });
      detach.push(() => options.signal?.removeEventListener('abort', stop));
    } else {
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      detach.push(() => process.off('SIGINT', stop).off('SIGTERM', stop));
      onBrokenPipe(readerGone);
    }

    let count = 0;
    try {
      for await (const event of sub) {
        io.out(`${values.json ? JSON.stringify(event) : formatEvent(event, colour)}\n`);
        if (limit !== null && ++count >= limit) break;
      }
    } catch (err) {
      if (sub.lastCursor !== null) {
        io.err(`tidings tail: the last event printed has cursor ${sub.lastCursor}\n`);
      }
      throw err;
    } finally {
      for (const d of detach) d();
      sub.close();
    }
    if (stoppedBySignal && sub.lastCursor !== null) {
      io.err(`tidings tail: stopped; continue with --after ${sub.lastCursor}\n`);
    }
    return 0;
  });
}
