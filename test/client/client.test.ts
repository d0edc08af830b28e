/**
 * The typed client against real servers: publish (idempotent retries), paged history, and a
 * subscription that resumes by itself, notices a silent server, reports gaps and its state.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createTidingsClient,
  TidingsClientError,
  type ConnectionState,
  type TidingsEvent,
  type TidingsSubscription,
} from '../../src/client/index.js';
import { StreamEndedError } from '../../src/errors.js';
import { requireCapability } from '../../src/store/index.js';
import { bearer, hs256, JWT_CONFIG } from '../auth/tokens.js';
import { tserver, type TServer } from '../tserver.js';
import { waitFor } from '../transport/helpers.js';

let s: TServer;
const subs: TidingsSubscription[] = [];
beforeAll(async () => {
  s = await tserver({ keepaliveMs: 1_000 });
});
afterEach(async () => {
  for (const sub of subs.splice(0)) sub.close();
  await waitFor(() => s.app.hub.size === 0, 'every stream to close');
});
afterAll(() => s.stop());

// The client calls a server silent after twice the keepalive: 2 s, which a busy machine's
// scheduling pauses do not reach (the silent-server test shortens it for its own server).
const fast = { backoff: { minMs: 20, maxMs: 200 }, keepaliveMs: 1_000 };

/** Collects a subscription's events in the background. */
function collect(sub: TidingsSubscription) {
  subs.push(sub);
  const events: TidingsEvent[] = [];
  let failure: unknown = null;
  void (async () => {
    try {
      for await (const e of sub) events.push(e);
    } catch (err) {
      failure = err;
    }
  })();
  return { events, failure: () => failure };
}

describe('publish and history', () => {
  it('should publish typed events, one or a batch, and page through them', async () => {
    const client = createTidingsClient({ url: s.url });
    const one = await client.publish({ type: 'c.one', inbox: 'client-a', severity: 'WARNING' });
    expect(one).toMatchObject({ type: 'c.one', inbox: 'client-a', severity: 'WARNING' });
    expect(one.id).toMatch(/^[0-9a-f-]{36}$/);
    const many = await client.publishMany(
      Array.from({ length: 7 }, (_, i) => ({ type: 'c.many', inbox: 'client-a', message: `${i}` })),
    );
    const listed: string[] = [];
    for await (const e of client.events({ filter: { inboxes: ['client-a'] }, pageSize: 3 })) {
      listed.push(e.id);
    }
    expect(listed).toEqual([one, ...many].map((e) => e.id));
  });

  it('should retry a publish whose answer was lost, and store it once', async () => {
    let calls = 0;
    const losing: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      // The first answer is lost on the way back, after the server stored the event.
      if (++calls === 1) throw new TypeError('socket hang up');
      return res;
    };
    const client = createTidingsClient({ url: s.url, fetch: losing, ...fast });
    const event = await client.publish({ type: 'c.retried', inbox: 'client-r' });
    expect(calls).toBe(2);
    const page = await s.gql<{ events: { nodes: { id: string }[] } }>(
      '{ events(filter: { inboxes: ["client-r"] }) { nodes { id } } }',
    );
    expect(page.data?.events.nodes).toEqual([{ id: event.id }]);
  });

  it('should throw the server’s error with its code, and say when the server is unreachable', async () => {
    const client = createTidingsClient({ url: s.url });
    const conflict = client
      .publish({ id: 'dup', type: 'a' })
      .then(() => client.publish({ id: 'dup', type: 'b' }));
    await expect(conflict).rejects.toMatchObject({ code: 'CONFLICT' });
    const nowhere = createTidingsClient({ url: 'http://127.0.0.1:1', publishAttempts: 1 });
    const err = await nowhere.publish({ type: 'x' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TidingsClientError);
    expect(err).toMatchObject({ code: 'NETWORK', message: /could not be reached/ });
  });
});

