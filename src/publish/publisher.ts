/**
 * The one publish path, shared by the `publishEvent(s)` mutations and the in-process `emit` API:
 * validate, append durably (concurrent calls share one transaction), then hand the new events to
 * the bus.
 *
 * It lives apart from the event domain (`src/events/`, which knows no store and no bus) and from
 * the hub (the read side: bus to streams): it is the write side, the one service that ties the
 * domain's validation to the store and the bus.
 */
import type { Logger } from 'pino';
import type { EventBus } from '../bus/types.js';
import { StoreUnavailableError, TidingsError, ValidationError } from '../errors.js';
import type { AppendOutcome, EventStore } from '../store/types.js';
import type { NewEvent, StoredEvent } from '../events/types.js';
import {
  validateEventInput,
  type PublishEventInput,
  type ValidationLimits,
} from '../events/validate.js';

/** Publishes events; resolves once they are durably stored. */
export type PublishFn = (inputs: readonly PublishEventInput[]) => Promise<StoredEvent[]>;

/** Dependencies of {@link createPublisher}. */
export interface PublisherOptions {
  store: EventStore;
  bus: EventBus;
  limits: ValidationLimits;
  logger: Logger;
  /**
   * Called with events the bus failed to carry (they are stored), so that this instance can
   * still deliver them.
   */
  onBusFailure?: (events: readonly StoredEvent[]) => void;
  /**
   * Largest number of events in one batch.
   * @default 1000
   */
  maxBatch?: number;
  /**
   * Largest number of events appended in one group commit (a single batch larger than this is
   * still appended whole, alone).
   * @default 1000
   */
  maxGroupEvents?: number;
}

/** One caller's validated events, waiting for the commit of their group. */
interface Pending {
  events: readonly NewEvent[];
  resolve(outcomes: AppendOutcome[]): void;
  reject(err: unknown): void;
}

/**
 * Creates the publish function. A batch is validated whole before anything is stored, appended
 * atomically, and acknowledged only after the store committed it. Events that already existed
 * (idempotent retries) are returned but not delivered again.
 *
 * Group commit: calls wait in line and are appended by one loop, which takes every call waiting (up to
 * `maxGroupEvents` events) into a single `store.append` — one transaction, in arrival order — and
 * then gives each caller its own outcomes. The loop starts on the next turn of the event loop
 * (`setImmediate`), so the requests that arrived together share a commit, and calls that arrive
 * while a commit is in progress form the next group. When a group fails, its callers are retried
 * one by one, so a conflicting (or otherwise failing) caller gets the error alone; a caller's own
 * batch stays atomic either way.
 *
 * When the store is unavailable (it did not answer within its deadline), the callers of the group
 * and every caller waiting behind it get a `StoreUnavailableError` at once, with their events' ids
 * in `extensions.ids`: retrying caller by caller, or letting the callers behind them wait, would keep each of
 * them one more deadline. The events may have been stored: a retry with the same ids is safe.
 */
export function createPublisher(options: PublisherOptions): PublishFn {
  const { store, bus, limits, logger } = options;
  const maxBatch = options.maxBatch ?? 1000;
  const maxGroupEvents = options.maxGroupEvents ?? 1000;
  const waiting: Pending[] = [];
  /** Whether the commit loop is scheduled or running. */
  let draining = false;

  /** Hands stored events to the bus; the events are stored, so a failure is only logged. */
  function toBus(outcomes: readonly AppendOutcome[]): void {
    const created = outcomes.filter((o) => o.created).map((o) => o.event);
    if (created.length === 0) return;
    // The events are stored: a bus failure must not turn the acknowledged publish into an error.
    // This instance's streams get them directly; other instances catch up from the store.
    const failed = (err: unknown) => {
      logger.error({ err, count: created.length }, '[bus] publishing stored events failed');
      options.onBusFailure?.(created);
    };
    try {
      bus.publish(created).catch(failed);
    } catch (err) {
      failed(err);
    }
  }

  /** Answers each of `callers` with `err`, and with the ids a retry must use. */
  function unavailable(err: StoreUnavailableError, callers: readonly Pending[]): void {
    for (const pending of callers) {
      pending.reject(
        new StoreUnavailableError(`${err.message} (the ids are in extensions.ids)`, {
          cause: err,
          details: { ...err.details, ids: pending.events.map((e) => e.id) },
        }),
      );
    }
  }

  /**
   * Appends one group in one transaction, then answers each of its callers. Resolves with the
   * error when the store was unavailable; every caller queued meanwhile got it too.
   */
  async function commit(group: readonly Pending[]): Promise<StoreUnavailableError | null> {
    const only = group.length === 1 ? group[0] : undefined;
    let outcomes: AppendOutcome[];
    try {
      outcomes = await store.append(only ? only.events : group.flatMap((p) => p.events));
    } catch (err) {
      if (err instanceof StoreUnavailableError) {
        unavailable(err, [...group, ...waiting.splice(0)]);
        return err;
      }
      if (only) {
        only.reject(err);
        return null;
      }
      // One caller's events (a reused id with other content, say) must not fail the others.
      for (const [i, pending] of group.entries()) {
        const down = await commit([pending]);
        if (down) {
          unavailable(down, group.slice(i + 1));
          return down;
        }
      }
      return null;
    }
    toBus(outcomes);
    let offset = 0;
    for (const pending of group) {
      pending.resolve(outcomes.slice(offset, offset + pending.events.length));
      offset += pending.events.length;
    }
    return null;
  }

  /** Takes the next group of the waiting callers: at least one caller, then up to `maxGroupEvents`. */
  function nextGroup(): Pending[] {
    let count = 1;
    let size = (waiting[0] as Pending).events.length;
    while (count < waiting.length) {
      const more = (waiting[count] as Pending).events.length;
      if (size + more > maxGroupEvents) break;
      size += more;
      count++;
    }
    return waiting.splice(0, count);
  }

  // Append-then-publish-to-the-bus runs one group at a time, so events reach the bus in cursor order: the
  // hub never goes back in the sequence, so an event dispatched after a newer one would be
  // skipped by the streams that already saw the newer one.
  async function drain(): Promise<void> {
    try {
      while (waiting.length > 0) await commit(nextGroup());
    } catch (err) {
      // commit() answers its callers, whatever the store does: this is a bug. Fail the rest.
      logger.error({ err }, '[events] the publish loop failed');
      for (const pending of waiting.splice(0)) pending.reject(err);
    } finally {
      draining = false;
    }
  }

  return function publish(inputs) {
    if (inputs.length === 0) return Promise.resolve([]);
    if (inputs.length > maxBatch) {
      return Promise.reject(
        new ValidationError(
          `[events] a batch holds at most ${maxBatch} events, got ${inputs.length}: split it into smaller batches`,
        ),
      );
    }
    const now = Date.now();
    let events: NewEvent[];
    try {
      events = inputs.map((input, i) => {
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
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<StoredEvent[]>((resolve, reject) => {
      waiting.push({
        events,
        resolve: (outcomes) => resolve(outcomes.map((o) => o.event)),
        reject,
      });
      if (!draining) {
        draining = true;
        setImmediate(() => void drain());
      }
    });
  };
}
