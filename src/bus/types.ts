/**
 * The `EventBus` port: carries newly stored events to every instance's hub. Adapters live beside
 * this file, one per backend (`memory.ts`, …).
 */
import type { StoredEvent } from '../events/types.js';

/** Receives events from the bus, in the order they were published. */
export type BusHandler = (events: readonly StoredEvent[]) => void;

/** Fan-in of new events across instances. */
export interface EventBus {
  /** Backend name used in messages and metrics, e.g. `memory`. */
  readonly kind: string;
  /** Publishes stored events to every subscriber (this instance's included). */
  publish(events: readonly StoredEvent[]): Promise<void>;
  /** Registers a handler; returns a function that removes it. */
  subscribe(handler: BusHandler): () => void;
  /**
   * Sends a control message (e.g. a cut-off) to the other instances. Absent on a bus that serves
   * one instance only.
   */
  publishControl?(message: object): Promise<void>;
  /** Registers a callback for when the bus becomes unreachable (`down`) and reachable again. */
  onStatus?(callback: (status: 'down' | 'up') => void): () => void;
  /** Registers a handler for control messages from other instances. */
  onControl?(handler: (message: unknown) => void): () => void;
  /** Checks the bus answers; rejects with a `BusError` otherwise. */
  ping(): Promise<void>;
  /** Stops delivery and releases connections. */
  close(): Promise<void>;
}
