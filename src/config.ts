/**
 * Configuration: the settings of DESIGN.md, read from environment variables or `tidings serve`
 * flags. {@link loadConfig} is the only place that reads them; `buildApp` takes the result.
 */
import { ConfigError } from './errors.js';
import { DEFAULT_MAX_FILTER_ITEMS, MAX_FILTER_ITEMS_LIMIT } from './events/filter.js';
import { checkPostgresUrl } from './store/postgres-url.js';

/** Log levels accepted by `LOG_LEVEL`. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** The effective configuration of one Tidings instance. */
export interface TidingsConfig {
  /** @default 4000 */
  port: number;
  /** @default '127.0.0.1' */
  host: string;
  /** Store URL. @default 'sqlite:./data/tidings.db' */
  store: string;
  /** Bus URL. @default 'memory' */
  bus: string;
  /**
   * Deadline of each call to the store, ms: past it a publish answers `STORE_UNAVAILABLE`.
   * @default 5000
   */
  storeTimeoutMs: number;
  /**
   * Deadline of each call to the bus, ms: a bus connection silent this long is reconnected.
   * @default 5000
   */
  busTimeoutMs: number;
  /** @default 'none' on loopback */
  auth: 'none' | 'jwt';
  /** Interval of the SSE keepalive comment, ms. @default 15000 */
  keepaliveMs: number;
  /** The `retry:` hint sent to SSE clients, ms. @default 2000 */
  retryMs: number;
  /**
   * How long events are kept, ms; `Infinity` keeps every event (for a store without the retention
   * capability). @default 30 days
   */
  retentionMs: number;
  /** @default 'info' */
  logLevel: (typeof LOG_LEVELS)[number];
  /** Largest HTTP request body, bytes; larger ones get 413. @default 1 MiB */
  maxRequestBytes: number;
  /** Largest event `body`, bytes of JSON. @default 256 KiB */
  maxEventBodyBytes: number;
  /** Largest `publishEvents` batch. @default 1000 */
  maxBatch: number;
  /** Bytes a stream may fall behind before it ends as a slow consumer. @default 1 MiB */
  maxQueueBytes: number;
  /** Events a stream may fall behind before it ends as a slow consumer. @default 10000 */
  maxQueueEvents: number;
  /** HS256 secret for `TIDINGS_AUTH=jwt` (at least 32 bytes). @default null */
  jwtSecret: string | null;
  /** A PEM public key (or the path of a file holding one) for `TIDINGS_AUTH=jwt`. @default null */
  jwtPublicKey: string | null;
  /** A JWKS URL for `TIDINGS_AUTH=jwt`; keys are cached and refetched for an unknown `kid`. */
  jwksUrl: string | null;
  /** Required `iss` claim. @default null (not checked) */
  jwtIssuer: string | null;
  /** Required `aud` claim. @default null (not checked) */
  jwtAudience: string | null;
  /** Clock skew tolerated on `exp`/`nbf`, and on an `iat` in the future, ms. @default 30000 */
  jwtClockSkewMs: number;
  /** Origins allowed by CORS: `*` (any, without credentials) or a list (with credentials). */
  corsOrigins: '*' | readonly string[];
  /**
   * Names a `Host` header may give besides the loopback names and `HOST` (`*`: any), for a
   * reverse proxy that passes its own.
   * @default []
   */
  allowedHosts: readonly string[];
  /** Shortest time between two heap snapshots, ms. @default 60000 */
  heapSnapshotIntervalMs: number;
  /** Heap snapshots kept in `TIDINGS_HEAP_DIR`; older ones are removed. @default 3 */
  heapSnapshotsKept: number;
  /** Deepest selection a GraphQL document may have. @default 12 */
  maxDepth: number;
  /** Most aliases in one GraphQL document. @default 30 */
  maxAliases: number;
  /** Largest `first`/`last` of the `events` query. @default 500 */
  maxPageSize: number;
  /** Most entries of each list of a filter, and of a stream's `inboxes`. @default 100 */
  maxFilterItems: number;
  /** Most inboxes one `eventStream` may name. @default 50 */
  maxStreamInboxes: number;
  /** Most streams open at once per client (its client id, or its subject). @default 100 */
  maxStreamsPerClient: number;
  /** Events per second one caller may publish (a burst of twice that is allowed). @default 2000 */
  publishRate: number;
  /** Single-connection reservations waiting for their stream at once. @default 1000 */
  maxReservations: number;
  /**
   * Single-connection reservations waiting for their stream at once per caller (its token
   * subject, else its address). @default 10
   */
  maxReservationsPerCaller: number;
  /**
   * How long a connection may take to send a request's headers (from connecting, or from the
   * start of the request on a kept-alive one) before it is closed, ms. @default 15000
   */
  headerTimeoutMs: number;
}

