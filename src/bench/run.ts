/**
 * `npm run bench`: the fan-out benchmark. In one run, with one client, it measures three servers
 * side by side, each in its own child process:
 *
 * - `tidings`: the real server (`startServer`) on a durable SQLite file in a temporary directory;
 * - `yoga`: graphql-yoga's documented pub/sub subscription pattern on the same schema (one
 *   execution per subscriber per event);
 * - `raw`: plain `node:http` writing one preformatted frame to every stream as each publish
 *   arrives (the ceiling for a server that writes each event to each socket on its own; one that
 *   coalesces concurrent events into fewer writes can pass it).
 *
 * For each server: connect `--subscribers` event streams, read the server's memory before and
 * after (idle cost per stream), publish `--events` events from `--publishers` concurrent loops,
 * and count every `next` frame every stream receives; deliveries/s, latency percentiles (from the
 * `sentAt` in each event's body, on a sample of streams) and missing deliveries follow.
 * `--idle N` adds a phase that holds N idle Tidings streams and reports memory per stream.
 *
 * All traffic goes to 127.0.0.1. Every wait is bounded, so the run ends by itself.
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import type { ChildMessage, ChildSnapshot, ParentMessage } from './servers/child.js';

/** Where every benchmark server listens. */
export const HOST = '127.0.0.1';
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SERVER_NAMES = ['tidings', 'yoga', 'raw'] as const;

/** One of the servers the benchmark compares. */
export type ServerName = (typeof SERVER_NAMES)[number];

/** The benchmark's parameters (from the command line). */
export interface BenchOptions {
  subscribers: number;
  events: number;
  publishers: number;
  /** Bytes of padding in each event body. */
  payload: number;
  /** Subscribers and events are spread round-robin over `bench-0..inboxes-1`. */
  inboxes: number;
  servers: ServerName[];
  /** Idle Tidings streams to hold in a separate phase; 0 skips it. */
  idle: number;
  /** Runs of each server, interleaved; figures are medians. */
  repeat: number;
  /** Publishes to an unwatched inbox before measuring, to warm the publish path. */
  warmup: number;
  /** Streams opened at a time. */
  batch: number;
  /** Longest wait for the deliveries once publishing ended, ms. */
  timeoutMs: number;
  /** Pin the server process to CPU 0 and the client to CPU 1 (needs `taskset`, 2+ CPUs). */
  pin: boolean;
  /** How the streams are carried: graphql-sse (`sse`) or graphql-ws (`ws`, no yoga server). */
  transport: 'sse' | 'ws';
  json: boolean;
}

const USAGE = `Usage: npm run bench -- [options]

  --subscribers N   event streams per server (default 2000)
  --events N        events published per run (default 100)
  --publishers N    concurrent publishing loops (default 4)
  --payload N       bytes of padding in each event body (default 256)
  --inboxes N       streams and events spread round-robin over N inboxes (default 1)
  --servers LIST    comma-separated: tidings,yoga,raw (default all three)
  --repeat N        runs per server, interleaved; medians are reported (default 1)
  --idle N          then hold N idle Tidings streams and report memory per stream (default 0)
  --warmup N        publishes to an unwatched inbox before measuring (default 20)
  --batch N         streams connected at a time (default 200)
  --timeout S       longest wait for deliveries after the last publish, seconds (default 60)
  --transport T     sse (graphql-sse, default) or ws (graphql-ws; tidings and raw only)
  --no-pin          do not pin the server to CPU 0 and the client to CPU 1
  --json            also print a JSON summary
`;

/**
 * Parses a benchmark command line: `--<name> <value>` for every key of `defaults` (each with its
 * default), and the booleans `--no-pin`, `--json` and `--help`, which prints `usage` and exits.
 * Throws on an unknown option.
 */
export function parseBenchArgs<K extends string>(
  argv: readonly string[],
  usage: string,
  defaults: Record<K, string>,
): { values: Record<K, string>; pin: boolean; json: boolean } {
  const strings = Object.fromEntries(
    Object.entries(defaults).map(([name, value]) => [
      name,
      { type: 'string' as const, default: value as string },
    ]),
  );
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      ...strings,
      'no-pin': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(usage);
    process.exit(0);
  }
  return {
    values: values as unknown as Record<K, string>,
    pin: !values['no-pin'],
    json: values.json === true,
  };
}

/** The integer value of `--name`; throws with a one-line message unless it is in [min, max]. */
export function intFlag(name: string, raw: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
    throw new Error(`--${name}=${raw} is invalid: expected an integer ${range}`);
  }
  return n;
}

/**
 * Parses the command line into {@link BenchOptions}; throws with a one-line message on a bad
 * option. `--help` prints the usage and exits.
 */
export function parseOptions(argv: readonly string[]): BenchOptions {
  const { values, pin, json } = parseBenchArgs(argv, USAGE, {
    subscribers: '2000',
    events: '100',
    publishers: '4',
    payload: '256',
    inboxes: '1',
    servers: SERVER_NAMES.join(','),
    repeat: '1',
    idle: '0',
    warmup: '20',
    batch: '200',
    timeout: '60',
    transport: 'sse',
  });
  const transport = values.transport;
  if (transport !== 'sse' && transport !== 'ws') {
    throw new Error(`--transport=${transport} is invalid: expected sse or ws`);
  }
  const servers = values.servers
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const s of servers) {
    if (!(SERVER_NAMES as readonly string[]).includes(s)) {
      throw new Error(`--servers: unknown server ${s}; expected some of ${SERVER_NAMES.join(',')}`);
    }
  }
  // The yoga server speaks no WebSocket: over ws, Tidings is compared with the raw loop only.
  if (transport === 'ws') servers.splice(0, servers.length, ...servers.filter((s) => s !== 'yoga'));
  return {
    subscribers: intFlag('subscribers', values.subscribers, 1),
    events: intFlag('events', values.events, 1),
    publishers: intFlag('publishers', values.publishers, 1),
    payload: intFlag('payload', values.payload, 0),
    inboxes: intFlag('inboxes', values.inboxes, 1),
    servers: [...new Set(servers)] as ServerName[],
    repeat: intFlag('repeat', values.repeat, 1),
    idle: intFlag('idle', values.idle, 0),
    warmup: intFlag('warmup', values.warmup, 0),
    batch: intFlag('batch', values.batch, 1),
    timeoutMs: intFlag('timeout', values.timeout, 1) * 1000,
    pin,
    json,
    transport,
  };
}

