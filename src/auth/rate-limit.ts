/**
 * Publish rate limiting: a token bucket per caller. Each caller may publish `ratePerSecond` events
 * per second on average and bursts of `burst`; past that a publish is refused whole, before
 * anything is stored, with a `RATE_LIMITED` error that says when to retry.
 */
import { RateLimitError } from '../errors.js';

/** Options of {@link createRateLimiter}. */
export interface RateLimiterOptions {
  /** Events per second, on average. */
  ratePerSecond: number;
  /** Largest burst. @default 2 × ratePerSecond */
  burst?: number;
  /** The clock, for tests. @default Date.now */
  now?: () => number;
}

/** Rate limits keyed by caller. */
export interface RateLimiter {
  /**
   * Takes `count` events from `key`'s bucket.
   * @throws RateLimitError when the bucket does not hold them; nothing is taken then.
   */
  take(key: string, count: number): void;
}

interface Bucket {
  tokens: number;
  updated: number;
}

/** Buckets kept before full (idle) ones are forgotten. */
const MAX_BUCKETS = 10_000;

/** Creates a limiter; buckets of callers that went idle are dropped as they refill. */
export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const rate = options.ratePerSecond;
  const burst = options.burst ?? 2 * rate;
  const now = options.now ?? Date.now;
  const buckets = new Map<string, Bucket>();

  function refill(bucket: Bucket, at: number): void {
    bucket.tokens = Math.min(burst, bucket.tokens + ((at - bucket.updated) / 1000) * rate);
    bucket.updated = at;
  }

  return {
    take(key, count) {
      const at = now();
      let bucket = buckets.get(key);
      if (!bucket) {
        if (buckets.size >= MAX_BUCKETS) {
          for (const [k, b] of buckets) {
            refill(b, at);
            if (b.tokens >= burst) buckets.delete(k);
          }
        }
        bucket = { tokens: burst, updated: at };
        buckets.set(key, bucket);
      } else {
        refill(bucket, at);
      }
      if (count <= bucket.tokens) {
        bucket.tokens -= count;
        return;
      }
      const waitS = count > burst ? Infinity : Math.ceil((count - bucket.tokens) / rate);
      throw new RateLimitError(
        count > burst
          ? `[auth] ${count} events in one publish exceed the burst allowed per caller (${burst}): ` +
              'split the batch (TIDINGS_PUBLISH_RATE sets the rate; the burst is twice it)'
          : `[auth] publishing faster than ${rate} events/s (TIDINGS_PUBLISH_RATE): retry in ` +
              `${waitS} s; nothing was stored`,
        Number.isFinite(waitS) ? waitS : 0,
      );
    },
  };
}
