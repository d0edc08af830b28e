/**
 * The `EventBus` port: carries newly stored events to every instance's hub. Adapters live beside
 * this file, one per backend (`memory.ts`, `redis.ts`), and all pass the shared contract suite in
 * `test/bus/`.
 *
 * A bus has a required core (publish, subscribe, ping, close), declares what it promises about
 * delivery, and may have optional capabilities: control messages between instances, status
 * reports, and resync requests. A caller checks for a capability before it relies on it.
 */
import type { StoredEvent } from '../events/types.js';

/** Receives events from the bus, in the order they were published. */
export type BusHandler = (events: readonly StoredEvent[]) => void;

/**
 * What a bus promises about delivery. Whether a sequencer must put events back in order and
 * fill gaps from the store before the hub sees them follows from it (see `hub/sequencer.ts`).
 */
export interface BusDelivery {
  /**
   * Every subscriber receives the events in cursor order, each publish's events before
   * `publish` resolves (one process, delivered synchronously). A bus carrying the publishes of
   * several instances cannot: theirs interleave.
   */
  readonly ordered: boolean;
  /** No message is ever lost: no network lies between a publish and its subscribers. */
  readonly lossless: boolean;
  /**
   * The bus reaches the other instances (and their publishes reach this one), so servers on one
   * store may share it; events arriving through it have crossed a network (their lag is measured).
   */
  readonly shared: boolean;
}

/** Fan-in of new events across instances. */
export interface EventBus {
  /** Backend name used in messages and metrics, e.g. `memory`. */
  readonly kind: string;
  /** What the bus promises about delivery. */
  readonly delivery: BusDelivery;
  /** Publishes stored events to every subscriber (this instance's included). */
  publish(events: readonly StoredEvent[]): Promise<void>;
  /** Registers a handler; returns a function that removes it. */
  subscribe(handler: BusHandler): () => void;
  /** Checks the bus answers; rejects with a `BusError` otherwise. */
  ping(): Promise<void>;
  /** Stops delivery and releases connections. Idempotent. */
  close(): Promise<void>;

  /**
   * Control capability, with {@link onControl}: sends a control message (e.g. a cut-off) to the
   * other instances, never to this one. Absent on a bus that serves one instance only.
   */
  publishControl?(message: object): Promise<void>;
  /** Control capability: registers a handler for control messages from other instances. */
  onControl?(handler: (message: unknown) => void): () => void;
  /**
   * Status capability: registers a callback for when the bus becomes unreachable (`down`) and
   * reachable again (`up`).
   */
  onStatus?(callback: (status: 'down' | 'up') => void): () => void;
  /**
   * Resync capability, on a bus that may lose messages: registers a callback for when messages
   * may have been lost (after a reconnection), so the caller reads what it missed from the store.
   */
  onResync?(callback: () => void): () => void;
}
