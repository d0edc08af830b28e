import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, ConflictError, StoreError } from '../../src/errors.js';
import { compileFilter } from '../../src/events/filter.js';
import { clausesToSql } from '../../src/store/sql-filter.js';
import { SEE_EVERYTHING } from '../../src/events/types.js';
import { validateEventInput } from '../../src/events/validate.js';
import type { NewEvent } from '../../src/events/types.js';
import { createStore } from '../../src/store/index.js';
import { createSqliteStore, SCHEMA_VERSION, sqliteDialect } from '../../src/store/sqlite.js';
import { testEventStore, byIds } from './contract.js';

const root = mkdtempSync(join(tmpdir(), 'tidings-sqlite-test-'));
let counter = 0;
/** A path to a database file that does not exist yet. */
const freshPath = (dir = 'db') => join(root, `${dir}-${++counter}`, 'events.db');

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

/** The indexes of the sparse columns, partial since schema version 2. */
const SPARSE_INDEXES = [
  'events_action_seq',
  'events_actor_seq',
  'events_category_seq',
  'events_correlation_id_seq',
  'events_parent_id_seq',
  'events_resource_seq',
  'events_source_seq',
];

const ev = (id: string, extra: Record<string, unknown> = {}): NewEvent =>
  validateEventInput({ id, type: 'test.event', ...extra });

testEventStore('sqlite :memory:', async () => createSqliteStore({ path: ':memory:' }));
testEventStore('sqlite file', async () => createSqliteStore({ path: freshPath() }));
// The core alone: what a backend without the optional capabilities must still do.
testEventStore(
  'sqlite core only',
  async () => ({
    ...createSqliteStore({ path: ':memory:' }),
    retention: undefined,
    revocations: undefined,
  }),
  { capabilities: [] },
);

