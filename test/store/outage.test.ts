/**
 * A SQLite store that cannot take writes, through a real server over HTTP: a full disk (made with
 * `PRAGMA max_page_count` on the server's own connection, which fails writes with SQLITE_FULL
 * exactly as a full disk does) and a file locked by another connection. The publisher is told
 * the cause and what to do, `/readyz` says 503 with the reason, a system event reports it, and
 * the server recovers by itself once the cause is gone.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSqliteStore } from '../../src/store/sqlite.js';
import { tserver, type TServer } from '../tserver.js';

const PUBLISH = `mutation ($e: PublishEventInput!) { publishEvent(input: $e) { id cursor } }`;
const SYSTEM = `{ events(filter: { inboxes: ["system"] }, first: 50, order: OLDEST_FIRST) {
  nodes { type severity timestamp message body }
} }`;
const STORED = `{ events(filter: { inboxes: ["disk"] }, first: 50) { nodes { id } } }`;

interface SystemEvent {
  type: string;
  severity: string;
  timestamp: string;
  message: string;
  body: Record<string, unknown>;
}

let dir: string;
let path: string;
/** The server's own connection to the file. */
let conn: Database.Database | undefined;
let server: TServer | undefined;
/** Write probes the store made. */
let probes = 0;
/** Counts the write probes run on the server's connection `db`, by the SQL they run. */
function countProbes(db: Database.Database): Database.Database {
  const exec = db.exec.bind(db);
  db.exec = (sql: string) => {
    if (sql.includes('INSERT INTO tidings_write_probe')) probes++;
    return exec(sql);
  };
  return db;
}
beforeEach(async () => {
  probes = 0;
  dir = mkdtempSync(join(tmpdir(), 'tidings-outage-'));
  path = join(dir, 'events.db');
  const store = createSqliteStore({ path, onOpen: (db) => (conn = countProbes(db)) });
  server = await tserver({}, { store });
});
afterEach(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const s = () => server as TServer;
/** A publish with a body large enough to need new pages of the file. */
const publishBig = (id: string) =>
  s().gql<{ publishEvent: { id: string } }>(PUBLISH, {
    e: { id, type: 'disk.big', inbox: 'disk', body: { pad: 'x'.repeat(100_000) } },
  });
const readyz = async () => {
  const res = await fetch(`${s().url}/readyz`);
  return { status: res.status, body: (await res.json()) as { status: string; reason?: string } };
};
const systemEvents = async () =>
  (await s().gql<{ events: { nodes: SystemEvent[] } }>(SYSTEM)).data?.events.nodes ?? [];

/** Waits until `/readyz` answers 200 again (the server recovers by itself). */
async function waitReady(): Promise<void> {
  let ready = false;
  const deadline = Date.now() + 30_000;
  while (!ready) {
    if (Date.now() > deadline)
      throw new Error(`still not ready: ${JSON.stringify(await readyz())}`);
    ready = (await readyz()).status === 200;
    if (!ready) await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until the system inbox holds the outage report and the recovery, and returns them. */
async function waitRecoveryEvents(outage: string): Promise<SystemEvent[]> {
  let events: SystemEvent[] = [];
  const deadline = Date.now() + 30_000;
  while (!events.some((e) => e.type === 'tidings.store.recovered')) {
    if (Date.now() > deadline) throw new Error(`no recovery event: ${JSON.stringify(events)}`);
    await new Promise((r) => setTimeout(r, 100));
    events = await systemEvents();
  }
  const types = events.map((e) => e.type);
  expect(types.filter((t) => t === outage)).toHaveLength(1);
  expect(types.indexOf(outage)).toBeLessThan(types.indexOf('tidings.store.recovered'));
  return events;
}

describe('a full disk', () => {
  it('should tell the publisher STORE_FULL and what to do, flip /readyz with the reason, report it, and recover by itself when there is room', async () => {
    expect((await publishBig('before')).data?.publishEvent.id).toBe('before');
    const db = conn as Database.Database;
    db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true }) as number}`);

    for (const id of ['full-1', 'full-2']) {
      const refused = await publishBig(id);
      expect(refused.data ?? null).toBeNull();
      expect(refused.errors?.[0]?.extensions?.code).toBe('STORE_FULL');
      expect(refused.errors?.[0]?.message).toMatch(/disk of the event store is full, nothing was/);
      expect(refused.errors?.[0]?.message).toContain('free space on that disk');
      // The file's path is for operators only.
      expect(JSON.stringify(refused.errors)).not.toContain(dir);
    }
    const down = await readyz();
    expect(down.status).toBe(503);
    expect(down.body.reason).toContain(`disk holding "${path}" is full`);
    // Reads still work, and nothing of the refused publishes was stored.
    const stored = await s().gql<{ events: { nodes: { id: string }[] } }>(STORED);
    expect(stored.data?.events.nodes.map((e) => e.id)).toEqual(['before']);

    db.pragma('max_page_count = 1073741823');
    await waitReady();
    expect((await publishBig('after')).data?.publishEvent.id).toBe('after');
    const events = await waitRecoveryEvents('tidings.store.full');
    const full = events.find((e) => e.type === 'tidings.store.full') as SystemEvent;
    const recovered = events.find((e) => e.type === 'tidings.store.recovered') as SystemEvent;
    expect(full).toMatchObject({ severity: 'ERROR', body: { code: 'STORE_FULL' } });
    expect(full.message).toContain(`disk holding "${path}" is full`);
    expect(recovered).toMatchObject({
      severity: 'SUCCESS',
      body: { code: 'STORE_FULL', failedPublishes: 2 },
    });
    // The report bears the time of the outage, even when it could only be stored afterwards.
    expect(Date.parse(full.timestamp)).toBeLessThanOrEqual(Date.parse(recovered.timestamp));
  }, 60_000);
});

describe('readiness checks during an outage', () => {
  it('should try a write at most about once a second however many /readyz come, and leave no probe table behind', async () => {
    expect((await publishBig('before')).data?.publishEvent.id).toBe('before');
    const db = conn as Database.Database;
    db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true }) as number}`);
    // The second publish meets the disk filled by the report of the first.
    for (const id of ['full-1', 'full-2']) {
      expect((await publishBig(id)).errors?.[0]?.extensions?.code).toBe('STORE_FULL');
    }

    const started = Date.now();
    const before = probes;
    for (let round = 0; round < 10; round++) {
      const answers = await Promise.all(Array.from({ length: 20 }, () => readyz()));
      for (const answer of answers) expect(answer.status).toBe(503);
    }
    const seconds = (Date.now() - started) / 1000;
    // The outage watch and the readiness checks share the probe: one a second, and the second
    // that had begun.
    expect(probes - before).toBeLessThanOrEqual(Math.ceil(seconds) + 1);

    db.pragma('max_page_count = 1073741823');
    await waitReady();
    const left = db
      .prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'tidings_write_probe'")
      .get() as { n: number };
    expect(left.n).toBe(0);
  }, 60_000);
});