/** The defaults: an embedded, loopback-only server that needs no other service. */
export const DEFAULT_CONFIG: TidingsConfig = Object.freeze({
  port: 4000,
  host: '127.0.0.1',
  store: 'sqlite:./data/tidings.db',
  bus: 'memory',
  storeTimeoutMs: 5_000,
  busTimeoutMs: 5_000,
  auth: 'none',
  keepaliveMs: 15_000,
  retryMs: 2_000,
  retentionMs: 30 * 86_400_000,
  logLevel: 'info',
  maxRequestBytes: 1024 * 1024,
  maxEventBodyBytes: 256 * 1024,
  maxBatch: 1000,
  maxQueueBytes: 1024 * 1024,
  maxQueueEvents: 10_000,
  jwtSecret: null,
  jwtPublicKey: null,
  jwksUrl: null,
  jwtIssuer: null,
  jwtAudience: null,
  jwtClockSkewMs: 30_000,
  corsOrigins: '*',
  allowedHosts: [],
  heapSnapshotIntervalMs: 60_000,
  heapSnapshotsKept: 3,
  maxDepth: 12,
  maxAliases: 30,
  maxPageSize: 500,
  maxFilterItems: DEFAULT_MAX_FILTER_ITEMS,
  maxStreamInboxes: 50,
  maxStreamsPerClient: 100,
  publishRate: 2_000,
  maxReservations: 1000,
  maxReservationsPerCaller: 10,
  headerTimeoutMs: 15_000,
});

/** One setting: its environment variable, its flag and how to parse it. */
interface Setting {
  key: keyof TidingsConfig;
  env: string;
  flag: string;
  help: string;
  /** Whether the value is redacted wherever the configuration is shown. */
  secret?: boolean;
  parse: (raw: string) => TidingsConfig[keyof TidingsConfig];
}

const DURATION = /^(\d+)(ms|s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

function fail(what: string, raw: string, expected: string): never {
  throw new ConfigError(`${what}=${JSON.stringify(raw)} is invalid: expected ${expected}`);
}

const int =
  (what: string, min: number, max: number) =>
  (raw: string): number => {
    const n = Number(raw);
    if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      fail(what, raw, `an integer from ${min} to ${max}`);
    }
    return n;
  };

/** Parses a deadline: a duration from 100 ms to 10 minutes. */
const deadline =
  (what: string) =>
  (raw: string): number => {
    const ms = parseDuration(what, raw);
    if (ms < 100 || ms > 600_000) fail(what, raw, 'a duration from 100ms to 10m, such as 5s');
    return ms;
  };

/** Parses `30d`, `12h`, `15m`, `10s`, `500ms`. */
export function parseDuration(what: string, raw: string): number {
  const m = DURATION.exec(raw.trim());
  if (!m || Number(m[1]) <= 0) fail(what, raw, 'a duration such as 30d, 12h, 15m or 90s');
  return Number(m[1]) * (UNIT_MS[m[2] as string] as number);
}

