/**
 * graphql-ws (`graphql-transport-ws`) on the stream engine, with the real graphql-ws client:
 * everything a graphql-sse stream does — targeting, filters, `after`, `HISTORY_GAP`, queries and
 * mutations, presence (mode `WEBSOCKET`), metrics, cut-offs and shutdown — over a WebSocket at
 * `/graphql` and `/graphql/ws`.
 */
import { describe, expect, it } from 'vitest';
import { requireCapability } from '../../src/store/index.js';
import { moved, sample, scrape } from '../ops/tops.js';
import { tserver, tsubscribe } from '../tserver.js';
import { eventsOf, serverWithStreams, STREAM_QUERY, waitFor } from './helpers.js';
import { twsRaw, twsUrl, type TWsMessage } from './tws.js';

const t = serverWithStreams();

describe('graphql-ws subscriptions', () => {
  it.each(['/graphql', '/graphql/ws'])(
    'should deliver live events to a graphql-ws client at %s, in order, with their cursors',
    async (path) => {
      const tag = path.replaceAll('/', '.');
      const sub = await t.subs.open(t.s.ws({ url: twsUrl(t.s.url, path) }), {
        inboxes: [`ws${tag}`],
      });
      const published = await t.s.app.publish([
        { id: `${tag}-1`, type: 'ws.one', inbox: `ws${tag}` },
        { id: `${tag}-2`, type: 'ws.two', inbox: `ws${tag}` },
      ]);
      await sub.next(2);
      expect(eventsOf(sub).map((e) => [e.id, e.cursor, e.type])).toEqual(
        published.map((e) => [e.id, e.cursor, e.type]),
      );
      expect(sub.completed).toBe(false);
    },
  );

  it('should target inboxes and clients as graphql-sse does', async () => {
    const client = t.s.ws();
    const forA = await t.subs.open(client, { inboxes: ['ws-t'], clientId: 'a' });
    const plain = await t.subs.open(client, { inboxes: ['ws-t'] });
    await t.s.app.publish([
      { id: 'wt-broadcast', type: 't', inbox: 'ws-t' },
      { id: 'wt-a', type: 't', inbox: 'ws-t', clientId: 'a' },
      { id: 'wt-b', type: 't', inbox: 'ws-t', clientId: 'b' },
      { id: 'wt-other', type: 't', inbox: 'ws-elsewhere' },
      { id: 'wt-last', type: 't', inbox: 'ws-t' },
    ]);
    await Promise.all([forA.next(3), plain.next(2)]);
    // wt-last is last: once it arrived, anything wrongly delivered would have too.
    expect(eventsOf(forA).map((e) => e.id)).toEqual(['wt-broadcast', 'wt-a', 'wt-last']);
    expect(eventsOf(plain).map((e) => e.id)).toEqual(['wt-broadcast', 'wt-last']);
  });

  it('should apply the stream filter', async () => {
    const sub = await t.subs.open(t.s.ws(), {
      inboxes: ['ws-f'],
      filter: { types: ['vm.*'], severities: ['ERROR'] },
    });
    await t.s.app.publish([
      { id: 'wf-1', type: 'vm.started', inbox: 'ws-f', severity: 'ERROR' },
      { id: 'wf-2', type: 'vm.started', inbox: 'ws-f' },
      { id: 'wf-3', type: 'host.down', inbox: 'ws-f', severity: 'ERROR' },
      { id: 'wf-4', type: 'vm.stopped', inbox: 'ws-f', severity: 'ERROR' },
    ]);
    await sub.next(2);
    expect(eventsOf(sub).map((e) => e.id)).toEqual(['wf-1', 'wf-4']);
  });

  it('should replay what follows `after`, then go live, when a client resubscribes with its last cursor', async () => {
    const events = await t.s.app.publish(
      Array.from({ length: 5 }, (_, i) => ({ id: `wr-${i}`, type: 't', inbox: 'ws-r' })),
    );
    const sub = await t.subs.open(t.s.ws(), { inboxes: ['ws-r'], after: events[1]?.cursor });
    await sub.next(3);
    const [live] = await t.s.app.publish([{ id: 'wr-live', type: 't', inbox: 'ws-r' }]);
    await sub.next(4);
    expect(eventsOf(sub).map((e) => e.cursor)).toEqual([
      ...events.slice(2).map((e) => e.cursor),
      live?.cursor,
    ]);
  });

  it('should run queries and mutations over the socket, with one result then complete', async () => {
    const client = t.s.ws();
    const mutation = tsubscribe<{ publishEvent: { id: string } }>(
      client,
      'mutation { publishEvent(input: { id: "wq-1", type: "ws.query", inbox: "ws-q" }) { id } }',
    );
    await mutation.next(1);
    await waitFor(() => mutation.completed, 'the mutation to complete');
    expect(mutation.results).toEqual([{ data: { publishEvent: { id: 'wq-1' } } }]);
    const query = tsubscribe<{ event: { id: string; type: string } | null }>(
      client,
      '{ event(id: "wq-1") { id type } }',
    );
    await waitFor(() => query.completed, 'the query to complete');
    expect(query.results).toEqual([{ data: { event: { id: 'wq-1', type: 'ws.query' } } }]);
  });

  it('should answer an operation that does not validate with an error message', async () => {
    const raw = await twsRaw(twsUrl(t.s.url));
    await raw.init();
    raw.send({ id: 'bad', type: 'subscribe', payload: { query: 'subscription { nope }' } });
    const error = await raw.waitFor((m) => m.id === 'bad', 'the answer');
    expect(error.type).toBe('error');
    expect((error.payload as { message: string }[])[0]?.message).toMatch(/nope/);
    // The operation ended: its id may be used again.
    raw.send({
      id: 'bad',
      type: 'subscribe',
      payload: { query: '{ events(first: 1) { edges { cursor } } }' },
    });
    await raw.waitFor((m) => m.id === 'bad' && m.type === 'complete', 'the second use to complete');
    raw.ws.close();
  });

  it('should signal HISTORY_GAP when `after` is older than the retained history, then go on', async () => {
    const s = await tserver();
    try {
      const old = await s.app.publish(
        Array.from({ length: 4 }, (_, i) => ({ type: `old.${i}`, inbox: 'gap' })),
      );
      await waitFor(() => Date.now() > (old[0]?.receivedAt ?? Infinity), 'the clock to move');
      await requireCapability(s.app.store, 'retention', 'the test').purge(Date.now(), 2);
      const sub = tsubscribe<{ eventStream: { cursor: string } }>(s.ws(), STREAM_QUERY, {
        inboxes: ['gap'],
        after: old[0]?.cursor,
      });
      await sub.next(3);
      const [gap, ...rest] = sub.results;
      expect(gap?.errors?.[0]?.extensions).toEqual({
        code: 'HISTORY_GAP',
        after: old[0]?.cursor,
        purgedThrough: old[1]?.cursor,
      });
      expect(rest.map((r) => r.data?.eventStream.cursor)).toEqual(
        old.slice(2).map((e) => e.cursor),
      );
      expect(sub.completed).toBe(false);
    } finally {
      await s.stop();
    }
  });
});

