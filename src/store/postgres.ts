/**
 * The PostgreSQL event store, on node-postgres (`pg`): a connection pool, every object in one
 * schema, pending migrations applied on open.
 *
 * URL: `postgres://user:password@host:5432/database?schema=tidings&pool=10`
 * - `schema`: the schema holding the tables, created when missing; `public` when not given.
 * - `pool`: the most connections the instance opens, 10 when not given.
 * - every other parameter goes to node-postgres as is (`sslmode`, `application_name`,
 *   `connect_timeout`, `options`, `host` for a Unix socket directory, …). Tables are always named
 *   with their schema, so a `search_path` set through `options` does not move them.
 *
 * ## Late commits
 *
 * Readers ask for "the events after sequence X": a replay before a live stream, the sequencer
 * filling what the bus did not bring, a client resuming from its cursor. That is only safe if,
 * once an event is visible, no event with a smaller sequence can become visible later. With
 * concurrent writers a plain identity column breaks it: A draws 7, B draws 8, B commits first, a
 * reader sees 8, moves its cursor past it, and 7 is skipped forever once A commits.
 *
 * Design: every append is one `INSERT … SELECT` statement (its own transaction) whose first step
 * takes a transaction-scoped advisory lock of the schema (`pg_advisory_xact_lock`); its rows draw
 * their sequences only after that, and the lock is released at the end of the commit. PostgreSQL
 * makes a committed transaction visible before it releases its locks, so the next append draws
 * larger sequences only once this one is visible to every new snapshot. Appends thus draw and
 * commit their sequence ranges one at a time, in order, across every connection and every instance
 * sharing the schema, and every snapshot sees a prefix of the sequence: all the committed events
 * up to some sequence, none after it (a number drawn by a statement that failed is never used, a
 * harmless gap). `lastSeq` and `readAfter` need nothing more than one statement, one snapshot;
 * readers never take the lock.
 *
 * The cost is that appends to one schema are serialised, each holding the lock through its insert
 * and its commit (the WAL flush), so concurrent appends no longer share a flush. Within an instance
 * nothing is lost: the publish path already appends one group of publishes at a time (group
 * commit), so the lock is taken once per group, not once per event; only instances sharing a
 * schema wait for each other. The lock is not held while ids are looked up: events with ids the
 * caller chose are looked up by a statement before the insert, and an id stored by someone else in
 * between makes the insert fail on the unique index, after which the append starts over.
 */
import type pg from 'pg';
import type { PoolConfig, QueryResultRow } from 'pg';
import { withDeadline } from '../deadline.js';
import { importOptionalPackage } from '../optional-packages.js';
import {
  ConfigError,
  StoreError,
  StoreUnavailableError,
  TidingsError,
  ValidationError,
} from '../errors.js';
import {
  bindEvent,
  EVENT_COLUMN_COUNT,
  EVENT_COLUMN_LIST,
  FILTER_COLUMNS,
  toStoredEvent,
  type EventRow,
} from './columns.js';
import { clausesToSql, type SqlDialect } from './sql-filter.js';
import type { NewEvent, StoredEvent } from '../events/types.js';
import { migrate, lockKeys, quoteIdent } from './postgres-schema.js';
import { checkSchema, DEFAULT_CONNECT_TIMEOUT_MS, parseUrl, type Target } from './postgres-url.js';
import {
  conflictError,
  fillRepeats,
  groupByIds,
  idKey,
  planAppend,
  toOutcomes,
  type AppendResult,
} from './sqlite-append.js';
import type {
  ClaimMode,
  FullEventStore,
  Page,
  PageQuery,
  ReplayBatch,
  StoreClaim,
} from './types.js';

export { SCHEMA_VERSION } from './postgres-schema.js';

