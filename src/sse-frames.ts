/**
 * The Server-Sent Events frames of Tidings' streams, written and read: the server writes them,
 * the typed client (`tidings/client`) and the tests read them. It depends on nothing, so the
 * client can carry it without any server code.
 */

/** A `next` frame; `cursor` becomes the SSE `id:` so `EventSource` can resume with `Last-Event-ID`. */
export function nextFrame(cursor: string | null, data: string): string {
  return cursor === null
    ? `event: next\ndata: ${data}\n\n`
    : `id: ${cursor}\nevent: next\ndata: ${data}\n\n`;
}

/**
 * A `complete` frame. In distinct-connections mode the `data:` field is empty but present, since
 * `EventSource` ignores events without one.
 */
export function completeFrame(operationId: string | null): string {
  return operationId === null
    ? 'event: complete\ndata:\n\n'
    : `event: complete\ndata: ${JSON.stringify({ id: operationId })}\n\n`;
}

/** The keepalive: a comment line, which `EventSource` ignores. */
export const KEEPALIVE_FRAME = ':\n\n';

/** The `retry:` hint: how long a reconnecting `EventSource` waits, ms. */
export function retryFrame(ms: number): string {
  return `retry: ${ms}\n\n`;
}

/**
 * Whether an `Accept` header asks for an event stream. Media types are case-insensitive, so
 * `Text/Event-Stream` is one too.
 */
export function acceptsEventStream(accept: string | undefined): boolean {
  return accept !== undefined && /text\/event-stream/i.test(accept);
}

/** One frame read off an event stream. */
export interface SseFrame {
  /** The frame's text without the blank line that ends it. */
  raw: string;
  event: string | null;
  /** The `data:` lines joined with `\n`; null when there is none. */
  data: string | null;
  id: string | null;
  retry: string | null;
  /** True when the frame holds only `:` comment lines (a keepalive). */
  comment: boolean;
}

/** Parses one frame's text (without the blank line that ends it). */
export function parseFrame(raw: string): SseFrame {
  const frame: SseFrame = { raw, event: null, data: null, id: null, retry: null, comment: true };
  for (const line of raw.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    frame.comment = false;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') frame.event = value;
    else if (field === 'id') frame.id = value;
    else if (field === 'retry') frame.retry = value;
    else if (field === 'data') frame.data = frame.data === null ? value : `${frame.data}\n${value}`;
  }
  return frame;
}

/**
 * Parses the complete frames out of a growing text buffer (any line endings); returns them and
 * what is left over, the start of a frame still arriving.
 */
export function parseFrames(buffer: string): { frames: SseFrame[]; rest: string } {
  const frames: SseFrame[] = [];
  const text = buffer.includes('\r') ? buffer.replace(/\r\n?/g, '\n') : buffer;
  let start = 0;
  for (;;) {
    const end = text.indexOf('\n\n', start);
    if (end === -1) break;
    frames.push(parseFrame(text.slice(start, end)));
    start = end + 2;
  }
  return { frames, rest: text.slice(start) };
}
