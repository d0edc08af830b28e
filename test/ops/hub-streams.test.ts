/**
 * No stream outside every count: after a subscription sent on every route (`/graphql`,
 * `/graphql/stream`, and the steps of single-connection mode) with every kind of `Accept`, the
 * streams the hub has registered (`tidings_hub_streams` at `/metrics`) are exactly the streams the
 * `streams` admin query lists. A subscription is either a stream of the graphql-sse handler, or
 * refused with a 4xx and an error code; graphql-yoga never runs one itself.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../transport/helpers.js';
import { tserver, type TServer } from '../tserver.js';

const SUBSCRIPTION = 'subscription { eventStream(inboxes: ["counted"]) { cursor type } }';
/** `Accept` headers, `null` for none; media types are case-insensitive. */
const ACCEPTS = [
  'text/event-stream',
  'Text/Event-Stream',
  'TEXT/EVENT-STREAM, */*',
  'multipart/mixed',
  'multipart/mixed, application/json',
  'application/json',
  'application/graphql-response+json',
  '*/*',
  null,
];
const isStreamAccept = (accept: string | null) => /text\/event-stream/i.test(accept ?? '');

let s: TServer;
beforeAll(async () => {
  s = await tserver();
});
afterAll(() => s.stop());

/** Responses left open by a test; aborted after it, once the hub is empty again. */
const aborts: AbortController[] = [];
afterEach(async () => {
  for (const controller of aborts.splice(0)) controller.abort();
  await waitFor(() => s.app.hub.size === 0, 'every stream to end');
  await expectCounted('after the test', 0);
});

/** Sends a request whose response may stay open; resolves once its headers arrived. */
function send(path: string, method: string, headers: Record<string, string>, body?: unknown) {
  const controller = new AbortController();
  aborts.push(controller);
  return fetch(`${s.url}${path}`, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: controller.signal,
  });
}

const acceptHeader = (accept: string | null): Record<string, string> =>
  accept === null ? {} : { accept };

/** Checks that the hub's count at `/metrics` equals the streams listed (and `listed` if given). */
async function expectCounted(what: string, listed?: number): Promise<void> {
  const metrics = await (await fetch(`${s.url}/metrics`)).text();
  const line = /^tidings_hub_streams (\d+)$/m.exec(metrics);
  const result = await s.gql<{ streams: { id: string }[] }>('{ streams { id } }');
  const streams = result.data?.streams.length;
  expect({ what, hub: line ? Number(line[1]) : null }).toEqual({ what, hub: streams });
  expect(s.app.hub.size).toBe(streams);
  if (listed !== undefined) expect({ what, streams }).toEqual({ what, streams: listed });
}

/** Checks that a response is an event stream, or a 4xx with a JSON error code. */
async function expectStreamOrRefusal(res: Response, stream: boolean, what: string) {
  if (stream) {
    expect({ what, status: res.status }).toEqual({ what, status: 200 });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream\b/);
    return;
  }
  const body = (await res.json()) as { errors?: { extensions?: { code?: string } }[] };
  expect({ what, client: res.status >= 400 && res.status < 500 }).toEqual({ what, client: true });
  expect(body.errors?.[0]?.extensions?.code).toMatch(/^[A-Z_]+$/);
}

describe.each(ACCEPTS)('streams counted, Accept: %s', (accept) => {
  const stream = isStreamAccept(accept);
  const query = `query=${encodeURIComponent(SUBSCRIPTION)}`;

  it.each([
    { name: 'GET /graphql', method: 'GET', path: `/graphql?${query}` },
    { name: 'POST /graphql', method: 'POST', path: '/graphql' },
    { name: 'GET /graphql/stream', method: 'GET', path: `/graphql/stream?${query}` },
    { name: 'POST /graphql/stream', method: 'POST', path: '/graphql/stream' },
  ])('should count a distinct-connections $name once, or refuse it', async (c) => {
    const what = `${c.name} (Accept: ${accept})`;
    const body = c.method === 'POST' ? { query: SUBSCRIPTION } : undefined;
    const res = await send(c.path, c.method, acceptHeader(accept), body);
    await expectStreamOrRefusal(res, stream, what);
    await expectCounted(what, stream ? 1 : 0);
  });

  it('should count the operations of a single-connection reservation at every step', async () => {
    const path = '/graphql/stream';
    const reserved = await send(path, 'PUT', acceptHeader(accept));
    expect(reserved.status).toBe(201);
    const token = await reserved.text();
    const withToken = { 'x-graphql-event-stream-token': token };
    await expectCounted(`PUT (Accept: ${accept})`, 0);

    const op = (id: string) => ({ query: SUBSCRIPTION, extensions: { operationId: id } });
    const first = await send(path, 'POST', { accept: 'application/json', ...withToken }, op('a'));
    expect(first.status).toBe(202);
    await expectCounted('an operation on the reservation, before its stream', 1);

    // With an event-stream Accept a GET opens the stream; otherwise a GET with the token is an
    // operation in the query string, here without one (400).
    const opened = await send(path, 'GET', { ...acceptHeader(accept), ...withToken });
    await expectStreamOrRefusal(opened, stream, `GET with the token (Accept: ${accept})`);
    await expectCounted(`GET with the token (Accept: ${accept})`, 1);

    // With an event-stream Accept a POST opens the stream (409: it is open); otherwise it runs.
    const second = await send(path, 'POST', { ...acceptHeader(accept), ...withToken }, op('b'));
    expect(second.status).toBe(stream ? 409 : 202);
    await expectCounted(`POST with the token (Accept: ${accept})`, stream ? 1 : 2);

    for (const id of ['a', 'b']) {
      const stop = await fetch(`${s.url}${path}?operationId=${id}`, {
        method: 'DELETE',
        headers: withToken,
      });
      expect(stop.status).toBe(200);
    }
  });
});
