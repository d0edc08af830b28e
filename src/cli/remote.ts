/**
 * What the commands that talk to a running server (`tail`, `publish`, `events`) share: the
 * `--url` and `--token` flags, the event filter flags, how errors are reported, and how events
 * are printed for people.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { decodeJwt } from 'jose';
import {
  createTidingsClient,
  TidingsClientError,
  type EventFilter,
  type TidingsClient,
  type TidingsClientOptions,
  type TidingsEvent,
} from '../client/index.js';
import { parseDuration } from '../config.js';
import { readDateOrDateTime } from '../events/datetime.js';
import { SEVERITIES, type Severity } from '../events/types.js';
import type { CliIO } from './main.js';

/** The server the commands talk to when neither `--url` nor `TIDINGS_URL` names one. */
export const DEFAULT_URL = 'http://127.0.0.1:4000';

/** A bad invocation: reported as one line on stderr with exit code 2. */
export class UsageError extends Error {}

/** The flags every remote command takes. */
export const REMOTE_OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** The help lines of {@link REMOTE_OPTIONS}. */
export const REMOTE_HELP = `  --url <url>              the server (default TIDINGS_URL, else ${DEFAULT_URL})
  --token <jwt>            a token, for a server with TIDINGS_AUTH=jwt (default TIDINGS_TOKEN;
                           prefer the variable: command lines are visible to other users)
  -h, --help               show this help`;

