/**
 * The hub with a real SQLite `:memory:` store: dispatch cost (only candidate streams are looked
 * at), replay then live with events dispatched during the replay, shutdown, and isolation of a
 * failing sink.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CursorError, StoreError, TidingsError } from '../../src/errors.js';
import type { Clause } from '../../src/events/filter.js';
import { SEE_EVERYTHING, type StoredEvent } from '../../src/events/types.js';
import { validateEventInput, type PublishEventInput } from '../../src/events/validate.js';
import {
  createHub,
  type HistoryGap,
  type Hub,
  type StreamSink,
  type StreamSpec,
} from '../../src/hub/hub.js';
import { toStreamSpec, type EventStreamArgs } from '../../src/schema/subscription.js';
import { createSqliteStore } from '../../src/store/sqlite.js';
import type { EventStore, FullEventStore } from '../../src/store/types.js';

let store: FullEventStore;
beforeEach(() => {
  store = createSqliteStore({ path: ':memory:' });
});
afterEach(() => store.close());

/** Stores events and returns them as stored. */
async function append(inputs: PublishEventInput[]): Promise<StoredEvent[]> {
  return (await store.append(inputs.map((i) => validateEventInput(i)))).map((o) => o.event);
}

/** Stores events and dispatches them, like the publish path. */
async function publish(hub: Hub, inputs: PublishEventInput[]): Promise<StoredEvent[]> {
  const events = await append(inputs);
  hub.dispatch(events);
  return events;
}

/** The spec the transport builds for these `eventStream` arguments. */
const spec = (args: EventStreamArgs, afterSeq: number | null = null): StreamSpec => ({
  ...toStreamSpec(args, SEE_EVERYTHING),
  afterSeq,
});

/** A sink that records what it gets. */
function recorder() {
  const events: StoredEvent[] = [];
  const ends: (TidingsError | null)[] = [];
  const gaps: HistoryGap[] = [];
  const sink: StreamSink = {
    deliver: (e) => void events.push(e),
    gap: (g) => void gaps.push(g),
    end: (err) => void ends.push(err),
  };
  return { sink, events, ends, gaps, seqs: () => events.map((e) => e.seq) };
}

/**
 * The same clauses, counting every evaluation: `matchesClauses` iterates them once per event it
 * tests, so the count is the number of times the hub considered this stream for an event.
 */
function counted(clauses: readonly Clause[], onEvaluate: () => void): readonly Clause[] {
  const copy = [...clauses];
  Object.defineProperty(copy, Symbol.iterator, {
    value: function* () {
      onEvaluate();
      yield* clauses;
    },
  });
  return copy;
}

