/**
 * A stalled PostgreSQL (connections open, nothing coming through), made by a TCP proxy in front of
 * the machine's server: a publish answers STORE_UNAVAILABLE within the store's deadline, /readyz
 * answers 503 within 2 s, and once the stall ends every event is delivered once and a retry with
 * the same ids stores nothing twice, even when the timed-out append had committed.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { bearer, hs256, JWT_CONFIG } from '../auth/tokens.js';
import { within } from '../process/tprocess.js';
import { eventually, expectUnready, tproxy, treadyz, type TProxy } from '../tproxy.js';
import { tserver, type TServer } from '../tserver.js';
import { eventsOf, streams } from '../transport/helpers.js';

const PG = process.env.TIDINGS_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
/** The deadline of every store call in these tests, ms. */
const TIMEOUT_MS = 1_000;
/** What a loaded machine may add to a deadline before the answer arrives, ms. */
const MARGIN_MS = 2_500;

const schema = `tidings_stall_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
let proxy: TProxy;
let s: TServer;
let storeUrl: string;
const subs = streams(() => s);

beforeAll(async () => {
  proxy = await tproxy(PG);
  const store = new URL(proxy.via(PG));
  store.searchParams.set('schema', schema);
  storeUrl = store.toString();
  s = await tserver({ store: storeUrl, storeTimeoutMs: TIMEOUT_MS });
});
afterEach(async () => {
  proxy.resume();
  await subs.cleanup();
});
afterAll(async () => {
  await s?.stop();
  await proxy?.close();
  const admin = new pg.Client({ connectionString: PG });
  await admin.connect();
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin.query(`DROP SCHEMA IF EXISTS ${schema}_jwt CASCADE`);
  await admin.end();
});

const PUBLISH = `mutation($events: [PublishEventInput!]!) {
  publishEvents(inputs: $events) { id cursor }
}`;

interface Published {
  data?: { publishEvents: { id: string; cursor: string }[] } | null;
  errors?: { message: string; extensions?: { code?: string; ids?: string[] } }[];
}

/** Publishes `events` over HTTP; resolves with the answer and how long it took, ms. */
async function publish(events: object[]): Promise<Published & { ms: number }> {
  const started = Date.now();
  const body = (await s.gql(PUBLISH, { events })) as Published;
  return { ...body, ms: Date.now() - started };
}

/** The ids of every stored event, oldest first. */
async function storedIds(): Promise<string[]> {
  const found = await s.app.store.page({ clauses: [], first: 500, order: 'OLDEST_FIRST' });
  return found.events.map((e) => e.id);
}

/** How many events with each of `ids` are stored. */
async function storedCount(ids: string[]): Promise<number[]> {
  const stored = await storedIds();
  return ids.map((id) => stored.filter((e) => e === id).length);
}

describe('a stalled PostgreSQL', () => {
  it('should answer publishes STORE_UNAVAILABLE within the deadline and /readyz 503 within 2 s, then store and deliver every event once after the stall', async () => {
    const sub = await subs.open(s.client(), { inboxes: ['stall'] });
    const before = await publish([{ id: 'before', type: 'stall.before', inbox: 'stall' }]);
    expect(before.errors).toBeUndefined();

    proxy.stall();
    // One publish with an id of its own, one batch whose ids the server generates.
    const [given, generated] = await within(
      Promise.all([
        publish([{ id: 'during', type: 'stall.during', inbox: 'stall' }]),
        publish([
          { type: 'stall.batch', inbox: 'stall' },
          { type: 'stall.batch', inbox: 'stall' },
        ]),
      ]),
      TIMEOUT_MS + MARGIN_MS,
      'the publishes during the stall',
    );
    for (const answer of [given, generated]) {
      expect(answer.ms).toBeLessThan(TIMEOUT_MS + MARGIN_MS);
      expect(answer.errors?.[0]?.extensions?.code).toBe('STORE_UNAVAILABLE');
      expect(answer.errors?.[0]?.message).toMatch(/send them again with the same ids/);
    }
    expect(given.errors?.[0]?.extensions?.ids).toEqual(['during']);
    const batchIds = generated.errors?.[0]?.extensions?.ids ?? [];
    expect(batchIds).toHaveLength(2);

    await expectUnready(s.url, /store:postgres/);

    proxy.resume();
    // The same events again, with the same ids (whether or not they were stored meanwhile).
    const retried = await publish([{ id: 'during', type: 'stall.during', inbox: 'stall' }]);
    const batch = await publish(
      batchIds.map((id) => ({ id, type: 'stall.batch', inbox: 'stall' })),
    );
    const after = await publish([{ id: 'after', type: 'stall.after', inbox: 'stall' }]);
    for (const answer of [retried, batch, after]) expect(answer.errors).toBeUndefined();

    await sub.next(5);
    const ids = ['before', 'during', ...batchIds, 'after'];
    expect(await storedCount(ids)).toEqual([1, 1, 1, 1, 1]);
    // Each once, in cursor order: the order they were stored in (a timed-out append may have
    // committed when the stall ended, before its retry).
    const delivered = eventsOf(sub).map((e) => e.id);
    expect([...delivered].sort()).toEqual([...ids].sort());
    expect(delivered).toEqual((await storedIds()).filter((id) => ids.includes(id)));
    await eventually(async () => (await treadyz(s.url)).status === 200, '/readyz to answer 200');
  });

  it('should deliver an event whose append committed while its answer was held, and store a retry with the ids of the error once', async () => {
    const sub = await subs.open(s.client(), { inboxes: ['held'] });
    // The statement reaches PostgreSQL and commits; only the answer stalls.
    proxy.stall('answers');
    const lost = await within(
      publish([{ type: 'held.answer', inbox: 'held' }]),
      TIMEOUT_MS + MARGIN_MS,
      'the publish whose answer is held',
    );
    expect(lost.errors?.[0]?.extensions?.code).toBe('STORE_UNAVAILABLE');
    const [id] = lost.errors?.[0]?.extensions?.ids ?? [];
    expect(id).toEqual(expect.any(String));
    proxy.resume();

    // Nobody retries, nothing else is published: it is delivered all the same.
    await sub.next(1, 15_000);
    expect(eventsOf(sub).map((e) => e.id)).toEqual([id]);
    const retried = await publish([{ id, type: 'held.answer', inbox: 'held' }]);
    expect(retried.data?.publishEvents[0]?.cursor).toBe(eventsOf(sub)[0]?.cursor);
    await publish([{ id: 'held-after', type: 'held.after', inbox: 'held' }]);
    await sub.next(2);
    expect(eventsOf(sub).map((e) => e.id)).toEqual([id, 'held-after']);
    expect(await storedCount([id as string])).toEqual([1]);
  });

  it('should answer a request whose token cannot be checked for revocation 503 STORE_UNAVAILABLE', async () => {
    // A schema of its own: a second server on the memory bus may not share the first one's.
    const own = new URL(storeUrl);
    own.searchParams.set('schema', `${schema}_jwt`);
    const guarded = await tserver({
      ...JWT_CONFIG,
      store: own.toString(),
      storeTimeoutMs: TIMEOUT_MS,
    });
    try {
      const token = bearer(await hs256({ sub: 'app', scope: 'events:read events:publish' }));
      proxy.stall();
      const started = Date.now();
      const res = await within(
        fetch(`${guarded.url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...token },
          body: JSON.stringify({ query: '{ events(first: 1) { nodes { id } } }' }),
        }),
        TIMEOUT_MS + MARGIN_MS,
        'a request with a token during the stall',
      );
      expect(Date.now() - started).toBeLessThan(TIMEOUT_MS + MARGIN_MS);
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('1');
      expect(await res.json()).toMatchObject({
        errors: [
          {
            message: expect.stringMatching(/retry in a moment/),
            extensions: { code: 'STORE_UNAVAILABLE' },
          },
        ],
      });
      proxy.resume();
      const again = await guarded.gql('{ events(first: 1) { nodes { id } } }', {}, token);
      expect(again.errors).toBeUndefined();
    } finally {
      proxy.resume();
      await guarded.stop();
    }
  });
});
