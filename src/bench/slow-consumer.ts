/**
 * `npm run bench:slow`: what a client that stops reading costs the server and the other clients.
 * Two scenarios, each on a fresh Tidings server process (`servers/tidings.ts`), alternated and
 * repeated in one run so that a noisy machine affects both alike:
 *
 * - A: `--readers` normal event streams on one inbox;
 * - B: the same, plus `--stalled` clients on bare TCP sockets that send the GET of the same
 *   stream, read until their first event, and then never read again.
 *
 * Each publishes `--events` events with `--payload` bytes of padding through `publishEvents`, one
 * batch at a time and at most {@link WINDOW} batches ahead of the slowest normal reader, so that
 * the readers are never the ones left behind. Reported per scenario (medians over `--repeat`):
 * the normal readers' publish→receive latency (from the `sentAt` in each event body, on a sample
 * of the streams), deliveries/s, the server's RSS before publishing, at its peak (sampled every
 * 100 ms from `/proc/<pid>/status`) and after; for B, whether each stalled client found its stream
 * ended with `SLOW_CONSUMER` after a gapless prefix once it read again, and after how many events.
 * Then B/A for latency and throughput.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { connect, type Socket } from 'node:net';
import os from 'node:os';
import { pathToFileURL } from 'node:url';
import {
  cpuMs,
  cpuPercents,
  fmt,
  graphqlStreamPath,
  HOST,
  intFlag,
  KEEP,
  machineBusyMs,
  MB,
  medianResult,
  newTally,
  openStream,
  parseBenchArgs,
  parseOrUsage,
  percentile,
  pin,
  post,
  renderTable,
  sourceState,
  startServerProcess,
  within,
  toJson,
  type ServerProcess,
  type Stream,
  type Tally,
} from './run.js';

/** The benchmark's parameters (from the command line). */
export interface SlowBenchOptions {
  /** Normal streams, in both scenarios. */
  readers: number;
  /** Clients that stop reading, in scenario B. */
  stalled: number;
  events: number;
  /** Bytes of padding in each event body. */
  payload: number;
  /** Runs of each scenario, alternated; figures are medians. */
  repeat: number;
  /** Pin the server process to CPU 0 and the client to CPU 1 (needs `taskset`, 2+ CPUs). */
  pin: boolean;
  json: boolean;
}

const USAGE = `Usage: npm run bench:slow -- [options]

Scenario A: N normal readers. Scenario B: the same readers plus S clients that stop reading.
Both publish the same events in batches; they run alternately, --repeat times each.

  --readers N   normal event streams (default 50)
  --stalled N   clients that stop reading, in scenario B (default 1)
  --events N    events published per run (default 20000)
  --payload N   bytes of padding in each event body (default 4096, at most 250000)
  --repeat N    runs of each scenario, alternated; medians are reported (default 3)
  --no-pin      do not pin the server to CPU 0 and the client to CPU 1
  --json        also print a JSON summary
  --help        this text
`;

/**
 * Parses the command line into {@link SlowBenchOptions}; throws with a one-line message on a bad
 * option. `--help` prints the usage and exits.
 */
export function parseSlowOptions(argv: readonly string[]): SlowBenchOptions {
  const { values, pin, json } = parseBenchArgs(argv, USAGE, {
    readers: '50',
    stalled: '1',
    events: '20000',
    payload: '4096',
    repeat: '3',
  });
  return {
    readers: intFlag('readers', values.readers, 1),
    stalled: intFlag('stalled', values.stalled, 0),
    events: intFlag('events', values.events, 1),
    payload: intFlag('payload', values.payload, 0, 250_000),
    repeat: intFlag('repeat', values.repeat, 1),
    pin,
    json,
  };
}

// ---------------------------------------------------------------------------------------------
// Publishing.

const INBOX = 'bench-slow';
const STREAM_PATH = graphqlStreamPath('/graphql/stream', INBOX);
const PUBLISH_MANY =
  'mutation($inputs: [PublishEventInput!]!) { publishEvents(inputs: $inputs) { cursor } }';
/** Most events per `publishEvents`, and most bytes of padding per request (under the 1 MiB cap). */
const MAX_BATCH = 100;
const BATCH_PAD_BYTES = 512 * 1024;
/** Batches published but not yet received by every normal reader, at most. */
const WINDOW = 2;
/** Longest wait for the readers to catch up with one batch, or for the last deliveries, ms. */
const READ_TIMEOUT_MS = 120_000;

