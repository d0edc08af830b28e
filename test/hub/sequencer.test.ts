/** The sequencer: cursor order from an interleaving, lossy bus, filled from the store. */
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMemoryBus } from '../../src/bus/memory.js';
import type { StoredEvent } from '../../src/events/types.js';
import { validateEventInput } from '../../src/events/validate.js';
import { createSequencer, needsSequencer, type Sequencer } from '../../src/hub/sequencer.js';
import { createSqliteStore } from '../../src/store/sqlite.js';
import type { EventStore } from '../../src/store/types.js';
import { waitFor } from '../transport/helpers.js';

let store: EventStore;
let sequencer: Sequencer | undefined;
beforeEach(() => {
  store = createSqliteStore({ path: ':memory:' });
});
afterEach(async () => {
  await sequencer?.close();
  await store.close();
});

async function append(n: number): Promise<StoredEvent[]> {
  const events = Array.from({ length: n }, (_, i) => validateEventInput({ type: `t.${i}` }));
  return (await store.append(events)).map((o) => o.event);
}

function start(startAfter: number, pollMs = 0) {
  const delivered: number[] = [];
  const logger = pino({ level: 'silent' });
  sequencer = createSequencer({
    store,
    logger,
    startAfter,
    pollMs,
    batch: 2,
    dispatch: (events) => delivered.push(...events.map((e) => e.seq)),
  });
  return { sequencer, delivered };
}

describe('sequencer', () => {
  it('should deliver in cursor order, filling what came late or never from the store', async () => {
    const [e1, e2, e3, e4, e5] = (await append(5)) as [
      StoredEvent,
      StoredEvent,
      StoredEvent,
      StoredEvent,
      StoredEvent,
    ];
    const { sequencer, delivered } = start(0);
    // Another instance's message (e3, e4) overtakes this one's (e1, e2); e5 comes twice.
    sequencer.receive([e4, e3]);
    sequencer.receive([e1, e2]);
    sequencer.receive([e5]);
    sequencer.receive([e5]);
    await waitFor(() => sequencer.through === e5.seq, 'the last event');
    expect(delivered).toEqual([e1, e2, e3, e4, e5].map((e) => e.seq));
  });

  it('should start after the events that were stored before it started', async () => {
    const old = await append(3);
    const { sequencer, delivered } = start(old.at(-1)?.seq ?? 0);
    const fresh = await append(1);
    sequencer.receive(fresh);
    await waitFor(() => delivered.length === 1, 'the new event');
    expect(delivered).toEqual(fresh.map((e) => e.seq));
  });

  it('should catch up on a resync and on its own poll when messages were lost', async () => {
    const { sequencer, delivered } = start(0, 20);
    const lost = await append(5);
    // No message at all: the poll finds them.
    await waitFor(() => delivered.length === 5, 'the poll to deliver the lost events');
    expect(delivered).toEqual(lost.map((e) => e.seq));
    const more = await append(2);
    await sequencer.resync();
    expect(delivered.slice(5)).toEqual(more.map((e) => e.seq));
  });

  it('should log a failing store read and go on with the next message', async () => {
    const lines: { msg: string }[] = [];
    const [e1, e2] = (await append(2)) as [StoredEvent, StoredEvent];
    const failing: EventStore = {
      ...store,
      readAfter: () => Promise.reject(new Error('store down')),
    };
    const delivered: number[] = [];
    sequencer = createSequencer({
      store: failing,
      logger: pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l)) }),
      startAfter: 0,
      pollMs: 0,
      dispatch: (events) => delivered.push(...events.map((e) => e.seq)),
    });
    sequencer.receive([e2]);
    await waitFor(() => lines.length === 1, 'the error to be logged');
    expect(lines[0]?.msg).toMatch(/reading missed events from the store failed/);
    expect(delivered).toEqual([]);
    sequencer.receive([e1]);
    await waitFor(() => delivered.length === 1, 'the next message');
    expect(delivered).toEqual([e1.seq]);
  });
});

describe('needsSequencer', () => {
  it('should feed the hub directly only from an ordered, lossless bus on a store that answers every commit', async () => {
    const memory = createMemoryBus();
    expect(needsSequencer(memory, store)).toBe(false);
    // PostgreSQL's case: an append may commit after its caller was told it failed.
    expect(needsSequencer(memory, { flags: { unconfirmedCommits: true } })).toBe(true);
    // Redis's case, and each promise alone.
    const shared = { ordered: false, lossless: false, shared: true };
    expect(needsSequencer({ delivery: shared }, store)).toBe(true);
    expect(needsSequencer({ delivery: { ...memory.delivery, ordered: false } }, store)).toBe(true);
    expect(needsSequencer({ delivery: { ...memory.delivery, lossless: false } }, store)).toBe(true);
    await memory.close();
  });
});
