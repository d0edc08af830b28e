/**
 * The SQLite event store: one file (or `:memory:`), better-sqlite3, WAL journal and
 * `synchronous = FULL`, so an acknowledged append is durably committed.
 */
import { mkdirSync, realpathSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import {
  ConfigError,
  StoreError,
  StoreBlockedError,
  TidingsError,
  ValidationError,
} from '../errors.js';
import { clausesToSql, type SqlDialect } from './sql-filter.js';
import type { StoredEvent } from '../events/types.js';
import { FILTER_COLUMNS, toStoredEvent, type EventRow } from './columns.js';
import { createAppender, groupByIds, toOutcomes } from './sqlite-append.js';
import type {
  ClaimMode,
  FullEventStore,
  Page,
  PageQuery,
  ReplayBatch,
  StoreClaim,
} from './types.js';

/** Options of {@link createSqliteStore}. */
export interface SqliteStoreOptions {
  /** A file path (its directory is created when missing) or `:memory:`. */
  path: string;
  /**
   * Called with the connection once it is open and migrated, before any other use: to set a
   * pragma (tests set `max_page_count` through it to make the disk look full).
   * @default none
   */
  onOpen?: (db: Database.Database) => void;
}

/** How long a write waits for another process's lock on the file before it fails, ms. */
const BUSY_TIMEOUT_MS = 5000;

/**
 * The schema, one migration per entry, applied in order. Entry `i` is schema version `i + 1`;
 * never edit a released entry, append a new one.
 */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE events (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT    NOT NULL UNIQUE,
    type           TEXT    NOT NULL,
    inbox          TEXT    NOT NULL,
    client_id      TEXT,
    ts             INTEGER NOT NULL,
    received_at    INTEGER NOT NULL,
    message        TEXT,
    body           TEXT,
    severity       TEXT    NOT NULL,
    category       TEXT,
    action         TEXT,
    resource_type  TEXT,
    resource_id    TEXT,
    actor          TEXT,
    source         TEXT,
    parent_id      TEXT,
    correlation_id TEXT,
    fingerprint    TEXT    NOT NULL
  );
  CREATE INDEX events_inbox_seq          ON events (inbox, seq);
  CREATE INDEX events_type_seq           ON events (type, seq);
  CREATE INDEX events_severity_seq       ON events (severity, seq);
  CREATE INDEX events_category_seq       ON events (category, seq);
  CREATE INDEX events_action_seq         ON events (action, seq);
  CREATE INDEX events_resource_seq       ON events (resource_type, resource_id, seq);
  CREATE INDEX events_actor_seq          ON events (actor, seq);
  CREATE INDEX events_source_seq         ON events (source, seq);
  CREATE INDEX events_correlation_id_seq ON events (correlation_id, seq);
  CREATE INDEX events_parent_id_seq      ON events (parent_id, seq);
  CREATE INDEX events_client_id_seq      ON events (client_id, seq);
  CREATE INDEX events_ts_seq             ON events (ts, seq);
  `,
  // Sparse columns: index only the events that have a value. Every filter on them is `=`, `IN` or
  // `GLOB`, which implies IS NOT NULL, so queries use these indexes as before, while appending an
  // event without these fields updates 7 B-trees fewer (about half the pages a commit writes).
  // `client_id` stays whole: stream visibility asks for `client_id IS NULL OR client_id = ?`.
  `
  DROP INDEX events_category_seq;
  DROP INDEX events_action_seq;
  DROP INDEX events_resource_seq;
  DROP INDEX events_actor_seq;
  DROP INDEX events_source_seq;
  DROP INDEX events_correlation_id_seq;
  DROP INDEX events_parent_id_seq;
  CREATE INDEX events_category_seq       ON events (category, seq) WHERE category IS NOT NULL;
  CREATE INDEX events_action_seq         ON events (action, seq) WHERE action IS NOT NULL;
  CREATE INDEX events_resource_seq       ON events (resource_type, resource_id, seq)
    WHERE resource_type IS NOT NULL;
  CREATE INDEX events_actor_seq          ON events (actor, seq) WHERE actor IS NOT NULL;
  CREATE INDEX events_source_seq         ON events (source, seq) WHERE source IS NOT NULL;
  CREATE INDEX events_correlation_id_seq ON events (correlation_id, seq)
    WHERE correlation_id IS NOT NULL;
  CREATE INDEX events_parent_id_seq      ON events (parent_id, seq) WHERE parent_id IS NOT NULL;
  `,
  // v3: the retention horizon, so a resume point older than the retained history is detected.
  `
  CREATE TABLE retention (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    purged_through INTEGER NOT NULL
  );
  INSERT INTO retention (id, purged_through) VALUES (1, 0);
  `,
  // v4: revoked tokens and subjects, honoured by every instance sharing the store.
  `
  CREATE TABLE revocations (
    kind       TEXT    NOT NULL CHECK (kind IN ('token', 'subject')),
    value      TEXT    NOT NULL,
    revoked_at INTEGER NOT NULL,
    PRIMARY KEY (kind, value)
  ) WITHOUT ROWID;
  `,
  // v5: ids are scoped to their inbox, so tenants neither see nor squat each other's ids: the
  // unique key becomes (id, inbox), which also serves lookups by id. SQLite cannot drop a column
  // constraint, so the table is rebuilt, keeping every sequence and the AUTOINCREMENT counter
  // (which may be past the last row once purge removed it: a cursor is never handed out twice).
  `
  CREATE TABLE events_v5 (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT    NOT NULL,
    type           TEXT    NOT NULL,
    inbox          TEXT    NOT NULL,
    client_id      TEXT,
    ts             INTEGER NOT NULL,
    received_at    INTEGER NOT NULL,
    message        TEXT,
    body           TEXT,
    severity       TEXT    NOT NULL,
    category       TEXT,
    action         TEXT,
    resource_type  TEXT,
    resource_id    TEXT,
    actor          TEXT,
    source         TEXT,
    parent_id      TEXT,
    correlation_id TEXT,
    fingerprint    TEXT    NOT NULL,
    UNIQUE (id, inbox)
  );
  INSERT INTO events_v5 SELECT seq, id, type, inbox, client_id, ts, received_at, message, body,
    severity, category, action, resource_type, resource_id, actor, source, parent_id,
    correlation_id, fingerprint FROM events ORDER BY seq;
  DELETE FROM sqlite_sequence WHERE name = 'events_v5';
  UPDATE sqlite_sequence SET name = 'events_v5' WHERE name = 'events';
  DROP TABLE events;
  ALTER TABLE events_v5 RENAME TO events;
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
  `,
];

/**
 * The SQLite rendering of filter clauses. Prefixes use `GLOB`, which is case-sensitive like the
 * in-memory matcher (SQLite's `LIKE` is not); the GLOB wildcards `*`, `?` and `[` in a prefix are
 * escaped by wrapping each in brackets.
 */
export const sqliteDialect: SqlDialect = {
  column: (field) => FILTER_COLUMNS[field],
  placeholder: () => '?',
  startsWith: (column, prefix, bind) =>
    `${column} GLOB ${bind(`${prefix.replace(/[*?[]/g, '[$&]')}*`)}`,
};

const SELECT = 'SELECT * FROM events';
/** Largest number of ids bound in one `IN (...)`. */
const CHUNK = 500;
/** Largest number of dynamic (filter-dependent) statements kept prepared. */
const STATEMENT_CACHE_SIZE = 256;

/** The table of the write probe; it exists only during a probe. */
const PROBE_TABLE = 'tidings_write_probe';
/**
 * How long a failed write probe answers for the store, ms: readiness checks flooding in during an
 * outage (`/readyz` needs no auth) make one write a second, as the outage watch does, not one each.
 */
const PROBE_REUSE_MS = 1000;
/** What the write probe writes: enough to need new pages. */
const PROBE_BYTES = 64 * 1024;

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The error of a write that failed for a reason the operator can fix (a full disk, a file locked
 * by another process), saying what to do; `null` for any other failure.
 */
function unavailableError(path: string, op: string, err: unknown): StoreBlockedError | null {
  const code = (err as { code?: unknown } | null)?.code;
  // Clients learn what happened and what to do; the file's path is for operators only.
  if (code === 'SQLITE_FULL') {
    const what = `[store:sqlite] ${op} failed: the disk of the event store is full, nothing was stored.`;
    return new StoreBlockedError(
      'STORE_FULL',
      `${what} The operator must free space on that disk; writes resume by themselves once ` +
        'there is room: retry later',
      {
        cause: err,
        operatorMessage:
          `[store:sqlite] ${op} failed: the disk holding "${path}" is full, nothing was stored. ` +
          'Free space on that disk (or raise its quota); writes resume by themselves once ' +
          'there is room',
      },
    );
  }
  if (typeof code === 'string' && /^SQLITE_(BUSY|LOCKED)/.test(code)) {
    return new StoreBlockedError(
      'STORE_BUSY',
      `[store:sqlite] ${op} failed: another process holds the event store locked, nothing was ` +
        "stored. The operator must end that process's transaction; writes resume by themselves " +
        'once the store is free: retry later',
      {
        cause: err,
        operatorMessage:
          `[store:sqlite] ${op} failed: another process holds "${path}" locked (an open write ` +
          "transaction), nothing was stored. End that process's transaction (a sqlite3 shell, a " +
          `backup tool: \`fuser ${path}\` names it); writes resume by themselves once the file ` +
          'is free',
      },
    );
  }
  return null;
}

