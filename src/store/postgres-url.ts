/**
 * PostgreSQL store URLs: what Tidings reads out of one (`?schema=`, `?pool=`) and what it leaves
 * to node-postgres. Apart from the store, so that checking a configuration loads neither the
 * store nor `pg`.
 */
import { ConfigError } from '../errors.js';
import { SCHEMA_NAME } from './postgres-schema.js';

const DEFAULT_POOL = 10;
/** How long a connection may take to open when the store's options do not say, ms. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const MAX_POOL = 1000;

/** Where and as whom the store connects, for messages (never the password). */
export interface Target {
  /** `host:port`, or the socket directory. */
  server: string;
  database: string;
  user: string;
  /** How long a connection may take to open (or to free up in the pool), ms. */
  connectTimeoutMs: number;
}

/** What {@link parseUrl} takes out of a store URL. */
export interface Settings {
  /** The URL without the parameters Tidings reads. */
  connectionString: string;
  schema: string;
  poolSize: number;
  target: Target;
}

/**
 * Reads a store URL: the Tidings parameters out, the rest for node-postgres.
 * @throws ConfigError naming what is wrong.
 */
export function parseUrl(url: string): Settings {
  let parsed: URL;
  try {
    parsed = new URL(url.trim());
  } catch (err) {
    throw new ConfigError(
      'TIDINGS_STORE: not a valid PostgreSQL URL: expected ' +
        'postgres://user:password@host:5432/database[?schema=name&pool=10]',
      { cause: err },
    );
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new ConfigError(
      `TIDINGS_STORE: "${parsed.protocol}" is not a PostgreSQL URL: use postgres://…`,
    );
  }
  const params = parsed.searchParams;
  const schema = params.get('schema') ?? 'public';
  const pool = params.get('pool');
  params.delete('schema');
  params.delete('pool');
  let poolSize = DEFAULT_POOL;
  if (pool !== null) {
    poolSize = Number(pool);
    if (!/^\d+$/.test(pool) || poolSize < 1 || poolSize > MAX_POOL) {
      throw new ConfigError(
        `TIDINGS_STORE: ?pool=${pool} is invalid: expected an integer from 1 to ${MAX_POOL}`,
      );
    }
  }
  checkSchema(schema);
  const user = decodeURIComponent(parsed.username) || process.env.PGUSER || 'postgres';
  const host = parsed.hostname || params.get('host') || process.env.PGHOST || 'localhost';
  const port = parsed.port || params.get('port') || process.env.PGPORT || '5432';
  return {
    connectionString: parsed.toString(),
    schema,
    poolSize,
    target: {
      server: host.startsWith('/') ? host : `${host}:${port}`,
      database: decodeURIComponent(parsed.pathname.slice(1)) || user,
      user,
      connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS,
    },
  };
}

/**
 * Checks a PostgreSQL store URL without connecting (its form, `?schema=`, `?pool=`), so a bad one
 * stops start-up as a configuration error.
 * @throws ConfigError naming what is wrong.
 */
export function checkPostgresUrl(url: string): void {
  parseUrl(url);
}

/**
 * Checks a schema name.
 * @throws ConfigError when it is not a plain name PostgreSQL takes unquoted.
 */
export function checkSchema(schema: string): void {
  if (!SCHEMA_NAME.test(schema)) {
    throw new ConfigError(
      `TIDINGS_STORE: ?schema=${schema} is invalid: expected a name of letters, digits and _ ` +
        '(at most 63, not starting with a digit)',
    );
  }
}
