/**
 * `npm run bench:publish`: the publish benchmark. It measures how many events per second the real
 * Tidings server (`startServer` on a durable SQLite file in a temporary directory, WAL and
 * `synchronous = FULL`) acknowledges over `POST /graphql`, from a keep-alive Node HTTP client:
 *
 * - `single`: `publishEvent` calls from `--single-publishers` concurrent loops;
 * - `batch-N`: `publishEvents` batches of `--batch` events from N concurrent loops, for each N of
 *   `--batch-publishers`.
 *
 * Every loop sends its next request as soon as the previous one was acknowledged. Each scenario
 * runs on a fresh server: `--warmup` seconds first (not counted), then `--duration` seconds during
 * which every acknowledged request counts, with its latency (from sending to the complete
 * answer). Scenarios and builds alternate within each of the `--repeat` rounds, and medians are
 * reported. `--root DIR` (repeatable) measures the server of other checkouts too, so two builds
 * are compared side by side in one run; by default only this checkout runs.
 *
 * The server is pinned to CPU 0 and the client to CPU 1 unless `--no-pin`; the CPU use of the
 * server, the client and the rest of the machine over each window is reported, so a saturated
 * client or a busy machine shows.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  machineBusyMs,
  median,
  percentile,
  pin,
  sourceState,
  startServerProcess,
  type ServerProcess,
} from './run.js';

const HOST = '127.0.0.1';
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The parameters of a run (from the command line). */
export interface PublishBenchOptions {
  /** Seconds measured per scenario run. */
  durationS: number;
  /** Seconds of publishing before the measured window, per scenario run. */
  warmupS: number;
  repeat: number;
  /** Events per `publishEvents` request. */
  batch: number;
  /** Concurrent loops of the `single` scenario; 0 skips it. */
  singlePublishers: number;
  /** Concurrent loops of each batch scenario; empty skips them. */
  batchPublishers: number[];
  /** Bytes of padding in each event body. */
  payload: number;
  /** Checkouts whose server is measured, in this order within each round. */
  roots: string[];
  /** Pin the server to CPU 0 and the client to CPU 1 (needs `taskset` and 2+ CPUs). */
  pin: boolean;
  /** Write a V8 CPU profile of each server run into this directory. */
  cpuProfDir: string | null;
  json: boolean;
}

const USAGE = `Usage: npm run bench:publish -- [options]

  --duration S            seconds measured per scenario run (default 5)
  --warmup S              seconds of publishing before measuring (default 2)
  --repeat N              rounds; medians are reported (default 3)
  --batch N               events per publishEvents request (default 100)
  --single-publishers N   concurrent publishEvent loops; 0 skips that scenario (default 16)
  --batch-publishers LIST comma-separated concurrent publishEvents loops, one scenario each;
                          empty skips them (default 4,16)
  --payload N             bytes of padding in each event body (default 64)
  --root DIR              measure the server of the checkout at DIR (repeatable; default this
                          checkout); builds alternate within each round
  --cpu-prof DIR          write a CPU profile of every server run into DIR
  --no-pin                do not pin the server to CPU 0 and the client to CPU 1
  --json                  also print a JSON summary
`;

/**
 * Parses the command line into {@link PublishBenchOptions}; throws with a one-line message on a
 * bad option. `--help` prints the usage and exits.
 */
export function parseOptions(argv: readonly string[]): PublishBenchOptions {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      duration: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '2' },
      repeat: { type: 'string', default: '3' },
      batch: { type: 'string', default: '100' },
      'single-publishers': { type: 'string', default: '16' },
      'batch-publishers': { type: 'string', default: '4,16' },
      payload: { type: 'string', default: '64' },
      root: { type: 'string', multiple: true },
      'cpu-prof': { type: 'string' },
      'no-pin': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const int = (name: string, raw: string, min: number): number => {
    const n = Number(raw);
    if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < min) {
      throw new Error(`--${name}=${raw} is invalid: expected an integer >= ${min}`);
    }
    return n;
  };
  const batchPublishers = values['batch-publishers']
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => int('batch-publishers', s, 1));
  return {
    durationS: int('duration', values.duration, 1),
    warmupS: int('warmup', values.warmup, 0),
    repeat: int('repeat', values.repeat, 1),
    batch: int('batch', values.batch, 1),
    singlePublishers: int('single-publishers', values['single-publishers'], 0),
    batchPublishers: [...new Set(batchPublishers)],
    payload: int('payload', values.payload, 0),
    roots: (values.root ?? [REPO_ROOT]).map((r) => resolve(r)),
    pin: !values['no-pin'],
    cpuProfDir: values['cpu-prof'] === undefined ? null : resolve(values['cpu-prof']),
    json: values.json,
  };
}

