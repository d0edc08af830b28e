/**
 * The PostgreSQL schema of the event store and its migrations. Every object lives in one schema
 * (`public` unless the store URL says `?schema=name`), so several stores can share a database.
 */
import type { PoolClient } from 'pg';
import { StoreError } from '../errors.js';

/**
 * The schema, one migration per entry, applied in order, unqualified (they run with the store's
 * schema as the `search_path`). Entry `i` is schema version `i + 1`; never edit a released entry,
 * append a new one.
 *
 * - `seq` is an identity column with the default `CACHE 1`: with a larger cache each connection
 *   would hand out numbers from its own block, and sequence order would no longer be the order in
 *   which appends take the append lock (see `postgres.ts`).
 * - The text columns a filter tests are `COLLATE "C"`: comparisons are byte-wise and
 *   case-sensitive like the in-memory matcher, whatever the database's collation, and a B-tree
 *   index on them also serves `LIKE 'prefix%'`.
 * - `ts` and `received_at` are epoch milliseconds (`bigint`), as the port speaks them: a
 *   `timestamptz` cannot hold the whole range of a JavaScript date.
 * - `body` is `jsonb`, never indexed.
 * - The sparse columns are indexed only where they have a value (every filter on them is `=`,
 *   `IN` or `LIKE`, which implies `IS NOT NULL`); `client_id` stays whole, since stream visibility
 *   asks for `client_id IS NULL OR client_id = $n`.
 */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE events (
    seq            bigint GENERATED ALWAYS AS IDENTITY (CACHE 1) PRIMARY KEY,
    id             text COLLATE "C" NOT NULL UNIQUE,
    type           text COLLATE "C" NOT NULL,
    inbox          text COLLATE "C" NOT NULL,
    client_id      text COLLATE "C",
    ts             bigint NOT NULL,
    received_at    bigint NOT NULL,
    message        text,
    body           jsonb,
    severity       text COLLATE "C" NOT NULL,
    category       text COLLATE "C",
    action         text COLLATE "C",
    resource_type  text COLLATE "C",
    resource_id    text COLLATE "C",
    actor          text COLLATE "C",
    source         text COLLATE "C",
    parent_id      text COLLATE "C",
    correlation_id text COLLATE "C",
    fingerprint    text NOT NULL
  );
  CREATE INDEX events_inbox_seq          ON events (inbox, seq);
  CREATE INDEX events_type_seq           ON events (type, seq);
  CREATE INDEX events_severity_seq       ON events (severity, seq);
  CREATE INDEX events_client_id_seq      ON events (client_id, seq);
  CREATE INDEX events_ts_seq             ON events (ts, seq);
  CREATE INDEX events_category_seq       ON events (category, seq) WHERE category IS NOT NULL;
  CREATE INDEX events_action_seq         ON events (action, seq) WHERE action IS NOT NULL;
  CREATE INDEX events_resource_seq       ON events (resource_type, resource_id, seq)
    WHERE resource_type IS NOT NULL;
  CREATE INDEX events_actor_seq          ON events (actor, seq) WHERE actor IS NOT NULL;
  CREATE INDEX events_source_seq         ON events (source, seq) WHERE source IS NOT NULL;
  CREATE INDEX events_correlation_id_seq ON events (correlation_id, seq)
    WHERE correlation_id IS NOT NULL;
  CREATE INDEX events_parent_id_seq      ON events (parent_id, seq) WHERE parent_id IS NOT NULL;

  -- The retention horizon: the highest sequence removed by purge.
  CREATE TABLE retention (
    id             smallint PRIMARY KEY CHECK (id = 1),
    purged_through bigint NOT NULL
  );
  INSERT INTO retention (id, purged_through) VALUES (1, 0);

  -- Revoked tokens and subjects, honoured by every instance sharing the store.
  CREATE TABLE revocations (
    kind       text COLLATE "C" NOT NULL CHECK (kind IN ('token', 'subject')),
    value      text COLLATE "C" NOT NULL,
    revoked_at bigint NOT NULL,
    PRIMARY KEY (kind, value)
  );
  `,
  // v2: ids are scoped to their inbox, so tenants neither see nor squat each other's ids. The
  // unique key (id, inbox) also serves lookups by id.
  `
  ALTER TABLE events DROP CONSTRAINT events_id_key;
  ALTER TABLE events ADD CONSTRAINT events_id_inbox_key UNIQUE (id, inbox);
  `,
];

/** The schema version this Tidings writes: the number of migrations it knows. */
export const SCHEMA_VERSION: number = MIGRATIONS.length;

/** Schema names accepted from a URL: a plain identifier, so no quoting surprise. */
export const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** `name` as a quoted SQL identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** First key of every advisory lock Tidings takes (the second names the schema). */
const LOCK_SPACE = {
  /** Held by each append transaction: see `postgres.ts`. */
  append: 0x74640001,
  /** Held while migrating a schema. */
  migrate: 0x74640002,
  /**
   * Held by each server for its life, on a connection of its own: exclusively on the memory bus,
   * shared on a shared bus (see `claimPostgres`).
   */
  instance: 0x74640003,
} as const;

/** A 32-bit FNV-1a hash of `text`, as a signed int4. */
function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}

/**
 * The two int4 keys of the advisory lock of `purpose` on `schema`, for
 * `pg_advisory_xact_lock(int4, int4)`: stores in different schemas of one database never wait
 * for each other.
 */
export function lockKeys(purpose: keyof typeof LOCK_SPACE, schema: string): [number, number] {
  return [LOCK_SPACE[purpose], hash32(schema)];
}

/**
 * Creates `schema` when missing and applies the pending migrations, all in one transaction under
 * an advisory lock, so instances starting together migrate once, one after the other. Existing
 * objects are looked up before anything is created, so a user without the CREATE privilege can
 * open a store that is already migrated.
 * @throws StoreError when the schema is newer than this Tidings.
 */
export async function migrate(client: PoolClient, schema: string): Promise<void> {
  const s = quoteIdent(schema);
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1, $2)', lockKeys('migrate', schema));
    const found = await client.query(
      `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AS schema,
              to_regclass($2) IS NOT NULL AS migrations`,
      [schema, `${s}.schema_migrations`],
    );
    const row = found.rows[0] as { schema: boolean; migrations: boolean };
    if (!row.schema) await client.query(`CREATE SCHEMA ${s}`);
    await client.query(`SET LOCAL search_path TO ${s}`);
    if (!row.migrations) {
      await client.query(
        'CREATE TABLE schema_migrations (version integer PRIMARY KEY, applied_at bigint NOT NULL)',
      );
    }
    const versions = await client.query<{ v: number }>(
      'SELECT COALESCE(MAX(version), 0)::integer AS v FROM schema_migrations',
    );
    const current = versions.rows[0]?.v ?? 0;
    if (current > MIGRATIONS.length) {
      throw new StoreError(
        `[store:postgres] schema "${schema}" has version ${current}, newer than this Tidings ` +
          `supports (${MIGRATIONS.length}): upgrade Tidings or use another schema (?schema=)`,
      );
    }
    for (let version = current + 1; version <= MIGRATIONS.length; version++) {
      await client.query(MIGRATIONS[version - 1] as string);
      await client.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)', [
        version,
        Date.now(),
      ]);
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
}