/** Options of {@link createPostgresStore}. */
export interface PostgresStoreOptions {
  /** `postgres://…` or `postgresql://…`, as described at the top of this module. */
  url: string;
  /** The schema; overrides the URL's `?schema=`. @default 'public' */
  schema?: string;
  /** The most connections; overrides the URL's `?pool=`. @default 10 */
  poolSize?: number;
  /** How long to wait for a connection (a new one, or a free one of the pool), ms. @default 10000 */
  connectTimeoutMs?: number;
  /**
   * Deadline of each call, ms: a call that takes longer (waiting for a connection included)
   * fails with a `StoreUnavailableError`. PostgreSQL's `statement_timeout` and node-postgres's
   * `query_timeout` are set to it too, so the server gives up on a statement nobody waits for
   * any more, and a connection whose answer did not come is closed rather than reused.
   * @default 5000
   */
  timeoutMs?: number;
}

/**
 * The PostgreSQL rendering of filter clauses. Prefixes use `LIKE`, which is case-sensitive; its
 * wildcards `%` and `_` and its escape character `\` (the default one) are escaped in the prefix.
 * The filtered columns are `COLLATE "C"`, so their B-tree indexes serve the prefix too.
 */
export const postgresDialect: SqlDialect = {
  column: (field) => FILTER_COLUMNS[field],
  placeholder: (n) => `$${n}`,
  startsWith: (column, prefix, bind) =>
    `${column} LIKE ${bind(`${prefix.replace(/[\\%_]/g, '\\$&')}%`)}`,
};

const DEFAULT_TIMEOUT_MS = 5_000;
/** Attempts of an append whose insert met an id stored concurrently. */
const APPEND_ATTEMPTS = 3;

/** The columns of an {@link EventRow}; a JSON column comes back as its text. */
const ROW = [
  'seq',
  ...EVENT_COLUMN_LIST.map((c) => (c.kind === 'json' ? `${c.name}::text AS ${c.name}` : c.name)),
  'received_at',
].join(', ');

/** The array type of each column's `unnest` parameter in the insert. */
const ARRAY_TYPE = { text: 'text[]', integer: 'bigint[]', json: 'text[]' } as const;
/** The cast from an `unnest` element to each column's type. */
const CAST = { text: '', integer: '', json: '::jsonb' } as const;

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Error codes of a connection that could not be made or was lost. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
]);

const codeOf = (err: unknown): string => {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
};

/**
 * Says what went wrong and what to do: `known` when the error is one of the recognised kinds
 * (unreachable server, login refused, …), whose text stands on its own.
 */
function explain(err: unknown, target: Target): { text: string; known: boolean } {
  const code = codeOf(err);
  const detail = message(err);
  if (/timeout exceeded when trying to connect/i.test(detail)) {
    // pg-pool's wait for a connection: a new one that did not open, or a busy pool.
    return {
      text:
        `cannot reach PostgreSQL at ${target.server} within ${target.connectTimeoutMs} ms: is ` +
        'it running? check TIDINGS_STORE; if it is, every connection of the pool stayed busy: ' +
        'raise ?pool=',
      known: true,
    };
  }
  if (NETWORK_CODES.has(code) || /Connection terminated/i.test(detail)) {
    return {
      text:
        `cannot reach PostgreSQL at ${target.server}: is it running? check TIDINGS_STORE ` +
        `(${detail})`,
      known: true,
    };
  }
  switch (code) {
    case '28P01':
    case '28000':
      return {
        text:
          `PostgreSQL at ${target.server} refused the login of user "${target.user}": check the ` +
          `user and password in TIDINGS_STORE, and pg_hba.conf (${detail})`,
        known: true,
      };
    case '3D000':
      return {
        text:
          `database "${target.database}" does not exist on ${target.server}: create it ` +
          `(createdb ${target.database}) or name another one in TIDINGS_STORE`,
        known: true,
      };
    case '42501':
      return {
        text:
          `permission denied (${detail}): grant user "${target.user}" the privileges it needs ` +
          'on the schema (CREATE to migrate it), or pick a schema it owns with ?schema=',
        known: true,
      };
    case '53300':
      return {
        text:
          `PostgreSQL at ${target.server} has no connection slot left: lower ?pool= in ` +
          `TIDINGS_STORE or raise max_connections (${detail})`,
        known: true,
      };
    case '57P01':
    case '57P02':
    case '57P03':
      return {
        text: `PostgreSQL at ${target.server} is shutting down or starting up: retry once it is up (${detail})`,
        known: true,
      };
  }
  return { text: code ? `${detail} (SQLSTATE ${code})` : detail, known: false };
}

