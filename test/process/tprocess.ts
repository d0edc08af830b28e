/**
 * Helpers of the process tests: real `tidings serve` processes on a durable SQLite file, that can
 * be killed and restarted on the same port; a GraphQL-over-HTTP caller that tells acknowledged
 * publishes from everything else; and subscribers that resume from their last cursor whenever
 * their stream ends, either through the graphql-sse client or through a plain `GET` with
 * `Last-Event-ID`.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'graphql-sse';
import { tcli, type TProcess } from '../cli/tcli.js';
import { parseFrames, type SseFrame } from '../../src/sse-frames.js';

/** How a server process ended: its exit code, or the signal that killed it. */
export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A `tidings serve` process that is listening. */
export interface TidingsProcess {
  /** Base URL, e.g. `http://127.0.0.1:40123`. */
  url: string;
  port: number;
  child: TProcess['child'];
  /** Everything the process wrote to stdout so far. */
  stdout(): string;
  /** Everything the process wrote to stderr so far. */
  stderr(): string;
  /** Resolves once the process ended. */
  exited: Promise<Exit>;
  /** Sends `signal` to the process (if it still runs) and resolves once it ended. */
  kill(signal: NodeJS.Signals): Promise<Exit>;
}

/** Options of {@link startTidings}. */
export interface StartOptions {
  /** The SQLite file of the store (ignored when `store` is given). */
  file?: string;
  /** A store URL instead of `file`, e.g. `postgres://…`. */
  store?: string;
  /** Port to listen on; 0 (the default) picks a free one. */
  port?: number;
  /** Environment variables added to the process's. */
  env?: Record<string, string>;
  /**
   * How long to wait for the "listening" log line, ms.
   * @default 30000
   */
  startMs?: number;
}

/** Every process spawned by {@link startTidings}, until {@link cleanupProcesses} reaps it. */
const children = new Set<TProcess>();
/** Temporary directories made by {@link tempStore}, until {@link cleanupProcesses} removes them. */
const dirs = new Set<string>();

// Should the test runner itself exit without its hooks, take the servers along.
process.once('exit', () => {
  for (const p of children) p.child.kill('SIGKILL');
});

/** The resident set size of process `pid`, MB (`VmRSS` of `/proc/<pid>/status`). */
export function rssMB(pid: number): number {
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]) / 1024;
}

/** Waits `ms` milliseconds (a retry backoff, never a synchronisation). */
export const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Polls `condition` until it holds; rejects after `ms` with a message naming `what` (and the
 * `detail` of the moment, when given).
 */