describe('sqlite store', () => {
  it('should keep events across close and reopen, continuing the sequence without re-running migrations', async () => {
    const path = freshPath();
    const first = createSqliteStore({ path });
    const [a] = await first.append([ev('a', { body: { x: 1 } })]);
    await first.close();

    const inspect = new Database(path, { readonly: true });
    const migrations = inspect.prepare('SELECT version, applied_at FROM schema_migrations').all();
    inspect.close();
    expect(migrations).toHaveLength(SCHEMA_VERSION);

    const second = createSqliteStore({ path });
    try {
      expect(await byIds(second, ['a'])).toEqual([a?.event]);
      expect(await second.lastSeq()).toBe(a?.event.seq);
      const [b] = await second.append([ev('b')]);
      expect(b?.event.seq).toBeGreaterThan(a?.event.seq as number);
      const [retry] = await second.append([ev('a', { body: { x: 1 } })]);
      expect(retry).toEqual({ event: a?.event, created: false });
    } finally {
      await second.close();
    }
    const again = new Database(path, { readonly: true });
    expect(again.prepare('SELECT version, applied_at FROM schema_migrations').all()).toEqual(
      migrations,
    );
    again.close();
  });

  it('should never reuse a sequence, even after the newest event was deleted', async () => {
    const path = freshPath();
    const store = createSqliteStore({ path });
    const [, b] = await store.append([ev('a'), ev('b')]);
    const side = new Database(path);
    side.prepare("DELETE FROM events WHERE id = 'b'").run();
    side.close();
    const [c] = await store.append([ev('c')]);
    expect(c?.event.seq).toBeGreaterThan(b?.event.seq as number);
    await store.close();
  });

  it('should not burn a sequence on a retry or a rolled-back batch', async () => {
    const store = createSqliteStore({ path: ':memory:' });
    const [a] = await store.append([ev('a')]);
    await store.append([ev('a')]);
    await expect(store.append([ev('b'), ev('a', { message: 'x' })])).rejects.toThrow(ConflictError);
    const [b] = await store.append([ev('b')]);
    expect(b?.event.seq).toBe((a?.event.seq as number) + 1);
    expect(await store.lastSeq()).toBe(b?.event.seq);
    await store.close();
  });

  it.each([':memory:', 'file'])(
    'should give every event of a large batch the sequence it is stored with (%s)',
    async (kind) => {
      const store = createSqliteStore({ path: kind === 'file' ? freshPath() : ':memory:' });
      try {
        await store.append(Array.from({ length: 10 }, (_, i) => ev(`old${i}`)));
        // 137 events: new ones (more than two statements' worth), retries of stored events, and
        // ids given twice within the batch.
        const batch: NewEvent[] = [];
        for (let i = 0; i < 130; i++) {
          batch.push(ev(`new${i}`, { message: String(i) }));
          if (i === 3 || i === 77) batch.push(ev(`old${i % 10}`));
          if (i === 60 || i === 128) batch.push(ev(`new${i - 10}`, { message: String(i - 10) }));
        }
        batch.push(ev('new129', { message: '129' }), ev('old9'), ev('new0', { message: '0' }));
        const outcomes = await store.append(batch);

        expect(outcomes.map((o) => o.event.id)).toEqual(batch.map((e) => e.id));
        const created = outcomes.filter((o) => o.created).map((o) => o.event.seq);
        expect(created).toEqual(Array.from({ length: 130 }, (_, i) => 11 + i));
        const read = await byIds(
          store,
          batch.map((e) => e.id),
        );
        expect(outcomes.map((o) => o.event)).toEqual(read);
        expect(outcomes.filter((o) => !o.created).map((o) => o.event.id)).toEqual([
          'old3',
          'new50',
          'old7',
          'new118',
          'new129',
          'old9',
          'new0',
        ]);
        expect(await store.lastSeq()).toBe(140);

        // A conflict anywhere stores nothing of the batch and burns no sequence.
        const conflicting = Array.from({ length: 120 }, (_, i) => ev(`more${i}`));
        conflicting.push(ev('new5', { message: 'other' }));
        await expect(store.append(conflicting)).rejects.toThrow(ConflictError);
        expect(await byIds(store, ['more0', 'more119'])).toEqual([null, null]);
        const [next] = await store.append([ev('after')]);
        expect(next?.event.seq).toBe(141);
      } finally {
        await store.close();
      }
    },
  );

  it('should use the WAL journal for a file', async () => {
    const path = freshPath();
    await createSqliteStore({ path }).close();
    const db = new Database(path, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
  });

  it('should create the missing parent directories of the file', async () => {
    const path = join(root, 'deep', 'er', 'still', 'events.db');
    expect(existsSync(join(root, 'deep'))).toBe(false);
    const store = createSqliteStore({ path });
    await store.append([ev('a')]);
    await store.close();
    expect(existsSync(path)).toBe(true);
  });

  it('should refuse to open a file that is not a SQLite database with a StoreError', () => {
    const path = join(root, 'not-a-db.db');
    writeFileSync(path, 'this is not a database, just some text that is long enough'.repeat(20));
    expect(() => createSqliteStore({ path })).toThrow(StoreError);
    expect(() => createSqliteStore({ path })).toThrow(/\[store:sqlite\] cannot open/);
  });

  it('should refuse a database migrated by a newer version with a StoreError', async () => {
    const path = freshPath();
    await createSqliteStore({ path }).close();
    const db = new Database(path);
    db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(
      SCHEMA_VERSION + 1,
      0,
    );
    db.close();
    expect(() => createSqliteStore({ path })).toThrow(/newer than this Tidings supports/);
  });

  it('should wrap a SQLite failure during append in a StoreError with its cause', async () => {
    const path = freshPath();
    const store = createSqliteStore({ path });
    const side = new Database(path);
    side.exec('DROP TABLE events');
    side.close();
    const attempt = store.append([ev('a')]);
    await expect(attempt).rejects.toBeInstanceOf(StoreError);
    await expect(attempt).rejects.toMatchObject({
      message: expect.stringMatching(/^\[store:sqlite\] append failed: /),
      cause: expect.any(Error),
      expose: false,
    });
    await store.close();
  });

  it('should reject a negative page size', async () => {
    const store = createSqliteStore({ path: ':memory:' });
    await expect(store.page({ clauses: [], order: 'NEWEST_FIRST', first: -1 })).rejects.toThrow(
      /first must be/,
    );
    await store.close();
  });

  it('should index the sparse columns only where they have a value, and still use those indexes', async () => {
    const path = freshPath();
    await createSqliteStore({ path }).close();
    const db = new Database(path, { readonly: true });
    try {
      const indexes = db
        .prepare<[], { name: string; sql: string }>(
          "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL",
        )
        .all();
      const partial = indexes.filter((i) => /WHERE \w+ IS NOT NULL/.test(i.sql)).map((i) => i.name);
      expect(partial.sort()).toEqual(SPARSE_INDEXES);
      for (const [filter, index] of [
        [{ categories: ['a', 'b*'] }, 'events_category_seq'],
        [{ actions: ['a'] }, 'events_action_seq'],
        [{ resourceType: 'vm', resourceId: 'x' }, 'events_resource_seq'],
        [{ actor: 'u' }, 'events_actor_seq'],
        [{ source: 's' }, 'events_source_seq'],
        [{ correlationId: 'c' }, 'events_correlation_id_seq'],
        [{ parentId: 'p' }, 'events_parent_id_seq'],
      ] as const) {
        const where = clausesToSql(compileFilter(filter, SEE_EVERYTHING), sqliteDialect);
        const plan = db
          .prepare<unknown[], { detail: string }>(
            `EXPLAIN QUERY PLAN SELECT * FROM events WHERE ${where.sql} AND seq < ? ORDER BY seq DESC LIMIT 10`,
          )
          .all(...where.params, 100)
          .map((r) => r.detail)
          .join(' | ');
        expect(plan).toContain(index);
      }
    } finally {
      db.close();
    }
  });

  it('should migrate a version 1 database to partial indexes, keeping its events', async () => {
    const path = freshPath();
    const first = createSqliteStore({ path });
    await first.append([ev('a', { category: 'c1', actor: 'u1' }), ev('b')]);
    await first.close();
    // Back to version 1: its whole indexes, no retention table, no record of later migrations.
    const db = new Database(path);
    for (const name of SPARSE_INDEXES) db.exec(`DROP INDEX ${name}`);
    db.exec(`
      CREATE INDEX events_category_seq       ON events (category, seq);
      CREATE INDEX events_action_seq         ON events (action, seq);
      CREATE INDEX events_resource_seq       ON events (resource_type, resource_id, seq);
      CREATE INDEX events_actor_seq          ON events (actor, seq);
      CREATE INDEX events_source_seq         ON events (source, seq);
      CREATE INDEX events_correlation_id_seq ON events (correlation_id, seq);
      CREATE INDEX events_parent_id_seq      ON events (parent_id, seq);
      DROP TABLE retention;
      DROP TABLE revocations;
      DELETE FROM schema_migrations WHERE version > 1;
    `);
    db.close();

    const store = createSqliteStore({ path });
    try {
      const page = await store.page({
        clauses: compileFilter({ categories: ['c1'], actor: 'u1' }, SEE_EVERYTHING),
        first: 10,
      });
      expect(page.events.map((e) => e.id)).toEqual(['a']);
      expect(await store.lastSeq()).toBe(2);
    } finally {
      await store.close();
    }
    const migrated = new Database(path, { readonly: true });
    const versions = migrated.prepare('SELECT version FROM schema_migrations').pluck().all();
    const sql = migrated
      .prepare("SELECT sql FROM sqlite_master WHERE name = 'events_category_seq'")
      .pluck()
      .get();
    migrated.close();
    expect(versions).toEqual(Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1));
    expect(sql).toMatch(/WHERE category IS NOT NULL/);
  });

  it('should migrate a version 4 database to ids scoped by inbox, keeping events, indexes and the sequence', async () => {
    const path = freshPath();
    const first = createSqliteStore({ path });
    const [a, , c] = await first.append([
      ev('a', { inbox: 'alice', message: 'm' }),
      ev('b', { category: 'c1' }),
      ev('c'),
    ]);
    await first.close();
    // Back to version 4: the id unique on its own; the newest event gone, so the AUTOINCREMENT
    // counter is past the last row (as after a purge).
    const db = new Database(path);
    const create = db
      .prepare("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'events'")
      .pluck()
      .get() as string;
    db.exec(`
      DELETE FROM events WHERE id = 'c';
      ${create
        .replace(/^CREATE TABLE "?events"?/, 'CREATE TABLE events_v4')
        .replace(/,\s*UNIQUE \(id, inbox\)/, '')
        .replace(/id(\s+)TEXT(\s+)NOT NULL/, 'id$1TEXT$2NOT NULL UNIQUE')};
      INSERT INTO events_v4 SELECT * FROM events;
      DELETE FROM sqlite_sequence WHERE name = 'events_v4';
      UPDATE sqlite_sequence SET name = 'events_v4' WHERE name = 'events';
      DROP TABLE events;
      ALTER TABLE events_v4 RENAME TO events;
      DELETE FROM schema_migrations WHERE version > 4;
    `);
    expect(() =>
      db.exec(`INSERT INTO events (id, type, inbox, ts, received_at, severity, fingerprint)
               VALUES ('a', 't', 'bob', 0, 0, 'INFO', 'f')`),
    ).toThrow(/UNIQUE constraint failed: events.id/);
    db.close();

    const store = createSqliteStore({ path });
    try {
      expect(await byIds(store, ['a', 'c'])).toEqual([a?.event, null]);
      const [bobs] = await store.append([ev('a', { inbox: 'bob', message: 'other' })]);
      expect(bobs).toMatchObject({ created: true, event: { inbox: 'bob' } });
      // Never the sequence of the removed event again.
      expect(bobs?.event.seq).toBe((c?.event.seq as number) + 1);
      const [retry] = await store.append([ev('a', { inbox: 'alice', message: 'm' })]);
      expect(retry).toEqual({ event: a?.event, created: false });
      const page = await store.page({
        clauses: compileFilter({ categories: ['c1'] }, SEE_EVERYTHING),
        first: 10,
      });
      expect(page.events.map((e) => e.id)).toEqual(['b']);
    } finally {
      await store.close();
    }
    const migrated = new Database(path, { readonly: true });
    const versions = migrated.prepare('SELECT version FROM schema_migrations').pluck().all();
    const indexes = migrated
      .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'")
      .pluck()
      .all() as string[];
    migrated.close();
    expect(versions).toEqual(Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1));
    expect(indexes).toEqual(
      expect.arrayContaining([...SPARSE_INDEXES, 'events_inbox_seq', 'events_ts_seq']),
    );
  });

  it('should escape GLOB wildcards in prefixes by wrapping them in brackets', () => {
    const params: string[] = [];
    const sql = sqliteDialect.startsWith('category', 'a*b?c[d]', (v) => {
      params.push(v);
      return '?';
    });
    expect(sql).toBe('category GLOB ?');
    expect(params).toEqual(['a[*]b[?]c[[]d]*']);
    expect(sqliteDialect.column('timestamp')).toBe('ts');
    expect(sqliteDialect.column('resourceType')).toBe('resource_type');
    expect(sqliteDialect.placeholder(3)).toBe('?');
  });
});

