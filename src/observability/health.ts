/**
 * Health of an instance: liveness (`/healthz`: the process answers) and readiness (`/readyz`: the
 * store and the bus answer, and the instance still holds its claim on the store).
 */
import { withDeadline } from '../deadline.js';
import type { EventBus } from '../bus/types.js';
import { StoreBlockedError } from '../errors.js';
import type { EventStore, StoreClaim } from '../store/types.js';

/**
 * How long readiness waits for the store and the bus, ms: a healthy one answers in milliseconds,
 * and the answer must reach a load balancer within its own timeout (often 2 s).
 */
export const READY_TIMEOUT_MS = 1_000;

/** What `/readyz` answers. */
export type Readiness = { status: 'ready' } | { status: 'unavailable'; reason: string };

/** The readiness check of one instance. */
export interface Health {
  /** Whether the instance can serve now; resolves within {@link READY_TIMEOUT_MS}, never rejects. */
  readiness(): Promise<Readiness>;
}

/** What readiness checks. */
export interface HealthOptions {
  store: EventStore;
  bus: EventBus;
  /** The instance's claim on its store, when it opened the store itself. */
  claim: StoreClaim | null;
}

/** Creates the readiness check of an instance. */
export function createHealth({ store, bus, claim }: HealthOptions): Health {
  const late = (what: string) => () =>
    new Error(`[${what}] did not answer the readiness check within ${READY_TIMEOUT_MS} ms`);
  return {
    async readiness() {
      try {
        claim?.check();
        // Whatever hangs, the answer comes within the deadline.
        await Promise.all([
          withDeadline(store.ping(), READY_TIMEOUT_MS, late(`store:${store.kind}`)),
          withDeadline(bus.ping(), READY_TIMEOUT_MS, late(`bus:${bus.kind}`)),
        ]);
        return { status: 'ready' };
      } catch (err) {
        // Operator-facing: a store outage's reason names its file.
        const reason =
          err instanceof StoreBlockedError
            ? err.operatorMessage
            : err instanceof Error
              ? err.message
              : String(err);
        return { status: 'unavailable', reason };
      }
    },
  };
}