export async function waitUntil(
  condition: () => boolean,
  what: string,
  ms = 30_000,
  detail: () => string = () => '',
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${what} ${detail()}`.trim());
    }
    await pause(10);
  }
}

/** Resolves with `promise`, or rejects after `ms` naming `what`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A fresh temporary directory holding the path of a (not yet created) SQLite file; the directory
 * is removed by {@link cleanupProcesses}.
 */
export function tempStore(): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'tidings-process-'));
  dirs.add(dir);
  return { dir, file: join(dir, 'tidings.db') };
}

/**
 * Spawns `tidings serve --port <port> --host 127.0.0.1 --store sqlite:<file>` from source with
 * `LOG_LEVEL=info`, and resolves once it logged the URL it listens on. When a fixed port is still
 * held by the previous process, it tries again for a few seconds.
 */
export async function startTidings(options: StartOptions): Promise<TidingsProcess> {
  const { file, port = 0, env = {}, startMs = 30_000 } = options;
  const store = options.store ?? `sqlite:${file ?? ''}`;
  const deadline = Date.now() + startMs;
  for (;;) {
    const p = tcli(['serve', '--port', String(port), '--host', '127.0.0.1', '--store', store], env);
    children.add(p);
    const exited: Promise<Exit> = p.exited.then((code) => ({
      code,
      signal: p.child.signalCode,
    }));
    void exited.then(() => children.delete(p));
    let url: string;
    try {
      url = await p.listening(Math.max(1_000, deadline - Date.now()));
    } catch (err) {
      await exited;
      if (port !== 0 && /EADDRINUSE/.test(p.stderr()) && Date.now() < deadline) {
        await pause(200);
        continue;
      }
      throw err;
    }
    return {
      url,
      port: Number(new URL(url).port),
      child: p.child,
      stdout: p.stdout,
      stderr: p.stderr,
      exited,
      kill(signal) {
        if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill(signal);
        return exited;
      },
    };
  }
}

/**
 * Kills (SIGKILL) every process {@link startTidings} spawned that still runs, waits for them to
 * end, and removes the directories of {@link tempStore}. Call it in `afterEach`.
 */
export async function cleanupProcesses(): Promise<void> {
  const running = [...children];
  for (const p of running) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  }
  await Promise.all(running.map((p) => p.exited));
  children.clear();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs.clear();
}

/** A GraphQL error as it comes back. */
export interface GqlError {
  message: string;
  extensions?: { code?: string } & Record<string, unknown>;
}

/** An HTTP answer to a GraphQL request. */
export interface GqlAnswer<T> {
  status: number;
  body: { data?: T | null; errors?: GqlError[] } | null;
}

/**
 * POSTs a GraphQL operation to `${url}/graphql`. Resolves with the status and the parsed body
 * (null when it is not JSON); rejects when no answer arrived (connection refused or dropped).
 */
export async function gqlPost<T>(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<GqlAnswer<T>> {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  const text = await res.text();
  let body: GqlAnswer<T>['body'] = null;
  try {
    body = JSON.parse(text) as GqlAnswer<T>['body'];
  } catch {
    // not JSON: left null
  }
  return { status: res.status, body };
}

/** Whether an answer acknowledges the operation: HTTP 200 with data and no errors. */
export function isAck<T>(answer: GqlAnswer<T>): answer is GqlAnswer<T> & {
  body: { data: T };
} {
  return (
    answer.status === 200 &&
    answer.body !== null &&
    answer.body.data != null &&
    (answer.body.errors === undefined || answer.body.errors.length === 0)
  );
}

/** The fields of an event the process tests publish. */
export interface TestEventInput {
  id: string;
  type: string;
  inbox: string;
  message: string;
  body: Record<string, unknown>;
}

/** `publishEvent`, answering the event's id and cursor. */
export const PUBLISH_ONE = `mutation ($e: PublishEventInput!) { publishEvent(input: $e) { id cursor } }`;
/** `publishEvents`, answering each event's id and cursor. */
export const PUBLISH_MANY = `mutation ($es: [PublishEventInput!]!) { publishEvents(inputs: $es) { id cursor } }`;

/** An event's id and cursor. */
export interface IdCursor {
  id: string;
  cursor: string;
}

/**
 * Publishes `inputs` (one `publishEvent` when there is one, else one `publishEvents` batch) and
 * resolves with the answer; rejects when no answer arrived.
 */
export async function publish(
  url: string,
  inputs: readonly TestEventInput[],
): Promise<{ answer: GqlAnswer<unknown>; acked: IdCursor[] | null }> {
  if (inputs.length === 1) {
    const answer = await gqlPost<{ publishEvent: IdCursor }>(url, PUBLISH_ONE, { e: inputs[0] });
    return { answer, acked: isAck(answer) ? [answer.body.data.publishEvent] : null };
  }
  const answer = await gqlPost<{ publishEvents: IdCursor[] }>(url, PUBLISH_MANY, { es: inputs });
  return { answer, acked: isAck(answer) ? answer.body.data.publishEvents : null };
}

/**
 * Publishes `inputs` until they are acknowledged, resending the same ids and content after a
 * refused or dropped connection, a 5xx, or an answer with errors; resolves with the acknowledged
 * events and the number of attempts that failed. Rejects once `signal` is aborted.
 */
export async function publishUntilAcked(
  url: string,
  inputs: readonly TestEventInput[],
  signal: AbortSignal,
  backoffMs = 50,
): Promise<{ acked: IdCursor[]; failures: string[] }> {
  const failures: string[] = [];
  for (;;) {
    signal.throwIfAborted();
    try {
      const { answer, acked } = await publish(url, inputs);
      if (acked) return { acked, failures };
      failures.push(`HTTP ${answer.status} ${JSON.stringify(answer.body).slice(0, 200)}`);
    } catch (err) {
      failures.push(describeFailure(err));
    }
    await pause(backoffMs);
  }
}

/**
 * A short description of a failure: a failed `fetch`'s cause's code or message, an error's
 * message, or the code of a WebSocket close event (what the graphql-ws client reports).
 */
export function describeFailure(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  if (cause) return cause.code ?? cause.message ?? String(cause);
  if (err instanceof Error) return err.message;
  const code = (err as { code?: unknown } | null)?.code;
  return code === undefined ? String(err) : String(code);
}

/** The `events` page the store is read back with. */
const READ_PAGE = `query ($after: String) {
  events(first: 500, after: $after, order: OLDEST_FIRST) {
    edges { cursor node { id cursor } }
    pageInfo { hasNextPage endCursor }
  }
}`;

interface ReadPage {
  events: {
    edges: { cursor: string; node: IdCursor }[];
    pageInfo: { hasNextPage: boolean; endCursor: string | null };
  };
}

/** Every stored event's id and cursor, oldest first, read page by page with `events`. */
export async function readAll(url: string): Promise<IdCursor[]> {
  const out: IdCursor[] = [];
  let after: string | null = null;
  for (;;) {
    const answer: GqlAnswer<ReadPage> = await gqlPost<ReadPage>(url, READ_PAGE, { after });
    if (!isAck(answer)) throw new Error(`reading the events failed: ${JSON.stringify(answer)}`);
    const { edges, pageInfo } = answer.body.data.events;
    for (const edge of edges) {
      if (edge.cursor !== edge.node.cursor) {
        throw new Error(`edge cursor ${edge.cursor} differs from its node's ${edge.node.cursor}`);
      }
      out.push(edge.node);
    }
    if (!pageInfo.hasNextPage || pageInfo.endCursor === null) return out;
    after = pageInfo.endCursor;
  }
}