/** SQLSTATEs of a statement cancelled (`statement_timeout`) or a server going down. */
const UNAVAILABLE_STATES = new Set(['57014', '57P01', '57P02', '57P03']);
/** node-postgres's words for a connection lost, not made in time, or not answering in time. */
const UNAVAILABLE_MESSAGE =
  /Connection terminated|timeout exceeded when trying to connect|Query read timeout|not queryable/i;

/**
 * Whether `err` says PostgreSQL could not be reached or did not answer in time, rather than that
 * it refused the call: the call may succeed later, unchanged.
 */
const isUnavailable = (err: unknown): boolean =>
  NETWORK_CODES.has(codeOf(err)) ||
  UNAVAILABLE_STATES.has(codeOf(err)) ||
  UNAVAILABLE_MESSAGE.test(message(err));

/** Whether `err` is the unique index on `events (id, inbox)` refusing a row. */
const isIdTaken = (err: unknown): boolean =>
  codeOf(err) === '23505' && (err as { constraint?: unknown }).constraint === 'events_id_inbox_key';

/** Whether `err` is PostgreSQL refusing a JSON text as `jsonb`. */
const isBadJsonb = (err: unknown): boolean =>
  codeOf(err) === '22P05' || (codeOf(err) === '22P02' && /json/i.test(message(err)));

function checkCount(name: string, value: number | null | undefined): number | null {
  if (value == null) return null;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new ValidationError(`[store:postgres] ${name} must be an integer >= 0, got ${value}`, {
      details: { field: name },
    });
  }
  return value;
}

/** `bigint` as a JavaScript number: sequences and epoch milliseconds stay below 2^53. */
const parseInt8 = (value: string): number => Number(value);

/** node-postgres, loaded on first use: a server on another store never loads it. */
function loadPg(): Promise<typeof pg> {
  return importOptionalPackage(
    'pg',
    async () => (await import('pg')).default,
    'TIDINGS_STORE=postgres://…',
  );
}

/** The type parsers of every connection: `bigint` as a number, the rest as node-postgres has it. */
function typesOf(driver: typeof pg): PoolConfig['types'] {
  return {
    getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
      oid === driver.types.builtins.INT8 && format !== 'binary'
        ? parseInt8
        : driver.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
  };
}

/**
 * Opens a PostgreSQL event store: connects, creates the schema when missing and applies the
 * pending migrations (under an advisory lock, so instances starting together do not race).
 * @throws ConfigError for a malformed URL, `?schema=` or `?pool=`, or when `pg` is not installed.
 * @throws StoreError when the server cannot be reached, refuses the login, or cannot migrate.
 */