/** Waits until `condition` holds, yielding to the event loop. */
async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe('dispatch cost', () => {
  it('should look only at the streams of the event inbox, or of its client, among 1,000 streams', async () => {
    const hub = createHub({ store });
    const evaluations = new Map<string, number>();
    const unexpected: string[] = [];
    const delivered = new Map<string, number[]>();
    const register = (name: string, args: EventStreamArgs) => {
      const base = spec(args);
      hub.open(
        {
          ...base,
          clauses: counted(base.clauses, () =>
            evaluations.set(name, (evaluations.get(name) ?? 0) + 1),
          ),
        },
        {
          deliver: (e) => delivered.set(name, [...(delivered.get(name) ?? []), e.seq]),
          gap: () => unexpected.push(`${name} got a gap`),
          end: () => unexpected.push(`${name} ended`),
        },
      );
    };
    for (let i = 0; i < 1000; i++) register(`inbox-${i}`, { inboxes: [`inbox-${i}`] });
    register('client-c1', { inboxes: ['inbox-7'], clientId: 'c1' });
    register('client-c2', { inboxes: ['inbox-8', 'inbox-9'], clientId: 'c2' });
    register('every-inbox', {});
    expect(hub.size).toBe(1003);

    const [broadcast] = await publish(hub, [{ type: 't', inbox: 'inbox-500' }]);
    expect(Object.fromEntries(evaluations)).toEqual({ 'inbox-500': 1, 'every-inbox': 1 });
    expect(Object.fromEntries(delivered)).toEqual({
      'inbox-500': [broadcast?.seq],
      'every-inbox': [broadcast?.seq],
    });

    evaluations.clear();
    delivered.clear();
    const targeted = await publish(hub, [
      { type: 't', inbox: 'inbox-7', clientId: 'c1' },
      { type: 't', inbox: 'inbox-7', clientId: 'c3' },
      { type: 't', inbox: 'inbox-9', clientId: 'c1' },
    ]);
    // Targeted events only reach the streams of their client: c1's stream is looked at twice
    // (and matches once, the other event being in an inbox it does not read), nothing at all
    // for c3, and no inbox stream for either.
    expect(Object.fromEntries(evaluations)).toEqual({ 'client-c1': 2 });
    expect(Object.fromEntries(delivered)).toEqual({ 'client-c1': [targeted[0]?.seq] });

    evaluations.clear();
    delivered.clear();
    const many = await publish(
      hub,
      Array.from({ length: 100 }, (_, i) => ({ type: 't', inbox: `inbox-${(i * 37) % 1000}` })),
    );
    const total = [...evaluations.values()].reduce((a, b) => a + b, 0);
    // One inbox stream per event, plus the stream reading every inbox; the inbox-7/8/9 events
    // also reach the clients' streams, which read those inboxes' broadcast events.
    const clientInboxes = many.filter((e) => ['inbox-7', 'inbox-8', 'inbox-9'].includes(e.inbox));
    expect(total).toBe(100 + 100 + clientInboxes.length);
    expect(evaluations.get('every-inbox')).toBe(100);
    expect(unexpected).toEqual([]);
  });

  it('should not call the sink of a stream the event does not concern', async () => {
    const hub = createHub({ store });
    const failures: string[] = [];
    for (let i = 0; i < 200; i++) {
      hub.open(spec({ inboxes: [`quiet-${i}`] }), {
        deliver: (e) => failures.push(`quiet-${i} got ${e.inbox}`),
        gap: () => failures.push(`quiet-${i} got a gap`),
        end: () => failures.push(`quiet-${i} ended`),
      });
    }
    const target = recorder();
    hub.open(spec({ inboxes: ['loud'] }), target.sink);
    const events = await publish(hub, [
      { type: 't', inbox: 'loud' },
      { type: 't', inbox: 'loud', clientId: 'x' },
      { type: 't', inbox: 'nobody' },
      { type: 't', inbox: 'loud' },
    ]);
    expect(target.seqs()).toEqual([events[0]?.seq, events[3]?.seq]);
    expect(failures).toEqual([]);
  });
});

