/**
 * Single-connection reservations that wait for their stream are bounded: in number, per caller
 * (its subject, else its address) and in all, and in what they keep for the stream, which counts
 * against the queue limits of a connected stream (`TIDINGS_MAX_QUEUE_BYTES`, `TIDINGS_MAX_QUEUE`).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { bearer, hs256, JWT_CONFIG } from '../auth/tokens.js';
import { tserver, type TServer } from '../tserver.js';
import { MAX_OPERATIONS_PER_STREAM } from '../../src/transport/graphql-sse.js';
import { dataOf, rawStream, waitFor, type RawStream } from './helpers.js';

let s: TServer | undefined;
const open: RawStream[] = [];
afterEach(async () => {
  for (const raw of open.splice(0)) raw.close();
  await s?.stop();
  s = undefined;
});

const streamUrl = () => `${(s as TServer).url}/graphql/stream`;

/** PUTs a reservation; returns the status and the body (the token when 201). */
async function reserve(headers: Record<string, string> = {}) {
  const res = await fetch(streamUrl(), { method: 'PUT', headers });
  return { status: res.status, text: await res.text(), retryAfter: res.headers.get('retry-after') };
}

/** Opens the stream of a reservation. */
async function connect(token: string, headers: Record<string, string> = {}): Promise<RawStream> {
  const raw = await rawStream(streamUrl(), {
    headers: { accept: 'text/event-stream', 'x-graphql-event-stream-token': token, ...headers },
  });
  open.push(raw);
  expect(raw.response.status).toBe(200);
  return raw;
}

/** The `LIMIT_EXCEEDED` answer to one reservation too many. */
function expectRefused(answer: Awaited<ReturnType<typeof reserve>>, setting: RegExp) {
  expect(answer.status).toBe(429);
  expect(answer.retryAfter).toMatch(/^\d+$/);
  const body = JSON.parse(answer.text) as {
    errors: { message: string; extensions: { code: string } }[];
  };
  expect(body.errors[0]?.extensions.code).toBe('LIMIT_EXCEEDED');
  expect(body.errors[0]?.message).toMatch(setting);
}

describe('reservation caps', () => {
  it('should cap the reservations waiting for their stream per subject and in all; an open stream frees its place', async () => {
    s = await tserver({ ...JWT_CONFIG, maxReservationsPerCaller: 2, maxReservations: 3 });
    const alice = bearer(await hs256({ sub: 'alice', scope: 'events:read' }));
    const bob = bearer(await hs256({ sub: 'bob', scope: 'events:read' }));

    const a1 = await reserve(alice);
    const a2 = await reserve(alice);
    expect([a1.status, a2.status]).toEqual([201, 201]);
    expectRefused(await reserve(alice), /TIDINGS_MAX_RESERVATIONS_PER_CALLER/);

    // Once its stream is open, a reservation no longer waits: alice may make another.
    await connect(a1.text, alice);
    expect((await reserve(alice)).status).toBe(201);
    // Alice has two waiting, bob one: three in all, the limit of the instance.
    expect((await reserve(bob)).status).toBe(201);
    expectRefused(await reserve(bob), /TIDINGS_MAX_RESERVATIONS\)/);

    // The refused ones made nothing; the accepted ones still work.
    await connect(a2.text, alice);
    expect((await reserve(bob)).status).toBe(201);
  });

  it('should count the reservations of callers without a subject by their address', async () => {
    s = await tserver({ maxReservationsPerCaller: 2 });
    const first = await reserve();
    expect((await reserve()).status).toBe(201);
    expectRefused(await reserve(), /This address .*TIDINGS_MAX_RESERVATIONS_PER_CALLER/);
    await connect(first.text);
    expect((await reserve()).status).toBe(201);
  });
});

describe('what a reservation keeps before its stream connects', () => {
  const QUERY = 'subscription { eventStream(inboxes: ["held"]) { cursor body } }';

  /** Reserves, runs a subscription on the reservation and waits until the hub has it. */
  async function reserveWithOperation(): Promise<string> {
    const server = s as TServer;
    const { status, text: token } = await reserve();
    expect(status).toBe(201);
    const res = await fetch(streamUrl(), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-graphql-event-stream-token': token },
      body: JSON.stringify({ query: QUERY, extensions: { operationId: 'held' } }),
    });
    expect(res.status).toBe(202);
    await waitFor(() => server.app.hub.size === 1, 'the operation to start');
    return token;
  }

  it.each([
    { limit: 'TIDINGS_MAX_QUEUE_BYTES', config: { maxQueueBytes: 4096 }, pad: 1000 },
    { limit: 'TIDINGS_MAX_QUEUE', config: { maxQueueEvents: 5 }, pad: 10 },
  ])(
    'should end its operations as slow consumers past $limit, and send what it kept then SLOW_CONSUMER when it connects',
    async ({ config, pad }) => {
      s = await tserver(config);
      const server = s;
      const token = await reserveWithOperation();
      const published: string[] = [];
      for (let i = 0; i < 20; i++) {
        const [event] = await server.app.publish([
          { type: 'held.event', inbox: 'held', body: { i, pad: 'x'.repeat(pad) } },
        ]);
        published.push(event?.cursor as string);
      }
      // Over the limit, the operation ended: nothing more is kept for it.
      await waitFor(() => server.app.hub.size === 0, 'the operation to end');
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      expect(metrics).toMatch(/^tidings_streams_ended_total\{reason="slow_consumer"\} 1$/m);

      // The client that connects late gets a gapless prefix, the error, then complete.
      const raw = await connect(token);
      await raw.waitFor((f) => f.event === 'complete', 'the complete frame');
      const frames = raw.frames.filter((f) => f.event !== null);
      const cursors = frames.filter((f) => f.id !== null).map((f) => f.id);
      expect(cursors.length).toBeGreaterThan(0);
      expect(cursors.length).toBeLessThan(published.length);
      expect(cursors).toEqual(published.slice(0, cursors.length));
      const end = frames.slice(cursors.length);
      expect(end.map((f) => f.event)).toEqual(['next', 'complete']);
      const error = dataOf<{
        id: string;
        payload: { errors: { extensions: { code: string } }[] };
      }>(end[0] as (typeof end)[number]);
      expect(error.id).toBe('held');
      expect(error.payload.errors[0]?.extensions.code).toBe('SLOW_CONSUMER');

      // The connection stays usable: a new operation runs on it.
      const res = await fetch(streamUrl(), {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-graphql-event-stream-token': token },
        body: JSON.stringify({ query: '{ __typename }', extensions: { operationId: 'again' } }),
      });
      expect(res.status).toBe(202);
      await raw.waitFor((f) => f.data === '{"id":"again"}', 'the second operation to complete');
    },
  );
});

