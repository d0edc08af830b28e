/**
 * Maintenance commands that work on the store directly, with the server's own configuration
 * (flags or environment): `tidings purge` applies the retention by hand, `tidings export` writes
 * old events as NDJSON for cold storage before they are purged.
 */
import { createWriteStream } from 'node:fs';
import { parseArgs } from 'node:util';
import { encodeCursor } from '../events/cursor.js';
import { readDateOrDateTime } from '../events/datetime.js';
import { loadConfig, redactUrl, SETTINGS, type TidingsConfig } from '../config.js';
import { TidingsError } from '../errors.js';
import { createStore, requireCapability } from '../store/index.js';
import type { EventStore } from '../store/types.js';
import type { CliIO } from './main.js';

/** The settings these commands read (the rest of the configuration does not matter here). */
const STORE_FLAGS = ['store', 'retention'] as const;

const USAGE = {
  purge: `Usage: tidings purge [--store URL] [--retention 30d | --before DATE] [--batch N]

Removes the events received before DATE (default: now minus TIDINGS_RETENTION), oldest first,
in transactions of N events (default 1000). Streams resuming from before the removed events get a
HISTORY_GAP signal. Prints how many were removed and the new retention horizon.
`,
  export: `Usage: tidings export --before DATE [--store URL] [--out FILE]

Writes the events received before DATE, oldest first, as NDJSON (one event per line, as the API
returns them) to FILE or stdout: run it before "tidings purge" to keep them in cold storage.
`,
};

class UsageError extends Error {}

function parseDate(flag: string, raw: string): number {
  const reading = readDateOrDateTime(raw.trim());
  if (!reading.ok) {
    throw new UsageError(
      `--${flag} "${raw}" is not a date (${reading.problem}): use ISO 8601, e.g. ` +
        '2026-01-31T00:00:00Z or 2026-01-31',
    );
  }
  return reading.ms;
}

/** Parses the flags of `command`; the config comes from the environment plus the store flags. */
function parse(command: 'purge' | 'export', args: string[], env: NodeJS.ProcessEnv) {
  const own: Record<string, { type: 'string' }> =
    command === 'purge'
      ? { before: { type: 'string' }, batch: { type: 'string' } }
      : { before: { type: 'string' }, out: { type: 'string' } };
  const { values: parsed } = parseArgs({
    args,
    options: {
      ...Object.fromEntries(STORE_FLAGS.map((f) => [f, { type: 'string' as const }])),
      ...own,
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  const values = parsed as Record<string, string | boolean | undefined>;
  const flags: Record<string, string> = {};
  for (const f of STORE_FLAGS) {
    const value = values[f];
    if (typeof value === 'string') flags[f] = value;
  }
  // Only the store matters: host and auth checks of `serve` do not apply here.
  const config: TidingsConfig = loadConfig({ ...env, HOST: '127.0.0.1' }, flags);
  return { values, config };
}

async function withStore<T>(config: TidingsConfig, work: (store: EventStore) => Promise<T>) {
  const store = await createStore(config.store);
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}

/** Runs a command body, turning errors into messages and exit codes. */
async function run(name: string, io: CliIO, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    io.err(`tidings ${name}: ${message}\n`);
    if (
      err instanceof UsageError ||
      (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
    ) {
      return 2;
    }
    return err instanceof TidingsError && err.code === 'BAD_CONFIG' ? 2 : 1;
  }
}

/** `tidings purge`: the retention, by hand. Exit 0 when done, 1 on a store error, 2 on usage. */
export function purge(args: string[], io: CliIO, env: NodeJS.ProcessEnv): Promise<number> {
  return run('purge', io, async () => {
    const { values, config } = parse('purge', args, env);
    if (values.help) {
      io.out(USAGE.purge);
      return 0;
    }
    const before =
      typeof values.before === 'string'
        ? parseDate('before', values.before)
        : Date.now() - config.retentionMs;
    const batch = Number(values.batch ?? 1000);
    if (!Number.isSafeInteger(batch) || batch < 1) {
      throw new UsageError(`--batch "${String(values.batch)}" must be a positive integer`);
    }
    return withStore(config, async (store) => {
      const retention = requireCapability(store, 'retention', 'tidings purge');
      let total = 0;
      for (;;) {
        const { deleted, purgedThrough } = await retention.purge(before, batch);
        total += deleted;
        if (deleted < batch) {
          io.out(
            `purged ${total} events received before ${new Date(before).toISOString()} from ` +
              `${redactUrl(config.store)}; retention horizon ${encodeCursor(purgedThrough)}\n`,
          );
          return 0;
        }
      }
    });
  });
}

/** `tidings export`: old events as NDJSON. Exit 0 when written, 1 on a store error, 2 on usage. */
export function exportEvents(args: string[], io: CliIO, env: NodeJS.ProcessEnv): Promise<number> {
  return run('export', io, async () => {
    const { values, config } = parse('export', args, env);
    if (values.help) {
      io.out(USAGE.export);
      return 0;
    }
    if (typeof values.before !== 'string') throw new UsageError('--before DATE is required');
    const before = parseDate('before', values.before);
    const file = typeof values.out === 'string' ? createWriteStream(values.out) : null;
    const write = (line: string) =>
      file
        ? new Promise<void>((resolve) =>
            file.write(line) ? resolve() : file.once('drain', resolve),
          )
        : Promise.resolve(io.out(line));
    try {
      return await withStore(config, async (store) => {
        let after = 0;
        let count = 0;
        for (;;) {
          const { events } = await store.readAfter(after, [], 1000);
          for (const e of events) {
            // Oldest first: the first event received at or after the date ends the export, as
            // it ends a purge.
            if (e.receivedAt >= before) {
              io.err(`exported ${count} events\n`);
              return 0;
            }
            const { fingerprint: _f, seq: _s, ...event } = e;
            const line = {
              ...event,
              timestamp: new Date(e.timestamp).toISOString(),
              receivedAt: new Date(e.receivedAt).toISOString(),
            };
            await write(`${JSON.stringify(line)}\n`);
            count++;
          }
          if (events.length < 1000) {
            io.err(`exported ${count} events\n`);
            return 0;
          }
          after = (events.at(-1) as { seq: number }).seq;
        }
      });
    } finally {
      if (file) await new Promise<void>((resolve) => file.end(resolve));
    }
  });
}

/** The effective configuration with secrets redacted, as `serve --print-config` shows it. */
export function printableConfig(config: TidingsConfig): Record<string, unknown> {
  const shown: Record<string, unknown> = {};
  for (const setting of SETTINGS) {
    const value = config[setting.key];
    shown[setting.env] =
      setting.secret && value !== null
        ? '<redacted>'
        : typeof value === 'string'
          ? redactUrl(value)
          : value;
  }
  return shown;
}
