/**
 * The contract every `EventBus` adapter must pass. An adapter's test file calls
 * {@link testEventBus} with a function that opens one instance's bus on a channel, and says what
 * the adapter declares: its delivery and its optional capabilities. The tests of a capability the
 * adapter lacks are skipped, and one test checks the opened bus declares exactly what was said.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { BusError } from '../../src/errors.js';
import type { BusDelivery, EventBus } from '../../src/bus/types.js';
import type { StoredEvent } from '../../src/events/types.js';
import { waitFor } from '../transport/helpers.js';

/** The optional capabilities of a bus, by the methods that make them up. */
const CAPABILITIES = {
  control: ['publishControl', 'onControl'],
  status: ['onStatus'],
  resync: ['onResync'],
} as const satisfies Record<string, readonly (keyof EventBus)[]>;

/** An optional capability of a bus. */
export type BusCapability = keyof typeof CAPABILITIES;

/** What an adapter declares, and how to test it. */
export interface TestEventBusOptions {
  /** The delivery the adapter's buses declare. */
  delivery: BusDelivery;
  /** The optional capabilities the adapter's buses have. */
  capabilities: readonly BusCapability[];
  /**
   * Breaks every connection of the buses opened so far, as a network failure would, and lets
   * them reconnect; the tests of a reconnection are skipped without it.
   */
  interrupt?: () => void | Promise<void>;
}

/** A stored event with sequence `seq`: the bus carries events as they are, whatever they hold. */
const event = (seq: number) =>
  ({ seq, id: `e${seq}`, cursor: String(seq), type: 'bus.test' }) as StoredEvent;

/** A handler that records the sequences it receives. */
function recorder() {
  const seqs: number[] = [];
  return {
    seqs,
    handler: (events: readonly StoredEvent[]) => seqs.push(...events.map((e) => e.seq)),
  };
}

/**
 * Registers the contract suite for one adapter. `open(channel)` opens a fresh bus of one
 * instance: buses opened on the same channel are instances sharing a bus (when the adapter's is
 * shared), buses on different channels never hear each other.
 */
