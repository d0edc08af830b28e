/**
 * Replay then live: `after: <cursor>` replays the stored events after that cursor, then goes on
 * live, with no gap and no duplicate across the switch, even while publishers are busy.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../src/events/types.js';
import type { PublishEventInput } from '../../src/events/validate.js';
import { createSqliteStore } from '../../src/store/sqlite.js';
import { tserver, type TServer } from '../tserver.js';
import {
  eventsOf,
  random,
  streams,
  waitFor,
  withLatency,
  type Subscription,
  serverWithStreams,
} from './helpers.js';

const t = serverWithStreams();

/** Every stored event, oldest first, straight from the store. */
async function storedEvents(server: TServer): Promise<StoredEvent[]> {
  const all: StoredEvent[] = [];
  for (;;) {
    const { events: batch } = await server.app.store.readAfter(all.at(-1)?.seq ?? 0, [], 1000);
    all.push(...batch);
    if (batch.length < 1000) return all;
  }
}

describe.each([false, true])('replay then live, singleConnection=%s', (singleConnection) => {
  const inbox = `replay-${singleConnection}`;

  it('should replay the stored events after the cursor, then continue live', async () => {
    const stored = await t.s.app.publish(
      Array.from({ length: 6 }, (_, i) => ({ type: `stored.${i}`, inbox })),
    );
    await t.s.app.publish([{ type: 'elsewhere', inbox: `${inbox}-other` }]);
    const sub = await t.subs.open(t.s.client({ singleConnection }), {
      inboxes: [inbox],
      after: stored[1]?.cursor,
    });
    await sub.next(4);
    const live = await t.s.app.publish([
      { type: 'live.0', inbox },
      { type: 'live.1', inbox },
    ]);
    await sub.next(6);
    expect(eventsOf(sub).map((e) => e.cursor)).toEqual(
      [...stored.slice(2), ...live].map((e) => e.cursor),
    );
  });

  it('should replay only what matches the stream, with the targeting of live delivery', async () => {
    const stored = await t.s.app.publish([
      { type: 'keep.a', inbox },
      { type: 'drop', inbox },
      { type: 'keep.b', inbox, clientId: 'me' },
      { type: 'keep.c', inbox, clientId: 'other' },
    ]);
    const sub = await t.subs.open(t.s.client({ singleConnection }), {
      inboxes: [inbox],
      clientId: 'me',
      filter: { types: ['keep.*'] },
      after: stored[0]?.cursor,
    });
    const [last] = await t.s.app.publish([{ type: 'keep.last', inbox }]);
    await sub.next(2);
    expect(eventsOf(sub).map((e) => e.cursor)).toEqual([stored[2]?.cursor, last?.cursor]);
  });

  it('should start live when `after` is the newest cursor', async () => {
    const [newest] = await t.s.app.publish([{ type: 'newest', inbox }]);
    const sub = await t.subs.open(t.s.client({ singleConnection }), {
      inboxes: [inbox],
      after: newest?.cursor,
    });
    const [next] = await t.s.app.publish([{ type: 'next', inbox }]);
    await sub.next(1);
    expect(eventsOf(sub).map((e) => e.cursor)).toEqual([next?.cursor]);
  });
});

describe('idempotent publish on a stream', () => {
  it('should deliver an event published twice with the same id once, live and in a replay', async () => {
    const inbox = 'idempotent-stream';
    const sub = await t.subs.open(t.s.client(), { inboxes: [inbox] });
    const input = { id: 'published-twice', type: 'idem', inbox, message: 'same' };
    const first = await t.s.gql(
      'mutation($i: PublishEventInput!) { publishEvent(input: $i) { cursor } }',
      { i: input },
    );
    const again = await t.s.gql(
      'mutation($i: PublishEventInput!) { publishEvent(input: $i) { cursor } }',
      { i: input },
    );
    expect(again.data).toEqual(first.data);
    const [after] = await t.s.app.publish([{ type: 'after', inbox }]);
    await sub.next(2);
    expect(eventsOf(sub).map((e) => e.id)).toEqual(['published-twice', after?.id]);
    const replayed = await t.subs.open(t.s.client(), { inboxes: [inbox], after: '000000000000' });
    await replayed.next(2);
    expect(eventsOf(replayed).map((e) => e.id)).toEqual(['published-twice', after?.id]);
  });
});

