/**
 * `tidings publish`: publishes one event described by flags, or the JSON events read from stdin
 * (one object, an array published as one atomic batch, or NDJSON published in batches), and
 * prints what the server stored.
 */
import type { PublishEventInput, TidingsClientOptions, TidingsEvent } from '../client/index.js';
import { TidingsClientError } from '../client/index.js';
import { readDateTime } from '../events/datetime.js';
import { PUBLISH_FIELDS } from '../events/fields.js';
import type { CliIO } from './main.js';
import {
  NAME,
  REMOTE_HELP,
  REMOTE_OPTIONS,
  UsageError,
  connect,
  describeError,
  given,
  parseFlags,
  parseSeverity,
  parseWhen,
  runCommand,
  type Remote,
} from './remote.js';

/** NDJSON lines published per atomic batch. */
export const NDJSON_BATCH = 100;

/** The usage text of `tidings publish --help`. */
export const PUBLISH_USAGE = `Usage: tidings publish --type <type> [fields] [options]
       <json> | tidings publish [options]

Publishes one event described by flags or, without --type, the JSON read from stdin (to its end):
  one event object      {"type":"vm.started","inbox":"pdfm","body":{"vm":42}}
  an array of events    published as one atomic batch: all are stored, or none
  NDJSON                one event object per line, published in atomic batches of up to
                        ${NDJSON_BATCH} lines; a refused batch stops the publish, the batches before it stay
The fields are those of PublishEventInput (see schema.graphql). Prints each stored event as one
line of JSON (NDJSON), in input order.

Fields:
  --type <type>            the event type, e.g. vm.state_changed (required without stdin)
  --inbox <inbox>          the inbox (default global)
  --client-id <id>         deliver only to this client's streams
  --severity <level>       debug, info (default), success, warning, error, critical
  --message <text>         human text
  --body <json>            the payload, any JSON: --body '{"vm":42}'
  --id <id>                your own id: publishing it again stores nothing new
  --category <category>    --action <action>   --actor <actor>   --source <source>
  --resource <type:id>     what was acted upon, e.g. vm:42
  --parent-id <id>         --correlation-id <id>
  --timestamp <when>       when it happened: 2026-01-31T12:00:00Z (default now)

Options:
  --quiet                  print only the ids of the stored events, one per line
${REMOTE_HELP}

Exit status: 0 once stored, 1 when the server refused (nothing of the refused batch is stored),
2 on bad flags or bad JSON (nothing is published; NDJSON errors name the line).
`;

const FIELD_OPTIONS = {
  type: { type: 'string' },
  inbox: { type: 'string' },
  'client-id': { type: 'string' },
  severity: { type: 'string' },
  message: { type: 'string' },
  body: { type: 'string' },
  id: { type: 'string' },
  category: { type: 'string' },
  action: { type: 'string' },
  resource: { type: 'string' },
  actor: { type: 'string' },
  source: { type: 'string' },
  'parent-id': { type: 'string' },
  'correlation-id': { type: 'string' },
  timestamp: { type: 'string' },
} as const;

const OPTIONS = { ...REMOTE_OPTIONS, ...FIELD_OPTIONS, quiet: { type: 'boolean' } } as const;

/** The fields of `PublishEventInput`. */
const INPUT_FIELDS: ReadonlySet<string> = new Set(PUBLISH_FIELDS);

/** What a caller other than the `tidings` executable may set. */
export interface PublishOptions {
  /** Where JSON events are read from. @default process.stdin */
  stdin?: AsyncIterable<string | Uint8Array> & { isTTY?: boolean };
  /** Passed to the client (e.g. `publishAttempts`). */
  client?: Partial<TidingsClientOptions>;
}

type FieldValues = { [K in keyof typeof FIELD_OPTIONS]?: string };

