/**
 * Slow consumers, seen from outside: a real server process, a client that reads everything and a
 * client that sends its request and then never reads. While 20,000 events of ~4 KB (~80 MB of
 * frames) are published, the server's resident memory must stay bounded — it must not grow with
 * what the stalled client failed to read — the reader must get every event in order, and the
 * stalled client, once it reads again, must find a gapless prefix ended by `SLOW_CONSUMER`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { request, type ClientRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { tcli, type TProcess } from '../cli/tcli.js';
import { rssMB } from '../process/tprocess.js';
import { waitFor } from './helpers.js';

const EVENTS = 20_000;
const BATCH = 200;
/** Characters of padding in each event body: with the frame around it, ~4 KB per event. */
const PAD = 4_000;
/**
 * Largest growth of the server's RSS over its reading before publishing, MB. Without a stalled
 * client the same run grows the server by ~15 MB; the queue of one stalled connection may add at
 * most 4 × 1 MiB (`TIDINGS_MAX_QUEUE_BYTES` is 1 MiB by default). The events published weigh
 * ~80 MB: with the queue unbounded, the second test sees the server grow by 75–95 MB.
 */
const MAX_GROWTH_MB = 48;

/** Events published before measuring, so that the publish and delivery paths are warm. */
const WARMUP = 4_000;
/**
 * V8 flags of the server process. By default V8 lets the old generation fill with garbage before
 * it collects: during this run the server's RSS grows by 110–170 MB with or without a stalled
 * client, at a live heap of ~55 MB, which would drown what this test looks for. With the old
 * generation capped, RSS follows the live memory; whatever the server kept for the stalled client
 * would stay resident however V8 is tuned.
 */
const HEAP_FLAGS = '--max-old-space-size=128';

const INBOX = 'slow';
const QUERY = `subscription{eventStream(inboxes:["${INBOX}"]){cursor id body}}`;
const STREAM_PATH = `/graphql/stream?query=${encodeURIComponent(QUERY)}`;
const PUBLISH = `mutation($inputs:[PublishEventInput!]!){publishEvents(inputs:$inputs){cursor}}`;

let runs = 0;
const dir = mkdtempSync(join(tmpdir(), 'tidings-slow-memory-'));
let server: TProcess | null = null;
const cleanups: (() => void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) cleanup();
  if (server && server.child.exitCode === null && server.child.signalCode === null) {
    server.child.kill('SIGKILL');
    await server.exited;
  }
  server = null;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** One SSE frame, reduced to what the checks need. */
interface Frame {
  event: string | null;
  id: string | null;
  data: string | null;
}

/** Splits complete frames off the front of `buffer`; returns them and the unfinished rest. */
function takeFrames(buffer: string): { frames: Frame[]; rest: string } {
  const frames: Frame[] = [];
  let start = 0;
  for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n', start)) {
    const frame: Frame = { event: null, id: null, data: null };
    for (const line of buffer.slice(start, end).split('\n')) {
      if (line.startsWith('event: ')) frame.event = line.slice(7);
      else if (line.startsWith('id: ')) frame.id = line.slice(4);
      else if (line.startsWith('data:')) frame.data = line.slice(5).trimStart();
    }
    frames.push(frame);
    start = end + 2;
  }
  return { frames, rest: buffer.slice(start) };
}

/**
 * A client that reads the stream as fast as it comes, keeping only the cursors of event frames
 * and any `next` frame without one (an error).
 */
function reader(base: string) {
  const cursors: string[] = [];
  const errors: string[] = [];
  let ended = false;
  let status = 0;
  let rest = '';
  const req: ClientRequest = request(`${base}${STREAM_PATH}`, {
    headers: { accept: 'text/event-stream' },
  });
  req.on('error', () => (ended = true));
  req.on('response', (res) => {
    status = res.statusCode ?? 0;
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      const taken = takeFrames(rest + chunk);
      rest = taken.rest;
      for (const f of taken.frames) {
        if (f.event !== 'next') continue;
        if (f.id === null) errors.push(f.data ?? '');
        else cursors.push(f.id);
      }
    });
    res.on('close', () => (ended = true));
  });
  req.end();
  return {
    cursors,
    errors,
    get status() {
      return status;
    },
    get ended() {
      return ended;
    },
    close: () => req.destroy(),
  };
}