function chunks<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += CHUNK) out.push(items.slice(i, i + CHUNK));
  return out;
}

function checkCount(name: string, value: number | null | undefined): number | null {
  if (value == null) return null;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new ValidationError(`[store:sqlite] ${name} must be an integer >= 0, got ${value}`, {
      details: { field: name },
    });
  }
  return value;
}

/** Opens the database and applies the pragmas and pending migrations. */
function openDatabase(path: string): Database.Database {
  const memory = path === ':memory:';
  if (!memory) mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  try {
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    if (!memory) db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER)',
    );
    const migrate = db.transaction(() => {
      const row = db
        .prepare<[], { v: number | null }>('SELECT MAX(version) AS v FROM schema_migrations')
        .get();
      const current = row?.v ?? 0;
      if (current > MIGRATIONS.length) {
        throw new StoreError(
          `[store:sqlite] "${path}" has schema version ${current}, newer than this Tidings ` +
            `supports (${MIGRATIONS.length}): upgrade Tidings or use another file`,
        );
      }
      const record = db.prepare<[number, number]>(
        'INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)',
      );
      for (let version = current + 1; version <= MIGRATIONS.length; version++) {
        db.exec(MIGRATIONS[version - 1] as string);
        record.run(version, Date.now());
      }
    });
    migrate.immediate();
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/**
 * Opens (creating if needed) a SQLite event store at `options.path`, a file path or `:memory:`.
 * Pending schema migrations are applied on open.
 * @throws StoreError when the file cannot be opened or migrated.
 */
