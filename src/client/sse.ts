/**
 * A minimal Server-Sent Events reader over `fetch`, for the typed client: it yields each frame
 * (`event`, `data`, `id`) and reports every chunk received, keepalive comments included, so the
 * caller can tell a silent server from a quiet one. The frames are parsed by `sse-frames.ts`,
 * the module the server writes them with.
 */
import { parseFrames } from '../sse-frames.js';

/** One SSE frame. Comment-only frames (keepalives) and bare `retry:` hints are not yielded. */
export interface SseMessage {
  event: string | null;
  data: string | null;
  id: string | null;
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
    for (const { event, data, id } of frames) {
      if (event !== null || data !== null || id !== null) yield { event, data, id };
    }
  }
}
