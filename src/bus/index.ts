/**
 * Opens the bus named by `TIDINGS_BUS`: `memory` (one instance) or `redis://…` (several). The
 * Redis adapter, and `ioredis` with it, is loaded only when a Redis bus is asked for.
 */
import type { Logger } from 'pino';
import { ConfigError } from '../errors.js';
import { createMemoryBus } from './memory.js';
import type { EventBus } from './types.js';

export type { BusDelivery, BusHandler, EventBus } from './types.js';

/**
 * Opens the bus at `url`; `timeoutMs` is the deadline of each call to a Redis bus (5000 ms when
 * not given).
 * @throws ConfigError for an unsupported URL, or a Redis URL without `ioredis` installed;
 * BusError when the bus cannot be reached.
 */
export async function createBus(
  url: string,
  logger: Logger,
  timeoutMs?: number,
): Promise<EventBus> {
  if (url === 'memory') return createMemoryBus();
  if (/^rediss?:\/\//.test(url)) {
    const { createRedisBus } = await import('./redis.js');
    return createRedisBus(url, { logger, timeoutMs });
  }
  throw new ConfigError(
    `TIDINGS_BUS=${url}: not available in this version; use memory or redis://host:6379`,
  );
}
