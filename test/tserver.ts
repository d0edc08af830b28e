/**
 * Test helpers: a real Tidings server on port 0, a GraphQL-over-HTTP caller, and a graphql-sse
 * client and a graphql-ws client bound to it.
 */
import { createClient, type Client, type ClientOptions } from 'graphql-sse';
import {
  createClient as createWsClient,
  type Client as WsClient,
  type ClientOptions as WsClientOptions,
} from 'graphql-ws';
import WebSocket from 'ws';
import { pino } from 'pino';
import { startServer, type RunningServer } from '../src/cli/serve.js';
import type { TidingsConfig } from '../src/config.js';
import type { EventStore } from '../src/store/types.js';
import type { TypedDocumentString } from '../src/client/generated/graphql.js';

/** A GraphQL response body. */
export interface TResult<T> {
  data?: T | null;
  errors?: { message: string; path?: string[]; extensions?: Record<string, unknown> }[];
}

/** A server for one test file or test. */
export interface TServer extends RunningServer {
  /** POSTs a GraphQL operation to /graphql (with extra `headers`) and returns the JSON body. */
  gql<T = Record<string, unknown>>(
    query: string,
    variables?: Record<string, unknown>,
    headers?: Record<string, string>,
  ): Promise<{ data?: T; errors?: { message: string; extensions?: Record<string, unknown> }[] }>;
  /** POSTs a typed document (from src/client/generated) to /graphql. */
  op<R, V>(document: TypedDocumentString<R, V>, variables?: V): Promise<TResult<R>>;
  /** A graphql-sse client for /graphql/stream; disposed when the server stops. */
  client(options?: Partial<ClientOptions<boolean>>): Client<boolean>;
  /** A graphql-ws client for ws://…/graphql, without retries; disposed when the server stops. */
  ws(options?: Partial<WsClientOptions>): WsClient;
}

/** A client that subscribes like graphql-sse's and graphql-ws's do. */
export interface TSubscriber {
  subscribe(
    payload: { query: string; variables?: Record<string, unknown> },
    sink: { next(value: never): void; error(error: unknown): void; complete(): void },
  ): () => void;
}

/** Starts a server on 127.0.0.1, port 0, with an in-memory store unless told otherwise. */
export async function tserver(
  config: Partial<TidingsConfig> = {},
  options: { store?: EventStore } = {},
): Promise<TServer> {
  const running = await startServer(
    { port: 0, host: '127.0.0.1', store: 'sqlite::memory:', logLevel: 'silent', ...config },
    { logger: pino({ level: 'silent' }), ...options },
  );
  const clients: { dispose(): unknown }[] = [];
  return {
    ...running,
    async gql(query, variables, headers = {}) {
      const res = await fetch(`${running.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
        body: JSON.stringify({ query, variables }),
      });
      return (await res.json()) as never;
    },
    async op(document, variables) {
      const res = await fetch(`${running.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ query: document.toString(), variables }),
      });
      return (await res.json()) as never;
    },
    client(options = {}) {
      const client = createClient({
        url: `${running.url}/graphql/stream`,
        retryAttempts: 0,
        ...options,
      });
      clients.push(client);
      return client;
    },
    ws(options = {}) {
      const client = createWsClient({
        url: `${running.url.replace(/^http/, 'ws')}/graphql`,
        webSocketImpl: WebSocket,
        retryAttempts: 0,
        ...options,
      });
      clients.push(client);
      return client;
    },
    async stop() {
      for (const c of clients) void c.dispose();
      await running.stop();
    },
  };
}

/**
 * Subscribes with a graphql-sse client and collects results; `next(n)` waits until `n` results
 * arrived in total.
 */
export function tsubscribe<T = Record<string, unknown>>(
  client: TSubscriber,
  query: string,
  variables?: Record<string, unknown>,
) {
  const results: {
    data?: T;
    errors?: { message: string; extensions?: Record<string, unknown> }[];
  }[] = [];
  let waiters: { n: number; resolve: () => void }[] = [];
  let completed = false;
  let failure: unknown = null;
  const check = () => {
    waiters = waiters.filter((w) => {
      if (results.length >= w.n || completed || failure) {
        w.resolve();
        return false;
      }
      return true;
    });
  };
  const unsubscribe = client.subscribe(
    { query, variables },
    {
      next: (r) => {
        results.push(r);
        check();
      },
      error: (e) => {
        failure = e;
        check();
      },
      complete: () => {
        completed = true;
        check();
      },
    },
  );
  return {
    results,
    get completed() {
      return completed;
    },
    get failure() {
      return failure;
    },
    /** Resolves once `n` results arrived (or the stream ended); rejects after `ms`. */
    async next(n: number, ms = 10_000) {
      if (results.length < n && !completed && !failure) {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error(`timed out waiting for ${n} results, got ${results.length}`)),
            ms,
          );
          waiters.push({
            n,
            resolve: () => {
              clearTimeout(timer);
              resolve();
            },
          });
        });
      }
      return results;
    },
    unsubscribe,
  };
}

/** Waits `ms` milliseconds. */
export const tsleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
