import { BusError } from '../errors.js';
import type { BusHandler, EventBus } from './types.js';

/**
 * The in-process bus: delivers synchronously, in publish order, to this process only. The default;
 * for several instances use the Redis bus.
 */
export function createMemoryBus(): EventBus {
  const handlers = new Set<BusHandler>();
  let closed = false;
  return {
    kind: 'memory',
    // Handlers run inside `publish`, in this process: nothing can come late or not at all.
    delivery: { ordered: true, lossless: true, shared: false },
    async publish(events) {
      if (closed) throw new BusError('[bus:memory] publish after close: the bus was shut down');
      for (const handler of handlers) handler(events);
    },
    subscribe(handler) {
      handlers.add(handler);
      return () => handlers.delete(handler);
    },
    async ping() {
      if (closed) throw new BusError('[bus:memory] the bus is closed');
    },
    async close() {
      closed = true;
      handlers.clear();
    },
  };
}