function storeUrl(raw: string): string {
  if (/^sqlite:.+/.test(raw)) return raw;
  if (/^postgres(ql)?:\/\//.test(raw)) {
    checkPostgresUrl(raw);
    return raw;
  }
  return fail('TIDINGS_STORE', raw, 'sqlite:<path>, sqlite::memory: or postgres://…');
}

function busUrl(raw: string): string {
  if (raw === 'memory' || /^(redis|rediss|nats):\/\//.test(raw)) return raw;
  return fail('TIDINGS_BUS', raw, 'memory, redis://… or nats://…');
}

/** Every setting, in the order `--help` lists them. */
export const SETTINGS: readonly Setting[] = [
  {
    key: 'port',
    env: 'PORT',
    flag: 'port',
    help: 'HTTP port (0 picks a free one)',
    parse: int('PORT', 0, 65535),
  },
  {
    key: 'host',
    env: 'HOST',
    flag: 'host',
    help: 'interface to listen on',
    parse: (raw) => raw.trim() || fail('HOST', raw, 'a host name or address'),
  },
  { key: 'store', env: 'TIDINGS_STORE', flag: 'store', help: 'event store URL', parse: storeUrl },
  { key: 'bus', env: 'TIDINGS_BUS', flag: 'bus', help: 'event bus URL', parse: busUrl },
  {
    key: 'storeTimeoutMs',
    env: 'TIDINGS_STORE_TIMEOUT',
    flag: 'store-timeout',
    help: 'deadline of each store call (5s); past it a publish answers STORE_UNAVAILABLE',
    parse: deadline('TIDINGS_STORE_TIMEOUT'),
  },
  {
    key: 'busTimeoutMs',
    env: 'TIDINGS_BUS_TIMEOUT',
    flag: 'bus-timeout',
    help: 'deadline of each bus call (5s); a bus silent that long is reconnected',
    parse: deadline('TIDINGS_BUS_TIMEOUT'),
  },
  {
    key: 'auth',
    env: 'TIDINGS_AUTH',
    flag: 'auth',
    help: 'none | jwt',
    parse: (raw) =>
      raw === 'none' || raw === 'jwt' ? raw : fail('TIDINGS_AUTH', raw, 'none or jwt'),
  },
  {
    key: 'keepaliveMs',
    env: 'TIDINGS_KEEPALIVE_MS',
    flag: 'keepalive-ms',
    help: 'SSE keepalive interval, ms',
    parse: int('TIDINGS_KEEPALIVE_MS', 100, 3_600_000),
  },
  {
    key: 'retryMs',
    env: 'TIDINGS_RETRY_MS',
    flag: 'retry-ms',
    help: 'SSE retry: hint, ms',
    parse: int('TIDINGS_RETRY_MS', 0, 3_600_000),
  },
  {
    key: 'retentionMs',
    env: 'TIDINGS_RETENTION',
    flag: 'retention',
    help: 'how long events are kept (30d, 12h, …)',
    parse: (raw) => parseDuration('TIDINGS_RETENTION', raw),
  },
  {
    key: 'logLevel',
    env: 'LOG_LEVEL',
    flag: 'log-level',
    help: LOG_LEVELS.join(' | '),
    parse: (raw) =>
      (LOG_LEVELS as readonly string[]).includes(raw)
        ? (raw as TidingsConfig['logLevel'])
        : fail('LOG_LEVEL', raw, LOG_LEVELS.join(', ')),
  },
  {
    key: 'maxRequestBytes',
    env: 'TIDINGS_MAX_REQUEST_BYTES',
    flag: 'max-request-bytes',
    help: 'largest HTTP request body, bytes',
    parse: int('TIDINGS_MAX_REQUEST_BYTES', 1024, 1024 ** 3),
  },
  {
    key: 'maxEventBodyBytes',
    env: 'TIDINGS_MAX_EVENT_BODY_BYTES',
    flag: 'max-event-body-bytes',
    help: 'largest event body, bytes of JSON',
    parse: int('TIDINGS_MAX_EVENT_BODY_BYTES', 16, 1024 ** 3),
  },
  {
    key: 'maxBatch',
    env: 'TIDINGS_MAX_BATCH',
    flag: 'max-batch',
    help: 'largest publishEvents batch',
    parse: int('TIDINGS_MAX_BATCH', 1, 100_000),
  },
  {
    key: 'maxQueueBytes',
    env: 'TIDINGS_MAX_QUEUE_BYTES',
    flag: 'max-queue-bytes',
    help: 'bytes a stream may fall behind before it ends as a slow consumer',
    parse: int('TIDINGS_MAX_QUEUE_BYTES', 1024, 1024 ** 3),
  },
  {
    key: 'maxQueueEvents',
    env: 'TIDINGS_MAX_QUEUE',
    flag: 'max-queue',
    help: 'events a stream may fall behind before it ends as a slow consumer',
    parse: int('TIDINGS_MAX_QUEUE', 1, 10_000_000),
  },
  {
    key: 'jwtSecret',
    env: 'TIDINGS_JWT_SECRET',
    flag: 'jwt-secret',
    help: 'HS256 secret (32 bytes or more) for TIDINGS_AUTH=jwt',
    secret: true,
    parse: (raw) =>
      Buffer.byteLength(raw) >= 32
        ? raw
        : fail('TIDINGS_JWT_SECRET', '<redacted>', 'at least 32 bytes (openssl rand -base64 48)'),
  },
  {
    key: 'jwtPublicKey',
    env: 'TIDINGS_JWT_PUBLIC_KEY',
    flag: 'jwt-public-key',
    help: 'PEM public key (or a file holding one) for TIDINGS_AUTH=jwt',
    parse: (raw) => raw.trim() || fail('TIDINGS_JWT_PUBLIC_KEY', raw, 'a PEM key or a file path'),
  },
  {
    key: 'jwksUrl',
    env: 'TIDINGS_JWKS_URL',
    flag: 'jwks-url',
    help: 'JWKS URL for TIDINGS_AUTH=jwt',
    parse: (raw) =>
      /^https?:\/\/\S+$/.test(raw.trim())
        ? raw.trim()
        : fail('TIDINGS_JWKS_URL', raw, 'an http(s) URL'),
  },
  {
    key: 'jwtIssuer',
    env: 'TIDINGS_JWT_ISSUER',
    flag: 'jwt-issuer',
    help: 'required iss claim',
    parse: (raw) => raw.trim() || fail('TIDINGS_JWT_ISSUER', raw, 'an issuer'),
  },
  {
    key: 'jwtAudience',
    env: 'TIDINGS_JWT_AUDIENCE',
    flag: 'jwt-audience',
    help: 'required aud claim',
    parse: (raw) => raw.trim() || fail('TIDINGS_JWT_AUDIENCE', raw, 'an audience'),
  },
  {
    key: 'jwtClockSkewMs',
    env: 'TIDINGS_JWT_CLOCK_SKEW',
    flag: 'jwt-clock-skew',
    help: 'clock skew tolerated on exp, nbf and a future iat (30s)',
    parse: (raw) => parseDuration('TIDINGS_JWT_CLOCK_SKEW', raw),
  },
  {
    key: 'corsOrigins',
    env: 'TIDINGS_CORS_ORIGINS',
    flag: 'cors-origins',
    help: '* or a comma-separated list of origins (a list allows credentials)',
    parse: corsOrigins,
  },
  {
    key: 'allowedHosts',
    env: 'TIDINGS_ALLOWED_HOSTS',
    flag: 'allowed-hosts',
    help: 'comma-separated Host names accepted besides loopback and HOST (* for any)',
    parse: allowedHosts,
  },
  {
    key: 'heapSnapshotIntervalMs',
    env: 'TIDINGS_HEAP_SNAPSHOT_INTERVAL',
    flag: 'heap-snapshot-interval',
    help: 'shortest time between two heap snapshots (1m)',
    parse: (raw) => parseDuration('TIDINGS_HEAP_SNAPSHOT_INTERVAL', raw),
  },
  {
    key: 'heapSnapshotsKept',
    env: 'TIDINGS_HEAP_SNAPSHOTS_KEPT',
    flag: 'heap-snapshots-kept',
    help: 'heap snapshots kept in TIDINGS_HEAP_DIR (older ones are removed)',
    parse: int('TIDINGS_HEAP_SNAPSHOTS_KEPT', 1, 1000),
  },
  {
    key: 'maxDepth',
    env: 'TIDINGS_MAX_DEPTH',
    flag: 'max-depth',
    help: 'deepest selection of a GraphQL document',
    parse: int('TIDINGS_MAX_DEPTH', 2, 100),
  },
  {
    key: 'maxAliases',
    env: 'TIDINGS_MAX_ALIASES',
    flag: 'max-aliases',
    help: 'most aliases in a GraphQL document',
    parse: int('TIDINGS_MAX_ALIASES', 0, 1000),
  },
  {
    key: 'maxPageSize',
    env: 'TIDINGS_MAX_PAGE',
    flag: 'max-page',
    help: 'largest first/last of the events query',
    parse: int('TIDINGS_MAX_PAGE', 1, 100_000),
  },
  {
    key: 'maxFilterItems',
    env: 'TIDINGS_MAX_FILTER_ITEMS',
    flag: 'max-filter-items',
    help: 'most entries of each filter list (inboxes, types, severities, …)',
    parse: int('TIDINGS_MAX_FILTER_ITEMS', 1, MAX_FILTER_ITEMS_LIMIT),
  },
  {
    key: 'maxStreamInboxes',
    env: 'TIDINGS_MAX_STREAM_INBOXES',
    flag: 'max-stream-inboxes',
    help: 'most inboxes one eventStream may name',
    parse: int('TIDINGS_MAX_STREAM_INBOXES', 1, 10_000),
  },
  {
    key: 'maxStreamsPerClient',
    env: 'TIDINGS_MAX_STREAMS_PER_CLIENT',
    flag: 'max-streams-per-client',
    help: 'most open streams per client id (or subject)',
    parse: int('TIDINGS_MAX_STREAMS_PER_CLIENT', 1, 1_000_000),
  },
  {
    key: 'publishRate',
    env: 'TIDINGS_PUBLISH_RATE',
    flag: 'publish-rate',
    help: 'events per second one caller may publish (bursts of twice that)',
    parse: int('TIDINGS_PUBLISH_RATE', 1, 100_000_000),
  },
  {
    key: 'maxReservations',
    env: 'TIDINGS_MAX_RESERVATIONS',
    flag: 'max-reservations',
    help: 'most single-connection reservations waiting for their stream',
    parse: int('TIDINGS_MAX_RESERVATIONS', 1, 1_000_000),
  },
  {
    key: 'maxReservationsPerCaller',
    env: 'TIDINGS_MAX_RESERVATIONS_PER_CALLER',
    flag: 'max-reservations-per-caller',
    help: 'most reservations waiting for their stream per subject (or address)',
    parse: int('TIDINGS_MAX_RESERVATIONS_PER_CALLER', 1, 1_000_000),
  },
  {
    key: 'headerTimeoutMs',
    env: 'TIDINGS_HEADER_TIMEOUT',
    flag: 'header-timeout',
    help: 'how long a connection may take to send request headers (15s, 500ms)',
    parse: headerTimeout,
  },
];

/** Parses `TIDINGS_HEADER_TIMEOUT`: from 100 ms (tests) to 10 minutes. */
function headerTimeout(raw: string): number {
  const ms = parseDuration('TIDINGS_HEADER_TIMEOUT', raw);
  return ms >= 100 && ms <= 600_000 ? ms : fail('TIDINGS_HEADER_TIMEOUT', raw, 'from 100ms to 10m');
}

function corsOrigins(raw: string): '*' | string[] {
  if (raw.trim() === '*') return '*';
  const origins = raw
    .split(',')
    .map((o) => o.trim())
    .filter((o) => o !== '');
  if (origins.length === 0 || origins.some((o) => !/^https?:\/\/[^/\s]+$/.test(o))) {
    fail(
      'TIDINGS_CORS_ORIGINS',
      raw,
      '* or origins such as https://app.example.com,http://localhost:5173',
    );
  }
  return origins;
}

function allowedHosts(raw: string): string[] {
  const hosts = raw
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter((h) => h !== '');
  if (hosts.length === 0 || hosts.some((h) => !/^(\*|\[[0-9a-f:.]+\]|[a-z0-9_.-]+)$/.test(h))) {
    fail(
      'TIDINGS_ALLOWED_HOSTS',
      raw,
      '* or host names without scheme or port, such as events.example.com,10.0.0.5,[fd00::5]',
    );
  }
  return hosts;
}

/** `url` with its password (if any) replaced by `***`, for logs and shown configuration. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (!parsed.password) return url;
    parsed.password = '***';
    return parsed.toString();
  } catch {
    return url;
  }
}

/** Whether `host` only accepts connections from this machine. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/**
 * Builds the configuration from environment variables, overridden by flags (`--port 5000` given
 * as `{ port: '5000' }`). Unknown `TIDINGS_*` variables are ignored; unknown flags are rejected.
 * @throws ConfigError with one line naming the bad setting.
 */
export function loadConfig(
  env: Readonly<Record<string, string | undefined>>,
  flags: Readonly<Record<string, string | undefined>> = {},
): TidingsConfig {
  const known = new Set(SETTINGS.map((s) => s.flag));
  for (const flag of Object.keys(flags)) {
    if (!known.has(flag))
      throw new ConfigError(`unknown option --${flag}: see tidings serve --help`);
  }
  const config: Record<string, unknown> = { ...DEFAULT_CONFIG };
  for (const setting of SETTINGS) {
    const fromFlag = flags[setting.flag];
    const raw = fromFlag ?? env[setting.env];
    if (raw === undefined || (fromFlag === undefined && raw === '')) continue;
    config[setting.key] = fromFlag === undefined ? setting.parse(raw) : parseFlag(setting, raw);
  }
  const result = config as unknown as TidingsConfig;
  const authExplicit = flags.auth !== undefined || (env.TIDINGS_AUTH ?? '') !== '';
  if (!isLoopback(result.host) && result.auth === 'none' && !authExplicit) {
    throw new ConfigError(
      `HOST=${result.host} is reachable from other machines and no auth is configured: ` +
        'set TIDINGS_AUTH=jwt (with a key), or TIDINGS_AUTH=none to accept unauthenticated callers',
    );
  }
  if (result.auth === 'jwt') {
    const keys = [result.jwtSecret, result.jwtPublicKey, result.jwksUrl].filter((k) => k !== null);
    if (keys.length !== 1) {
      throw new ConfigError(
        `TIDINGS_AUTH=jwt needs exactly one key source, got ${keys.length}: set ` +
          'TIDINGS_JWT_SECRET (HS256), TIDINGS_JWT_PUBLIC_KEY (PEM) or TIDINGS_JWKS_URL',
      );
    }
  }
  if (result.bus.startsWith('nats:')) {
    throw new ConfigError(
      `TIDINGS_BUS=${result.bus}: the NATS bus is not available in this version; use redis://…`,
    );
  }
  return result;
}

/** Re-labels a parse error with the flag's name rather than the variable's. */
function parseFlag(setting: Setting, raw: string): TidingsConfig[keyof TidingsConfig] {
  try {
    return setting.parse(raw);
  } catch (err) {
    if (err instanceof ConfigError) {
      throw new ConfigError(err.message.replace(setting.env, `--${setting.flag}`), { cause: err });
    }
    throw err;
  }
}