// ---------------------------------------------------------------------------------------------
// Requests.

const SINGLE = 'mutation($input: PublishEventInput!) { publishEvent(input: $input) { id cursor } }';
const BATCH =
  'mutation($inputs: [PublishEventInput!]!) { publishEvents(inputs: $inputs) { id cursor } }';

/** One measured situation: a kind of request and a number of concurrent loops. */
export interface Scenario {
  /** `single` or `batch-<publishers>`. */
  name: string;
  /** Events per request. */
  events: number;
  publishers: number;
  /** Request bodies, used in turn (events carry no id: the server gives each a new one). */
  bodies: Buffer[];
}

/** Distinct request bodies per scenario, so the server does not see one body over and over. */
const BODY_VARIANTS = 16;

/** A typical event: a type, an inbox among 4, a source, a short message and a small body. */
function eventInput(n: number, pad: string): Record<string, unknown> {
  return {
    type: 'bench.tick',
    inbox: `bench-${n % 4}`,
    source: 'bench',
    message: `tick ${n}`,
    body: { n, pad },
  };
}

/** The scenarios `options` asks for, with their request bodies. */
export function scenarios(options: PublishBenchOptions): Scenario[] {
  const pad = 'x'.repeat(options.payload);
  const out: Scenario[] = [];
  if (options.singlePublishers > 0) {
    out.push({
      name: 'single',
      events: 1,
      publishers: options.singlePublishers,
      bodies: Array.from({ length: BODY_VARIANTS }, (_, v) =>
        Buffer.from(JSON.stringify({ query: SINGLE, variables: { input: eventInput(v, pad) } })),
      ),
    });
  }
  for (const publishers of options.batchPublishers) {
    out.push({
      name: `batch-${publishers}`,
      events: options.batch,
      publishers,
      bodies: Array.from({ length: BODY_VARIANTS }, (_, v) =>
        Buffer.from(
          JSON.stringify({
            query: BATCH,
            variables: {
              inputs: Array.from({ length: options.batch }, (_, i) =>
                eventInput(v * options.batch + i, pad),
              ),
            },
          }),
        ),
      ),
    });
  }
  return out;
}

/**
 * Whether an answer acknowledges `events` events: `null`, or what is wrong. The answer is not
 * parsed (that would cost the client more than the server's serialising): a 200 without
 * `"errors"` holding one `"cursor"` per event.
 */
export function checkAnswer(status: number, body: string, events: number): string | null {
  if (status !== 200) return `HTTP ${status}: ${body.slice(0, 300)}`;
  if (body.includes('"errors"')) return body.slice(0, 300);
  let cursors = 0;
  for (let i = body.indexOf('"cursor":'); i !== -1; i = body.indexOf('"cursor":', i + 9)) {
    cursors++;
  }
  if (cursors !== events)
    return `expected ${events} cursors, got ${cursors}: ${body.slice(0, 300)}`;
  return null;
}

/** POSTs one body to `/graphql`; resolves with the status and the answer. */
function post(agent: http.Agent, port: number, body: Buffer): Promise<[number, string]> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: HOST,
        port,
        path: '/graphql',
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          'content-length': body.length,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve([
            res.statusCode ?? 0,
            chunks.length === 1
              ? (chunks[0] as Buffer).toString('utf8')
              : Buffer.concat(chunks).toString('utf8'),
          ]),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error('no answer within 30 s (ETIMEDOUT)')));
    req.on('error', reject);
    req.end(body);
  });
}

// ---------------------------------------------------------------------------------------------
// One run.

/** The figures of one scenario run against one build. */
export interface PublishRunResult {
  /** Label of the build: its root's directory name and commit. */
  build: string;
  scenario: string;
  publishers: number;
  /** Events per request. */
  batch: number;
  /** Acknowledged requests, and events, per second of the measured window. */
  publishesPerSec: number;
  eventsPerSec: number;
  /** Ack latency of the requests answered in the window, ms. */
  p50Ms: number | null;
  p99Ms: number | null;
  /** Requests that failed (any time, warm-up included); the run's figures are then suspect. */
  failures: number;
  firstError: string | null;
  /** CPU use over the measured window, % of one core. */
  serverCpuPct: number | null;
  /** CPU use of the server's main thread (the JavaScript event loop) alone. */
  serverMainCpuPct: number | null;
  /**
   * Events acknowledged per second of server CPU: less sensitive than events/s to other load on
   * a shared machine (which takes the server's core away), though not immune to it.
   */
  eventsPerServerCpuSec: number | null;
  clientCpuPct: number;
  otherCpuPct: number | null;
}

