/**
 * Every limit has a safe default, can be configured, and is answered with a clear error before
 * anything runs or is stored: depth, aliases, page size, batch size, inboxes per stream, open
 * streams per client, publish rate per caller.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '../../src/config.js';
import { tserver, type TServer } from '../tserver.js';
import { dataOf, rawStream, waitFor, type RawStream } from '../transport/helpers.js';
import { bearer, hs256, JWT_CONFIG } from './tokens.js';

let s: TServer;
let caller: Record<string, string>;
const open: RawStream[] = [];
beforeAll(async () => {
  s = await tserver({
    ...JWT_CONFIG,
    maxDepth: 4,
    maxAliases: 2,
    maxPageSize: 10,
    maxBatch: 5,
    maxStreamInboxes: 3,
    maxStreamsPerClient: 2,
    publishRate: 5,
  });
  caller = bearer(await hs256({ sub: 'svc', scope: 'events:read events:publish' }));
});
afterEach(async () => {
  for (const r of open.splice(0)) r.close();
  await waitFor(() => s.app.hub.size === 0, 'every stream to close');
});
afterAll(() => s.stop());

async function stream(query: string, headers = caller) {
  const url = new URL('/graphql/stream', s.url);
  url.searchParams.set('query', query);
  const raw = await rawStream(url.toString(), {
    headers: { accept: 'text/event-stream', ...headers },
  });
  open.push(raw);
  return raw;
}

describe('limits', () => {
  it('should have safe defaults', () => {
    expect(DEFAULT_CONFIG).toMatchObject({
      maxDepth: 12,
      maxAliases: 30,
      maxPageSize: 500,
      maxBatch: 1000,
      maxStreamInboxes: 50,
      maxFilterItems: 100,
      maxStreamsPerClient: 100,
      publishRate: 2000,
      maxRequestBytes: 1024 * 1024,
    });
  });

  it('should refuse a document deeper than TIDINGS_MAX_DEPTH, on every path', async () => {
    const deep = '{ events { nodes { parent { parent { parent { id } } } } } }';
    const res = await s.gql(deep, {}, caller);
    expect(res.errors?.[0]?.message).toMatch(/Query too deep \(TIDINGS_MAX_DEPTH=4\)/);
    const viaStream = await stream(
      'subscription { eventStream { parent { parent { parent { parent { id } } } } } }',
    );
    const frame = await viaStream.waitFor((f) => f.event === 'next', 'the error');
    expect(dataOf<{ errors: { message: string }[] }>(frame).errors[0]?.message).toMatch(
      /TIDINGS_MAX_DEPTH/,
    );
    // GraphiQL's introspection still works.
    const intro = await s.gql(
      '{ __schema { types { name fields { type { ofType { ofType { name } } } } } } }',
      {},
      caller,
    );
    expect(intro.errors).toBeUndefined();
  });

  it('should refuse more aliases than TIDINGS_MAX_ALIASES', async () => {
    const res = await s.gql(
      '{ a: events { nodes { id } } b: events { nodes { id } } c: events { nodes { id } } }',
      {},
      caller,
    );
    expect(res.errors?.[0]?.message).toMatch(/Too many aliases \(TIDINGS_MAX_ALIASES=2\)/);
  });

  it('should refuse a page larger than TIDINGS_MAX_PAGE and a batch larger than TIDINGS_MAX_BATCH', async () => {
    const page = await s.gql('{ events(first: 11) { nodes { id } } }', {}, caller);
    expect(page.errors?.[0]?.message).toMatch(/first/);
    expect(page.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const batch = await s.gql(
      'mutation($i: [PublishEventInput!]!) { publishEvents(inputs: $i) { id } }',
      { i: Array.from({ length: 6 }, () => ({ type: 'b' })) },
      caller,
    );
    expect(batch.errors?.[0]?.message).toMatch(/at most 5 events/);
    expect(await s.app.store.lastSeq()).toBe(0);
  });

  it('should refuse a stream naming more inboxes than TIDINGS_MAX_STREAM_INBOXES', async () => {
    const r = await stream('subscription { eventStream(inboxes: ["a", "b", "c", "d"]) { id } }');
    const frame = await r.waitFor((f) => f.event === 'next', 'the error');
    expect(dataOf(frame).errors?.[0]?.extensions).toMatchObject({
      code: 'LIMIT_EXCEEDED',
      limit: 3,
    });
  });

  it('should refuse a stream past TIDINGS_MAX_STREAMS_PER_CLIENT, and allow one again once a stream closes', async () => {
    const first = await stream('subscription { eventStream { id } }');
    await stream('subscription { eventStream { id } }');
    await waitFor(() => s.app.hub.size === 2, 'two streams');
    const third = await stream('subscription { eventStream { id } }');
    const frame = await third.waitFor((f) => f.event === 'next', 'the error');
    expect(dataOf(frame).errors?.[0]?.extensions).toMatchObject({
      code: 'LIMIT_EXCEEDED',
      limit: 2,
    });
    await third.waitEnd();
    first.close();
    await waitFor(() => s.app.hub.size === 1, 'one stream to close');
    await stream('subscription { eventStream { id } }');
    await waitFor(() => s.app.hub.size === 2, 'a new stream');
  });

  it('should refuse publishing faster than TIDINGS_PUBLISH_RATE with RATE_LIMITED, storing nothing of it', async () => {
    const limited = bearer(await hs256({ sub: 'chatty', scope: 'events:publish' }));
    const before = await s.app.store.lastSeq();
    // The burst is twice the rate: 10 events. Twenty at once exceed it by ten, which the bucket
    // could only refill in 2 s: sent one after another on a busy machine, they would not.
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        s.gql('mutation { publishEvent(input: { type: "r" }) { id } }', {}, limited),
      ),
    );
    const refused = results.filter((r) => r.errors?.[0]?.extensions?.code === 'RATE_LIMITED');
    expect(refused.length).toBeGreaterThanOrEqual(1);
    expect(refused[0]?.errors?.[0]?.message).toMatch(
      /faster than 5 events\/s \(TIDINGS_PUBLISH_RATE\): retry in \d+ s/,
    );
    expect(await s.app.store.lastSeq()).toBe(before + results.length - refused.length);
    // Another caller is not affected.
    const other = await s.gql('mutation { publishEvent(input: { type: "r" }) { id } }', {}, caller);
    expect(other.errors).toBeUndefined();
  });
});
