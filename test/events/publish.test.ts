import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createMemoryBus } from '../../src/bus/memory.js';
import { createPublisher } from '../../src/events/publish.js';
import type { StoredEvent } from '../../src/events/types.js';
import { createHub } from '../../src/hub/hub.js';
import { createSqliteStore } from '../../src/store/sqlite.js';
import type { EventStore } from '../../src/store/types.js';

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

describe('publish', () => {
  it('should hand events to the bus in cursor order even when appends answer out of order', async () => {
    const store = slowToAnswer(createSqliteStore({ path: ':memory:' }));
    const bus = createMemoryBus();
    const hub = createHub({ store });
    bus.subscribe((events) => hub.dispatch(events));
    const publish = createPublisher({
      store,
      bus,
      logger: pino({ level: 'silent' }),
      limits: { maxBodyBytes: 1024 },
    });
    const received: StoredEvent[] = [];
    hub.open(
      { clauses: [], inboxes: null, clientId: null, afterSeq: null },
      { deliver: (e) => received.push(e), end: () => {} },
    );

    await Promise.all(
      Array.from({ length: 20 }, (_, i) => publish([{ type: 'order.check', message: String(i) }])),
    );

    expect(received.map((e) => e.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    await store.close();
  });

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
});
