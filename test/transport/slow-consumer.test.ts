/**
 * Slow consumers: a client that stops reading has its stream ended once more than
 * `maxQueueBytes` wait to be sent, with a resumable `SLOW_CONSUMER` error after a gapless prefix
 * of its events, while the other streams of the same group go on unaffected.
 */
import { request, type IncomingMessage } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../src/events/types.js';
import { TOKEN_HEADER } from '../../src/transport/graphql-sse.js';
import { tserver, type TServer } from '../tserver.js';
import { dataOf, rawPost, waitFor, type RawStream, type SseFrame } from './helpers.js';

const MAX_QUEUE_BYTES = 64 * 1024;
/**
 * Events per publish: ~40 KB, under the limit, so that a client that reads keeps up (one write
 * burst larger than the limit ends even a prompt reader: see the known issues below).
 */
const BATCH = 20;
/**
 * At most this many events per test, ~12 MB of frames. On loopback the kernel's socket buffers
 * absorb 4 to 6 MB (the send buffer grows to `tcp_wmem` max) before the server's queue grows.
 */
const MAX_EVENTS = 6_000;

let s: TServer;
const cleanups: (() => void)[] = [];
beforeAll(async () => {
  s = await tserver({ maxQueueBytes: MAX_QUEUE_BYTES });
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) cleanup();
  await waitFor(() => s.app.hub.size === 0 && s.app.sse.size === 0, 'every stream to close');
});
afterAll(() => s.stop());

const QUERY = `subscription Slow($inboxes: [String!], $after: String) {
  eventStream(inboxes: $inboxes, after: $after) { cursor type body }
}`;

/** A body of about 2 KB of JSON. */
const body = (i: number) => ({ i, text: 'x'.repeat(2_000) });

/** Splits raw SSE text into frames, the way `rawStream` does. */
function framesOf(text: string): SseFrame[] {
  return text
    .split('\n\n')
    .filter((raw) => raw !== '')
    .map((raw) => {
      const frame: SseFrame = {
        raw,
        event: null,
        data: null,
        id: null,
        retry: null,
        comment: true,
      };
      for (const line of raw.split('\n')) {
        if (line.startsWith(':')) continue;
        frame.comment = false;
        const colon = line.indexOf(':');
        const field = colon === -1 ? line : line.slice(0, colon);
        const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') frame.event = value;
        else if (field === 'id') frame.id = value;
        else if (field === 'retry') frame.retry = value;
        else if (field === 'data') frame.data = value;
      }
      return frame;
    });
}

/**
 * A client that never reads: the response is paused as soon as its headers arrive. `resume`
 * reads everything that was left waiting and resolves with the text once the server ended it.
 */
function pausedClient(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
) {
  return new Promise<{
    response: IncomingMessage;
    resume: () => Promise<string>;
    destroy: () => void;
  }>((resolve, reject) => {
    const req = request(url, {
      method: options.method ?? 'GET',
      headers: { accept: 'text/event-stream', ...options.headers },
    });
    req.on('error', reject);
    req.on('response', (response) => {
      response.pause();
      resolve({
        response,
        resume: () =>
          new Promise<string>((done, fail) => {
            const chunks: Buffer[] = [];
            response.on('data', (chunk: Buffer) => chunks.push(chunk));
            response.on('end', () => done(Buffer.concat(chunks).toString('utf8')));
            response.on('error', fail);
            response.resume();
          }),
        destroy: () => req.destroy(),
      });
    });
    req.end(options.body);
  });
}

/** The GET URL of a distinct-connection stream of {@link QUERY}. */
function getUrl(variables: Record<string, unknown>): string {
  const url = new URL('/graphql/stream', s.url);
  url.searchParams.set('query', QUERY);
  url.searchParams.set('variables', JSON.stringify(variables));
  return url.toString();
}

/**
 * Publishes batches of ~2 KB events into `inbox` until `ended()` holds, waiting after each batch
 * until `fast` received it (and measuring how long that took). Returns what was published.
 */