// ---------------------------------------------------------------------------------------------
// The servers: how to start each one, subscribe to it and publish to it.

const SUBSCRIPTION =
  'subscription($inboxes: [String!]) { eventStream(inboxes: $inboxes) { cursor type inbox body timestamp } }';
const MUTATION = 'mutation($input: PublishEventInput!) { publishEvent(input: $input) { cursor } }';

interface ServerSpec {
  /** Child entry point, relative to `src/bench/servers/`. */
  entry: string;
  /** Whether the child gets a fresh temporary directory as its first argument. */
  tmpDir: boolean;
  /** Path (with query) of a GET event stream reading `inbox`. */
  streamPath(inbox: string): string;
  /** Path of its graphql-ws upgrade, and the `subscribe` message reading `inbox`. */
  wsPath: string;
  wsSubscribe(inbox: string): string;
  publishPath: string;
  publishBody(inbox: string, sentAt: number, pad: string): string;
  /** Whether a publish succeeded: `null`, or what went wrong. */
  checkPublish(status: number, body: string): string | null;
}

/** Path (with query) of a GET event stream of the benchmark subscription reading `inbox`. */
export function graphqlStreamPath(endpoint: string, inbox: string): string {
  const params = new URLSearchParams({
    query: SUBSCRIPTION,
    variables: JSON.stringify({ inboxes: [inbox] }),
  });
  return `${endpoint}?${params.toString()}`;
}

/** The graphql-ws `subscribe` message of the benchmark subscription reading `inbox`. */
function graphqlWsSubscribe(inbox: string): string {
  return JSON.stringify({
    id: '1',
    type: 'subscribe',
    payload: { query: SUBSCRIPTION, variables: { inboxes: [inbox] } },
  });
}

function graphqlPublishBody(inbox: string, sentAt: number, pad: string): string {
  return JSON.stringify({
    query: MUTATION,
    variables: { input: { type: 'bench.tick', inbox, body: { sentAt, pad } } },
  });
}

function checkGraphqlPublish(status: number, body: string): string | null {
  if (status !== 200) return `HTTP ${status}: ${body.slice(0, 200)}`;
  try {
    const result = JSON.parse(body) as { data?: { publishEvent?: unknown }; errors?: unknown[] };
    if (result.errors?.length || !result.data?.publishEvent) return body.slice(0, 200);
    return null;
  } catch {
    return `not JSON: ${body.slice(0, 200)}`;
  }
}

const SERVERS: Record<ServerName, ServerSpec> = {
  tidings: {
    entry: 'tidings.ts',
    tmpDir: true,
    streamPath: (inbox) => graphqlStreamPath('/graphql/stream', inbox),
    wsPath: '/graphql',
    wsSubscribe: graphqlWsSubscribe,
    publishPath: '/graphql',
    publishBody: graphqlPublishBody,
    checkPublish: checkGraphqlPublish,
  },
  yoga: {
    entry: 'yoga.ts',
    tmpDir: false,
    streamPath: (inbox) => graphqlStreamPath('/graphql', inbox),
    wsPath: '/graphql',
    wsSubscribe: graphqlWsSubscribe,
    publishPath: '/graphql',
    publishBody: graphqlPublishBody,
    checkPublish: checkGraphqlPublish,
  },
  raw: {
    entry: 'raw.ts',
    tmpDir: false,
    streamPath: (inbox) => `/stream?inbox=${encodeURIComponent(inbox)}`,
    wsPath: '/stream',
    wsSubscribe: (inbox) => JSON.stringify({ id: '1', type: 'subscribe', payload: { inbox } }),
    publishPath: '/publish',
    publishBody: (inbox, sentAt, pad) =>
      JSON.stringify({ type: 'bench.tick', inbox, body: { sentAt, pad } }),
    checkPublish: (status, body) => (status === 200 ? null : `HTTP ${status}: ${body}`),
  },
};

// ---------------------------------------------------------------------------------------------
// Server processes.

/** A benchmark server child process. */
export interface ServerProcess {
  name: ServerName;
  port: number;
  pid: number;
  /** Asks the child for a reading (it runs `gc()` twice first). */
  snapshot(): Promise<ChildSnapshot>;
  /** Resolves with a description when the process exits (crashed, or killed). */
  exited: Promise<string>;
  /**
   * Kills the child (SIGKILL, or a disconnect first with `gracefulExit`) and waits for it to exit;
   * removes its temporary directory.
   */
  kill(): Promise<void>;
}

