/**
 * A store outage the operator can fix (a full disk, a file locked by another process): reported
 * as a system event when a publish meets it, then followed until the store takes writes again,
 * which is reported too. Readiness needs none of this: `/readyz` asks the store, which tries a
 * write while it is in trouble (at most once a second, however many ask).
 */
import type { Logger } from 'pino';
import { StoreBlockedError } from '../errors.js';
import type { SystemEvents } from '../observability/system.js';
import type { EventStore } from './types.js';

/** Options of {@link watchOutages}. */
export interface OutageWatchOptions {
  store: EventStore;
  system: SystemEvents;
  logger: Logger;
  /**
   * How often the store is asked whether it takes writes again during an outage, ms.
   * @default 1000
   */
  probeMs?: number;
}

/** The outage watch of one instance. */
export interface OutageWatch {
  /**
   * Looks at a failed publish's error: an outage is reported and followed (and `true`
   * returned); any other error is left to the caller (`false`).
   */
  failed(err: unknown): boolean;
  /** Stops following an outage. Idempotent. */
  stop(): void;
}

/** The system event of each kind of outage. */
const EVENT_TYPE = {
  STORE_FULL: 'tidings.store.full',
  STORE_BUSY: 'tidings.store.busy',
} as const;

/** Starts the watch; it does nothing until a publish fails with a {@link StoreBlockedError}. */
export function watchOutages(options: OutageWatchOptions): OutageWatch {
  const { store, system, logger } = options;
  const probeMs = options.probeMs ?? 1000;
  /** The outage being followed: what it was, since when, and how many publishes it failed. */
  let outage: { code: StoreBlockedError['code']; since: number; failed: number } | null = null;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const probe = () => {
    timer = undefined;
    store.ping().then(
      () => {
        if (!outage || stopped) return;
        const { code, since, failed } = outage;
        outage = null;
        // The outage's own report, if the store could not take it then, goes in first.
        system.storeDeferred();
        system.report(
          'tidings.store.recovered',
          'SUCCESS',
          `[store] ${store.kind} takes writes again after ${code}`,
          {
            store: store.kind,
            code,
            since: new Date(since).toISOString(),
            failedPublishes: failed,
          },
        );
      },
      (err: unknown) => {
        logger.debug({ err }, '[store] still refusing writes');
        schedule();
      },
    );
  };
  const schedule = () => {
    if (stopped || timer) return;
    timer = setTimeout(probe, probeMs);
    timer.unref();
  };

  return {
    failed(err) {
      if (!(err instanceof StoreBlockedError)) return false;
      if (outage) outage.failed++;
      else outage = { code: err.code, since: Date.now(), failed: 1 };
      system.report(EVENT_TYPE[err.code], 'ERROR', err.operatorMessage, {
        store: store.kind,
        code: err.code,
      });
      schedule();
      return true;
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
