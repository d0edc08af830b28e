/**
 * Shared execution groups, unit level: streams with the same key share one group, the group
 * renders each event once whatever the number of streams asking, distinct-mode streams get the
 * very same bytes, single-connection streams get the payload wrapped with their operation id, and
 * a group only keeps a few recent events.
 */
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { encodeCursor } from '../../src/events/cursor.js';
import type { StoredEvent } from '../../src/events/types.js';
import { validateEventInput } from '../../src/events/validate.js';
import { createResultGroups, type GroupRenderer, type MaybePromise } from '../../src/hub/groups.js';
import { DISTINCT_ENCODER, singleConnectionEncoder } from '../../src/transport/graphql-sse.js';

/** The transport's encoder of an operation: `null` for distinct mode, else its operation id. */
const encoderOf = (operationId: string | null) =>
  operationId === null ? DISTINCT_ENCODER : singleConnectionEncoder(operationId);

/** A stored event with sequence `seq`, as a store would return it. */
function stored(seq: number, body: unknown = { n: seq }): StoredEvent {
  return {
    ...validateEventInput({ type: `unit.${seq}`, inbox: 'groups', body }),
    seq,
    cursor: encodeCursor(seq),
    receivedAt: 1_700_000_000_000 + seq,
  };
}

/**
 * A renderer like the stream engine's: the payload is the JSON of a result (the transport's
 * encoder then wraps it into a frame). `render` calls are counted per sequence; `async` makes
 * every render return a promise.
 */
function renderer(options: { async?: boolean } = {}) {
  const renders: number[] = [];
  const makes = { count: 0 };
  const render = (event: StoredEvent): string =>
    JSON.stringify({ data: { eventStream: { cursor: event.cursor, body: event.body } } });
  const make = (): GroupRenderer => {
    makes.count++;
    return {
      render(event): MaybePromise<string> {
        renders.push(event.seq);
        if (!options.async) return render(event);
        return new Promise((resolve) => setImmediate(() => resolve(render(event))));
      },
    };
  };
  return { make, renders, makes, expected: render };
}