const liveChildren = new Set<ChildProcess>();
const liveDirs = new Set<string>();
// Whatever way the run ends, no server process or temporary directory outlives it.
process.on('exit', () => {
  for (const child of liveChildren) child.kill('SIGKILL');
  for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => process.exit(130));
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Bounds a promise: rejects with `what` after `ms`. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Pins every thread of `pid` to `cpu`; false when it could not. */
export function pin(pid: number, cpu: number): boolean {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Options of {@link startServerProcess}. */
export interface ServerProcessOptions {
  /**
   * The checkout whose `src/bench/servers/` child runs (with that checkout's sources and
   * `node_modules`), so two builds can be measured side by side.
   * @default this checkout
   */
  root?: string;
  /** Extra Node options for the child, e.g. `--cpu-prof`. */
  execArgv?: readonly string[];
  /**
   * End the child by closing its IPC channel (it then exits normally, so `--cpu-prof` writes its
   * profile) before falling back to SIGKILL.
   */
  gracefulExit?: boolean;
}

/**
 * Forks the benchmark server `name` and resolves once it listens (pinned to CPU 0 when `pinned`).
 */
export async function startServerProcess(
  name: ServerName,
  pinned: boolean,
  options: ServerProcessOptions = {},
): Promise<ServerProcess> {
  const spec = SERVERS[name];
  const root = options.root ?? REPO_ROOT;
  const dir = spec.tmpDir ? mkdtempSync(join(os.tmpdir(), `tidings-bench-${name}-`)) : null;
  if (dir) liveDirs.add(dir);
  const entry = join(root, 'src', 'bench', 'servers', spec.entry);
  const child = fork(entry, dir ? [dir] : [], {
    cwd: root,
    // As `tidings serve` runs them (it sets production mode unless told otherwise), for every
    // server alike.
    env: { ...process.env, NODE_ENV: process.env.NODE_ENV ?? 'production' },
    execArgv: ['--expose-gc', '--import', 'tsx', ...(options.execArgv ?? [])],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  liveChildren.add(child);
  const exited = new Promise<string>((resolve) =>
    child.once('exit', (code, signal) =>
      resolve(`the ${name} server process exited (${signal ?? `code ${code ?? '?'}`})`),
    ),
  );
  const waiting: { resolve: (snapshot: ChildSnapshot) => void; reject: (err: Error) => void }[] =
    [];
  const failAll = (err: Error) => {
    for (const w of waiting.splice(0)) w.reject(err);
  };
  child.on('message', (message: ChildMessage) => {
    if (message.type === 'memory') waiting.shift()?.resolve(message);
    if (message.type === 'failed') failAll(new Error(message.message));
  });
  void exited.then((why) => failAll(new Error(why)));
  // Sending on a channel that just closed emits 'error': the pending readings fail instead.
  child.on('error', (err) => failAll(err));
  const kill = async () => {
    if (options.gracefulExit && child.connected) {
      child.disconnect();
      await within(exited, 10_000, `${name} server process to exit`).catch(() => undefined);
    }
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await within(exited, 10_000, `${name} server process to exit`).catch(() => undefined);
    liveChildren.delete(child);
    if (dir) {
      rmSync(dir, { recursive: true, force: true });
      liveDirs.delete(dir);
    }
  };
  try {
    const ready = await within(
      new Promise<{ port: number; pid: number }>((resolve, reject) => {
        child.on('message', (message: ChildMessage) => {
          if (message.type === 'ready') resolve(message);
          if (message.type === 'failed') reject(new Error(message.message));
        });
        child.once('exit', (code, signal) =>
          reject(
            new Error(`the ${name} server process exited (${signal ?? code}) before listening`),
          ),
        );
      }),
      60_000,
      `${name} server process to listen`,
    );
    if (pinned) pin(ready.pid, 0);
    return {
      name,
      port: ready.port,
      pid: ready.pid,
      snapshot() {
        if (!child.connected) {
          return Promise.reject(new Error(`the ${name} server process is gone`));
        }
        const reply = new Promise<ChildSnapshot>((resolve, reject) =>
          waiting.push({ resolve, reject }),
        );
        child.send({ type: 'memory' } satisfies ParentMessage);
        return within(reply, 60_000, `memory reading of the ${name} server`);
      },
      exited,
      kill,
    };
  } catch (err) {
    await kill();
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// The client: streams that count frames cheaply, and publishers.

const TOKEN = Buffer.from('event: next');
/** Bytes of `event: next` a stream keeps from one chunk to the next (see {@link Stream.tail}). */
export const KEEP = TOKEN.length - 1;
const SENT_AT = /"sentAt":(\d+)[,}]/g;
/** Enough characters to hold an unterminated `"sentAt":<13 digits>` at the end of a chunk. */
const SAMPLE_CARRY = 32;

/** One event stream of the client. */
export interface Stream {
  /** Its request (an SSE stream) or socket (graphql-ws), to drop it. */
  req: { destroy(): void };
  /** Frames this stream should receive. */
  expected: number;
  frames: number;
  done: boolean;
  open: boolean;
  /** The last `KEEP` bytes received, for tokens split across chunks. */
  tail: Buffer;
  tailLen: number;
  /** Undecoded end of the text of a sampled stream; `null` for streams not sampled. */
  carry: string | null;
  /** Closed by the client on purpose (to free file descriptors): not counted. */
  released?: boolean;
}

/**
 * Counts the `event: next` tokens that `chunk` completes: those inside it, and one begun in the
 * previous chunk(s), whose last bytes `stream.tail` keeps; then updates that tail.
 */
export function countFrames(stream: Stream, chunk: Buffer): number {
  let n = 0;
  const { tail, tailLen } = stream;
  const first = chunk[0];
  const last = tailLen > 0 ? tail[tailLen - 1] : undefined;
  if (first !== undefined && last !== undefined) {
    // A token whose first k bytes ended the previous chunk(s) and whose rest starts this one:
    // the two bytes at the seam are checked first, the whole token only when they fit.
    for (let k = Math.min(tailLen, KEEP); k >= 1; k--) {
      if (TOKEN[k - 1] !== last || TOKEN[k] !== first) continue;
      const rest = TOKEN.length - k;
      if (
        chunk.length >= rest &&
        tail.compare(TOKEN, 0, k, tailLen - k, tailLen) === 0 &&
        chunk.compare(TOKEN, k, TOKEN.length, 0, rest) === 0
      ) {
        n++;
      }
    }
  }
  for (let i = chunk.indexOf(TOKEN); i !== -1; i = chunk.indexOf(TOKEN, i + TOKEN.length)) n++;
  if (chunk.length >= KEEP) {
    const from = chunk.length - KEEP;
    for (let i = 0; i < KEEP; i++) tail[i] = chunk[from + i] as number;
    stream.tailLen = KEEP;
  } else {
    const joined = Buffer.concat([tail.subarray(0, tailLen), chunk]);
    const start = Math.max(0, joined.length - KEEP);
    joined.copy(tail, 0, start);
    stream.tailLen = joined.length - start;
  }
  return n;
}

/** What the client measures of one server run. */
export interface Tally {
  /** Frames received by every stream. */
  frames: number;
  /** `data` events (socket reads, roughly) that carried them. */
  chunks: number;
  /** Streams that got all their expected frames. */
  complete: number;
  /** Streams that must complete. */
  target: number;
  /** When the last stream completed (or the last frame arrived). */
  lastFrameAt: number;
  completedAt: number | null;
  onComplete: (() => void) | null;
  latencies: number[];
  /** Streams that ended before receiving everything. */
  endedEarly: number;
  /** Sampled streams that carried an `"errors"` member. */
  errorFrames: number;
  /** Set while tearing down, so the closes we cause are not counted. */
  closing: boolean;
}

/** An empty {@link Tally}. */
export function newTally(): Tally {
  return {
    frames: 0,
    chunks: 0,
    complete: 0,
    target: 0,
    lastFrameAt: 0,
    completedAt: null,
    onComplete: null,
    latencies: [],
    endedEarly: 0,
    errorFrames: 0,
    closing: false,
  };
}

function onChunk(stream: Stream, tally: Tally, chunk: Buffer, frames?: number): void {
  const n = frames ?? countFrames(stream, chunk);
  tally.chunks++;
  if (stream.carry !== null) {
    const now = Date.now();
    const text = stream.carry + chunk.toString('latin1');
    let end = 0;
    SENT_AT.lastIndex = 0;
    for (let m = SENT_AT.exec(text); m !== null; m = SENT_AT.exec(text)) {
      tally.latencies.push(now - Number(m[1]));
      end = SENT_AT.lastIndex;
    }
    if (text.includes('"errors"')) tally.errorFrames++;
    stream.carry = text.slice(Math.max(end, text.length - SAMPLE_CARRY));
  }
  if (n === 0) return;
  stream.frames += n;
  tally.frames += n;
  tally.lastFrameAt = Date.now();
  if (!stream.done && stream.frames >= stream.expected) {
    stream.done = true;
    tally.complete++;
    if (tally.complete === tally.target) {
      tally.completedAt = tally.lastFrameAt;
      tally.onComplete?.();
    }
  }
}

/** Opens one event stream; resolves once its response headers arrived with status 200. */
export function openStream(
  agent: http.Agent,
  port: number,
  path: string,
  stream: Omit<Stream, 'req'>,
  tally: Tally,
): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const req = http.get({
      host: HOST,
      port,
      path,
      agent,
      headers: { accept: 'text/event-stream' },
    });
    const full = Object.assign(stream, { req }) as Stream;
    const timer = setTimeout(
      () => req.destroy(new Error('no response headers within 30 s (ETIMEDOUT)')),
      30_000,
    );
    req.on('error', (err) => {
      clearTimeout(timer);
      if (full.open && !full.done && !full.released && !tally.closing) tally.endedEarly++;
      full.open = false;
      reject(err);
    });
    req.on('response', (res) => {
      clearTimeout(timer);
      if (res.statusCode !== 200) {
        res.resume();
        req.destroy();
        reject(new Error(`HTTP ${res.statusCode ?? '?'}`));
        return;
      }
      full.open = true;
      res.on('data', (chunk: Buffer) => onChunk(full, tally, chunk));
      res.on('close', () => {
        if (full.open && !full.done && !full.released && !tally.closing) tally.endedEarly++;
        full.open = false;
      });
      resolve(full);
    });
  });
}

/** Whether a graphql-ws message is a `next` (the server writes `"type"` right after `"id"`). */
const WS_NEXT = Buffer.from('"type":"next"');

/**
 * Opens one graphql-ws socket at `path`, sends `connection_init`, then `subscribe` once
 * acknowledged; resolves once it is sent. Each `next` message counts as one frame.
 */
export function openWsStream(
  port: number,
  path: string,
  subscribe: string,
  stream: Omit<Stream, 'req'>,
  tally: Tally,
): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://${HOST}:${port}${path}`, 'graphql-transport-ws', {
      perMessageDeflate: false,
    });
    const full = Object.assign(stream, { req: { destroy: () => ws.terminate() } }) as Stream;
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error('no connection_ack within 30 s (ETIMEDOUT)'));
    }, 30_000);
    ws.on('open', () => ws.send('{"type":"connection_init"}'));
    ws.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    ws.on('message', (data: Buffer) => {
      const at = data.indexOf(WS_NEXT);
      if (full.open && at !== -1 && at < 48) return onChunk(full, tally, data, 1);
      // The server's keepalive drops a socket that stays silent.
      if (data.includes('"type":"ping"')) return void ws.send('{"type":"pong"}');
      if (full.open) return onChunk(full, tally, data, 0);
      clearTimeout(timer);
      full.open = true;
      ws.send(subscribe);
      resolve(full);
    });
    ws.on('close', () => {
      if (full.open && !full.done && !full.released && !tally.closing) tally.endedEarly++;
      full.open = false;
    });
  });
}