/** The event described by the field flags. */
function fromFlags(values: FieldValues): PublishEventInput {
  const type = values.type ?? '';
  const name = (flag: string, value: string) => {
    if (!NAME.test(value)) {
      throw new UsageError(
        `--${flag}=${JSON.stringify(value)} is invalid: use 1–128 letters, digits and _ . : -`,
      );
    }
    return value;
  };
  const input: PublishEventInput = { type: name('type', type) };
  if (values.inbox !== undefined) input.inbox = name('inbox', values.inbox);
  if (values.id !== undefined) input.id = name('id', values.id);
  if (values['parent-id'] !== undefined) input.parentId = name('parent-id', values['parent-id']);
  const labels = [
    ['client-id', 'clientId'],
    ['category', 'category'],
    ['action', 'action'],
    ['actor', 'actor'],
    ['source', 'source'],
    ['correlation-id', 'correlationId'],
  ] as const;
  for (const [flag, field] of labels) {
    const value = values[flag];
    if (value === undefined) continue;
    if (given(value) === null) throw new UsageError(`--${flag} is empty: leave it out`);
    input[field] = value;
  }
  if (values.message !== undefined) input.message = values.message;
  if (values.severity !== undefined) input.severity = parseSeverity('severity', values.severity);
  if (values.timestamp !== undefined) {
    input.timestamp = parseWhen('timestamp', values.timestamp, false);
  }
  if (values.body !== undefined) {
    try {
      input.body = JSON.parse(values.body) as unknown;
    } catch (err) {
      throw new UsageError(
        `--body is not JSON (${(err as Error).message}): quote it, e.g. --body '{"vm":42}'`,
      );
    }
  }
  if (values.resource !== undefined) {
    const colon = values.resource.indexOf(':');
    const type = values.resource.slice(0, colon).trim();
    const id = values.resource.slice(colon + 1).trim();
    if (colon === -1 || type === '' || id === '') {
      throw new UsageError(
        `--resource=${JSON.stringify(values.resource)} is invalid: expected <type>:<id>, e.g. vm:42`,
      );
    }
    input.resource = { type, id };
  }
  return input;
}

/**
 * Checks one event read from stdin: an object with known fields and a `type`; a severity is
 * accepted in any case.
 * @throws UsageError prefixed with `where`.
 */
function checkInput(value: unknown, where: string): PublishEventInput {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UsageError(`${where}: expected an event object such as {"type":"vm.started"}`);
  }
  const input = { ...(value as Record<string, unknown>) };
  const unknown = Object.keys(input).find((k) => !INPUT_FIELDS.has(k));
  if (unknown !== undefined) {
    throw new UsageError(
      `${where}: unknown field "${unknown}": an event has ${[...INPUT_FIELDS].join(', ')}`,
    );
  }
  if (typeof input.type !== 'string' || input.type === '') {
    throw new UsageError(`${where}: "type" is missing: every event needs one, e.g. "vm.started"`);
  }
  if (typeof input.timestamp === 'string') {
    const reading = readDateTime(input.timestamp);
    if (!reading.ok) {
      throw new UsageError(
        `${where}: "timestamp" ${JSON.stringify(input.timestamp)} is invalid (${reading.problem}): ` +
          'expected an ISO 8601 date-time with a time zone, e.g. "2026-01-31T12:00:00Z"',
      );
    }
  }
  if (typeof input.severity === 'string') {
    try {
      input.severity = parseSeverity('severity', input.severity);
    } catch (err) {
      throw new UsageError(`${where}: ${(err as Error).message.replace(' in --severity', '')}`);
    }
  }
  return input as unknown as PublishEventInput;
}

/** Events read from stdin, with the line each starts on. */
type Parsed =
  | { kind: 'one'; input: PublishEventInput }
  | { kind: 'array'; inputs: PublishEventInput[] }
  | { kind: 'lines'; inputs: PublishEventInput[]; lines: number[] };

/**
 * Reads stdin's text as one JSON value (an event or an array of events), or else as NDJSON.
 * @throws UsageError naming the line of the first bad NDJSON line.
 */
