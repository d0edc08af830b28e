/**
 * Helpers of the streaming tests: waiting for a condition instead of sleeping, opening streams
 * that are known to be registered with the hub before anything is published, and reading raw
 * Server-Sent Events off a plain `fetch` response.
 */
import { afterAll, afterEach, beforeAll } from 'vitest';
import { parseFrames, type SseFrame } from '../../src/sse-frames.js';
import type { EventStore } from '../../src/store/types.js';
import { tserver, tsubscribe, type TServer, type TSubscriber } from '../tserver.js';

/** Polls `condition` every few milliseconds until it holds; rejects after `ms` naming `what`. */
export async function waitFor(condition: () => boolean, what: string, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** The `eventStream` fields most tests select. */
export const EVENT_FIELDS =
  'id cursor type inbox clientId severity category actor source correlationId timestamp';

/** An `eventStream` payload as selected by {@link EVENT_FIELDS}. */
export interface StreamedEvent {
  id: string;
  cursor: string;
  type: string;
  inbox: string;
  clientId: string | null;
  severity: string;
  category: string | null;
  actor: string | null;
  source: string | null;
  correlationId: string | null;
  timestamp: string;
}

/** The `eventStream(...)` subscription document selecting {@link EVENT_FIELDS}. */
export const STREAM_QUERY = `subscription Stream($inboxes: [String!], $clientId: String, $filter: EventFilter, $after: String) {
  eventStream(inboxes: $inboxes, clientId: $clientId, filter: $filter, after: $after) { ${EVENT_FIELDS} }
}`;

/** One subscription opened by {@link streams}. */
export type Subscription = ReturnType<typeof tsubscribe<{ eventStream: StreamedEvent }>>;

/**
 * Opens subscriptions on a server whose hub is empty between tests: `open` resolves once the hub
 * counts the new stream, so events published afterwards are live for it; `cleanup` unsubscribes
 * everything and waits until the hub is empty again.
 */
export function streams(getServer: () => TServer) {
  const open: Subscription[] = [];
  return {
    /** Subscribes and resolves once the hub registered the stream. */
    async open(
      client: TSubscriber,
      variables: Record<string, unknown> = {},
      query: string = STREAM_QUERY,
    ): Promise<Subscription> {
      const hub = getServer().app.hub;
      const before = hub.size;
      const sub = tsubscribe<{ eventStream: StreamedEvent }>(client, query, variables);
      open.push(sub);
      await waitFor(() => hub.size > before || sub.completed || !!sub.failure, 'the stream');
      return sub;
    },
    /** Unsubscribes every stream this helper opened and waits for the hub to be empty. */
    async cleanup(): Promise<void> {
      for (const sub of open.splice(0)) sub.unsubscribe();
      await waitFor(() => getServer().app.hub.size === 0, 'the hub to be empty');
    },
  };
}

/** The events (data) of a subscription's results; fails on a result with errors. */
export function eventsOf(sub: Subscription): StreamedEvent[] {
  return sub.results.map((r) => {
    if (r.errors?.length || !r.data) throw new Error(`unexpected result ${JSON.stringify(r)}`);
    return r.data.eventStream;
  });
}

/** A raw event stream read with `fetch`. */
export interface RawStream {
  response: Response;
  /** Every frame received so far, in order. */
  frames: SseFrame[];
  /** Whether the server ended the response. */
  readonly ended: boolean;
  /** Resolves once a frame matching `predicate` arrived; returns it. */
  waitFor(predicate: (frame: SseFrame) => boolean, what: string, ms?: number): Promise<SseFrame>;
  /** Resolves once the server ended the response. */
  waitEnd(ms?: number): Promise<void>;
  /** Aborts the request. */
  close(): void;
}

/**
 * Sends a request and, when the answer is an event stream, reads its frames in the background.
 * For other answers `frames` stays empty and the body is left unread.
 */
export async function rawStream(url: string, init: RequestInit = {}): Promise<RawStream> {
  const controller = new AbortController();
  const response = await fetch(url, { ...init, signal: controller.signal });
  const frames: SseFrame[] = [];
  let ended = false;
  if ((response.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    void (async () => {
      const decoder = new TextDecoder();
      let buffer = '';
      try {
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
          buffer += decoder.decode(chunk, { stream: true });
          const parsed = parseFrames(buffer);
          frames.push(...parsed.frames);
          buffer = parsed.rest;
        }
      } catch {
        // aborted by close()
      } finally {
        ended = true;
      }
    })();
  }
  return {
    response,
    frames,
    get ended() {
      return ended;
    },
    async waitFor(predicate, what, ms = 5_000) {
      let found: SseFrame | undefined;
      await waitFor(() => (found = frames.find(predicate)) !== undefined || ended, what, ms);
      if (!found) throw new Error(`the stream ended without ${what}: ${JSON.stringify(frames)}`);
      return found;
    },
    async waitEnd(ms = 5_000) {
      await waitFor(() => ended, 'the end of the response', ms);
    },
    close() {
      controller.abort();
    },
  };
}

/** `rawStream` of a distinct-connections POST carrying one operation. */
export function rawPost(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Promise<RawStream> {
  return rawStream(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...headers },
    body: JSON.stringify({ query, variables }),
  });
}