/** A POST to the server; resolves with its status and body. */
export function post(
  agent: http.Agent,
  port: number,
  path: string,
  body: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: HOST,
        port,
        path,
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error('no answer within 30 s (ETIMEDOUT)')));
    req.on('error', reject);
    req.end(body);
  });
}

interface PublishOutcome {
  /** When the first publish was sent. */
  startedAt: number;
  endedAt: number;
  sent: number;
  failed: number;
  firstError: string | null;
}

/**
 * Publishes `count` events from `loops` concurrent loops sharing one counter. Publishing stops
 * after `budgetMs`; events not sent by then count as failed.
 */
async function publishAll(
  agent: http.Agent,
  port: number,
  spec: ServerSpec,
  count: number,
  loops: number,
  inboxOf: (i: number) => string,
  pad: string,
  budgetMs: number,
): Promise<PublishOutcome> {
  const outcome: PublishOutcome = {
    startedAt: Date.now(),
    endedAt: 0,
    sent: 0,
    failed: 0,
    firstError: null,
  };
  let next = 0;
  const deadline = outcome.startedAt + budgetMs;
  const loop = async () => {
    for (let i = next++; i < count && Date.now() < deadline; i = next++) {
      let error: string | null;
      try {
        const res = await post(
          agent,
          port,
          spec.publishPath,
          spec.publishBody(inboxOf(i), Date.now(), pad),
        );
        error = spec.checkPublish(res.status, res.body);
      } catch (err) {
        error = err instanceof Error ? err.message : String(err);
      }
      if (error === null) outcome.sent++;
      else {
        outcome.failed++;
        outcome.firstError ??= error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(loops, count) }, loop));
  outcome.endedAt = Date.now();
  const unsent = count - outcome.sent - outcome.failed;
  if (unsent > 0) {
    outcome.failed += unsent;
    outcome.firstError ??= `publishing took longer than ${budgetMs} ms: ${unsent} events not sent`;
  }
  return outcome;
}