/**
 * Checks that a sequence of events has strictly increasing cursors and no repeated id; returns
 * the problems found (empty when there is none).
 */
export function sequenceProblems(events: readonly IdCursor[]): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < events.length; i++) {
    const e = events[i] as IdCursor;
    if (seen.has(e.id)) problems.push(`id ${e.id} repeated at position ${i}`);
    seen.add(e.id);
    const prev = events[i - 1];
    if (prev && !(prev.cursor < e.cursor)) {
      problems.push(`cursor ${e.cursor} at position ${i} does not follow ${prev.cursor}`);
    }
  }
  return problems;
}

/** A subscriber that resumes from its last cursor; see {@link resumingSubscriber}. */
export interface ResumingSubscriber {
  /** Every event received, in order of arrival, over all of its connections. */
  readonly received: IdCursor[];
  /** The ids received, for membership checks. */
  readonly ids: ReadonlySet<string>;
  /** The last cursor received (the starting one until an event arrives). */
  readonly lastCursor: string;
  /** The error codes of the error results received (e.g. `SHUTTING_DOWN`). */
  readonly errorCodes: string[];
  /** How each connection ended: `complete`, `error: ...`, `end`. */
  readonly endings: string[];
  /** Number of connections opened (the first one included). */
  readonly connections: number;
  /** Stops resubscribing and closes the current connection. */
  stop(): void;
}