/** The event filter flags of `tail` and `events`. */
export const FILTER_OPTIONS = {
  inbox: { type: 'string', multiple: true },
  type: { type: 'string', multiple: true },
  severity: { type: 'string', multiple: true },
  category: { type: 'string', multiple: true },
  action: { type: 'string', multiple: true },
  'resource-type': { type: 'string' },
  'resource-id': { type: 'string' },
  actor: { type: 'string' },
  source: { type: 'string' },
  'correlation-id': { type: 'string' },
  'parent-id': { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
} as const;

/** The help lines of {@link FILTER_OPTIONS}. */
export const FILTER_HELP = `Filters (the values of one flag match with OR, different flags with AND):
  --inbox <names>          repeatable or comma-separated; "pdfm", "hosts-*" (prefix)
  --type <types>           repeatable or comma-separated; "vm.started", "vm.*" (prefix)
  --severity <levels>      repeatable or comma-separated, in any case:
                           ${SEVERITIES.map((s) => s.toLowerCase()).join(', ')};
                           "warning+" means warning and above
  --category <category>    repeatable
  --action <action>        repeatable
  --resource-type <type>   --resource-id <id>   --actor <actor>   --source <source>
  --correlation-id <id>    --parent-id <id>
  --since <when>           events that happened at or after <when>: an ISO 8601 date-time with a
                           zone (2026-01-31T12:00:00Z), a date (2026-01-31, midnight UTC) or a
                           duration ago (90s, 15m, 2h, 7d)
  --until <when>           events that happened before <when> (same forms)`;

/** The values `parseArgs` gives for {@link FILTER_OPTIONS}. */
export interface FilterValues {
  inbox?: string[];
  type?: string[];
  severity?: string[];
  category?: string[];
  action?: string[];
  'resource-type'?: string;
  'resource-id'?: string;
  actor?: string;
  source?: string;
  'correlation-id'?: string;
  'parent-id'?: string;
  since?: string;
  until?: string;
}

type OptionsConfig = NonNullable<ParseArgsConfig['options']>;
/** What `parseArgs` gives for `options`, strict and without positionals. */
export type FlagValues<O extends OptionsConfig> = ReturnType<
  typeof parseArgs<{ args: string[]; options: O; strict: true; allowPositionals: false }>
>['values'];

/**
 * Parses `args` strictly (no positionals) against `options`.
 * @throws UsageError naming the bad flag and pointing at `tidings <command> --help`.
 */
export function parseFlags<const O extends OptionsConfig>(
  command: string,
  args: string[],
  options: O,
): FlagValues<O> {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    // node's messages go on about positionals after "--": the first sentence says it all.
    const message = (err as Error).message.replace(/^(Unknown option '[^']*')\..*$/s, '$1');
    throw new UsageError(`${message} (see "tidings ${command} --help")`);
  }
}

/** `value` unless it is absent or blank. */
export const given = (value: string | undefined): string | null =>
  value === undefined || value.trim() === '' ? null : value;

/** A name of 1–128 characters of `[A-Za-z0-9_.:-]`, as the server requires of types and inboxes. */
export const NAME = /^[A-Za-z0-9_.:-]{1,128}$/;
/** A {@link NAME}, a prefix of one followed by `*`, or `*` alone. */
const PATTERN = /^(?:[A-Za-z0-9_.:-]{1,128}|[A-Za-z0-9_.:-]{0,127}\*)$/;

/**
 * Splits repeated, comma-separated flag values into a list of distinct entries.
 * @throws UsageError when they name nothing.
 */
export function splitList(flag: string, raw: readonly string[]): string[] {
  const list = [
    ...new Set(
      raw
        .flatMap((r) => r.split(','))
        .map((s) => s.trim())
        .filter((s) => s !== ''),
    ),
  ];
  if (list.length === 0) throw new UsageError(`--${flag} is empty: leave it out to match any`);
  return list;
}

function patterns(flag: string, raw: readonly string[] | undefined): string[] | undefined {
  if (raw === undefined) return undefined;
  const list = splitList(flag, raw);
  const bad = list.find((p) => !PATTERN.test(p));
  if (bad !== undefined) {
    throw new UsageError(
      `bad ${flag} "${bad}" in --${flag}: use letters, digits and _ . : - (at most 128), ` +
        'optionally ending in * for a prefix',
    );
  }
  return list;
}

/**
 * Reads one severity, in any case (`warning`, `WARNING`).
 * @throws UsageError listing the valid ones.
 */
export function parseSeverity(flag: string, raw: string): Severity {
  const upper = raw.trim().toUpperCase();
  const found = SEVERITIES.find((s) => s === upper);
  if (found === undefined) {
    throw new UsageError(
      `unknown severity "${raw.trim()}" in --${flag}: expected one of ` +
        SEVERITIES.map((s) => s.toLowerCase()).join(', '),
    );
  }
  return found;
}

/** Reads severities, comma-separated or repeated; `warning+` stands for warning and above. */
export function parseSeverities(raw: readonly string[]): Severity[] {
  const out = new Set<Severity>();
  for (const entry of splitList('severity', raw)) {
    if (entry.endsWith('+')) {
      const from = SEVERITIES.indexOf(parseSeverity('severity', entry.slice(0, -1)));
      for (const s of SEVERITIES.slice(from)) out.add(s);
    } else {
      out.add(parseSeverity('severity', entry));
    }
  }
  return [...out];
}

/**
 * Reads a point in time: an ISO 8601 date-time with a zone, a date (midnight UTC) or, when `ago`
 * is set, a duration before `now` (`15m`, `2h`, `7d`). A date that does not exist (30 February,
 * 24:00) is refused, as the server refuses it.
 * @returns the ISO string the server expects.
 * @throws UsageError saying which forms are accepted.
 */
export function parseWhen(flag: string, raw: string, ago = true, now = Date.now()): string {
  const value = raw.trim();
  const reading = readDateOrDateTime(value);
  if (reading.ok) return new Date(reading.ms).toISOString();
  if (ago) {
    try {
      return new Date(now - parseDuration(`--${flag}`, value)).toISOString();
    } catch {
      // Reported below, with every accepted form.
    }
  }
  // A text written as a date says what is wrong with it; anything else gets the accepted forms.
  const why = /^\d{4}-\d{2}-\d{2}/.test(value) ? ` (${reading.problem})` : '';
  throw new UsageError(
    `--${flag}=${JSON.stringify(raw)} is invalid${why}: expected an ISO 8601 date-time with a ` +
      `time zone (2026-01-31T12:00:00Z), a date (2026-01-31)` +
      `${ago ? ' or a duration ago (15m, 2h, 7d)' : ''}`,
  );
}

/**
 * Reads a whole number from 1 to `max`.
 * @throws UsageError otherwise.
 */
export function parseCount(flag: string, raw: string, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(raw.trim());
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < 1 || n > max) {
    throw new UsageError(
      `--${flag}=${JSON.stringify(raw)} is invalid: expected a whole number ≥ 1`,
    );
  }
  return n;
}