export async function createPostgresStore(options: PostgresStoreOptions): Promise<FullEventStore> {
  const settings = parseUrl(options.url);
  const driver = await loadPg();
  const schema = options.schema ?? settings.schema;
  checkSchema(schema);
  const poolSize = options.poolSize ?? settings.poolSize;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const target: Target = {
    ...settings.target,
    connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
  };
  const config: PoolConfig = {
    connectionString: settings.connectionString,
    max: poolSize,
    connectionTimeoutMillis: target.connectTimeoutMs,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    // A connection to a server that vanished without a word is found out within a minute.
    keepAliveInitialDelayMillis: 10_000,
    application_name: 'tidings',
    types: typesOf(driver),
  };
  const pool = new driver.Pool({
    ...config,
    statement_timeout: timeoutMs,
    query_timeout: timeoutMs,
  });
  // An idle connection that breaks (a server restart, say) is dropped from the pool; the next
  // query opens a new one, or fails with a StoreError that says why.
  pool.on('error', () => {});

  // Migrating a large table may take longer than any call should: it gets a connection of its
  // own, without the deadlines.
  const setup = new driver.Pool({ ...config, max: 1 });
  setup.on('error', () => {});
  try {
    const client = await setup.connect();
    try {
      await migrate(client, schema);
    } finally {
      client.release();
    }
  } catch (err) {
    await setup.end().catch(() => {});
    await pool.end().catch(() => {});
    if (err instanceof TidingsError) throw err;
    const { text, known } = explain(err, target);
    throw new StoreError(
      known
        ? `[store:postgres] ${text}`
        : `[store:postgres] cannot open schema "${schema}" of database "${target.database}" ` +
            `at ${target.server}: ${text}`,
      { cause: err },
    );
  }

  await setup.end().catch(() => {});

  const s = quoteIdent(schema);
  const EVENTS = `${s}.events`;
  const RETENTION = `${s}.retention`;
  const REVOCATIONS = `${s}.revocations`;
  const [lockSpace, lockKey] = lockKeys('append', schema);
  // One array per column, zipped by `unnest` in the order of EVENT_COLUMN_LIST, then received_at.
  const columnNames = EVENT_COLUMN_LIST.map((c) => c.name).join(', ');
  const INSERT = `
    WITH lock AS MATERIALIZED (SELECT pg_advisory_xact_lock(${lockSpace}, ${lockKey}))
    INSERT INTO ${EVENTS} (${columnNames}, received_at)
    SELECT ${EVENT_COLUMN_LIST.map((c) => `u.${c.name}${CAST[c.kind]}`).join(', ')},
      $${EVENT_COLUMN_COUNT + 1}::bigint
    FROM lock, unnest(${EVENT_COLUMN_LIST.map((c, i) => `$${i + 1}::${ARRAY_TYPE[c.kind]}`).join(', ')})
      WITH ORDINALITY AS u(${columnNames}, n)
    ORDER BY u.n
    RETURNING id, inbox, seq`;
  // Through the unique index on (id, inbox); other inboxes are never read.
  const BY_KEYS =
    `SELECT ${ROW} FROM ${EVENTS} ` +
    'WHERE (id, inbox) IN (SELECT * FROM unnest($1::text[], $2::text[]))';
  const BY_IDS = (filter: string) =>
    `SELECT ${ROW} FROM ${EVENTS} WHERE id = ANY($1::text[]) AND ${filter} ORDER BY seq ASC`;
  const HORIZON = `SELECT purged_through FROM ${RETENTION} WHERE id = 1`;
  const LAST_SEQ = `SELECT GREATEST((SELECT MAX(seq) FROM ${EVENTS}), (${HORIZON}), 0) AS seq`;
  // The oldest events up to the first one received at or after the cutoff: a prefix of the
  // sequence, so the horizon stays exact even if a clock once went backwards. One statement, so
  // the deletion and the horizon move together.
  const PURGE = `
    WITH oldest AS (
      SELECT seq, received_at FROM ${EVENTS} ORDER BY seq LIMIT $2
    ), through AS (
      SELECT MAX(seq) AS seq FROM oldest
      WHERE seq < COALESCE((SELECT MIN(seq) FROM oldest WHERE received_at >= $1),
                           9223372036854775807)
    ), deleted AS (
      DELETE FROM ${EVENTS} WHERE seq <= (SELECT seq FROM through) RETURNING seq
    ), moved AS (
      UPDATE ${RETENTION}
      SET purged_through = GREATEST(purged_through, (SELECT MAX(seq) FROM deleted))
      WHERE id = 1 AND EXISTS (SELECT 1 FROM deleted)
      RETURNING purged_through
    )
    SELECT (SELECT COUNT(*) FROM deleted) AS deleted,
           COALESCE((SELECT purged_through FROM moved), (${HORIZON})) AS purged_through`;
  const REVOKE = `
    INSERT INTO ${REVOCATIONS} (kind, value, revoked_at) VALUES ($1, $2, $3)
    ON CONFLICT (kind, value)
    DO UPDATE SET revoked_at = GREATEST(${REVOCATIONS}.revoked_at, excluded.revoked_at)`;
  const REVOKED = `
    SELECT kind, revoked_at FROM ${REVOCATIONS}
    WHERE (kind = 'token' AND value = $1) OR (kind = 'subject' AND value = $2)`;

  let closed = false;
  const closedError = () => new StoreError('[store:postgres] the store is closed');
  /**
   * The error of a call past its deadline (`cause` null) or that could not reach the server. The
   * message is shown to clients: the server's address and the detail stay in the `cause`.
   */
  const unavailable = (op: string, cause: unknown) => {
    const what =
      cause === null
        ? `PostgreSQL did not complete ${op} within ${timeoutMs} ms (TIDINGS_STORE_TIMEOUT)`
        : `${op} failed: PostgreSQL is unreachable or not answering`;
    const todo =
      op === 'append'
        ? 'the events may or may not be stored: send them again with the same ids in a moment ' +
          '(a repeated id is stored once)'
        : 'retry in a moment';
    return new StoreUnavailableError(`[store:postgres] ${what}; ${todo}`, {
      cause: cause ?? undefined,
    });
  };

  async function rows<R extends QueryResultRow>(sql: string, params: unknown[]): Promise<R[]> {
    return (await pool.query<R>(sql, params)).rows;
  }

  /**
   * Runs `fn` on the open store within the deadline, wrapping PostgreSQL errors in a
   * {@link StoreError}, or a {@link StoreUnavailableError} when the server could not be reached or
   * did not answer in time.
   */
  async function run<T>(op: string, fn: () => Promise<T>): Promise<T> {
    if (closed) throw closedError();
    try {
      return await withDeadline(fn(), timeoutMs, () => unavailable(op, null));
    } catch (err) {
      if (err instanceof TidingsError) throw err;
      if (closed) throw closedError();
      if (isUnavailable(err)) throw unavailable(op, err);
      throw new StoreError(`[store:postgres] ${op} failed: ${explain(err, target).text}`, {
        cause: err,
      });
    }
  }

  const conflict = (e: NewEvent) => conflictError('postgres', e);

  /**
   * One attempt at an append: looks up the ids given by the caller in their inboxes (all of them
   * when `lookUpAll`), refuses a reused id with other content, then inserts the new events in one
   * statement.
   */
  async function appendOnce(
    events: readonly NewEvent[],
    lookUpAll: boolean,
  ): Promise<AppendResult> {
    const inboxes: string[] = [];
    const ids: string[] = [];
    for (const e of events) {
      if (lookUpAll || !e.generatedId) {
        inboxes.push(e.inbox);
        ids.push(e.id);
      }
    }
    const found = ids.length === 0 ? [] : await rows<EventRow>(BY_KEYS, [ids, inboxes]);
    const { inserts, seqs, repeats } = planAppend(events, found, conflict);
    const receivedAt = Date.now();
    const n = inserts.length;
    if (n > 0) {
      // One array per column, one element per new event (unnest turns them back into rows).
      const columns = Array.from({ length: EVENT_COLUMN_COUNT }, () => new Array<unknown>(n));
      const values = new Array<unknown>(EVENT_COLUMN_COUNT);
      for (let j = 0; j < n; j++) {
        bindEvent(values, 0, events[inserts[j] as number] as NewEvent);
        for (let k = 0; k < EVENT_COLUMN_COUNT; k++) (columns[k] as unknown[])[j] = values[k];
      }
      let created: { id: string; inbox: string; seq: number }[];
      try {
        created = await rows<{ id: string; inbox: string; seq: number }>(INSERT, [
          ...columns,
          receivedAt,
        ]);
      } catch (err) {
        if (isBadJsonb(err)) {
          throw new ValidationError(
            '[store:postgres] an event body holds a string PostgreSQL cannot store as JSONB ' +
              '(\\u0000, or half of a surrogate pair): remove it, or encode the value ' +
              `(base64, say); nothing was stored (${message(err)})`,
            { cause: err, details: { field: 'body' } },
          );
        }
        throw err;
      }
      const seqByKey = new Map<string, number>();
      for (const row of created) seqByKey.set(idKey(row.inbox, row.id), row.seq);
      for (const i of inserts) {
        const e = events[i] as NewEvent;
        seqs[i] = seqByKey.get(idKey(e.inbox, e.id)) as number;
      }
    }
    fillRepeats(seqs, repeats);
    return { receivedAt, seqs, rows: found };
  }

  return {
    kind: 'postgres',
    // A statement whose answer is lost (a deadline, a broken connection) may still commit.
    flags: { unconfirmedCommits: true },

    append(events) {
      return run('append', async () => {
        if (events.length === 0) return [];
        for (let attempt = 1; ; attempt++) {
          try {
            return toOutcomes(events, await appendOnce(events, attempt > 1));
          } catch (err) {
            // Someone stored one of these ids since the lookup: look again, all of them.
            if (!isIdTaken(err) || attempt >= APPEND_ATTEMPTS) throw err;
          }
        }
      });
    },

    getByIds(ids, clauses) {
      return run('getByIds', async () => {
        if (ids.length === 0) return [];
        const filter = clausesToSql(clauses, postgresDialect, 1);
        const found = await rows<EventRow>(BY_IDS(filter.sql), [
          [...new Set(ids)],
          ...filter.params,
        ]);
        return groupByIds(ids, found);
      });
    },

    getChildren(parentIds, clauses) {
      return run('getChildren', async () => {
        if (parentIds.length === 0) return [];
        const filter = clausesToSql(clauses, postgresDialect, 1);
        const sql =
          `SELECT ${ROW} FROM ${EVENTS} WHERE parent_id = ANY($1::text[]) AND ${filter.sql} ` +
          'ORDER BY seq ASC';
        const groups = new Map<string, StoredEvent[]>();
        for (const row of await rows<EventRow>(sql, [[...new Set(parentIds)], ...filter.params])) {
          const parent = row.parent_id as string;
          let group = groups.get(parent);
          if (!group) groups.set(parent, (group = []));
          group.push(toStoredEvent(row));
        }
        return parentIds.map((id) => [...(groups.get(id) ?? [])]);
      });
    },

    page(query: PageQuery) {
      return run('page', async (): Promise<Page> => {
        const newestFirst = (query.order ?? 'NEWEST_FIRST') === 'NEWEST_FIRST';
        let first = checkCount('first', query.first);
        const last = checkCount('last', query.last);
        if (first === null && last === null) first = 50;
        const afterSeq = query.afterSeq ?? null;
        const beforeSeq = query.beforeSeq ?? null;
        const filter = clausesToSql(query.clauses, postgresDialect);
        const params: unknown[] = [...filter.params];
        const bind = (value: unknown) => {
          params.push(value);
          return `$${params.length}`;
        };

        // In `order`: "after" is a smaller seq when newest first, a larger one when oldest first.
        const where = [filter.sql];
        if (afterSeq !== null) where.push(`seq ${newestFirst ? '<' : '>'} ${bind(afterSeq)}`);
        if (beforeSeq !== null) where.push(`seq ${newestFirst ? '>' : '<'} ${bind(beforeSeq)}`);
        const forward = first !== null;
        // Read in `order` for `first`, against it for `last`.
        const dir = forward === newestFirst ? 'DESC' : 'ASC';
        const limit = (forward ? first : last) as number;
        /**
         * Whether a matching event lies on the far side of (or at) the exclusive bound opposite
         * to the reading direction: before `after` for `first`, after `before` for `last`. Before
         * `after` in `order` is the newer side when newest first.
         */
        const bound = forward ? afterSeq : beforeSeq;
        const newerSide = forward ? newestFirst : !newestFirst;
        const beyond =
          bound === null
            ? 'false'
            : `EXISTS (SELECT 1 FROM ${EVENTS} WHERE ${filter.sql} ` +
              `AND seq ${newerSide ? '>=' : '<='} ${bind(bound)})`;
        // One statement, so the page and the look beyond it read one snapshot.
        const sql =
          `SELECT b.beyond, e.* FROM (SELECT ${beyond} AS beyond) b LEFT JOIN LATERAL ` +
          `(SELECT ${ROW} FROM ${EVENTS} WHERE ${where.join(' AND ')} ` +
          `ORDER BY seq ${dir} LIMIT ${bind(limit + 1)}) e ON true ORDER BY e.seq ${dir}`;
        const result = await rows<EventRow & { beyond: boolean }>(sql, params);
        const far = result[0]?.beyond ?? false;
        let events = result.filter((r) => r.seq !== null);

        let hasNextPage: boolean;
        let hasPreviousPage: boolean;
        if (forward) {
          hasNextPage = events.length > limit;
          if (hasNextPage) events = events.slice(0, limit);
          hasPreviousPage = far;
          if (last !== null && events.length > last) {
            events = events.slice(events.length - last);
            hasPreviousPage = true;
          }
        } else {
          hasPreviousPage = events.length > limit;
          if (hasPreviousPage) events = events.slice(0, limit);
          events.reverse();
          hasNextPage = far;
        }
        return { events: events.map(toStoredEvent), hasNextPage, hasPreviousPage };
      });
    },

    readAfter(afterSeq, clauses, limit) {
      return run('readAfter', async (): Promise<ReplayBatch> => {
        const filter = clausesToSql(clauses, postgresDialect, 2);
        // One statement: the events and the horizon come from one snapshot.
        const sql =
          `SELECT r.purged_through AS horizon, e.* FROM ${RETENTION} r LEFT JOIN LATERAL ` +
          `(SELECT ${ROW} FROM ${EVENTS} WHERE seq > $1 AND ${filter.sql} ` +
          'ORDER BY seq ASC LIMIT $2) e ON true WHERE r.id = 1 ORDER BY e.seq ASC';
        const result = await rows<EventRow & { horizon: number }>(sql, [
          afterSeq,
          limit,
          ...filter.params,
        ]);
        return {
          events: result.filter((r) => r.seq !== null).map(toStoredEvent),
          purgedThrough: result[0]?.horizon ?? 0,
        };
      });
    },

    retention: {
      purge(before, limit) {
        return run('purge', async () => {
          checkCount('limit', limit);
          const [row] = await rows<{ deleted: number; purged_through: number }>(PURGE, [
            before,
            limit,
          ]);
          return { deleted: row?.deleted ?? 0, purgedThrough: row?.purged_through ?? 0 };
        });
      },

      purgedThrough() {
        return run('purgedThrough', async () => {
          const [row] = await rows<{ purged_through: number }>(HORIZON, []);
          return row?.purged_through ?? 0;
        });
      },
    },

    revocations: {
      revoke({ kind, value, at }) {
        return run('revoke', async () => {
          await pool.query(REVOKE, [kind, value, at]);
        });
      },

      lookup(tokenId, subject) {
        return run('revocations', async () => {
          const times = { token: null as number | null, subject: null as number | null };
          if (tokenId === null && subject === null) return times;
          for (const row of await rows<{ kind: 'token' | 'subject'; revoked_at: number }>(REVOKED, [
            tokenId,
            subject,
          ])) {
            times[row.kind] = row.revoked_at;
          }
          return times;
        });
      },
    },

    lastSeq() {
      return run('lastSeq', async () => {
        const [row] = await rows<{ seq: number }>(LAST_SEQ, []);
        return row?.seq ?? 0;
      });
    },

    ping() {
      return run('ping', async () => {
        await pool.query('SELECT 1');
      });
    },

    async close() {
      if (closed) return;
      closed = true;
      try {
        await pool.end();
      } catch (err) {
        throw new StoreError(`[store:postgres] close failed: ${message(err)}`, { cause: err });
      }
    },
  };
}