/** Decodes an HTTP/1.1 response with a chunked body; `done` once its last chunk is in. */
function dechunk(raw: Buffer): { head: string; body: string; done: boolean } {
  const headEnd = raw.indexOf('\r\n\r\n');
  if (headEnd === -1) return { head: '', body: '', done: false };
  const head = raw.toString('latin1', 0, headEnd);
  const parts: Buffer[] = [];
  let at = headEnd + 4;
  for (;;) {
    const lineEnd = raw.indexOf('\r\n', at);
    if (lineEnd === -1) break;
    const size = parseInt(raw.toString('latin1', at, lineEnd), 16);
    if (size === 0) return { head, body: Buffer.concat(parts).toString('utf8'), done: true };
    if (raw.length < lineEnd + 2 + size + 2) break;
    parts.push(raw.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return { head, body: Buffer.concat(parts).toString('utf8'), done: false };
}

/**
 * A client on a bare TCP socket: it sends the GET of the stream and reads until told to pause;
 * then it reads nothing more until `resume`.
 */
function stalledClient(port: number) {
  const chunks: Buffer[] = [];
  let received = 0;
  const socket: Socket = connect(port, '127.0.0.1');
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    received += chunk.length;
  });
  socket.on('error', () => undefined);
  socket.write(
    `GET ${STREAM_PATH} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\n\r\n`,
  );
  const text = () => dechunk(Buffer.concat(chunks));
  return {
    /** Resolves once `ready` holds for the body received so far. */
    async until(ready: (body: string) => boolean, what: string): Promise<void> {
      let seen = -1;
      let ok = false;
      await waitFor(() => {
        if (received !== seen) {
          seen = received;
          ok = ready(text().body);
        }
        return ok;
      }, what);
    },
    /** Stops reading: what the server sends from now on waits in the socket buffers and in it. */
    pause: () => socket.pause(),
    /** Reads again; resolves with the decoded response once the server ended it. */
    async resume(ms: number): Promise<{ head: string; body: string }> {
      socket.resume();
      let seen = -1;
      let decoded = { head: '', body: '', done: false };
      await waitFor(
        () => {
          if (received !== seen) {
            seen = received;
            decoded = text();
          }
          return decoded.done;
        },
        'the end of the stalled response',
        ms,
      );
      return decoded;
    },
    close: () => socket.destroy(),
  };
}

/** The first index where `a` and `b` differ (either may be shorter), or -1. */
function firstDifference(a: readonly string[], b: readonly string[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) return i;
  return -1;
}

/** Publishes one `publishEvents` batch; returns the cursors, in order. */
async function publish(base: string, inputs: unknown[]): Promise<string[]> {
  const res = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ query: PUBLISH, variables: { inputs } }),
  });
  const result = (await res.json()) as {
    data?: { publishEvents: { cursor: string }[] };
    errors?: unknown[];
  };
  if (!result.data || result.errors) throw new Error(`publish failed: ${JSON.stringify(result)}`);
  return result.data.publishEvents.map((e) => e.cursor);
}

/** What {@link runWithStalledClient} observed. */
interface Observed {
  base: string;
  normal: ReturnType<typeof reader>;
  stalled: ReturnType<typeof stalledClient>;
  /** Every cursor published, warm-up included, in order. */
  published: string[];
  /** Index in `published` of the first event the stalled client was live for. */
  probeIndex: number;
  /** Server RSS, MB: once the stalled client stopped reading, the highest, and at the end. */
  before: number;
  peak: number;
  /** The highest by the time half of the events were published. */
  halfway: number;
  after: number;
}

/**
 * Starts a server process with `env`, connects a reader, publishes {@link WARMUP} events, then
 * connects a client that stops reading after its first event and publishes {@link EVENTS} more
 * in batches, each once the reader has the previous one, sampling the server's RSS meanwhile.
 */