describe('graphql-ws streams in presence, metrics and cut-offs', () => {
  it('should list a socket’s streams with mode WEBSOCKET and count them as websocket in /metrics', async () => {
    const before = await scrape(t.s.url);
    const sub = await t.subs.open(t.s.ws(), { inboxes: ['ws-p'], clientId: 'ws-presence' });
    const listed = await t.s.gql<{
      streams: { mode: string; clientId: string; inboxes: string[] }[];
    }>('{ streams { mode clientId inboxes } }');
    expect(listed.data?.streams).toContainEqual({
      mode: 'WEBSOCKET',
      clientId: 'ws-presence',
      inboxes: ['ws-p'],
    });
    await t.s.app.publish([{ type: 't', inbox: 'ws-p' }]);
    await sub.next(1);
    const during = await scrape(t.s.url);
    expect(sample(during, 'tidings_streams_open{mode="websocket"}')).toBe(1);
    expect(moved(before, during, 'tidings_events_delivered_total')).toBe(1);
    sub.unsubscribe();
    await waitFor(() => t.s.app.hub.size === 0, 'the stream to end');
    const after = await scrape(t.s.url);
    expect(sample(after, 'tidings_streams_open{mode="websocket"}')).toBe(0);
    expect(moved(before, after, 'tidings_streams_ended_total{reason="client_gone"}')).toBe(1);
  });

  it('should end a socket’s stream with STREAM_ENDED when an admin ends its client’s streams', async () => {
    const sub = await t.subs.open(t.s.ws(), { inboxes: ['ws-c'], clientId: 'ws-cut' });
    const ended = await t.s.gql('mutation { endStreams(clientId: "ws-cut") }');
    expect(ended.data).toEqual({ endStreams: 1 });
    await sub.next(1);
    await waitFor(() => sub.completed, 'the stream to complete');
    expect(sub.results[0]?.errors?.[0]?.extensions?.code).toBe('STREAM_ENDED');
  });
});

describe('graphql-ws at shutdown', () => {
  it('should end every stream with SHUTTING_DOWN, then close the socket with 1001', async () => {
    const s = await tserver();
    const raw = await twsRaw(twsUrl(s.url));
    await raw.init();
    raw.send({ id: 's1', type: 'subscribe', payload: { query: STREAM_QUERY } });
    await waitFor(() => s.app.hub.size === 1, 'the stream');
    await s.stop();
    const { code } = await raw.closed;
    const ofStream = raw.messages.filter((m: TWsMessage) => m.id === 's1');
    expect(ofStream.map((m) => m.type)).toEqual(['next', 'complete']);
    expect(
      (ofStream[0]?.payload as { errors: { extensions: { code: string } }[] }).errors[0]?.extensions
        .code,
    ).toBe('SHUTTING_DOWN');
    expect(code).toBe(1001);
  });
});