/** Forces a full garbage collection (the flag can be set at run time). */
function collectGarbage(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

describe('createResultGroups', () => {
  it('should give every stream joining the same key the same group, with size counting its members', () => {
    const groups = createResultGroups();
    const r = renderer();
    const a = groups.join('key-a', r.make);
    const b = groups.join('key-a', r.make);
    const c = groups.join('key-a', r.make);
    const other = groups.join('key-b', r.make);
    expect(b).toBe(a);
    expect(c).toBe(a);
    expect(other).not.toBe(a);
    expect(a.key).toBe('key-a');
    expect(a.size).toBe(3);
    expect(other.size).toBe(1);
    expect(groups.size).toBe(2);
    // The renderer is made once per group, not once per stream.
    expect(r.makes.count).toBe(2);
  });

  it('should remove a group when its last member leaves, and only then', () => {
    const groups = createResultGroups();
    const r = renderer();
    const a = groups.join('key', r.make);
    groups.join('key', r.make);
    groups.leave(a);
    expect(a.size).toBe(1);
    expect(groups.size).toBe(1);
    groups.leave(a);
    expect(a.size).toBe(0);
    expect(groups.size).toBe(0);

    // Joining again starts a new group with a new renderer; a late leave of the removed group
    // does not touch it.
    const fresh = groups.join('key', r.make);
    expect(fresh).not.toBe(a);
    expect(r.makes.count).toBe(2);
    groups.leave(a);
    expect(fresh.size).toBe(1);
    expect(groups.size).toBe(1);
    groups.leave(fresh);
    expect(groups.size).toBe(0);
  });

  it('should render an event once per group however many streams ask, in either mode', () => {
    const groups = createResultGroups();
    const r = renderer();
    const members = Array.from({ length: 50 }, () => groups.join('key', r.make));
    const events = [1, 2, 3].map((seq) => stored(seq));
    for (const event of events) {
      members.forEach((group, i) =>
        group.frameFor(event, encoderOf(i % 2 === 0 ? null : `op-${i}`)),
      );
    }
    expect(r.renders).toEqual([1, 2, 3]);
    // Another group renders for itself.
    const other = groups.join('other', r.make);
    other.frameFor(events[0] as StoredEvent, encoderOf(null));
    expect(r.renders).toEqual([1, 2, 3, 1]);
  });

  it('should hand every distinct-mode caller the very same Buffer', () => {
    const groups = createResultGroups();
    const r = renderer();
    const members = Array.from({ length: 10 }, () => groups.join('key', r.make));
    const event = stored(7);
    const frames = members.map((g) => g.frameFor(event, encoderOf(null)));
    const first = frames[0];
    expect(first).toBeInstanceOf(Buffer);
    for (const frame of frames) expect(frame).toBe(first);
    expect((first as Buffer).toString('utf8')).toBe(
      `id: ${event.cursor}\nevent: next\ndata: ${r.expected(event)}\n\n`,
    );
  });

  it('should wrap the payload with the operation id for single-connection callers', () => {
    const groups = createResultGroups();
    const r = renderer();
    const group = groups.join('key', r.make);
    groups.join('key', r.make);
    const event = stored(3, { nested: { ok: true }, list: [1, 'two'] });
    const payload = r.expected(event);
    const one = group.frameFor(event, encoderOf('op-1')) as Buffer;
    const two = group.frameFor(event, encoderOf('op "2"')) as Buffer;
    const plain = group.frameFor(event, encoderOf(null)) as Buffer;
    expect(one.toString('utf8')).toBe(
      `id: ${event.cursor}\nevent: next\ndata: {"id":"op-1","payload":${payload}}\n\n`,
    );
    // The operation id is JSON-escaped, and the data line is valid JSON.
    const data = /\ndata: (.*)\n\n$/.exec(two.toString('utf8'))?.[1] ?? '';
    expect(JSON.parse(data)).toEqual({ id: 'op "2"', payload: JSON.parse(payload) });
    expect(plain.toString('utf8')).toBe(`id: ${event.cursor}\nevent: next\ndata: ${payload}\n\n`);
    expect(r.renders).toEqual([3]);
  });

  it('should render once when the render is asynchronous, every caller getting equal bytes', async () => {
    const groups = createResultGroups();
    const r = renderer({ async: true });
    const members = Array.from({ length: 20 }, () => groups.join('key', r.make));
    const event = stored(11, { big: 'x'.repeat(100) });
    const distinct = members.map((g) => g.frameFor(event, encoderOf(null)));
    const single = members.map((g, i) => g.frameFor(event, encoderOf(`op-${i}`)));
    for (const frame of [...distinct, ...single]) expect(frame).toBeInstanceOf(Promise);
    const distinctBytes = await Promise.all(distinct);
    const singleBytes = await Promise.all(single);
    expect(r.renders).toEqual([11]);
    const expected = `id: ${event.cursor}\nevent: next\ndata: ${r.expected(event)}\n\n`;
    for (const bytes of distinctBytes) {
      expect(bytes).toBe(distinctBytes[0]);
      expect(bytes.toString('utf8')).toBe(expected);
    }
    singleBytes.forEach((bytes, i) =>
      expect(bytes.toString('utf8')).toBe(
        `id: ${event.cursor}\nevent: next\ndata: {"id":"op-${i}","payload":${r.expected(event)}}\n\n`,
      ),
    );
    // Asking again once it is settled still does not render again.
    expect(
      (await members[0]?.frameFor(event, encoderOf(null)))?.equals(distinctBytes[0] as Buffer),
    ).toBe(true);
    expect(r.renders).toEqual([11]);
  });

  it('should keep only a few recent events: memory stays flat after 1,000 events', async () => {
    const gc = collectGarbage();
    const groups = createResultGroups();
    const r = renderer();
    const members = Array.from({ length: 3 }, () => groups.join('key', r.make));
    const refs: WeakRef<Buffer>[] = [];
    const big = 'x'.repeat(10_000);
    for (let seq = 1; seq <= 1_000; seq++) {
      const event = stored(seq, { big });
      const frames = members.map((g) => g.frameFor(event, encoderOf(null)) as Buffer);
      refs.push(new WeakRef(frames[0] as Buffer));
    }
    expect(r.renders).toHaveLength(1_000);

    // The last events are still cached: asking again renders nothing.
    for (let seq = 996; seq <= 1_000; seq++)
      members[1]?.frameFor(stored(seq, { big }), encoderOf(null));
    expect(r.renders).toHaveLength(1_000);
    // Old ones were dropped: asking again renders them again.
    members[1]?.frameFor(stored(1, { big }), encoderOf(null));
    expect(r.renders).toHaveLength(1_001);

    // Nothing but the group holds the frames: all but a handful can be collected.
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    await new Promise((resolve) => setImmediate(resolve));
    const alive = refs.filter((ref) => ref.deref() !== undefined).length;
    expect(alive).toBeLessThanOrEqual(16);
  });
});