/** The JSON of a frame's `data:`. */
export function dataOf<T = { data?: unknown; errors?: { extensions?: { code?: string } }[] }>(
  frame: SseFrame,
): T {
  return JSON.parse(frame.data ?? 'null') as T;
}

export { random } from '../trandom.js';
export type { SseFrame } from '../../src/sse-frames.js';

/**
 * A real store answering like a networked one: every call yields to the event loop before and
 * after running, so replays interleave with publishes, an append is committed a moment before its
 * publisher hands it to the bus (as with PostgreSQL), and executing an event takes real time.
 */
export function withLatency(store: EventStore): EventStore {
  const tick = () => new Promise((resolve) => setImmediate(resolve));
  const slow =
    <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      await tick();
      const result = await fn(...args);
      await tick();
      return result;
    };
  return {
    kind: store.kind,
    append: slow(store.append),
    getByIds: slow(store.getByIds),
    getChildren: slow(store.getChildren),
    page: slow(store.page),
    readAfter: slow(store.readAfter),
    retention: store.retention && {
      purge: slow(store.retention.purge),
      purgedThrough: slow(store.retention.purgedThrough),
    },
    revocations: store.revocations && {
      revoke: slow(store.revocations.revoke),
      lookup: slow(store.revocations.lookup),
    },
    flags: store.flags,
    lastSeq: slow(store.lastSeq),
    ping: slow(store.ping),
    close: store.close,
  };
}

/**
 * One server for the test file, with a {@link streams} helper whose streams are closed after
 * every test: registers the vitest hooks and returns accessors.
 */
export function serverWithStreams(config: Parameters<typeof tserver>[0] = {}) {
  let server: TServer | undefined;
  const subs = streams(() => server as TServer);
  beforeAll(async () => {
    server = await tserver(config);
  });
  afterEach(() => subs.cleanup());
  afterAll(() => server?.stop());
  return {
    /** The server (available inside tests and hooks). */
    get s(): TServer {
      return server as TServer;
    },
    subs,
  };
}

/**
 * One server for the test file, with raw SSE streams collected in `open` and closed after every
 * test (which then waits for the hub and the SSE registry to be empty).
 */
export function serverWithRawStreams(config: Parameters<typeof tserver>[0] = {}) {
  let server: TServer | undefined;
  const open: RawStream[] = [];
  beforeAll(async () => {
    server = await tserver(config);
  });
  afterEach(async () => {
    for (const raw of open.splice(0)) raw.close();
    const app = (server as TServer).app;
    await waitFor(() => app.hub.size === 0 && app.sse.size === 0, 'every stream to close');
  });
  afterAll(() => server?.stop());
  return {
    /** The server (available inside tests and hooks). */
    get s(): TServer {
      return server as TServer;
    },
    open,
  };
}