/** Events per batch for a payload: the largest that keeps a request well under 1 MiB. */
export function batchSize(payload: number): number {
  return Math.max(1, Math.min(MAX_BATCH, Math.floor(BATCH_PAD_BYTES / (payload + 200))));
}

/** Publishes one batch of events whose body carries `sentAt`; resolves with their cursors. */
async function publishBatch(
  agent: http.Agent,
  port: number,
  inbox: string,
  count: number,
  pad: string,
): Promise<string[]> {
  const sentAt = Date.now();
  const inputs = Array.from({ length: count }, () => ({
    type: 'bench.tick',
    inbox,
    body: { sentAt, pad },
  }));
  const res = await post(
    agent,
    port,
    '/graphql',
    JSON.stringify({ query: PUBLISH_MANY, variables: { inputs } }),
  );
  const result = (res.status === 200 ? JSON.parse(res.body) : {}) as {
    data?: { publishEvents?: { cursor: string }[] };
  };
  const cursors = result.data?.publishEvents?.map((e) => e.cursor);
  if (!cursors || cursors.length !== count) {
    throw new Error(`publishEvents failed: HTTP ${res.status}: ${res.body.slice(0, 300)}`);
  }
  return cursors;
}

/** Polls `condition` every millisecond until it holds; rejects after `ms` naming `what`. */
async function until(condition: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

// ---------------------------------------------------------------------------------------------
// Clients that stop reading.

/** A client on a bare TCP socket that reads its stream only when told to. */
interface StalledReader {
  socket: Socket;
  chunks: Buffer[];
  /** The last bytes received, to spot the end of the chunked response. */
  tail: string;
  ended: boolean;
}

/** What a stalled client found once it read again. */
export interface StalledOutcome {
  /** Event frames it received before the stream ended. */
  events: number;
  /** The `extensions.code` of the error that ended the stream, if one did. */
  code: string | null;
  /** Whether a `complete` frame followed the error. */
  completed: boolean;
  /** Whether its events were exactly the first ones published after it connected, in order. */
  gapless: boolean;
}

/** Connects a client that reads until the stream opened, i.e. is registered with the hub. */
async function openStalled(port: number): Promise<StalledReader> {
  const socket = connect(port, HOST);
  const reader: StalledReader = { socket, chunks: [], tail: '', ended: false };
  socket.on('data', (chunk: Buffer) => {
    reader.chunks.push(chunk);
    reader.tail = (reader.tail + chunk.toString('latin1')).slice(-16);
  });
  socket.on('close', () => (reader.ended = true));
  socket.on('error', () => (reader.ended = true));
  socket.write(
    `GET ${STREAM_PATH} HTTP/1.1\r\nHost: ${HOST}:${port}\r\nAccept: text/event-stream\r\n\r\n`,
  );
  await until(() => textOf(reader).includes('retry:') || reader.ended, 30_000, 'a stalled stream');
  if (reader.ended) throw new Error(`a stalled stream closed at once: ${textOf(reader)}`);
  return reader;
}

const textOf = (reader: StalledReader) => Buffer.concat(reader.chunks).toString('latin1');

/**
 * Reads what waited for the stalled client until the response ends (the last chunk of a chunked
 * body, or the socket closing) and checks it against `published`, the cursors published since it
 * connected. Frames are whole HTTP chunks, so the chunk-size lines never split a line of a frame.
 */
async function drainStalled(reader: StalledReader, published: string[]): Promise<StalledOutcome> {
  reader.socket.resume();
  await until(
    () => reader.ended || reader.tail.endsWith('\r\n0\r\n\r\n'),
    30_000,
    'a stalled stream to end',
  ).catch(() => undefined);
  const text = textOf(reader);
  const ids = [...text.matchAll(/^id: (\S+)$/gm)].map((m) => m[1] as string);
  // The error frame, if any, follows the last event frame.
  const from = Math.max(0, text.lastIndexOf('\nid: '));
  const error = /"code":"([A-Z_]+)"/.exec(text.slice(from));
  const errorAt = error ? text.indexOf(error[0], from) : -1;
  return {
    events: ids.length,
    code: error?.[1] ?? null,
    completed: errorAt !== -1 && text.indexOf('event: complete', errorAt) !== -1,
    gapless: ids.every((id, i) => id === published[i]),
  };
}

// ---------------------------------------------------------------------------------------------
// One run of one scenario.

/** The figures of one run of one scenario. */
export interface ScenarioResult {
  scenario: 'A' | 'B';
  readers: number;
  stalled: number;
  events: number;
  /** Frames the normal readers received, and those expected that never arrived. */
  deliveries: number;
  missing: number;
  /** Normal readers whose stream ended before it got every event. */
  endedEarly: number;
  /** Sampled reads that carried GraphQL errors. */
  errorFrames: number;
  deliveriesPerSec: number;
  latencySamples: number;
  p50Ms: number | null;
  p99Ms: number | null;
  /** Server RSS: before publishing and after the deliveries (both after a full GC), and peak. */
  rssBeforeMB: number;
  rssPeakMB: number;
  rssAfterMB: number;
  /** Stalled clients ended with `SLOW_CONSUMER` then `complete`, and those with a gapless prefix. */
  stalledEnded: number;
  stalledGapless: number;
  /** Fewest and most events a stalled client received before its stream ended; null in A. */
  stalledEventsMin: number | null;
  stalledEventsMax: number | null;
  /** CPU use over the publishing window, % of one core. */
  serverCpuPct: number;
  clientCpuPct: number;
  /** CPU used by the rest of the machine over the window, % of one core; null off Linux. */
  otherCpuPct: number | null;
}

/** Samples the RSS of a process from `/proc/<pid>/status` every 100 ms, keeping the highest. */
function rssSampler(pid: number) {
  const read = (): number => {
    try {
      const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return match ? Number(match[1]) * 1024 : 0;
    } catch {
      return 0; // not Linux, or the process is gone
    }
  };
  let peak = read();
  const timer = setInterval(() => (peak = Math.max(peak, read())), 100);
  return {
    /** Stops sampling; returns the highest reading, bytes. */
    stop(): number {
      clearInterval(timer);
      return Math.max(peak, read());
    },
  };
}

/** Sets what every stream expects and resolves once all of them got it. */
function expectFrames(tally: Tally, streams: Stream[], expected: number): Promise<void> {
  for (const s of streams) {
    s.expected = expected;
    s.done = s.frames >= expected;
  }
  tally.target = streams.length;
  tally.complete = streams.filter((s) => s.done).length;
  tally.completedAt = null;
  return new Promise<void>((resolve) => {
    tally.onComplete = resolve;
    if (tally.complete >= tally.target) resolve();
  });
}

/** Runs one scenario once: start a server, connect, publish, count, measure, tear down. */
async function runScenario(
  scenario: 'A' | 'B',
  options: SlowBenchOptions,
): Promise<ScenarioResult> {
  const stalledCount = scenario === 'B' ? options.stalled : 0;
  const server: ServerProcess = await startServerProcess('tidings', options.pin);
  const subAgent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  const pubAgent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  const tally = newTally();
  const streams: Stream[] = [];
  const stalled: StalledReader[] = [];
  const pad = 'x'.repeat(options.payload);
  const batch = batchSize(options.payload);
  try {
    await publishBatch(pubAgent, server.port, 'bench-warmup', batch, pad);
    const sampleEvery = Math.max(1, Math.floor(options.readers / 5));
    for (let j = 0; j < options.readers; j++) {
      const stream = {
        expected: 1,
        frames: 0,
        done: false,
        open: false,
        tail: Buffer.alloc(KEEP),
        tailLen: 0,
        carry: j % sampleEvery === 0 ? '' : null,
      };
      streams.push(await openStream(subAgent, server.port, STREAM_PATH, stream, tally));
    }
    for (let j = 0; j < stalledCount; j++) stalled.push(await openStalled(server.port));

    // A first event proves every stream live; then the stalled clients stop reading.
    const probed = expectFrames(tally, streams, 1);
    const [probe] = await publishBatch(pubAgent, server.port, INBOX, 1, pad);
    const gone = await within(
      Promise.race([probed, server.exited]),
      READ_TIMEOUT_MS,
      'the first event on every stream',
    );
    if (typeof gone === 'string') throw new Error(gone);
    for (const r of stalled) {
      await until(() => textOf(r).includes(`id: ${probe}\n`), READ_TIMEOUT_MS, 'the first event');
      r.socket.pause();
    }
    for (const s of streams) s.frames = 0;
    Object.assign(tally, { frames: 0, chunks: 0, latencies: [], errorFrames: 0 });
    const delivered = expectFrames(tally, streams, options.events);

    const before = await server.snapshot();
    const sampler = rssSampler(server.pid);
    const published = [probe as string];
    const clientCpu0 = process.cpuUsage();
    const machine0 = machineBusyMs();
    const startedAt = Date.now();
    try {
      for (let sent = 0, k = 0; sent < options.events; sent += batch, k++) {
        // At most WINDOW batches ahead of the slowest reader still open.
        const need = (k - WINDOW + 1) * batch;
        await until(
          () => streams.every((s) => s.frames >= need || !s.open),
          READ_TIMEOUT_MS,
          'the readers to catch up',
        );
        const count = Math.min(batch, options.events - sent);
        published.push(...(await publishBatch(pubAgent, server.port, INBOX, count, pad)));
      }
      const crashed = await within(
        Promise.race([delivered.then(() => null), server.exited]),
        READ_TIMEOUT_MS,
        'the last deliveries',
      ).catch(() => null);
      if (crashed !== null) throw new Error(crashed);
    } finally {
      tally.onComplete = null;
    }
    const windowMs = Math.max(1, (tally.completedAt ?? tally.lastFrameAt) - startedAt);
    const clientCpu1 = process.cpuUsage();
    const machine1 = machineBusyMs();
    const rssPeak = sampler.stop();
    const after = await server.snapshot();
    const outcomes: StalledOutcome[] = [];
    for (const r of stalled) outcomes.push(await drainStalled(r, published));

    const serverCpu = cpuMs(before.cpuAfterGc, after.cpuBeforeGc);
    const clientCpu = cpuMs(clientCpu0, clientCpu1);
    const latencies = tally.latencies.sort((a, b) => a - b);
    const received = streams.reduce((sum, s) => sum + Math.min(s.frames, options.events), 0);
    const counts = outcomes.map((o) => o.events);
    return {
      scenario,
      readers: streams.length,
      stalled: stalled.length,
      events: options.events,
      deliveries: tally.frames,
      missing: streams.length * options.events - received,
      endedEarly: tally.endedEarly,
      errorFrames: tally.errorFrames,
      deliveriesPerSec: tally.frames / (windowMs / 1000),
      latencySamples: latencies.length,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      rssBeforeMB: before.memory.rss / MB,
      rssPeakMB: rssPeak / MB,
      rssAfterMB: after.memory.rss / MB,
      stalledEnded: outcomes.filter((o) => o.code === 'SLOW_CONSUMER' && o.completed).length,
      stalledGapless: outcomes.filter((o) => o.gapless).length,
      stalledEventsMin: counts.length > 0 ? Math.min(...counts) : null,
      stalledEventsMax: counts.length > 0 ? Math.max(...counts) : null,
      ...cpuPercents(
        serverCpu,
        clientCpu,
        machine0 === null || machine1 === null ? null : machine1 - machine0,
        windowMs,
      ),
    };
  } finally {
    tally.closing = true;
    await server.kill();
    for (const s of streams) s.req.destroy();
    for (const r of stalled) r.socket.destroy();
    subAgent.destroy();
    pubAgent.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// Reporting.

const stalledColumn = (r: ScenarioResult) =>
  r.stalled === 0 ? '-' : `${r.stalledEnded}/${r.stalled}`;

const COLUMNS: readonly (readonly [string, (r: ScenarioResult) => string])[] = [
  ['scenario', (r) => `${r.scenario}: ${r.readers} readers + ${r.stalled} stalled`],
  ['deliveries/s', (r) => fmt(r.deliveriesPerSec)],
  ['p50 ms', (r) => fmt(r.p50Ms, 1)],
  ['p99 ms', (r) => fmt(r.p99Ms, 1)],
  ['missing', (r) => fmt(r.missing)],
  ['RSS before MB', (r) => fmt(r.rssBeforeMB, 1)],
  ['peak MB', (r) => fmt(r.rssPeakMB, 1)],
  ['after MB', (r) => fmt(r.rssAfterMB, 1)],
  ['SLOW_CONSUMER', stalledColumn],
  ['after events', (r) => fmt(r.stalledEventsMin)],
  ['srv CPU%', (r) => fmt(r.serverCpuPct)],
  ['other CPU%', (r) => fmt(r.otherCpuPct)],
];

/** Loud lines for anything wrong in a run: lost or ended readers, stalled clients not ended. */
function problems(r: ScenarioResult): string[] {
  const out: string[] = [];
  const name = `scenario ${r.scenario}`;
  if (r.missing > 0)
    out.push(`!!! ${name}: ${fmt(r.missing)} deliveries to normal readers MISSING`);
  if (r.endedEarly > 0) out.push(`!!! ${name}: ${r.endedEarly} normal readers were ended`);
  if (r.errorFrames > 0) out.push(`!!! ${name}: ${r.errorFrames} sampled reads carried errors`);
  if (r.stalledEnded < r.stalled) {
    out.push(
      `!!! ${name}: ${r.stalled - r.stalledEnded} stalled clients NOT ended by SLOW_CONSUMER`,
    );
  }
  if (r.stalledGapless < r.stalled) {
    out.push(
      `!!! ${name}: ${r.stalled - r.stalledGapless} stalled clients got a prefix with a gap`,
    );
  }
  return out;
}

/** Runs the benchmark described by `argv` (the arguments after the script) and prints it. */
export async function main(argv: readonly string[]): Promise<void> {
  const options = parseOrUsage(() => parseSlowOptions(argv), USAGE);
  if (!options) return;
  const log = (line: string) => console.log(line);
  const cpus = os.cpus();
  options.pin = options.pin && cpus.length >= 2 && pin(process.pid, 1);
  const command = `npm run bench:slow -- ${argv.join(' ')}`.trim();
  log('Tidings slow-consumer benchmark');
  log(
    `machine: ${cpus[0]?.model ?? 'unknown'}, ${cpus.length} cores, Node ${process.version}; ` +
      `pinning: ${options.pin ? 'server on CPU 0, client on CPU 1' : 'no'}; ` +
      `load average at start: ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
  );
  log(`tidings source: ${sourceState()}`);
  log(`command: ${command}`);
  const batch = batchSize(options.payload);
  log(
    `shape: ${options.readers} readers, ${options.stalled} stalled (B), ${fmt(options.events)} events ` +
      `of ${options.payload} B padding in batches of ${batch}, at most ${WINDOW} batches ahead of ` +
      `the slowest reader; repeat ${options.repeat}, A and B alternated`,
  );
  log('');

  const runs: ScenarioResult[] = [];
  for (let round = 1; round <= options.repeat; round++) {
    const order: ('A' | 'B')[] = round % 2 === 1 ? ['A', 'B'] : ['B', 'A'];
    for (const scenario of order) {
      try {
        const r = await runScenario(scenario, options);
        runs.push(r);
        log(
          `run ${round}/${options.repeat} ${scenario}: ${fmt(r.deliveries)} deliveries, ` +
            `${fmt(r.deliveriesPerSec)}/s, p50 ${fmt(r.p50Ms, 1)} ms, p99 ${fmt(r.p99Ms, 1)} ms, ` +
            `RSS ${fmt(r.rssBeforeMB, 1)} -> peak ${fmt(r.rssPeakMB, 1)} -> ${fmt(r.rssAfterMB, 1)} MB` +
            (r.stalled > 0
              ? `; stalled: ${r.stalledEnded}/${r.stalled} ended with SLOW_CONSUMER after ` +
                `${fmt(r.stalledEventsMin)}–${fmt(r.stalledEventsMax)} events`
              : ''),
        );
        for (const line of problems(r)) log(`  ${line}`);
      } catch (err) {
        log(
          `!!! run ${round} ${scenario} failed: ${err instanceof Error ? err.message : String(err)}`,
        );
      }
    }
  }

  const medians = (['A', 'B'] as const)
    .map((s) => runs.filter((r) => r.scenario === s))
    .filter((rs) => rs.length > 0)
    .map((rs) => medianResult(rs));
  if (medians.length > 0) {
    log('');
    log(options.repeat > 1 ? `Medians of ${options.repeat} runs:` : 'Results:');
    log(renderTable(COLUMNS, medians));
  }
  const [a, b] = medians;
  const ratio = (x: number | null | undefined, y: number | null | undefined) =>
    x == null || y == null || y === 0 ? null : x / y;
  const ratios =
    a?.scenario === 'A' && b?.scenario === 'B'
      ? {
          'p50 B/A': ratio(b.p50Ms, a.p50Ms),
          'p99 B/A': ratio(b.p99Ms, a.p99Ms),
          'deliveries/s B/A': ratio(b.deliveriesPerSec, a.deliveriesPerSec),
          'RSS peak growth B-A, MB': b.rssPeakMB - b.rssBeforeMB - (a.rssPeakMB - a.rssBeforeMB),
        }
      : {};
  if (Object.keys(ratios).length > 0) {
    log('');
    log(
      Object.entries(ratios)
        .map(([key, value]) => `${key}: ${fmt(value, key.includes('MB') ? 1 : 2)}`)
        .join('; '),
    );
  }
  const loud = runs.flatMap(problems);
  if (loud.length > 0) {
    log('');
    for (const line of loud) log(line);
  }
  if (options.json) {
    log('');
    log(toJson({ command, options, runs, medians, ratios }));
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main(process.argv.slice(2));
}
