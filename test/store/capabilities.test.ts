/**
 * A store's optional capabilities, seen from a server: a setting that needs one the store lacks
 * stops the start with a message saying what to change; a server that needs none starts, and
 * the capabilities it has are measured like the rest of the store.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp, type TidingsApp } from '../../src/app.js';
import { ConfigError } from '../../src/errors.js';
import { requireCapability } from '../../src/store/index.js';
import { createSqliteStore } from '../../src/store/sqlite.js';
import type { EventStore } from '../../src/store/types.js';
import { JWT_CONFIG } from '../auth/tokens.js';
import { tserver } from '../tserver.js';

const logger = pino({ level: 'silent' });
const opened: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const closable of opened.splice(0).reverse()) await closable.close();
});

/** A real SQLite store with the named capabilities taken away. */
function storeWithout(...missing: ('retention' | 'revocations')[]): EventStore {
  const store = createSqliteStore({ path: ':memory:' });
  opened.push(store);
  return { ...store, ...Object.fromEntries(missing.map((c) => [c, undefined])) };
}

async function start(config: Parameters<typeof buildApp>[0], store: EventStore) {
  const app: TidingsApp = await buildApp(config, { store, logger });
  opened.push(app);
  return app;
}

describe('store capabilities at start', () => {
  it('should refuse to start with a retention on a store without the retention capability', async () => {
    const err = await start({}, storeWithout('retention')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(
      /^\[store:sqlite\] TIDINGS_RETENTION needs a store with the retention capability.*retentionMs: Infinity/,
    );
  });

  it('should start on a store without retention when every event is kept', async () => {
    const app = await start({ retentionMs: Infinity }, storeWithout('retention'));
    const [event] = await app.publish([{ type: 'kept' }]);
    expect(await app.store.lastSeq()).toBe(event?.seq);
  });

  it('should refuse to start with TIDINGS_AUTH=jwt on a store without revocations', async () => {
    const err = await start(JWT_CONFIG, storeWithout('revocations')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(
      /TIDINGS_AUTH=jwt needs a store with the revocations capability.*without TIDINGS_AUTH=jwt/,
    );
  });

  it('should start without auth on a store without revocations, and refuse revokeToken clearly', async () => {
    const server = await tserver({}, { store: storeWithout('revocations') });
    opened.push({ close: () => server.stop() });
    const { errors } = await server.gql('mutation { revokeToken(jti: "x") }');
    expect(errors?.[0]?.message).toMatch(
      /revokeToken needs a store with the revocations capability/,
    );
    expect(errors?.[0]?.extensions?.code).toBe('BAD_CONFIG');
  });

  it('should time the calls of a capability like every store call', async () => {
    const app = await start({}, createSqliteStore({ path: ':memory:' }));
    await requireCapability(app.store, 'retention', 'the test').purge(Date.now(), 10);
    await requireCapability(app.store, 'revocations', 'the test').lookup('jti', 'sub');
    const text = await app.metrics.render();
    expect(text).toMatch(/tidings_store_query_duration_seconds_count\{op="purge"\} 1/);
    expect(text).toMatch(/tidings_store_query_duration_seconds_count\{op="lookup"\} 1/);
  });
});
