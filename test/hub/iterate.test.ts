/**
 * `iterateStream`: a hub stream as an async iterator, for pulling callers (the schema's
 * `subscribe` resolver, embedding code).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TidingsError } from '../../src/errors.js';
import { SEE_EVERYTHING, type StoredEvent } from '../../src/events/types.js';
import { validateEventInput, type PublishEventInput } from '../../src/events/validate.js';
import { createHub, type Hub } from '../../src/hub/hub.js';
import { iterateStream } from '../../src/hub/iterate.js';
import { toStreamSpec } from '../../src/schema/subscription.js';
import { createSqliteStore } from '../../src/store/sqlite.js';
import type { EventStore } from '../../src/store/types.js';

let store: EventStore;
let hub: Hub;
beforeEach(() => {
  store = createSqliteStore({ path: ':memory:' });
  hub = createHub({ store });
});
afterEach(() => store.close());

async function publish(inputs: PublishEventInput[]): Promise<StoredEvent[]> {
  const events = (await store.append(inputs.map((i) => validateEventInput(i)))).map((o) => o.event);
  hub.dispatch(events);
  return events;
}

const spec = (inboxes: string[] | null = null, after: string | null = null) =>
  toStreamSpec({ inboxes, after }, SEE_EVERYTHING);

describe('iterateStream', () => {
  it('should yield delivered events in order, including those delivered before next() was called', async () => {
    const it = iterateStream(hub, spec(['i']));
    expect(hub.size).toBe(1);
    const early = await publish([
      { type: 'a', inbox: 'i' },
      { type: 'b', inbox: 'other' },
      { type: 'c', inbox: 'i' },
    ]);
    expect((await it.next()).value?.seq).toBe(early[0]?.seq);
    expect((await it.next()).value?.seq).toBe(early[2]?.seq);
    // Waits for an event that is not there yet.
    const pending = it.next();
    const [late] = await publish([{ type: 'd', inbox: 'i' }]);
    expect((await pending).value?.seq).toBe(late?.seq);
    await it.return?.();
  });

  it('should replay from a cursor, then go on live', async () => {
    const stored = await publish([{ type: 'a' }, { type: 'b' }, { type: 'c' }]);
    const it = iterateStream(hub, spec(null, stored[0]?.cursor ?? null));
    const first = await it.next();
    const second = await it.next();
    const [live] = await publish([{ type: 'd' }]);
    const third = await it.next();
    expect([first, second, third].map((r) => r.value?.type)).toEqual(['b', 'c', live?.type]);
    await it.return?.();
  });

  it('should close the hub stream on return(), and be done afterwards', async () => {
    const it = iterateStream(hub, spec());
    expect(hub.size).toBe(1);
    const pending = it.next();
    expect(await it.return?.()).toEqual({ done: true, value: undefined });
    expect(hub.size).toBe(0);
    expect(await pending).toEqual({ done: true, value: undefined });
    await publish([{ type: 'after.return' }]);
    expect(await it.next()).toEqual({ done: true, value: undefined });
  });

  it('should close the hub stream when a for await loop breaks', async () => {
    await publish([{ type: 'a' }, { type: 'b' }]);
    const seen: string[] = [];
    for await (const event of iterateStream(hub, spec(null, '000000000000'))) {
      if (event instanceof Error) throw event;
      seen.push(event.type);
      if (seen.length === 1) break;
    }
    expect(seen).toEqual(['a']);
    expect(hub.size).toBe(0);
  });

  it('should throw the end error from next(), after the events delivered before it, then be done', async () => {
    const it = iterateStream(hub, spec());
    const [event] = await publish([{ type: 'before.end' }]);
    const reason = new TidingsError('SHUTTING_DOWN', 'going away');
    hub.closeAll(reason);
    expect((await it.next()).value?.seq).toBe(event?.seq);
    await expect(it.next()).rejects.toBe(reason);
    expect(await it.next()).toEqual({ done: true, value: undefined });
  });

  it('should wake a waiting next() with the end error', async () => {
    const it = iterateStream(hub, spec());
    const pending = it.next();
    const reason = new TidingsError('SHUTTING_DOWN', 'going away');
    hub.closeAll(reason);
    await expect(pending).rejects.toBe(reason);
  });

  it('should end without error when the hub ends the stream cleanly', async () => {
    const it = iterateStream(hub, spec());
    const pending = it.next();
    hub.closeAll(null);
    expect(await pending).toEqual({ done: true, value: undefined });
  });

  it('should throw a bad replay cursor from next()', async () => {
    const it = iterateStream(hub, spec(null, '00000000zzzz'));
    await expect(it.next()).rejects.toMatchObject({ code: 'BAD_CURSOR' });
    expect(hub.size).toBe(0);
  });

  it('should close the hub stream on throw() and rethrow the error', async () => {
    const it = iterateStream(hub, spec());
    const err = new Error('consumer failed');
    await expect(it.throw?.(err)).rejects.toBe(err);
    expect(hub.size).toBe(0);
  });
});
