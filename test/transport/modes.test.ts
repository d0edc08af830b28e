/**
 * Both graphql-sse modes, with the real client: live delivery in cursor order, and unsubscribing
 * removes the stream from the hub (in single connection mode through `DELETE ?operationId`).
 */
import { describe, expect, it } from 'vitest';
import { tsubscribe } from '../tserver.js';
import { eventsOf, STREAM_QUERY, waitFor, serverWithStreams } from './helpers.js';

const t = serverWithStreams();

describe.each([false, true])('graphql-sse client, singleConnection=%s', (singleConnection) => {
  const inbox = `modes-${singleConnection}`;

  it('should deliver live events in cursor order, each exactly once', async () => {
    const sub = await t.subs.open(t.s.client({ singleConnection }), { inboxes: [inbox] });
    const published = [];
    for (let batch = 0; batch < 5; batch++) {
      const inputs = Array.from({ length: batch + 1 }, (_, i) => ({
        type: `order.${batch}.${i}`,
        inbox,
      }));
      published.push(...(await t.s.app.publish(inputs)));
    }
    await sub.next(published.length);
    const received = eventsOf(sub);
    expect(received.map((e) => e.cursor)).toEqual(published.map((e) => e.cursor));
    expect(received.map((e) => e.type)).toEqual(published.map((e) => e.type));
    expect(received.map((e) => e.id)).toEqual(published.map((e) => e.id));
    const cursors = received.map((e) => e.cursor);
    expect([...cursors].sort()).toEqual(cursors);
    expect(new Set(cursors).size).toBe(cursors.length);
  });

  it('should deliver an event published over HTTP with publishEvent', async () => {
    const sub = await t.subs.open(t.s.client({ singleConnection }), { inboxes: [inbox] });
    const res = await t.s.gql<{ publishEvent: { id: string; cursor: string } }>(
      'mutation($inbox: String) { publishEvent(input: { type: "over.http", inbox: $inbox }) { id cursor } }',
      { inbox },
    );
    expect(res.errors).toBeUndefined();
    await sub.next(1);
    expect(eventsOf(sub)).toEqual([
      expect.objectContaining({
        type: 'over.http',
        id: res.data?.publishEvent.id,
        cursor: res.data?.publishEvent.cursor,
      }),
    ]);
  });

  it('should remove the stream from the hub when the client unsubscribes', async () => {
    const sub = tsubscribe(t.s.client({ singleConnection }), STREAM_QUERY, { inboxes: [inbox] });
    await waitFor(() => t.s.app.hub.size === 1, 'the stream to be registered');
    sub.unsubscribe();
    await waitFor(() => t.s.app.hub.size === 0, 'the stream to leave the hub');
    await waitFor(() => t.s.app.sse.size === 0, 'the connection to close');
  });
});

describe('single connection mode', () => {
  it('should stop one operation with DELETE ?operationId while the connection and the other operations go on', async () => {
    const requests: { method: string; url: string; status: number }[] = [];
    const client = t.s.client({
      singleConnection: true,
      fetchFn: async (input: string | URL | Request, init?: RequestInit) => {
        const res = await fetch(input, init);
        requests.push({ method: init?.method ?? 'GET', url: String(input), status: res.status });
        return res;
      },
    });
    const first = await t.subs.open(client, { inboxes: ['single-a'] });
    const second = await t.subs.open(client, { inboxes: ['single-b'] });
    expect(t.s.app.hub.size).toBe(2);
    expect(t.s.app.sse.size).toBe(1);

    first.unsubscribe();
    await waitFor(() => t.s.app.hub.size === 1, 'the first operation to stop');
    await waitFor(() => requests.some((r) => r.method === 'DELETE'), 'the DELETE request');
    const deletes = requests.filter((r) => r.method === 'DELETE');
    expect(deletes).toHaveLength(1);
    expect(deletes[0]?.status).toBe(200);
    expect(new URL(deletes[0]?.url ?? '').searchParams.get('operationId')).toBeTruthy();
    expect(t.s.app.sse.size).toBe(1);

    await t.s.app.publish([
      { type: 'after.delete', inbox: 'single-a' },
      { type: 'after.delete', inbox: 'single-b' },
    ]);
    await second.next(1);
    expect(eventsOf(second).map((e) => e.inbox)).toEqual(['single-b']);
    expect(first.results).toEqual([]);

    second.unsubscribe();
    await waitFor(() => t.s.app.hub.size === 0, 'the second operation to stop');
    await waitFor(() => t.s.app.sse.size === 0, 'the lazy client to close its connection');
  });

  it('should multiplex several operations on one connection, each getting only its own results', async () => {
    const client = t.s.client({ singleConnection: true });
    const a = await t.subs.open(client, { inboxes: ['mux-a'] });
    const b = await t.subs.open(client, { inboxes: ['mux-b'] });
    const c = await t.subs.open(client, { inboxes: ['mux-a', 'mux-b'] });
    expect(t.s.app.sse.size).toBe(1);
    await t.s.app.publish([
      { type: 'one', inbox: 'mux-a' },
      { type: 'two', inbox: 'mux-b' },
      { type: 'three', inbox: 'mux-a' },
      { type: 'end', inbox: 'mux-a' },
      { type: 'end', inbox: 'mux-b' },
    ]);
    await Promise.all([a.next(3), b.next(2), c.next(5)]);
    expect(eventsOf(a).map((e) => e.type)).toEqual(['one', 'three', 'end']);
    expect(eventsOf(b).map((e) => e.type)).toEqual(['two', 'end']);
    expect(eventsOf(c).map((e) => e.type)).toEqual(['one', 'two', 'three', 'end', 'end']);
  });
});
