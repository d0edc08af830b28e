/**
 * Scale-out with real processes: three `tidings serve` instances on different ports sharing the
 * machine's PostgreSQL (a schema of their own) and Redis (a channel of their own). No sticky
 * sessions for distinct-connections streams; single-connection reservations belong to the
 * instance that made them.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createTidingsClient, type TidingsEvent } from '../../src/client/index.js';
import { cleanupProcesses, startTidings, waitUntil, type TidingsProcess } from './tprocess.js';

const PG = process.env.TIDINGS_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS = process.env.TIDINGS_TEST_REDIS ?? 'redis://127.0.0.1:6379';
const schema = `tidings_instances_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
const env = { TIDINGS_BUS: `${REDIS}?channel=${schema}` };
const store = `${PG}?schema=${schema}`;

afterEach(() => cleanupProcesses());
afterAll(async () => {
  const client = new pg.Client({ connectionString: PG });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
});

const start = (port = 0) => startTidings({ store, port, env });

describe('three instances on PostgreSQL and Redis', () => {
  it('should deliver, in order, events published on B and C to a subscriber on A; after A dies the client resumes on B and misses nothing', async () => {
    const [a, b, c] = (await Promise.all([start(), start(), start()])) as [
      TidingsProcess,
      TidingsProcess,
      TidingsProcess,
    ];
    // The client follows A; when A is gone it is pointed at B (a load balancer would do this).
    let target = a.url;
    const fetchVia: typeof fetch = (input, init) =>
      fetch(String(input).replace(a.url, target), init);
    const follower = createTidingsClient({
      url: a.url,
      fetch: fetchVia,
      backoff: { minMs: 50, maxMs: 300 },
    });
    const received: TidingsEvent[] = [];
    const sub = follower.subscribe({ inboxes: ['fleet'] });
    const following = (async () => {
      for await (const e of sub) received.push(e);
    })();
    await waitUntil(() => sub.state === 'live', 'the subscription on A', 10_000);

    const onB = createTidingsClient({ url: b.url });
    const onC = createTidingsClient({ url: c.url });
    const acked: TidingsEvent[] = [];
    for (let i = 0; i < 40; i++) {
      const via = i % 2 ? onB : onC;
      acked.push(await via.publish({ type: `fleet.${i}`, inbox: 'fleet' }));
    }
    await waitUntil(() => received.length === 40, 'the 40 events on A', 20_000);
    expect(received.map((e) => e.cursor)).toEqual(acked.map((e) => e.cursor));

    await a.kill('SIGKILL');
    target = b.url;
    for (let i = 40; i < 60; i++) {
      acked.push(await (i % 2 ? onB : onC).publish({ type: `fleet.${i}`, inbox: 'fleet' }));
    }
    await waitUntil(() => received.length === 60, 'the events after A died', 20_000);
    sub.close();
    await following;
    expect(received.map((e) => e.id)).toEqual(acked.map((e) => e.id));
    expect(sub.reconnects).toBeGreaterThanOrEqual(1);
  }, 90_000);

  it('should keep a single-connection reservation on the instance that made it', async () => {
    const [a, b] = (await Promise.all([start(), start()])) as [TidingsProcess, TidingsProcess];
    const reserved = await fetch(`${a.url}/graphql/stream`, { method: 'PUT' });
    const token = await reserved.text();
    const elsewhere = await fetch(`${b.url}/graphql/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-graphql-event-stream-token': token },
      body: JSON.stringify({
        query: 'subscription { eventStream { id } }',
        extensions: { operationId: 'op' },
      }),
    });
    expect(elsewhere.status).toBe(404);
    const here = await fetch(`${a.url}/graphql/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-graphql-event-stream-token': token },
      body: JSON.stringify({
        query: 'subscription { eventStream { id } }',
        extensions: { operationId: 'op' },
      }),
    });
    expect(here.status).toBe(202);
  }, 60_000);
});
