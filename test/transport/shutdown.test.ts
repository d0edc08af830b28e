/**
 * Shutdown drains: `stop()` ends every open stream with a `SHUTTING_DOWN` error the client can
 * see (a resume hint), then completes it, and new requests are refused.
 */
import { createClient } from 'graphql-sse';
import { describe, expect, it } from 'vitest';
import { createSqliteStore } from '../../src/store/sqlite.js';
import { tserver, tsubscribe } from '../tserver.js';
import { dataOf, rawPost, STREAM_QUERY, waitFor, withLatency } from './helpers.js';

type ErrorResult = { errors?: { message: string; extensions?: Record<string, unknown> }[] };

describe.each([false, true])('shutdown, singleConnection=%s', (singleConnection) => {
  it('should end open streams with a SHUTTING_DOWN error, then complete', async () => {
    const s = await tserver();
    // Not `s.client()`: `s.stop()` disposes those first, and this one must see the shutdown.
    const client = createClient({
      url: `${s.url}/graphql/stream`,
      singleConnection,
      retryAttempts: 0,
    });
    try {
      const subs = [
        tsubscribe(client, STREAM_QUERY, { inboxes: ['shut'] }),
        tsubscribe(client, STREAM_QUERY, {}),
      ];
      await waitFor(() => s.app.hub.size === 2, 'both streams to be registered');
      const [event] = await s.app.publish([{ type: 'before.stop', inbox: 'shut' }]);
      await Promise.all(subs.map((sub) => sub.next(1)));

      await s.stop();
      for (const sub of subs) {
        await waitFor(() => sub.completed || !!sub.failure, 'the stream to end');
        expect(sub.failure).toBeNull();
        expect(sub.completed).toBe(true);
        const last = sub.results.at(-1) as ErrorResult;
        expect(last.errors?.[0]?.extensions?.code).toBe('SHUTTING_DOWN');
        expect(last.errors?.[0]?.message).toMatch(/resume from the last cursor/);
      }
      expect(
        (subs[0]?.results[0] as { data?: { eventStream: { cursor: string } } }).data?.eventStream
          .cursor,
      ).toBe(event?.cursor);
      expect(s.app.hub.size).toBe(0);
      expect(s.app.sse.size).toBe(0);
    } finally {
      client.dispose();
      await s.stop();
    }
  });
});

describe.each([false, true])(
  'shutdown of a busy stream, singleConnection=%s',
  (singleConnection) => {
    it('should still end with the SHUTTING_DOWN hint, after a gapless prefix, when events are queued', async () => {
      // Executing an event waits for the store (parent, children), as with a networked store.
      const s = await tserver({}, { store: withLatency(createSqliteStore({ path: ':memory:' })) });
      const client = createClient({
        url: `${s.url}/graphql/stream`,
        singleConnection,
        retryAttempts: 0,
      });
      try {
        const stored = [];
        for (let i = 0; i < 4; i++) {
          stored.push(
            ...(await s.app.publish(
              Array.from({ length: 1000 }, (_, j) => ({ type: 'busy', message: `${i}/${j}` })),
            )),
          );
        }
        const sub = tsubscribe<{ eventStream: { cursor: string } }>(
          client,
          'subscription($after: String) { eventStream(after: $after) { cursor message parent { id } children { id } } }',
          { after: '000000000000' },
        );
        await sub.next(10);
        await s.stop();
        await waitFor(() => sub.completed || !!sub.failure, 'the stream to end');
        expect(sub.failure).toBeNull();
        const last = sub.results.at(-1) as ErrorResult;
        expect(last.errors?.[0]?.extensions?.code).toBe('SHUTTING_DOWN');
        const cursors = sub.results.slice(0, -1).map((r) => r.data?.eventStream.cursor);
        expect(cursors).toEqual(stored.slice(0, cursors.length).map((e) => e.cursor));
        expect(cursors.length).toBeLessThan(stored.length);
      } finally {
        client.dispose();
        await s.stop();
      }
    });
  },
);

describe('shutdown on the wire', () => {
  it('should write the SHUTTING_DOWN next frame and the complete frame before closing the response', async () => {
    const s = await tserver();
    try {
      const raw = await rawPost(`${s.url}/graphql/stream`, STREAM_QUERY, {});
      await waitFor(() => s.app.hub.size === 1, 'the stream to be registered');
      await s.stop();
      await raw.waitEnd();
      const frames = raw.frames.filter((f) => !f.retry && !f.comment);
      expect(frames.map((f) => f.event)).toEqual(['next', 'complete']);
      const error = dataOf<ErrorResult>(frames[0] as (typeof frames)[number]).errors?.[0];
      expect(error?.extensions?.code).toBe('SHUTTING_DOWN');
      expect(frames[0]?.id).toBeNull();
    } finally {
      await s.stop();
    }
  });

  it('should refuse new stream requests with 503 while shutting down', async () => {
    const s = await tserver();
    const stopping = s.app.close();
    const res = await fetch(`${s.url}/graphql/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: STREAM_QUERY }),
    });
    expect(res.status).toBe(503);
    expect(res.headers.get('connection')).toBe('close');
    await res.body?.cancel();
    await stopping;
    await s.stop();
  });
});

describe('shutdown drains publishes', () => {
  it('should store and deliver the publishes already accepted, refuse new ones, then end streams', async () => {
    const s = await tserver();
    try {
      const raw = await rawPost(`${s.url}/graphql/stream`, STREAM_QUERY, { inboxes: ['drain'] });
      await waitFor(() => s.app.hub.size === 1, 'the stream to be registered');
      // Accepted before the shutdown starts, committed during it.
      const accepted = Array.from({ length: 20 }, (_, i) =>
        s.app.publish([{ type: 'in.flight', inbox: 'drain', message: String(i) }]),
      );
      const stopping = s.app.close();
      await expect(s.app.emit({ type: 'too.late', inbox: 'drain' })).rejects.toMatchObject({
        code: 'SHUTTING_DOWN',
      });
      const late = await s.gql('mutation { publishEvent(input: { type: "too.late" }) { id } }');
      expect(late.errors?.[0]?.extensions?.code).toBe('SHUTTING_DOWN');
      const stored = (await Promise.all(accepted)).flat();
      await stopping;
      await raw.waitEnd();
      const nexts = raw.frames.filter((f) => f.event === 'next');
      expect(nexts.map((f) => f.id)).toEqual([...stored.map((e) => e.cursor), null]);
      expect(
        dataOf<ErrorResult>(nexts.at(-1) as (typeof nexts)[number]).errors?.[0]?.extensions,
      ).toMatchObject({ code: 'SHUTTING_DOWN' });
    } finally {
      await s.stop();
    }
  });
});
