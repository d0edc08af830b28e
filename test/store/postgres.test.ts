/**
 * The PostgreSQL store against a real server: `TIDINGS_TEST_POSTGRES` (default
 * `postgres://postgres@127.0.0.1:5432/test`). Every store gets a schema of its own, dropped when
 * it closes. Without a reachable server the suite is skipped, unless `CI` is set: then it fails.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, ConflictError, StoreError, ValidationError } from '../../src/errors.js';
import { compileFilter, matchesClauses } from '../../src/events/filter.js';
import { clausesToSql } from '../../src/store/sql-filter.js';
import {
  SEE_EVERYTHING,
  SEVERITIES,
  type EventFilter,
  type NewEvent,
  type StoredEvent,
  type Visibility,
} from '../../src/events/types.js';
import { validateEventInput, type PublishEventInput } from '../../src/events/validate.js';
import { createStore } from '../../src/store/index.js';
import {
  createPostgresStore,
  postgresDialect,
  SCHEMA_VERSION,
  type PostgresStoreOptions,
} from '../../src/store/postgres.js';
import type { EventStore, FullEventStore } from '../../src/store/types.js';
import { random } from '../trandom.js';
import { testEventStore, byIds } from './contract.js';

const PG_URL = process.env.TIDINGS_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
const CI = !!process.env.CI && process.env.CI !== 'false' && process.env.CI !== '0';

/** Why the server cannot be used, or null when it answers. */
async function unreachable(): Promise<string | null> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 5_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return null;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  } finally {
    await client.end().catch(() => {});
  }
}

const why = await unreachable();
const admin = why === null ? new pg.Pool({ connectionString: PG_URL, max: 2 }) : null;
admin?.on('error', () => {});
afterAll(async () => {
  await admin?.end();
});

/** The test server's URL with `params` added. */
function urlWith(params: Record<string, string>): string {
  const url = new URL(PG_URL);
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  return url.toString();
}

const freshSchema = () => `tidings_test_${randomBytes(6).toString('hex')}`;
const dropSchema = async (schema: string) => {
  await admin?.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
};

/** A store on a schema of its own (fresh unless given), dropping the schema when it closes. */
async function openIsolated(
  options: Partial<PostgresStoreOptions> = {},
): Promise<FullEventStore & { schema: string }> {
  const schema = options.schema ?? freshSchema();
  let store: FullEventStore;
  try {
    store = await createPostgresStore({ url: PG_URL, ...options, schema });
  } catch (err) {
    await dropSchema(schema);
    throw err;
  }
  let dropped: Promise<void> | null = null;
  return {
    ...store,
    schema,
    async close() {
      await store.close();
      dropped ??= dropSchema(schema);
      await dropped;
    },
  };
}

const ev = (id: string, extra: Partial<PublishEventInput> = {}): NewEvent =>
  validateEventInput({ id, type: 'test.event', ...extra });

if (why !== null) {
  const reason =
    `PostgreSQL is not reachable at ${PG_URL.replace(/:[^:@/]*@/, ':***@')} (${why}): start it ` +
    '(pg_ctlcluster <version> main start) or point TIDINGS_TEST_POSTGRES at one';
  if (CI) {
    it('should reach the PostgreSQL server the store tests need', () => {
      throw new Error(reason);
    });
  } else {
    console.warn(`[test:postgres] skipped: ${reason}`);
    describe.skip(`PostgreSQL store (${reason})`, () => {
      it('needs a PostgreSQL server', () => {});
    });
  }
} else {
  testEventStore('postgres', () => openIsolated());
  describe('postgres store', postgresSuite);
  describe('filter: in-memory matching and PostgreSQL agree', filterSuite);
}