// ---------------------------------------------------------------------------------------------
// One run of one server.

/** The figures of one run of one server. */
export interface RunResult {
  server: ServerName;
  /** Streams asked for, and streams that connected. */
  requested: number;
  subscribers: number;
  /** Streams open after connecting (before any were released to free descriptors). */
  held: number;
  /** Streams that could not connect, by error. */
  connectErrors: Record<string, number>;
  connectMs: number;
  events: number;
  publishFailures: number;
  publishError: string | null;
  /** Publishes per second (acknowledged). */
  publishesPerSec: number;
  expected: number;
  deliveries: number;
  /** Frames per `data` event: above 1 when the server coalesces frames into fewer writes. */
  framesPerChunk: number;
  deliveriesPerSec: number;
  /** Expected deliveries that never arrived (0 unless something is wrong). */
  missing: number;
  /** Deliveries beyond the expected ones (duplicates). */
  extra: number;
  endedEarly: number;
  errorFrames: number;
  latencySamples: number;
  p50Ms: number | null;
  p99Ms: number | null;
  /** RSS and heap growth per idle stream, KB. */
  rssKBPerSub: number;
  heapKBPerSub: number;
  /** Where the idle reading came from (see `ChildSnapshot.source`). */
  memorySource: ChildSnapshot['source'];
  rssBeforeMB: number;
  rssIdleMB: number;
  rssAfterMB: number;
  /** CPU use of the server and of the client over the publishing window, % of one core. */
  serverCpuPct: number;
  clientCpuPct: number;
  /**
   * CPU used by every other process of the machine over the same window, % of one core: other
   * work competing for the cores makes the figures unreliable.
   */
  otherCpuPct: number | null;
  gc: boolean;
}

/** The `p`th percentile (nearest rank) of ascending `sorted`; null when empty. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? null;
}

/** CPU time spent between two `process.cpuUsage()` readings, ms. */
export const cpuMs = (a: NodeJS.CpuUsage, b: NodeJS.CpuUsage) =>
  (b.user - a.user + (b.system - a.system)) / 1000;

/**
 * CPU use over a window of `windowMs`, % of one core: of the server and of the client (ms each),
 * and of everything else the machine ran (`machineMs` in all, null when unknown).
 */
export function cpuPercents(
  serverMs: number,
  clientMs: number,
  machineMs: number | null,
  windowMs: number,
): { serverCpuPct: number; clientCpuPct: number; otherCpuPct: number | null } {
  return {
    serverCpuPct: (serverMs / windowMs) * 100,
    clientCpuPct: (clientMs / windowMs) * 100,
    otherCpuPct:
      machineMs === null ? null : (Math.max(0, machineMs - serverMs - clientMs) / windowMs) * 100,
  };
}

/** Bytes in a MiB. */
export const MB = 1024 * 1024;
/** Longest the publishing phase may take, ms. */
const PUBLISH_BUDGET_MS = 300_000;
/** Longest the connecting phase may take, ms; streams not attempted by then count as failed. */
const CONNECT_BUDGET_MS = 300_000;
/** Streams given back when some could not connect (likely out of file descriptors). */
const RELEASE_ON_FAILURE = 32;

interface RunShape {
  subscribers: number;
  events: number;
  publishers: number;
  settleMs: number;
}