/** Options of {@link resumingSubscriber} and {@link lastEventIdSubscriber}. */
export interface ResumeOptions {
  /** The server's base URL (it stays the same over restarts). */
  url: string;
  /** The inbox to read. */
  inbox: string;
  /** The cursor to start after. */
  after: string;
  /**
   * Wait before resubscribing after a stream ended, ms.
   * @default 100
   */
  backoffMs?: number;
  /**
   * Makes the client of one connection (with no retries of its own).
   * @default the graphql-sse client, distinct-connections mode, at `<url>/graphql/stream`
   */
  connect?: () => SubscribingClient;
}

/** What a resuming subscriber needs of a client: the graphql-sse and graphql-ws clients both fit. */
export interface SubscribingClient {
  subscribe(
    payload: { query: string; variables: Record<string, unknown> },
    sink: {
      next(result: {
        data?: { eventStream: IdCursor } | null;
        errors?: readonly { extensions?: unknown }[];
      }): void;
      error(err: unknown): void;
      complete(): void;
    },
  ): () => void;
  dispose(): unknown;
}

/** The subscription of the resuming subscribers. */
export const RESUME_SUBSCRIPTION = `subscription ($inboxes: [String!], $after: String) {
  eventStream(inboxes: $inboxes, after: $after) { cursor id }
}`;

/**
 * Subscribes with a real client (by default graphql-sse's, distinct-connections mode, no retries of
 * its own; see {@link ResumeOptions.connect}) to `eventStream(inboxes: [inbox], after: <last cursor>)`, and resubscribes with the last cursor
 * it received whenever the subscription errors or completes — after a `SHUTTING_DOWN` frame, a
 * dropped connection, or a refused one while the server is down — until {@link
 * ResumingSubscriber.stop}.
 */
export function resumingSubscriber(options: ResumeOptions): ResumingSubscriber {
  const { url, inbox, backoffMs = 100 } = options;
  const connect =
    options.connect ??
    (() =>
      createClient({ url: `${url}/graphql/stream`, singleConnection: false, retryAttempts: 0 }));
  const received: IdCursor[] = [];
  const ids = new Set<string>();
  const errorCodes: string[] = [];
  const endings: string[] = [];
  let lastCursor = options.after;
  let connections = 0;
  let stopped = false;
  let client: SubscribingClient | null = null;
  let timer: NodeJS.Timeout | undefined;

  const subscribe = () => {
    if (stopped) return;
    connections++;
    client = connect();
    const current = client;
    let ended = false;
    const finish = (how: string) => {
      if (ended) return;
      ended = true;
      endings.push(how);
      void current.dispose();
      if (!stopped) timer = setTimeout(subscribe, backoffMs);
    };
    current.subscribe(
      { query: RESUME_SUBSCRIPTION, variables: { inboxes: [inbox], after: lastCursor } },
      {
        next: (result) => {
          if (result.errors?.length) {
            for (const e of result.errors) {
              errorCodes.push(String((e.extensions as { code?: string } | undefined)?.code));
            }
            return;
          }
          const event = result.data?.eventStream;
          if (!event) return;
          received.push({ id: event.id, cursor: event.cursor });
          ids.add(event.id);
          lastCursor = event.cursor;
        },
        error: (err) => finish(`error: ${describeFailure(err)}`),
        complete: () => finish('complete'),
      },
    );
  };
  subscribe();

  return {
    received,
    ids,
    get lastCursor() {
      return lastCursor;
    },
    errorCodes,
    endings,
    get connections() {
      return connections;
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
      client?.dispose();
    },
  };
}

/**
 * A plain `GET ${url}/graphql/stream?query=...` reader (what an `EventSource` does): parses the
 * `id:` and `data:` lines of every frame, and whenever the response ends or fails, reconnects
 * with the same URL and `Last-Event-ID` set to the last `id:` it received (the starting cursor
 * before the first event), until {@link ResumingSubscriber.stop}.
 */
