/**
 * Connections that never send a request are closed after `TIDINGS_HEADER_TIMEOUT`: raw sockets
 * that send nothing, and one that sends half a request line, on every way the project starts its
 * server (`startServer`, the embedded `createTidings`, a `tidings serve` process). An event
 * stream opened before them, whose request was complete, outlives them and still gets events.
 */
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createTidings } from '../../src/embed.js';
import { cleanupProcesses, startTidings, tempStore } from '../process/tprocess.js';
import { tserver } from '../tserver.js';
import { rawStream, waitFor, type RawStream } from './helpers.js';

/** The header timeout of these servers; the keepalive is far longer, so streams are silent. */
const HEADER_TIMEOUT = '500ms';
/** Generous: Node closes them between the timeout and the timeout plus its checking interval. */
const CLOSED_WITHIN_MS = 20_000;

/** A raw TCP connection that records what the server sent and when it closed. */
function socketTo(url: string, send = '') {
  const { hostname, port } = new URL(url);
  const socket: Socket = connect(Number(port), hostname);
  let received = '';
  let closed = false;
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  socket.on('error', () => undefined);
  socket.on('close', () => (closed = true));
  if (send) socket.once('connect', () => socket.write(send));
  return {
    get received() {
      return received;
    },
    get closed() {
      return closed;
    },
    destroy: () => socket.destroy(),
  };
}

const sockets: ReturnType<typeof socketTo>[] = [];
const streams: RawStream[] = [];
const stops: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const raw of streams.splice(0)) raw.close();
  for (const stop of stops.splice(0)) await stop();
  await cleanupProcesses();
});

/** How each way of starting a server is started with the header timeout; returns its URL. */
const starts: { name: string; start: () => Promise<string> }[] = [
  {
    name: 'startServer',
    async start() {
      const s = await tserver({ headerTimeoutMs: 500, keepaliveMs: 600_000 });
      stops.push(() => s.stop());
      return s.url;
    },
  },
  {
    name: 'createTidings (embedded)',
    async start() {
      const t = await createTidings({
        store: 'sqlite::memory:',
        port: 0,
        logLevel: 'silent',
        headerTimeoutMs: 500,
        keepaliveMs: 600_000,
      });
      stops.push(() => t.close());
      return t.url as string;
    },
  },
  {
    name: 'tidings serve (process)',
    async start() {
      const p = await startTidings({
        file: tempStore().file,
        env: { TIDINGS_HEADER_TIMEOUT: HEADER_TIMEOUT, TIDINGS_KEEPALIVE_MS: '600000' },
      });
      return p.url;
    },
  },
];

describe.each(starts)('idle sockets on $name', ({ start }) => {
  it('should close sockets that send nothing or half a request line, and keep an open stream', async () => {
    const url = await start();
    const query = 'subscription { eventStream(inboxes: ["idle"]) { cursor type } }';
    const stream = await rawStream(`${url}/graphql/stream?query=${encodeURIComponent(query)}`, {
      headers: { accept: 'text/event-stream' },
    });
    streams.push(stream);
    expect(stream.response.status).toBe(200);
    await stream.waitFor((f) => f.retry !== null, 'the retry hint');

    const silent = Array.from({ length: 20 }, () => socketTo(url));
    const half = socketTo(url, 'GET /graphql/str');
    sockets.push(...silent, half);
    await waitFor(
      () => silent.every((s) => s.closed) && half.closed,
      'the idle sockets to be closed',
      CLOSED_WITHIN_MS,
    );
    expect(half.received).toMatch(/^HTTP\/1\.1 408 /);

    // The stream, open since before them, is not a socket waiting for headers: it is still open.
    expect(stream.ended).toBe(false);
    const res = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({
        query: 'mutation { publishEvent(input: { type: "idle.after", inbox: "idle" }) { cursor } }',
      }),
    });
    const { data } = (await res.json()) as { data: { publishEvent: { cursor: string } } };
    const next = await stream.waitFor((f) => f.event === 'next', 'the event on the stream');
    expect(next.id).toBe(data.publishEvent.cursor);
    expect(stream.ended).toBe(false);
  }, 60_000);
});