describe.each([
  ['sqlite::memory:', () => tserver()],
  [
    'sqlite::memory: answering with latency',
    () => tserver({}, { store: withLatency(createSqliteStore({ path: ':memory:' })) }),
  ],
])('replay racing concurrent publishers, %s', (_name, start) => {
  let s: TServer;
  const subs = streams(() => s);
  beforeAll(async () => {
    s = await start();
  });
  afterEach(() => subs.cleanup());
  afterAll(() => s.stop());

  it('should give every stream exactly the stored events after its cursor while 4 publishers run', async () => {
    const inbox = 'race';
    const rnd = random(42);
    const seed = await s.app.publish(
      Array.from({ length: 30 }, (_, i) => ({ type: `seed.${i % 3}`, inbox })),
    );
    const published: StoredEvent[] = [...seed];

    // Stream i opens once `gates[i]` events of the run are published; publishers wait at each
    // gate until that stream is registered, so every stream opens while publishing goes on.
    const gates = [10, 40, 75, 110, 150, 190, 230, 270];
    const variants: { singleConnection: boolean; clientId?: string; types?: string[] }[] = [
      { singleConnection: false },
      { singleConnection: true },
      { singleConnection: false, clientId: 'r1' },
      { singleConnection: true, types: ['race.even'] },
      { singleConnection: false, types: ['race.*'] },
      { singleConnection: true, clientId: 'r1' },
      { singleConnection: false },
      { singleConnection: true },
    ];
    const single = s.client({ singleConnection: true });
    const opened: {
      sub: Subscription;
      afterSeq: number;
      variant: (typeof variants)[number];
      publishedAtOpen: number;
    }[] = [];
    let runCount = 0;

    const publisher = async (p: number) => {
      for (let sent = 0; sent < 75;) {
        const crossed = gates.filter((g) => runCount >= g).length;
        await waitFor(() => opened.length >= crossed, `stream ${crossed - 1} to open`);
        const size = Math.min(75 - sent, 1 + Math.floor(rnd() * 5));
        const batch: PublishEventInput[] = Array.from({ length: size }, (_, i) => {
          const n = sent + i;
          const r = rnd();
          return {
            type: n % 2 === 0 ? 'race.even' : 'race.odd',
            inbox: r < 0.1 ? 'race-other' : inbox,
            clientId: r > 0.85 ? (r > 0.93 ? 'r1' : 'r2') : null,
            message: `p${p} #${n}`,
          };
        });
        const stored = await s.app.publish(batch);
        published.push(...stored);
        runCount += size;
        sent += size;
        // Let the server read requests between batches.
        await new Promise((resolve) => setImmediate(resolve));
      }
    };

    const opener = async () => {
      for (const [i, gate] of gates.entries()) {
        await waitFor(() => runCount >= gate, `${gate} events to be published`);
        const variant = variants[i] ?? { singleConnection: false };
        // Anything from the first seed event to the newest one published so far.
        const from = published[Math.floor(rnd() * published.length)] as StoredEvent;
        const before = s.app.hub.size;
        const sub = await subs.open(variant.singleConnection ? single : s.client(), {
          inboxes: [inbox],
          clientId: variant.clientId,
          filter: variant.types ? { types: variant.types } : null,
          after: from.cursor,
        });
        expect(s.app.hub.size).toBe(before + 1);
        opened.push({ sub, afterSeq: from.seq, variant, publishedAtOpen: runCount });
      }
    };

    await Promise.all([opener(), ...[0, 1, 2, 3].map(publisher)]);
    expect(runCount).toBe(300);
    expect(opened.every((o) => o.publishedAtOpen < 300)).toBe(true);

    // A last event every stream matches: once it arrived, nothing else can still come.
    const [end] = await s.app.publish([{ type: 'race.even', inbox, message: 'end' }]);
    const all = (await storedEvents(s)).filter((e) => e.seq >= (seed[0] as StoredEvent).seq);
    expect(all.map((e) => e.seq)).toEqual(
      [...published, end as StoredEvent].map((e) => e.seq).sort((a, b) => a - b),
    );
    for (const { sub, afterSeq, variant } of opened) {
      const expected = all.filter(
        (e) =>
          e.seq > afterSeq &&
          e.inbox === inbox &&
          (e.clientId === null || e.clientId === variant.clientId) &&
          (!variant.types ||
            variant.types.some((t) =>
              t.endsWith('*') ? e.type.startsWith(t.slice(0, -1)) : e.type === t,
            )),
      );
      await sub.next(expected.length);
      const cursors = eventsOf(sub).map((e) => e.cursor);
      expect({ variant, afterSeq, cursors }).toEqual({
        variant,
        afterSeq,
        cursors: expected.map((e) => e.cursor),
      });
      expect(cursors.at(-1)).toBe(end?.cursor);
      for (let i = 1; i < cursors.length; i++) {
        expect((cursors[i] as string) > (cursors[i - 1] as string)).toBe(true);
      }
    }
  });
});
