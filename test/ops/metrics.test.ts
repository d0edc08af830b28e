/**
 * `/metrics`: the counters and histograms move with what the instance does, each instance counts
 * on its own, and the endpoint is open to loopback callers but wants an admin token from anyone
 * else when auth is on.
 */
import { request } from 'node:http';
import { createClient } from 'graphql-sse';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, hs256, JWT_CONFIG } from '../auth/tokens.js';
import { rawStream, waitFor } from '../transport/helpers.js';
import { tserver, tsubscribe, type TServer } from '../tserver.js';
import { moved, parseMetrics, sample, scrape } from './tops.js';

const PUBLISH = 'mutation($i: PublishEventInput!) { publishEvent(input: $i) { id } }';
const STREAM = 'subscription { eventStream(inboxes: ["metrics"]) { cursor type } }';

describe('/metrics', () => {
  let s: TServer;
  beforeAll(async () => {
    s = await tserver();
  });
  afterAll(() => s.stop());

  it('should count publishes, deliveries, open and ended streams, and time publishes, dispatches and store calls', async () => {
    const before = await scrape(s.url);
    expect(sample(before, 'tidings_streams_open{mode="distinct"}')).toBe(0);

    const url = new URL('/graphql/stream', s.url);
    url.searchParams.set('query', STREAM);
    const raw = await rawStream(url.toString(), { headers: { accept: 'text/event-stream' } });
    await waitFor(() => s.app.hub.size === 1, 'the stream');
    expect(sample(await scrape(s.url), 'tidings_streams_open{mode="distinct"}')).toBe(1);

    for (let i = 0; i < 3; i++) {
      const published = await s.gql(PUBLISH, { i: { type: `metrics.${i}`, inbox: 'metrics' } });
      expect(published.errors).toBeUndefined();
    }
    await waitFor(() => raw.frames.filter((f) => f.event === 'next').length === 3, '3 events');
    const live = await scrape(s.url);
    expect(moved(before, live, 'tidings_events_published_total')).toBe(3);
    expect(moved(before, live, 'tidings_events_delivered_total')).toBe(3);
    expect(moved(before, live, 'tidings_publish_duration_seconds_count')).toBe(3);
    expect(moved(before, live, 'tidings_publish_duration_seconds_sum')).toBeGreaterThan(0);
    expect(moved(before, live, 'tidings_dispatch_lag_seconds_count')).toBe(3);
    expect(moved(before, live, 'tidings_store_query_duration_seconds_count{op="append"}')).toBe(3);
    // The memory bus hands events over in the same process: no bus lag to speak of.
    expect(sample(live, 'tidings_bus_lag_seconds_count')).toBe(0);

    raw.close();
    await waitFor(() => s.app.hub.size === 0, 'the stream to end');
    const after = await scrape(s.url);
    expect(sample(after, 'tidings_streams_open{mode="distinct"}')).toBe(0);
    expect(moved(before, after, 'tidings_streams_ended_total{reason="client_gone"}')).toBe(1);
    expect(moved(before, after, 'tidings_events_delivered_total')).toBe(3);
  });

  it('should count replayed events as delivered, for the stream and in total', async () => {
    const [first] = await s.app.publish(
      ['a', 'b', 'c'].map((x) => ({ type: `replay.${x}`, inbox: 'replay' })),
    );
    const before = await scrape(s.url);
    const sub = tsubscribe(
      s.client(),
      'subscription($after: String) { eventStream(inboxes: ["replay"], after: $after) { cursor } }',
      { after: first?.cursor },
    );
    await sub.next(2);
    expect(s.app.streams.list().map((x) => x.eventsDelivered)).toEqual([2]);
    expect(moved(before, await scrape(s.url), 'tidings_events_delivered_total')).toBe(2);
    sub.unsubscribe();
    await waitFor(() => s.app.hub.size === 0, 'the stream to end');
  });

  it('should count single-connection streams apart, and streams an admin ended', async () => {
    const before = await scrape(s.url);
    const client = createClient({
      url: `${s.url}/graphql/stream`,
      singleConnection: true,
      retryAttempts: 0,
    });
    const sub = tsubscribe(client, 'subscription { eventStream(clientId: "watcher") { cursor } }');
    await waitFor(() => s.app.hub.size === 1, 'the stream');
    expect(sample(await scrape(s.url), 'tidings_streams_open{mode="single"}')).toBe(1);

    const ended = await s.gql('mutation { endStreams(clientId: "watcher") }');
    expect(ended.data).toEqual({ endStreams: 1 });
    await sub.next(1);
    expect(sub.results[0]?.errors?.[0]?.extensions?.code).toBe('STREAM_ENDED');
    const after = await scrape(s.url);
    expect(sample(after, 'tidings_streams_open{mode="single"}')).toBe(0);
    expect(moved(before, after, 'tidings_streams_ended_total{reason="ended_by_admin"}')).toBe(1);
    client.dispose();
  });

  it('should list every stream end reason, the process metrics, and each store operation', async () => {
    expect((await s.gql('{ events(first: 1) { nodes { id } } }')).errors).toBeUndefined();
    const now = await scrape(s.url);
    for (const reason of [
      'client_gone',
      'slow_consumer',
      'token_expired',
      'token_revoked',
      'ended_by_admin',
      'shutdown',
      'error',
      'completed',
    ]) {
      expect(now.has(`tidings_streams_ended_total{reason="${reason}"}`), reason).toBe(true);
    }
    expect(sample(now, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(sample(now, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    expect(sample(now, 'tidings_store_query_duration_seconds_count{op="page"}')).toBe(1);
  });

  it('should keep the figures of each instance apart, and count streams ended by a shutdown', async () => {
    const mineBefore = await scrape(s.url);
    const other = await tserver();
    const sub = tsubscribe(
      other.client(),
      'subscription { eventStream(inboxes: ["metrics"]) { cursor } }',
    );
    await waitFor(() => other.app.hub.size === 1, 'the stream');
    await other.app.emit({ type: 'metrics.other', inbox: 'metrics' });
    await sub.next(1);
    await other.stop();
    const figures = parseMetrics(await other.app.metrics.render());
    expect(sample(figures, 'tidings_events_published_total')).toBe(1);
    expect(sample(figures, 'tidings_events_delivered_total')).toBe(1);
    expect(sample(figures, 'tidings_streams_ended_total{reason="shutdown"}')).toBe(1);
    expect(sample(figures, 'tidings_streams_open{mode="distinct"}')).toBe(0);
    const mine = await scrape(s.url);
    expect(moved(mineBefore, mine, 'tidings_events_published_total')).toBe(0);
    expect(moved(mineBefore, mine, 'tidings_events_delivered_total')).toBe(0);
    expect(sample(mine, 'tidings_streams_ended_total{reason="shutdown"}')).toBe(0);
  });
});

describe('/metrics and slow consumers', () => {
  let s: TServer;
  beforeAll(async () => {
    s = await tserver({ maxQueueBytes: 64 * 1024 });
  });
  afterAll(() => s.stop());

  it('should count a stream whose client stopped reading as ended by slow_consumer', async () => {
    const url = new URL('/graphql/stream', s.url);
    url.searchParams.set('query', 'subscription { eventStream(inboxes: ["slow"]) { body } }');
    // A client that never reads: its response is paused as soon as the headers arrive.
    const req = request(url, { headers: { accept: 'text/event-stream' } });
    await new Promise<void>((resolve, reject) => {
      req.on('error', reject);
      req.on('response', (res) => {
        res.pause();
        resolve();
      });
      req.end();
    });
    await waitFor(() => s.app.hub.size === 1, 'the stream');
    const big = { text: 'x'.repeat(50_000) };
    // Loopback socket buffers take a few MB before the server's queue grows.
    for (let i = 0; i < 40 && s.app.hub.size > 0; i++) {
      await s.app.publish(
        Array.from({ length: 20 }, () => ({ type: 'slow.big', inbox: 'slow', body: big })),
      );
    }
    await waitFor(() => s.app.hub.size === 0, 'the slow stream to end');
    const figures = await scrape(s.url);
    expect(sample(figures, 'tidings_streams_ended_total{reason="slow_consumer"}')).toBe(1);
    expect(sample(figures, 'tidings_events_delivered_total')).toBeGreaterThan(0);
    req.destroy();
  });
});

describe('/metrics with TIDINGS_AUTH=jwt', () => {
  let s: TServer;
  beforeAll(async () => {
    s = await tserver(JWT_CONFIG);
  });
  afterAll(() => s.stop());

  it('should be open to callers on this machine', async () => {
    expect((await scrape(s.url)).has('tidings_events_published_total')).toBe(true);
  });

  it('should want an admin token from callers through a proxy or from another machine', async () => {
    const proxied = { 'x-forwarded-for': '203.0.113.7' };
    const status = async (headers: Record<string, string>) =>
      (await fetch(`${s.url}/metrics`, { headers: { ...proxied, ...headers } })).status;
    expect(await status({})).toBe(401);
    expect(await status(bearer(await hs256({ sub: 'reader', scope: 'events:read' })))).toBe(403);
    const admin = bearer(await hs256({ sub: 'root', scope: 'events:admin' }));
    expect((await scrape(s.url, { ...proxied, ...admin })).size).toBeGreaterThan(0);
  });
});
