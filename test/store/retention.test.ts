/** The retention loop: purges what is older than the retention, in batches, in the background. */
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { validateEventInput } from '../../src/events/validate.js';
import { startRetention, type Retention } from '../../src/store/retention.js';
import { createSqliteStore } from '../../src/store/sqlite.js';
import type { EventStore, FullEventStore } from '../../src/store/types.js';
import { waitFor } from '../transport/helpers.js';

const DAY = 86_400_000;
let store: FullEventStore;
let retention: Retention | undefined;
beforeEach(() => {
  store = createSqliteStore({ path: ':memory:' });
});
afterEach(async () => {
  await retention?.stop();
  retention = undefined;
  await store.close();
});

async function seed(n: number) {
  const events = Array.from({ length: n }, (_, i) => validateEventInput({ type: `t.${i}` }));
  return (await store.append(events)).map((o) => o.event);
}

describe('retention', () => {
  it('should purge everything older than the retention, batch by batch, and nothing newer', async () => {
    const stored = await seed(25);
    const lines: unknown[] = [];
    const logger = pino(
      { level: 'info' },
      { write: (line: string) => lines.push(JSON.parse(line)) },
    );
    // A clock one day and a bit ahead: everything stored is past a one-day retention.
    let now = Date.now() + DAY + 1_000;
    retention = startRetention({ store, retentionMs: DAY, logger, batch: 10, now: () => now });
    expect(await retention.runOnce()).toBe(25);
    expect(await store.retention.purgedThrough()).toBe(stored.at(-1)?.seq);
    expect(lines).toContainEqual(
      expect.objectContaining({ msg: '[retention] purged events', deleted: 25 }),
    );

    const fresh = await seed(3);
    now = Date.now();
    expect(await retention.runOnce()).toBe(0);
    const page = await store.page({ clauses: [], first: 10 });
    expect(page.events.map((e) => e.seq)).toEqual(fresh.map((e) => e.seq).reverse());
  });

  it('should run by itself every interval, and log a failure without stopping', async () => {
    await seed(5);
    const lines: { msg: string }[] = [];
    const logger = pino(
      { level: 'info' },
      { write: (line: string) => lines.push(JSON.parse(line)) },
    );
    let fail = true;
    const flaky: EventStore = {
      ...store,
      retention: {
        ...store.retention,
        purge: (before, limit) => {
          if (fail) {
            fail = false;
            return Promise.reject(new Error('disk on fire'));
          }
          return store.retention.purge(before, limit);
        },
      },
    };
    retention = startRetention({
      store: flaky,
      retentionMs: DAY,
      logger,
      intervalMs: 10,
      now: () => Date.now() + 2 * DAY,
    });
    await waitFor(() => lines.some((l) => l.msg === '[retention] purged events'), 'a purge');
    expect(lines[0]?.msg).toMatch(/purge failed; it is retried/);
    expect(await store.retention.purgedThrough()).toBeGreaterThan(0);
  });
});
