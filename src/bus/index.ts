/**
 * Opens the bus named by `TIDINGS_BUS`: `memory` (one instance) or `redis://…` (several).
 */
import type { Logger } from 'pino';
import { ConfigError } from '../errors.js';
import { createMemoryBus } from './memory.js';
import { createRedisBus, type ResyncingBus } from './redis.js';
import type { EventBus } from './types.js';

/** A bus, and whether messages can be lost or reordered (then a sequencer must order them). */
export type OpenedBus = EventBus & Partial<Pick<ResyncingBus, 'onResync'>>;

/**
 * Opens the bus at `url`; `timeoutMs` is the deadline of each call to a Redis bus (5000 ms when
 * not given).
 * @throws ConfigError for an unsupported URL; BusError when the bus cannot be reached.
 */
export async function createBus(
  url: string,
  logger: Logger,
  timeoutMs?: number,
): Promise<OpenedBus> {
  if (url === 'memory') return createMemoryBus();
  if (/^rediss?:\/\//.test(url)) return createRedisBus(url, { logger, timeoutMs });
  throw new ConfigError(
    `TIDINGS_BUS=${url}: not available in this version; use memory or redis://host:6379`,
  );
}
