/**
 * A graphql-ws client that stops reading: once more than `maxQueueBytes` wait on its socket, every
 * operation of the socket ends with `SLOW_CONSUMER` after a gapless prefix of its events, and the
 * socket closes with 1013 (a graphql-ws client retries); a client of the same group that reads
 * goes on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../src/events/types.js';
import { tserver, tsubscribe, type TServer } from '../tserver.js';
import { waitFor } from './helpers.js';
import { twsRaw, twsUrl, type TWsMessage } from './tws.js';

const MAX_QUEUE_BYTES = 64 * 1024;
/** Events per publish, ~40 KB: under the limit, so the client that reads keeps up. */
const BATCH = 20;
/** At most this many events, ~12 MB: more than loopback's socket buffers absorb. */
const MAX_EVENTS = 6_000;

let s: TServer;
beforeAll(async () => {
  s = await tserver({ maxQueueBytes: MAX_QUEUE_BYTES });
});
afterAll(() => s.stop());

const QUERY = 'subscription { eventStream(inboxes: ["slow"]) { cursor body } }';

type Next = {
  data?: { eventStream: { cursor: string } };
  errors?: { extensions?: { code?: string } }[];
};

describe('a graphql-ws client that stops reading', () => {
  it('should get its events without a gap, then SLOW_CONSUMER on every operation, then close 1013, while a reader goes on', async () => {
    const slow = await twsRaw(twsUrl(s.url));
    await slow.init();
    slow.send({ id: 'a', type: 'subscribe', payload: { query: QUERY } });
    slow.send({ id: 'b', type: 'subscribe', payload: { query: QUERY } });
    const reader = tsubscribe<{ eventStream: { cursor: string } }>(s.ws(), QUERY);
    await waitFor(() => s.app.hub.size === 3, 'three streams');
    slow.ws.pause();

    const published: StoredEvent[] = [];
    while (s.app.hub.size > 1 && published.length < MAX_EVENTS) {
      const batch = await s.app.publish(
        Array.from({ length: BATCH }, (_, i) => ({
          type: 'slow',
          inbox: 'slow',
          body: { i, text: 'x'.repeat(2_000) },
        })),
      );
      published.push(...batch);
      await reader.next(published.length);
    }
    expect(s.app.hub.size).toBe(1);

    slow.ws.resume();
    const { code, reason } = await slow.closed;
    expect(code).toBe(1013);
    expect(reason).toMatch(/Slow consumer/);
    const cursors = published.map((e) => e.cursor);
    for (const id of ['a', 'b']) {
      const mine = slow.messages.filter((m: TWsMessage) => m.id === id);
      const nexts = mine.filter((m) => m.type === 'next').map((m) => m.payload as Next);
      const events = nexts.filter((n) => n.data).map((n) => n.data?.eventStream.cursor);
      expect(events.length).toBeGreaterThan(0);
      expect(events.length).toBeLessThan(published.length);
      expect(events).toEqual(cursors.slice(0, events.length));
      expect(nexts.at(-1)?.errors?.[0]?.extensions?.code).toBe('SLOW_CONSUMER');
      expect(mine.at(-1)?.type).toBe('complete');
    }

    // The reader got everything, and still gets what comes next.
    const [after] = await s.app.publish([{ type: 'slow', inbox: 'slow' }]);
    await reader.next(published.length + 1);
    expect(reader.results.map((r) => r.data?.eventStream.cursor)).toEqual([
      ...cursors,
      after?.cursor,
    ]);
    reader.unsubscribe();
    await waitFor(() => s.app.hub.size === 0, 'the reader’s stream to end');
  });
});