/** Runs one server once: start it, connect, measure idle memory, publish, count, tear down. */
async function runServer(
  name: ServerName,
  options: BenchOptions,
  shape: RunShape,
  log: (line: string) => void,
): Promise<RunResult> {
  const spec = SERVERS[name];
  const server = await startServerProcess(name, options.pin);
  const subAgent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  const pubAgent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  const tally = newTally();
  const streams: Stream[] = [];
  const pad = 'x'.repeat(options.payload);
  const inboxOf = (i: number) => `bench-${i % options.inboxes}`;
  try {
    if (options.warmup > 0) {
      const warm = await publishAll(
        pubAgent,
        server.port,
        spec,
        options.warmup,
        shape.publishers,
        () => 'bench-warmup',
        pad,
        options.timeoutMs,
      );
      if (warm.failed > 0) throw new Error(`[${name}] warm-up publish failed: ${warm.firstError}`);
    }
    const before = await server.snapshot();

    // Connect, in parallel batches.
    const sampleEvery = Math.max(1, Math.floor(shape.subscribers / 50));
    const connectErrors: Record<string, number> = {};
    const connectStart = Date.now();
    for (let from = 0; from < shape.subscribers; from += options.batch) {
      if (Date.now() - connectStart > CONNECT_BUDGET_MS) {
        connectErrors['not attempted (connect budget spent)'] = shape.subscribers - from;
        break;
      }
      const to = Math.min(shape.subscribers, from + options.batch);
      const batch: Promise<Stream>[] = [];
      for (let j = from; j < to; j++) {
        const r = j % options.inboxes;
        const expected = r < shape.events ? Math.ceil((shape.events - r) / options.inboxes) : 0;
        const stream = {
          expected,
          frames: 0,
          done: expected === 0,
          open: false,
          tail: Buffer.alloc(KEEP),
          tailLen: 0,
          carry: j % sampleEvery === 0 ? '' : null,
        };
        batch.push(
          options.transport === 'ws'
            ? openWsStream(server.port, spec.wsPath, spec.wsSubscribe(inboxOf(j)), stream, tally)
            : openStream(subAgent, server.port, spec.streamPath(inboxOf(j)), stream, tally),
        );
      }
      for (const settled of await Promise.allSettled(batch)) {
        if (settled.status === 'fulfilled') streams.push(settled.value);
        else {
          const err = settled.reason as NodeJS.ErrnoException;
          const key = err.code ?? err.message;
          connectErrors[key] = (connectErrors[key] ?? 0) + 1;
        }
      }
    }
    const connectMs = Date.now() - connectStart;
    // Let the server finish registering the streams (no readiness probe: deliveries verify it).
    await sleep(shape.settleMs);
    const idle = await server.snapshot();
    const held = streams.filter((s) => s.open).length;
    const failedConnects = Object.values(connectErrors).reduce((a, b) => a + b, 0);
    if (failedConnects > 0) {
      // Most likely out of file descriptors (on either side): give a few back so that the
      // publisher can connect, and count only the streams kept.
      const release = streams.filter((s) => s.open).slice(-RELEASE_ON_FAILURE);
      for (const s of release) {
        s.released = true;
        s.req.destroy();
      }
      log(
        `  [${name}] ${fmt(failedConnects)} of ${fmt(shape.subscribers)} streams did not connect ` +
          `${JSON.stringify(connectErrors)}; ${fmt(held)} held; closed ${release.length} of them ` +
          'to leave file descriptors for the publisher',
      );
      await sleep(500);
    }
    const connected = streams.filter((s) => s.open && !s.released);

    // Publish and wait for every expected frame.
    const expected = connected.reduce((sum, s) => sum + s.expected, 0);
    tally.target = connected.length;
    tally.complete = connected.filter((s) => s.done).length;
    const allDelivered = new Promise<void>((resolve) => {
      tally.onComplete = resolve;
      if (tally.complete >= tally.target) resolve();
    });
    const clientCpu0 = process.cpuUsage();
    const machine0 = machineBusyMs();
    const published = await publishAll(
      pubAgent,
      server.port,
      spec,
      shape.events,
      shape.publishers,
      inboxOf,
      pad,
      PUBLISH_BUDGET_MS,
    );
    const crashed = await within(
      Promise.race([allDelivered.then(() => null), server.exited]),
      options.timeoutMs,
      'deliveries',
    ).catch(() => null);
    if (crashed !== null) throw new Error(crashed);
    const end = tally.completedAt ?? tally.lastFrameAt;
    const clientCpu1 = process.cpuUsage();
    const machine1 = machineBusyMs();
    const after = await server.snapshot();
    const windowMs = Math.max(1, end - published.startedAt);

    const serverCpu = cpuMs(idle.cpuAfterGc, after.cpuBeforeGc);
    const clientCpu = cpuMs(clientCpu0, clientCpu1);
    const latencies = tally.latencies.sort((a, b) => a - b);
    const received = connected.reduce((sum, s) => sum + Math.min(s.frames, s.expected), 0);
    return {
      server: name,
      requested: shape.subscribers,
      subscribers: connected.length,
      held,
      connectErrors,
      connectMs,
      events: shape.events,
      publishFailures: published.failed,
      publishError: published.firstError,
      publishesPerSec:
        published.sent / (Math.max(1, published.endedAt - published.startedAt) / 1000),
      expected,
      deliveries: tally.frames,
      framesPerChunk: tally.frames / Math.max(1, tally.chunks),
      deliveriesPerSec: tally.frames / (windowMs / 1000),
      missing: expected - received,
      extra: tally.frames - received,
      endedEarly: tally.endedEarly,
      errorFrames: tally.errorFrames,
      latencySamples: latencies.length,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      rssKBPerSub: (idle.memory.rss - before.memory.rss) / 1024 / Math.max(1, held),
      heapKBPerSub: (idle.memory.heapUsed - before.memory.heapUsed) / 1024 / Math.max(1, held),
      memorySource: idle.source,
      rssBeforeMB: before.memory.rss / MB,
      rssIdleMB: idle.memory.rss / MB,
      rssAfterMB: after.memory.rss / MB,
      ...cpuPercents(
        serverCpu,
        clientCpu,
        machine0 === null || machine1 === null ? null : machine1 - machine0,
        windowMs,
      ),
      gc: before.gc,
    };
  } finally {
    tally.closing = true;
    // The server goes first, so the closing handshakes leave no TIME_WAIT on client ports.
    await server.kill();
    for (const s of streams) s.req.destroy();
    subAgent.destroy();
    pubAgent.destroy();
    await sleep(500);
  }
}

// ---------------------------------------------------------------------------------------------
// Reporting.

/** The median of `values` (NaN when empty). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] ?? NaN)
    : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
}

/** Median of each numeric figure over several runs; other fields come from the first run. */
export function medianResult<T extends object>(runs: readonly T[]): T {
  const first = runs[0] as T;
  const out: Record<string, unknown> = { ...first };
  for (const [key, value] of Object.entries(first)) {
    if (typeof value === 'number' || value === null) {
      const values = runs
        .map((r) => (r as Record<string, unknown>)[key])
        .filter((v): v is number => typeof v === 'number');
      out[key] = values.length > 0 ? median(values) : null;
    }
  }
  return out as T;
}