export function lastEventIdSubscriber(options: ResumeOptions): ResumingSubscriber {
  const { url, inbox, backoffMs = 100 } = options;
  const received: IdCursor[] = [];
  const ids = new Set<string>();
  const errorCodes: string[] = [];
  const endings: string[] = [];
  let lastCursor = options.after;
  let connections = 0;
  let stopped = false;
  let controller: AbortController | null = null;
  const query = `subscription { eventStream(inboxes: ${JSON.stringify([inbox])}) { cursor id } }`;
  const target = `${url}/graphql/stream?${new URLSearchParams({ query })}`;

  const frame = ({ id, data }: SseFrame) => {
    if (!data) return;
    const payload = JSON.parse(data) as {
      data?: { eventStream?: IdCursor };
      errors?: GqlError[];
    };
    for (const e of payload.errors ?? []) errorCodes.push(String(e.extensions?.code));
    const event = payload.data?.eventStream;
    if (!event) return;
    if (id !== event.cursor) errorCodes.push(`ID_LINE_MISMATCH ${id} ${event.cursor}`);
    received.push({ id: event.id, cursor: event.cursor });
    ids.add(event.id);
    lastCursor = id ?? event.cursor;
  };

  void (async () => {
    while (!stopped) {
      connections++;
      controller = new AbortController();
      try {
        const res = await fetch(target, {
          headers: { accept: 'text/event-stream', 'last-event-id': lastCursor },
          signal: controller.signal,
        });
        if (!res.ok || !res.body) {
          endings.push(`HTTP ${res.status}`);
          await res.body?.cancel();
        } else {
          const decoder = new TextDecoder();
          let buffer = '';
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
            const parsed = parseFrames(buffer + decoder.decode(chunk, { stream: true }));
            parsed.frames.forEach(frame);
            buffer = parsed.rest;
          }
          endings.push('end');
        }
      } catch (err) {
        endings.push(`error: ${describeFailure(err)}`);
      }
      if (!stopped) await pause(backoffMs);
    }
  })();

  return {
    received,
    ids,
    get lastCursor() {
      return lastCursor;
    },
    errorCodes,
    endings,
    get connections() {
      return connections;
    },
    stop() {
      stopped = true;
      controller?.abort();
    },
  };
}

/** One Server-Sent Events frame of {@link rawSse}. */
export interface Frame {
  event: string | null;
  id: string | null;
  data: string | null;
}

/** A raw event stream, read with `fetch`; see {@link rawSse}. */
export interface RawSse {
  /** Every frame received (keepalive comments and the `retry:` hint left out). */
  frames: Frame[];
  /** Whether the response ended (or failed). */
  readonly ended: boolean;
  /** How it ended: `end`, or `error: ...`. */
  readonly ending: string | null;
  close(): void;
}

/**
 * Opens one distinct-connections stream (`POST ${url}/graphql/stream` with `query` and
 * `variables`), resolves once the response headers arrived, and reads its frames in the
 * background.
 */
export async function rawSse(
  url: string,
  query: string,
  variables: Record<string, unknown>,
): Promise<RawSse> {
  const controller = new AbortController();
  const res = await fetch(`${url}/graphql/stream`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ query, variables }),
    signal: controller.signal,
  });
  if (res.status !== 200 || !res.body) throw new Error(`stream refused: HTTP ${res.status}`);
  const frames: Frame[] = [];
  let ending: string | null = null;
  void (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        const parsed = parseFrames(buffer + decoder.decode(chunk, { stream: true }));
        buffer = parsed.rest;
        for (const { event, id, data } of parsed.frames) {
          if (event !== null || data !== null) frames.push({ event, id, data });
        }
      }
      ending = 'end';
    } catch (err) {
      ending = `error: ${describeFailure(err)}`;
    }
  })();
  return {
    frames,
    get ended() {
      return ending !== null;
    },
    get ending() {
      return ending;
    },
    close() {
      controller.abort();
    },
  };
}
