/**
 * A minimal Server-Sent Events reader over `fetch`, for the typed client: it yields each frame
 * (`event`, `data`, `id`) and reports every chunk received, keepalive comments included, so the
 * caller can tell a silent server from a quiet one.
 */

/** One SSE frame. Comment-only frames (keepalives) are not yielded. */
export interface SseMessage {
  event: string | null;
  data: string | null;
  id: string | null;
}

/** Parses frames out of a growing text buffer; returns the frames and what is left over. */
export function parseFrames(buffer: string): { frames: SseMessage[]; rest: string } {
  const frames: SseMessage[] = [];
  const text = buffer.includes('\r') ? buffer.replace(/\r\n?/g, '\n') : buffer;
  let start = 0;
  for (;;) {
    const end = text.indexOf('\n\n', start);
    if (end === -1) break;
    const frame: SseMessage = { event: null, data: null, id: null };
    let fields = 0;
    for (const line of text.slice(start, end).split('\n')) {
      if (line === '' || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') frame.event = value;
      else if (field === 'id') frame.id = value;
      else if (field === 'data')
        frame.data = frame.data === null ? value : `${frame.data}\n${value}`;
      else continue;
      fields++;
    }
    if (fields > 0) frames.push(frame);
    start = end + 2;
  }
  return { frames, rest: text.slice(start) };
}

/**
 * Reads the frames of an event-stream response body. `onActivity` runs for every chunk, so a
 * keepalive comment counts as a sign of life.
 */
export async function* readFrames(
  body: AsyncIterable<Uint8Array>,
  onActivity: () => void,
): AsyncGenerator<SseMessage> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of body) {
    onActivity();
    buffer += decoder.decode(chunk, { stream: true });
    const { frames, rest } = parseFrames(buffer);
    buffer = rest;
    yield* frames;
  }
}
