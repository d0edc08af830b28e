/**
 * The slow-consumer policy, whatever carries the stream: a connection may fall behind for a
 * moment (a burst, a replay) as long as its client keeps reading; one that stays past the limits,
 * or goes far past them, is a slow consumer and its operations end with `SLOW_CONSUMER`.
 */
import type { QueueLimits } from '../errors.js';
import type { QueueLimitsOptions, QueueWatch } from './types.js';

/**
 * How long a connection may stay above `maxQueueBytes` without draining. A burst larger than the
 * limit (a big batch, a replay) is not slowness as long as the client keeps reading.
 */
export const SLOW_CONSUMER_GRACE_MS = 1000;

/** The limits of {@link QueueLimitsOptions}, with their defaults. */
export function queueLimits(options: QueueLimitsOptions = {}): QueueLimits {
  return {
    maxBytes: options.maxQueueBytes ?? 1024 * 1024,
    maxEvents: options.maxQueueEvents ?? 10_000,
  };
}

/**
 * A fresh policy for one connection: past `maxBytes` waiting or `maxEvents` frames queued behind
 * a full socket buffer for {@link SLOW_CONSUMER_GRACE_MS}, or past four times either at once, it
 * is a slow consumer.
 */
export function watchQueue(limits: QueueLimits): QueueWatch {
  /** When the queue went above a limit without draining since; 0 when it is below. */
  let overSince = 0;
  /** Frames written since the socket buffer filled up (reset when it drains). */
  let queuedFrames = 0;
  /** Set once it said so: a connection becomes a slow consumer once. */
  let slow = false;
  return {
    wrote(queuedBytes, wasFull) {
      if (slow) return false;
      if (wasFull) queuedFrames++;
      if (queuedBytes <= limits.maxBytes && queuedFrames <= limits.maxEvents) return false;
      const now = Date.now();
      if (overSince === 0) overSince = now;
      slow =
        queuedBytes > 4 * limits.maxBytes ||
        queuedFrames > 4 * limits.maxEvents ||
        now - overSince > SLOW_CONSUMER_GRACE_MS;
      return slow;
    },
    drained() {
      overSince = 0;
      queuedFrames = 0;
    },
  };
}
