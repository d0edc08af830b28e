/**
 * Errors on the stream endpoints: bad cursors and invalid operations as the graphql-sse client
 * sees them, and the edges of the single-connection protocol (reservations, tokens, operation
 * ids), read with plain `fetch`.
 */
import { describe, expect, it } from 'vitest';
import { encodeCursor } from '../../src/events/cursor.js';
import { tsubscribe } from '../tserver.js';
import {
  dataOf,
  rawPost,
  rawStream,
  STREAM_QUERY,
  waitFor,
  type RawStream,
  serverWithRawStreams,
} from './helpers.js';

const t = serverWithRawStreams();
const { open } = t;

const streamUrl = () => `${t.s.url}/graphql/stream`;

type ErrorResult = { errors?: { message: string; extensions?: Record<string, unknown> }[] };

describe.each([false, true])('stream errors, singleConnection=%s', (singleConnection) => {
  /** Subscribes and waits for the stream to end; returns what the client saw. */
  async function ended(variables: Record<string, unknown>, query = STREAM_QUERY) {
    const sub = tsubscribe(t.s.client({ singleConnection }), query, variables);
    await waitFor(() => sub.completed || !!sub.failure, 'the stream to end');
    return sub;
  }

  it('should answer a malformed after cursor with a BAD_CURSOR error, then complete', async () => {
    const sub = await ended({ after: 'not-a-cursor' });
    expect(sub.failure).toBeNull();
    expect(sub.completed).toBe(true);
    expect(sub.results).toHaveLength(1);
    const [result] = sub.results as ErrorResult[];
    expect(result?.errors?.[0]?.extensions?.code).toBe('BAD_CURSOR');
    expect(result?.errors?.[0]?.message).toContain('not a Tidings cursor');
  });

  it('should answer a cursor past the newest event with a BAD_CURSOR error, then complete', async () => {
    const [newest] = await t.s.app.publish([{ type: 'newest' }]);
    const sub = await ended({ after: encodeCursor((newest?.seq ?? 0) + 1000) });
    expect(sub.failure).toBeNull();
    expect(sub.completed).toBe(true);
    const [result] = sub.results as ErrorResult[];
    expect(sub.results).toHaveLength(1);
    expect(result?.errors?.[0]?.extensions?.code).toBe('BAD_CURSOR');
    expect(result?.errors?.[0]?.message).toContain('past the newest stored event');
    expect(t.s.app.hub.size).toBe(0);
  });
});

describe('invalid operations', () => {
  it('should send a validation error as a next frame with status 200 in distinct connections mode, then complete', async () => {
    const raw = await rawPost(streamUrl(), 'subscription { eventStream { nope } }');
    open.push(raw);
    expect(raw.response.status).toBe(200);
    await raw.waitEnd();
    const events = raw.frames.filter((f) => !f.retry).map((f) => f.event);
    expect(events).toEqual(['next', 'complete']);
    const next = raw.frames.find((f) => f.event === 'next');
    const result = next ? dataOf<ErrorResult & { data?: unknown }>(next) : null;
    expect(result?.data).toBeUndefined();
    expect(result?.errors?.[0]?.message).toMatch(/Cannot query field "nope"/);
  });

  it('should give the graphql-sse client a validation error as a result, then complete, in distinct connections mode', async () => {
    const sub = tsubscribe(t.s.client(), 'subscription { eventStream { nope } }');
    await waitFor(() => sub.completed || !!sub.failure, 'the stream to end');
    expect(sub.failure).toBeNull();
    expect((sub.results[0] as ErrorResult).errors?.[0]?.message).toMatch(/nope/);
  });

  it('should send a syntax error as a next frame in distinct connections mode', async () => {
    const raw = await rawPost(streamUrl(), 'subscription {');
    open.push(raw);
    expect(raw.response.status).toBe(200);
    await raw.waitEnd();
    const next = raw.frames.find((f) => f.event === 'next');
    expect(next && dataOf<ErrorResult>(next).errors?.[0]?.message).toMatch(/Syntax Error/);
  });

  it('should refuse a mutation sent with GET in distinct connections mode, storing nothing', async () => {
    const before = await t.s.app.store.lastSeq();
    const url = new URL(streamUrl());
    url.searchParams.set('query', 'mutation { publishEvent(input: { type: "over.get" }) { id } }');
    const raw = await rawStream(url.toString(), { headers: { accept: 'text/event-stream' } });
    open.push(raw);
    await raw.waitEnd();
    const next = raw.frames.find((f) => f.event === 'next');
    expect(next && dataOf<ErrorResult>(next).errors?.[0]?.message).toMatch(/GET/);
    expect(await t.s.app.store.lastSeq()).toBe(before);
  });

  it('should let a mutation through over POST on the stream endpoint', async () => {
    const raw = await rawPost(
      streamUrl(),
      'mutation { publishEvent(input: { type: "over.post", inbox: "errors-post" }) { type } }',
    );
    open.push(raw);
    await raw.waitEnd();
    const next = raw.frames.find((f) => f.event === 'next');
    expect(next && dataOf(next)).toEqual({ data: { publishEvent: { type: 'over.post' } } });
  });
});