function postgresSuite(): void {
  it('should let a tailing reader see every event once, in order, while 8 publishers append concurrently', async () => {
    const PUBLISHERS = 8;
    const APPENDS = 150;
    const main = await openIsolated();
    // Each publisher and the reader have their own pool and connection, like separate instances.
    const publishers = await Promise.all(
      Array.from({ length: PUBLISHERS }, () =>
        createPostgresStore({ url: PG_URL, schema: main.schema, poolSize: 1 }),
      ),
    );
    const reader = await createPostgresStore({ url: PG_URL, schema: main.schema, poolSize: 1 });
    try {
      let writing = true;
      let polls = 0;
      let pollsWithEvents = 0;
      let backwards = 0;
      let lastSeen = 0;
      const seen: StoredEvent[] = [];
      const tail = (async () => {
        for (;;) {
          // Read the flag before polling: the poll after the last commit ends the loop.
          const finished = !writing;
          const { events } = await reader.readAfter(lastSeen, [], 500);
          polls++;
          if (events.length > 0 && !finished) pollsWithEvents++;
          for (const e of events) {
            if (e.seq <= lastSeen) backwards++;
            seen.push(e);
            lastSeen = e.seq;
          }
          if (finished && events.length < 500) return;
        }
      })();

      const committed: StoredEvent[] = [];
      const started = Date.now();
      await Promise.all(
        publishers.map(async (store, p) => {
          for (let i = 0; i < APPENDS; i++) {
            // 1 to 4 events, alternately with ids of their own (looked up) and generated ones.
            const batch = Array.from({ length: 1 + ((i * 7 + p) % 4) }, (_, k) =>
              i % 2 === 0 ? ev(`p${p}-${i}-${k}`) : validateEventInput({ type: `p${p}.event` }),
            );
            for (const { event } of await store.append(batch)) committed.push(event);
          }
        }),
      );
      const elapsed = Date.now() - started;
      writing = false;
      await tail;

      const seenIds = seen.map((e) => e.id);
      const unique = new Set(seenIds);
      const skipped = committed.filter((e) => !unique.has(e.id));
      console.info(
        `[test:postgres] late commits: ${committed.length} events from ${PUBLISHERS} publishers ` +
          `(${PUBLISHERS * APPENDS} appends, ${elapsed} ms); the reader polled ${polls} times ` +
          `(${pollsWithEvents} while writing brought events): ${skipped.length} skipped, ` +
          `${seenIds.length - unique.size} duplicates, ${backwards} out of order`,
      );
      expect(skipped).toEqual([]);
      expect(seenIds.length - unique.size).toBe(0);
      expect(backwards).toBe(0);
      expect(seen.length).toBe(committed.length);
      const bySeq = [...committed].sort((a, b) => a.seq - b.seq);
      expect(seen).toEqual(bySeq);
      // The reader really tailed the writers rather than reading everything at the end.
      expect(pollsWithEvents).toBeGreaterThan(10);
      expect(await reader.lastSeq()).toBe(bySeq.at(-1)?.seq);
    } finally {
      await Promise.all([...publishers, reader].map((s) => s.close()));
      await main.close();
    }
  });

  it('should give one event per id when two instances append the same ids at once', async () => {
    const a = await openIsolated();
    const b = await createPostgresStore({ url: PG_URL, schema: a.schema, poolSize: 4 });
    try {
      const ids = Array.from({ length: 20 }, (_, i) => `same-${i}`);
      const [fromA, fromB] = await Promise.all([
        Promise.all(ids.map((id) => a.append([ev(id, { message: 'm' })]))),
        Promise.all(ids.map((id) => b.append([ev(id, { message: 'm' })]))),
      ]);
      for (let i = 0; i < ids.length; i++) {
        const [x, y] = [fromA[i]?.[0], fromB[i]?.[0]];
        expect(x?.event).toEqual(y?.event);
        expect([x?.created, y?.created].filter(Boolean)).toHaveLength(1);
      }
      // With other content, one wins and the other gets a ConflictError.
      const other = await Promise.allSettled(
        ids.flatMap((id) => [
          a.append([ev(`${id}-x`, { message: 'a' })]),
          b.append([ev(`${id}-x`, { message: 'b' })]),
        ]),
      );
      expect(other.filter((r) => r.status === 'fulfilled')).toHaveLength(ids.length);
      const refused = other.filter((r) => r.status === 'rejected');
      expect(refused).toHaveLength(ids.length);
      for (const r of refused) expect(r.reason).toBeInstanceOf(ConflictError);
      expect(await a.lastSeq()).toBeGreaterThan(0);
    } finally {
      await b.close();
      await a.close();
    }
  });

  it('should keep events across close and reopen, migrating once, with the schema from the URL', async () => {
    const schema = freshSchema();
    try {
      const first = await createStore(urlWith({ schema, pool: '2' }));
      expect(first.kind).toBe('postgres');
      const [a] = await first.append([ev('a', { body: { x: [1, 'two', null], y: 1.5 } })]);
      await first.close();
      const migrations = await admin?.query(
        `SELECT version, applied_at FROM "${schema}".schema_migrations ORDER BY version`,
      );
      expect(migrations?.rows.map((r: { version: number }) => r.version)).toEqual(
        Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1),
      );

      const second = await createStore(urlWith({ schema }));
      try {
        expect(await byIds(second, ['a'])).toEqual([a?.event]);
        expect(await second.lastSeq()).toBe(a?.event.seq);
        const [b] = await second.append([ev('b')]);
        expect(b?.event.seq).toBeGreaterThan(a?.event.seq as number);
        expect(await second.append([ev('a', { body: { y: 1.5, x: [1, 'two', null] } })])).toEqual([
          { event: a?.event, created: false },
        ]);
      } finally {
        await second.close();
      }
      const again = await admin?.query(
        `SELECT version, applied_at FROM "${schema}".schema_migrations ORDER BY version`,
      );
      expect(again?.rows).toEqual(migrations?.rows);
    } finally {
      await dropSchema(schema);
    }
  });

  it('should migrate a version 1 schema to ids scoped by inbox, keeping its events', async () => {
    const first = await openIsolated();
    const [a] = await first.append([ev('a', { inbox: 'alice', message: 'm' })]);
    // Back to version 1: the id unique on its own.
    await admin?.query(`
      ALTER TABLE "${first.schema}".events DROP CONSTRAINT events_id_inbox_key;
      ALTER TABLE "${first.schema}".events ADD CONSTRAINT events_id_key UNIQUE (id);
      DELETE FROM "${first.schema}".schema_migrations WHERE version > 1;
    `);
    const second = await createPostgresStore({ url: PG_URL, schema: first.schema });
    try {
      expect(await byIds(second, ['a'])).toEqual([a?.event]);
      const [bobs] = await second.append([ev('a', { inbox: 'bob', message: 'other' })]);
      expect(bobs).toMatchObject({ created: true, event: { inbox: 'bob' } });
      expect(await second.append([ev('a', { inbox: 'alice', message: 'm' })])).toEqual([
        { event: a?.event, created: false },
      ]);
      const versions = await admin?.query(
        `SELECT version FROM "${first.schema}".schema_migrations ORDER BY version`,
      );
      expect(versions?.rows.map((r: { version: number }) => r.version)).toEqual(
        Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1),
      );
    } finally {
      await second.close();
      await first.close();
    }
  });

  it('should migrate a new schema once when several instances open it at the same time', async () => {
    const schema = freshSchema();
    try {
      const stores = await Promise.all(
        Array.from({ length: 6 }, () => createPostgresStore({ url: PG_URL, schema, poolSize: 1 })),
      );
      await stores[0]?.append([ev('a')]);
      for (const store of stores) expect(await store.lastSeq()).toBe(1);
      await Promise.all(stores.map((s) => s.close()));
      const versions = await admin?.query(`SELECT version FROM "${schema}".schema_migrations`);
      expect(versions?.rowCount).toBe(SCHEMA_VERSION);
    } finally {
      await dropSchema(schema);
    }
  });

  it('should refuse a schema migrated by a newer version with a StoreError', async () => {
    const store = await openIsolated();
    try {
      await admin?.query(
        `INSERT INTO "${store.schema}".schema_migrations (version, applied_at) VALUES ($1, 0)`,
        [SCHEMA_VERSION + 1],
      );
      const attempt = createPostgresStore({ url: PG_URL, schema: store.schema });
      await expect(attempt).rejects.toBeInstanceOf(StoreError);
      await expect(attempt).rejects.toThrow(/newer than this Tidings supports/);
    } finally {
      await store.close();
    }
  });

  it('should say what to do when the server cannot be reached, without the password', async () => {
    const attempt = createStore('postgres://tidings:sekret@127.0.0.1:1/test');
    await expect(attempt).rejects.toBeInstanceOf(StoreError);
    await expect(attempt).rejects.toThrow(
      /^\[store:postgres\] cannot reach PostgreSQL at 127\.0\.0\.1:1: is it running\? check TIDINGS_STORE/,
    );
    await expect(attempt).rejects.toMatchObject({ cause: expect.any(Error), expose: false });
    await expect(attempt).rejects.not.toThrow(/sekret/);
  });

  it('should say what to do for an unknown database or a refused login', async () => {
    const base = new URL(PG_URL);
    const noDb = new URL(base);
    noDb.pathname = '/tidings_no_such_database';
    await expect(createStore(noDb.toString())).rejects.toThrow(
      /database "tidings_no_such_database" does not exist on .*: create it \(createdb tidings_no_such_database\)/,
    );
    const noUser = new URL(base);
    noUser.username = 'tidings_no_such_user';
    noUser.password = 'sekret';
    const attempt = createStore(noUser.toString());
    await expect(attempt).rejects.toThrow(
      /refused the login of user "tidings_no_such_user": check the user and password in TIDINGS_STORE/,
    );
    await expect(attempt).rejects.not.toThrow(/sekret/);
  });

  it.each([
    ['pool', '0', /\?pool=0 is invalid: expected an integer from 1 to 1000/],
    ['pool', 'ten', /\?pool=ten is invalid/],
    ['schema', 'bad-name', /\?schema=bad-name is invalid/],
    ['schema', '1abc', /\?schema=1abc is invalid/],
  ])('should refuse the URL parameter %s=%s with a ConfigError', async (name, value, error) => {
    const attempt = createStore(urlWith({ [name]: value }));
    await expect(attempt).rejects.toBeInstanceOf(ConfigError);
    await expect(attempt).rejects.toThrow(error);
  });

  it('should refuse a body PostgreSQL cannot store as JSONB, storing nothing of the batch', async () => {
    const store = await openIsolated();
    try {
      const attempt = store.append([ev('ok'), ev('nul', { body: { s: 'a\u0000b' } })]);
      await expect(attempt).rejects.toBeInstanceOf(ValidationError);
      await expect(attempt).rejects.toThrow(/cannot store as JSONB/);
      expect(await byIds(store, ['ok', 'nul'])).toEqual([null, null]);
      const [next] = await store.append([ev('next', { body: { s: 'fine' } })]);
      expect(next?.created).toBe(true);
    } finally {
      await store.close();
    }
  });

  it('should wrap a failure in a StoreError with its cause', async () => {
    const store = await openIsolated();
    try {
      await admin?.query(`DROP TABLE "${store.schema}".events`);
      const attempt = store.append([ev('a')]);
      await expect(attempt).rejects.toBeInstanceOf(StoreError);
      await expect(attempt).rejects.toMatchObject({
        message: expect.stringMatching(/^\[store:postgres\] append failed: .*SQLSTATE 42P01/),
        cause: expect.any(Error),
        expose: false,
      });
      await expect(store.lastSeq()).rejects.toThrow(/lastSeq failed/);
    } finally {
      await store.close();
    }
  });

  it('should keep the sequence after every event was purged', async () => {
    const store = await openIsolated();
    try {
      const out = await store.append([ev('a'), ev('b')]);
      const received = out[1]?.event.receivedAt as number;
      while (Date.now() <= received) await new Promise((r) => setTimeout(r, 1));
      expect(await store.retention.purge(Date.now(), 10)).toEqual({
        deleted: 2,
        purgedThrough: out[1]?.event.seq,
      });
      expect(await store.lastSeq()).toBe(out[1]?.event.seq);
      const [c] = await store.append([ev('c')]);
      expect(c?.event.seq).toBeGreaterThan(out[1]?.event.seq as number);
    } finally {
      await store.close();
    }
  });

  it('should index every filter field, the sparse ones only where they have a value, and use them', async () => {
    const store = await openIsolated();
    const client = await admin?.connect();
    try {
      const indexes = await client?.query<{ name: string; def: string }>(
        'SELECT indexname AS name, indexdef AS def FROM pg_indexes WHERE schemaname = $1',
        [store.schema],
      );
      const partial = indexes?.rows.filter((i) => / WHERE \(\w+ IS NOT NULL\)/.test(i.def));
      expect(partial?.map((i) => i.name).sort()).toEqual([
        'events_action_seq',
        'events_actor_seq',
        'events_category_seq',
        'events_correlation_id_seq',
        'events_parent_id_seq',
        'events_resource_seq',
        'events_source_seq',
      ]);
      await client?.query('BEGIN');
      await client?.query('SET LOCAL enable_seqscan = off');
      for (const [filter, index] of [
        [{ inboxes: ['ops'] }, 'events_inbox_seq'],
        [{ inboxes: ['ops_*'] }, 'events_inbox_seq'],
        [{ types: ['vm.*'] }, 'events_type_seq'],
        [{ severities: ['ERROR'] }, 'events_severity_seq'],
        [{ categories: ['a', 'b%*'] }, 'events_category_seq'],
        [{ actions: ['a'] }, 'events_action_seq'],
        [{ resourceType: 'vm', resourceId: 'x' }, 'events_resource_seq'],
        [{ actor: 'u' }, 'events_actor_seq'],
        [{ source: 's' }, 'events_source_seq'],
        [{ correlationId: 'c' }, 'events_correlation_id_seq'],
        [{ parentId: 'p' }, 'events_parent_id_seq'],
        [{ since: 1, until: 2 }, 'events_ts_seq'],
      ] as [EventFilter, string][]) {
        const clauses = compileFilter(filter, SEE_EVERYTHING);
        const where = clausesToSql(clauses, postgresDialect);
        const plan = await client?.query<{ 'QUERY PLAN': string }>(
          `EXPLAIN SELECT * FROM "${store.schema}".events WHERE ${where.sql}`,
          where.params,
        );
        expect(plan?.rows.map((r) => r['QUERY PLAN']).join('\n')).toContain(index);
      }
      await client?.query('ROLLBACK');
    } finally {
      client?.release();
      await store.close();
    }
  });

  it('should escape the LIKE wildcards and its escape character in prefixes', () => {
    const params: string[] = [];
    const sql = postgresDialect.startsWith('category', 'a%b_c\\d*', (v) => {
      params.push(v);
      return '$1';
    });
    expect(sql).toBe('category LIKE $1');
    expect(params).toEqual(['a\\%b\\_c\\\\d*%']);
    expect(postgresDialect.column('timestamp')).toBe('ts');
    expect(postgresDialect.placeholder(3)).toBe('$3');
  });
}

