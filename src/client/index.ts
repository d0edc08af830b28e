/**
 * The typed Tidings client, for Node services and orchestrators (and any runtime with `fetch`).
 *
 * ```ts
 * const tidings = createTidingsClient({ url: 'http://127.0.0.1:4000', token });
 * await tidings.publish({ type: 'vm.started', inbox: 'pdfm', body: { vm: 42 } });
 * for await (const event of tidings.subscribe({ inboxes: ['pdfm'] })) console.log(event.type);
 * ```
 *
 * `subscribe` resumes from the last cursor it delivered after any reconnect (network drop, server
 * restart, slow-consumer or shutdown error), notices a silent server (no byte, keepalives
 * included, for twice the keepalive interval) and reconnects, and exposes its connection state.
 * Publishes carry an id (generated when absent), so a publish whose answer was lost is retried
 * safely: the server stores the same id once.
 */
import { randomUUID } from 'node:crypto';
import {
  EventsDocument,
  EventStreamDocument,
  PublishEventDocument,
  PublishEventsDocument,
  type EventFieldsFragment,
  type EventFilter,
  type EventOrder,
  type PublishEventInput,
  type TypedDocumentString,
} from './generated/graphql.js';
import { readFrames } from './sse.js';

export type { EventFieldsFragment as TidingsEvent, EventFilter, EventOrder, PublishEventInput };

/** Where the client connects, and how. */
export interface TidingsClientOptions {
  /** The server's base URL, e.g. `http://127.0.0.1:4000`. */
  url: string;
  /** A JWT, or a function giving the current one (called for every request and reconnect). */
  token?: string | (() => string | Promise<string>);
  /**
   * The server's `TIDINGS_KEEPALIVE_MS`: a stream silent for twice this long is reconnected.
   * @default 15000
   */
  keepaliveMs?: number;
  /**
   * Reconnect delays: exponential from `minMs` to `maxMs`, with jitter.
   * @default { minMs: 250, maxMs: 10000 }
   */
  backoff?: { minMs?: number; maxMs?: number };
  /**
   * Attempts of a publish whose answer was lost (network error, 502–504, `SHUTTING_DOWN`,
   * `STORE_UNAVAILABLE`).
   * @default 5
   */
  publishAttempts?: number;
  /** The `fetch` to use. @default globalThis.fetch */
  fetch?: typeof fetch;
}

/** A GraphQL error as the server sends it. */
interface ServerError {
  message: string;
  extensions?: { code?: string; [key: string]: unknown };
}

