import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createMemoryBus } from '../../src/bus/memory.js';
import { ConflictError, StoreUnavailableError } from '../../src/errors.js';
import { createPublisher } from '../../src/publish/publisher.js';
import type { StoredEvent } from '../../src/events/types.js';
import { createHub } from '../../src/hub/hub.js';
import { createSqliteStore } from '../../src/store/sqlite.js';
import type { EventStore } from '../../src/store/types.js';
import { byIds } from '../store/contract.js';

/** A real store whose appends commit at once but answer after a delay that shrinks per call. */
function slowToAnswer(inner: EventStore): EventStore {
  let delay = 60;
  return {
    ...inner,
    kind: inner.kind,
    append: async (events) => {
      const outcomes = await inner.append(events);
      delay = Math.max(0, delay - 3);
      await new Promise((resolve) => setTimeout(resolve, delay));
      return outcomes;
    },
  };
}

/** A store that records the size of every append it receives: one entry per transaction. */
function counting(inner: EventStore): { store: EventStore; appends: number[] } {
  const appends: number[] = [];
  return {
    appends,
    store: {
      ...inner,
      kind: inner.kind,
      append: (events) => {
        appends.push(events.length);
        return inner.append(events);
      },
    },
  };
}

/** A publisher on `store` whose bus deliveries are collected in `delivered`. */
function publisherOn(store: EventStore, options: { maxGroupEvents?: number } = {}) {
  const bus = createMemoryBus();
  const delivered: StoredEvent[] = [];
  bus.subscribe((events) => delivered.push(...events));
  const publish = createPublisher({
    store,
    bus,
    logger: pino({ level: 'silent' }),
    limits: { maxBodyBytes: 1024 },
    ...options,
  });
  return { publish, delivered };
}