/** A number with thousands separators and `digits` decimals; `-` for null or not finite. */
export const fmt = (value: number | null, digits = 0) =>
  value === null || !Number.isFinite(value)
    ? '-'
    : value.toLocaleString('en-US', {
        minimumFractionDigits: digits,
        maximumFractionDigits: digits,
      });

/** A text table: one row per result, the first column left-aligned, the others right-aligned. */
export function renderTable<T>(
  columns: readonly (readonly [string, (r: T) => string])[],
  results: readonly T[],
): string {
  const rows = [columns.map(([h]) => h), ...results.map((r) => columns.map(([, f]) => f(r)))];
  const widths = columns.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length)));
  return rows
    .map((row) =>
      row
        .map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
        .join('  '),
    )
    .join('\n');
}

function table(results: readonly RunResult[]): string {
  const columns: [string, (r: RunResult) => string][] = [
    ['server', (r) => r.server],
    ['subscribers', (r) => fmt(r.subscribers)],
    ['events', (r) => fmt(r.events)],
    ['deliveries', (r) => fmt(r.deliveries)],
    ['deliveries/s', (r) => fmt(r.deliveriesPerSec)],
    ['p50 ms', (r) => fmt(r.p50Ms, 1)],
    ['p99 ms', (r) => fmt(r.p99Ms, 1)],
    ['KB/sub RSS', (r) => fmt(r.rssKBPerSub, 1)],
    ['KB/sub heap', (r) => fmt(r.heapKBPerSub, 1)],
    ['missing', (r) => fmt(r.missing)],
    ['publish/s', (r) => fmt(r.publishesPerSec)],
    ['srv CPU%', (r) => fmt(r.serverCpuPct)],
    ['cli CPU%', (r) => fmt(r.clientCpuPct)],
    ['other CPU%', (r) => fmt(r.otherCpuPct)],
  ];
  return renderTable(columns, results);
}

/** Loud lines for anything that makes a run's figures suspect. */
function problems(r: RunResult): string[] {
  const out: string[] = [];
  if (r.missing > 0) {
    out.push(
      `!!! ${r.server}: ${fmt(r.missing)} of ${fmt(r.expected)} expected deliveries MISSING`,
    );
  }
  if (r.extra > 0) out.push(`!!! ${r.server}: ${fmt(r.extra)} deliveries beyond the expected`);
  if (r.subscribers < r.requested) {
    out.push(
      `!!! ${r.server}: only ${fmt(r.subscribers)} of ${fmt(r.requested)} streams connected ${JSON.stringify(r.connectErrors)}`,
    );
  }
  if (r.publishFailures > 0) {
    out.push(`!!! ${r.server}: ${r.publishFailures} publishes failed: ${r.publishError ?? ''}`);
  }
  if (r.endedEarly > 0) out.push(`!!! ${r.server}: ${r.endedEarly} streams ended early`);
  if (r.errorFrames > 0) {
    out.push(`!!! ${r.server}: ${r.errorFrames} sampled chunks carried GraphQL errors`);
  }
  if (r.clientCpuPct > 90) {
    out.push(
      `(note) ${r.server}: the client used ${fmt(r.clientCpuPct)}% of a core: it may be the limit of this figure`,
    );
  }
  if (r.otherCpuPct !== null && r.otherCpuPct > 20) {
    out.push(
      `(note) ${r.server}: other processes used ${fmt(r.otherCpuPct)}% of a core during the run: the machine was not quiet`,
    );
  }
  if (!r.gc) out.push(`(note) ${r.server}: gc() was not exposed; memory figures are noisy`);
  return out;
}

/**
 * CPU time all processes of the machine spent so far in user and system mode, ms; null off
 * Linux. Interrupt time is left out, as it may or may not be charged to the process it interrupts.
 */
export function machineBusyMs(): number | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    // cpu user nice system idle iowait irq softirq steal …, in USER_HZ (100 on Linux) ticks
    const [user = 0, nice = 0, system = 0] = line.trim().split(/\s+/).slice(1, 4).map(Number);
    return (user + nice + system) * 10;
  } catch {
    return null;
  }
}

/** The commit the Tidings sources in `root` are at, and whether they have uncommitted changes. */
export function sourceState(root: string = REPO_ROOT): string {
  try {
    const git = (...args: string[]) =>
      execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: 'pipe' });
    // Lines are `XY path`: a leading space is part of the status, so no trimming.
    const changed = git('status', '--porcelain', '--', 'src', ':!src/bench')
      .split('\n')
      .filter((l) => l.length > 3)
      .map((l) => l.slice(3));
    const dirs = [...new Set(changed.map((f) => f.split('/').slice(0, 2).join('/')))];
    return `${git('rev-parse', '--short', 'HEAD').trim()}${dirs.length ? ` + uncommitted changes in ${dirs.join(', ')}` : ''}`;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

function fileLimit(): string {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const [soft, hard] = line?.split(/\s{2,}/).slice(1, 3) ?? [];
    return `${soft ?? '?'} (hard ${hard ?? '?'})`;
  } catch {
    return 'unknown';
  }
}

function portRange(): string {
  try {
    return readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .replace(/\s+/, '-');
  } catch {
    return 'unknown';
  }
}

// ---------------------------------------------------------------------------------------------
// Main.

/**
 * Runs `parse`; when it throws, prints the message and `usage` to stderr, sets exit code 2 and
 * returns null.
 */