async function publishUntil(
  inbox: string,
  ended: () => boolean,
  fast: RawStream,
  fastCursor: (frame: SseFrame) => string | null,
) {
  const published: StoredEvent[] = [];
  let slowest = 0;
  while (!ended() && published.length < MAX_EVENTS) {
    const started = Date.now();
    const batch = await s.app.publish(
      Array.from({ length: BATCH }, (_, i) => ({
        type: 'slow.event',
        inbox,
        body: body(published.length + i),
      })),
    );
    published.push(...batch);
    const last = batch.at(-1)?.cursor;
    await fast.waitFor((f) => fastCursor(f) === last, 'the batch on the fast stream', 2_000);
    slowest = Math.max(slowest, Date.now() - started);
  }
  return { published, slowest };
}

/** The `next` frames before the error and what follows, checked for a gapless resumable end. */
function checkSlowEnd(
  frames: SseFrame[],
  published: StoredEvent[],
  cursorOf: (frame: SseFrame) => string | undefined,
  errorOf: (frame: SseFrame) => { extensions?: { code?: string } }[] | undefined,
) {
  const nexts = frames.filter((f) => f.event === 'next');
  const last = nexts.at(-1) as SseFrame;
  expect(errorOf(last)?.[0]?.extensions?.code).toBe('SLOW_CONSUMER');
  expect(frames.at(-1)?.event).toBe('complete');
  expect(frames.indexOf(last)).toBe(frames.length - 2);
  const delivered = nexts.slice(0, -1);
  // Something was delivered, not everything, and exactly the first events, in order.
  expect(delivered.length).toBeGreaterThan(0);
  expect(delivered.length).toBeLessThan(published.length);
  const cursors = delivered.map((f) => cursorOf(f));
  expect(cursors).toEqual(published.slice(0, delivered.length).map((e) => e.cursor));
  for (let i = 1; i < cursors.length; i++) {
    expect((cursors[i] as string) > (cursors[i - 1] as string)).toBe(true);
  }
  return cursors.at(-1) as string;
}