describe('operations sent to a reservation', () => {
  /** POSTs an operation to the reservation `token`; returns the status and the parsed body. */
  async function operate(token: string, query: string, operationId: string) {
    const res = await fetch(streamUrl(), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-graphql-event-stream-token': token },
      body: JSON.stringify({ query, extensions: { operationId } }),
    });
    const text = await res.text();
    const body = text
      ? (JSON.parse(text) as { errors: { message: string; extensions: { code: string } }[] })
      : null;
    return { status: res.status, error: body?.errors[0] };
  }

  it('should keep no more than TIDINGS_MAX_QUEUE_BYTES and one frame for a stream that has not connected, refusing operations past it, and answer every accepted one', async () => {
    const maxQueueBytes = 1024 * 1024;
    s = await tserver({ maxQueueBytes });
    const big = 'x'.repeat(60_000);
    await s.app.publish([{ type: 'big.event', inbox: 'big', message: big }]);
    const { text: token } = await reserve();
    const query = '{ events(first: 1) { edges { node { message } } } }';

    const accepted: string[] = [];
    const refused: { message: string; extensions: { code: string } }[] = [];
    for (let i = 0; i < 40; i++) {
      const answer = await operate(token, query, `q${i}`);
      if (answer.status === 202) accepted.push(`q${i}`);
      else {
        expect(answer.status).toBe(429);
        refused.push(answer.error as (typeof refused)[number]);
      }
    }
    // Once every answer is in, the reservation is past its budget: operations are refused.
    const deadline = Date.now() + 10_000;
    for (let i = 0; ; i++) {
      const answer = await operate(token, '{ __typename }', `more${i}`);
      if (answer.status === 429) {
        refused.push(answer.error as (typeof refused)[number]);
        break;
      }
      accepted.push(`more${i}`);
      if (Date.now() > deadline) throw new Error('the reservation never refused an operation');
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const error of refused) {
      expect(error.extensions.code).toBe('LIMIT_EXCEEDED');
      expect(error.message).toMatch(/TIDINGS_MAX_QUEUE_BYTES.*open its stream/);
    }

    const raw = await connect(token);
    await waitFor(
      () => accepted.every((id) => raw.frames.some((f) => f.data === `{"id":"${id}"}`)),
      'a complete frame for every accepted operation',
      15_000,
    );
    const bytes = raw.frames.reduce((n, f) => n + Buffer.byteLength(f.raw) + 2, 0);
    // The budget, one frame past it, and the short error and complete of each operation.
    expect(bytes).toBeLessThan(maxQueueBytes + 61_000 + accepted.length * 1_000);
    const results = raw.frames.filter((f) => f.data?.includes(big));
    expect(results.length).toBeGreaterThan(0);

    // Connected, the stream takes operations again.
    expect((await operate(token, '{ __typename }', 'after')).status).toBe(202);
    await raw.waitFor((f) => f.data === '{"id":"after"}', 'the operation sent once connected');
  }, 60_000);

  it('should refuse an operation past the 100 one stream runs at once', async () => {
    s = await tserver();
    const { text: token } = await reserve();
    const query = 'subscription { eventStream(inboxes: ["quiet"]) { cursor } }';
    for (let i = 0; i < MAX_OPERATIONS_PER_STREAM; i++) {
      expect((await operate(token, query, `s${i}`)).status).toBe(202);
    }
    const refused = await operate(token, query, 'one-more');
    expect(refused.status).toBe(429);
    expect(refused.error?.extensions.code).toBe('LIMIT_EXCEEDED');
    expect(refused.error?.message).toMatch(/already runs 100 operations.*DELETE \?operationId=/);

    // Stopping one makes room for another.
    expect(
      (
        await fetch(`${streamUrl()}?operationId=s0`, {
          method: 'DELETE',
          headers: { 'x-graphql-event-stream-token': token },
        })
      ).status,
    ).toBe(200);
    expect((await operate(token, query, 'one-more')).status).toBe(202);
  }, 60_000);
});