/** A label flag (category, actor…): kept as given, but not empty. */
function label(flag: string, raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  if (raw.trim() === '') throw new UsageError(`--${flag} is empty: leave it out to match any`);
  return raw;
}

function labels(flag: string, raw: readonly string[] | undefined): string[] | undefined {
  return raw?.map((r) => label(flag, r) as string);
}

/**
 * Turns the filter flags into the inboxes to name and an {@link EventFilter} (without inboxes).
 * @throws UsageError for a bad pattern, severity or date, or `--since` not before `--until`.
 */
export function parseFilter(
  values: FilterValues,
  now = Date.now(),
): { inboxes: string[] | undefined; filter: EventFilter } {
  const filter: EventFilter = {};
  const types = patterns('type', values.type);
  if (types) filter.types = types;
  if (values.severity) filter.severities = parseSeverities(values.severity);
  const categories = labels('category', values.category);
  if (categories) filter.categories = categories;
  const actions = labels('action', values.action);
  if (actions) filter.actions = actions;
  const single = [
    ['resource-type', 'resourceType'],
    ['resource-id', 'resourceId'],
    ['actor', 'actor'],
    ['source', 'source'],
    ['correlation-id', 'correlationId'],
    ['parent-id', 'parentId'],
  ] as const;
  for (const [flag, field] of single) {
    const value = label(flag, values[flag]);
    if (value !== undefined) filter[field] = value;
  }
  if (values.since !== undefined) filter.since = parseWhen('since', values.since, true, now);
  if (values.until !== undefined) filter.until = parseWhen('until', values.until, true, now);
  if (filter.since && filter.until && filter.since >= filter.until) {
    throw new UsageError(
      `--since (${filter.since}) is not before --until (${filter.until}): nothing would match`,
    );
  }
  return { inboxes: patterns('inbox', values.inbox), filter };
}

/** Leeway on a token's `exp`, as the server's default `TIDINGS_JWT_CLOCK_SKEW`. */
const EXPIRY_LEEWAY_S = 30;

/**
 * The token as the client asks for it. Once a JWT is past its `exp`, asking fails for good,
 * rather than reconnecting a stream again and again with a token the server refuses.
 */
function tokenSource(token: string): () => string {
  let exp: number | undefined;
  try {
    exp = decodeJwt(token).exp;
  } catch {
    // Not a JWT we can read: the server will say what is wrong with it.
  }
  return () => {
    if (exp !== undefined && Date.now() > (exp + EXPIRY_LEEWAY_S) * 1000) {
      throw new TidingsClientError(
        `the token expired at ${new Date(exp * 1000).toISOString()}: get a new one and run again`,
        'TOKEN_EXPIRED',
      );
    }
    return token;
  };
}

/** Where to connect, read from `--url`/`--token` and the environment. */
export interface Remote {
  url: string;
  client: TidingsClient;
}

/**
 * Creates a client for `--url` (or `TIDINGS_URL`, or {@link DEFAULT_URL}) with `--token` (or
 * `TIDINGS_TOKEN`).
 * @throws UsageError for a URL that is not http(s).
 */
export function connect(
  values: { url?: string; token?: string },
  env: Readonly<Record<string, string | undefined>>,
  options: Partial<TidingsClientOptions> = {},
): Remote {
  const raw = given(values.url) ?? given(env.TIDINGS_URL) ?? DEFAULT_URL;
  const source = given(values.url) !== null ? '--url' : 'TIDINGS_URL';
  let parsed: URL | null = null;
  try {
    parsed = new URL(raw);
  } catch {
    // Reported below.
  }
  if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
    throw new UsageError(
      `${source}=${JSON.stringify(raw)} is invalid: expected the server's base URL, e.g. ${DEFAULT_URL}`,
    );
  }
  const url = raw.replace(/\/+$/, '');
  const token = given(values.token) ?? given(env.TIDINGS_TOKEN);
  const client = createTidingsClient({
    url,
    ...(token === null ? {} : { token: tokenSource(token) }),
    ...options,
  });
  return { url, client };
}

