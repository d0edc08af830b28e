/**
 * One store, one bus: a server on the memory bus hears only its own publishes, so it must be alone
 * on its store. Real `tidings serve` processes on real SQLite files and on the machine's
 * PostgreSQL (a schema of their own): a second server is refused at start (exit 2) with a message
 * that says what to do, a `kill -9`ed server's claim goes with it, servers on a shared bus share a
 * store, and `tidings export` / `tidings purge` work beside a running server.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { lockKeys } from '../../src/store/postgres-schema.js';
import { tcli } from '../cli/tcli.js';
import { tserver } from '../tserver.js';
import {
  cleanupProcesses,
  publish,
  readAll,
  startTidings,
  pause,
  tempStore,
  within,
} from './tprocess.js';

const PG = process.env.TIDINGS_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS = process.env.TIDINGS_TEST_REDIS ?? 'redis://127.0.0.1:6379';
const schemas: string[] = [];
const newSchema = () => {
  const schema = `tidings_claim_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  schemas.push(schema);
  return schema;
};

afterEach(() => cleanupProcesses());
afterAll(async () => {
  const client = new pg.Client({ connectionString: PG });
  await client.connect();
  for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
});

/** Runs `tidings serve` on `store` and expects it to refuse to start: its exit code and stderr. */
async function refusedServe(store: string, env: Record<string, string> = {}) {
  const p = tcli(['serve', '--port', '0', '--host', '127.0.0.1', '--store', store], env);
  const code = await within(p.exited, 30_000, 'the refused server to exit');
  return { code, stderr: p.stderr(), stdout: p.stdout() };
}

const event = (i: number) => ({
  id: randomUUID(),
  type: `claim.${i}`,
  inbox: 'claim',
  message: `event ${i}`,
  body: { i },
});

describe('a second server on one SQLite file', () => {
  it('should be refused at start with exit 2 and what to do, and a server should start on the file once the first one is killed with -9', async () => {
    const { file } = tempStore();
    const first = await startTidings({ file });
    const { acked } = await publish(first.url, [event(1), event(2)]);
    expect(acked).toHaveLength(2);

    const second = await refusedServe(`sqlite:${file}`);
    expect(second.code).toBe(2);
    expect(second.stderr).toContain('another Tidings server is running on');
    expect(second.stderr).toContain('TIDINGS_BUS=redis://');
    expect(second.stdout).not.toContain('listening');

    // The first server still serves, untouched by the attempt.
    expect((await fetch(`${first.url}/readyz`)).status).toBe(200);

    await first.kill('SIGKILL');
    const next = await startTidings({ file });
    expect((await readAll(next.url)).map((e) => e.id)).toEqual(acked?.map((e) => e.id));
    expect((await publish(next.url, [event(3)])).acked).toHaveLength(1);
  }, 180_000);

  it('should let tidings export and tidings purge work on the file while the server runs', async () => {
    const { file } = tempStore();
    const server = await startTidings({ file });
    const { acked } = await publish(server.url, [event(1), event(2), event(3)]);
    expect(acked).toHaveLength(3);
    const before = new Date(Date.now() + 60_000).toISOString();

    const exported = tcli(['export', '--store', `sqlite:${file}`, '--before', before]);
    expect(await within(exported.exited, 30_000, 'export')).toBe(0);
    const lines = exported
      .stdout()
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { id: string }).id);
    expect(lines).toEqual(acked?.map((e) => e.id));

    const purged = tcli(['purge', '--store', `sqlite:${file}`, '--before', before]);
    expect(await within(purged.exited, 30_000, 'purge')).toBe(0);
    expect(purged.stdout()).toContain('purged 3 events');

    // The server goes on: its history starts after the purge, and it takes new events.
    expect(await readAll(server.url)).toEqual([]);
    const later = await publish(server.url, [event(4)]);
    expect(later.acked).toHaveLength(1);
    expect((await readAll(server.url)).map((e) => e.id)).toEqual(later.acked?.map((e) => e.id));
  }, 180_000);
});