describe('a locked file', () => {
  it('should tell the publisher STORE_BUSY and what to do, flip /readyz with the reason, report it, and recover by itself once the lock is gone', async () => {
    const holder = new Database(path);
    try {
      holder.exec('BEGIN EXCLUSIVE');
      // Written inside the lock, so it holds the write lock of the file.
      holder.exec('CREATE TABLE held (x)');
      for (const id of ['busy-1', 'busy-2']) {
        const refused = await publishBig(id);
        expect(refused.errors?.[0]?.extensions?.code).toBe('STORE_BUSY');
        expect(refused.errors?.[0]?.message).toMatch(
          /another process holds the event store locked/,
        );
        expect(JSON.stringify(refused.errors)).not.toContain(dir);
        expect(JSON.stringify(refused.errors)).not.toContain('fuser');
      }
      const down = await readyz();
      expect(down.status).toBe(503);
      expect(down.body.reason).toContain(`\`fuser ${path}\` names it`);
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
    await waitReady();
    expect((await publishBig('after')).data?.publishEvent.id).toBe('after');
    const events = await waitRecoveryEvents('tidings.store.busy');
    expect(events.find((e) => e.type === 'tidings.store.recovered')).toMatchObject({
      body: { code: 'STORE_BUSY', failedPublishes: 2 },
    });
  }, 60_000);
});