/** What the innermost cause says: its `code` (`ECONNREFUSED`), else its message; null if none. */
function causeDetail(err: unknown): string | null {
  let found: string | null = null;
  let e = err instanceof Error ? err.cause : undefined;
  for (let depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    found = typeof code === 'string' ? code : e.message || found;
  }
  return found;
}

/** One line describing a failure, with the server's code and a hint where one helps. */
export function describeError(err: unknown, url: string | null = null): string {
  if (err instanceof TidingsClientError) {
    if (err.code === 'NETWORK') {
      const detail = causeDetail(err.cause);
      return (
        `${err.message}${detail ? ` (${detail})` : ''}: is the server running` +
        `${url ? ` at ${url}` : ''}? Set --url or TIDINGS_URL`
      );
    }
    const hint =
      err.code === 'UNAUTHENTICATED' ? ': pass a token with --token or TIDINGS_TOKEN' : '';
    return `${err.message} (${err.code})${hint}`;
  }
  return err instanceof Error ? err.message : String(err);
}

/**
 * Runs a command body: a {@link UsageError} becomes one line on stderr and exit code 2, a server
 * or network error one line and exit code 1.
 */
export async function runCommand(
  command: string,
  io: CliIO,
  body: () => Promise<number>,
): Promise<number> {
  try {
    return await body();
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`tidings ${command}: ${err.message}\n`);
      return 2;
    }
    if (err instanceof TidingsClientError) {
      io.err(`tidings ${command}: ${describeError(err)}\n`);
      return 1;
    }
    throw err;
  }
}

/**
 * Whether to colour output: `FORCE_COLOR` (other than `0`) says yes, a non-empty `NO_COLOR` says
 * no, otherwise colour goes to a terminal only.
 */
export function wantsColour(
  env: Readonly<Record<string, string | undefined>>,
  isTTY: boolean | undefined,
): boolean {
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0') return true;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  return isTTY === true;
}

const SEVERITY_COLOUR: Record<Severity, string> = {
  DEBUG: '\x1b[2m',
  INFO: '\x1b[36m',
  SUCCESS: '\x1b[32m',
  WARNING: '\x1b[33m',
  ERROR: '\x1b[31m',
  CRITICAL: '\x1b[1;31m',
};

/** The severity padded to its column, in its ANSI colour when `colour` is set. */
export function severityCell(severity: Severity, colour: boolean): string {
  const cell = severity.padEnd(8);
  return colour ? `${SEVERITY_COLOUR[severity]}${cell}\x1b[0m` : cell;
}

/** C0 and C1 control characters, DEL included. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

/**
 * Text made safe for one line of a terminal: newlines and tabs become spaces and any other
 * control character is shown as `\uXXXX`, so an event cannot move the cursor or change colours.
 */
export function oneLine(text: string | null | undefined): string {
  if (text == null) return '';
  const escape = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  return text.replace(/[\t\n\r]+/g, ' ').replace(CONTROL, escape);
}

/** `text` cut to `width` characters, ending with `…` when cut. */
export function truncate(text: string, width: number): string {
  const chars = [...text];
  if (chars.length <= width) return text;
  return width <= 1 ? '…'.slice(0, width) : `${chars.slice(0, width - 1).join('')}…`;
}

/** One readable line: time, severity, inbox, type, message and cursor. */
export function formatEvent(event: TidingsEvent, colour: boolean): string {
  const message = oneLine(event.message);
  return [
    event.timestamp,
    severityCell(event.severity, colour),
    oneLine(event.inbox),
    oneLine(event.type),
    ...(message === '' ? [] : [message]),
    `cursor=${event.cursor}`,
  ].join('  ');
}

let brokenPipe: (() => void) | null = null;
let brokenPipeListening = false;

/**
 * Calls `onBroken` when stdout can no longer be written, e.g. its reader went away (`tidings tail
 * | head -3`), instead of letting the write error (EPIPE) crash the process. The listener stays
 * for the life of the process: a write still pending when the command ends fails later.
 */
export function onBrokenPipe(onBroken: () => void): void {
  brokenPipe = onBroken;
  if (brokenPipeListening) return;
  brokenPipeListening = true;
  process.stdout.on('error', () => brokenPipe?.());
}
