/**
 * One subscription path: every way of subscribing — `GET` or `POST`, on `/graphql` or
 * `/graphql/stream`, with any `Accept`, in either graphql-sse mode — either opens a stream on the
 * stream engine, which the `streams` query lists and `TIDINGS_MAX_STREAMS_PER_CLIENT` counts, or
 * is refused with a 4xx and an error code. Nothing else runs a subscription: the schema's own
 * `subscribe` refuses, so graphql-js (or any server plugin) cannot open a stream behind the
 * engine's back.
 */
import { parse, subscribe } from 'graphql';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { UNAUTHENTICATED_ADMIN } from '../../src/auth/principal.js';
import { createContext } from '../../src/context.js';
import { TOKEN_HEADER } from '../../src/transport/graphql-sse.js';
import { tserver, type TServer } from '../tserver.js';
import { dataOf, rawStream, waitFor, type RawStream } from './helpers.js';

const CLIENT = 'one-path';
const SUBSCRIPTION = `subscription { eventStream(inboxes: ["one-path"], clientId: "${CLIENT}") { cursor type } }`;
/** `Accept` headers, `null` for none. */
const ACCEPTS = ['text/event-stream', 'multipart/mixed', 'application/json', '*/*', null];
const ROUTES = [
  { method: 'GET', path: '/graphql' },
  { method: 'POST', path: '/graphql' },
  { method: 'GET', path: '/graphql/stream' },
  { method: 'POST', path: '/graphql/stream' },
];

let s: TServer;
const open: RawStream[] = [];
beforeAll(async () => {
  s = await tserver({ maxStreamsPerClient: 1 });
});
afterEach(async () => {
  for (const raw of open.splice(0)) raw.close();
  await waitFor(() => s.app.hub.size === 0 && s.app.sse.size === 0, 'every stream to close');
  expect(await listed()).toEqual([]);
});
afterAll(() => s.stop());

/** The streams the `streams` query lists, checked against the hub's own count. */
async function listed(): Promise<{ mode: string; clientId: string | null }[]> {
  const result = await s.gql<{ streams: { mode: string; clientId: string | null }[] }>(
    '{ streams { mode clientId } }',
  );
  const streams = result.data?.streams ?? [];
  expect(s.app.hub.size).toBe(streams.length);
  return streams;
}

/** Sends the subscription on a route; keeps the response to close it after the test. */
async function subscribeOn(
  route: { method: string; path: string },
  accept: string | null,
  extra: { headers?: Record<string, string>; body?: unknown } = {},
): Promise<RawStream> {
  const get = route.method === 'GET';
  const query = get && extra.body === undefined ? `?query=${encodeURIComponent(SUBSCRIPTION)}` : '';
  const headers: Record<string, string> = {
    ...(accept === null ? {} : { accept }),
    ...(get ? {} : { 'content-type': 'application/json' }),
    ...extra.headers,
  };
  const raw = await rawStream(`${s.url}${route.path}${query}`, {
    method: route.method,
    headers,
    body: get ? undefined : JSON.stringify(extra.body ?? { query: SUBSCRIPTION }),
  });
  open.push(raw);
  return raw;
}

/** The error code of the first `next` frame of a stream. */
async function firstCode(raw: RawStream): Promise<string | undefined> {
  const frame = await raw.waitFor((f) => f.event === 'next', 'a next frame');
  return dataOf(frame).errors?.[0]?.extensions?.code;
}

describe.each(ACCEPTS)('Accept: %s', (accept) => {
  const streamed = accept === 'text/event-stream';

  it.each(ROUTES)(
    'should open a listed and counted stream on $method $path, or refuse it with a 4xx',
    async (route) => {
      const first = await subscribeOn(route, accept);
      if (!streamed) {
        const body = (await first.response.json()) as {
          errors?: { extensions?: { code?: string } }[];
        };
        expect(first.response.status).toBeGreaterThanOrEqual(400);
        expect(first.response.status).toBeLessThan(500);
        expect(body.errors?.[0]?.extensions?.code).toMatch(/^[A-Z_]+$/);
        expect(await listed()).toEqual([]);
        return;
      }
      expect(first.response.status).toBe(200);
      await waitFor(() => s.app.hub.size === 1, 'the stream to open');
      expect(await listed()).toEqual([{ mode: 'DISTINCT', clientId: CLIENT }]);
      // The same client's second stream, on the same route, is past the limit.
      const second = await subscribeOn(route, accept);
      expect(await firstCode(second)).toBe('LIMIT_EXCEEDED');
      await second.waitEnd();
      expect(await listed()).toEqual([{ mode: 'DISTINCT', clientId: CLIENT }]);
    },
  );
});

describe('single connection mode', () => {
  /** Reserves a stream; returns its token header. */
  async function reserve(): Promise<Record<string, string>> {
    const res = await fetch(`${s.url}/graphql/stream`, { method: 'PUT' });
    expect(res.status).toBe(201);
    return { [TOKEN_HEADER]: await res.text() };
  }
  const operation = (operationId: string) => ({
    query: SUBSCRIPTION,
    extensions: { operationId },
  });

  it.each(['GET', 'POST'])(
    'should list and count its operations, whether its stream opens with %s',
    async (method) => {
      const token = await reserve();
      const post = (id: string) =>
        fetch(`${s.url}/graphql/stream`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...token },
          body: JSON.stringify(operation(id)),
        });
      expect((await post('a')).status).toBe(202);
      expect(await listed()).toEqual([{ mode: 'SINGLE', clientId: CLIENT }]);
      // Accepted (202), but past the limit: its one result is the refusal.
      expect((await post('b')).status).toBe(202);
      expect(await listed()).toEqual([{ mode: 'SINGLE', clientId: CLIENT }]);
      const stream = await subscribeOn({ method, path: '/graphql/stream' }, 'text/event-stream', {
        headers: token,
        ...(method === 'POST' ? { body: {} } : {}),
      });
      expect(stream.response.status).toBe(200);
      const refused = await stream.waitFor(
        (f) => f.event === 'next' && dataOf<{ id?: string }>(f).id === 'b',
        'the result of operation b',
      );
      const { payload } = dataOf<{ payload: { errors?: { extensions?: { code?: string } }[] } }>(
        refused,
      );
      expect(payload.errors?.[0]?.extensions?.code).toBe('LIMIT_EXCEEDED');
      // A distinct stream of the same client is past the limit too: one count for both modes.
      const distinct = await subscribeOn({ method: 'GET', path: '/graphql' }, 'text/event-stream');
      expect(await firstCode(distinct)).toBe('LIMIT_EXCEEDED');
      expect(await listed()).toEqual([{ mode: 'SINGLE', clientId: CLIENT }]);
    },
  );
});

describe('outside the stream engine', () => {
  it("should refuse graphql-js subscribe() through the schema's own resolver, opening nothing", async () => {
    const result = await subscribe({
      schema: s.app.schema,
      document: parse(SUBSCRIPTION),
      contextValue: createContext(s.app.services, UNAUTHENTICATED_ADMIN),
    });
    expect(Symbol.asyncIterator in result).toBe(false);
    expect(result).toMatchObject({ errors: [{ extensions: { code: 'BAD_REQUEST' } }] });
    expect(s.app.hub.size).toBe(0);
    expect(await listed()).toEqual([]);
  });
});