export function createSqliteStore(options: SqliteStoreOptions): FullEventStore {
  const { path } = options;
  let db: Database.Database;
  try {
    db = openDatabase(path);
  } catch (err) {
    if (err instanceof TidingsError) throw err;
    throw new StoreError(`[store:sqlite] cannot open "${path}": ${message(err)}`, { cause: err });
  }
  options.onOpen?.(db);
  let closed = false;
  const appendTx = createAppender(db);

  const lastSeqStmt = db.prepare<[], { seq: number }>(
    "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0) AS seq",
  );
  const pingStmt = db.prepare('SELECT 1');
  const horizonStmt = db.prepare<[], { h: number }>(
    'SELECT purged_through AS h FROM retention WHERE id = 1',
  );
  const horizon = () => horizonStmt.get()?.h ?? 0;
  const oldestStmt = db.prepare<[number], { seq: number; received_at: number }>(
    'SELECT seq, received_at FROM events ORDER BY seq ASC LIMIT ?',
  );
  const deleteThrough = db.prepare<[number]>('DELETE FROM events WHERE seq <= ?');
  const setHorizon = db.prepare<[number]>('UPDATE retention SET purged_through = ? WHERE id = 1');
  const purgeTx = db.transaction((before: number, limit: number) => {
    // The oldest events, up to the first one received at or after `before`: a prefix of the
    // sequence, so the horizon stays exact even if the clock once went backwards.
    let through = 0;
    let deleted = 0;
    for (const row of oldestStmt.iterate(limit)) {
      if (row.received_at >= before) break;
      through = row.seq;
      deleted++;
    }
    if (deleted === 0) return { deleted, purgedThrough: horizon() };
    deleteThrough.run(through);
    const purgedThrough = Math.max(horizon(), through);
    setHorizon.run(purgedThrough);
    return { deleted, purgedThrough };
  });
  const revokeStmt = db.prepare<[string, string, number]>(
    `INSERT INTO revocations (kind, value, revoked_at) VALUES (?, ?, ?)
     ON CONFLICT (kind, value) DO UPDATE SET revoked_at = MAX(revoked_at, excluded.revoked_at)`,
  );
  const revokedStmt = db.prepare<[string, string], { t: number }>(
    'SELECT revoked_at AS t FROM revocations WHERE kind = ? AND value = ?',
  );
  const revokedAt = (kind: string, value: string | null) =>
    value === null ? null : (revokedStmt.get(kind, value)?.t ?? null);
  const readAfterTx = db.transaction((sql: string, params: readonly unknown[]): ReplayBatch => ({
    events: rows(sql, params).map(toStoredEvent),
    purgedThrough: horizon(),
  }));

  /** Prepared statements for filter-dependent SQL, least recently used evicted first. */
  const cache = new Map<string, Database.Statement<unknown[], unknown>>();
  function prepared(sql: string): Database.Statement<unknown[], unknown> {
    let stmt = cache.get(sql);
    if (stmt) {
      cache.delete(sql);
    } else {
      stmt = db.prepare<unknown[], unknown>(sql);
      if (cache.size >= STATEMENT_CACHE_SIZE) {
        const oldest = cache.keys().next();
        if (!oldest.done) cache.delete(oldest.value);
      }
    }
    cache.set(sql, stmt);
    return stmt;
  }
  function rows(sql: string, params: readonly unknown[]): EventRow[] {
    return prepared(sql).all(...params) as EventRow[];
  }
  function exists(where: string, params: readonly unknown[]): boolean {
    const row = prepared(`SELECT EXISTS (SELECT 1 FROM events WHERE ${where}) AS e`).get(
      ...params,
    ) as { e: number } | undefined;
    return row?.e === 1;
  }

  /**
   * Why writes fail now (a full disk, a file locked by another process), from the failed write
   * until a write succeeds again; while it is set, {@link EventStore.ping} tries a write.
   */
  let trouble: StoreBlockedError | null = null;
  /** When the last write probe ran, epoch ms. */
  let probedAt = 0;
  function setTrouble(next: StoreBlockedError | null): void {
    if (next === null && trouble !== null) {
      // A probe whose cleanup failed left its table: the write that ended the outage removes it.
      try {
        db.exec(`DROP TABLE IF EXISTS ${PROBE_TABLE}`);
      } catch {
        // Left for the next probe, which drops it first.
      }
    }
    // While the file is locked, writes fail at once instead of each blocking the event loop for
    // the busy timeout: a publish retried caller by caller would otherwise freeze the server.
    const wait = next?.code === 'STORE_BUSY' ? 0 : BUSY_TIMEOUT_MS;
    if ((trouble?.code === 'STORE_BUSY') !== (next?.code === 'STORE_BUSY')) {
      db.pragma(`busy_timeout = ${wait}`);
    }
    trouble = next;
  }

  /**
   * Runs `fn` on the open database, wrapping SQLite errors in a {@link StoreError}, or in a
   * {@link StoreBlockedError} when the disk is full or the file locked. A `write` that
   * succeeds ends such trouble.
   */
  async function run<T>(op: string, fn: () => T, write = false): Promise<T> {
    if (closed) throw new StoreError('[store:sqlite] the store is closed');
    try {
      const result = fn();
      if (write && trouble) setTrouble(null);
      return result;
    } catch (err) {
      if (err instanceof TidingsError) throw err;
      const unavailable = unavailableError(path, op, err);
      if (unavailable) {
        setTrouble(unavailable);
        throw unavailable;
      }
      throw new StoreError(`[store:sqlite] ${op} failed: ${message(err)}`, { cause: err });
    }
  }

  /** A write that needs room in the file and its write lock, without a trace once done. */
  function probeWrite(): void {
    const busy = trouble?.code === 'STORE_BUSY';
    // A readiness check must not wait for a lock: it answers at once.
    if (!busy) db.pragma('busy_timeout = 0');
    try {
      db.exec('BEGIN IMMEDIATE');
      if (!busy) {
        // A table a failed cleanup left goes first: at most one probe's bytes ever stay behind.
        db.exec(
          `DROP TABLE IF EXISTS ${PROBE_TABLE};
           CREATE TABLE ${PROBE_TABLE} (b BLOB);
           INSERT INTO ${PROBE_TABLE} VALUES (zeroblob(${PROBE_BYTES}));`,
        );
      }
      db.exec(busy ? 'ROLLBACK' : 'COMMIT');
      if (!busy) db.exec(`DROP TABLE ${PROBE_TABLE}`);
    } catch (err) {
      if (db.inTransaction) db.exec('ROLLBACK');
      throw err;
    } finally {
      if (!busy) db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    }
  }

  return {
    kind: 'sqlite',

    append(events) {
      return run(
        'append',
        () => (events.length === 0 ? [] : toOutcomes(events, appendTx(events))),
        true,
      );
    },

    getByIds(ids, clauses) {
      return run('getByIds', () => {
        const filter = clausesToSql(clauses, sqliteDialect);
        const found: EventRow[] = [];
        for (const chunk of chunks([...new Set(ids)])) {
          const sql =
            `${SELECT} WHERE id IN (${chunk.map(() => '?').join(', ')}) ` +
            `AND ${filter.sql} ORDER BY seq ASC`;
          found.push(...rows(sql, [...chunk, ...filter.params]));
        }
        return groupByIds(ids, found);
      });
    },

    getChildren(parentIds, clauses) {
      return run('getChildren', () => {
        const groups = new Map<string, StoredEvent[]>();
        const filter = clausesToSql(clauses, sqliteDialect);
        for (const chunk of chunks([...new Set(parentIds)])) {
          const sql =
            `${SELECT} WHERE parent_id IN (${chunk.map(() => '?').join(', ')}) ` +
            `AND ${filter.sql} ORDER BY seq ASC`;
          for (const row of rows(sql, [...chunk, ...filter.params])) {
            const parent = row.parent_id as string;
            let group = groups.get(parent);
            if (!group) groups.set(parent, (group = []));
            group.push(toStoredEvent(row));
          }
        }
        return parentIds.map((id) => [...(groups.get(id) ?? [])]);
      });
    },

    page(query: PageQuery) {
      return run('page', (): Page => {
        const newestFirst = (query.order ?? 'NEWEST_FIRST') === 'NEWEST_FIRST';
        let first = checkCount('first', query.first);
        const last = checkCount('last', query.last);
        if (first === null && last === null) first = 50;
        const afterSeq = query.afterSeq ?? null;
        const beforeSeq = query.beforeSeq ?? null;
        const filter = clausesToSql(query.clauses, sqliteDialect);

        // In `order`: "after" is a smaller seq when newest first, a larger one when oldest first.
        const where = [filter.sql];
        const params: unknown[] = [...filter.params];
        if (afterSeq !== null) {
          where.push(newestFirst ? 'seq < ?' : 'seq > ?');
          params.push(afterSeq);
        }
        if (beforeSeq !== null) {
          where.push(newestFirst ? 'seq > ?' : 'seq < ?');
          params.push(beforeSeq);
        }
        const forward = newestFirst ? 'DESC' : 'ASC';
        const backward = newestFirst ? 'ASC' : 'DESC';
        const base = `${SELECT} WHERE ${where.join(' AND ')}`;

        /** Whether a matching event lies on the far side of (or at) an exclusive bound. */
        const beyond = (bound: number | null, newerSide: boolean): boolean =>
          bound !== null &&
          exists(`${filter.sql} AND seq ${newerSide ? '>=' : '<='} ?`, [...filter.params, bound]);

        let events: EventRow[];
        let hasNextPage: boolean;
        let hasPreviousPage: boolean;
        if (first !== null) {
          events = rows(`${base} ORDER BY seq ${forward} LIMIT ?`, [...params, first + 1]);
          hasNextPage = events.length > first;
          if (hasNextPage) events = events.slice(0, first);
          // Before `after` in `order` is the newer side when newest first.
          hasPreviousPage = beyond(afterSeq, newestFirst);
          if (last !== null && events.length > last) {
            events = events.slice(events.length - last);
            hasPreviousPage = true;
          }
        } else {
          const n = last as number;
          events = rows(`${base} ORDER BY seq ${backward} LIMIT ?`, [...params, n + 1]);
          hasPreviousPage = events.length > n;
          if (hasPreviousPage) events = events.slice(0, n);
          events.reverse();
          // After `before` in `order` is the older side when newest first.
          hasNextPage = beyond(beforeSeq, !newestFirst);
        }
        return { events: events.map(toStoredEvent), hasNextPage, hasPreviousPage };
      });
    },

    readAfter(afterSeq, clauses, limit) {
      return run('readAfter', () => {
        const filter = clausesToSql(clauses, sqliteDialect);
        const sql = `${SELECT} WHERE seq > ? AND ${filter.sql} ORDER BY seq ASC LIMIT ?`;
        return readAfterTx(sql, [afterSeq, ...filter.params, limit]);
      });
    },

    retention: {
      purge(before, limit) {
        return run(
          'purge',
          () => {
            checkCount('limit', limit);
            return purgeTx.immediate(before, limit);
          },
          true,
        );
      },

      purgedThrough() {
        return run('purgedThrough', horizon);
      },
    },

    revocations: {
      revoke({ kind, value, at }) {
        return run(
          'revoke',
          () => {
            revokeStmt.run(kind, value, at);
          },
          true,
        );
      },

      lookup(tokenId, subject) {
        return run('revocations', () => ({
          token: revokedAt('token', tokenId),
          subject: revokedAt('subject', subject),
        }));
      },
    },

    lastSeq() {
      return run('lastSeq', () => lastSeqStmt.get()?.seq ?? 0);
    },

    ping() {
      if (closed || !trouble) return run('ping', () => void pingStmt.get());
      // After a failed write the store answers reads but may still refuse writes: try one, unless
      // one failed a moment ago.
      if (Date.now() - probedAt < PROBE_REUSE_MS) return Promise.reject(trouble);
      probedAt = Date.now();
      return run('ping', probeWrite, true);
    },

    async close() {
      if (closed) return;
      closed = true;
      cache.clear();
      try {
        db.close();
      } catch (err) {
        throw new StoreError(`[store:sqlite] close failed: ${message(err)}`, { cause: err });
      }
    },
  };
}