describe('slow consumers', () => {
  it('should end a stream that stops reading with SLOW_CONSUMER after a gapless prefix, leaving the other streams of its group unaffected', async () => {
    const inbox = 'slow-distinct';
    const variables = { inboxes: [inbox] };
    const fast = await rawPost(`${s.url}/graphql/stream`, QUERY, variables);
    cleanups.push(() => fast.close());
    const slow = await pausedClient(getUrl(variables));
    cleanups.push(() => slow.destroy());
    expect(slow.response.statusCode).toBe(200);
    await waitFor(() => s.app.hub.size === 2, 'both streams');

    const { published, slowest } = await publishUntil(
      inbox,
      () => s.app.hub.size < 2,
      fast,
      (f) => f.id,
    );
    // The slow stream was ended on the server's side, long before the cap.
    expect(s.app.hub.size).toBe(1);
    expect(published.length).toBeLessThan(MAX_EVENTS);
    // The fast stream got every batch promptly, and is still open.
    expect(slowest).toBeLessThan(1_000);
    const [live] = await s.app.publish([{ type: 'after.slow', inbox }]);
    const started = Date.now();
    await fast.waitFor((f) => f.id === live?.cursor, 'an event after the slow stream ended', 1_000);
    expect(Date.now() - started).toBeLessThan(500);
    expect(fast.ended).toBe(false);
    const fastCursors = fast.frames.filter((f) => f.event === 'next').map((f) => f.id);
    expect(fastCursors).toEqual([...published, live].map((e) => e?.cursor));
    expect(fast.frames.some((f) => f.event === 'next' && dataOf(f).errors)).toBe(false);

    // The slow client reads what was left waiting: a gapless prefix, the error, `complete`.
    const frames = framesOf(await slow.resume());
    expect(frames[0]?.retry).toBe(String(s.app.config.retryMs));
    const lastCursor = checkSlowEnd(
      frames,
      published,
      (f) => {
        const cursor = dataOf<{ data?: { eventStream: { cursor: string } } }>(f).data?.eventStream
          .cursor;
        expect(f.id).toBe(cursor);
        return cursor;
      },
      (f) => dataOf(f).errors as never,
    );
    const error = dataOf<{ errors: { message: string; extensions: Record<string, unknown> }[] }>(
      frames.filter((f) => f.event === 'next').at(-1) as SseFrame,
    ).errors[0];
    expect(error?.extensions.limitBytes).toBe(MAX_QUEUE_BYTES);
    expect(error?.message).toMatch(/resume from the last cursor/);
    // Operators hear of it in the system inbox.
    const reports = await s.app.store.page({
      clauses: [{ kind: 'match', field: 'inbox', values: ['system'], prefixes: [] }],
      first: 10,
    });
    expect(reports.events.map((e) => [e.type, e.severity])).toContainEqual([
      'tidings.stream.slow_consumer',
      'WARNING',
    ]);

    // Resuming from the last cursor received gives the rest, without a gap.
    const resumed = await rawPost(`${s.url}/graphql/stream`, QUERY, {
      ...variables,
      after: lastCursor,
    });
    cleanups.push(() => resumed.close());
    const rest = [...published, live].filter((e) => (e?.cursor as string) > lastCursor);
    await waitFor(
      () => resumed.frames.filter((f) => f.event === 'next').length >= rest.length,
      'the resumed replay',
    );
    expect(resumed.frames.filter((f) => f.event === 'next').map((f) => f.id)).toEqual(
      rest.map((e) => e?.cursor),
    );
  });

  it('should end a slow single connection with SLOW_CONSUMER for its operation', async () => {
    const inbox = 'slow-single';
    const variables = { inboxes: [inbox] };
    const fast = await rawPost(`${s.url}/graphql/stream`, QUERY, variables);
    cleanups.push(() => fast.close());

    const reserved = await fetch(`${s.url}/graphql/stream`, { method: 'PUT' });
    expect(reserved.status).toBe(201);
    const token = await reserved.text();
    const slow = await pausedClient(`${s.url}/graphql/stream`, {
      headers: { [TOKEN_HEADER]: token },
    });
    cleanups.push(() => slow.destroy());
    expect(slow.response.statusCode).toBe(200);
    const operationId = 'slow-op';
    const posted = await fetch(`${s.url}/graphql/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [TOKEN_HEADER]: token },
      body: JSON.stringify({ query: QUERY, variables, extensions: { operationId } }),
    });
    expect(posted.status).toBe(202);
    await waitFor(() => s.app.hub.size === 2, 'both streams');

    const { published, slowest } = await publishUntil(
      inbox,
      () => s.app.hub.size < 2,
      fast,
      (f) => f.id,
    );
    expect(s.app.hub.size).toBe(1);
    expect(published.length).toBeLessThan(MAX_EVENTS);
    expect(slowest).toBeLessThan(1_000);
    expect(fast.ended).toBe(false);

    const frames = framesOf(await slow.resume());
    type Tagged = {
      id: string;
      payload: {
        data?: { eventStream: { cursor: string } };
        errors?: { extensions?: { code?: string } }[];
      };
    };
    for (const f of frames.filter((f) => f.event === 'next')) {
      expect(dataOf<Tagged>(f).id).toBe(operationId);
    }
    checkSlowEnd(
      frames,
      published,
      (f) => {
        const cursor = dataOf<Tagged>(f).payload.data?.eventStream.cursor;
        expect(f.id).toBe(cursor);
        return cursor;
      },
      (f) => dataOf<Tagged>(f).payload.errors,
    );
    expect(dataOf(frames.at(-1) as SseFrame)).toEqual({ id: operationId });
    // The reservation is gone with its connection.
    const after = await fetch(`${s.url}/graphql/stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [TOKEN_HEADER]: token },
      body: JSON.stringify({ query: QUERY, variables, extensions: { operationId: 'again' } }),
    });
    expect(after.status).toBe(404);
  });

  /**
   * A burst larger than `maxQueueBytes` is not slowness while the client reads: replays wait for
   * the connection to drain, and live bursts may reach four times the limit before the grace
   * period decides.
   */
  it('should not end a promptly reading stream whose replay is larger than maxQueueBytes', async () => {
    const inbox = 'slow-burst-replay';
    // ~200 KB of stored events, replayed to a client that reads at once.
    const stored = await s.app.publish(
      Array.from({ length: 100 }, (_, i) => ({ type: 'burst', inbox, body: body(i) })),
    );
    const raw = await rawPost(`${s.url}/graphql/stream`, QUERY, {
      inboxes: [inbox],
      after: '000000000000',
    });
    cleanups.push(() => raw.close());
    await raw.waitFor((f) => f.id === stored.at(-1)?.cursor, 'the whole replay');
    expect(raw.frames.some((f) => f.event === 'next' && dataOf(f).errors)).toBe(false);
  });

  it('should not end a promptly reading stream when one published batch is larger than maxQueueBytes', async () => {
    const inbox = 'slow-burst-live';
    const raw = await rawPost(`${s.url}/graphql/stream`, QUERY, { inboxes: [inbox] });
    cleanups.push(() => raw.close());
    await waitFor(() => s.app.hub.size === 1, 'the stream');
    // One valid publish of ~200 KB.
    const published = await s.app.publish(
      Array.from({ length: 10 }, (_, i) => ({
        type: 'burst',
        inbox,
        body: { i, text: 'x'.repeat(20_000) },
      })),
    );
    await raw.waitFor((f) => f.id === published.at(-1)?.cursor, 'the whole batch');
    expect(raw.frames.some((f) => f.event === 'next' && dataOf(f).errors)).toBe(false);
  });
});