export function parseInput(text: string): Parsed {
  const trimmed = text.replace(/^\uFEFF/, '').trim();
  if (trimmed === '') {
    throw new UsageError(
      'stdin is empty: pipe JSON events into it, or describe one event with --type',
    );
  }
  let whole: unknown;
  let wholeError: Error | null = null;
  try {
    whole = JSON.parse(trimmed);
  } catch (err) {
    wholeError = err as Error;
  }
  if (wholeError === null) {
    if (!Array.isArray(whole)) return { kind: 'one', input: checkInput(whole, 'stdin') };
    if (whole.length === 0) throw new UsageError('stdin holds an empty array: nothing to publish');
    return {
      kind: 'array',
      inputs: whole.map((v, i) => checkInput(v, `stdin, event ${i} of the array`)),
    };
  }
  if (trimmed.startsWith('[')) {
    throw new UsageError(`stdin is not a valid JSON array: ${wholeError.message}`);
  }
  const inputs: PublishEventInput[] = [];
  const lines: number[] = [];
  const raw = text.replace(/^\uFEFF/, '').split('\n');
  for (const [i, line] of raw.entries()) {
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      const what = inputs.length === 0 ? ' (neither one JSON value nor NDJSON)' : '';
      throw new UsageError(`stdin line ${i + 1} is not JSON${what}: ${(err as Error).message}`);
    }
    inputs.push(checkInput(value, `stdin line ${i + 1}`));
    lines.push(i + 1);
  }
  return { kind: 'lines', inputs, lines };
}

async function readAll(stdin: AsyncIterable<string | Uint8Array>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8');
}

/** Publishes NDJSON events batch by batch, printing each stored batch before the next. */
async function publishLines(
  remote: Remote,
  inputs: PublishEventInput[],
  lines: number[],
  print: (events: TidingsEvent[]) => void,
): Promise<void> {
  for (let start = 0; start < inputs.length; start += NDJSON_BATCH) {
    const batch = inputs.slice(start, start + NDJSON_BATCH);
    try {
      print(await remote.client.publishMany(batch));
    } catch (err) {
      if (!(err instanceof TidingsClientError)) throw err;
      const first = lines[start] as number;
      const last = lines[start + batch.length - 1] as number;
      const index = err.extensions.index;
      const at = typeof index === 'number' && lines[start + index] ? lines[start + index] : null;
      const where =
        at === null ? `lines ${first}–${last}` : `line ${at} (batch of lines ${first}–${last})`;
      const stored =
        start === 0
          ? 'nothing was stored'
          : `the ${start} events before line ${first} were stored; publish the lines from ${first} on again`;
      throw new PublishError(`stdin ${where}: ${describeError(err, remote.url)}; ${stored}`);
    }
  }
}

/** A refusal already described with where it happened in the input. */
class PublishError extends Error {}

/**
 * Runs `tidings publish` with `args` (the arguments after `publish`); resolves with the exit code:
 * 0 once every event is stored, 1 when the server refused, 2 on bad flags or bad JSON.
 */
export async function publish(
  args: string[],
  io: CliIO,
  env: Readonly<Record<string, string | undefined>>,
  options: PublishOptions = {},
): Promise<number> {
  return runCommand('publish', io, async () => {
    const values = parseFlags('publish', args, OPTIONS);
    if (values.help) {
      io.out(PUBLISH_USAGE);
      return 0;
    }
    const print = (events: TidingsEvent[]) => {
      for (const e of events) io.out(`${values.quiet ? e.id : JSON.stringify(e)}\n`);
    };
    let parsed: Parsed;
    if (values.type !== undefined) {
      parsed = { kind: 'one', input: fromFlags(values) };
    } else {
      const field = Object.keys(FIELD_OPTIONS).find((k) => k in values);
      if (field !== undefined) {
        throw new UsageError(
          `--${field} needs --type; to publish JSON from stdin, put the fields in the JSON`,
        );
      }
      const stdin = options.stdin ?? process.stdin;
      if (stdin.isTTY) {
        throw new UsageError(
          '--type is required, or pipe JSON events on stdin (see "tidings publish --help")',
        );
      }
      parsed = parseInput(await readAll(stdin));
    }
    const remote = connect(values, env, options.client);
    try {
      if (parsed.kind === 'one') print([await remote.client.publish(parsed.input)]);
      else if (parsed.kind === 'array') print(await remote.client.publishMany(parsed.inputs));
      else await publishLines(remote, parsed.inputs, parsed.lines, print);
    } catch (err) {
      if (err instanceof PublishError) {
        io.err(`tidings publish: ${err.message}\n`);
        return 1;
      }
      if (err instanceof TidingsClientError) {
        io.err(`tidings publish: ${describeError(err, remote.url)}\n`);
        return 1;
      }
      throw err;
    }
    return 0;
  });
}