async function runWithStalledClient(env: Record<string, string> = {}): Promise<Observed> {
  const proc = tcli(['serve', '--port', '0', '--store', `sqlite:${join(dir, `t${runs++}.db`)}`], {
    NODE_OPTIONS: [process.env.NODE_OPTIONS, HEAP_FLAGS].filter(Boolean).join(' '),
    ...env,
  });
  server = proc;
  const base = await proc.listening();
  const pid = proc.child.pid as number;
  const normal = reader(base);
  cleanups.push(() => normal.close());
  const published: string[] = [];
  const pad = 'x'.repeat(PAD);
  const publishBatches = async (count: number, onBatch: () => void = () => undefined) => {
    for (let done = 0; done < count; done += BATCH) {
      const inputs = Array.from({ length: Math.min(BATCH, count - done) }, (_, i) => ({
        type: 'slow.event',
        inbox: INBOX,
        body: { i: published.length + i, pad },
      }));
      const cursors = await publish(base, inputs);
      published.push(...cursors);
      const last = cursors.at(-1);
      await waitFor(() => normal.cursors.at(-1) === last || normal.ended, 'the batch', 10_000);
      onBatch();
    }
  };
  await waitFor(() => normal.status !== 0, 'the reader to connect');
  expect(normal.status).toBe(200);
  // The reader is live before anything is published: the warm-up comes back on it.
  const [first] = await publish(base, [{ type: 'slow.first', inbox: INBOX }]);
  await waitFor(() => normal.cursors.includes(first as string), 'the first event on the reader');
  published.push(first as string);
  await publishBatches(WARMUP);

  const stalled = stalledClient(Number(new URL(base).port));
  cleanups.push(() => stalled.close());
  // Its stream is registered before its headers go out; a probe then proves it live, and the
  // client stops reading once it has it.
  await stalled.until((body) => body.startsWith('retry:'), 'the stalled stream to open');
  const probeIndex = published.length;
  const [probe] = await publish(base, [{ type: 'slow.probe', inbox: INBOX }]);
  published.push(probe as string);
  await waitFor(() => normal.cursors.at(-1) === probe, 'the probe on the reader');
  await stalled.until((body) => body.includes(`id: ${probe}\n`), 'the probe (stalled)');
  stalled.pause();

  const before = rssMB(pid);
  let peak = before;
  let halfway = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMB(pid))), 100);
  cleanups.push(() => clearInterval(sampler));
  try {
    await publishBatches(EVENTS, () => {
      if (halfway === 0 && published.length - probeIndex > EVENTS / 2) halfway = peak;
    });
  } finally {
    clearInterval(sampler);
  }
  peak = Math.max(peak, rssMB(pid));
  const after = rssMB(pid);
  console.info(
    `server RSS${env.TIDINGS_MAX_QUEUE_BYTES ? ` (TIDINGS_MAX_QUEUE_BYTES=${env.TIDINGS_MAX_QUEUE_BYTES})` : ''}: ` +
      `before ${before.toFixed(1)} MB, peak ${peak.toFixed(1)} MB (+${(peak - before).toFixed(1)} MB; ` +
      `+${(halfway - before).toFixed(1)} MB by half of the events), after ${after.toFixed(1)} MB, ` +
      `while ${EVENTS} events of ~${PAD / 1000} KB were published to a client that stopped reading`,
  );
  return { base, normal, stalled, published, probeIndex, before, peak, halfway, after };
}

describe('slow consumer memory (server process)', () => {
  it('should keep the server RSS bounded and the other reader whole while a client stops reading during 20,000 events', async () => {
    const started = Date.now();
    const run = await runWithStalledClient();
    const { normal, stalled, published } = run;

    // The reader got everything, in order, with no error.
    expect(normal.errors).toEqual([]);
    expect(normal.ended).toBe(false);
    expect(normal.cursors.length).toBe(published.length);
    expect(firstDifference(normal.cursors, published)).toBe(-1);

    // The stalled client reads what was left for it: a gapless prefix, the error, `complete`.
    const { head, body } = await stalled.resume(20_000);
    expect(head).toMatch(/^HTTP\/1\.1 200 /);
    const frames = takeFrames(body).frames.filter((f) => f.event !== null);
    const end = frames.slice(-2);
    expect(end.map((f) => f.event)).toEqual(['next', 'complete']);
    const error = JSON.parse(end[0]?.data ?? 'null') as {
      errors?: { extensions?: { code?: string } }[];
    };
    expect(error.errors?.[0]?.extensions?.code).toBe('SLOW_CONSUMER');
    const prefix = frames.slice(0, -2);
    expect(prefix.every((f) => f.event === 'next' && f.id !== null)).toBe(true);
    const cursors = prefix.map((f) => f.id as string);
    for (let i = 1; i < cursors.length; i++) {
      expect((cursors[i] as string) > (cursors[i - 1] as string)).toBe(true);
    }
    const live = published.slice(run.probeIndex);
    expect(cursors.length).toBeGreaterThan(0);
    expect(cursors.length).toBeLessThan(live.length);
    expect(firstDifference(cursors, live.slice(0, cursors.length))).toBe(-1);
    console.info(
      `stalled client: ${cursors.length} of ${live.length} events (${(body.length / 1024 / 1024).toFixed(1)} MB), ` +
        `then SLOW_CONSUMER; test took ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );

    // Bounded: the growth does not follow the ~80 MB published.
    expect(run.peak - run.before).toBeLessThan(MAX_GROWTH_MB);
    const health = await fetch(`${run.base}/healthz`);
    expect(health.status).toBe(200);
  }, 60_000);

  it('should see the growth when the queue is not bounded (control of the measurement)', async () => {
    const run = await runWithStalledClient({
      TIDINGS_MAX_QUEUE_BYTES: String(1024 ** 3),
      TIDINGS_MAX_QUEUE: '10000000',
    });
    expect(firstDifference(run.normal.cursors, run.published)).toBe(-1);
    // The frames the stalled client did not read stay in the server, and the measurement sees it.
    expect(run.peak - run.before).toBeGreaterThan(MAX_GROWTH_MB);
  }, 60_000);
});
