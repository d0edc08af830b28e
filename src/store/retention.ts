/**
 * Retention: a background loop that removes events older than `TIDINGS_RETENTION` in small
 * batches, each its own short transaction, yielding to the event loop between batches so
 * publishing and streaming never wait long for it. What it removes moves the store's retention
 * horizon, which streams resuming from before it see as an explicit `HISTORY_GAP`.
 */
import type { Logger } from 'pino';
import { requireCapability } from './index.js';
import type { EventStore } from './types.js';

/** Options of {@link startRetention}. */
export interface RetentionOptions {
  store: EventStore;
  /** Events older than this (by the time they were received) are removed, ms. */
  retentionMs: number;
  logger: Logger;
  /**
   * Time between purges, ms.
   * @default min(retentionMs / 10, 60000), at least 1000
   */
  intervalMs?: number;
  /**
   * Events removed per transaction.
   * @default 1000
   */
  batch?: number;
  /** The clock, for tests. @default Date.now */
  now?: () => number;
}

/** A running retention loop. */
export interface Retention {
  /** Purges everything due now, batch by batch; resolves with the number of events removed. */
  runOnce(): Promise<number>;
  /** Stops the loop and waits for a purge in progress to finish. */
  stop(): Promise<void>;
}

/**
 * Starts the retention loop; the first purge runs after one interval.
 * @throws ConfigError when the store has no retention capability.
 */
export function startRetention(options: RetentionOptions): Retention {
  const { store, retentionMs, logger } = options;
  const retention = requireCapability(store, 'retention', 'TIDINGS_RETENTION');
  const intervalMs =
    options.intervalMs ?? Math.max(1_000, Math.min(Math.floor(retentionMs / 10), 60_000));
  const batch = options.batch ?? 1_000;
  const now = options.now ?? Date.now;
  let stopped = false;
  let running: Promise<number> | null = null;

  async function purgeAll(): Promise<number> {
    const before = now() - retentionMs;
    let total = 0;
    for (;;) {
      const { deleted, purgedThrough } = await retention.purge(before, batch);
      total += deleted;
      if (deleted < batch || stopped) {
        if (total > 0) logger.info({ deleted: total, purgedThrough }, '[retention] purged events');
        return total;
      }
      // Let requests and streams run between two batches.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  function runOnce(): Promise<number> {
    running ??= purgeAll().finally(() => (running = null));
    return running;
  }

  const timer = setInterval(() => {
    runOnce().catch((err: unknown) =>
      logger.error({ err }, '[retention] purge failed; it is retried at the next interval'),
    );
  }, intervalMs);
  timer.unref();

  return {
    runOnce,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running?.catch(() => {});
    },
  };
}
