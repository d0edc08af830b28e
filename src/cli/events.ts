/**
 * `tidings events`: searches the history, page by page up to `--limit`, and prints a table or
 * NDJSON.
 */
import type { EventOrder, TidingsClientOptions, TidingsEvent } from '../client/index.js';
import { TidingsClientError } from '../client/index.js';
import type { CliIO } from './main.js';
import {
  FILTER_HELP,
  FILTER_OPTIONS,
  REMOTE_HELP,
  REMOTE_OPTIONS,
  UsageError,
  connect,
  describeError,
  given,
  onBrokenPipe,
  oneLine,
  parseCount,
  parseFilter,
  parseFlags,
  runCommand,
  severityCell,
  truncate,
  wantsColour,
} from './remote.js';

/** Events listed when `--limit` is not given. */
export const DEFAULT_LIMIT = 50;

/** Events asked for per request. */
const PAGE_SIZE = 100;

/** The usage text of `tidings events --help`. */
export const EVENTS_USAGE = `Usage: tidings events [filters] [options]

Lists stored events, newest first, as a table of time, severity, inbox, type, message and cursor
(long cells are cut), or as NDJSON with --json. It reads as many pages as --limit needs.

Options:
  --order <order>          newest (default) or oldest first
  --limit <n>              list at most n events (default ${DEFAULT_LIMIT})
  --after <cursor>         start after this cursor, in the chosen order
  --json                   print NDJSON: one event object per line
${REMOTE_HELP}

${FILTER_HELP}

Exit status: 0 once listed (even when nothing matches), 1 when the server refused,
2 on a usage error.
`;

const OPTIONS = {
  ...REMOTE_OPTIONS,
  ...FILTER_OPTIONS,
  order: { type: 'string' },
  limit: { type: 'string' },
  after: { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** What a caller other than the `tidings` executable may set. */
export interface EventsCommandOptions {
  /** Colour severities. @default from FORCE_COLOR, NO_COLOR and whether stdout is a terminal */
  colour?: boolean;
  /** Width of the table. @default the terminal's, or unbounded messages up to 80 when piped */
  columns?: number;
  /** Passed to the client. */
  client?: Partial<TidingsClientOptions>;
}

/** Widest inbox and type cells; longer ones are cut. */
const MAX_INBOX = 24;
const MAX_TYPE = 32;
/** Message width when the terminal's is unknown, and the least it gets when known. */
const PIPED_MESSAGE = 80;
const MIN_MESSAGE = 16;

/**
 * Lays `events` out as a table: a header, then one row per event. Cells are single-line; inbox,
 * type and message are cut to fit `columns` (when given).
 */
export function formatTable(
  events: readonly TidingsEvent[],
  colour: boolean,
  columns?: number,
): string {
  const rows = events.map((e) => ({
    time: e.timestamp,
    severity: e.severity,
    inbox: oneLine(e.inbox),
    type: oneLine(e.type),
    message: oneLine(e.message),
    cursor: e.cursor,
  }));
  const width = (values: string[], header: string, max: number) =>
    Math.min(max, Math.max(header.length, ...values.map((v) => [...v].length)));
  const time = width(
    rows.map((r) => r.time),
    'TIME',
    Infinity,
  );
  const inbox = width(
    rows.map((r) => r.inbox),
    'INBOX',
    MAX_INBOX,
  );
  const type = width(
    rows.map((r) => r.type),
    'TYPE',
    MAX_TYPE,
  );
  const cursor = width(
    rows.map((r) => r.cursor),
    'CURSOR',
    Infinity,
  );
  const fixed = time + 8 + inbox + type + cursor + 2 * 5;
  const room = columns === undefined ? PIPED_MESSAGE : Math.max(MIN_MESSAGE, columns - fixed);
  const message = width(
    rows.map((r) => r.message),
    'MESSAGE',
    room,
  );
  const cell = (text: string, w: number) => {
    const cut = truncate(text, w);
    return cut + ' '.repeat(Math.max(0, w - [...cut].length));
  };
  const header = [
    cell('TIME', time),
    cell('SEVERITY', 8),
    cell('INBOX', inbox),
    cell('TYPE', type),
    cell('MESSAGE', message),
    'CURSOR',
  ].join('  ');
  const lines = rows.map((r) =>
    [
      cell(r.time, time),
      severityCell(r.severity, colour),
      cell(r.inbox, inbox),
      cell(r.type, type),
      cell(r.message, message),
      r.cursor,
    ].join('  '),
  );
  return `${colour ? `\x1b[1m${header}\x1b[0m` : header}\n${lines.map((l) => `${l}\n`).join('')}`;
}

function parseOrder(raw: string | undefined): EventOrder {
  switch (raw?.trim().toLowerCase()) {
    case undefined:
    case 'newest':
      return 'NEWEST_FIRST';
    case 'oldest':
      return 'OLDEST_FIRST';
    default:
      throw new UsageError(`--order=${JSON.stringify(raw)} is invalid: expected newest or oldest`);
  }
}

/**
 * Runs `tidings events` with `args` (the arguments after `events`); resolves with the exit code:
 * 0 once listed, 1 when the server refused, 2 on a usage error.
 */
export async function events(
  args: string[],
  io: CliIO,
  env: Readonly<Record<string, string | undefined>>,
  options: EventsCommandOptions = {},
): Promise<number> {
  return runCommand('events', io, async () => {
    const values = parseFlags('events', args, OPTIONS);
    if (values.help) {
      io.out(EVENTS_USAGE);
      return 0;
    }
    const { inboxes, filter } = parseFilter(values);
    if (inboxes) filter.inboxes = inboxes;
    const order = parseOrder(values.order);
    const limit = values.limit === undefined ? DEFAULT_LIMIT : parseCount('limit', values.limit);
    const after = given(values.after);
    if (values.after !== undefined && after === null) {
      throw new UsageError('--after is empty: give a cursor printed by tail or events');
    }
    const remote = connect(values, env, options.client);

    // One more than the limit tells whether events were left out.
    const found: TidingsEvent[] = [];
    try {
      const pages = remote.client.events({
        filter,
        order,
        pageSize: Math.min(limit + 1, PAGE_SIZE),
        ...(after === null ? {} : { after }),
      });
      for await (const event of pages) {
        found.push(event);
        if (found.length > limit) break;
      }
    } catch (err) {
      if (!(err instanceof TidingsClientError)) throw err;
      io.err(`tidings events: ${describeError(err, remote.url)}\n`);
      return 1;
    }
    const more = found.length > limit;
    const shown = found.slice(0, limit);

    // A reader that leaves early (`| head`) is not an error.
    onBrokenPipe(() => undefined);
    if (values.json) {
      for (const event of shown) io.out(`${JSON.stringify(event)}\n`);
      return 0;
    }
    if (shown.length === 0) {
      io.err('tidings events: no events match\n');
      return 0;
    }
    const colour = options.colour ?? wantsColour(env, process.stdout.isTTY);
    const columns = options.columns ?? (process.stdout.isTTY ? process.stdout.columns : undefined);
    io.out(formatTable(shown, colour, columns));
    if (more) {
      io.err(
        `tidings events: ${limit} shown, more match: raise --limit, narrow the filters, or ` +
          `continue with --after ${shown[shown.length - 1]?.cursor ?? ''}\n`,
      );
    }
    return 0;
  });
}
