import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, isLoopback, loadConfig, parseDuration, redactUrl } from '../src/config.js';
import { ConfigError } from '../src/errors.js';

describe('loadConfig', () => {
  it('should give the embedded defaults with an empty environment', () => {
    expect(loadConfig({})).toEqual(DEFAULT_CONFIG);
    expect(DEFAULT_CONFIG).toMatchObject({
      port: 4000,
      host: '127.0.0.1',
      store: 'sqlite:./data/tidings.db',
      bus: 'memory',
      auth: 'none',
      keepaliveMs: 15_000,
      retentionMs: 30 * 86_400_000,
    });
  });

  it('should read every variable of DESIGN.md, and let flags override them', () => {
    const env = {
      PORT: '5000',
      HOST: 'localhost',
      TIDINGS_STORE: 'sqlite::memory:',
      TIDINGS_BUS: 'memory',
      TIDINGS_AUTH: 'none',
      TIDINGS_KEEPALIVE_MS: '2500',
      TIDINGS_RETENTION: '12h',
      LOG_LEVEL: 'debug',
      TIDINGS_MAX_QUEUE: '500',
      TIDINGS_MAX_QUEUE_BYTES: '65536',
    };
    expect(loadConfig(env)).toMatchObject({
      port: 5000,
      host: 'localhost',
      store: 'sqlite::memory:',
      keepaliveMs: 2500,
      retentionMs: 12 * 3_600_000,
      logLevel: 'debug',
      maxQueueEvents: 500,
      maxQueueBytes: 65536,
    });
    expect(loadConfig(env, { port: '0', 'keepalive-ms': '100' })).toMatchObject({
      port: 0,
      keepaliveMs: 100,
    });
  });

  it('should read the auth and limit settings', () => {
    const config = loadConfig({
      TIDINGS_AUTH: 'jwt',
      TIDINGS_JWT_SECRET: 's'.repeat(40),
      TIDINGS_JWT_ISSUER: 'https://issuer.example',
      TIDINGS_JWT_AUDIENCE: 'tidings',
      TIDINGS_JWT_CLOCK_SKEW: '5s',
      TIDINGS_CORS_ORIGINS: 'https://app.example.com, http://localhost:5173',
      TIDINGS_MAX_DEPTH: '6',
      TIDINGS_MAX_ALIASES: '3',
      TIDINGS_MAX_PAGE: '100',
      TIDINGS_MAX_FILTER_ITEMS: '500',
      TIDINGS_MAX_STREAM_INBOXES: '4',
      TIDINGS_MAX_STREAMS_PER_CLIENT: '2',
      TIDINGS_PUBLISH_RATE: '10',
    });
    expect(config).toMatchObject({
      auth: 'jwt',
      jwtSecret: 's'.repeat(40),
      jwtIssuer: 'https://issuer.example',
      jwtAudience: 'tidings',
      jwtClockSkewMs: 5000,
      corsOrigins: ['https://app.example.com', 'http://localhost:5173'],
      maxDepth: 6,
      maxAliases: 3,
      maxPageSize: 100,
      maxFilterItems: 500,
      maxStreamInboxes: 4,
      maxStreamsPerClient: 2,
      publishRate: 10,
    });
    expect(loadConfig({ TIDINGS_CORS_ORIGINS: '*' }).corsOrigins).toBe('*');
  });

  it('should redact the password of a URL', () => {
    expect(redactUrl('postgres://app:s3cret@db:5432/events')).toBe(
      'postgres://app:***@db:5432/events',
    );
    expect(redactUrl('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
    expect(redactUrl('sqlite:./data/tidings.db')).toBe('sqlite:./data/tidings.db');
  });

  it('should ignore empty variables', () => {
    expect(loadConfig({ PORT: '' }).port).toBe(4000);
  });

  it.each([
    [{ PORT: '70000' }, /PORT="70000" is invalid: expected an integer from 0 to 65535/],
    [{ PORT: '12abc' }, /PORT/],
    [{ TIDINGS_AUTH: 'maybe' }, /TIDINGS_AUTH="maybe"/],
    [{ TIDINGS_BUS: 'kafka://x' }, /TIDINGS_BUS="kafka:\/\/x"/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL="loud"/],
    [{ TIDINGS_RETENTION: '0d' }, /TIDINGS_RETENTION/],
    [{ TIDINGS_MAX_QUEUE: '0' }, /TIDINGS_MAX_QUEUE="0" is invalid/],
    [{ TIDINGS_STORE: 'postgres://db/events?pool=0' }, /\?pool=0 is invalid/],
    [{ TIDINGS_STORE: 'postgres://db/events?schema=9x' }, /\?schema=9x is invalid/],
    [{ TIDINGS_BUS: 'nats://localhost:4222' }, /the NATS bus is not available in this version/],
    [{ TIDINGS_AUTH: 'jwt' }, /TIDINGS_AUTH=jwt needs exactly one key source, got 0/],
    [
      { TIDINGS_AUTH: 'jwt', TIDINGS_JWT_SECRET: 'x'.repeat(32), TIDINGS_JWKS_URL: 'https://k/j' },
      /exactly one key source, got 2/,
    ],
    [
      { TIDINGS_JWT_SECRET: 'short' },
      /TIDINGS_JWT_SECRET="<redacted>" is invalid: expected at least 32 bytes/,
    ],
    [{ TIDINGS_JWKS_URL: 'ftp://x' }, /TIDINGS_JWKS_URL/],
    [{ TIDINGS_CORS_ORIGINS: 'example.com' }, /TIDINGS_CORS_ORIGINS="example.com" is invalid/],
    [{ TIDINGS_MAX_DEPTH: '1' }, /TIDINGS_MAX_DEPTH/],
    [
      { TIDINGS_MAX_FILTER_ITEMS: '0' },
      /TIDINGS_MAX_FILTER_ITEMS="0" is invalid: expected an integer from 1 to 500/,
    ],
    [{ TIDINGS_MAX_FILTER_ITEMS: '5000' }, /TIDINGS_MAX_FILTER_ITEMS="5000" is invalid/],
    [{ HOST: '0.0.0.0' }, /set TIDINGS_AUTH=jwt .* or TIDINGS_AUTH=none/],
  ])('should refuse %j with a ConfigError naming it', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('should read the allowed hosts and the heap snapshot limits, and refuse bad ones', () => {
    expect(
      loadConfig({
        TIDINGS_ALLOWED_HOSTS: 'Events.Example.com, 10.0.0.5,[fd00::5]',
        TIDINGS_HEAP_SNAPSHOT_INTERVAL: '5m',
        TIDINGS_HEAP_SNAPSHOTS_KEPT: '1',
      }),
    ).toMatchObject({
      allowedHosts: ['events.example.com', '10.0.0.5', '[fd00::5]'],
      heapSnapshotIntervalMs: 300_000,
      heapSnapshotsKept: 1,
    });
    expect(loadConfig({ TIDINGS_ALLOWED_HOSTS: '*' }).allowedHosts).toEqual(['*']);
    for (const bad of ['https://events.example.com', 'events.example.com:443', ' , ', 'a b']) {
      expect(() => loadConfig({ TIDINGS_ALLOWED_HOSTS: bad })).toThrow(
        /TIDINGS_ALLOWED_HOSTS=.* is invalid: expected \* or host names without scheme or port/,
      );
    }
    expect(() => loadConfig({ TIDINGS_HEAP_SNAPSHOTS_KEPT: '0' })).toThrow(ConfigError);
    expect(() => loadConfig({ TIDINGS_HEAP_SNAPSHOT_INTERVAL: 'often' })).toThrow(ConfigError);
  });

  it('should accept a non-loopback host when TIDINGS_AUTH=none is explicit', () => {
    expect(loadConfig({ HOST: '0.0.0.0', TIDINGS_AUTH: 'none' }).host).toBe('0.0.0.0');
  });

  it('should read the reservation caps and the header timeout, and refuse bad ones', () => {
    expect(DEFAULT_CONFIG).toMatchObject({
      maxReservations: 1000,
      maxReservationsPerCaller: 10,
      headerTimeoutMs: 15_000,
    });
    const env = {
      TIDINGS_MAX_RESERVATIONS: '50',
      TIDINGS_MAX_RESERVATIONS_PER_CALLER: '5',
      TIDINGS_HEADER_TIMEOUT: '2s',
    };
    expect(loadConfig(env)).toMatchObject({
      maxReservations: 50,
      maxReservationsPerCaller: 5,
      headerTimeoutMs: 2000,
    });
    expect(loadConfig(env, { 'header-timeout': '500ms' }).headerTimeoutMs).toBe(500);
    expect(() => loadConfig({ TIDINGS_MAX_RESERVATIONS: '0' })).toThrow(
      /TIDINGS_MAX_RESERVATIONS="0" is invalid/,
    );
    expect(() => loadConfig({ TIDINGS_MAX_RESERVATIONS_PER_CALLER: 'x' })).toThrow(
      /TIDINGS_MAX_RESERVATIONS_PER_CALLER="x" is invalid/,
    );
    expect(() => loadConfig({ TIDINGS_HEADER_TIMEOUT: '10ms' })).toThrow(
      /TIDINGS_HEADER_TIMEOUT="10ms" is invalid: expected from 100ms to 10m/,
    );
    expect(() => loadConfig({}, { 'header-timeout': 'soon' })).toThrow(/--header-timeout="soon"/);
  });

  it('should name the flag, not the variable, when a flag is bad', () => {
    expect(() => loadConfig({}, { 'keepalive-ms': 'soon' })).toThrow(/--keepalive-ms="soon"/);
    expect(() => loadConfig({}, { nope: '1' })).toThrow(/unknown option --nope/);
  });
});

describe('store and bus deadlines', () => {
  it('should read TIDINGS_STORE_TIMEOUT and TIDINGS_BUS_TIMEOUT as durations, 5 s by default', () => {
    expect(DEFAULT_CONFIG).toMatchObject({ storeTimeoutMs: 5_000, busTimeoutMs: 5_000 });
    expect(loadConfig({ TIDINGS_STORE_TIMEOUT: '2s', TIDINGS_BUS_TIMEOUT: '750ms' })).toMatchObject(
      { storeTimeoutMs: 2_000, busTimeoutMs: 750 },
    );
    expect(loadConfig({}, { 'store-timeout': '1m', 'bus-timeout': '10s' })).toMatchObject({
      storeTimeoutMs: 60_000,
      busTimeoutMs: 10_000,
    });
  });

  it.each([
    [
      { TIDINGS_STORE_TIMEOUT: '50ms' },
      /TIDINGS_STORE_TIMEOUT="50ms" is invalid: expected a duration from 100ms to 10m/,
    ],
    [
      { TIDINGS_BUS_TIMEOUT: '1h' },
      /TIDINGS_BUS_TIMEOUT="1h" is invalid: expected a duration from 100ms to 10m/,
    ],
    [{ TIDINGS_BUS_TIMEOUT: '5' }, /TIDINGS_BUS_TIMEOUT="5" is invalid: expected a duration/],
  ])('should refuse %j with a ConfigError naming it', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });
});

describe('helpers', () => {
  it('should parse durations', () => {
    expect(parseDuration('X', '500ms')).toBe(500);
    expect(parseDuration('X', '90s')).toBe(90_000);
    expect(parseDuration('X', '15m')).toBe(900_000);
    expect(parseDuration('X', '30d')).toBe(30 * 86_400_000);
    expect(() => parseDuration('X', '3 weeks')).toThrow(/X="3 weeks"/);
  });

  it('should know loopback hosts', () => {
    expect(['127.0.0.1', '127.1.2.3', 'localhost', '::1'].every(isLoopback)).toBe(true);
    expect(['0.0.0.0', '10.0.0.1', 'example.com', '::'].some(isLoopback)).toBe(false);
  });
});
