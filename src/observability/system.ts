/**
 * Tidings reports its own trouble as events: `tidings.*` types in the `system` inbox, which only
 * admins can read, so operators subscribe to them like to anything else. Each report is also a
 * log line. Reports of one type are throttled: at most one per `throttleMs`, the next one saying
 * how many were folded into it.
 */
import type { Logger } from 'pino';
import { StoreBlockedError } from '../errors.js';
import type { PublishFn } from '../publish/publisher.js';
import { SYSTEM_INBOX, type Severity } from '../events/types.js';

/** Options of {@link createSystemEvents}. */
export interface SystemEventsOptions {
  publish: PublishFn;
  logger: Logger;
  /**
   * Least time between two reports of one type, ms.
   * @default 10000
   */
  throttleMs?: number;
  /** The clock, for tests. @default Date.now */
  now?: () => number;
}

/** The reporter of one instance. */
export interface SystemEvents {
  /**
   * Publishes a `tidings.*` event into the `system` inbox (unless one of the same type went out
   * less than `throttleMs` ago). Never throws: a report that cannot be stored is only logged.
   */
  report(type: `tidings.${string}`, severity: Severity, message: string, body?: object): void;
  /**
   * Stores the reports that could not be stored because the store refused writes for the moment
   * (a full disk, a locked file), with the time they were made; call it once the store takes
   * writes again. The latest report of each type is kept. Never throws.
   */
  storeDeferred(): void;
}

/** Creates the reporter. */
export function createSystemEvents(options: SystemEventsOptions): SystemEvents {
  const { publish, logger } = options;
  const throttleMs = options.throttleMs ?? 10_000;
  const now = options.now ?? Date.now;
  /** Per type: when the last report went out, and how many were folded since. */
  const last = new Map<string, { at: number; folded: number }>();
  /** Per type: the latest report the store could not take for the moment. */
  const deferred = new Map<string, Parameters<PublishFn>[0][number]>();
  const store = (input: Parameters<PublishFn>[0][number]) =>
    publish([input]).catch((err: unknown) => {
      if (err instanceof StoreBlockedError) deferred.set(input.type, input);
      logger.error(
        { err, type: input.type },
        '[system] the report could not be stored; it is only logged',
      );
    });

  return {
    report(type, severity, message, body = {}) {
      const level = severity === 'ERROR' || severity === 'CRITICAL' ? 'error' : 'warn';
      logger[level]({ type, ...body }, message);
      const at = now();
      const previous = last.get(type);
      if (previous && at - previous.at < throttleMs) {
        previous.folded++;
        return;
      }
      const folded = previous?.folded ?? 0;
      last.set(type, { at, folded: 0 });
      void store({
        type,
        inbox: SYSTEM_INBOX,
        severity,
        source: 'tidings',
        message,
        body: folded > 0 ? { ...body, alsoSinceLastReport: folded } : body,
        timestamp: new Date(at).toISOString(),
      });
    },
    storeDeferred() {
      const reports = [...deferred.values()];
      deferred.clear();
      for (const input of reports) void store(input);
    },
  };
}

/**
 * Counts refused tokens and reports them in bulk: once `threshold` were refused within
 * `windowMs`, a `tidings.auth.rejected` event says how many, by reason (one refused token is
 * ordinary; many are a misconfigured client or someone guessing).
 */
export function rejectionsReporter(
  system: SystemEvents,
  options: { threshold?: number; windowMs?: number; now?: () => number } = {},
): { count(code: string): void } {
  const threshold = options.threshold ?? 20;
  const windowMs = options.windowMs ?? 60_000;
  const now = options.now ?? Date.now;
  let windowStart = 0;
  let byCode = new Map<string, number>();
  let total = 0;
  return {
    count(code) {
      const at = now();
      if (at - windowStart > windowMs) {
        windowStart = at;
        byCode = new Map();
        total = 0;
      }
      byCode.set(code, (byCode.get(code) ?? 0) + 1);
      if (++total === threshold) {
        system.report(
          'tidings.auth.rejected',
          'WARNING',
          `[auth] ${total} tokens were refused within ${Math.round(windowMs / 1000)} s`,
          {
            refused: total,
            windowSeconds: Math.round(windowMs / 1000),
            byCode: Object.fromEntries(byCode),
          },
        );
      }
    },
  };
}