describe('single connection protocol', () => {
  /** Reserves a stream; returns its token. */
  async function reserve(): Promise<string> {
    const res = await fetch(streamUrl(), { method: 'PUT' });
    expect(res.status).toBe(201);
    const token = await res.text();
    expect(token).toMatch(/^[\w-]{16,}$/);
    return token;
  }

  /** Reserves and connects a stream; returns the token and the raw stream. */
  async function connect(): Promise<{ token: string; raw: RawStream }> {
    const token = await reserve();
    const raw = await rawStream(streamUrl(), {
      headers: { accept: 'text/event-stream', 'x-graphql-event-stream-token': token },
    });
    open.push(raw);
    expect(raw.response.status).toBe(200);
    return { token, raw };
  }

  /** POSTs an operation with the token. */
  function operate(token: string, body: Record<string, unknown>, method = 'POST') {
    return fetch(streamUrl(), {
      method,
      headers: { 'content-type': 'application/json', 'x-graphql-event-stream-token': token },
      body: JSON.stringify(body),
    });
  }

  it('should answer PUT with 201 and a token, and open the stream with it', async () => {
    const { raw } = await connect();
    expect(raw.response.headers.get('content-type')).toMatch(/^text\/event-stream\b/);
    expect(raw.response.headers.get('x-accel-buffering')).toBe('no');
    await raw.waitFor((f) => f.retry !== null, 'the retry hint');
  });

  it('should refuse a second stream on the same token with 409', async () => {
    const { token } = await connect();
    const second = await fetch(streamUrl(), {
      headers: { accept: 'text/event-stream', 'x-graphql-event-stream-token': token },
    });
    expect(second.status).toBe(409);
    await second.body?.cancel();
  });

  it('should run an operation with 202 and tag its frames with the operation id, ids on next frames', async () => {
    const { token, raw } = await connect();
    const res = await operate(token, {
      query: STREAM_QUERY,
      variables: { inboxes: ['single-proto'] },
      extensions: { operationId: 'op-1' },
    });
    expect(res.status).toBe(202);
    await waitFor(() => t.s.app.hub.size === 1, 'the operation to start');
    const [event] = await t.s.app.publish([{ type: 'proto', inbox: 'single-proto' }]);
    const next = await raw.waitFor((f) => f.event === 'next', 'the next frame');
    expect(next.id).toBe(event?.cursor);
    const data = dataOf<{ id: string; payload: { data: { eventStream: { cursor: string } } } }>(
      next,
    );
    expect(data.id).toBe('op-1');
    expect(data.payload.data.eventStream.cursor).toBe(event?.cursor);

    const del = await fetch(`${streamUrl()}?operationId=op-1`, {
      method: 'DELETE',
      headers: { 'x-graphql-event-stream-token': token },
    });
    expect(del.status).toBe(200);
    await waitFor(() => t.s.app.hub.size === 0, 'the operation to stop');
  });

  it('should send the complete frame of a finished operation with its id', async () => {
    const { token, raw } = await connect();
    const res = await operate(token, {
      query: '{ __typename }',
      extensions: { operationId: 'q-1' },
    });
    expect(res.status).toBe(202);
    const complete = await raw.waitFor((f) => f.event === 'complete', 'the complete frame');
    expect(complete.raw).toBe('event: complete\ndata: {"id":"q-1"}');
    const next = raw.frames.find((f) => f.event === 'next');
    expect(next && dataOf(next)).toEqual({ id: 'q-1', payload: { data: { __typename: 'Query' } } });
  });

  it('should send results produced before the stream connected once it does', async () => {
    const token = await reserve();
    const res = await operate(token, {
      query: '{ __typename }',
      extensions: { operationId: 'early' },
    });
    expect(res.status).toBe(202);
    const raw = await rawStream(streamUrl(), {
      headers: { accept: 'text/event-stream', 'x-graphql-event-stream-token': token },
    });
    open.push(raw);
    await raw.waitFor((f) => f.event === 'complete', 'the complete frame');
    expect(raw.frames.map((f) => f.event ?? (f.retry ? 'retry' : 'comment'))).toEqual([
      'retry',
      'next',
      'complete',
    ]);
  });

  it('should answer an operation without operationId with 400', async () => {
    const { token } = await connect();
    const res = await operate(token, { query: STREAM_QUERY });
    expect(res.status).toBe(400);
    expect(((await res.json()) as ErrorResult).errors?.[0]?.message).toMatch(/operationId/);
    expect(t.s.app.hub.size).toBe(0);
  });

  it('should answer an operation id already in use with 409', async () => {
    const { token } = await connect();
    const body = { query: STREAM_QUERY, extensions: { operationId: 'twice' } };
    expect((await operate(token, body)).status).toBe(202);
    expect((await operate(token, body)).status).toBe(409);
    expect(t.s.app.hub.size).toBe(1);
  });

  it('should answer an invalid operation with 400 and its errors', async () => {
    const { token } = await connect();
    const res = await operate(token, {
      query: 'subscription { eventStream { nope } }',
      extensions: { operationId: 'bad' },
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as ErrorResult).errors?.[0]?.message).toMatch(/nope/);
  });

  it('should answer an unknown token with 404', async () => {
    const res = await operate('no-such-token', {
      query: STREAM_QUERY,
      extensions: { operationId: 'x' },
    });
    expect(res.status).toBe(404);
    const del = await fetch(`${streamUrl()}?operationId=x`, {
      method: 'DELETE',
      headers: { 'x-graphql-event-stream-token': 'no-such-token' },
    });
    expect(del.status).toBe(404);
  });

  it.each([
    ['GET', 'header'],
    ['GET', 'query string'],
    ['POST', 'header'],
    ['POST', 'query string'],
  ])(
    'should answer a %s for the stream with an unknown or dropped token in the %s with 404, opening nothing',
    async (method, where) => {
      const { token: dropped, raw } = await connect();
      raw.close();
      await waitFor(() => t.s.app.sse.size === 0, 'the reservation to be dropped');
      for (const token of ['no-such-token', dropped]) {
        const url = new URL(streamUrl());
        if (where === 'query string') url.searchParams.set('token', token);
        else url.searchParams.set('query', STREAM_QUERY);
        const res = await fetch(url, {
          method,
          headers: {
            accept: 'text/event-stream',
            ...(where === 'header' ? { 'x-graphql-event-stream-token': token } : {}),
            ...(method === 'POST' ? { 'content-type': 'application/json' } : {}),
          },
          body: method === 'POST' ? JSON.stringify({ query: STREAM_QUERY }) : undefined,
        });
        // A stream opened by mistake is closed at once, so it cannot hold up the next tests.
        if (res.status !== 404) await res.body?.cancel();
        expect(res.status).toBe(404);
        const body = (await res.json()) as ErrorResult;
        expect(body.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
        expect(body.errors?.[0]?.message).toMatch(/make a new one with PUT/);
        expect(t.s.app.hub.size).toBe(0);
        expect(t.s.app.sse.size).toBe(0);
      }
    },
  );

  it('should answer DELETE without operationId with 400', async () => {
    const { token } = await connect();
    const res = await fetch(streamUrl(), {
      method: 'DELETE',
      headers: { 'x-graphql-event-stream-token': token },
    });
    expect(res.status).toBe(400);
  });

  it('should refuse a mutation sent with GET, storing nothing', async () => {
    const { token } = await connect();
    const before = await t.s.app.store.lastSeq();
    const url = new URL(streamUrl());
    url.searchParams.set('query', 'mutation { publishEvent(input: { type: "over.get" }) { id } }');
    url.searchParams.set('extensions', JSON.stringify({ operationId: 'm' }));
    const res = await fetch(url, { headers: { 'x-graphql-event-stream-token': token } });
    expect(res.status).toBe(400);
    expect(((await res.json()) as ErrorResult).errors?.[0]?.message).toMatch(/GET/);
    expect(await t.s.app.store.lastSeq()).toBe(before);
  });

  it('should drop the reservation and its operations when the stream closes', async () => {
    const { token, raw } = await connect();
    expect(
      (
        await operate(token, {
          query: STREAM_QUERY,
          extensions: { operationId: 'o' },
        })
      ).status,
    ).toBe(202);
    await waitFor(() => t.s.app.hub.size === 1, 'the operation to start');
    raw.close();
    await waitFor(() => t.s.app.hub.size === 0, 'the operation to stop');
    const res = await operate(token, { query: STREAM_QUERY, extensions: { operationId: 'p' } });
    expect(res.status).toBe(404);
  });
});