/** How long a server whose claim connection broke waits before it takes the claim again, ms. */
const RECLAIM_MS = 2000;

/**
 * Claims the schema of the store at `url` for a server: a session-level advisory lock keyed by
 * the schema, on a connection of its own, exclusive in `exclusive` mode and shared in `shared`
 * mode, so a server on the memory bus is never beside another server on the schema. The lock
 * goes with its connection, so a dead server's claim ends with it. When the connection breaks,
 * the claim is taken again every 2 s; {@link StoreClaim.check} fails until it is. Taking it
 * answers within the connect timeout plus `timeoutMs`, and the connection is asked `SELECT 1`
 * every 2 s: one that gives no answer within `timeoutMs` counts as broken.
 * @param timeoutMs Deadline of each call on the claim's connection, ms (`TIDINGS_STORE_TIMEOUT`).
 * @throws ConfigError when another server holds the schema in a mode that excludes `mode`.
 * @throws StoreError when PostgreSQL cannot be reached or does not answer in time.
 */
export async function claimPostgres(
  url: string,
  mode: ClaimMode,
  timeoutMs: number = DEFAULT_TIMEOUT_MS,
): Promise<StoreClaim> {
  const { connectionString, schema, target } = parseUrl(url);
  const driver = await loadPg();
  const keys = lockKeys('instance', schema);
  const lockFn = mode === 'exclusive' ? 'pg_try_advisory_lock' : 'pg_try_advisory_lock_shared';
  const refused = () =>
    new ConfigError(
      mode === 'exclusive'
        ? `[store:postgres] another Tidings server uses schema "${schema}" of database ` +
            `"${target.database}": with TIDINGS_BUS=memory a server must be alone on its schema, ` +
            'or each would deliver only its own publishes. Set the same TIDINGS_BUS=redis://… ' +
            'on every server of the schema, or give this one a schema of its own (?schema=)'
        : `[store:postgres] a Tidings server with TIDINGS_BUS=memory uses schema "${schema}" of ` +
            `database "${target.database}" and would not hear the events of this one: restart ` +
            'it with the same TIDINGS_BUS as this server, or give this one a schema of its own',
    );

  /** Connects and takes the lock; resolves with the connection that holds it. */
  async function take(): Promise<pg.Client> {
    const client = new driver.Client({
      connectionString,
      connectionTimeoutMillis: target.connectTimeoutMs,
      query_timeout: timeoutMs,
      keepAlive: true,
      // A claim whose server vanished without a word is found out within a minute.
      keepAliveInitialDelayMillis: 10_000,
      application_name: 'tidings',
    });
    client.on('error', () => {});
    const ms = target.connectTimeoutMs + timeoutMs;
    try {
      const taking = (async () => {
        await client.connect();
        return client.query<{ held: boolean }>(`SELECT ${lockFn}($1, $2) AS held`, keys);
      })();
      const { rows } = await withDeadline(
        taking,
        ms,
        () => new Error(`no answer within ${ms} ms (TIDINGS_STORE_TIMEOUT)`),
      );
      if (rows[0]?.held !== true) throw refused();
      return client;
    } catch (err) {
      // Not awaited: a stalled server would never acknowledge the end.
      void client.end().catch(() => {});
      if (err instanceof TidingsError) throw err;
      throw new StoreError(
        `[store:postgres] cannot claim schema "${schema}": ${explain(err, target).text}`,
        {
          cause: err,
        },
      );
    }
  }

  let client = await take();
  /** Why the claim is not held now, or `null` while it is. */
  let lost: string | null = null;
  let released = false;
  let timer: NodeJS.Timeout | undefined;
  const retry = () => {
    timer = setTimeout(() => void retake(), RECLAIM_MS);
    timer.unref();
  };
  const watch = (held: pg.Client) => {
    const onLoss = (err?: unknown) => {
      if (released || lost !== null || held !== client) return;
      lost =
        `the connection holding this server's claim on schema "${schema}" broke` +
        `${err === undefined ? '' : ` (${explain(err, target).text})`}: taking it again`;
      retry();
    };
    held.on('error', onLoss);
    held.on('end', () => onLoss());
    return onLoss;
  };
  /** Ends the claim's connection and takes the claim again when it stops answering. */
  let asking = false;
  const liveness = setInterval(() => {
    if (released || lost !== null || asking) return;
    asking = true;
    const held = client;
    withDeadline(
      held.query('SELECT 1'),
      timeoutMs,
      () => new Error(`no answer to SELECT 1 within ${timeoutMs} ms (TIDINGS_STORE_TIMEOUT)`),
    ).then(
      () => (asking = false),
      (err: unknown) => {
        asking = false;
        if (held !== client) return;
        onLoss(err);
        void held.end().catch(() => {});
      },
    );
  }, RECLAIM_MS);
  liveness.unref();
  const retake = async () => {
    if (released) return;
    try {
      const next = await take();
      if (released) {
        await next.end().catch(() => {});
        return;
      }
      client = next;
      lost = null;
      onLoss = watch(next);
    } catch (err) {
      lost = message(err).replace(/^\[store:postgres\] /, '');
      retry();
    }
  };
  let onLoss = watch(client);

  return {
    check() {
      if (lost !== null) throw new StoreError(`[store:postgres] ${lost}`);
    },
    async release() {
      if (released) return;
      released = true;
      clearTimeout(timer);
      clearInterval(liveness);
      await client.end().catch(() => {});
    },
  };
}
