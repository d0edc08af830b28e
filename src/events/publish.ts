/**
 * The one publish path, shared by the `publishEvent(s)` mutations and the in-process `emit` API:
 * validate, append durably, then hand the new events to the bus.
 */
import type { Logger } from 'pino';
import type { EventBus } from '../bus/types.js';
import { TidingsError, ValidationError } from '../errors.js';
import type { EventStore } from '../store/types.js';
import type { StoredEvent } from './types.js';
import { validateEventInput, type PublishEventInput, type ValidationLimits } from './validate.js';

/** Publishes events; resolves once they are durably stored. */
export type PublishFn = (inputs: readonly PublishEventInput[]) => Promise<StoredEvent[]>;

/** Dependencies of {@link createPublisher}. */
export interface PublisherOptions {
  store: EventStore;
  bus: EventBus;
  limits: ValidationLimits;
  logger: Logger;
  /**
   * Largest number of events in one batch.
   * @default 1000
   */
  maxBatch?: number;
}

/**
 * Creates the publish function. A batch is validated whole before anything is stored, appended
 * atomically, and acknowledged only after the store committed it. Events that already existed
 * (idempotent retries) are returned but not delivered again.
 */
export function createPublisher(options: PublisherOptions): PublishFn {
  const { store, bus, limits, logger } = options;
  const maxBatch = options.maxBatch ?? 1000;
  let tail: Promise<void> = Promise.resolve();
  return async function publish(inputs) {
    if (inputs.length === 0) return [];
    if (inputs.length > maxBatch) {
      throw new ValidationError(
        `[events] a batch holds at most ${maxBatch} events, got ${inputs.length}: split it into smaller batches`,
      );
    }
    const now = Date.now();
    const events = inputs.map((input, i) => {
      try {
        return validateEventInput(input, limits, now);
      } catch (err) {
        if (inputs.length > 1 && err instanceof TidingsError) {
          throw new ValidationError(
            `${err.message} (event ${i} of the batch; nothing was stored)`,
            {
              cause: err,
              details: { ...err.details, index: i },
            },
          );
        }
        throw err;
      }
    });
    // Append-then-dispatch runs one publish at a time, so events reach the bus in cursor order:
    // the hub never goes back in the sequence, so an event dispatched after a newer one would be
    // skipped by the streams that already saw the newer one.
    const done = tail.then(async () => {
      const outcomes = await store.append(events);
      const created = outcomes.filter((o) => o.created).map((o) => o.event);
      if (created.length > 0) {
        // The events are stored: a bus failure must not turn the acknowledged publish into an
        // error. Streams on other instances catch up from the store.
        bus.publish(created).catch((err: unknown) => {
          logger.error({ err, count: created.length }, '[bus] publishing stored events failed');
        });
      }
      return outcomes;
    });
    tail = done.then(
      () => undefined,
      () => undefined,
    );
    const outcomes = await done;
    return outcomes.map((o) => o.event);
  };
}
