/**
 * The Redis bus against the real Redis on this machine (`TIDINGS_TEST_REDIS`, default
 * 127.0.0.1:6379): the bus contract, through a TCP proxy the tests can cut, and what only Redis
 * does. Without a reachable Redis the suite is skipped, unless `CI` is set: then it fails.
 */
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisBus } from '../../src/bus/redis.js';
import { BusError } from '../../src/errors.js';
import { tproxy } from '../tproxy.js';
import { testEventBus } from './contract.js';

const REDIS = process.env.TIDINGS_TEST_REDIS ?? 'redis://127.0.0.1:6379';
const CI = !!process.env.CI && process.env.CI !== 'false' && process.env.CI !== '0';
const logger = pino({ level: 'silent' });

/** Why Redis cannot be used, or null when it answers. */
async function unreachable(): Promise<string | null> {
  const client = new Redis(REDIS, {
    lazyConnect: true,
    connectTimeout: 5_000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.ping();
    return null;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  } finally {
    client.disconnect();
  }
}

const why = await unreachable();
// Every bus of the contract reaches Redis through the proxy, so a test can cut its connections
// without touching those of the other test files.
const proxy = why === null ? await tproxy(REDIS) : null;
afterAll(async () => {
  await proxy?.close();
});

if (why !== null && !CI) {
  describe.skip(`redis bus: Redis at ${REDIS} is unreachable (${why})`, () => {
    it('needs Redis', () => {});
  });
} else {
  if (why !== null) {
    it('should reach the Redis of the tests, which CI must provide', () => {
      throw new Error(`Redis at ${REDIS} is unreachable under CI: ${why}`);
    });
  }
  const via = proxy ? proxy.via(REDIS) : REDIS;
  testEventBus(
    'redis',
    (channel) => createRedisBus(`${via}?channel=${channel}`, { logger, timeoutMs: 1_000 }),
    {
      delivery: { ordered: false, lossless: false, shared: true },
      capabilities: ['control', 'status', 'resync'],
      interrupt: () => proxy?.cut(),
    },
  );
}

describe('redis bus', () => {
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
});
