/**
 * Reservations that never connect, seen from outside: a real server process, hundreds of
 * single-connection reservations each running a subscription whose stream never opens, and
 * ~4 KB events published to them. The reservations past `TIDINGS_MAX_RESERVATIONS` are refused;
 * each accepted one keeps at most `TIDINGS_MAX_QUEUE_BYTES` for its stream, after which its
 * operation ends as a slow consumer. The server's resident memory must stay within that.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { cleanupProcesses, rssMB, startTidings, tempStore } from '../process/tprocess.js';

const ATTEMPTS = 400;
const MAX_RESERVATIONS = 200;
const QUEUE_BYTES = 64 * 1024;
const EVENTS = 120;
const BATCH = 10;
/** Characters of padding in each event body: ~4 KB per frame. */
const PAD = 4_000;
/**
 * Largest growth of the server's RSS while the events are published, MB. What the accepted
 * reservations may keep is 200 × 64 KiB = 12.5 MiB. Without the bounds, all 400 reservations
 * are accepted and each keeps four times the queue limit: ~100 MB.
 */
const MAX_GROWTH_MB = 40;
/** See slow-consumer-memory.test.ts: with the old generation capped, RSS follows live memory. */
const HEAP_FLAGS = '--max-old-space-size=128';

const QUERY = 'subscription { eventStream(inboxes: ["unread"]) { cursor body } }';
const PUBLISH = `mutation($inputs:[PublishEventInput!]!){publishEvents(inputs:$inputs){cursor}}`;

afterEach(() => cleanupProcesses());

/** POSTs a GraphQL operation; returns the JSON answer. */
async function gql<T>(base: string, query: string, variables: Record<string, unknown> = {}) {
  const res = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  return (await res.json()) as { data?: T; errors?: unknown[] };
}

/** One value of the Prometheus text at `/metrics`. */
async function metric(base: string, name: string): Promise<number | null> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? null : Number(line.slice(name.length + 1));
}

describe('reservations that never connect (server process)', () => {
  it('should refuse reservations past the cap and keep the server RSS bounded while events reach the waiting ones', async () => {
    const server = await startTidings({
      file: tempStore().file,
      env: {
        NODE_OPTIONS: [process.env.NODE_OPTIONS, HEAP_FLAGS].filter(Boolean).join(' '),
        TIDINGS_MAX_RESERVATIONS: String(MAX_RESERVATIONS),
        TIDINGS_MAX_RESERVATIONS_PER_CALLER: String(ATTEMPTS),
        TIDINGS_MAX_QUEUE_BYTES: String(QUEUE_BYTES),
      },
    });
    const base = server.url;
    const pid = server.child.pid as number;
    const stream = `${base}/graphql/stream`;

    const statuses: number[] = [];
    const tokens: string[] = [];
    for (let i = 0; i < ATTEMPTS; i++) {
      const res = await fetch(stream, { method: 'PUT' });
      statuses.push(res.status);
      const text = await res.text();
      if (res.status !== 201) continue;
      tokens.push(text);
      const op = await fetch(stream, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-graphql-event-stream-token': text },
        body: JSON.stringify({ query: QUERY, extensions: { operationId: 'unread' } }),
      });
      expect(op.status).toBe(202);
    }
    const listed = async () =>
      (await gql<{ streams: unknown[] }>(base, '{ streams { id } }')).data?.streams.length;
    expect(await listed()).toBe(tokens.length);

    const before = rssMB(pid);
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rssMB(pid))), 100);
    const pad = 'x'.repeat(PAD);
    const published: string[] = [];
    try {
      for (let done = 0; done < EVENTS; done += BATCH) {
        const inputs = Array.from({ length: BATCH }, (_, i) => ({
          type: 'unread.event',
          inbox: 'unread',
          body: { i: done + i, pad },
        }));
        const answer = await gql<{ publishEvents: { cursor: string }[] }>(base, PUBLISH, {
          inputs,
        });
        expect(answer.errors).toBeUndefined();
        published.push(...(answer.data?.publishEvents.map((e) => e.cursor) ?? []));
        peak = Math.max(peak, rssMB(pid));
      }
    } finally {
      clearInterval(sampler);
    }
    console.info(
      `server RSS: before ${before.toFixed(1)} MB, peak ${peak.toFixed(1)} MB ` +
        `(+${(peak - before).toFixed(1)} MB) while ${EVENTS} events of ~${PAD / 1000} KB reached ` +
        `${tokens.length} reservations whose stream never connected`,
    );
    expect(peak - before).toBeLessThan(MAX_GROWTH_MB);

    // One reservation too many was refused, the others were accepted.
    expect(tokens.length).toBe(MAX_RESERVATIONS);
    expect(statuses.filter((s) => s === 429).length).toBe(ATTEMPTS - MAX_RESERVATIONS);
    // Past the queue limit, every operation ended as a slow consumer; none is left behind.
    await expect.poll(listed, { timeout: 10_000 }).toBe(0);
    expect(await metric(base, 'tidings_hub_streams')).toBe(0);
    expect(await metric(base, 'tidings_streams_ended_total{reason="slow_consumer"}')).toBe(
      MAX_RESERVATIONS,
    );

    // A client that connects late finds a prefix of the events, then the resume hint.
    const res = await fetch(stream, {
      headers: { accept: 'text/event-stream', 'x-graphql-event-stream-token': tokens[0] as string },
    });
    expect(res.status).toBe(200);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let text = '';
    while (!text.includes('event: complete')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    await reader.cancel();
    const ids = [...text.matchAll(/^id: (\w+)$/gm)].map((m) => m[1]);
    expect(ids.length).toBeGreaterThan(0);
    expect(ids).toEqual(published.slice(0, ids.length));
    expect(text).toMatch(/"code":"SLOW_CONSUMER"/);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  }, 120_000);
});
