/**
 * A resume point older than the retained history gets an explicit `HISTORY_GAP` signal in the
 * stream, never a silent partial replay: a `next` frame with the error (its `id:` is the retention
 * horizon), then the retained events after it, then live ones.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HistoryGapError } from '../../src/errors.js';
import { encodeCursor } from '../../src/events/cursor.js';
import { SEE_EVERYTHING, type StoredEvent } from '../../src/events/types.js';
import { iterateStream, type StreamItem } from '../../src/hub/iterate.js';
import { toStreamSpec } from '../../src/schema/index.js';
import { requireCapability } from '../../src/store/index.js';
import { tserver, type TServer } from '../tserver.js';
import {
  dataOf,
  rawStream,
  STREAM_QUERY,
  streams,
  waitFor,
  type StreamedEvent,
  type Subscription,
} from './helpers.js';

type GapError = {
  message: string;
  extensions: { code: string; after: string; purgedThrough: string };
};

let s: TServer;
const subs = streams(() => s);
let old: StoredEvent[];
beforeEach(async () => {
  s = await tserver();
  old = await s.app.publish(
    Array.from({ length: 6 }, (_, i) => ({ type: `old.${i}`, inbox: 'gap' })),
  );
  await waitFor(() => Date.now() > (old[0]?.receivedAt ?? Infinity), 'the clock to move');
  // Retention removes the four oldest events.
  await requireCapability(s.app.store, 'retention', 'the test').purge(Date.now(), 4);
});
afterEach(async () => {
  await subs.cleanup();
  await s.stop();
});

const horizon = () => old[3]?.cursor as string;
const retained = () => old.slice(4).map((e) => e.cursor);

/** The results of a subscription: a gap error first, then events. */
function split(sub: Subscription) {
  const [first, ...rest] = sub.results;
  return {
    gap: (first?.errors?.[0] ?? null) as GapError | null,
    firstData: first?.data ?? null,
    cursors: rest.map((r) => (r.data?.eventStream as StreamedEvent).cursor),
  };
}

describe.each([false, true])('history gap, singleConnection=%s', (singleConnection) => {
  it('should signal the gap, then replay what is retained, then go live', async () => {
    const sub = await subs.open(s.client({ singleConnection }), {
      inboxes: ['gap'],
      after: old[0]?.cursor,
    });
    await sub.next(3);
    const [live] = await s.app.publish([{ type: 'live', inbox: 'gap' }]);
    await sub.next(4);
    const { gap, firstData, cursors } = split(sub);
    expect(firstData ?? null).toBeNull();
    expect(gap?.extensions).toEqual({
      code: 'HISTORY_GAP',
      after: old[0]?.cursor,
      purgedThrough: horizon(),
    });
    expect(gap?.message).toMatch(/removed by retention.*continues with the oldest retained event/);
    expect(cursors).toEqual([...retained(), live?.cursor]);
    expect(sub.completed).toBe(false);
  });

  it('should not signal anything when the cursor is at or after the horizon', async () => {
    const sub = await subs.open(s.client({ singleConnection }), {
      inboxes: ['gap'],
      after: horizon(),
    });
    await sub.next(2);
    expect(sub.results.map((r) => (r.data?.eventStream as StreamedEvent).cursor)).toEqual(
      retained(),
    );
  });
});

describe('history gap for an EventSource', () => {
  it('should carry the horizon as the frame id, so a reconnection with Last-Event-ID resumes after it', async () => {
    const url = `${s.url}/graphql/stream?query=${encodeURIComponent(STREAM_QUERY)}&variables=${encodeURIComponent(JSON.stringify({ inboxes: ['gap'] }))}`;
    const headers = { accept: 'text/event-stream' };
    const first = await rawStream(url, {
      headers: { ...headers, 'last-event-id': old[1]?.cursor as string },
    });
    const gapFrame = await first.waitFor((f) => f.event === 'next', 'the gap frame');
    expect(gapFrame.id).toBe(horizon());
    expect(dataOf(gapFrame).errors?.[0]?.extensions?.code).toBe('HISTORY_GAP');
    await first.waitFor((f) => f.id === old[5]?.cursor, 'the last retained event');
    first.close();

    // What a browser does after a drop: the same URL, with the last id it saw.
    const again = await rawStream(url, { headers: { ...headers, 'last-event-id': horizon() } });
    const next = await again.waitFor((f) => f.event === 'next', 'the first frame');
    expect(next.id).toBe(old[4]?.cursor);
    expect(dataOf(next).errors).toBeUndefined();
    again.close();
  });
});

describe('history gap in-process', () => {
  it('should come to a pulling iterator as a HistoryGapError item, then the retained events', async () => {
    const spec = toStreamSpec({ inboxes: ['gap'], after: encodeCursor(0) }, SEE_EVERYTHING);
    const items: StreamItem[] = [];
    for await (const item of iterateStream(s.app.hub, spec)) {
      items.push(item);
      if (items.length === 3) break;
    }
    const [gap, ...events] = items;
    expect(gap).toBeInstanceOf(HistoryGapError);
    expect(gap).toMatchObject({
      message: expect.stringMatching(/removed by retention/),
      code: 'HISTORY_GAP',
      details: { after: encodeCursor(0), purgedThrough: horizon() },
    });
    expect(events.map((e) => (e as StoredEvent).cursor)).toEqual(retained());
    await waitFor(() => s.app.hub.size === 0, 'the iterator to close its stream');
  });
});