/**
 * User plus system CPU time of process `pid` (all its threads) so far, ms, or of its main thread
 * only with `mainThread`; null off Linux.
 */
function processCpuMs(pid: number, mainThread = false): number | null {
  try {
    const stat = readFileSync(
      mainThread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`,
      'utf8',
    );
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return null;
  }
}

const cpuUsageMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;

/** Runs one scenario against an already started server. */
async function measure(
  server: ServerProcess,
  scenario: Scenario,
  options: PublishBenchOptions,
  build: string,
): Promise<PublishRunResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: scenario.publishers });
  const latencies: number[] = [];
  let acked = 0;
  let failures = 0;
  let firstError: string | null = null;
  const begin = performance.now();
  const windowStart = begin + options.warmupS * 1000;
  const windowEnd = windowStart + options.durationS * 1000;
  let next = 0;
  let server0: number | null = null;
  let main0: number | null = null;
  let client0 = process.cpuUsage();
  let machine0: number | null = null;
  const startWindow = setTimeout(
    () => {
      server0 = processCpuMs(server.pid);
      main0 = processCpuMs(server.pid, true);
      client0 = process.cpuUsage();
      machine0 = machineBusyMs();
    },
    Math.max(0, windowStart - performance.now()),
  );
  let server1: number | null = null;
  let main1: number | null = null;
  let client1 = client0;
  let machine1: number | null = null;
  let ended = false;
  const endReadings = () => {
    if (ended) return;
    ended = true;
    server1 = processCpuMs(server.pid);
    main1 = processCpuMs(server.pid, true);
    client1 = process.cpuUsage();
    machine1 = machineBusyMs();
  };
  const endWindow = setTimeout(endReadings, Math.max(0, windowEnd - performance.now()));

  const loop = async () => {
    while (performance.now() < windowEnd) {
      const body = scenario.bodies[next++ % scenario.bodies.length] as Buffer;
      const sentAt = performance.now();
      let error: string | null;
      try {
        const [status, text] = await post(agent, server.port, body);
        error = checkAnswer(status, text, scenario.events);
      } catch (err) {
        error = err instanceof Error ? err.message : String(err);
      }
      const doneAt = performance.now();
      if (error !== null) {
        failures++;
        firstError ??= error;
        if (failures >= 100) return; // something is broken: do not spin on it
        continue;
      }
      if (sentAt >= windowStart && doneAt <= windowEnd) {
        acked++;
        latencies.push(doneAt - sentAt);
      }
    }
  };
  try {
    await Promise.race([
      Promise.all(Array.from({ length: scenario.publishers }, loop)),
      server.exited.then((why) => {
        throw new Error(why);
      }),
    ]);
  } finally {
    clearTimeout(startWindow);
    clearTimeout(endWindow);
    agent.destroy();
  }
  // The last loop may end (its answer arriving after the window) before the timer fires.
  endReadings();
  const windowMs = windowEnd - windowStart;
  const pct = (ms: number | null) => (ms === null ? null : (ms / windowMs) * 100);
  const serverMs = server0 !== null && server1 !== null ? server1 - server0 : null;
  const clientMs = cpuUsageMs(client1) - cpuUsageMs(client0);
  const machineMs = machine0 !== null && machine1 !== null ? machine1 - machine0 : null;
  latencies.sort((a, b) => a - b);
  return {
    build,
    scenario: scenario.name,
    publishers: scenario.publishers,
    batch: scenario.events,
    publishesPerSec: acked / (windowMs / 1000),
    eventsPerSec: (acked * scenario.events) / (windowMs / 1000),
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    failures,
    firstError,
    serverCpuPct: pct(serverMs),
    serverMainCpuPct: main0 !== null && main1 !== null ? pct(main1 - main0) : null,
    eventsPerServerCpuSec:
      serverMs === null || serverMs <= 0 ? null : (acked * scenario.events) / (serverMs / 1000),
    clientCpuPct: pct(clientMs) as number,
    otherCpuPct:
      machineMs === null || serverMs === null
        ? null
        : pct(Math.max(0, machineMs - serverMs - clientMs)),
  };
}

/** Starts a fresh server of `root`, runs `scenario` on it, and stops it. */
async function runOnce(
  root: string,
  build: string,
  scenario: Scenario,
  options: PublishBenchOptions,
): Promise<PublishRunResult> {
  const server = await startServerProcess('tidings', options.pin, {
    root,
    execArgv: options.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', options.cpuProfDir] : [],
    gracefulExit: options.cpuProfDir !== null,
  });
  try {
    return await measure(server, scenario, options, build);
  } finally {
    await server.kill();
  }
}

// ---------------------------------------------------------------------------------------------
// Reporting.

const fmt = (value: number | null, digits = 0) =>
  value === null || !Number.isFinite(value)
    ? '-'
    : value.toLocaleString('en-US', {
        minimumFractionDigits: digits,
        maximumFractionDigits: digits,
      });

/** Median of each numeric figure over several runs of one build and scenario. */
function medianResult(runs: readonly PublishRunResult[]): PublishRunResult {
  const first = runs[0] as PublishRunResult;
  const out: Record<string, unknown> = { ...first };
  for (const [key, value] of Object.entries(first)) {
    if (typeof value === 'number' || value === null) {
      const values = runs
        .map((r) => (r as unknown as Record<string, unknown>)[key])
        .filter((v): v is number => typeof v === 'number');
      out[key] = values.length > 0 ? median(values) : null;
    }
  }
  out.failures = runs.reduce((sum, r) => sum + r.failures, 0);
  out.firstError = runs.find((r) => r.firstError !== null)?.firstError ?? null;
  return out as unknown as PublishRunResult;
}

function table(results: readonly PublishRunResult[]): string {
  const columns: [string, (r: PublishRunResult) => string][] = [
    ['build', (r) => r.build],
    ['scenario', (r) => r.scenario],
    ['publishers', (r) => fmt(r.publishers)],
    ['batch', (r) => fmt(r.batch)],
    ['publishes/s', (r) => fmt(r.publishesPerSec)],
    ['events/s', (r) => fmt(r.eventsPerSec)],
    ['p50 ms', (r) => fmt(r.p50Ms, 2)],
    ['p99 ms', (r) => fmt(r.p99Ms, 2)],
    ['srv CPU%', (r) => fmt(r.serverCpuPct)],
    ['main thr%', (r) => fmt(r.serverMainCpuPct)],
    ['events/srv-CPU-s', (r) => fmt(r.eventsPerServerCpuSec)],
    ['cli CPU%', (r) => fmt(r.clientCpuPct)],
    ['other CPU%', (r) => fmt(r.otherCpuPct)],
    ['failures', (r) => fmt(r.failures)],
  ];
  const rows = [columns.map(([h]) => h), ...results.map((r) => columns.map(([, f]) => f(r)))];
  const widths = columns.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length)));
  return rows
    .map((row) =>
      row
        .map((cell, i) => (i <= 1 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
        .join('  '),
    )
    .join('\n');
}

/** A label per root: its directory name and commit, unique within the run. */
function buildLabels(roots: readonly string[]): string[] {
  return roots.map((root, i) => {
    const state = sourceState(root);
    const commit = state.split(' ')[0] ?? '?';
    const dirty = state.includes('uncommitted') ? '+' : '';
    const base = root.replace(/\/+$/, '').split('/').pop() ?? root;
    return roots.length > 1 ? `${i + 1}:${base}@${commit}${dirty}` : `${base}@${commit}${dirty}`;
  });
}

// ---------------------------------------------------------------------------------------------
// Main.

/** Runs the benchmark described by `argv` (the arguments after the script) and prints it. */
export async function main(argv: readonly string[]): Promise<void> {
  let options: PublishBenchOptions;
  try {
    options = parseOptions(argv);
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  const log = (line: string) => console.log(line);
  const cpus = os.cpus();
  options.pin = options.pin && cpus.length >= 2 && pin(process.pid, 1);
  const labels = buildLabels(options.roots);
  const list = scenarios(options);
  const machine = {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    pinned: options.pin ? 'server on CPU 0, client on CPU 1' : 'no',
    tmpdir: os.tmpdir(),
  };
  log('Tidings publish benchmark');
  log(
    `machine: ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, ${machine.platform}; ` +
      `pinning: ${machine.pinned}; store: SQLite (WAL, synchronous=FULL) under ${machine.tmpdir}`,
  );
  for (const [i, root] of options.roots.entries()) {
    log(`build ${labels[i] ?? '?'}: ${root} (${sourceState(root)})`);
  }
  log(`command: npm run bench:publish -- ${argv.join(' ')}`.trim());
  log(
    `load average at start: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  log(
    `shape: ${options.warmupS} s warm-up + ${options.durationS} s measured per run, repeat ${options.repeat}, ` +
      `${options.payload} B padding per event body; scenarios ${list.map((s) => `${s.name} (${s.publishers} x ${s.events} event(s))`).join(', ')}`,
  );
  log('');

  const runs: PublishRunResult[] = [];
  for (let round = 1; round <= options.repeat; round++) {
    for (const scenario of list) {
      for (const [i, root] of options.roots.entries()) {
        const build = labels[i] ?? root;
        try {
          const r = await runOnce(root, build, scenario, options);
          runs.push(r);
          log(
            `run ${round}/${options.repeat} ${build} ${scenario.name}: ` +
              `${fmt(r.publishesPerSec)} publishes/s, ${fmt(r.eventsPerSec)} events/s, ` +
              `p50 ${fmt(r.p50Ms, 2)} ms, p99 ${fmt(r.p99Ms, 2)} ms, ` +
              `CPU server ${fmt(r.serverCpuPct)}% (main thread ${fmt(r.serverMainCpuPct)}%) client ${fmt(r.clientCpuPct)}% other ${fmt(r.otherCpuPct)}%` +
              (r.failures > 0 ? ` — !!! ${r.failures} failures: ${r.firstError ?? ''}` : ''),
          );
        } catch (err) {
          log(
            `!!! run ${round} ${build} ${scenario.name} failed: ${err instanceof Error ? err.message : String(err)}`,
          );
        }
      }
    }
  }

  const summary: PublishRunResult[] = [];
  for (const scenario of list) {
    for (const build of labels) {
      const rs = runs.filter((r) => r.build === build && r.scenario === scenario.name);
      if (rs.length > 0) summary.push(medianResult(rs));
    }
  }
  log('');
  log(options.repeat > 1 ? `Medians of ${options.repeat} runs:` : 'Results:');
  log(table(summary));
  const ratios: Record<string, number> = {};
  if (labels.length > 1) {
    log('');
    for (const scenario of list) {
      const base = summary.find((r) => r.build === labels[0] && r.scenario === scenario.name);
      for (const build of labels.slice(1)) {
        const other = summary.find((r) => r.build === build && r.scenario === scenario.name);
        if (!base || !other || base.eventsPerSec === 0) continue;
        const ratio = other.eventsPerSec / base.eventsPerSec;
        ratios[`${scenario.name} ${build} / ${labels[0] ?? ''}`] = ratio;
        const perCpu =
          other.eventsPerServerCpuSec !== null && base.eventsPerServerCpuSec
            ? other.eventsPerServerCpuSec / base.eventsPerServerCpuSec
            : null;
        if (perCpu !== null)
          ratios[`${scenario.name} ${build} / ${labels[0] ?? ''} per CPU`] = perCpu;
        log(
          `${scenario.name}: ${build} / ${labels[0] ?? ''}: events/s ${fmt(ratio, 2)}, ` +
            `events per server CPU-second ${fmt(perCpu, 2)}`,
        );
      }
    }
  }
  const loud = summary.filter((r) => r.failures > 0);
  for (const r of loud) {
    log(`!!! ${r.build} ${r.scenario}: ${r.failures} failed requests: ${r.firstError ?? ''}`);
  }
  if (loud.length > 0) process.exitCode = 1;
  for (const r of summary) {
    if (r.clientCpuPct > 90) {
      log(
        `(note) ${r.build} ${r.scenario}: the client used ${fmt(r.clientCpuPct)}% of a core: it may be the limit`,
      );
    }
    if (r.otherCpuPct !== null && r.otherCpuPct > 20) {
      log(
        `(note) ${r.build} ${r.scenario}: other processes used ${fmt(r.otherCpuPct)}% of a core: the machine was not quiet`,
      );
    }
  }
  if (options.json) {
    log('');
    log(
      JSON.stringify(
        { machine, command: argv, options, runs, medians: summary, ratios },
        (_key, value: unknown) =>
          typeof value === 'number' && !Number.isInteger(value)
            ? Math.round(value * 1000) / 1000
            : value,
        2,
      ),
    );
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main(process.argv.slice(2));
}
