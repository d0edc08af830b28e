/**
 * The Redis bus (`TIDINGS_BUS=redis://…`), on ioredis: every instance publishes the events it
 * stored on one channel and receives everyone's, its own included. Redis pub/sub keeps no
 * history, so after a disconnection the instance is told to catch up from the store by cursor
 * (see `onResync` and the sequencer): a lost message is never a lost event.
 *
 * URL: `redis://[user:password@]host:port[/db][?channel=tidings:events]`; `rediss://` for TLS.
 *
 * ## Stalls
 *
 * A connection can stay open while nothing comes through it (a stalled network, a frozen
 * server): TCP reports nothing, and a subscriber waiting for messages would wait forever. Every
 * command has a deadline (`timeoutMs`, ioredis's `commandTimeout`, which also covers the checks a
 * reconnection makes), and both connections are pinged at that interval: a connection whose
 * ping gets no answer in time is reported down and reconnected, exactly like a closed one.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { BusError } from '../errors.js';
import type { StoredEvent } from '../events/types.js';
import { importOptionalPackage } from '../optional-packages.js';
import type { BusHandler, EventBus } from './types.js';

/** The default channel. */
export const DEFAULT_CHANNEL = 'tidings:events';

/** The Redis bus: it can lose messages while disconnected, and says when it reconnected. */
export type RedisBus = EventBus &
  Required<Pick<EventBus, 'onResync' | 'onStatus' | 'onControl' | 'publishControl'>>;

/** Where the URL points, without its secret. */
function describe(url: URL): string {
  return `${url.protocol}//${url.hostname}:${url.port || '6379'}${url.pathname}`;
}

/** Options of {@link createRedisBus}. */
export interface RedisBusOptions {
  logger: Logger;
  /** How long a connection may take to open, ms. @default 5000 */
  connectTimeoutMs?: number;
  /**
   * Deadline of each command, ms, and the interval of the pings that find a stalled connection.
   * @default 5000
   */
  timeoutMs?: number;
}

/**
 * Connects to Redis and subscribes to the channel; resolves once both connections are ready.
 * @throws BusError when Redis cannot be reached within `connectTimeoutMs`.
 * @throws ConfigError when `ioredis` is not installed.
 */