describe('createStore', () => {
  it('should open an in-memory SQLite store for sqlite::memory:', async () => {
    const store = await createStore('sqlite::memory:');
    expect(store.kind).toBe('sqlite');
    await store.append([ev('a')]);
    expect(await store.lastSeq()).toBe(1);
    await store.close();
  });

  it('should open a SQLite file given an absolute path', async () => {
    const path = freshPath();
    for (const url of [`sqlite:${path}`, `sqlite://${path}`]) {
      const store = await createStore(url);
      await store.ping();
      await store.close();
    }
    expect(existsSync(path)).toBe(true);
  });

  it('should open a SQLite file given a path relative to the working directory', async () => {
    const path = freshPath();
    const rel = relative(process.cwd(), path);
    const store = await createStore(`sqlite:${rel.startsWith('.') ? rel : `./${rel}`}`);
    await store.close();
    expect(existsSync(path)).toBe(true);
  });

  it.each(['mysql://localhost/x', 'events.db', '', 'sqlite:', 'memory:'])(
    'should reject the unsupported URL "%s" with a ConfigError',
    async (url) => {
      const attempt = createStore(url);
      await expect(attempt).rejects.toBeInstanceOf(ConfigError);
      await expect(attempt).rejects.toThrow(
        `TIDINGS_STORE: unsupported store URL "${url}": use sqlite:<path>, sqlite::memory: or ` +
          'postgres://user:password@host:5432/database',
      );
    },
  );
});