/** An error the server answered with, or a failure to reach it. */
export class TidingsClientError extends Error {
  /** The server's `extensions.code` (`FORBIDDEN`, `CONFLICT`, …), `NETWORK` or `HTTP_<status>`. */
  readonly code: string;
  /** The server's `extensions`, if any. */
  readonly extensions: Readonly<Record<string, unknown>>;
  constructor(
    message: string,
    code: string,
    options: { cause?: unknown; extensions?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TidingsClientError';
    this.code = code;
    this.extensions = options.extensions ?? {};
  }
}

/** The connection state of a subscription. */
export type ConnectionState = 'connecting' | 'live' | 'reconnecting' | 'closed';

/** Events that retention removed before a subscription could replay them. */
export interface HistoryGap {
  /** The cursor the subscription resumed from. */
  after: string;
  /** The last removed event's cursor; the subscription goes on after it. */
  purgedThrough: string;
}

/** What to subscribe to. */
export interface SubscribeOptions {
  /** Inboxes (names or `prefix*`); omitted: every inbox the token may read. */
  inboxes?: string[];
  /** Also receive the events targeted to this client. */
  clientId?: string;
  filter?: EventFilter;
  /** Replay the events after this cursor first. */
  after?: string;
  /** Called on every state change. */
  onStateChange?: (state: ConnectionState) => void;
  /** Called when events the subscription should have replayed were removed by retention. */
  onGap?: (gap: HistoryGap) => void;
}

/** A live subscription: an async iterator of events that survives reconnects. */
export interface TidingsSubscription extends AsyncIterableIterator<EventFieldsFragment> {
  readonly state: ConnectionState;
  /** The cursor of the last event delivered (where a reconnect resumes). */
  readonly lastCursor: string | null;
  /** How many times the stream was opened again after the first time. */
  readonly reconnects: number;
  /** Ends the subscription; the iterator completes. */
  close(): void;
}

/** Options of {@link TidingsClient.events}. */
export interface EventsOptions {
  filter?: EventFilter;
  /** @default 'OLDEST_FIRST' */
  order?: EventOrder;
  /** Events per request. @default 100 */
  pageSize?: number;
  /** Start after this cursor (in `order`). */
  after?: string;
}

/** The client. */
export interface TidingsClient {
  /** Publishes one event; resolves with it once it is durably stored. */
  publish(input: PublishEventInput): Promise<EventFieldsFragment>;
  /** Publishes a batch atomically (all or none). */
  publishMany(inputs: PublishEventInput[]): Promise<EventFieldsFragment[]>;
  /** Every event matching `filter`, page by page. */
  events(options?: EventsOptions): AsyncIterable<EventFieldsFragment>;
  /** A live subscription that resumes by itself. */
  subscribe(options?: SubscribeOptions): TidingsSubscription;
}

/** Stream errors after which the subscription resumes from its last cursor. */
const RESUMABLE = new Set([
  'SHUTTING_DOWN',
  'SLOW_CONSUMER',
  'STORE_ERROR',
  'STORE_UNAVAILABLE',
  'TOKEN_EXPIRED',
  'STREAM_ENDED',
  'INTERNAL_SERVER_ERROR',
]);

/** Answers after which a publish is retried (its answer may have been lost). */
const RETRY_STATUS = new Set([502, 503, 504]);

class SilentServer extends Error {}

/** Creates a client for the Tidings server at `options.url`. */
export function createTidingsClient(options: TidingsClientOptions): TidingsClient {
  const base = options.url.replace(/\/+$/, '');
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const silenceMs = 2 * (options.keepaliveMs ?? 15_000);
  const minDelay = options.backoff?.minMs ?? 250;
  const maxDelay = options.backoff?.maxMs ?? 10_000;
  const publishAttempts = options.publishAttempts ?? 5;
  const delay = (attempt: number) =>
    Math.min(maxDelay, minDelay * 2 ** Math.min(attempt, 16)) * (0.5 + Math.random() / 2);

  async function headers(extra: Record<string, string>): Promise<Record<string, string>> {
    const token = typeof options.token === 'function' ? await options.token() : options.token;
    return token ? { ...extra, authorization: `Bearer ${token}` } : extra;
  }

  const fail = (error: ServerError | undefined, fallback: string, status: number) =>
    new TidingsClientError(
      error?.message ?? fallback,
      error?.extensions?.code ?? `HTTP_${status}`,
      { extensions: error?.extensions },
    );

  /** Sends one GraphQL request to `/graphql`; throws on any error in the answer. */
  async function request<R, V>(document: TypedDocumentString<R, V>, variables: V): Promise<R> {
    let res: Response;
    try {
      res = await fetchImpl(`${base}/graphql`, {
        method: 'POST',
        headers: await headers({
          'content-type': 'application/json',
          accept: 'application/graphql-response+json, application/json',
        }),
        body: JSON.stringify({ query: document.toString(), variables }),
      });
    } catch (err) {
      throw new TidingsClientError(
        `Tidings at ${base} could not be reached: ${(err as Error).message}`,
        'NETWORK',
        { cause: err },
      );
    }
    const text = await res.text();
    let body: { data?: R | null; errors?: ServerError[] } = {};
    try {
      body = text === '' ? {} : (JSON.parse(text) as typeof body);
    } catch {
      // Not JSON (a proxy's error page): reported below with the status.
    }
    if (body.errors?.length || !body.data) {
      throw fail(body.errors?.[0], `Tidings answered HTTP ${res.status}`, res.status);
    }
    return body.data;
  }

  /** Runs `attempt` again while the answer may have been lost, with backoff. */
  async function withRetries<T>(attempt: () => Promise<T>): Promise<T> {
    for (let i = 1; ; i++) {
      try {
        return await attempt();
      } catch (err) {
        const retry =
          err instanceof TidingsClientError &&
          (err.code === 'NETWORK' ||
            err.code === 'SHUTTING_DOWN' ||
            err.code === 'STORE_UNAVAILABLE' ||
            RETRY_STATUS.has(Number(err.code.replace('HTTP_', ''))));
        if (!retry || i >= publishAttempts) throw err;
        await new Promise((resolve) => setTimeout(resolve, delay(i)));
      }
    }
  }

  /** An id for every event, so that a retried publish is stored once. */
  const withId = (input: PublishEventInput): PublishEventInput =>
    input.id ? input : { ...input, id: randomUUID() };

  function subscribe(sub: SubscribeOptions = {}): TidingsSubscription {
    let state: ConnectionState = 'connecting';
    let lastCursor: string | null = sub.after ?? null;
    let reconnects = 0;
    let closed = false;
    let current: AbortController | null = null;
    let wake: (() => void) | null = null;
    const setState = (next: ConnectionState) => {
      if (state === next) return;
      state = next;
      sub.onStateChange?.(next);
    };
    const variables = () => ({
      inboxes: sub.inboxes,
      clientId: sub.clientId,
      filter: sub.filter,
      after: lastCursor,
    });

    /** Opens the stream and yields its events; returns when it should be opened again. */
    async function* connection(controller: AbortController): AsyncGenerator<EventFieldsFragment> {
      let silence: NodeJS.Timeout | undefined;
      const touch = () => {
        clearTimeout(silence);
        silence = setTimeout(() => controller.abort(new SilentServer()), silenceMs);
      };
      try {
        touch();
        const res = await fetchImpl(`${base}/graphql/stream`, {
          method: 'POST',
          headers: await headers({
            'content-type': 'application/json',
            accept: 'text/event-stream',
          }),
          body: JSON.stringify({ query: EventStreamDocument.toString(), variables: variables() }),
          signal: controller.signal,
        });
        if (!res.ok || !res.body) {
          const body = (await res.json().catch(() => ({}))) as { errors?: ServerError[] };
          const error = fail(body.errors?.[0], `Tidings answered HTTP ${res.status}`, res.status);
          // An expired token is worth another try only if the next request can carry a new one.
          const renewable = error.code === 'TOKEN_EXPIRED' && typeof options.token === 'function';
          if (res.status >= 500 || res.status === 429 || renewable) return;
          throw error;
        }
        setState('live');
        for await (const frame of readFrames(
          res.body as unknown as AsyncIterable<Uint8Array>,
          touch,
        )) {
          if (frame.event === 'complete') return;
          if (frame.event !== 'next' || frame.data === null) continue;
          const payload = JSON.parse(frame.data) as {
            data?: { eventStream: EventFieldsFragment } | null;
            errors?: ServerError[];
          };
          const error = payload.errors?.[0];
          if (error) {
            const code = error.extensions?.code ?? '';
            if (code === 'HISTORY_GAP') {
              if (frame.id !== null) lastCursor = frame.id;
              sub.onGap?.({
                after: String(error.extensions?.after ?? ''),
                purgedThrough: String(error.extensions?.purgedThrough ?? frame.id ?? ''),
              });
              continue;
            }
            if (RESUMABLE.has(code)) return;
            throw fail(error, 'the stream failed', res.status);
          }
          const event = payload.data?.eventStream;
          if (!event) continue;
          lastCursor = event.cursor;
          yield event;
        }
      } catch (err) {
        // A dropped connection, a silent server or close(): open the stream again (or stop).
        if (err instanceof TidingsClientError) throw err;
      } finally {
        clearTimeout(silence);
        controller.abort();
      }
    }

    async function* run(): AsyncGenerator<EventFieldsFragment> {
      try {
        for (let attempt = 0; !closed; attempt++) {
          current = new AbortController();
          let delivered = false;
          for await (const event of connection(current)) {
            delivered = true;
            yield event;
          }
          if (closed) break;
          if (delivered) attempt = 0;
          reconnects++;
          setState('reconnecting');
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, delay(attempt));
            wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          wake = null;
        }
      } finally {
        closed = true;
        current?.abort();
        setState('closed');
      }
    }

    const iterator = run();
    const close = () => {
      closed = true;
      current?.abort();
      wake?.();
    };
    return {
      get state() {
        return state;
      },
      get lastCursor() {
        return lastCursor;
      },
      get reconnects() {
        return reconnects;
      },
      close,
      next: () => iterator.next(),
      return: async () => {
        close();
        return iterator.return(undefined);
      },
      throw: (err?: unknown) => iterator.throw(err),
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  return {
    async publish(input) {
      const event = withId(input);
      const data = await withRetries(() => request(PublishEventDocument, { input: event }));
      return data.publishEvent;
    },
    async publishMany(inputs) {
      const events = inputs.map(withId);
      const data = await withRetries(() => request(PublishEventsDocument, { inputs: events }));
      return data.publishEvents;
    },
    async *events(opts = {}) {
      let after = opts.after ?? null;
      for (;;) {
        const data = await request(EventsDocument, {
          filter: opts.filter,
          order: opts.order ?? 'OLDEST_FIRST',
          first: opts.pageSize ?? 100,
          after,
        });
        for (const edge of data.events.edges) yield edge.node;
        if (!data.events.pageInfo.hasNextPage) return;
        after = data.events.pageInfo.endCursor ?? null;
      }
    },
    subscribe,
  };
}