describe('servers on one PostgreSQL schema', () => {
  /** Whether the claim of `schema` is free: the test takes it for a moment, then lets go. */
  async function claimFree(schema: string): Promise<boolean> {
    const client = new pg.Client({ connectionString: PG });
    await client.connect();
    try {
      const { rows } = await client.query<{ free: boolean }>(
        'SELECT pg_try_advisory_lock($1, $2) AS free',
        lockKeys('instance', schema),
      );
      if (rows[0]?.free) {
        await client.query('SELECT pg_advisory_unlock($1, $2)', lockKeys('instance', schema));
      }
      return rows[0]?.free === true;
    } finally {
      await client.end();
    }
  }

  it('should refuse a second server on the memory bus with exit 2 and what to do, and start one once the first is killed with -9', async () => {
    const schema = newSchema();
    const store = `${PG}?schema=${schema}`;
    const first = await startTidings({ store });
    const { acked } = await publish(first.url, [event(1)]);
    expect(acked).toHaveLength(1);

    const second = await refusedServe(store);
    expect(second.code).toBe(2);
    expect(second.stderr).toContain(`another Tidings server uses schema "${schema}"`);
    expect(second.stderr).toContain('TIDINGS_BUS=redis://');

    await first.kill('SIGKILL');
    // The claim goes with the dead server's connection, once PostgreSQL has seen it close.
    const deadline = Date.now() + 30_000;
    while (!(await claimFree(schema))) {
      if (Date.now() > deadline) throw new Error('the dead server still holds the schema');
      await pause(100);
    }
    const next = await startTidings({ store });
    expect((await readAll(next.url)).map((e) => e.id)).toEqual(acked?.map((e) => e.id));
  }, 180_000);

  it('should survive the connection holding its claim being cut, and take the claim again', async () => {
    const schema = newSchema();
    const server = await tserver({ store: `${PG}?schema=${schema}` });
    const admin = new pg.Client({ connectionString: PG });
    await admin.connect();
    try {
      const holders = async () =>
        (
          await admin.query<{ pid: number }>(
            `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2
               AND classid = $1::bigint::oid AND objid = ($2::bigint & 4294967295)::oid`,
            lockKeys('instance', schema),
          )
        ).rows.map((r) => r.pid);
      const [first] = await holders();
      expect(first).toBeDefined();
      await admin.query('SELECT pg_terminate_backend($1)', [first]);
      const deadline = Date.now() + 30_000;
      let now = await holders();
      while (now.length !== 1 || now[0] === first) {
        if (Date.now() > deadline) throw new Error(`the claim was not taken again: ${now}`);
        await pause(100);
        now = await holders();
      }
      expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
      expect((await publish(server.url, [event(1)])).acked).toHaveLength(1);
    } finally {
      await admin.end();
      await server.stop();
    }
  }, 60_000);

  it('should let servers on a shared bus share a schema, and refuse a memory-bus server beside them, or them beside one', async () => {
    const shared = newSchema();
    const env = { TIDINGS_BUS: `${REDIS}?channel=${shared}` };
    const a = await startTidings({ store: `${PG}?schema=${shared}`, env });
    const b = await startTidings({ store: `${PG}?schema=${shared}`, env });
    const [onA] = (await publish(a.url, [event(1)])).acked ?? [];
    const [onB] = (await publish(b.url, [event(2)])).acked ?? [];
    expect((await readAll(a.url)).map((e) => e.id)).toEqual([onA?.id, onB?.id]);
    const memory = await refusedServe(`${PG}?schema=${shared}`);
    expect(memory.code).toBe(2);
    expect(memory.stderr).toContain('TIDINGS_BUS=redis://');

    const alone = newSchema();
    await startTidings({ store: `${PG}?schema=${alone}` });
    const beside = await refusedServe(`${PG}?schema=${alone}`, env);
    expect(beside.code).toBe(2);
    expect(beside.stderr).toContain(
      `a Tidings server with TIDINGS_BUS=memory uses schema "${alone}"`,
    );
  }, 180_000);
});