/** The SQL the store runs and the in-memory matcher agree, on random events and filters. */
function filterSuite(): void {
  const rand = random(20260202);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)] as T;
  const chance = (p: number) => rand() < p;
  const POOLS = {
    type: ['vm.state', 'vm.state.changed', 'vm', 'vm2.created', 'VM.x', 'user_logout', 'a:b'],
    inbox: ['global', 'ops', 'ops-eu', 'ops_eu', 'opsXeu', 'OPS', 'dev.team'],
    clientId: [null, null, 'c1', 'C1', 'c1x'],
    category: [null, 'lifecycle', 'Lifecycle', 'a%d', 'a_e', 'abc', 'a\\h', 'écho', 'echo'],
    action: [null, 'start', 'Start', 'st%', 'st_p'],
    actor: [null, 'alice', 'Alice'],
    parentId: [null, 'p1', 'p2'],
  } as const;

  let store: EventStore;
  let stored: StoredEvent[];

  it('should return exactly what the in-memory matcher accepts, in pages, replays and children', async () => {
    store = await openIsolated();
    try {
      const events = Array.from({ length: 200 }, (_, i) =>
        validateEventInput({
          id: `ev-${i}`,
          type: pick(POOLS.type),
          inbox: pick(POOLS.inbox),
          clientId: pick(POOLS.clientId),
          severity: pick(SEVERITIES),
          category: pick(POOLS.category),
          action: pick(POOLS.action),
          actor: pick(POOLS.actor),
          parentId: pick(POOLS.parentId),
          resource: chance(0.5) ? { type: pick(['vm', 'VM']), id: pick(['1', '2']) } : null,
          timestamp: Date.UTC(2026, 0, 1) + Math.floor(rand() * 100) * 1000,
        }),
      );
      stored = (await store.append(events)).map((o) => o.event);
      const patterns = (values: readonly (string | null)[]): string[] =>
        Array.from({ length: 1 + Math.floor(rand() * 2) }, () => {
          const value = pick(values.filter((v): v is string => v !== null));
          if (chance(0.4)) return value;
          const cut = value.slice(0, Math.floor(rand() * (value.length + 1)));
          return `${chance(0.2) ? cut.toUpperCase() : cut}*`;
        });
      let nonTrivial = 0;
      for (let n = 0; n < 150; n++) {
        const filter: EventFilter = {};
        if (chance(0.4)) filter.inboxes = patterns(POOLS.inbox);
        if (chance(0.4)) filter.types = patterns(POOLS.type);
        if (chance(0.4)) filter.categories = patterns(POOLS.category);
        if (chance(0.3)) filter.actions = patterns(POOLS.action);
        if (chance(0.2)) filter.severities = SEVERITIES.filter(() => chance(0.4));
        if (chance(0.2)) filter.actor = pick(['alice', 'Alice', 'nobody']);
        if (chance(0.2)) filter.resourceType = pick(['vm', 'VM']);
        if (chance(0.2)) filter.since = Date.UTC(2026, 0, 1) + Math.floor(rand() * 100) * 1000;
        const visibility: Visibility = {
          inboxes: chance(0.7) ? null : patterns(POOLS.inbox),
          clients: pick(['all', null, 'c1', 'C1'] as const),
        };
        const clauses = compileFilter(filter, visibility);
        const expected = stored.filter((e) => matchesClauses(e, clauses));
        const context = JSON.stringify({ filter, visibility });
        const page = await store.page({ clauses, order: 'OLDEST_FIRST', first: 1000 });
        expect(
          page.events.map((e) => e.id),
          context,
        ).toEqual(expected.map((e) => e.id));
        const from = (pick(stored) as StoredEvent).seq;
        const replay = await store.readAfter(from, clauses, 1000);
        expect(
          replay.events.map((e) => e.id),
          context,
        ).toEqual(expected.filter((e) => e.seq > from).map((e) => e.id));
        const children = await store.getChildren(['p2', 'p1'], clauses);
        expect(
          children.map((g) => g.map((e) => e.id)),
          context,
        ).toEqual(
          ['p2', 'p1'].map((p) => expected.filter((e) => e.parentId === p).map((e) => e.id)),
        );
        if (expected.length > 0 && expected.length < stored.length) nonTrivial++;
      }
      expect(nonTrivial).toBeGreaterThan(60);
    } finally {
      await store.close();
    }
  });
}
