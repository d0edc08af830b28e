/**
 * `npm run bench:instances`: one Tidings instance against two, behind the same client. Both
 * scenarios run Tidings on PostgreSQL (the store) and Redis (the bus), each instance in its own
 * child process (`servers/tidings-shared.ts`), alternated and repeated in one run:
 *
 * - A: one instance holding all `--subscribers` event streams on one inbox;
 * - B: two instances on the same PostgreSQL schema and Redis channel, the same streams split half
 *   and half between them.
 *
 * In both, the client publishes `--events` events from `--publishers` concurrent loops, sending
 * the publishes round-robin to the instances (all to the one instance in A), and counts every
 * `next` frame every stream receives. Reported per scenario (medians over `--repeat`):
 * deliveries/s, publish→receive latency (from the `sentAt` in each event body, on about 50
 * streams spread evenly over the instances), missing deliveries, and the CPU used by the
 * instances, by PostgreSQL and Redis, by the client and by the rest of the machine; then B/A.
 *
 * Every run gets a fresh schema and channel (a random name) and the schema is dropped afterwards,
 * whatever way the run ends. No process is pinned unless `--pin`: with two instances and the
 * client there are three busy processes, and a benchmark host may have only two cores.
 */
import { fork, type ChildProcess, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import { redactUrl } from '../config.js';
import {
  cpuMs,
  cpuPercents,
  fmt,
  graphqlStreamPath,
  intFlag,
  KEEP,
  machineBusyMs,
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
  toJson,
  within,
  type Stream,
} from './run.js';
import type { ChildMessage } from './servers/child.js';

/** The benchmark's parameters (from the command line). */
export interface InstancesBenchOptions {
  /** Event streams in each scenario (split half and half in B). */
  subscribers: number;
  events: number;
  publishers: number;
  /** Bytes of padding in each event body. */
  payload: number;
  /** Runs of each scenario, alternated; figures are medians. */
  repeat: number;
  /** Publishes to an unwatched inbox, through every instance, before measuring. */
  warmup: number;
  /** Longest wait for the deliveries once publishing ended, ms. */
  timeoutMs: number;
  /** PostgreSQL database (a fresh schema in it per run) and Redis server. */
  postgres: string;
  redis: string;
  /** Pin the instances to CPU 0 and the client to CPU 1. */
  pin: boolean;
  json: boolean;
}

const USAGE = `Usage: npm run bench:instances -- [options]

Scenario A: one Tidings instance on PostgreSQL + Redis with all the streams. Scenario B: two
instances on the same schema and channel, the streams split half and half. The same client
publishes round-robin to the instances. A and B alternate, --repeat times each.

  --subscribers N   event streams on one inbox, in each scenario (default 2000)
  --events N        events published per run (default 100)
  --publishers N    concurrent publishing loops (default 4)
  --payload N       bytes of padding in each event body (default 256)
  --repeat N        runs of each scenario, alternated; medians are reported (default 3)
  --warmup N        publishes to an unwatched inbox before measuring (default 20)
  --timeout S       longest wait for deliveries after the last publish, seconds (default 60)
  --postgres URL    PostgreSQL database; each run creates and drops a schema of its own
                    (default postgres://postgres@127.0.0.1:5432/test)
  --redis URL       Redis server; each run uses a channel of its own (default redis://127.0.0.1:6379)
  --no-pin          do not pin any process (the default: B runs three busy processes, two
                    instances and the client, which two cores cannot each give a core of its own)
  --pin             pin the instances to CPU 0 and the client to CPU 1 (in B both instances then
                    share CPU 0: the same server CPU as A, spent by two processes)
  --json            also print a JSON summary
  --help            this text
`;

/**
 * Parses the command line into {@link InstancesBenchOptions}; throws with a one-line message on a
 * bad option. `--help` prints the usage and exits.
 */
export function parseInstancesOptions(argv: readonly string[]): InstancesBenchOptions {
  const pinned = argv.includes('--pin');
  const { values, pin, json } = parseBenchArgs(
    argv.filter((a) => a !== '--pin'),
    USAGE,
    {
      subscribers: '2000',
      events: '100',
      publishers: '4',
      payload: '256',
      repeat: '3',
      warmup: '20',
      timeout: '60',
      postgres: 'postgres://postgres@127.0.0.1:5432/test',
      redis: 'redis://127.0.0.1:6379',
    },
  );
  if (pinned && !pin) throw new Error('--pin and --no-pin contradict each other');
  for (const [name, scheme] of [
    ['postgres', /^postgres(ql)?:\/\//i],
    ['redis', /^rediss?:\/\//i],
  ] as const) {
    if (!scheme.test(values[name])) {
      throw new Error(`--${name}=${redactUrl(values[name])} is invalid: expected a ${name} URL`);
    }
  }
  return {
    subscribers: intFlag('subscribers', values.subscribers, 1),
    events: intFlag('events', values.events, 1),
    publishers: intFlag('publishers', values.publishers, 1),
    payload: intFlag('payload', values.payload, 0, 250_000),
    repeat: intFlag('repeat', values.repeat, 1),
    warmup: intFlag('warmup', values.warmup, 0),
    timeoutMs: intFlag('timeout', values.timeout, 1) * 1000,
    postgres: values.postgres,
    redis: values.redis,
    pin: pinned,
    json,
  };
}

// ---------------------------------------------------------------------------------------------
// Instances, and the schemas they share.

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ENTRY = fileURLToPath(new URL('./servers/tidings-shared.ts', import.meta.url));

/** A Tidings instance in a child process. */
interface Instance {
  port: number;
  pid: number;
  /** Resolves with a description when the process exits. */
  exited: Promise<string>;
  /** Kills the process and waits for it to exit. */
  stop(): Promise<void>;
}

const liveInstances = new Set<ChildProcess>();
/** Schemas of runs not yet cleaned up, each with its database. */
const liveSchemas = new Map<string, string>();

/** {@link dropSchema} as a script: `node --input-type=module -e DROP_SCRIPT <database> <schema>`. */
const DROP_SCRIPT = `import pg from 'pg';
const [url, schema] = process.argv.slice(1);
const client = new pg.Client({ connectionString: url });
await client.connect();
await client.query('DROP SCHEMA IF EXISTS "' + schema + '" CASCADE');
await client.end();`;

// An interrupted run (Ctrl-C, a crash) leaves neither processes nor schemas behind: 'exit'
// handlers cannot wait, so the schemas are dropped by a short synchronous child process.
process.on('exit', () => {
  for (const child of liveInstances) child.kill('SIGKILL');
  for (const [schema, database] of liveSchemas) {
    try {
      execFileSync(process.execPath, ['--input-type=module', '-e', DROP_SCRIPT, database, schema], {
        cwd: REPO_ROOT,
        stdio: 'ignore',
        timeout: 15_000,
      });
    } catch {
      console.error(`could not drop the schema ${schema}: drop it by hand`);
    }
  }
});

/**
 * Starts an instance on `store` and `bus` (given through the environment, so that no password
 * shows in the process list) and resolves once it listens.
 */
async function startInstance(store: string, bus: string): Promise<Instance> {
  const child = fork(ENTRY, [], {
    cwd: REPO_ROOT,
    // As `tidings serve` runs it: production mode unless told otherwise.
    env: {
      ...process.env,
      NODE_ENV: process.env.NODE_ENV ?? 'production',
      TIDINGS_STORE: store,
      TIDINGS_BUS: bus,
    },
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  liveInstances.add(child);
  const exited = new Promise<string>((resolve) =>
    child.once('exit', (code, signal) => resolve(`an instance exited (${signal ?? code})`)),
  );
  const stop = async () => {
    child.kill('SIGKILL');
    await within(exited, 10_000, 'an instance to exit').catch(() => undefined);
    liveInstances.delete(child);
  };
  const listening = new Promise<number>((resolve, reject) => {
    child.on('message', (message: ChildMessage) => {
      if (message.type === 'ready') resolve(message.port);
      if (message.type === 'failed') reject(new Error(message.message));
    });
    void exited.then((why) => reject(new Error(why)));
  });
  try {
    const port = await within(listening, 60_000, 'an instance to listen');
    return { port, pid: child.pid as number, exited, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** `url` with the query parameter `name` set to `value`. */
function withParam(url: string, name: string, value: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set(name, value);
  return parsed.toString();
}

async function dropSchema(database: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: database });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

/** The PostgreSQL and Redis versions; fails when either cannot be reached. */
async function serviceVersions(options: InstancesBenchOptions) {
  const client = new pg.Client({
    connectionString: options.postgres,
    connectionTimeoutMillis: 10_000,
  });
  await client.connect();
  let postgres: string;
  try {
    postgres = (await client.query<{ server_version: string }>('SHOW server_version')).rows[0]
      ?.server_version as string;
  } finally {
    await client.end();
  }
  const redis = new Redis(options.redis, {
    lazyConnect: true,
    connectTimeout: 10_000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  try {
    await redis.connect();
    const info = await redis.info('server');
    return { postgres, redis: /^redis_version:(\S+)/m.exec(info)?.[1] ?? 'unknown' };
  } finally {
    redis.disconnect();
  }
}

// ---------------------------------------------------------------------------------------------
// CPU of other processes, from /proc (Linux; 0 elsewhere).

/** CPU time `pid` has used so far in user and system mode, ms; 0 when it cannot be read. */
function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at field 3; utime and stime
    // are fields 14 and 15, in USER_HZ (100 on Linux) ticks.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return 0;
  }
}

/** CPU time used so far by each PostgreSQL and Redis process of the machine, ms, by pid. */
function storeAndBusCpu(): Map<number, number> {
  const out = new Map<number, number>();
  let pids: string[] = [];
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return out;
  }
  for (const pid of pids) {
    try {
      const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      if (comm === 'postgres' || comm === 'redis-server') {
        out.set(Number(pid), processCpuMs(Number(pid)));
      }
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** CPU used between two {@link storeAndBusCpu} readings, ms (a process new in `b` from 0). */
function cpuSince(a: Map<number, number>, b: Map<number, number>): number {
  let ms = 0;
  for (const [pid, now] of b) ms += Math.max(0, now - (a.get(pid) ?? 0));
  return ms;
}

// ---------------------------------------------------------------------------------------------
// One run of one scenario.

type Scenario = 'A' | 'B';
const INBOX = 'bench-instances';
const STREAM_PATH = graphqlStreamPath('/graphql/stream', INBOX);
const PUBLISH = 'mutation($input: PublishEventInput!) { publishEvent(input: $input) { cursor } }';
/** Streams opened at a time, and streams sampled for latency in each scenario (about). */
const CONNECT_BATCH = 200;
const LATENCY_STREAMS = 50;
/** Longest the publishing phase may take, ms. */
const PUBLISH_BUDGET_MS = 300_000;

/** The figures of one run of one scenario. */
export interface ScenarioResult {
  scenario: Scenario;
  instances: number;
  subscribers: number;
  events: number;
  deliveries: number;
  /** Expected deliveries that never arrived (must be 0), and deliveries beyond the expected. */
  missing: number;
  extra: number;
  endedEarly: number;
  /** Sampled reads that carried GraphQL errors. */
  errorFrames: number;
  publishFailures: number;
  publishError: string | null;
  publishesPerSec: number;
  deliveriesPerSec: number;
  latencySamples: number;
  p50Ms: number | null;
  p99Ms: number | null;
  /** CPU over the window from the first publish to the last delivery, % of one core. */
  serverCpuPct: number;
  /** Of every PostgreSQL and Redis process of the machine. */
  storeBusCpuPct: number;
  clientCpuPct: number;
  /** Everything else the machine ran. */
  otherCpuPct: number | null;
  /** Deliveries per second of CPU used by the instances. */
  deliveriesPerServerCpuSec: number | null;
}

/**
 * Publishes `count` events to `inbox` from `loops` concurrent loops sharing one counter, event `i`
 * through `ports[i % ports.length]`. Events not sent within `budgetMs` count as failed.
 */
async function publishRoundRobin(
  agent: http.Agent,
  ports: readonly number[],
  count: number,
  loops: number,
  inbox: string,
  pad: string,
  budgetMs: number,
) {
  const outcome = { sent: 0, failed: 0, firstError: null as string | null, ms: 0 };
  const startedAt = Date.now();
  let next = 0;
  const loop = async () => {
    for (let i = next++; i < count; i = next++) {
      let error: string | null = 'publishing took too long';
      if (Date.now() - startedAt < budgetMs) {
        const input = { type: 'bench.tick', inbox, body: { sentAt: Date.now(), pad } };
        const body = JSON.stringify({ query: PUBLISH, variables: { input } });
        error = await post(agent, ports[i % ports.length] as number, '/graphql', body).then(
          (res) =>
            res.status === 200 && !res.body.includes('"errors"')
              ? null
              : `HTTP ${res.status}: ${res.body.slice(0, 200)}`,
          (err: unknown) => (err instanceof Error ? err.message : String(err)),
        );
      }
      if (error === null) outcome.sent++;
      else {
        outcome.failed++;
        outcome.firstError ??= error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(loops, count) }, loop));
  outcome.ms = Date.now() - startedAt;
  return outcome;
}

/** Runs one scenario once: instances, streams, publishes, counts, then tears everything down. */
async function runScenario(
  scenario: Scenario,
  options: InstancesBenchOptions,
  log: (line: string) => void,
): Promise<ScenarioResult> {
  const count = scenario === 'A' ? 1 : 2;
  const name = `tidings_bench_${randomBytes(6).toString('hex')}`;
  liveSchemas.set(name, options.postgres);
  const store = withParam(options.postgres, 'schema', name);
  const bus = withParam(options.redis, 'channel', name);
  const instances: Instance[] = [];
  const subAgent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  const pubAgent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  const tally = newTally();
  const streams: Stream[] = [];
  const pad = 'x'.repeat(options.payload);
  try {
    // One after the other: the first creates and migrates the schema.
    for (let k = 0; k < count; k++) instances.push(await startInstance(store, bus));
    if (options.pin) for (const instance of instances) pin(instance.pid, 0);
    const ports = instances.map((i) => i.port);
    const pids = instances.map((i) => i.pid);
    const warm = await publishRoundRobin(
      pubAgent,
      ports,
      options.warmup,
      options.publishers,
      'bench-warmup',
      pad,
      options.timeoutMs,
    );
    if (warm.failed > 0) throw new Error(`warm-up publish failed: ${warm.firstError}`);

    // Stream j goes to instance j % count; within each instance every `sampleEvery`th is sampled.
    const sampleEvery = Math.max(1, Math.floor(options.subscribers / LATENCY_STREAMS));
    let connectFailures = 0;
    let connectError = '';
    for (let from = 0; from < options.subscribers; from += CONNECT_BATCH) {
      const batch: Promise<Stream>[] = [];
      for (let j = from; j < Math.min(options.subscribers, from + CONNECT_BATCH); j++) {
        const stream = {
          expected: options.events,
          frames: 0,
          done: false,
          open: false,
          tail: Buffer.alloc(KEEP),
          tailLen: 0,
          carry: Math.floor(j / count) % sampleEvery === 0 ? '' : null,
        };
        batch.push(openStream(subAgent, ports[j % count] as number, STREAM_PATH, stream, tally));
      }
      for (const settled of await Promise.allSettled(batch)) {
        if (settled.status === 'fulfilled') streams.push(settled.value);
        else {
          connectFailures++;
          connectError ||= String(settled.reason);
        }
      }
    }
    if (connectFailures > 0) {
      throw new Error(
        `${connectFailures} of ${options.subscribers} streams did not connect: ${connectError}`,
      );
    }
    // Let the instances finish registering the streams (no readiness probe: deliveries verify it).
    await new Promise((resolve) => setTimeout(resolve, 500));

    tally.target = streams.length;
    const delivered = new Promise<void>((resolve) => (tally.onComplete = resolve));
    const client0 = process.cpuUsage();
    const machine0 = machineBusyMs();
    const servers0 = pids.map(processCpuMs);
    const storeBus0 = storeAndBusCpu();
    const startedAt = Date.now();
    const published = await publishRoundRobin(
      pubAgent,
      ports,
      options.events,
      options.publishers,
      INBOX,
      pad,
      PUBLISH_BUDGET_MS,
    );
    const crashed = await within(
      Promise.race([delivered.then(() => null), ...instances.map((i) => i.exited)]),
      options.timeoutMs,
      'deliveries',
    ).catch(() => null);
    if (crashed !== null) throw new Error(crashed);
    const windowMs = Math.max(1, (tally.completedAt ?? tally.lastFrameAt) - startedAt);
    const serverEach = pids.map((pid, k) => processCpuMs(pid) - (servers0[k] as number));
    const serverMs = serverEach.reduce((a, b) => a + b, 0);
    const storeBusMs = cpuSince(storeBus0, storeAndBusCpu());
    const machine1 = machineBusyMs();
    const clientMs = cpuMs(client0, process.cpuUsage());

    const latencies = tally.latencies.sort((a, b) => a - b);
    const received = streams.reduce((sum, s) => sum + Math.min(s.frames, options.events), 0);
    const result: ScenarioResult = {
      scenario,
      instances: count,
      subscribers: streams.length,
      events: options.events,
      deliveries: tally.frames,
      missing: streams.length * options.events - received,
      extra: tally.frames - received,
      endedEarly: tally.endedEarly,
      errorFrames: tally.errorFrames,
      publishFailures: published.failed,
      publishError: published.firstError,
      publishesPerSec: published.sent / (Math.max(1, published.ms) / 1000),
      deliveriesPerSec: tally.frames / (windowMs / 1000),
      latencySamples: latencies.length,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      ...cpuPercents(
        serverMs,
        clientMs,
        machine0 === null || machine1 === null ? null : machine1 - machine0 - storeBusMs,
        windowMs,
      ),
      storeBusCpuPct: (storeBusMs / windowMs) * 100,
      deliveriesPerServerCpuSec: serverMs > 0 ? tally.frames / (serverMs / 1000) : null,
    };
    if (count > 1) {
      const each = serverEach.map((ms) => `${fmt((ms / windowMs) * 100)}%`).join(' + ');
      log(`  instances' CPU: ${each} of a core`);
    }
    return result;
  } finally {
    tally.closing = true;
    // The instances go first, so the closing handshakes leave no TIME_WAIT on client ports.
    await Promise.all(instances.map((i) => i.stop()));
    for (const s of streams) s.req.destroy();
    subAgent.destroy();
    pubAgent.destroy();
    try {
      await dropSchema(options.postgres, name);
      liveSchemas.delete(name);
    } catch (err) {
      log(`  could not drop the schema ${name} now (${String(err)}); retrying at exit`);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

// ---------------------------------------------------------------------------------------------
// Reporting.

const COLUMNS: readonly (readonly [string, (r: ScenarioResult) => string])[] = [
  [
    'scenario',
    (r) =>
      r.instances === 1
        ? `A: 1 instance, ${fmt(r.subscribers)} streams`
        : `B: ${r.instances} instances, ${fmt(r.subscribers / r.instances)} streams each`,
  ],
  ['deliveries/s', (r) => fmt(r.deliveriesPerSec)],
  ['p50 ms', (r) => fmt(r.p50Ms, 1)],
  ['p99 ms', (r) => fmt(r.p99Ms, 1)],
  ['missing', (r) => fmt(r.missing)],
  ['publish/s', (r) => fmt(r.publishesPerSec)],
  ['srv CPU%', (r) => fmt(r.serverCpuPct)],
  ['pg+redis CPU%', (r) => fmt(r.storeBusCpuPct)],
  ['cli CPU%', (r) => fmt(r.clientCpuPct)],
  ['other CPU%', (r) => fmt(r.otherCpuPct)],
  ['deliveries/srv CPU-s', (r) => fmt(r.deliveriesPerServerCpuSec)],
];

/** Loud lines for anything that makes a run's figures suspect. */
function problems(r: ScenarioResult): string[] {
  const out: string[] = [];
  const name = `scenario ${r.scenario}`;
  if (r.missing > 0) out.push(`!!! ${name}: ${fmt(r.missing)} deliveries MISSING`);
  if (r.extra > 0) out.push(`!!! ${name}: ${fmt(r.extra)} deliveries beyond the expected`);
  if (r.endedEarly > 0) out.push(`!!! ${name}: ${r.endedEarly} streams ended early`);
  if (r.errorFrames > 0) out.push(`!!! ${name}: ${r.errorFrames} sampled reads carried errors`);
  if (r.publishFailures > 0) {
    out.push(`!!! ${name}: ${r.publishFailures} publishes failed: ${r.publishError ?? ''}`);
  }
  if (r.clientCpuPct > 90) {
    out.push(
      `(note) ${name}: the client used ${fmt(r.clientCpuPct)}% of a core: it may be the limit`,
    );
  }
  if (r.otherCpuPct !== null && r.otherCpuPct > 20) {
    out.push(
      `(note) ${name}: other processes used ${fmt(r.otherCpuPct)}% of a core: the machine was not quiet`,
    );
  }
  return out;
}

/** A command-line argument with the password of any URL in it replaced by `***`. */
function redactArg(arg: string): string {
  const eq = arg.indexOf('=');
  return arg.startsWith('--') && eq > 0
    ? arg.slice(0, eq + 1) + redactUrl(arg.slice(eq + 1))
    : redactUrl(arg);
}

/** Runs the benchmark described by `argv` (the arguments after the script) and prints it. */
export async function main(argv: readonly string[]): Promise<void> {
  const options = parseOrUsage(() => parseInstancesOptions(argv), USAGE);
  if (!options) return;
  const log = (line: string) => console.log(line);
  const cpus = os.cpus();
  options.pin = options.pin && cpus.length >= 2 && pin(process.pid, 1);
  let versions;
  try {
    versions = await within(serviceVersions(options), 20_000, 'PostgreSQL and Redis');
  } catch (err) {
    console.error(
      `cannot reach PostgreSQL (${redactUrl(options.postgres)}) or Redis ` +
        `(${redactUrl(options.redis)}): ${err instanceof Error ? err.message : String(err)}`,
    );
    process.exitCode = 1;
    return;
  }
  const machine = {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    pinned: options.pin ? 'instances on CPU 0, client on CPU 1' : 'no',
    source: sourceState(),
    postgres: `PostgreSQL ${versions.postgres} at ${redactUrl(options.postgres)}`,
    redis: `Redis ${versions.redis} at ${redactUrl(options.redis)}`,
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
  const command = [
    'npm run bench:instances',
    ...(argv.length ? ['--', ...argv.map(redactArg)] : []),
  ].join(' ');
  log('Tidings instances benchmark: one instance against two on PostgreSQL + Redis');
  log(
    `machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ` +
      `Node ${machine.node}, ${machine.platform}`,
  );
  log(`store: ${machine.postgres}; bus: ${machine.redis}`);
  log(
    `pinning: ${machine.pinned}; load average at start: ${machine.loadAverage.map((l) => l.toFixed(2)).join(' ')}`,
  );
  log(`tidings source: ${machine.source}`);
  log(`command: ${command}`);
  log(
    `shape: ${fmt(options.subscribers)} streams on one inbox (B: split half and half), ` +
      `${fmt(options.events)} events of ${options.payload} B padding from ${options.publishers} ` +
      `publishers round-robin over the instances; a fresh schema and channel per run; ` +
      `repeat ${options.repeat}, A and B alternated`,
  );
  log('');

  const runs: ScenarioResult[] = [];
  const failed: string[] = [];
  for (let round = 1; round <= options.repeat; round++) {
    for (const scenario of round % 2 === 1 ? (['A', 'B'] as const) : (['B', 'A'] as const)) {
      log(`run ${round}/${options.repeat} ${scenario} …`);
      try {
        const r = await runScenario(scenario, options, log);
        runs.push(r);
        log(
          `  ${fmt(r.deliveries)} deliveries, ${fmt(r.deliveriesPerSec)}/s, ` +
            `p50 ${fmt(r.p50Ms, 1)} ms, p99 ${fmt(r.p99Ms, 1)} ms, missing ${fmt(r.missing)}; ` +
            `CPU: instances ${fmt(r.serverCpuPct)}%, pg+redis ${fmt(r.storeBusCpuPct)}%, ` +
            `client ${fmt(r.clientCpuPct)}%, other ${fmt(r.otherCpuPct)}%`,
        );
        for (const line of problems(r)) log(`  ${line}`);
      } catch (err) {
        failed.push(
          `!!! run ${round} ${scenario} failed: ${err instanceof Error ? err.message : String(err)}`,
        );
        log(failed.at(-1) as string);
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
  const ratios: Record<string, number | null> = {};
  if (a?.scenario === 'A' && b?.scenario === 'B') {
    const over = (x: number | null, y: number | null) => (x === null || !y ? null : x / y);
    ratios['deliveries/s B/A'] = over(b.deliveriesPerSec, a.deliveriesPerSec);
    ratios['p50 B/A'] = over(b.p50Ms, a.p50Ms);
    ratios['p99 B/A'] = over(b.p99Ms, a.p99Ms);
    ratios['instances CPU% B/A'] = over(b.serverCpuPct, a.serverCpuPct);
    ratios['deliveries per instance CPU-second B/A'] = over(
      b.deliveriesPerServerCpuSec,
      a.deliveriesPerServerCpuSec,
    );
    log('');
    log(
      Object.entries(ratios)
        .map(([key, value]) => `${key}: ${fmt(value, 2)}`)
        .join('; '),
    );
  }
  log('');
  for (const line of medians.flatMap(problems).filter((l) => l.startsWith('(note)'))) log(line);
  if (
    a?.otherCpuPct != null &&
    b?.otherCpuPct != null &&
    Math.abs(a.otherCpuPct - b.otherCpuPct) > 25
  ) {
    log(
      `(note) the rest of the machine used ${fmt(a.otherCpuPct)}% of a core during A and ` +
        `${fmt(b.otherCpuPct)}% during B (medians): the two did not run under the same load, ` +
        'which skews deliveries/s and latency B/A;\n' +
        '       deliveries per instance CPU-second depends least on it.',
    );
  }
  log(
    `(note) ${machine.cores} cores for everything: in B the two instances compete with each other, ` +
      'with the client and with PostgreSQL and Redis.\n' +
      '       Every event still takes one PostgreSQL commit and one Redis message before any ' +
      'instance delivers it, and each instance\n' +
      '       pays the per-event costs (taking it from Redis, putting it in order, executing the ' +
      'selection, encoding the frame) for its streams.\n' +
      (machine.cores <= 2
        ? '       On this machine B is not expected to be faster than A (where it is, look at the ' +
          'load notes above): the figures show what a\n' +
          '       second instance costs, not what scaling out gains, which needs cores (or ' +
          'machines) of its own for each instance.'
        : '       B can only be faster when each instance gets cores of its own.'),
  );
  const loud = [...failed, ...runs.flatMap(problems).filter((l) => l.startsWith('!!!'))];
  log('');
  for (const line of loud) log(line);
  if (runs.length > 0 && runs.every((r) => r.missing === 0)) {
    log(`missing deliveries: none in the ${runs.length} runs completed`);
  }
  if (loud.length > 0) process.exitCode = 1;
  if (options.json) {
    log('');
    const shown = {
      ...options,
      postgres: redactUrl(options.postgres),
      redis: redactUrl(options.redis),
    };
    log(toJson({ machine, command, options: shown, runs, medians, ratios }));
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main(process.argv.slice(2));
}