/** The schema version this Tidings writes: the number of migrations it knows. */
export const SCHEMA_VERSION: number = MIGRATIONS.length;

/**
 * Claims the SQLite file at `path` (which exists: the store opened it) for a server. The claim is
 * a lock on `<file>.lock`, a file beside it that is never removed: an open write transaction
 * (`exclusive`) or read transaction (`shared`) on it, held until {@link StoreClaim.release}. The
 * operating system drops the locks of a process however it ends, `kill -9` included, so a dead
 * server never blocks the next one. `tidings export` and `tidings purge` take no claim.
 * @throws ConfigError when another server holds the file in a mode that excludes `mode`.
 */
export function claimSqlite(path: string, mode: ClaimMode): StoreClaim {
  const lockPath = `${realpathSync(path)}.lock`;
  let lock: Database.Database;
  try {
    lock = new Database(lockPath);
  } catch (err) {
    throw new StoreError(`[store:sqlite] cannot open "${lockPath}": ${message(err)}`, {
      cause: err,
    });
  }
  try {
    // A short wait covers a claim attempt of another server starting at the same moment.
    lock.pragma('busy_timeout = 1000');
    if (mode === 'exclusive') {
      lock.exec('BEGIN EXCLUSIVE');
    } else {
      lock.exec('BEGIN');
      lock.prepare('SELECT COUNT(*) FROM sqlite_master').get();
    }
  } catch (err) {
    lock.close();
    const code = (err as { code?: unknown } | null)?.code;
    if (typeof code !== 'string' || !code.startsWith('SQLITE_BUSY')) {
      throw new StoreError(`[store:sqlite] cannot lock "${lockPath}": ${message(err)}`, {
        cause: err,
      });
    }
    throw new ConfigError(
      mode === 'exclusive'
        ? `[store:sqlite] another Tidings server is running on "${path}": with TIDINGS_BUS=memory ` +
            'a server must be alone on its store, or each would deliver only its own publishes. ' +
            'Stop the other server, give this one a store of its own (TIDINGS_STORE), or run ' +
            'every server on the store with the same TIDINGS_BUS=redis://…'
        : `[store:sqlite] a Tidings server with TIDINGS_BUS=memory is running on "${path}" and ` +
            'would not hear the events of this one: restart it with the same TIDINGS_BUS as ' +
            'this server, or give this one a store of its own (TIDINGS_STORE)',
      { cause: err },
    );
  }
  let released = false;
  return {
    check() {},
    async release() {
      if (released) return;
      released = true;
      lock.close();
    },
  };
}