describe('slow consumers, bounded in events', () => {
  const MAX_QUEUE_EVENTS = 50;
  let e: TServer;
  beforeAll(async () => {
    // A byte limit that small events never reach: only the event count can end the stream.
    e = await tserver({ maxQueueEvents: MAX_QUEUE_EVENTS, maxQueueBytes: 1024 ** 3 });
  });
  afterAll(() => e.stop());

  it('should end a stream that stops reading once more than TIDINGS_MAX_QUEUE events wait', async () => {
    const inbox = 'slow-events';
    const url = new URL('/graphql/stream', e.url);
    url.searchParams.set(
      'query',
      'subscription { eventStream(inboxes: ["slow-events"]) { cursor } }',
    );
    const slow = await pausedClient(url.toString());
    cleanups.push(() => slow.destroy());
    await waitFor(() => e.app.hub.size === 1, 'the stream');
    const published: StoredEvent[] = [];
    // Small frames: the kernel's socket buffers take tens of thousands before the queue grows.
    while (e.app.hub.size === 1 && published.length < 200_000) {
      published.push(
        ...(await e.app.publish(Array.from({ length: 500 }, () => ({ type: 's', inbox })))),
      );
    }
    expect(e.app.hub.size).toBe(0);
    const frames = framesOf(await slow.resume());
    checkSlowEnd(
      frames,
      published,
      (f) => f.id ?? undefined,
      (f) => dataOf(f).errors as never,
    );
    const error = dataOf<{ errors: { message: string; extensions: Record<string, unknown> }[] }>(
      frames.filter((f) => f.event === 'next').at(-1) as SseFrame,
    ).errors[0];
    expect(error?.extensions).toMatchObject({
      code: 'SLOW_CONSUMER',
      limitEvents: MAX_QUEUE_EVENTS,
    });
    expect(error?.message).toMatch(/TIDINGS_MAX_QUEUE and TIDINGS_MAX_QUEUE_BYTES/);
  });
});
