/**
 * The Redis bus against the real Redis on this machine (127.0.0.1:6379): fan-in across
 * instances, failures that are reported, and a reconnection that asks for a resync.
 * An unreachable Redis fails these tests: they never skip.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createRedisBus, type ResyncingBus } from '../../src/bus/redis.js';
import { BusError } from '../../src/errors.js';
import type { StoredEvent } from '../../src/events/types.js';
import { waitFor } from '../transport/helpers.js';

const REDIS = process.env.TIDINGS_TEST_REDIS ?? 'redis://127.0.0.1:6379';
const logger = pino({ level: 'silent' });
const open: ResyncingBus[] = [];
afterEach(async () => {
  for (const bus of open.splice(0)) await bus.close();
});

async function bus(channel: string): Promise<ResyncingBus> {
  const b = await createRedisBus(`${REDIS}?channel=${channel}`, { logger });
  open.push(b);
  return b;
}

const event = (seq: number) => ({ seq, id: `e${seq}`, cursor: String(seq) }) as StoredEvent;

describe('redis bus', () => {
  it('should carry every instance’s events to every instance, in publish order', async () => {
    const channel = `tidings-test-${randomUUID()}`;
    const [a, b] = [await bus(channel), await bus(channel)];
    const other = await bus(`${channel}-other`);
    const got = { a: [] as number[], b: [] as number[], other: [] as number[] };
    a.subscribe((events) => got.a.push(...events.map((e) => e.seq)));
    b.subscribe((events) => got.b.push(...events.map((e) => e.seq)));
    other.subscribe((events) => got.other.push(...events.map((e) => e.seq)));
    await a.publish([event(1), event(2)]);
    await a.publish([event(3)]);
    await b.publish([event(4)]);
    await waitFor(() => got.a.length === 4 && got.b.length === 4, 'every event on both');
    expect(got.a).toEqual([1, 2, 3, 4]);
    expect(got.b).toEqual([1, 2, 3, 4]);
    expect(got.other).toEqual([]);
    await expect(a.ping()).resolves.toBeUndefined();
  });

  it('should refuse to start when Redis cannot be reached, saying where', async () => {
    const err = await createRedisBus('redis://127.0.0.1:1', {
      logger,
      connectTimeoutMs: 500,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BusError);
    expect((err as Error).message).toMatch(
      /cannot reach Redis at redis:\/\/127\.0\.0\.1:1.*check TIDINGS_BUS/,
    );
  });

  it('should say it is not ready while disconnected, then reconnect and ask for a resync', async () => {
    const channel = `tidings-test-${randomUUID()}`;
    const b = await bus(channel);
    let resyncs = 0;
    b.onResync(() => resyncs++);
    const received: number[] = [];
    b.subscribe((events) => received.push(...events.map((e) => e.seq)));
    // Cut every pub/sub connection of this Redis, as a network failure or a restart would.
    const admin = new Redis(REDIS);
    try {
      await admin.client('KILL', 'TYPE', 'pubsub');
      await waitFor(() => resyncs === 1, 'the reconnection', 10_000);
    } finally {
      admin.disconnect();
    }
    await b.publish([event(7)]);
    await waitFor(() => received.includes(7), 'delivery after the reconnection');
    await expect(b.ping()).resolves.toBeUndefined();
  });

  it('should fail publish and ping clearly once closed', async () => {
    const b = await createRedisBus(`${REDIS}?channel=tidings-test-${randomUUID()}`, { logger });
    await b.close();
    await expect(b.publish([event(1)])).rejects.toThrow(/publish after close/);
    await expect(b.ping()).rejects.toThrow(/closed/);
  });
});