describe('subscribe', () => {
  it('should deliver live events after replaying from `after`, and report its state', async () => {
    const client = createTidingsClient({ url: s.url, ...fast });
    const [before] = await s.app.publish([{ type: 's.before', inbox: 'sub-1' }]);
    const states: ConnectionState[] = [];
    const sub = client.subscribe({
      inboxes: ['sub-1'],
      after: '000000000000',
      onStateChange: (st) => states.push(st),
    });
    const got = collect(sub);
    await waitFor(() => got.events.length === 1, 'the replayed event');
    const [live] = await s.app.publish([{ type: 's.live', inbox: 'sub-1' }]);
    await waitFor(() => got.events.length === 2, 'the live event');
    expect(got.events.map((e) => e.id)).toEqual([before?.id, live?.id]);
    expect(sub.state).toBe('live');
    expect(sub.lastCursor).toBe(live?.cursor);
    sub.close();
    await waitFor(() => sub.state === 'closed', 'the subscription to close');
    expect(states).toEqual(['live', 'closed']);
  });

  it('should resume from its last cursor when the server ends the stream (slow consumer, shutdown…)', async () => {
    const client = createTidingsClient({ url: s.url, ...fast });
    const sub = client.subscribe({ inboxes: ['sub-2'] });
    const got = collect(sub);
    await waitFor(() => s.app.hub.size === 1, 'the stream');
    const first = await s.app.publish([{ type: 'a', inbox: 'sub-2' }]);
    await waitFor(() => got.events.length === 1, 'the first event');
    // An admin ends the stream; events published meanwhile come with the replay.
    expect(s.app.streams.end(() => true, new StreamEndedError('STREAM_ENDED', 'ended'))).toBe(1);
    const meanwhile = await s.app.publish([{ type: 'b', inbox: 'sub-2' }]);
    await waitFor(() => got.events.length === 2, 'the event published during the reconnect');
    expect(got.events.map((e) => e.id)).toEqual([...first, ...meanwhile].map((e) => e.id));
    expect(sub.reconnects).toBeGreaterThanOrEqual(1);
  });

  it('should reconnect from a server that stops sending anything, keepalives included', async () => {
    let requests = 0;
    const silent: Server = createServer((_req, res) => {
      requests++;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('retry: 10\n\n');
      // …and nothing else, ever.
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    try {
      const states: ConnectionState[] = [];
      const sub = createTidingsClient({ url, ...fast, keepaliveMs: 100 }).subscribe({
        onStateChange: (st) => states.push(st),
      });
      collect(sub);
      await waitFor(() => requests >= 3, 'two reconnections', 5_000);
      expect(states.slice(0, 3)).toEqual(['live', 'reconnecting', 'live']);
      sub.close();
    } finally {
      silent.closeAllConnections();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('should report a history gap and go on after it', async () => {
    const [gone] = await s.app.publish([{ type: 'g', inbox: 'sub-gap' }]);
    await waitFor(() => Date.now() > (gone?.receivedAt ?? Infinity), 'the clock');
    const cutoff = Date.now();
    const [kept] = await s.app.publish([{ type: 'g', inbox: 'sub-gap' }]);
    const { purgedThrough } = await requireCapability(s.app.store, 'retention', 'the test').purge(
      cutoff,
      100_000,
    );
    expect(purgedThrough).toBe(gone?.seq);
    const gaps: unknown[] = [];
    const sub = createTidingsClient({ url: s.url, ...fast }).subscribe({
      inboxes: ['sub-gap'],
      after: '000000000000',
      onGap: (gap) => gaps.push(gap),
    });
    const got = collect(sub);
    await waitFor(() => got.events.length === 1, 'the retained event');
    expect(got.events.map((e) => e.id)).toEqual([kept?.id]);
    expect(gaps).toEqual([{ after: '000000000000', purgedThrough: gone?.cursor }]);
  });
});

describe('closing', () => {
  it('should end at once when closed while waiting to reconnect', async () => {
    const sub = createTidingsClient({
      url: 'http://127.0.0.1:1',
      backoff: { minMs: 60_000, maxMs: 60_000 },
    }).subscribe();
    const got = collect(sub);
    await waitFor(() => sub.state === 'reconnecting', 'the first failure');
    const started = Date.now();
    sub.close();
    await waitFor(() => sub.state === 'closed', 'the subscription to close', 1_000);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(got.failure()).toBeNull();
  });
});

describe('subscribe with auth', () => {
  it('should fail with FORBIDDEN, not retry forever, when the token may not read the inbox', async () => {
    const secured = await tserver(JWT_CONFIG);
    try {
      const token = await hs256({ sub: 'x', scope: 'events:read', inboxes: ['mine'] });
      const client = createTidingsClient({ url: secured.url, token: () => token, ...fast });
      const got = collect(client.subscribe({ inboxes: ['theirs'] }));
      await waitFor(() => got.failure() !== null, 'the failure');
      expect(got.failure()).toMatchObject({ code: 'FORBIDDEN' });
      const ok = createTidingsClient({ url: secured.url, token, ...fast });
      await expect(ok.publish({ type: 'x' })).rejects.toMatchObject({ code: 'FORBIDDEN' });
      expect(bearer(token).authorization).toMatch(/^Bearer /);
      // A fixed token that has expired cannot get better: fail instead of retrying forever.
      const expired = await hs256(
        { sub: 'x', scope: 'events:read' },
        { expiresIn: Math.floor(Date.now() / 1000) - 3600 },
      );
      const stale = collect(
        createTidingsClient({ url: secured.url, token: expired, ...fast }).subscribe(),
      );
      await waitFor(() => stale.failure() !== null, 'the failure');
      expect(stale.failure()).toMatchObject({ code: 'TOKEN_EXPIRED' });
    } finally {
      await secured.stop();
    }
  });
});
