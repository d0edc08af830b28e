/**
 * UUIDv7 (RFC 9562) for the ids Tidings assigns: 48 bits of Unix milliseconds, then a 32-bit
 * counter seeded at random each millisecond (so ids made in one process sort in creation order,
 * like the `uuid` package's `v7()`), then random bits. Random bytes come from a pool refilled by
 * `crypto.randomFillSync` in large blocks, and the text is built from a byte-to-hex table: the
 * publish path makes one id per event.
 */
import { randomFillSync } from 'node:crypto';

/** Random bytes drawn per id (4 seed the counter when the millisecond changes, 6 fill the end). */
const DRAW = 10;
const pool = Buffer.allocUnsafe(DRAW * 512);
let cursor = pool.length;

const HEX: readonly string[] = Array.from({ length: 256 }, (_, i) =>
  i.toString(16).padStart(2, '0'),
);

/** The millisecond of the last id, which may run ahead of the clock when the counter wraps. */
let lastMs = -Infinity;
/** The 31-bit counter of `lastMs`. */
let counter = 0;

/** A new UUIDv7, e.g. `019a6f3e-8c2b-7d41-9a3c-5e0f1b2c3d4e`; greater than the previous one. */
export function uuidv7(): string {
  if (cursor + DRAW > pool.length) {
    randomFillSync(pool);
    cursor = 0;
  }
  const r = cursor;
  cursor += DRAW;
  const now = Date.now();
  if (now > lastMs) {
    lastMs = now;
    counter =
      (((pool[r] as number) & 0x7f) << 24) |
      ((pool[r + 1] as number) << 16) |
      ((pool[r + 2] as number) << 8) |
      (pool[r + 3] as number);
  } else {
    counter = (counter + 1) & 0x7fffffff;
    if (counter === 0) lastMs++;
  }
  const ms = lastMs;
  const high = Math.floor(ms / 0x100000000);
  const low = ms >>> 0;
  return (
    `${HEX[(high >>> 8) & 0xff] as string}${HEX[high & 0xff] as string}` +
    `${HEX[low >>> 24] as string}${HEX[(low >>> 16) & 0xff] as string}-` +
    `${HEX[(low >>> 8) & 0xff] as string}${HEX[low & 0xff] as string}-` +
    `${HEX[0x70 | ((counter >>> 27) & 0x0f)] as string}${HEX[(counter >>> 19) & 0xff] as string}-` +
    `${HEX[0x80 | ((counter >>> 13) & 0x3f)] as string}${HEX[(counter >>> 5) & 0xff] as string}-` +
    `${HEX[((counter << 3) & 0xf8) | ((pool[r + 4] as number) & 0x07)] as string}` +
    `${HEX[pool[r + 5] as number] as string}${HEX[pool[r + 6] as number] as string}` +
    `${HEX[pool[r + 7] as number] as string}${HEX[pool[r + 8] as number] as string}` +
    `${HEX[pool[r + 9] as number] as string}`
  );
}