export function testEventBus(
  name: string,
  open: (channel: string) => Promise<EventBus>,
  options: TestEventBusOptions,
): void {
  const has = new Set(options.capabilities);
  const { ordered, shared } = options.delivery;
  describe(`EventBus contract: ${name}`, () => {
    const opened: EventBus[] = [];
    afterEach(async () => {
      for (const bus of opened.splice(0)) await bus.close();
    });
    /** Opens a bus on `channel` (a fresh one unless given), closed after the test. */
    async function bus(channel = `tidings-test-${randomUUID()}`): Promise<EventBus> {
      const b = await open(channel);
      opened.push(b);
      return b;
    }

    it('should declare the delivery and exactly the capabilities it was registered with', async () => {
      const b = await bus();
      expect(b.delivery).toEqual(options.delivery);
      for (const [capability, methods] of Object.entries(CAPABILITIES)) {
        for (const method of methods) {
          expect({ capability, method, present: typeof b[method] === 'function' }).toEqual({
            capability,
            method,
            present: has.has(capability as BusCapability),
          });
        }
      }
    });

    it('should deliver every publish to every handler, its own publishes included, in publish order', async () => {
      const b = await bus();
      const [one, two] = [recorder(), recorder()];
      b.subscribe(one.handler);
      b.subscribe(two.handler);
      await b.publish([event(1), event(2)]);
      await b.publish([event(3)]);
      await waitFor(() => one.seqs.length >= 3 && two.seqs.length >= 3, 'every event');
      expect(one.seqs).toEqual([1, 2, 3]);
      expect(two.seqs).toEqual([1, 2, 3]);
    });

    it('should deliver nothing more to a handler once it unsubscribed', async () => {
      const b = await bus();
      const [gone, kept] = [recorder(), recorder()];
      const unsubscribe = b.subscribe(gone.handler);
      b.subscribe(kept.handler);
      await b.publish([event(1)]);
      await waitFor(() => gone.seqs.length === 1 && kept.seqs.length === 1, 'the first event');
      unsubscribe();
      await b.publish([event(2)]);
      await waitFor(() => kept.seqs.length === 2, 'the second event');
      expect(gone.seqs).toEqual([1]);
    });

    it('should answer ping while open, and refuse publish and ping once closed, saying so', async () => {
      const b = await open(`tidings-test-${randomUUID()}`);
      await expect(b.ping()).resolves.toBeUndefined();
      await b.close();
      await b.close();
      const publishing = await b.publish([event(1)]).catch((e: unknown) => e);
      expect(publishing).toBeInstanceOf(BusError);
      expect((publishing as Error).message).toMatch(/publish after close/);
      await expect(b.ping()).rejects.toThrow(/closed/);
    });

    it.skipIf(!ordered)(
      'should have delivered a publish to every handler when publish resolves, as it declares order',
      async () => {
        const b = await bus();
        const r = recorder();
        b.subscribe(r.handler);
        for (let seq = 1; seq <= 5; seq++) {
          await b.publish([event(seq)]);
          expect(r.seqs.at(-1)).toBe(seq);
        }
      },
    );

    it.skipIf(!shared)(
      'should carry every instance’s events to every instance on its channel, and none to another',
      async () => {
        const channel = `tidings-test-${randomUUID()}`;
        const [a, b, other] = [await bus(channel), await bus(channel), await bus()];
        const got = { a: recorder(), b: recorder(), other: recorder() };
        a.subscribe(got.a.handler);
        b.subscribe(got.b.handler);
        other.subscribe(got.other.handler);
        await a.publish([event(1), event(2)]);
        await a.publish([event(3)]);
        await b.publish([event(4)]);
        await waitFor(() => got.a.seqs.length === 4 && got.b.seqs.length === 4, 'both instances');
        expect(got.a.seqs).toEqual([1, 2, 3, 4]);
        expect(got.b.seqs).toEqual([1, 2, 3, 4]);
        expect(got.other.seqs).toEqual([]);
      },
    );

    it.skipIf(shared)(
      'should keep its events to its own instance when it is not shared',
      async () => {
        const channel = `tidings-test-${randomUUID()}`;
        const [a, b] = [await bus(channel), await bus(channel)];
        const [onA, onB] = [recorder(), recorder()];
        a.subscribe(onA.handler);
        b.subscribe(onB.handler);
        await a.publish([event(1)]);
        await b.publish([event(2)]);
        await waitFor(() => onA.seqs.length === 1 && onB.seqs.length === 1, 'each its own event');
        expect([onA.seqs, onB.seqs]).toEqual([[1], [2]]);
      },
    );

    it.skipIf(!has.has('control'))(
      'should carry a control message to the other instances, not back to its sender',
      async () => {
        const channel = `tidings-test-${randomUUID()}`;
        const [a, b] = [await bus(channel), await bus(channel)];
        const got = { a: [] as unknown[], b: [] as unknown[] };
        a.onControl?.((m) => got.a.push(m));
        b.onControl?.((m) => got.b.push(m));
        await a.publishControl?.({ cut: 'alice' });
        await b.publishControl?.({ cut: 'bob' });
        await waitFor(() => got.a.length === 1 && got.b.length === 1, 'both control messages');
        // Events still flow after control messages, and a control message is never an event.
        const r = recorder();
        b.subscribe(r.handler);
        await a.publish([event(9)]);
        await waitFor(() => r.seqs.length === 1, 'an event after them');
        expect(got).toEqual({ a: [{ cut: 'bob' }], b: [{ cut: 'alice' }] });
        expect(r.seqs).toEqual([9]);
      },
    );

    it.skipIf(!options.interrupt || !has.has('resync') || !has.has('status'))(
      'should report down then up after an interruption, ask for a resync, and deliver again',
      async () => {
        const b = await bus();
        const statuses: string[] = [];
        let resyncs = 0;
        b.onStatus?.((status) => statuses.push(status));
        b.onResync?.(() => resyncs++);
        const r = recorder();
        b.subscribe(r.handler);
        await options.interrupt?.();
        await waitFor(() => resyncs === 1 && statuses.at(-1) === 'up', 'the reconnection', 10_000);
        expect(statuses).toEqual(['down', 'up']);
        await b.publish([event(7)]);
        await waitFor(() => r.seqs.includes(7), 'delivery after the reconnection');
        await expect(b.ping()).resolves.toBeUndefined();
      },
    );
  });
}