describe('publish', () => {
  it.each([1, 1000])(
    'should hand events to the bus in cursor order even when appends answer out of order (groups of at most %i events)',
    async (maxGroupEvents) => {
      const store = slowToAnswer(createSqliteStore({ path: ':memory:' }));
      const bus = createMemoryBus();
      const hub = createHub({ store });
      bus.subscribe((events) => hub.dispatch(events));
      const publish = createPublisher({
        store,
        bus,
        logger: pino({ level: 'silent' }),
        limits: { maxBodyBytes: 1024 },
        maxGroupEvents,
      });
      const received: StoredEvent[] = [];
      hub.open(
        { clauses: [], inboxes: null, clientId: null, afterSeq: null },
        { deliver: (e) => received.push(e), gap: () => {}, end: () => {} },
      );

      await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          publish([{ type: 'order.check', message: String(i) }]),
        ),
      );

      expect(received.map((e) => e.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      await store.close();
    },
  );

  it('should keep publishing after a failed append', async () => {
    const inner = createSqliteStore({ path: ':memory:' });
    let fail = true;
    const store: EventStore = {
      ...inner,
      kind: inner.kind,
      append: (events) => (fail ? Promise.reject(new Error('disk full')) : inner.append(events)),
    };
    const publish = createPublisher({
      store,
      bus: createMemoryBus(),
      logger: pino({ level: 'silent' }),
      limits: { maxBodyBytes: 1024 },
    });
    await expect(publish([{ type: 'a' }])).rejects.toThrow('disk full');
    fail = false;
    await expect(publish([{ type: 'b' }])).resolves.toHaveLength(1);
    await inner.close();
  });

  it('should commit concurrent publishes in fewer transactions, each caller getting its own event', async () => {
    const inner = createSqliteStore({ path: ':memory:' });
    const { store, appends } = counting(inner);
    const { publish, delivered } = publisherOn(store);

    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        publish([{ id: `e${i}`, type: 'group.check', message: String(i) }]),
      ),
    );

    expect(appends.length).toBeLessThan(50);
    expect(appends.reduce((a, b) => a + b, 0)).toBe(50);
    expect(results.map((r) => r.map((e) => [e.id, e.message]))).toEqual(
      Array.from({ length: 50 }, (_, i) => [[`e${i}`, String(i)]]),
    );
    // Arrival order is cursor order, and the bus gets every event once, in that order.
    expect(results.map((r) => r[0]?.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(delivered.map((e) => e.id)).toEqual(Array.from({ length: 50 }, (_, i) => `e${i}`));
    expect(await inner.lastSeq()).toBe(50);
    await inner.close();
  });

  it('should let a conflicting caller fail alone while the others of its group succeed', async () => {
    const inner = createSqliteStore({ path: ':memory:' });
    const { store, appends } = counting(inner);
    const { publish, delivered } = publisherOn(store);
    const [original] = await publish([{ id: 'taken', type: 'x', message: 'original' }]);
    appends.length = 0;
    delivered.length = 0;

    const outcomes = await Promise.allSettled([
      publish([{ id: 'a', type: 'x' }]),
      publish([{ id: 'taken', type: 'x', message: 'other' }]),
      publish([{ id: '', type: 'x' }]),
      publish([{ id: 'b', type: 'x' }]),
      publish([{ id: 'taken', type: 'x', message: 'original' }]),
    ]);

    const [a, conflict, invalid, b, retry] = outcomes;
    expect(a).toMatchObject({ status: 'fulfilled', value: [{ id: 'a' }] });
    expect(conflict).toMatchObject({ status: 'rejected', reason: { code: 'CONFLICT' } });
    expect((conflict as PromiseRejectedResult).reason).toBeInstanceOf(ConflictError);
    expect(invalid).toMatchObject({ status: 'rejected', reason: { code: 'BAD_USER_INPUT' } });
    expect(b).toMatchObject({ status: 'fulfilled', value: [{ id: 'b' }] });
    expect(retry).toEqual({ status: 'fulfilled', value: [original] });
    // The invalid call never reached the store; the group of four failed, then went one by one.
    expect(appends).toEqual([4, 1, 1, 1, 1]);
    expect(delivered.map((e) => e.id)).toEqual(['a', 'b']);
    expect(delivered.map((e) => e.seq)).toEqual([2, 3]);
    const [kept] = await byIds(inner, ['taken']);
    expect(kept?.message).toBe('original');
    await inner.close();
  });

  it('should answer a group and the callers queued behind it STORE_UNAVAILABLE after one append, each with its ids', async () => {
    const inner = createSqliteStore({ path: ':memory:' });
    const { store, appends } = counting(inner);
    const first = { fail: (err: Error): void => void err };
    const { publish, delivered } = publisherOn({
      ...store,
      // The first append does not answer until the test says so; the next ones work.
      append: (events) =>
        appends.length > 0
          ? store.append(events)
          : new Promise((_, reject) => {
              appends.push(events.length);
              first.fail = reject;
            }),
    });

    const grouped = [
      publish([{ id: 'g1', type: 'x' }]),
      publish([{ type: 'x' }, { type: 'x' }]),
    ].map((p) => p.catch((err: unknown) => err));
    await new Promise((resolve) => setImmediate(resolve));
    const queued = publish([{ id: 'q1', type: 'x' }]).catch((err: unknown) => err);
    first.fail(new StoreUnavailableError('[store:test] did not answer in time'));

    const [g1, g2, q1] = await Promise.all([...grouped, queued]);
    for (const err of [g1, g2, q1]) {
      expect(err).toBeInstanceOf(StoreUnavailableError);
      expect(err).toMatchObject({ code: 'STORE_UNAVAILABLE', expose: true });
    }
    expect((g1 as StoreUnavailableError).details.ids).toEqual(['g1']);
    expect((g2 as StoreUnavailableError).details.ids).toEqual([
      expect.any(String),
      expect.any(String),
    ]);
    expect((q1 as StoreUnavailableError).details.ids).toEqual(['q1']);
    // One append for the group; no caller was tried again alone, the queued one not at all.
    expect(appends).toEqual([3]);

    const [retried] = await publish([{ id: 'q1', type: 'x' }]);
    expect(retried?.id).toBe('q1');
    expect(appends).toEqual([3, 1]);
    expect(delivered.map((e) => e.id)).toEqual(['q1']);
    await inner.close();
  });

  it('should store nothing of a failing batch, and all of the other callers of its group', async () => {
    const inner = createSqliteStore({ path: ':memory:' });
    const { publish, delivered } = publisherOn(inner);
    await publish([{ id: 'taken', type: 'x', message: 'original' }]);
    delivered.length = 0;

    const [single1, batch, single2] = await Promise.allSettled([
      publish([{ id: 's1', type: 'x' }]),
      publish([
        { id: 'b1', type: 'x' },
        { id: 'taken', type: 'x', message: 'other' },
        { id: 'b2', type: 'x' },
      ]),
      publish([{ id: 's2', type: 'x' }]),
    ]);

    expect(single1?.status).toBe('fulfilled');
    expect(batch).toMatchObject({ status: 'rejected', reason: { code: 'CONFLICT' } });
    expect(single2?.status).toBe('fulfilled');
    expect(await byIds(inner, ['b1', 'b2'])).toEqual([null, null]);
    expect(delivered.map((e) => e.id)).toEqual(['s1', 's2']);
    await inner.close();
  });

  it('should deliver an id published twice in one group once, both callers getting the event', async () => {
    const inner = createSqliteStore({ path: ':memory:' });
    const { store, appends } = counting(inner);
    const { publish, delivered } = publisherOn(store);

    const [first, second] = await Promise.all([
      publish([{ id: 'twice', type: 'x', message: 'm' }]),
      publish([{ id: 'twice', type: 'x', message: 'm' }]),
    ]);

    expect(appends).toEqual([2]);
    expect(second).toEqual(first);
    expect(delivered.map((e) => e.id)).toEqual(['twice']);
    await inner.close();
  });

  it('should keep a group within maxGroupEvents without splitting a batch', async () => {
    const inner = createSqliteStore({ path: ':memory:' });
    const { store, appends } = counting(inner);
    const { publish, delivered } = publisherOn(store, { maxGroupEvents: 3 });
    const batch = (n: number, tag: string) =>
      publish(Array.from({ length: n }, (_, i) => ({ id: `${tag}${i}`, type: 'x' })));

    const results = await Promise.all([
      batch(1, 'a'),
      batch(2, 'b'),
      batch(2, 'c'),
      batch(5, 'd'),
      batch(1, 'e'),
    ]);

    expect(appends).toEqual([3, 2, 5, 1]);
    expect(results.map((r) => r.length)).toEqual([1, 2, 2, 5, 1]);
    expect(delivered.map((e) => e.seq)).toEqual(Array.from({ length: 11 }, (_, i) => i + 1));
    await inner.close();
  });
});
