/**
 * The sequencer: puts the events a shared bus brings back into cursor order before the hub sees
 * them, and fills from the store whatever the bus did not bring.
 *
 * With several instances, bus messages from different publishers arrive interleaved, and a
 * message can be lost while the bus is disconnected. The hub never goes back in the sequence (a
 * stream that saw event 12 skips event 11), so handing it events as they come could lose some.
 * The sequencer keeps `through`, the highest sequence handed to the hub. A message whose events
 * start after `through + 1` first reads the events in between from the store — the store commits
 * in sequence order, so once an event is visible every earlier one is committed or never will
 * be — and events at or below `through` are dropped as already delivered. After a reconnection,
 * and every `pollMs` in any case, it reads everything after `through` from the store, so a lost
 * message delays an event by at most that long and never loses it.
 */
import type { Logger } from 'pino';
import type { EventBus } from '../bus/types.js';
import type { StoredEvent } from '../events/types.js';
import type { EventStore } from '../store/types.js';

/**
 * Whether the events `bus` brings must pass through a sequencer before the hub: when the bus may
 * reorder or lose messages (a shared bus), and when the store may commit an append whose caller
 * was told it failed (then nobody publishes its events, and only the store has them). Only a bus
 * that keeps order and loses nothing, on a store that answers every commit, can feed the hub
 * directly.
 */
export function needsSequencer(
  bus: Pick<EventBus, 'delivery'>,
  store: Pick<EventStore, 'flags'>,
): boolean {
  return (
    !bus.delivery.ordered || !bus.delivery.lossless || store.flags?.unconfirmedCommits === true
  );
}

/** Options of {@link createSequencer}. */
export interface SequencerOptions {
  store: EventStore;
  /** Where ordered events go (the hub). */
  dispatch: (events: readonly StoredEvent[]) => void;
  logger: Logger;
  /** The highest sequence already delivered when the sequencer starts (the store's newest). */
  startAfter: number;
  /**
   * How often to check the store for events no message brought, ms; 0 never.
   * @default 5000
   */
  pollMs?: number;
  /**
   * Events read per store query when filling.
   * @default 1000
   */
  batch?: number;
}

/** A running sequencer. */
export interface Sequencer {
  /** Takes the events of one bus message. */
  receive(events: readonly StoredEvent[]): void;
  /** Reads and delivers everything stored after `through` (after a reconnection). */
  resync(): Promise<void>;
  /** The highest sequence handed to the hub. */
  readonly through: number;
  /** Stops polling; waits for work in progress. */
  close(): Promise<void>;
}

/** Creates a sequencer that delivers in cursor order, filling gaps from the store. */
export function createSequencer(options: SequencerOptions): Sequencer {
  const { store, dispatch, logger } = options;
  const batch = options.batch ?? 1000;
  let through = options.startAfter;
  /** Work runs one piece at a time, in arrival order. */
  let chain: Promise<void> = Promise.resolve();

  const deliver = (events: readonly StoredEvent[]) => {
    if (events.length === 0) return;
    dispatch(events);
    through = (events.at(-1) as StoredEvent).seq;
  };

  /** Delivers the stored events after `through` and before `before` (all of them if null). */
  async function fill(before: number | null): Promise<void> {
    for (;;) {
      const { events } = await store.readAfter(through, [], batch);
      const wanted = before === null ? events : events.filter((e) => e.seq < before);
      deliver(wanted);
      if (events.length < batch || wanted.length < events.length) return;
    }
  }

  function enqueue(work: () => Promise<void> | void): Promise<void> {
    const next = chain.then(work).catch((err: unknown) => {
      logger.error(
        { err, through },
        '[bus] reading missed events from the store failed; retried at the next message or poll',
      );
    });
    chain = next;
    return next;
  }

  const poll =
    (options.pollMs ?? 5000) > 0
      ? setInterval(() => {
          void enqueue(async () => {
            if ((await store.lastSeq()) > through) await fill(null);
          });
        }, options.pollMs ?? 5000)
      : null;
  poll?.unref();

  return {
    receive(events) {
      void enqueue(async () => {
        const fresh = events.filter((e) => e.seq > through).sort((a, b) => a.seq - b.seq);
        const first = fresh[0];
        if (!first) return;
        if (first.seq > through + 1) await fill(first.seq);
        deliver(fresh.filter((e) => e.seq > through));
      });
    },
    resync() {
      return enqueue(() => fill(null));
    },
    get through() {
      return through;
    },
    async close() {
      if (poll) clearInterval(poll);
      await chain;
    },
  };
}
