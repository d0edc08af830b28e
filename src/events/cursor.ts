import { CursorError } from '../errors.js';

/** Width of an encoded cursor; fixed so cursors sort as strings in sequence order. */
const WIDTH = 12;
const PATTERN = /^[0-9a-z]{12}$/;

/**
 * Encodes a store sequence number as an opaque cursor: fixed-width base 36, so cursors compare as
 * plain strings in the same order as the events they point at.
 */
export function encodeCursor(seq: number): string {
  if (!Number.isSafeInteger(seq) || seq < 0) {
    throw new RangeError(
      `[events:cursor] cannot encode sequence ${seq}: expected a safe integer >= 0`,
    );
  }
  return seq.toString(36).padStart(WIDTH, '0');
}

/**
 * Decodes a cursor produced by {@link encodeCursor}.
 * @throws CursorError when the cursor is not one Tidings issued.
 */
export function decodeCursor(cursor: string): number {
  if (!PATTERN.test(cursor)) {
    throw new CursorError(
      `[events:cursor] "${cursor.slice(0, 40)}" is not a Tidings cursor: pass a cursor exactly as ` +
        'received in an event, an edge or an SSE id.',
    );
  }
  const seq = parseInt(cursor, 36);
  if (!Number.isSafeInteger(seq)) {
    throw new CursorError(`[events:cursor] cursor "${cursor}" is out of range.`);
  }
  return seq;
}