describe('replay then live', () => {
  it('should deliver stored events after the cursor, then live ones, each once', async () => {
    const hub = createHub({ store, replayBatch: 7 });
    const stored = await append(
      Array.from({ length: 30 }, (_, i) => ({ type: `t${i % 2}`, inbox: i % 5 ? 'r' : 'other' })),
    );
    const r = recorder();
    hub.open(spec({ inboxes: ['r'] }, stored[3]?.seq ?? 0), r.sink);
    await until(() => r.events.length === 21, 'the replay');
    const live = await publish(hub, [{ type: 'live', inbox: 'r' }]);
    expect(r.seqs()).toEqual(
      [...stored.slice(4).filter((e) => e.inbox === 'r'), ...live].map((e) => e.seq),
    );
  });

  it('should neither lose nor repeat events dispatched while the replay runs', async () => {
    // The real store, with a hook that publishes at the worst moments of the replay: after the
    // newest sequence was read, and after each replay batch was read but before the hub saw it.
    let hub: Hub | null = null;
    const hooked: EventStore = {
      ...store,
      lastSeq: async () => {
        const seq = await store.lastSeq();
        if (hub) await publish(hub, [{ type: 'during.lastSeq', inbox: 'race' }]);
        return seq;
      },
      readAfter: async (afterSeq, clauses, limit) => {
        const batch = await store.readAfter(afterSeq, clauses, limit);
        if (hub) {
          await publish(hub, [
            { type: 'during.read', inbox: 'race' },
            { type: 'during.read.other', inbox: 'elsewhere' },
            { type: 'during.read.targeted', inbox: 'race', clientId: 'me' },
          ]);
        }
        return batch;
      },
    };
    const stored = await append(
      Array.from({ length: 50 }, (_, i) => ({
        type: 'before',
        inbox: i % 3 ? 'race' : 'elsewhere',
        clientId: i % 7 === 0 ? 'me' : null,
      })),
    );
    hub = createHub({ store: hooked, replayBatch: 10 });
    // Stored before the replay starts but dispatched only after it ended: the commit-to-bus lag.
    const late = await append([{ type: 'late', inbox: 'race' }]);
    const r = recorder();
    const stream = hub.open(
      spec({ inboxes: ['race'], clientId: 'me' }, stored[5]?.seq ?? 0),
      r.sink,
    );
    // Live events dispatched right away, before the replay even read the newest sequence.
    await publish(hub, [{ type: 'at.open', inbox: 'race' }]);
    const live = hub;
    await until(() => stream.lastSeq >= (late[0]?.seq ?? Infinity), 'the replay to pass `late`');
    hub = null;
    live.dispatch(late);
    const [after] = await publish(live, [{ type: 'after', inbox: 'race' }]);
    await until(() => stream.lastSeq >= (after?.seq ?? Infinity), 'the last event').catch(() => {});

    const { events: all } = await store.readAfter(0, [], 10_000);
    const expected = all.filter(
      (e) =>
        e.seq > (stored[5]?.seq ?? 0) &&
        e.inbox === 'race' &&
        (e.clientId === null || e.clientId === 'me'),
    );
    expect(expected.map((e) => e.type)).toContain('during.read');
    expect(expected.map((e) => e.type)).toContain('during.lastSeq');
    expect(r.seqs()).toEqual(expected.map((e) => e.seq));
    expect(r.ends).toEqual([]);
  });

  it('should signal a gap before replaying, when the cursor is older than the retained history', async () => {
    const old = await append(Array.from({ length: 6 }, () => ({ type: 'old', inbox: 'g' })));
    await until(() => Date.now() > (old[0]?.receivedAt ?? Infinity), 'the clock to move');
    await store.retention.purge(Date.now(), 4);
    const horizon = old[3]?.seq as number;
    const hub = createHub({ store, replayBatch: 1 });

    const fromOld = recorder();
    hub.open(spec({ inboxes: ['g'] }, old[1]?.seq ?? 0), fromOld.sink);
    const fromHorizon = recorder();
    hub.open(spec({ inboxes: ['g'] }, horizon), fromHorizon.sink);
    const fromNewer = recorder();
    hub.open(spec({ inboxes: ['g'] }, old[4]?.seq ?? 0), fromNewer.sink);
    const [live] = await publish(hub, [{ type: 'live', inbox: 'g' }]);
    await until(
      () => [fromOld, fromHorizon, fromNewer].every((r) => r.seqs().at(-1) === live?.seq),
      'every stream to go live',
    );

    expect(fromOld.gaps).toEqual([{ afterSeq: old[1]?.seq, purgedThrough: horizon }]);
    expect(fromOld.seqs()).toEqual([old[4]?.seq, old[5]?.seq, live?.seq]);
    expect(fromHorizon.gaps).toEqual([]);
    expect(fromHorizon.seqs()).toEqual([old[4]?.seq, old[5]?.seq, live?.seq]);
    expect(fromNewer.gaps).toEqual([]);
    expect(fromNewer.seqs()).toEqual([old[5]?.seq, live?.seq]);
  });

  it('should signal a gap when retention passes a replay in progress', async () => {
    const old = await append(Array.from({ length: 6 }, () => ({ type: 'old', inbox: 'g' })));
    await until(() => Date.now() > (old[0]?.receivedAt ?? Infinity), 'the clock to move');
    let reads = 0;
    const purging: EventStore = {
      ...store,
      // Between the first and second replay batch, retention removes the next four events.
      readAfter: async (afterSeq, clauses, limit) => {
        if (reads++ === 1) await store.retention.purge(Date.now(), 4);
        return store.readAfter(afterSeq, clauses, limit);
      },
    };
    const hub = createHub({ store: purging, replayBatch: 1 });
    const r = recorder();
    hub.open(spec({ inboxes: ['g'] }, 0), r.sink);
    await until(() => r.seqs().at(-1) === old[5]?.seq, 'the replay to end');
    expect(r.seqs()).toEqual([old[0]?.seq, old[4]?.seq, old[5]?.seq]);
    expect(r.gaps).toEqual([{ afterSeq: old[0]?.seq, purgedThrough: old[3]?.seq }]);
  });

  it('should end a stream whose cursor is past the newest event with a CursorError', async () => {
    const hub = createHub({ store });
    const [event] = await append([{ type: 't' }]);
    const r = recorder();
    hub.open(spec({}, (event?.seq ?? 0) + 1), r.sink);
    await until(() => r.ends.length === 1, 'the end');
    expect(r.ends[0]).toBeInstanceOf(CursorError);
    expect(r.ends[0]?.code).toBe('BAD_CURSOR');
    expect(hub.size).toBe(0);
  });

  it('should end a stream whose replay fails with a StoreError', async () => {
    const hub = createHub({ store });
    await store.close();
    const r = recorder();
    hub.open(spec({}, 0), r.sink);
    await until(() => r.ends.length === 1, 'the end');
    expect(r.ends[0]).toBeInstanceOf(StoreError);
    expect(r.ends[0]?.code).toBe('STORE_ERROR');
    expect(hub.size).toBe(0);
    store = createSqliteStore({ path: ':memory:' });
  });

  it('should stop a replay when the stream is closed', async () => {
    const hub = createHub({ store, replayBatch: 5 });
    await append(Array.from({ length: 50 }, () => ({ type: 't' })));
    const r = recorder();
    const stream = hub.open(spec({}, 0), {
      ...r.sink,
      deliver(e) {
        r.events.push(e);
        if (r.events.length === 3) stream.close();
      },
    });
    await until(() => r.events.length >= 3, 'three events');
    await publish(hub, [{ type: 'after.close' }]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(r.events).toHaveLength(3);
    expect(hub.size).toBe(0);
  });
});

describe('closing', () => {
  it('should stop delivering to a closed stream and forget it', async () => {
    const hub = createHub({ store });
    const r = recorder();
    const stream = hub.open(spec({ inboxes: ['c'] }), r.sink);
    const [first] = await publish(hub, [{ type: 't', inbox: 'c' }]);
    expect(stream.lastSeq).toBe(first?.seq);
    stream.close();
    stream.close();
    expect(hub.size).toBe(0);
    await publish(hub, [{ type: 't', inbox: 'c' }]);
    expect(r.seqs()).toEqual([first?.seq]);
    expect(r.ends).toEqual([]);
  });

  it('should end every sink with the reason on closeAll', () => {
    const hub = createHub({ store });
    const sinks = [recorder(), recorder(), recorder()];
    const [a, b, c] = sinks.map((r) => r.sink) as [StreamSink, StreamSink, StreamSink];
    hub.open(spec({ inboxes: ['a'] }), a);
    hub.open(spec({}), b);
    hub.open(spec({ clientId: 'x' }, 0), c);
    expect(hub.size).toBe(3);
    const reason = new TidingsError('SHUTTING_DOWN', 'going away');
    hub.closeAll(reason);
    expect(hub.size).toBe(0);
    for (const r of sinks) expect(r.ends).toEqual([reason]);
    hub.dispatch([]);
  });

  it('should end every sink cleanly on closeAll(null)', () => {
    const hub = createHub({ store });
    const r = recorder();
    hub.open(spec({}), r.sink);
    hub.closeAll(null);
    expect(r.ends).toEqual([null]);
  });

  it('should end a stream opened after closeAll at once, with the same reason, and not count it', async () => {
    const hub = createHub({ store });
    const reason = new TidingsError('SHUTTING_DOWN', 'going away');
    hub.closeAll(reason);
    const r = recorder();
    const stream = hub.open(spec({}), r.sink);
    expect(hub.size).toBe(0);
    await Promise.resolve();
    expect(r.ends).toEqual([reason]);
    await publish(hub, [{ type: 't' }]);
    expect(r.events).toEqual([]);
    stream.close();
  });
});

describe('failing sinks', () => {
  it('should keep delivering to the other streams when a sink throws, and report it', async () => {
    const errors: unknown[] = [];
    const hub = createHub({ store, onError: (err) => errors.push(err) });
    const boom = new Error('sink failed');
    hub.open(spec({ inboxes: ['f'] }), {
      deliver: () => {
        throw boom;
      },
      gap: () => {},
      end: () => {
        throw boom;
      },
    });
    const healthy = recorder();
    hub.open(spec({ inboxes: ['f'] }), healthy.sink);
    const events = await publish(hub, [
      { type: 't', inbox: 'f' },
      { type: 't', inbox: 'f' },
    ]);
    expect(healthy.seqs()).toEqual(events.map((e) => e.seq));
    expect(errors).toEqual([boom, boom]);
    hub.closeAll(null);
    expect(errors).toEqual([boom, boom, boom]);
    expect(healthy.ends).toEqual([null]);
  });

  it('should report a sink that throws when a stream opened after closeAll is ended', async () => {
    const errors: unknown[] = [];
    const hub = createHub({ store, onError: (err) => errors.push(err) });
    hub.closeAll(null);
    const boom = new Error('end failed');
    hub.open(spec({}), {
      deliver: () => {},
      gap: () => {},
      end: () => {
        throw boom;
      },
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(errors).toEqual([boom]);
  });
});