export async function createRedisBus(rawUrl: string, options: RedisBusOptions): Promise<RedisBus> {
  const { logger } = options;
  const { Redis } = await importOptionalPackage(
    'ioredis',
    () => import('ioredis'),
    'TIDINGS_BUS=redis://…',
  );
  const timeoutMs = options.timeoutMs ?? 5_000;
  const url = new URL(rawUrl);
  const channel = url.searchParams.get('channel') ?? DEFAULT_CHANNEL;
  url.searchParams.delete('channel');
  const where = describe(url);
  const connectionOptions = {
    lazyConnect: true,
    // Keep retrying forever, at most every 2 s: the instance stays up and recovers by itself.
    retryStrategy: (attempt: number) => Math.min(2_000, 50 * 2 ** Math.min(attempt, 6)),
    maxRetriesPerRequest: 1,
    connectTimeout: options.connectTimeoutMs ?? 5_000,
    commandTimeout: timeoutMs,
    // TCP keepalive finds a peer that vanished while the connection was idle.
    keepAlive: 10_000,
  };
  const publisher = new Redis(url.toString(), connectionOptions);
  const subscriber = new Redis(url.toString(), connectionOptions);
  const controlChannel = `${channel}:control`;
  /** Tells this instance's control messages from the others'. */
  const origin = randomUUID();
  const handlers = new Set<BusHandler>();
  const controls = new Set<(message: unknown) => void>();
  const resyncs = new Set<() => void>();
  const statuses = new Set<(status: 'down' | 'up') => void>();
  let closed = false;
  const connections = [
    ['publisher', publisher],
    ['subscriber', subscriber],
  ] as const;
  type Name = (typeof connections)[number][0];
  /** The connections lost (closed or stalled) and not ready again yet. */
  const down = new Set<Name>();

  /** Counts `name` as lost; the first one lost makes the bus down. */
  function lost(name: Name, reason: string): void {
    if (closed || down.has(name)) return;
    down.add(name);
    if (down.size > 1) return;
    logger.error(
      { bus: where, connection: name, reason },
      '[bus:redis] disconnected: reconnecting; streams catch up from the store',
    );
    for (const callback of statuses) callback('down');
  }

  /** Counts `name` as ready again; the bus is up once none is lost. */
  function regained(name: Name): void {
    if (closed || !down.delete(name)) return;
    // Messages sent while the subscriber was away are lost: read them from the store.
    if (name === 'subscriber') for (const callback of resyncs) callback();
    if (down.size > 0) return;
    logger.info({ bus: where }, '[bus:redis] reconnected: catching up from the store');
    for (const callback of statuses) callback('up');
  }

  for (const [name, connection] of connections) {
    connection.on('error', (err: Error) => {
      if (!closed)
        logger.warn({ err: err.message, bus: where, connection: name }, '[bus:redis] error');
    });
    connection.on('close', () => lost(name, 'connection closed'));
    connection.on('ready', () => regained(name));
  }

  /** Pings each ready connection; one that does not answer in time is reconnected. */
  const pings = setInterval(() => {
    for (const [name, connection] of connections) {
      if (connection.status !== 'ready') continue;
      connection.ping().catch((err: unknown) => {
        if (closed || connection.status !== 'ready') return;
        lost(name, `no answer to a ping within ${timeoutMs} ms: ${(err as Error).message}`);
        connection.disconnect(true);
      });
    }
  }, timeoutMs);
  pings.unref();
  subscriber.on('message', (from: string, message: string) => {
    if (from === controlChannel) {
      let parsed: { origin?: unknown; message?: unknown };
      try {
        parsed = JSON.parse(message) as typeof parsed;
      } catch (err) {
        logger.error({ err, bus: where }, '[bus:redis] a control message is not JSON; ignored');
        return;
      }
      if (parsed.origin === origin) return;
      for (const handler of controls) handler(parsed.message);
      return;
    }
    if (from !== channel) return;
    let events: StoredEvent[];
    try {
      events = JSON.parse(message) as StoredEvent[];
    } catch (err) {
      logger.error({ err, bus: where }, '[bus:redis] a message is not JSON; ignored');
      return;
    }
    for (const handler of handlers) handler(events);
  });

  try {
    await Promise.all([publisher.connect(), subscriber.connect()]);
    await subscriber.subscribe(channel, controlChannel);
  } catch (err) {
    closed = true;
    clearInterval(pings);
    publisher.disconnect();
    subscriber.disconnect();
    throw new BusError(
      `[bus:redis] cannot reach Redis at ${where}: ${(err as Error).message}; is it running? ` +
        'check TIDINGS_BUS',
      { cause: err },
    );
  }

  return {
    kind: 'redis',
    // Several publishers interleave on the channel, and pub/sub drops what a disconnected
    // subscriber misses.
    delivery: { ordered: false, lossless: false, shared: true },
    async publish(events) {
      if (closed) throw new BusError('[bus:redis] publish after close: the bus was shut down');
      try {
        await publisher.publish(channel, JSON.stringify(events));
      } catch (err) {
        throw new BusError(
          `[bus:redis] publishing ${events.length} events to ${where} failed: ${(err as Error).message}`,
          { cause: err },
        );
      }
    },
    subscribe(handler) {
      handlers.add(handler);
      return () => handlers.delete(handler);
    },
    async publishControl(message) {
      if (closed) throw new BusError('[bus:redis] publish after close: the bus was shut down');
      try {
        await publisher.publish(controlChannel, JSON.stringify({ origin, message }));
      } catch (err) {
        throw new BusError(
          `[bus:redis] sending a control message to ${where} failed: ${(err as Error).message}`,
          { cause: err },
        );
      }
    },
    onControl(handler) {
      controls.add(handler);
      return () => controls.delete(handler);
    },
    onResync(callback) {
      resyncs.add(callback);
      return () => resyncs.delete(callback);
    },
    onStatus(callback) {
      statuses.add(callback);
      return () => statuses.delete(callback);
    },
    async ping() {
      if (closed) throw new BusError('[bus:redis] the bus is closed');
      if (publisher.status !== 'ready' || subscriber.status !== 'ready' || down.size > 0) {
        throw new BusError(
          `[bus:redis] not connected to ${where} (${subscriber.status}): reconnecting`,
        );
      }
      try {
        await publisher.ping();
      } catch (err) {
        throw new BusError(`[bus:redis] ${where} does not answer: ${(err as Error).message}`, {
          cause: err,
        });
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(pings);
      handlers.clear();
      await Promise.allSettled([subscriber.quit(), publisher.quit()]);
    },
  };
}