export function parseOrUsage<T>(parse: () => T, usage: string): T | null {
  try {
    return parse();
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : String(err)}\n\n${usage}`);
    process.exitCode = 2;
    return null;
  }
}

/** `value` as indented JSON, with fractional numbers rounded to three decimals. */
export function toJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_key, v: unknown) =>
      typeof v === 'number' && !Number.isInteger(v) ? Math.round(v * 1000) / 1000 : v,
    2,
  );
}

/** Runs the benchmark described by `argv` (the arguments after the script) and prints it. */
export async function main(argv: readonly string[]): Promise<void> {
  const options = parseOrUsage(() => parseOptions(argv), USAGE);
  if (!options) return;
  const log = (line: string) => console.log(line);
  const cpus = os.cpus();
  const canPin = options.pin && cpus.length >= 2 && pin(process.pid, 1);
  options.pin = canPin;
  const machine = {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    openFiles: fileLimit(),
    ephemeralPorts: portRange(),
    pinned: canPin ? 'server on CPU 0, client on CPU 1' : 'no',
    source: sourceState(),
  };
  const command = `npm run bench -- ${argv.join(' ')}`.trim();
  log(`Tidings fan-out benchmark`);
  log(
    `machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}, ${machine.platform}`,
  );
  log(
    `limits: open files ${machine.openFiles}, ephemeral ports ${machine.ephemeralPorts}; pinning: ${machine.pinned}`,
  );
  log(`tidings source: ${machine.source}`);
  log(`command: ${command}`);
  log(
    `load average at start: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  log(`  (argv: ${process.argv.join(' ')})`);
  log(
    `shape: ${options.subscribers} subscribers, ${options.events} events, ${options.publishers} publishers, ` +
      `${options.payload} B padding, ${options.inboxes} inbox(es), repeat ${options.repeat}, servers ${options.servers.join(',')}`,
  );
  log('');

  const runs: RunResult[] = [];
  const shape: RunShape = {
    subscribers: options.subscribers,
    events: options.events,
    publishers: options.publishers,
    settleMs: 500,
  };
  for (let round = 1; round <= options.repeat; round++) {
    for (const name of options.servers) {
      log(`run ${round}/${options.repeat}: ${name} …`);
      try {
        const result = await runServer(name, options, shape, log);
        runs.push(result);
        log(
          `  ${fmt(result.subscribers)} streams in ${fmt(result.connectMs)} ms; ` +
            `${fmt(result.deliveries)} deliveries (${fmt(result.framesPerChunk, 2)} per read), ` +
            `${fmt(result.deliveriesPerSec)}/s, ` +
            `p50 ${fmt(result.p50Ms, 1)} ms, p99 ${fmt(result.p99Ms, 1)} ms, ` +
            `${fmt(result.rssKBPerSub, 1)} KB RSS/stream, missing ${fmt(result.missing)}`,
        );
        for (const line of problems(result)) log(`  ${line}`);
      } catch (err) {
        log(`!!! ${name} run failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }

  const summary = options.servers
    .map((name) => runs.filter((r) => r.server === name))
    .filter((rs) => rs.length > 0)
    .map(medianResult);
  if (summary.length > 0) {
    log('');
    log(options.repeat > 1 ? `Medians of ${options.repeat} runs:` : 'Results:');
    log(table(summary));
  }
  const by = (name: ServerName) => summary.find((r) => r.server === name);
  const tidings = by('tidings');
  const ratios: Record<string, number | null> = {};
  if (tidings) {
    const raw = by('raw');
    const yoga = by('yoga');
    if (raw) ratios['tidings/raw deliveries/s'] = tidings.deliveriesPerSec / raw.deliveriesPerSec;
    if (yoga)
      ratios['tidings/yoga deliveries/s'] = tidings.deliveriesPerSec / yoga.deliveriesPerSec;
    if (raw && tidings.p99Ms !== null && raw.p99Ms !== null) {
      ratios['tidings p99 / raw p99'] = raw.p99Ms > 0 ? tidings.p99Ms / raw.p99Ms : null;
    }
  }
  if (Object.keys(ratios).length > 0) {
    log('');
    for (const [key, value] of Object.entries(ratios)) log(`${key}: ${fmt(value, 2)}`);
  }
  const loud = summary.flatMap(problems).filter((l) => l.startsWith('!!!'));
  if (loud.length > 0) {
    log('');
    for (const line of loud) log(line);
  }

  let idle: RunResult | null = null;
  if (options.idle > 0) {
    log('');
    log(`Idle phase: ${fmt(options.idle)} idle Tidings streams on a fresh server …`);
    try {
      idle = await runServer(
        'tidings',
        options,
        {
          subscribers: options.idle,
          events: Math.min(options.inboxes, options.idle),
          publishers: 1,
          settleMs: 2_000,
        },
        log,
      );
      log(
        `idle streams: ${fmt(idle.held)} of ${fmt(idle.requested)} held ` +
          `(connected in ${fmt(idle.connectMs)} ms); ` +
          `RSS ${fmt(idle.rssBeforeMB, 1)} MB -> ${fmt(idle.rssIdleMB, 1)} MB = ` +
          `${fmt(idle.rssKBPerSub, 2)} KB RSS and ${fmt(idle.heapKBPerSub, 2)} KB heap per stream; ` +
          `then one event per inbox to the ${fmt(idle.subscribers)} streams kept: ` +
          `${fmt(idle.deliveries)} delivered, missing ${fmt(idle.missing)}` +
          (idle.memorySource === 'statm' ? ' (memory read from /proc/self/statm)' : ''),
      );
      for (const line of problems(idle)) log(line);
      if (idle.subscribers < idle.requested) {
        log(
          `(note) each process may hold at most ${machine.openFiles} open files, sockets included; ` +
            'the server and the client each need one per stream plus their own ' +
            '(EMFILE: the client ran out; ECONNRESET: the server could not accept)',
        );
      }
    } catch (err) {
      log(`!!! idle phase failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  if (options.json) {
    log('');
    log(toJson({ machine, command, options, runs, medians: summary, ratios, idle }));
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main(process.argv.slice(2));
}
